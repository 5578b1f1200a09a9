"""Kaplan–Meier estimates of "how long until a brand replies", unanswered probes censored.

Why Kaplan–Meier: a probe nobody answered is not missing data, it is a probe that waited the
whole cutoff. Dropping it makes slow brands look fast; counting it as "the cutoff" invents a
time. The estimator uses exactly what is known: it was still unanswered at the cutoff.

SciPy's ``stats.ecdf`` with ``CensoredData.right_censored`` computes the survival function
(share of probes still waiting after t); this module only reads quantities off it. At a tie
between an answer and a censoring time, the answer counts first (the usual convention).
Medians of thousands of groups use :func:`median_expr`, exact and vectorised in polars, and
fall back to SciPy only for groups where censoring comes before an answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import polars as pl

_EPSILON = 1e-9  # a survival of exactly one half, computed as a product, may be 0.5000000001


@dataclass(frozen=True)
class Survival:
    """The KM step function: after ``times[i]`` a share ``survival[i]`` of probes still waits."""

    times: npt.NDArray[np.float64]
    survival: npt.NDArray[np.float64]
    n: int
    events: int

    def median(self) -> float | None:
        """The first time at which at most half the probes still wait; None when never
        (fewer than half answered before their cutoff). For an even count of all-answered
        probes this is the lower middle time, never an average of two."""
        return self.quantile(0.5)

    def quantile(self, share_answered: float) -> float | None:
        """First time at which at least ``share_answered`` of probes are answered."""
        import numpy as np

        below = np.flatnonzero(self.survival <= 1.0 - share_answered + _EPSILON)
        return float(self.times[below[0]]) if below.size else None

    def at(self, grid: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Survival evaluated at each time of ``grid`` (right-continuous step)."""
        import numpy as np

        index = np.searchsorted(self.times, grid, side="right") - 1
        values = np.where(index >= 0, self.survival[np.clip(index, 0, None)], 1.0)
        return values.astype(np.float64)


def estimate(times: npt.ArrayLike, answered: npt.ArrayLike) -> Survival | None:
    """Kaplan–Meier survival from event-or-censoring times and whether each was answered.

    ``times`` holds the answer time for answered probes and the censoring time (cutoff) for
    the others. Returns None for an empty sample.
    """
    import numpy as np
    from scipy import stats

    t = np.asarray(times, dtype=np.float64)
    done = np.asarray(answered, dtype=bool)
    if t.size == 0:
        return None
    if not done.any():
        return Survival(np.array([float(t.max())]), np.array([1.0]), int(t.size), 0)
    result = stats.ecdf(stats.CensoredData.right_censored(t, ~done))
    sf = result.sf
    return Survival(
        np.asarray(sf.quantiles, dtype=np.float64),
        np.asarray(sf.probabilities, dtype=np.float64),
        int(t.size),
        int(done.sum()),
    )


@dataclass(frozen=True)
class Band:
    """The KM curve with its pointwise confidence band and where probes were censored.

    ``low``/``high`` are NaN where the log-log band is undefined (S = 1 before the first
    answer, S = 0 after the last); ``censored`` holds each censoring time with the survival
    there, for the chart's tick marks."""

    times: npt.NDArray[np.float64]
    survival: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    censored: npt.NDArray[np.float64]
    censored_survival: npt.NDArray[np.float64]

    def at(self, grid: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], ...]:
        """(survival, low, high) at each grid time (right-continuous steps; before the first
        time, survival 1 and no band)."""
        import numpy as np

        index = np.searchsorted(self.times, grid, side="right") - 1
        inside = index >= 0
        safe = np.clip(index, 0, None)
        return (np.where(inside, self.survival[safe], 1.0),
                np.where(inside, self.low[safe], np.nan),
                np.where(inside, self.high[safe], np.nan))


def band(times: npt.ArrayLike, answered: npt.ArrayLike, level: float = 0.95) -> Band | None:
    """The KM curve and its log-log Greenwood band, in numpy (no SciPy import for a chart).

    The arithmetic is SciPy's ``ecdf`` and ``confidence_interval(method="log-log")`` step for
    step (the survival a running product over distinct times, the variance a running sum),
    so that the chart and the tables agree; a test holds it equal to SciPy."""
    import numpy as np

    t = np.asarray(times, dtype=np.float64)
    done = np.asarray(answered, dtype=bool)
    if t.size == 0:
        return None
    unique, inverse = np.unique(t, return_inverse=True)
    count = np.bincount(inverse).astype(np.float64)
    deaths = np.bincount(inverse, weights=done.astype(np.float64))
    at_risk = t.size - np.concatenate([[0.0], np.cumsum(count)[:-1]])
    survival = np.cumprod(1 - deaths / at_risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = 1 / np.log(survival) ** 2 * np.cumsum(deaths / (at_risk * (at_risk - deaths)))
        log_log = np.log(-np.log(survival))
        spread = _z(level) * np.sqrt(variance)
        low = np.clip(np.exp(-np.exp(log_log + spread)), 0, 1)
        high = np.clip(np.exp(-np.exp(log_log - spread)), 0, 1)
    censored = np.unique(t[~done])
    index = np.searchsorted(unique, censored)
    return Band(unique, survival, low, high, censored, survival[index])


def estimate_fast(times: npt.ArrayLike, answered: npt.ArrayLike) -> Survival | None:
    """``estimate`` without SciPy when no probe is censored before the last answer.

    Then Kaplan–Meier is the empirical curve, survival ``1 - i/n`` after the i-th answer, and a
    year of a hundred thousand probes costs a sort instead of an estimator call; otherwise this
    is ``estimate``. A test holds the two equal."""
    import numpy as np

    t = np.asarray(times, dtype=np.float64)
    done = np.asarray(answered, dtype=bool)
    if t.size == 0 or not done.any() or (
        (~done).any() and t[~done].min() < t[done].max()
    ):
        return estimate(t, done)
    answer_times, counts = np.unique(t[done], return_counts=True)
    survival = 1.0 - np.cumsum(counts) / t.size
    return Survival(answer_times, survival.astype(np.float64), int(t.size), int(done.sum()))


def median(times: npt.ArrayLike, answered: npt.ArrayLike) -> float | None:
    """KM median of one sample, or None (see ``Survival.median``)."""
    curve = estimate(times, answered)
    return curve.median() if curve is not None else None


def median_interval(
    times: npt.ArrayLike, answered: npt.ArrayLike, level: float = 0.95
) -> tuple[float | None, float | None]:
    """The ``level`` confidence interval of the KM median: (low, high), None for an undefined end.

    Greenwood's variance on the log(−log S) scale (the "exponential Greenwood" band of SciPy's
    ``sf.confidence_interval(method="log-log")``, Stata and lifelines): unlike the plain
    Greenwood band it stays inside (0, 1) and is not symmetric where S is near 0 or 1. The
    interval is the set of times whose band contains ½, so each end is the first time at which
    that band reaches ½ (the lower band gives the low end, the upper band the high end), read
    with the median's own convention (survival ≤ ½). The band is undefined where S is 1 or 0
    (SciPy's NaN there); an end whose band never reaches ½ is None: the data cannot bound the
    median on that side (e.g. the high end when just over half the probes were answered).
    """
    import warnings

    import numpy as np
    from scipy import stats

    t = np.asarray(times, dtype=np.float64)
    done = np.asarray(answered, dtype=bool)
    if t.size == 0 or not done.any():
        return None, None
    sf = stats.ecdf(stats.CensoredData.right_censored(t, ~done)).sf
    with warnings.catch_warnings():
        # SciPy warns that the band is undefined where S is 1 or 0; that is read as "no end".
        warnings.simplefilter("ignore", RuntimeWarning)
        band = sf.confidence_interval(level, method="log-log")
    return (_first_at_half(sf.quantiles, band.low.probabilities),
            _first_at_half(sf.quantiles, band.high.probabilities))


def _first_at_half(times: npt.NDArray[np.float64], band: npt.NDArray[np.float64]) -> float | None:
    import numpy as np

    # NaN (an undefined band) compares false, so it is never taken for a crossing.
    below = np.flatnonzero(band <= 0.5 + _EPSILON)
    return float(times[below[0]]) if below.size else None


def median_expr(time: pl.Expr, event: pl.Expr, censor: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(median, exact) as aggregations over one group, computed without SciPy.

    When no probe is censored before the last answer (the usual case: every unanswered probe
    waited the full cutoff, and every answer came within it), the Kaplan–Meier estimate *is*
    the empirical one: survival after the i-th answer is 1 - i/n, so the median is the
    ⌈n/2⌉-th answer time, or none when fewer answered. ``exact`` is false for a group where
    a censoring time comes before an answer; only those groups need :func:`estimate`. A test
    holds the two equal on random samples.
    """
    import polars as pl

    # Unanswered probes sort after every answer (they are censored after the last one), so
    # the ⌈n/2⌉-th answer is the lower median of the group with them as +inf: polars'
    # quantile(0.5, "lower") takes index ⌊(n-1)/2⌋ = ⌈n/2⌉-1, by selection, not a group sort.
    # Masks with when/then instead of filter keep every aggregation on polars' fast path.
    k = (pl.len() + 1) // 2
    waiting = pl.when(event).then(time).otherwise(float("inf"))
    median = pl.when(event.sum() >= k).then(waiting.quantile(0.5, "lower"))
    earliest_censor = pl.when(~event).then(censor).min()
    last_answer = pl.when(event).then(time).max()
    exact = earliest_censor.is_null() | last_answer.is_null() | (earliest_censor >= last_answer)
    return median, exact


def interval_ranks(n: int, level: float = 0.95) -> tuple[int | None, int | None]:
    """Which answers bound the median's interval in a group of ``n`` probes censored after
    the last answer: (k_low, k_high), 1-based ranks among the sorted times, None for no end.

    Then after the i-th answer S = 1 − i/n, and Greenwood's sum Σ d/(r(r − d)) telescopes to
    1/(n − i) − 1/n = i/(n(n − i)), ties included: the band at the i-th answer depends on i
    and n alone, and each end of the interval is an order statistic of the group. Where both
    bands fall as i grows (at 95 %, every n up to 2,000, a test checks), a tie changes nothing:
    the first answer at which a band reaches ½ has the time of the last answer of its tie,
    where SciPy reads the band. Where a band rises somewhere (at 99 %, n = 10), ties could
    matter: then ``monotone`` is False and the caller asks SciPy. ``n − 1`` at most: the band
    is undefined at S = 0.
    """
    low, high, _ = _ranks(n, _z(level))
    return low, high


def interval_is_rank(n: int, level: float = 0.95) -> bool:
    """Whether :func:`interval_ranks` holds for ``n`` whatever the ties (both bands monotone)."""
    return _ranks(n, _z(level))[2]


@lru_cache(maxsize=4096)
def _ranks(n: int, z: float) -> tuple[int | None, int | None, bool]:
    import numpy as np

    i = np.arange(1, n, dtype=np.float64)
    if i.size == 0:
        return None, None, True
    log_s = np.log(1.0 - i / n)
    se = np.sqrt(i / (n * (n - i)) / log_s**2)
    log_log = np.log(-log_s)
    ends: list[int | None] = []
    monotone = True
    for sign in (1.0, -1.0):  # the lower band gives the low end, the upper the high end
        band = np.exp(-np.exp(log_log + sign * z * se))
        monotone = monotone and bool(np.all(np.diff(band) <= 0))
        below = np.flatnonzero(band <= 0.5 + _EPSILON)
        ends.append(int(below[0]) + 1 if below.size else None)
    return ends[0], ends[1], monotone


def waiting_expr(time: pl.Expr, event: pl.Expr) -> pl.Expr:
    """Each probe's time with the unanswered as +inf: aggregated as a list per group, the
    input of :func:`intervals`."""
    import polars as pl

    return pl.when(event).then(time).otherwise(float("inf"))


def intervals(
    waiting: pl.Series, level: float = 0.95
) -> tuple[list[float | None], list[float | None], list[bool]]:
    """(low, high, exact) of :func:`median_interval` for each group of a list column of
    :func:`waiting_expr` values, without SciPy.

    Valid where :func:`median_expr` says ``exact``; ``exact`` here is False for a group whose
    size :func:`interval_is_rank` refuses, which then needs :func:`median_interval`. Each end
    is an order statistic (:func:`interval_ranks`), found by a partial sort of the group's
    times (``numpy.partition``, linear), not a sort: one pass of the aggregation gathers the
    times, so tables of thousands of brands cost no estimator call and no extra grouping.
    A test holds it equal to SciPy.
    """
    import numpy as np

    sizes = waiting.list.len().to_numpy().astype(np.int64)
    flat = waiting.explode().to_numpy().astype(np.float64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    low = np.full(sizes.size, np.nan)
    high = np.full(sizes.size, np.nan)
    exact = np.ones(sizes.size, dtype=bool)
    # Groups of one size share their ranks: one partial sort of a (groups × size) block.
    for n in np.unique(sizes).tolist():
        rows = np.flatnonzero(sizes == n)
        if not interval_is_rank(n, level):
            exact[rows] = False
            continue
        ranks = interval_ranks(n, level)
        wanted = [k - 1 for k in ranks if k is not None]
        if not wanted:
            continue
        if rows.size == 1:  # a group of a size of its own (large groups): its slice
            start = int(starts[rows[0]])
            block = np.partition(flat[start:start + n], wanted)[None, :]
        else:
            block = np.partition(flat[starts[rows, None] + np.arange(n)], wanted, axis=1)
        for k, out in zip(ranks, (low, high), strict=True):
            if k is not None:
                out[rows] = block[:, k - 1]
    # An end at +inf is an unanswered probe: fewer answers than the rank, no end.
    return ([None if not math.isfinite(v) else float(v) for v in low.tolist()],
            [None if not math.isfinite(v) else float(v) for v in high.tolist()],
            exact.tolist())


def _z(level: float) -> float:
    """The normal quantile of a two-sided ``level`` band (the stdlib's, to spare importing
    SciPy where no estimator is called; it may differ from SciPy's in the last bit only)."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + level / 2)
