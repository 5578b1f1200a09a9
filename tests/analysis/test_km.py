"""Kaplan–Meier medians: the vectorised path equals SciPy's estimate wherever it is used."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from mystery.analysis import km

samples = st.lists(
    st.tuples(st.integers(1, 50), st.booleans(), st.integers(1, 60)), min_size=1, max_size=25
)


@settings(max_examples=200, deadline=None)
@given(samples)
def test_vectorised_median_equals_scipy_when_it_claims_to_be_exact(
    rows: list[tuple[int, bool, int]],
) -> None:
    # (answer time, answered, cutoff); an answer never comes after its own cutoff.
    times = [float(min(t, c)) if a else float(c) for t, a, c in rows]
    answered = [a for _, a, _ in rows]
    df = pl.DataFrame({"time": times, "event": answered, "censor": [float(c) for *_, c in rows]})
    median, exact = km.median_expr(pl.col("time"), pl.col("event"), pl.col("censor"))
    got = df.select(median=median, exact=exact).row(0, named=True)
    expected = km.median(np.array(times), np.array(answered))
    if got["exact"]:
        assert got["median"] == expected
    else:
        # Censoring before an answer: only SciPy is right, and it may differ.
        assert any(not a and c < max(t for t, a2 in zip(times, answered, strict=True) if a2)
                   for (_, a, c) in rows)


def test_median_is_the_first_time_survival_reaches_one_half() -> None:
    # Four probes, two answered (60 s, 120 s), two censored at 1 day: S(120) = 1/2 exactly.
    assert km.median([60, 120, 86400, 86400], [True, True, False, False]) == 120
    # Fewer than half answered: no median.
    assert km.median([60, 86400, 86400], [True, False, False]) is None
    assert km.median([], []) is None


@settings(max_examples=200, deadline=None)
@given(samples)
def test_fast_curve_equals_scipy_curve(rows: list[tuple[int, bool, int]]) -> None:
    times = np.array([float(min(t, c)) if a else float(c) for t, a, c in rows])
    answered = np.array([a for _, a, _ in rows])
    grid = np.arange(0.0, 62.0, 0.5)
    fast, slow = km.estimate_fast(times, answered), km.estimate(times, answered)
    assert fast is not None and slow is not None
    np.testing.assert_allclose(fast.at(grid), slow.at(grid), rtol=0, atol=1e-12)
    assert fast.median() == slow.median()


def test_grouped_medians_equal_scipy_on_random_censored_groups() -> None:
    # Many groups at once, float times, censoring at or after each group's last answer (the
    # exact case) and before it (the fallback case); group sizes 1 to 40, odd and even.
    rng = np.random.default_rng(7)
    rows = []
    for group in range(400):
        n = int(rng.integers(1, 41))
        cutoff = float(rng.choice([600.0, 3600.0, 86400.0]))
        for _ in range(n):
            answered = bool(rng.random() < rng.random())
            censor = cutoff if group % 3 else float(rng.uniform(1.0, cutoff))
            time = float(rng.uniform(0.0, censor)) if answered else censor
            rows.append((group, time, answered, censor))
    df = pl.DataFrame(rows, schema=["group", "time", "event", "censor"], orient="row")
    median, exact = km.median_expr(pl.col("time"), pl.col("event"), pl.col("censor"))
    got = df.group_by("group").agg(median=median, exact=exact).sort("group")
    checked = 0
    for group, value, is_exact in got.iter_rows():
        part = df.filter(pl.col("group") == group)
        if is_exact:
            assert value == km.median(part["time"].to_numpy(), part["event"].to_numpy())
            checked += 1
    assert checked > 250


def _scipy_median_interval(
    times: list[float], answered: list[bool], level: float = 0.95
) -> tuple[float | None, float | None]:
    """The reference, from SciPy alone: each end is the first time its log-log band is ≤ ½."""
    import warnings

    from scipy import stats

    t, done = np.asarray(times, dtype=float), np.asarray(answered, dtype=bool)
    if not done.any():
        return None, None
    sf = stats.ecdf(stats.CensoredData.right_censored(t, ~done)).sf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ci = sf.confidence_interval(level, method="log-log")

    def first(band: np.ndarray) -> float | None:
        hits = [q for q, p in zip(sf.quantiles, band, strict=True) if p <= 0.5]
        return float(hits[0]) if hits else None

    return first(ci.low.probabilities), first(ci.high.probabilities)


@settings(max_examples=300, deadline=None)
@given(samples)
def test_median_interval_equals_scipy_log_log_band_read_at_one_half(
    rows: list[tuple[int, bool, int]],
) -> None:
    times = [float(min(t, c)) if a else float(c) for t, a, c in rows]
    answered = [a for _, a, _ in rows]
    low, high = km.median_interval(times, answered)
    assert (low, high) == _scipy_median_interval(times, answered)
    point = km.median(times, answered)
    if point is not None and low is not None:
        assert low <= point
    if point is not None and high is not None:
        assert point <= high


def test_median_interval_by_hand_on_ten_answered_probes() -> None:
    # Answers at 1..10 min, none censored: S(i) = 1 − i/10 and Greenwood's sum telescopes to
    # 1/(10 − i) − 1/10; the log-log band is S^exp(±z·se), se = √sum / |ln S|.
    z = 1.959963984540054
    low_band, high_band = [], []
    for i in range(1, 10):
        s = 1 - i / 10
        se = math.sqrt(1 / (10 - i) - 1 / 10) / abs(math.log(s))
        low_band.append(s ** math.exp(z * se))
        high_band.append(s ** math.exp(-z * se))
    low = next(i for i, b in enumerate(low_band, start=1) if b <= 0.5)
    high = next(i for i, b in enumerate(high_band, start=1) if b <= 0.5)
    assert (low, high) == (1, 8)  # the hand computation itself, pinned
    assert km.median_interval([60.0 * i for i in range(1, 11)], [True] * 10) == (60.0, 480.0)
    # A wider level widens the interval; a narrower one can only narrow it.
    low99, high99 = km.median_interval(range(1, 41), [True] * 40, level=0.99)
    low80, high80 = km.median_interval(range(1, 41), [True] * 40, level=0.80)
    assert low99 is not None and high99 is not None and low80 is not None and high80 is not None
    assert low99 < low80 < 20 < high80 < high99


def test_median_interval_leaves_undefined_ends_empty() -> None:
    assert km.median_interval([], []) == (None, None)
    assert km.median_interval([86400.0] * 5, [False] * 5) == (None, None)
    # Just over half answered: the upper band never reaches ½, so no high end.
    low, high = km.median_interval([10, 20, 30, 86400, 86400], [True, True, True, False, False])
    assert low == 10 and high is None
    # Three answered probes: the band is undefined at the last answer (S = 0).
    assert km.median_interval([1, 2, 3], [True] * 3) == (1.0, None)


def test_both_bands_fall_as_answers_accumulate_at_95_percent() -> None:
    # What makes a tie harmless to interval_ranks: each band only falls with i, for every n.
    z = km._z(0.95)
    for n in range(2, 2001):
        assert km.interval_is_rank(n)
        i = np.arange(1, n, dtype=float)
        log_s = np.log(1 - i / n)
        se = np.sqrt(i / (n * (n - i)) / log_s**2)
        for sign in (1.0, -1.0):
            band = np.exp(-np.exp(np.log(-log_s) + sign * z * se))
            assert np.all(np.diff(band) <= 0), n
    # At 99 % a band rises somewhere for n = 10: such sizes are left to SciPy.
    assert not km.interval_is_rank(10, 0.99)


def test_grouped_intervals_equal_scipy_on_random_groups_with_ties() -> None:
    rng = np.random.default_rng(11)
    rows = []
    for group in range(300):
        n = int(rng.integers(1, 60))
        share = rng.random()
        for _ in range(n):
            answered = bool(rng.random() < share)
            # Whole minutes: many ties between answers.
            rows.append((group, float(rng.integers(1, 30)) * 60 if answered else 86400.0,
                         answered))
    df = pl.DataFrame(rows, schema=["group", "time", "event"], orient="row")
    sizes = df.group_by("group").len()["len"].to_list()
    low, high = km.interval_expr(pl.col("time"), pl.col("event"), sizes)
    got = df.lazy().group_by("group").agg(low=low, high=high).collect().sort("group")
    defined = 0
    for group, lo, hi in got.iter_rows():
        part = df.filter(pl.col("group") == group)
        expected = _scipy_median_interval(part["time"].to_list(), part["event"].to_list())
        assert (lo, hi) == expected, group
        defined += lo is not None and hi is not None
    assert defined > 60


@settings(max_examples=200, deadline=None)
@given(samples)
def test_band_equals_scipy_curve_and_log_log_band(rows: list[tuple[int, bool, int]]) -> None:
    import warnings

    from scipy import stats

    times = np.array([float(min(t, c)) if a else float(c) for t, a, c in rows])
    answered = np.array([a for _, a, _ in rows])
    got = km.band(times, answered)
    assert got is not None
    sf = stats.ecdf(stats.CensoredData.right_censored(times, ~answered)).sf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ci = sf.confidence_interval(0.95, method="log-log")
    np.testing.assert_array_equal(got.times, sf.quantiles)
    np.testing.assert_allclose(got.survival, sf.probabilities, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got.low, ci.low.probabilities, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.high, ci.high.probabilities, rtol=1e-9, atol=1e-12)
    # A tick for every censoring time, at the curve's height there.
    assert sorted(got.censored.tolist()) == sorted(set(times[~answered].tolist()))
    grid = np.arange(0.0, 62.0, 0.5)
    waiting, _, _ = got.at(grid)
    np.testing.assert_allclose(waiting, sf.evaluate(grid), rtol=1e-12, atol=1e-15)
