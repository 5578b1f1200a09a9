"""Year-on-year tables of a series: what published surveys report, with the caveats kept.

The headline table (``yoy.csv``) has one row per year × channel and exactly the columns of
``YOY_COLS``. Its rules, which are the point of the table:

* a brand's time is its mean acknowledgement over answered probes (``brand_stat="mean"``, the
  figure published surveys quote) or its Kaplan–Meier median (``"median"``);
* fastest and slowest are chosen only among brands that answered **every** probe on that
  channel that year: a brand that ignored a question must not win "fastest" on the ones it
  answered. Partly-answering brands are listed beside the table with their response rate;
* column names say the brand statistic (``fastest_mean_minutes``, ``fastest_median_minutes``:
  :func:`named`); a brand whose response rate was not published is never "answered every
  probe": its completeness is unknown, so it is not ranked;
* the published side (``source``, a partial study's own totals, the extremes and average the
  study published) comes from :mod:`.reported`;
* ``median_minutes`` is the KM median over all probes of that year and channel, empty when
  fewer than half were answered or when any brand is known only from published brand rows;
* a column the data cannot support is empty, never estimated.

* ``median_minutes`` comes with its 95 % interval; the later year of each pair of consecutive
  years carries the log-rank test against the earlier one (all probes, and the panel of brands
  present in both) and the change in response rate with Newcombe's interval (:mod:`.change`).

Beside it: a sector table, a channel comparison (only brands asked on two or more channels
that year), the changes between consecutive years (``changes.csv``, in words too), a brand
panel (brands seen in two or more years, with each brand's change and its own test) and the
sources behind every year.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from mystery.analysis import change, metrics, reported
from mystery.analysis.tables import Col
from mystery.words import BrandStat

if TYPE_CHECKING:
    import polars as pl

YOY_COLS = (
    Col("series", "series"), Col("year", "year", "year", "Year"),
    Col("channel", "channel", header="Channel"), Col("source", "source", header="Source"),
    Col("brands", "brands", "int", "Brands"),
    Col("brands_listed", "brands_listed", "int", "Brands listed"),
    Col("listed", "listed", header="Listed"),
    Col("probes", "probes", "int", "Probes"), Col("answered", "answered", "int", "Answered"),
    Col("response_rate", "response_rate", "rate", "Response rate"),
    Col("fastest_brand", "fastest_brand", header="Fastest"),
    Col("fastest_seconds", "fastest_{stat}_minutes", "minutes", "Fastest time"),
    Col("slowest_brand", "slowest_brand", header="Slowest"),
    Col("slowest_seconds", "slowest_{stat}_minutes", "minutes", "Slowest time"),
    Col("median_ack_seconds", "median_minutes", "minutes", "Median, all probes"),
    Col("median_ack_ci_low_seconds", "median_ci_low_minutes", "minutes", "Median 95 % CI from"),
    Col("median_ack_ci_high_seconds", "median_ci_high_minutes", "minutes", "Median 95 % CI to"),
    Col("within_1h", "within_1h", "rate", "Within 1 h"),
    Col("within_24h", "within_24h", "rate", "Within 24 h"),
    Col("logrank_p", "logrank_p", "p", "Log-rank p (vs previous year)"),
    Col("panel_brands", "panel_brands", "int", "Panel brands"),
    Col("panel_logrank_p", "panel_logrank_p", "p", "Panel log-rank p"),
    Col("rate_change", "rate_change", "change", "Rate change"),
    Col("rate_change_ci_low", "rate_change_ci_low", "change", "Rate change 95 % CI from"),
    Col("rate_change_ci_high", "rate_change_ci_high", "change", "Rate change 95 % CI to"),
    Col("published_fastest_brand", "published_fastest_brand", header="Published fastest"),
    Col("published_fastest_seconds", "published_fastest_mean_minutes", "minutes",
        "Published fastest, mean"),
    Col("published_slowest_brand", "published_slowest_brand", header="Published slowest"),
    Col("published_slowest_seconds", "published_slowest_mean_minutes", "minutes",
        "Published slowest, mean"),
    Col("published_mean_seconds", "published_mean_minutes", "minutes", "Published mean"),
    Col("published_median_seconds", "published_median_minutes", "minutes",
        "Published median"),
)
#: The published side of ``yoy`` (:mod:`.reported`), shown apart in ``yoy.md``.
PUBLISHED_SOURCES = frozenset({"brands_listed", "listed", *(c.source for c in YOY_COLS
                                                             if c.source.startswith("published"))})
_GROUP_FIGURES = (
    Col("brands", "brands", "int", "Brands"), Col("probes", "probes", "int", "Probes"),
    Col("answered", "answered", "int", "Answered"),
    Col("response_rate", "response_rate", "rate", "Response rate"),
    Col("mean_ack_seconds", "mean_minutes_answered_only", "minutes", "Mean (answered only)"),
    Col("median_ack_seconds", "median_minutes", "minutes", "Median, all probes"),
    Col("median_ack_ci_low_seconds", "median_ci_low_minutes", "minutes", "95 % CI from"),
    Col("median_ack_ci_high_seconds", "median_ci_high_minutes", "minutes", "95 % CI to"),
    Col("within_1h", "within_1h", "rate", "Within 1 h"),
    Col("within_24h", "within_24h", "rate", "Within 24 h"),
)
_KEYS = (Col("series", "series"), Col("year", "year", "year", "Year"),
         Col("channel", "channel", header="Channel"))
SECTOR_COLS = (*_KEYS, Col("sector", "sector", header="Sector"), *_GROUP_FIGURES)
CHANNEL_COLS = (*_KEYS, *_GROUP_FIGURES)
PANEL_COLS = (
    Col("series", "series"), Col("brand", "brand", header="Brand"),
    Col("channel", "channel", header="Channel"), Col("year", "year", "year", "Year"),
    Col("probes", "probes", "int", "Probes"), Col("answered", "answered", "int", "Answered"),
    Col("response_rate", "response_rate", "rate", "Response rate"),
    Col("time", "{stat}_minutes", "minutes", "Time"),
    Col("change", "change_{stat}_minutes", "minutes", "Change since previous year"),
    Col("logrank_p", "logrank_p", "p", "Log-rank p"),
    Col("rate_change", "rate_change", "change", "Rate change"),
    Col("rate_change_ci_low", "rate_change_ci_low", "change", "95 % CI from"),
    Col("rate_change_ci_high", "rate_change_ci_high", "change", "95 % CI to"),
)
CHANGE_COLS = (
    Col("series", "series"), Col("channel", "channel", header="Channel"),
    Col("from_year", "from_year", "year", "From"), Col("to_year", "to_year", "year", "To"),
    Col("scope", "scope", header="Probes compared"),
    Col("brands_from", "brands_from", "int", "Brands (from)"),
    Col("brands_to", "brands_to", "int", "Brands (to)"),
    Col("probes_from", "probes_from", "int", "Probes (from)"),
    Col("probes_to", "probes_to", "int", "Probes (to)"),
    Col("median_from", "median_from_minutes", "minutes", "Median (from)"),
    Col("median_to", "median_to_minutes", "minutes", "Median (to)"),
    Col("logrank_p", "logrank_p", "p", "Log-rank p"),
    Col("rate_from", "rate_from", "rate", "Rate (from)"),
    Col("rate_to", "rate_to", "rate", "Rate (to)"),
    Col("rate_change", "rate_change", "change", "Rate change"),
    Col("rate_change_ci_low", "rate_change_ci_low", "change", "95 % CI from"),
    Col("rate_change_ci_high", "rate_change_ci_high", "change", "95 % CI to"),
    Col("reading", "reading", header="What the numbers allow"),
)
UNRANKED_COLS = (
    Col("year", "year", "year", "Year"), Col("channel", "channel", header="Channel"),
    Col("brand", "brand", header="Brand"), Col("answered", "answered", "int", "Answered"),
    Col("probes", "probes", "int", "Probes"),
    Col("response_rate", "response_rate", "rate", "Response rate"),
    Col("reason", "reason", header="Why not ranked"),
)
SOURCE_COLS = (
    Col("study", "study", header="Study"), Col("year", "year", "year", "Year"),
    Col("channels", "channels", header="Channels"), Col("kind", "kind", header="Figures"),
    Col("synthetic", "synthetic", "bool", "Synthetic"), Col("brands", "brands", "int", "Brands"),
    Col("probes", "probes", "int", "Probes"), Col("first_sent", "first_sent", "date", "From"),
    Col("last_sent", "last_sent", "date", "To"),
    Col("cutoff_max_seconds", "cutoff_minutes", "minutes", "Cutoff"),
)


def named(cols: Sequence[Col], brand_stat: BrandStat) -> tuple[Col, ...]:
    """``cols`` with their CSV names saying the brand statistic: ``fastest_mean_minutes`` or
    ``fastest_median_minutes``, never one header for two statistics."""
    return tuple(replace(c, name=c.name.format(stat=brand_stat)) for c in cols)


@dataclass(frozen=True)
class SeriesTables:
    """Every table of one series, as frames (sources of the ``*_COLS`` specs)."""

    yoy: pl.DataFrame
    unranked: pl.DataFrame
    sectors: pl.DataFrame
    channels: pl.DataFrame
    panel: pl.DataFrame
    sources: pl.DataFrame
    brands: pl.DataFrame
    changes: pl.DataFrame


def _full() -> pl.Expr:
    """Answered every probe: by the counts, or by a published rate of 100 % without counts."""
    import polars as pl

    return pl.when(pl.col("probes").is_not_null()).then(
        pl.col("answered") == pl.col("probes")).otherwise(pl.col("response_rate") >= 1.0)


def _pick(ranked: pl.DataFrame, keys: list[str], best: bool, prefix: str) -> pl.DataFrame:
    """The fastest (or slowest) brand per cell; brands tied on time are all named."""
    import polars as pl

    edge = pl.col("time").min() if best else pl.col("time").max()
    return (
        ranked.filter(pl.col("time") == edge.over(keys))
        .group_by(keys)
        .agg(pl.col("brand").sort().str.join("; ").alias(f"{prefix}_brand"),
             pl.col("time").first().alias(f"{prefix}_seconds"))
    )


def tables(
    timings: pl.DataFrame, brand_rows: pl.DataFrame, synthetic: Mapping[str, bool],
    brand_stat: BrandStat = "mean", study_rows: pl.DataFrame | None = None,
) -> SeriesTables:
    """All tables of one series from its timings, brand rows and study rows (``synthetic``: by
    study, for every measured study; a study not in it is published figures)."""
    import polars as pl

    from mystery.timings import studyrows

    keys = ["series", "year", "channel"]
    cells, by_brand_figures, sectors = metrics.summarise_many(
        timings, brand_rows, [keys, metrics.BRAND_KEYS, [*keys, "sector"]])
    brands = metrics.brand_metrics(timings, brand_rows, by_brand_figures).with_columns(
        time=metrics.brand_time(brand_stat))
    brands = brands.with_columns(full=_full())
    ranked = brands.filter(pl.col("full") & pl.col("time").is_not_null())
    # Sorted by time once for both groupings (by brand here, by year × channel in _changes):
    # samples_by's own sort then finds the column sorted and skips the work.
    samples = change.samples(timings).select(
        "series", "year", "channel", "brand", "time", "event").sort("time")
    by_brand = change.samples_by(samples, ["series", "year", "channel", "brand"])
    changes = _changes(samples, brands, cells, by_brand)
    per_year = changes.filter(pl.col("scope") == "all probes").select(
        "series", pl.col("to_year").alias("year"), "channel", "logrank_p", "rate_change",
        "rate_change_ci_low", "rate_change_ci_high")
    panel_tests = changes.filter(pl.col("scope") == "panel").select(
        "series", pl.col("to_year").alias("year"), "channel",
        pl.col("brands_to").alias("panel_brands"), pl.col("logrank_p").alias("panel_logrank_p"))
    yoy = (
        cells.join(_pick(ranked, keys, True, "fastest"), on=keys, how="left")
        .join(_pick(ranked, keys, False, "slowest"), on=keys, how="left")
        .join(per_year, on=keys, how="left")
        .join(panel_tests, on=keys, how="left")
        .sort(["year", "channel"])
    )
    yoy = reported.overlay(yoy, timings, brand_rows,
                           studyrows.empty() if study_rows is None else study_rows, synthetic)
    reason = (
        pl.when(pl.col("full").is_null()).then(pl.lit("response rate not published"))
        .when(~pl.col("full")).then(pl.lit("did not answer every probe"))
        .otherwise(pl.lit(f"no {'median' if brand_stat == 'median' else 'mean'} time known"))
    )
    unranked = (
        brands.filter(~pl.col("full").fill_null(False) | pl.col("time").is_null())
        .with_columns(reason=reason)
        .sort(["year", "channel", "brand"])
    )
    sectors = sectors.sort(["year", "channel", "sector"], nulls_last=True)
    return SeriesTables(
        yoy=yoy, unranked=unranked, sectors=sectors,
        channels=_channel_comparison(timings, brand_rows, keys, brands, cells),
        panel=_panel(brands, by_brand),
        sources=_sources(timings, brand_rows, synthetic), brands=brands, changes=changes,
    )


def _channel_comparison(
    timings: pl.DataFrame, brand_rows: pl.DataFrame, keys: list[str], brands: pl.DataFrame,
    cells: pl.DataFrame,
) -> pl.DataFrame:
    """Per year × channel, only brands asked on two or more channels that year.

    ``brands`` has one row per brand asked on a channel in a year (``brand_metrics``), and
    ``cells`` the figures of every probe per year × channel: when every brand was asked on two
    or more channels, the comparison covers every probe and is ``cells`` itself."""
    import polars as pl

    who = ["series", "year", "brand"]
    asked = brands.group_by(who).agg(pl.col("channel").n_unique().alias("n"))
    multi = asked.filter(pl.col("n") >= 2).select(who)
    if multi.height == asked.height:
        return cells.sort(["year", "channel"])
    return metrics.summarise(
        timings.join(multi, on=who, how="semi"), brand_rows.join(multi, on=who, how="semi"), keys
    ).sort(["year", "channel"])


def _panel(brands: pl.DataFrame, by_brand: Mapping[tuple[object, ...], change.Sample]) \
        -> pl.DataFrame:
    """Brands seen in two or more years on a channel; change only between fully-answered
    years (a mean over the answered probes of a brand that skipped some is not comparable).
    Beside each change, the brand's own log-rank test against its previous year (when both
    years have probe times) and its change in response rate with Newcombe's interval."""
    import polars as pl

    who = ["series", "brand", "channel"]
    panel = brands.filter(pl.col("year").n_unique().over(who) >= 2).sort([*who, "year"])
    comparable = pl.col("full") & pl.col("full").shift(1).over(who)
    delta = pl.col("time") - pl.col("time").shift(1).over(who)
    panel = panel.with_columns(
        change=pl.when(comparable).then(delta),
        previous_year=pl.col("year").shift(1).over(who),
        previous_answered=pl.col("answered").shift(1).over(who),
        previous_probes=pl.col("probes").shift(1).over(who),
        tested=pl.col("probe_level") & pl.col("probe_level").shift(1).over(who),
    )
    rows, pairs = [], []  # each tested row's (later, earlier) samples, all tested at once
    for row, (name, brand, channel, year, before, tested) in enumerate(panel.select(
            "series", "brand", "channel", "year", "previous_year", "tested").iter_rows()):
        later = by_brand.get((name, year, channel, brand))
        earlier = by_brand.get((name, before, channel, brand))
        if tested and later and earlier:
            rows.append(row)
            pairs.append((later, earlier))
    p: list[float | None] = [None] * panel.height
    for row, found in zip(rows, change.logrank_many(pairs), strict=True):
        p[row] = found
    panel = panel.with_columns(logrank_p=pl.Series(p, dtype=pl.Float64))
    return _with_rate_change(panel, "previous_answered", "previous_probes", "answered", "probes")


def _with_rate_change(
    df: pl.DataFrame, answered_from: str, probes_from: str, answered_to: str, probes_to: str
) -> pl.DataFrame:
    """``rate_change`` and its interval per row (a few thousand rows: plain Python)."""
    import polars as pl

    found = [change.rate_change(*row) for row in df.select(
        answered_from, probes_from, answered_to, probes_to).iter_rows()]
    return df.with_columns(
        pl.Series(name, [f[i] for f in found], dtype=pl.Float64)
        for i, name in enumerate(("rate_change", "rate_change_ci_low", "rate_change_ci_high")))


def _changes(
    samples: pl.DataFrame, brands: pl.DataFrame, cells: pl.DataFrame,
    by_brand: Mapping[tuple[object, ...], change.Sample],
) -> pl.DataFrame:
    """Per channel and pair of consecutive years: all probes, then the panel (brands present in
    both years), each with its log-rank test and change in response rate (``CHANGE_COLS``)."""
    import polars as pl

    by_cell = change.samples_by(samples, ["series", "year", "channel"])
    rows: list[dict[str, object]] = []
    tests: list[tuple[change.Sample, change.Sample]] = []  # run together once rows are known
    for (series_name, channel), part in sorted(
            cells.partition_by(["series", "channel"], as_dict=True).items()):
        by_year = {r["year"]: r for r in part.iter_rows(named=True)}
        on = brands.filter((pl.col("series") == series_name) & (pl.col("channel") == channel))
        for first, last in change.year_pairs(list(by_year)):
            a, b = by_year[first], by_year[last]
            names = {y: set(on.filter(pl.col("year") == y)["brand"].to_list())
                     for y in (first, last)}
            panel = sorted(names[first] & names[last])
            base = {"series": series_name, "channel": channel, "from_year": first,
                    "to_year": last}
            tested = bool(a["probe_level"] and b["probe_level"])
            cell = [by_cell.get((series_name, y, channel)) for y in (first, last)]
            rows.append({**base, "scope": "all probes", "brands_from": a["brands"],
                         "brands_to": b["brands"], "probes_from": a["probes"],
                         "probes_to": b["probes"], "answered_from": a["answered"],
                         "answered_to": b["answered"], "median_from": a["median_ack_seconds"],
                         "median_to": b["median_ack_seconds"],
                         "logrank_p": _test(tests, cell[1], cell[0], tested),
                         "same_brands": names[first] == names[last]})
            members = on.filter(pl.col("brand").is_in(panel)
                                & pl.col("year").is_in([first, last]))
            sums = {y: members.filter(pl.col("year") == y) for y in (first, last)}
            known = {y: not (f["probes"].null_count() or f["answered"].null_count())
                     for y, f in sums.items()}
            total = {(y, c): int(f[c].sum()) if known[y] else None
                     for y, f in sums.items() for c in ("probes", "answered")}
            panel_tested = bool(panel) and bool(members["probe_level"].all())
            kept: list[change.Sample | None] = [None, None]
            if panel_tested:
                kept = [by_cell.get((series_name, y, channel)) if set(panel) == names[y]
                        else change.merged([s for n in panel
                                            if (s := by_brand.get((series_name, y, channel, n)))])
                        for y in (first, last)]
            rows.append({**base, "scope": "panel", "brands_from": len(panel),
                         "brands_to": len(panel),
                         "probes_from": total[first, "probes"], "probes_to": total[last, "probes"],
                         "answered_from": total[first, "answered"],
                         "answered_to": total[last, "answered"],
                         "median_from": change.median(kept[0]) if kept[0] else None,
                         "median_to": change.median(kept[1]) if kept[1] else None,
                         "logrank_p": _test(tests, kept[1], kept[0], True),
                         "same_brands": True})
    schema = {"series": pl.String, "channel": pl.String, "from_year": pl.Int64,
              "to_year": pl.Int64, "scope": pl.String, "brands_from": pl.Int64,
              "brands_to": pl.Int64, "probes_from": pl.Int64, "probes_to": pl.Int64,
              "answered_from": pl.Int64, "answered_to": pl.Int64, "median_from": pl.Float64,
              "median_to": pl.Float64, "logrank_p": pl.Float64, "same_brands": pl.Boolean}
    found = change.logrank_many(tests)
    for row in rows:  # each row's test, by its place among the tests
        at = row["logrank_p"]
        row["logrank_p"] = found[at] if isinstance(at, int) else None
    out = pl.DataFrame(rows, schema=schema, orient="row")
    out = _with_rate_change(out, "answered_from", "probes_from", "answered_to", "probes_to")
    out = out.with_columns(rate_from=pl.col("answered_from") / pl.col("probes_from"),
                           rate_to=pl.col("answered_to") / pl.col("probes_to"))
    words = ["no brand present in both years" if r["scope"] == "panel" and not r["brands_to"]
             else change.reading(r["logrank_p"], r["median_from"], r["median_to"],
                                 r["rate_change"], r["rate_change_ci_low"],
                                 r["rate_change_ci_high"])
             + ("" if r["same_brands"] else "; different brands each year: compare the panel")
             for r in out.iter_rows(named=True)]
    return out.with_columns(reading=pl.Series(words, dtype=pl.String)).sort(
        ["channel", "to_year", "scope"])


def _test(tests: list[tuple[change.Sample, change.Sample]], later: change.Sample | None,
          earlier: change.Sample | None, tested: bool) -> int | None:
    """Queue the log-rank test of ``later`` against ``earlier``; its place in ``tests``, or
    None when it cannot be tested."""
    if not (tested and later and earlier):
        return None
    tests.append((later, earlier))
    return len(tests) - 1


def _sources(
    timings: pl.DataFrame, brand_rows: pl.DataFrame, synthetic: Mapping[str, bool]
) -> pl.DataFrame:
    """One row per study: what it contributes and how (probe times or published brand rows)."""
    import polars as pl

    # Lazy, so that only the columns it reads are carried through the grouping.
    probe = metrics.counted(timings).lazy().group_by("study").agg(
        year=pl.col("year").first(), channels=pl.col("channel").unique().sort().str.join(", "),
        kind=pl.lit("probe times"), brands=pl.col("brand").n_unique().cast(pl.Int64),
        probes=pl.len().cast(pl.Int64), first_sent=pl.col("sent_at").min(),
        last_sent=pl.col("sent_at").max(), cutoff_max_seconds=pl.col("cutoff_seconds").max(),
    ).collect()
    published = brand_rows.group_by("study").agg(
        year=pl.col("year").first(), channels=pl.col("channel").unique().sort().str.join(", "),
        kind=pl.lit("published brand figures"), brands=pl.col("brand").n_unique().cast(pl.Int64),
        probes=pl.when(pl.col("probes").is_null().any()).then(None)
        .otherwise(pl.col("probes").sum()),
        first_sent=pl.lit(None, dtype=pl.Datetime("ms", "UTC")),
        last_sent=pl.lit(None, dtype=pl.Datetime("ms", "UTC")),
        cutoff_max_seconds=pl.col("cutoff_seconds").max(),
    )
    both = pl.concat([probe, published], how="vertical_relaxed")
    flags = pl.col("study").replace_strict(dict(synthetic), default=False, return_dtype=pl.Boolean)
    return both.with_columns(synthetic=flags).sort(["year", "study", "kind"])


def synthetic_years(sources: pl.DataFrame) -> dict[int, bool]:
    """A year is synthetic when any study behind it is."""
    flags: dict[int, bool] = {}
    for year, flag in sources.select("year", "synthetic").iter_rows():
        flags[year] = flags.get(year, False) or bool(flag)
    return flags
