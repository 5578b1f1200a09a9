"""Did anything change between two years? Log-rank tests and response-rate intervals.

A difference of two medians (or of two means over three probes) is not a finding: the year's
numbers move by chance. What a careful reader needs is a test of the whole time-to-reply
curve, with unanswered probes censored, and an interval on the change in response rate.

* :func:`logrank`: the two-sample log-rank test of SciPy's ``stats.logrank`` (two-sided p,
  ties and censoring as there), computed for many pairs of samples at once in polars: a
  series compares every brand of its panel with itself a year before, thousands of tests
  that one SciPy call each would make the slowest part of publishing. Tests compare it with
  SciPy called directly on the same timings.
* :func:`rate_change`: the difference of two response rates with Newcombe's hybrid score
  interval (Newcombe 1998, method 10), built from the two Wilson score intervals: unlike the
  Wald interval it stays inside [−1, 1] and keeps its coverage at rates near 0 or 100 %,
  where response rates of brands live. Tested on the paper's worked examples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import polars as pl

LEVEL = 0.95
ALPHA = 0.05


@dataclass(frozen=True)
class Sample:
    """One sample of probes for a test: ``times`` sorted (answer times, and censoring times of
    the unanswered), ``events`` aligned with them (answered)."""

    times: npt.NDArray[np.float64]
    events: npt.NDArray[np.bool_]

    @property
    def n(self) -> int:
        return int(self.times.size)


def sample(times: npt.ArrayLike, events: npt.ArrayLike) -> Sample:
    """A :class:`Sample` from unsorted times and answered flags."""
    import numpy as np

    t = np.asarray(times, dtype=np.float64)
    order = np.argsort(t, kind="stable")
    return Sample(t[order], np.asarray(events, dtype=bool)[order])


def merged(parts: Sequence[Sample]) -> Sample:
    """Several samples as one (e.g. the brands of a panel)."""
    import numpy as np

    if not parts:
        return Sample(np.empty(0), np.empty(0, dtype=bool))
    return sample(np.concatenate([p.times for p in parts]),
                  np.concatenate([p.events for p in parts]))


def logrank_p(x: Sample, y: Sample) -> float | None:
    """Two-sided log-rank p of ``x`` against ``y``; None where the test is undefined (a sample
    is empty, or the variance is zero: no answer while both samples waited). One pair of
    :func:`logrank_many`."""
    return logrank_many([(x, y)])[0]


def logrank_many(pairs: Sequence[tuple[Sample, Sample]]) -> list[float | None]:
    """:func:`logrank_p` of each pair (``x`` against ``y``), pairs batched into few passes.

    Each sample is sorted already, so each pair's pooled sample is one merge of two runs, and
    every count the test needs is a cumulative sum over it: at each distinct time, the answers
    there (``d``) and the probes still at risk (``r``, a probe censored at t still at risk at
    t, as in SciPy). Why not binary searches per sample: for the yearly tests of tens of
    thousands of probes, six searches of every answer time cost ten times this one pass. Why
    batches: a series publishes thousands of tests (every brand of its panel against itself a
    year before), and one numpy pass over many pairs side by side costs what a dozen separate
    calls did. A batch holds at most :data:`_BATCH` probes: arrays of millions would each be
    fresh memory, and a fresh process pays the kernel for every new page. Only the two sums
    of each test are taken pair by pair, over that pair's own terms in time order: the same
    floating-point operations as a test computed alone. Tests hold it equal to SciPy's
    ``stats.logrank``."""
    out: list[float | None] = [None] * len(pairs)
    batch: list[int] = []
    held = 0
    for i, (x, y) in enumerate(pairs):
        if not (x.n and y.n):
            continue
        if batch and held + x.n + y.n > _BATCH:
            _logrank_batch(pairs, batch, out)
            batch, held = [], 0
        batch.append(i)
        held += x.n + y.n
    if batch:
        _logrank_batch(pairs, batch, out)
    return out


_BATCH = 1 << 17


def _logrank_batch(pairs: Sequence[tuple[Sample, Sample]], tested: list[int],
                   out: list[float | None]) -> None:
    """The tests of ``pairs[i]`` for each ``i`` of ``tested`` (none empty), into ``out[i]``."""
    import numpy as np

    n_x = np.asarray([pairs[i][0].n for i in tested], dtype=np.int64)
    n_y = np.asarray([pairs[i][1].n for i in tested], dtype=np.int64)
    size = n_x + n_y
    start = np.concatenate([[0], np.cumsum(size)[:-1]]).astype(np.int64)
    # Each pair's probes in time order, x before y at a tie: a stable sort of each pair's two
    # sorted runs is one merge (a sort of every pair's probes at once would be a full sort).
    merged_times, merged_x, merged_answered = [], [], []
    for i in tested:
        x, y = pairs[i]
        pooled = np.concatenate([x.times, y.times])
        order = np.argsort(pooled, kind="stable")
        merged_times.append(pooled[order])
        merged_x.append(order < x.n)
        merged_answered.append(np.concatenate([x.events, y.events])[order])
    times = np.concatenate(merged_times)
    in_x = np.concatenate(merged_x).astype(np.int64)
    answered = np.concatenate(merged_answered).astype(np.int64)

    def before(flags: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """How many flagged probes sort before each one (over all pairs)."""
        return np.concatenate([[0], np.cumsum(flags)])

    # The first probe of each distinct time of a pair (NaN equal to NaN, as numpy.unique holds
    # them), and the first of the next: each time's probes lie between.
    same = (times[1:] == times[:-1]) | (np.isnan(times[1:]) & np.isnan(times[:-1]))
    same[start[1:] - 1] = False  # a pair's first probe starts a time of its own
    bounds = np.flatnonzero(np.concatenate([[True], ~same, [True]]))
    first, after = bounds[:-1], bounds[1:]
    answers, answers_x, xs = before(answered), before(answered * in_x), before(in_x)
    d, d_x = answers[after] - answers[first], answers_x[after] - answers_x[first]
    at = d > 0
    d, d_x, first = d[at], d_x[at], first[at]
    owner = np.searchsorted(start, first, side="right") - 1  # the pair of each time
    x_before = xs[first] - xs[start[owner]]
    d_y = d - d_x
    r_x = (n_x[owner] - x_before).astype(np.float64)
    r_y = (n_y[owner] - (first - start[owner] - x_before)).astype(np.float64)
    r, d = r_x + r_y, (d_x + d_y).astype(np.float64)
    several = r > 1  # at r = 1 the term is 0/0, symbolically zero (as in SciPy)
    rs = r[several]
    terms = r_x[several] * r_y[several] * d[several] * (rs - d[several]) / (rs**2 * (rs - 1))
    expected = r_x * d / r
    # Where each pair's terms begin and end (the arrays are in pair order).
    pairs_at = np.searchsorted(owner, np.arange(len(tested) + 1))
    several_at = np.searchsorted(owner[several], np.arange(len(tested) + 1))
    for k, i in enumerate(tested):
        lo, hi = int(pairs_at[k]), int(pairs_at[k + 1])
        if lo == hi:
            continue  # no answer in either sample
        variance = float(np.sum(terms[several_at[k]:several_at[k + 1]]))
        if not variance > 0:
            continue
        z = (float(d_x[lo:hi].sum()) - float(np.sum(expected[lo:hi]))) / math.sqrt(variance)
        # p = 2 Φ(−|z|) = erfc(|z| / √2): the normal tail SciPy reports for the two-sided test.
        out[i] = math.erfc(abs(z) / math.sqrt(2))


def samples_by(frame: pl.DataFrame, keys: Sequence[str]) -> dict[tuple[object, ...], Sample]:
    """One :class:`Sample` per group of ``keys`` of log-rank samples (:func:`samples`).

    One sort of the frame by time, then a grouping: polars keeps each group's rows in frame
    order, so every group's times come out sorted without a sort by the (text) keys. A frame
    sorted by time already (polars flags the column) costs no sort at all: a caller grouping
    the same samples several ways sorts them once."""
    import numpy as np
    import polars as pl

    cols = list(keys)
    groups = (frame.lazy().select([*cols, "time", "event"]).sort("time")
              .group_by(cols).agg("time", "event", size=pl.len()).collect())
    ends = np.cumsum(groups["size"].to_numpy())
    times = groups["time"].explode().to_numpy()
    events = groups["event"].explode().to_numpy()
    out = {}
    start = 0
    for key, end in zip(groups.select(cols).iter_rows(), ends, strict=True):
        out[key] = Sample(times[start:end], events[start:end])
        start = int(end)
    return out


def median(x: Sample) -> float | None:
    """The KM median of a sample (an unknown cutoff, +inf, censors after every time)."""
    import numpy as np

    from mystery.analysis import km

    finite = x.times[np.isfinite(x.times)]
    last = float(finite.max()) + 1.0 if finite.size else 1.0
    curve = km.estimate_fast(np.where(np.isfinite(x.times), x.times, last), x.events)
    return curve.median() if curve is not None else None


def wilson(answered: int, probes: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson's score interval of a proportion (no continuity correction)."""
    z = NormalDist().inv_cdf(0.5 + level / 2)
    p = answered / probes
    centre = p + z * z / (2 * probes)
    spread = z * math.sqrt(p * (1 - p) / probes + z * z / (4 * probes * probes))
    scale = 1 + z * z / probes
    return (centre - spread) / scale, (centre + spread) / scale


def rate_change(
    answered_from: int | None, probes_from: int | None, answered_to: int | None,
    probes_to: int | None, level: float = LEVEL,
) -> tuple[float | None, float | None, float | None]:
    """(change, low, high) of response rate from one year to the next, Newcombe's hybrid
    score interval; all None when a count is unknown or a year has no probes."""
    if None in (answered_from, probes_from, answered_to, probes_to):
        return None, None, None
    assert answered_from is not None and probes_from is not None  # for the type checker
    assert answered_to is not None and probes_to is not None
    if probes_from == 0 or probes_to == 0:
        return None, None, None
    p1, p0 = answered_to / probes_to, answered_from / probes_from
    l1, u1 = wilson(answered_to, probes_to, level)
    l0, u0 = wilson(answered_from, probes_from, level)
    change = p1 - p0
    low = change - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    high = change + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    return change, low, high


def reading(
    p: float | None, median_from: float | None, median_to: float | None,
    change: float | None, low: float | None, high: float | None,
) -> str:
    """What the numbers allow, in words: a change only where the test or interval shows one."""
    if p is None:
        times = "times not tested (probe times are not known in both years)"
    elif p >= ALPHA:
        times = f"no detectable change in time to acknowledgement (log-rank p = {p:.3f})"
    else:
        way = ""
        if median_from is not None and median_to is not None and median_to != median_from:
            way = " faster" if median_to < median_from else " slower"
        times = f"acknowledged{way}: a detectable change (log-rank p = {p:.3g})"
    if change is None or low is None or high is None:
        rates = "response rate not compared (counts not known in both years)"
    elif low <= 0 <= high:
        rates = "no detectable change in response rate"
    else:
        way = "rose" if change > 0 else "fell"
        rates = f"response rate {way} by {abs(change) * 100:.1f} points"
    return f"{times}; {rates}"


def samples(timings: pl.DataFrame) -> pl.DataFrame:
    """Counted probes as log-rank samples: ``time`` (answer or censoring time) and ``event``."""
    import polars as pl

    answered = pl.col("status") == "answered"
    return timings.filter(pl.col("status") != "excluded").with_columns(
        event=answered,
        time=pl.when(answered).then(pl.col("ack_seconds"))
        .otherwise(pl.col("cutoff_seconds").fill_null(float("inf"))),
    )


def year_pairs(years: Sequence[int]) -> list[tuple[int, int]]:
    """Consecutive years of a channel: each year with the one before it in the series."""
    from itertools import pairwise

    return list(pairwise(sorted(set(years))))
