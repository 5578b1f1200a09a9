"""Change between years: log-rank equal to SciPy's, Newcombe's interval on the paper's examples,
and what yoy.csv, changes.csv and panel.csv say on the committed uk-retail waves."""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats

from mystery.analysis import change

ROOT = Path(__file__).resolve().parents[2]


def _scipy_logrank(later: pl.DataFrame, earlier: pl.DataFrame) -> float:
    x = stats.CensoredData.right_censored(later["time"].to_numpy(), ~later["event"].to_numpy())
    y = stats.CensoredData.right_censored(earlier["time"].to_numpy(),
                                          ~earlier["event"].to_numpy())
    return float(stats.logrank(x, y).pvalue)


def test_logrank_equals_scipy_on_random_censored_pairs_with_ties() -> None:
    rng = np.random.default_rng(3)
    rows = []
    for group in range(120):
        for later in (False, True):
            for _ in range(int(rng.integers(1, 30))):
                answered = bool(rng.random() < 0.7)
                cutoff = float(rng.choice([20, 30, 60]))  # censoring before some answers too
                time = min(float(rng.integers(1, 40)), cutoff) if answered else cutoff
                rows.append((group, later, time, answered))
    df = pl.DataFrame(rows, schema=["group", "later", "time", "event"], orient="row")
    by = change.samples_by(df, ["group", "later"])
    for group in range(120):
        part = df.filter(pl.col("group") == group)
        expected = _scipy_logrank(part.filter(pl.col("later")), part.filter(~pl.col("later")))
        got = change.logrank_p(by[(group, True)], by[(group, False)])
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-15), group
        # One sort per group or a sort per sample: the same test.
        again = change.sample(part.filter(~pl.col("later"))["time"],
                              part.filter(~pl.col("later"))["event"])
        assert change.logrank_p(by[(group, True)], again) == got


def test_many_tests_in_one_pass_equal_each_test_alone_to_the_last_bit() -> None:
    """A series runs its thousands of tests in one pass: each p must be the very float of its
    test run alone, whatever the pairs beside it (empty, all censored, ties across pairs)."""
    rng = np.random.default_rng(11)

    def random_sample() -> change.Sample:
        n = int(rng.integers(0, 25))
        answered = rng.random(n) < 0.6
        times = np.where(answered, rng.integers(1, 30, n), rng.choice([20, 30], n))
        return change.sample(times.astype(float), answered)

    pairs = [(random_sample(), random_sample()) for _ in range(300)]
    pairs.append((change.sample([5.0, 9.0], [False, False]), change.sample([7.0], [False])))
    together = change.logrank_many(pairs)
    alone = [change.logrank_many([pair])[0] for pair in pairs]
    assert together == alone
    assert any(p is None for p in together) and sum(p is not None for p in together) > 200
    for (x, y), p in zip(pairs[:40], together, strict=False):
        if p is not None:  # and each is the test SciPy computes
            expected = stats.logrank(stats.CensoredData.right_censored(x.times, ~x.events),
                                     stats.CensoredData.right_censored(y.times, ~y.events))
            assert p == pytest.approx(float(expected.pvalue), rel=1e-9, abs=1e-15)


def test_logrank_is_empty_when_undefined() -> None:
    answered = change.sample([1.0, 2.0], [True, False])
    nobody = change.sample([9.0], [False])
    assert change.logrank_p(answered, change.sample([], [])) is None
    assert change.logrank_p(nobody, change.sample([9.0], [False])) is None


@pytest.mark.parametrize(("a1", "n1", "a2", "n2", "low", "high"), [
    # Newcombe (1998), Statistics in Medicine 17:873–890, Table II, method 10.
    (56, 70, 48, 80, 0.0524, 0.3339),
    (9, 10, 3, 10, 0.1705, 0.8090),
    (6, 7, 2, 7, 0.0582, 0.8062),
    (5, 56, 0, 29, -0.0381, 0.1926),
    (0, 10, 0, 20, -0.1611, 0.2775),
])
def test_rate_change_is_newcombes_hybrid_score_interval(
    a1: int, n1: int, a2: int, n2: int, low: float, high: float
) -> None:
    # rate_change(from, to): the change is to − from, so the paper's p1 is "to".
    delta, got_low, got_high = change.rate_change(a2, n2, a1, n1)
    assert delta == pytest.approx(a1 / n1 - a2 / n2)
    assert got_low == pytest.approx(low, abs=5e-5)
    assert got_high == pytest.approx(high, abs=5e-5)


def test_wilson_interval_by_hand() -> None:
    # 14 of 15, z = 1.96: (p + z²/2n ± z√(p(1−p)/n + z²/4n²)) / (1 + z²/n).
    z = 1.959963984540054
    p, n = 14 / 15, 15
    centre, spread = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low, high = change.wilson(14, 15)
    assert low == pytest.approx((centre - spread) / (1 + z * z / n), rel=1e-12)
    assert high == pytest.approx((centre + spread) / (1 + z * z / n), rel=1e-12)
    assert change.rate_change(None, 15, 3, 3) == (None, None, None)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _waves() -> pl.DataFrame:
    frames = [pl.read_csv(ROOT / "results" / f"uk-retail-{y}" / "timings.csv",
                          schema_overrides={"cutoff_seconds": pl.Float64,
                                            "ack_seconds": pl.Float64})
              for y in (2025, 2026)]
    return pl.concat(frames).filter(pl.col("status") != "excluded")


def _km_reference(part: pl.DataFrame) -> tuple[float | None, float | None, float | None]:
    """The median and its 95 % interval from SciPy alone (log-log band read at ½)."""
    answered = (part["status"] == "answered").to_numpy()
    t = np.where(answered, part["ack_seconds"].fill_null(0).to_numpy(),
                 part["cutoff_seconds"].to_numpy())
    sf = stats.ecdf(stats.CensoredData.right_censored(t, ~answered)).sf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        band = sf.confidence_interval(0.95, method="log-log")

    def first(values: np.ndarray) -> float | None:
        hits = [q for q, v in zip(sf.quantiles, values, strict=True) if v <= 0.5]
        return float(hits[0]) if hits else None

    return first(sf.probabilities), first(band.low.probabilities), first(band.high.probabilities)


def _minutes(cell: str) -> float | None:
    return float(cell) if cell else None


def test_committed_yoy_medians_intervals_and_logrank_equal_scipy() -> None:
    waves = _waves()
    yoy = {(int(r["year"]), r["channel"]): r for r in _rows(ROOT / "results/uk-retail/yoy.csv")}
    for (year, channel), part in waves.partition_by(["year", "channel"], as_dict=True).items():
        row = yoy[(int(year), str(channel))]
        expected = _km_reference(part)
        shown = (row["median_minutes"], row["median_ci_low_minutes"],
                 row["median_ci_high_minutes"])
        for cell, seconds in zip(shown, expected, strict=True):
            assert seconds is not None
            assert _minutes(cell) == pytest.approx(seconds / 60, abs=0.05)
    answered = pl.col("status") == "answered"
    s = waves.with_columns(event=answered, time=pl.when(answered).then("ack_seconds")
                           .otherwise("cutoff_seconds"))
    p = _scipy_logrank(s.filter(pl.col("year") == 2026), s.filter(pl.col("year") == 2025))
    assert float(yoy[(2026, "x")]["logrank_p"]) == pytest.approx(p, abs=5e-7)
    # Every brand is in both waves: the panel is all of them, and its test the same.
    assert yoy[(2026, "x")]["panel_brands"] == "10"
    assert float(yoy[(2026, "x")]["panel_logrank_p"]) == pytest.approx(p, abs=5e-7)
    # 2014 has published brand figures only: no probe times, no test; its counts allow a rate
    # change (14 of 15 in 2014, 25 of 30 in 2025) with Newcombe's interval.
    assert yoy[(2025, "x")]["logrank_p"] == ""
    delta, low, high = change.rate_change(14, 15, 25, 30)
    assert (delta, low, high) is not None
    assert float(yoy[(2025, "x")]["rate_change"]) == pytest.approx(delta, abs=5e-5)
    assert float(yoy[(2025, "x")]["rate_change_ci_low"]) == pytest.approx(low, abs=5e-5)
    assert float(yoy[(2025, "x")]["rate_change_ci_high"]) == pytest.approx(high, abs=5e-5)


def test_committed_panel_tests_each_brand_against_its_previous_year() -> None:
    waves = _waves()
    answered = pl.col("status") == "answered"
    s = waves.with_columns(event=answered, time=pl.when(answered).then("ack_seconds")
                           .otherwise("cutoff_seconds"))
    tested = 0
    for row in _rows(ROOT / "results/uk-retail/panel.csv"):
        if row["year"] != "2026":
            assert row["logrank_p"] == ""
            continue
        brand = s.filter(pl.col("brand") == row["brand"])
        later, earlier = brand.filter(pl.col("year") == 2026), brand.filter(pl.col("year") == 2025)
        p = _scipy_logrank(later, earlier)
        assert float(row["logrank_p"]) == pytest.approx(p, abs=5e-7)
        tested += 1
    assert tested == 10
