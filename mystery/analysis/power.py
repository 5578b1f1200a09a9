"""Power planning: how large a change in acknowledgement time a plan could detect, by simulation.

The question a researcher asks before a wave: "if brands got 20 % faster since last year, would
this study see it?" It is answered the way the year-on-year table will later test the change:
a two-sample log-rank test at α = 0.05 over every probe of the two years on one channel, with
unanswered probes censored. Nothing here assumes a distribution: each simulated year draws its
probes, with replacement, from a :class:`~mystery.timings.baseline.Baseline`'s times (last
year's own acknowledgement times, or the sandbox profiles laid out on their quantiles), so the
skew, the ties and the unanswered share of real data carry over.

What "a change" means, stated with every result: every acknowledgement time of the later year
is multiplied by one factor (a median 20 % faster is a factor 0.8; 20 % slower, 1.2); a probe
that never answered stays unanswered; a scaled time past the study's cutoff becomes unanswered,
censored at the cutoff. A scale moves the Kaplan–Meier median by the same factor.

Why a log-rank written here, beside SciPy's ``stats.logrank`` (which the tests hold it equal
to): a power search runs the test tens of thousands of times on small samples, and one SciPy
call costs about 0.3 ms, which is most of ten seconds per search. This one runs a whole batch
of simulated studies as one set of NumPy array operations, with the same tie convention
(a probe censored at a time is still at risk at it) and the same statistic.

Common random numbers: for one sample size the same draws serve every factor tried, so power
is a smooth, nearly monotone function of the factor and a bisection finds the crossing of 80 %
without Monte Carlo noise moving it back and forth. Every draw comes from a generator seeded
by the study's seed, the channel, the sample size and the batch: the same output on every
machine (NumPy's generators are the same everywhere; only a statistic within a rounding error
of the critical value could differ, and the figures are printed rounded).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from mystery.timings.baseline import Baseline

ALPHA = 0.05
TARGET = 0.8
MAX_PER_BRAND = 1000
"""The most probes per brand a study file allows (``schedule.probes_per_brand``)."""
FASTEST, SLOWEST = 0.01, 100.0
"""The factors searched: from 100 times faster to 100 times slower."""
_STEPS = 14  # bisection steps on log(factor): (log 100) / 2**14, a factor known to 0.03 %
_CELLS = 2_000_000  # array cells per batch of simulated studies (a few tens of MB)

Direction = Literal["faster", "slower"]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Detectable:
    """The smallest change in one direction that the plan detects with 80 % power.

    ``factor`` is None when not even a hundredfold change is detected that often; ``power``
    is then the power at that extreme."""

    channel: str
    direction: Direction
    factor: float | None
    power: float
    power_se: float
    probes_before: int
    probes_after: int

    @property
    def change(self) -> float | None:
        """The change in median as a signed share: -0.25 for 25 % faster."""
        return None if self.factor is None else self.factor - 1.0


@dataclass(frozen=True)
class Needed:
    """How many probes per brand detect a named change with 80 % power (None: not within
    ``MAX_PER_BRAND``), and the power this plan has for it."""

    channel: str
    direction: Direction
    factor: float
    per_brand: int | None
    power: float
    power_se: float
    probes_before: int
    probes_after: int
    plan_power: float
    plan_power_se: float


@dataclass(frozen=True)
class PowerReport:
    """What ``mystery plan --power`` shows, with what it assumed."""

    baselines: list[Baseline]
    simulations: int
    detectable: list[Detectable]
    needed: list[Needed]
    detect: float | None


def baseline_median(baseline: Baseline) -> float | None:
    """The Kaplan–Meier median, in seconds, of the times a baseline expects; None when fewer
    than half answer."""
    from mystery.analysis.km import estimate_fast

    curve = estimate_fast(baseline.times, baseline.answered)
    return curve.median() if curve is not None else None


def monte_carlo_se(power: float, simulations: int) -> float:
    """The standard error of a rejection rate estimated from ``simulations`` studies."""
    return math.sqrt(max(power * (1.0 - power), 0.0) / simulations)


def logrank_z(
    times: npt.NDArray[np.float64], answered: npt.NDArray[np.bool_],
    later: npt.NDArray[np.bool_],
) -> npt.NDArray[np.float64]:
    """The log-rank statistic of each row (one simulated study): (observed − expected answers
    of the ``later`` group) / its standard deviation, as ``scipy.stats.logrank(x=later,
    y=earlier).statistic``; 0 where no answer makes it defined. Positive: the later year
    answered sooner."""
    import numpy as np

    order = np.argsort(times, axis=1)  # ties are grouped below, so their order is immaterial
    t = np.take_along_axis(times, order, axis=1).ravel()
    code = np.take_along_axis(answered.astype(np.int8) + 2 * later.astype(np.int8), order,
                              axis=1).ravel()  # one gather for both flags
    e, x = (code & 1).astype(bool), code >= 2
    rows, n = times.shape
    # One flat pass over every row: a tie (equal times in one row) is one group.
    starts = np.ones(t.size, dtype=bool)
    starts[1:] = t[1:] != t[:-1]
    starts[::n] = True  # a row never continues the one before it
    first = np.flatnonzero(starts)
    ex = e & x
    deaths = np.add.reduceat(e, first).astype(np.float64)
    later_deaths = np.add.reduceat(ex, first).astype(np.float64)
    row = first // n
    at_risk = (n - first % n).astype(np.float64)  # everyone at or after it, censored too
    # Later-year probes before each position, counted across rows (a row's own start subtracted).
    later_before: npt.NDArray[np.int64] = np.cumsum(x) - x
    later_total = x.reshape(rows, n).sum(axis=1)
    later_risk = later_total[row] - (later_before[first] - later_before[row * n])
    share = later_risk / at_risk
    excess = later_deaths - deaths * share
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.where(at_risk > 1, deaths * share * (1 - share) * (at_risk - deaths)
                          / np.maximum(at_risk - 1, 1), 0.0)
    row_start = np.searchsorted(row, np.arange(rows))
    observed_less_expected = np.add.reduceat(excess, row_start)
    variance = np.add.reduceat(spread, row_start)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(variance > 0, observed_less_expected / np.sqrt(variance), 0.0)
    return np.asarray(z, dtype=np.float64)


class _Draws:
    """The simulated studies of one sample size, drawn afresh for every factor tried from
    the same seeds (common random numbers), a batch at a time: memory stays within
    ``_CELLS`` array cells however many probes a year has."""

    def __init__(self, baseline: Baseline, per_brand: int, simulations: int, seed: int,
                 label: str) -> None:
        self.baseline = baseline
        self.sizes = baseline.sizes(per_brand)
        self.simulations = simulations
        self.entropy = [seed & 0xFFFFFFFF, per_brand, *label.encode("utf-8")]
        self.critical = _critical()

    def power(self, factor: float) -> float:
        """The share of simulated studies whose log-rank test rejects "no change" at α when
        the later year's times are scaled by ``factor``."""
        import numpy as np

        b = self.baseline
        n_before, n_after = self.sizes
        later = np.concatenate([np.zeros(n_before, bool), np.ones(n_after, bool)])
        step = max(1, _CELLS // max(1, n_before + n_after))
        rejected = 0
        for batch, start in enumerate(range(0, self.simulations, step)):
            rows = min(step, self.simulations - start)
            rng = np.random.default_rng(np.random.SeedSequence([*self.entropy, batch]))
            i = rng.integers(0, b.times.size, size=(rows, n_before))
            j = rng.integers(0, b.times.size, size=(rows, n_after))
            after_e = b.answered[j]
            scaled = np.where(after_e, b.times[j] * factor, b.cutoff_seconds)
            answered = after_e & (scaled <= b.cutoff_seconds)
            times = np.concatenate([b.times[i], np.minimum(scaled, b.cutoff_seconds)], axis=1)
            events = np.concatenate([b.answered[i], answered], axis=1)
            z = logrank_z(times, events, np.broadcast_to(later, times.shape))
            rejected += int((np.abs(z) > self.critical).sum())
        return rejected / self.simulations


def rejection_rate(baseline: Baseline, factor: float, *, per_brand: int | None = None,
                   simulations: int = 1000, seed: int = 0) -> float:
    """The share of simulated pairs of years in which the log-rank test rejects "no change"
    when this plan's times are scaled by ``factor``: the size of the test at 1, its power
    elsewhere. ``per_brand`` defaults to the plan's."""
    k = baseline.per_brand if per_brand is None else per_brand
    return _Draws(baseline, k, simulations, seed, baseline.channel).power(factor)


def _critical() -> float:
    """|z| beyond which the two-sided log-rank p-value is below α (the standard library's
    normal quantile: importing scipy.stats would cost a CLI run a second)."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(1 - ALPHA / 2)


def _smallest(draws: _Draws, direction: Direction, tick: Callable[[], None]) -> tuple[
        float | None, float]:
    """The factor nearest 1 whose power reaches the target, and its power."""
    import math

    extreme = FASTEST if direction == "faster" else SLOWEST
    power = draws.power(extreme)
    tick()
    if power < TARGET:
        return None, power
    near, far = 0.0, math.log(extreme)  # log factors: power < target at near, ≥ at far
    found = power
    for _ in range(_STEPS):
        middle = (near + far) / 2
        p = draws.power(math.exp(middle))
        tick()
        if p >= TARGET:
            far, found = middle, p
        else:
            near = middle
    return math.exp(far), found


def _needed(baseline: Baseline, factor: float, simulations: int, seed: int,
            tick: Callable[[], None]) -> tuple[int | None, float, tuple[int, int]]:
    """The fewest probes per brand whose power for ``factor`` reaches the target; None when
    even ``MAX_PER_BRAND`` does not.

    Doubling from this plan's count, then halving, brackets it to 10 % on a fifth of the
    simulations (a study's cost grows with its probes, and these steps are far from the
    answer); halving that bracket with every simulation then stops within 5 % (the Monte Carlo
    error of a power near 80 % moves the answer about half as much) and answers its upper end: a
    count whose power reached the target with every simulation."""
    scout = max(100, simulations // 5)

    def power_at(k: int, n: int) -> tuple[float, tuple[int, int]]:
        draws = _Draws(baseline, k, n, seed, baseline.channel)
        tick()
        return draws.power(factor), draws.sizes

    k = baseline.per_brand
    low = 0
    while power_at(k, scout)[0] < TARGET:
        if k >= MAX_PER_BRAND:
            power, sizes = power_at(k, simulations)
            return None, power, sizes
        low, k = k, min(MAX_PER_BRAND, k * 2)
    high = k
    while high - low > max(1, high // 10):  # power < target at low (or low is 0), ≥ at high
        middle = (low + high) // 2
        if power_at(middle, scout)[0] >= TARGET:
            high = middle
        else:
            low = middle
    best = power_at(high, simulations)
    while best[0] < TARGET:  # the scouts' luck: widen the bracket, with every simulation
        if high >= MAX_PER_BRAND:
            return None, best[0], best[1]
        low, high = high, min(MAX_PER_BRAND, high + max(1, high // 10))
        best = power_at(high, simulations)
    while high - low > max(1, high // 20):
        middle = (low + high) // 2
        found = power_at(middle, simulations)
        if found[0] >= TARGET:
            high, best = middle, found
        else:
            low = middle
    return high, best[0], best[1]


def plan_power(
    baselines: Sequence[Baseline], *, simulations: int = 1000, seed: int = 0,
    detect: float | None = None, on_progress: Progress | None = None,
) -> PowerReport:
    """For each channel, the smallest change (faster and slower) that this plan detects with
    80 % power; with ``detect`` (a share, 0.2 for 20 %), also the probes per brand that detect
    a change that large in each direction.

    ``seed`` is the study's plan seed, so the same study gives the same figures everywhere.
    ``on_progress(done, total)`` is told after each batch of simulated studies; the total is
    an upper bound (a search may stop early)."""
    steps_each = 2 * (_STEPS + 1) + (2 * 18 if detect is not None else 0)
    total = steps_each * len(baselines)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if on_progress is not None:
            on_progress(min(done, total), total)

    detectable: list[Detectable] = []
    needed: list[Needed] = []
    for baseline in baselines:
        draws = _Draws(baseline, baseline.per_brand, simulations, seed, baseline.channel)
        before, after = draws.sizes
        for direction in ("faster", "slower"):
            factor, power = _smallest(draws, direction, tick)
            detectable.append(Detectable(baseline.channel, direction, factor, power,
                                         monte_carlo_se(power, simulations), before, after))
        if detect is None:
            continue
        named: tuple[tuple[Direction, float], ...] = (("faster", 1.0 - detect),
                                                      ("slower", 1.0 + detect))
        for direction, factor in named:
            plan_p = draws.power(factor)
            k, p, (n_before, n_after) = _needed(baseline, factor, simulations, seed, tick)
            needed.append(Needed(baseline.channel, direction, factor, k, p,
                                 monte_carlo_se(p, simulations), n_before, n_after, plan_p,
                                 monte_carlo_se(plan_p, simulations)))
    if on_progress is not None:
        on_progress(total, total)
    return PowerReport(list(baselines), simulations, detectable, needed, detect)
