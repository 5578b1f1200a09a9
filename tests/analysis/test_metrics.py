"""Metrics on a fixture small enough to compute by hand: every expected value is worked out in
the comments, so a failure says which rule broke."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest

from mystery.analysis import metrics, series
from mystery.timings import brandrows
from mystery.timings import schema as timings

WEEK = 604800.0


def probe(brand: str, year: int, ack: float | None, *, cutoff: float = WEEK, question: str = "q",
          res: float | None = None, status: str | None = None) -> dict[str, Any]:
    return {
        "study": f"fx-{year}", "series": "fx", "year": year, "brand": brand, "sector": "grocery",
        "country": "UK", "channel": "x", "question": question,
        "sent_at": datetime(year, 3, 3, 10, tzinfo=UTC), "ack_seconds": ack,
        "resolution_seconds": res,
        "status": status or ("answered" if ack is not None else "unanswered"),
        "cutoff_seconds": cutoff,
    }


def brand_row(brand: str, year: int, probes: int, answered: int, minutes: float | None) \
        -> dict[str, Any]:
    return {
        "study": f"published-{year}", "series": "fx", "year": year, "brand": brand,
        "sector": "grocery", "country": "UK", "channel": "x", "probes": probes,
        "answered": answered, "response_rate": answered / probes,
        "mean_ack_seconds": None if minutes is None else minutes * 60, "cutoff_seconds": None,
    }


@pytest.fixture
def fixture() -> tuple[pl.DataFrame, pl.DataFrame]:
    rows = [
        # 2025, probe times. Alpha answers all three: mean 160 s, KM median = 2nd of 3 = 120 s.
        probe("Alpha", 2025, 60, question="a"), probe("Alpha", 2025, 120, question="b"),
        probe("Alpha", 2025, 300, question="c"),
        # Beta answers one of three: not ranked; KM median none (2 of 3 still waiting).
        probe("Beta", 2025, 600, question="a"), probe("Beta", 2025, None, question="b"),
        probe("Beta", 2025, None, question="c"),
        # Gamma answers all four: mean (1800+3600+7200+90000)/4 = 25650 s; median 2nd = 3600.
        *(probe("Gamma", 2025, t, question=str(t)) for t in (1800, 3600, 7200, 90000)),
        # 2026, censoring before answers: answered at 100, 400, 500; unanswered probes with
        # cutoffs of 50 and 60 s. KM: at 100 s 3 at risk, S = 2/3; at 400 s 2 at risk,
        # S = 1/3 <= 1/2, so the median is 400 s (ignoring censoring would say 500 s).
        probe("Eps", 2026, 100, question="a"), probe("Eps", 2026, None, cutoff=50, question="b"),
        probe("Eps", 2026, None, cutoff=60, question="c"), probe("Eps", 2026, 400, question="d"),
        probe("Eps", 2026, 500, question="e"),
        # An excluded probe counts nowhere.
        probe("Eps", 2026, None, status="excluded", question="f"),
    ]
    published = [
        # 2014, published brand figures only.
        brand_row("Alpha", 2014, 3, 3, 10), brand_row("Beta", 2014, 3, 2, 30),
        brand_row("Gamma", 2014, 2, 2, 60),
        # 2025: Delta is known only from a published mean, beside probe-level brands.
        brand_row("Delta", 2025, 2, 2, 20),
    ]
    return timings.frame(rows), brandrows.frame(published)


def test_brand_figures_by_hand(fixture: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    t, b = fixture
    m = metrics.brand_metrics(t, b)
    got = {(r["year"], r["brand"]): r for r in m.iter_rows(named=True)}
    alpha = got[(2025, "Alpha")]
    assert (alpha["probes"], alpha["answered"], alpha["response_rate"]) == (3, 3, 1.0)
    assert alpha["mean_ack_seconds"] == 160
    assert alpha["median_ack_seconds"] == 120
    assert alpha["within_1h"] == 1.0
    beta = got[(2025, "Beta")]
    assert (beta["answered"], beta["mean_ack_seconds"]) == (1, 600)
    assert beta["median_ack_seconds"] is None
    assert beta["response_rate"] == pytest.approx(1 / 3)
    gamma = got[(2025, "Gamma")]
    assert (gamma["mean_ack_seconds"], gamma["median_ack_seconds"]) == (25650, 3600)
    assert (gamma["within_1h"], gamma["within_24h"]) == (0.5, 0.75)
    eps = got[(2026, "Eps")]
    assert (eps["probes"], eps["answered"], eps["median_ack_seconds"]) == (5, 3, 400)
    # Within 1 h cannot be known: two probes waited less than an hour.
    assert eps["within_1h"] is None
    delta = got[(2025, "Delta")]
    assert (delta["mean_ack_seconds"], delta["median_ack_seconds"], delta["probe_level"]) == (
        1200, None, False)


def test_year_on_year_by_hand(fixture: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    t, b = fixture
    tables = series.tables(t, b, {"fx-2025": True})
    yoy = {r["year"]: r for r in tables.yoy.iter_rows(named=True)}
    # 2014: 3 + 3 + 2 probes, 3 + 2 + 2 answered; Beta answered 2 of 3, so it is not ranked.
    assert (yoy[2014]["brands"], yoy[2014]["probes"], yoy[2014]["answered"]) == (3, 8, 7)
    assert yoy[2014]["response_rate"] == 7 / 8
    assert (yoy[2014]["fastest_brand"], yoy[2014]["fastest_seconds"]) == ("Alpha", 600)
    assert (yoy[2014]["slowest_brand"], yoy[2014]["slowest_seconds"]) == ("Gamma", 3600)
    assert yoy[2014]["median_ack_seconds"] is None
    # 2025 mixes probe times (Alpha, Beta, Gamma) and a published brand row (Delta):
    # 3 + 3 + 4 + 2 = 12 probes, 3 + 1 + 4 + 2 = 10 answered.
    assert (yoy[2025]["brands"], yoy[2025]["probes"], yoy[2025]["answered"]) == (4, 12, 10)
    assert (yoy[2025]["fastest_brand"], yoy[2025]["fastest_seconds"]) == ("Alpha", 160)
    assert (yoy[2025]["slowest_brand"], yoy[2025]["slowest_seconds"]) == ("Gamma", 25650)
    # A median over all probes needs every probe's time; Delta's are not known.
    assert (yoy[2025]["median_ack_seconds"], yoy[2025]["within_1h"]) == (None, None)
    assert yoy[2026]["median_ack_seconds"] == 400
    unranked = {(r["year"], r["brand"]): r["reason"] for r in tables.unranked.iter_rows(named=True)}
    assert unranked == {(2014, "Beta"): "did not answer every probe",
                        (2025, "Beta"): "did not answer every probe",
                        (2026, "Eps"): "did not answer every probe"}
    assert series.synthetic_years(tables.sources) == {2014: False, 2025: True, 2026: False}


def test_pooled_mean_weights_brand_rows_by_their_answered_probes(
    fixture: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    t, b = fixture
    cells = metrics.summarise(t, b, ["year"])
    by_year = {r["year"]: r for r in cells.iter_rows(named=True)}
    # 2014: (10 min × 3 + 30 min × 2 + 60 min × 2) / 7 answered = 30 min.
    assert by_year[2014]["mean_ack_seconds"] == pytest.approx(1800)
    # 2025: probe answers 60+120+300+600+1800+3600+7200+90000 = 103680, Delta 1200 × 2;
    # (103680 + 2400) / 10 = 10608 s.
    assert by_year[2025]["mean_ack_seconds"] == pytest.approx(10608)


def test_brand_stat_median_ranks_only_brands_with_a_known_median(
    fixture: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    t, b = fixture
    tables = series.tables(t, b, {}, brand_stat="median")
    row = tables.yoy.filter(pl.col("year") == 2025).row(0, named=True)
    assert (row["fastest_brand"], row["fastest_seconds"]) == ("Alpha", 120)
    assert (row["slowest_brand"], row["slowest_seconds"]) == ("Gamma", 3600)
    reasons = {r["brand"]: r["reason"] for r in
               tables.unranked.filter(pl.col("year") == 2025).iter_rows(named=True)}
    assert reasons == {"Beta": "did not answer every probe", "Delta": "no median time known"}


def test_ties_name_every_fastest_brand() -> None:
    t = timings.frame([probe("B", 2025, 60, question="1"), probe("A", 2025, 60, question="2")])
    yoy = series.tables(t, brandrows.empty(), {}).yoy.row(0, named=True)
    assert yoy["fastest_brand"] == "A; B"


def test_panel_change_only_between_fully_answered_years(
    fixture: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    t, b = fixture
    panel = series.tables(t, b, {}).panel
    changes = {(r["brand"], r["year"]): r["change"] for r in panel.iter_rows(named=True)}
    assert changes[("Alpha", 2025)] == 160 - 600
    assert changes[("Gamma", 2025)] == 25650 - 3600
    assert changes[("Beta", 2025)] is None  # partly answered in both years


def test_resolution_median_is_censored_at_the_cutoff() -> None:
    rows = [probe("A", 2025, 60, res=120, question="1"), probe("A", 2025, 60, question="2"),
            probe("A", 2025, 60, res=300, question="3")]
    m = metrics.brand_metrics(timings.frame(rows), brandrows.empty()).row(0, named=True)
    # Resolved at 120 and 300 s, one never: S(120) = 2/3, S(300) = 1/3, median 300 s.
    assert m["median_resolution_seconds"] == 300
    assert m["resolved_rate"] == pytest.approx(2 / 3)


def test_channel_comparison_counts_only_brands_asked_on_two_channels() -> None:
    def on(channel: str, row: dict[str, Any]) -> dict[str, Any]:
        return {**row, "channel": channel}

    both_years = [
        # 2025: Alpha on x and email, Beta on x only, so the comparison counts Alpha alone.
        on("x", probe("Alpha", 2025, 60)), on("email", probe("Alpha", 2025, 600)),
        on("x", probe("Beta", 2025, 30)),
        # 2026: both brands on both channels, so the comparison counts every probe.
        on("x", probe("Alpha", 2026, 60)), on("email", probe("Alpha", 2026, 600)),
        on("x", probe("Beta", 2026, 30)), on("email", probe("Beta", 2026, None)),
    ]
    channels = series.tables(timings.frame(both_years), brandrows.empty(), {}).channels
    got = {(r["year"], r["channel"]): (r["brands"], r["probes"], r["answered"])
           for r in channels.iter_rows(named=True)}
    assert got == {(2025, "email"): (1, 1, 1), (2025, "x"): (1, 1, 1),
                   (2026, "email"): (2, 2, 1), (2026, "x"): (2, 2, 2)}
    # A series where every brand is on two channels takes the short way (the per-channel
    # table itself) and must give the same figures.
    only_2026 = timings.frame([r for r in both_years if r["year"] == 2026])
    alone = series.tables(only_2026, brandrows.empty(), {}).channels
    assert alone.equals(channels.filter(pl.col("year") == 2026))


def test_median_alone_equals_the_median_of_every_figure() -> None:
    # Exact groups and one where a short cutoff censors before an answer (the SciPy path).
    rows = [probe(b, 2025, ack, cutoff=cut, question=str(i))
            for i, (b, ack, cut) in enumerate([
                ("A", 60, WEEK), ("A", 600, WEEK), ("A", None, WEEK), ("B", None, 30),
                ("B", 90, WEEK), ("B", 120, WEEK), ("C", None, WEEK), ("C", 5, WEEK),
                ("C", None, WEEK), ("D", 7, WEEK), ("D", None, 10.0), ("D", 40, WEEK)])]
    df = timings.frame(rows)
    by = ["series", "year", "brand"]
    km_cols = ["median_ack_seconds", "median_ack_ci_low_seconds", "median_ack_ci_high_seconds"]
    full = metrics.summarise(df, brandrows.empty(), by).select([*by, *km_cols])
    assert metrics.median_ack(df, by).sort(by).equals(full)
    # B: censored at 30 s, then 90 and 120: S(90) = 1/2. D: S(7) = 2/3, censored at 10, S(40) = 0.
    assert full["median_ack_seconds"].to_list() == [600, 90, None, 40]


def test_groupings_summarised_together_equal_each_alone(
    fixture: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    """summarise_many runs its groupings as one batch of polars passes; each table is still
    exactly what summarise gives for that grouping alone, brand rows included."""
    t, b = fixture
    groupings = [["series", "year", "channel"], list(metrics.BRAND_KEYS),
                 ["series", "year", "channel", "sector"]]
    together = metrics.summarise_many(t, b, groupings)
    assert len(together) == len(groupings)
    for by, table in zip(groupings, together, strict=True):
        assert table.equals(metrics.summarise(t, b, by)), by
        assert table.height > 1
    medians = metrics.median_ack_many(t, groupings[:2])
    for by, table in zip(groupings[:2], medians, strict=True):  # in no order, as alone
        assert table.sort(by).equals(metrics.median_ack(t, by).sort(by)), by
    with pytest.raises(ValueError, match="cannot be grouped"):
        metrics.summarise_many(t, b, [["series"], ["series", "no_such_key"]])


def test_a_mean_is_the_same_float_whatever_order_the_probes_come_in() -> None:
    """Means are sums over many probes, and a float sum depends on the order polars' threads
    add it up in: the same timings once gave a mean of 136.474447 minutes and once 136.474448
    (the exact mean sat on the tie). Summed as whole milliseconds, every order gives the same
    float, which a CSV cell of six decimals needs."""
    import numpy as np

    rng = np.random.default_rng(5)
    n = 200_000
    df = pl.DataFrame({
        "study": "s", "series": "s", "year": 2026,
        "brand": [f"b{i % 400:03d}" for i in range(n)], "sector": None, "country": None,
        "channel": "x", "question": None,
        "sent_at": datetime(2026, 3, 2, tzinfo=UTC),
        "ack_seconds": rng.integers(1, 604_800_000, n) / 1000,
        "resolution_seconds": None, "status": "answered", "cutoff_seconds": 604_800.0,
        "account": None,
    }, schema=timings.full_schema())
    expected = metrics.summarise(df, brandrows.empty(), ["brand"])["mean_ack_seconds"]
    for seed in range(4):
        shuffled = df.sample(fraction=1.0, shuffle=True, seed=seed)
        got = metrics.summarise(shuffled, brandrows.empty(), ["brand"])["mean_ack_seconds"]
        assert got.to_list() == expected.to_list()
