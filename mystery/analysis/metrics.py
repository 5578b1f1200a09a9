"""Figures from timings (and brand rows): counts, rates, means, Kaplan–Meier medians.

One engine, :func:`summarise`, groups by any columns (brand × channel × year, year × channel,
sector, send window…), so every table computes the same quantity the same way.

What each figure means, and when it is left empty rather than guessed:

* ``probes``, ``answered``, ``response_rate``: excluded probes are left out everywhere.
  Brand rows add their published counts; a count that is not published leaves the total empty
  (a brand row without a published rate has no ``answered``: unknown, never all).
* ``mean_ack_seconds``: the mean over **answered probes only** (say so wherever it is shown).
  Brand rows pool exactly as a weighted mean (their mean × their answered count).
* ``median_ack_seconds``, ``median_resolution_seconds``: Kaplan–Meier, unanswered (unresolved)
  probes censored at their cutoff; empty when fewer than half were answered (resolved), and
  whenever a brand row is in the group (a median needs every probe's time).
* ``median_ack_ci_low_seconds``, ``median_ack_ci_high_seconds`` (and the same for the
  resolution median): its 95 % confidence interval (:func:`.km.median_interval`: Greenwood,
  log-log, each end where the band crosses ½); an end the data cannot bound is empty.
* ``within_1h``, ``within_24h``: share of probes acknowledged within that time; empty when some
  probe waited less than that (a cutoff below it, or unknown) or a brand row is in the group.
* ``resolved_rate``: share of probes resolved before the cutoff (the share *acknowledged*
  before the cutoff is ``response_rate``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mystery.analysis import km
from mystery.words import BrandStat

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import polars as pl

HOUR, DAY = 3600.0, 86400.0
#: The Kaplan–Meier figures of acknowledgement ("ack") and resolution ("res").
_KM_COLUMNS = {
    "ack": ("median_ack_seconds", "median_ack_ci_low_seconds", "median_ack_ci_high_seconds"),
    "res": ("median_resolution_seconds", "median_resolution_ci_low_seconds",
            "median_resolution_ci_high_seconds"),
}
_ALL_KM = tuple(c for columns in _KM_COLUMNS.values() for c in columns)
FIGURES = (
    "brands", "probes", "answered", "response_rate", "mean_ack_seconds", "median_ack_seconds",
    "median_ack_ci_low_seconds", "median_ack_ci_high_seconds",
    "resolved_rate", "median_resolution_seconds",
    "median_resolution_ci_low_seconds", "median_resolution_ci_high_seconds",
    "within_1h", "within_24h", "probe_level",
    "first_sent", "last_sent", "cutoff_min_seconds", "cutoff_max_seconds",
)  # fmt: skip


def counted(timings: pl.DataFrame) -> pl.DataFrame:
    """The probes that count: everything but ``excluded``."""
    import polars as pl

    return timings.filter(pl.col("status") != "excluded")


def _prepared(t: pl.DataFrame) -> pl.DataFrame:
    """Counted probes with the event flags and censoring horizon the medians need."""
    import polars as pl

    return t.with_columns(
        answered=pl.col("status") == "answered",
        resolved=pl.col("resolution_seconds").is_not_null(),
        # An unstated cutoff (imported figures) censors after every observed time.
        horizon=pl.col("cutoff_seconds").fill_null(float("inf")),
    )


def median_ack(timings: pl.DataFrame, by: Sequence[str]) -> pl.DataFrame:
    """Only ``median_ack_seconds`` and its interval per group of ``by``: what ``summarise``
    gives for them when there are no brand rows, for a caller that needs no other figure
    (business-hours medians)."""
    return median_ack_many(timings, [by])[0]


def median_ack_many(
    timings: pl.DataFrame, groupings: Sequence[Sequence[str]]
) -> list[pl.DataFrame]:
    """:func:`median_ack` for each of ``groupings``, the passes run together (as
    :func:`summarise_many`)."""
    import polars as pl

    t = _prepared(counted(timings))
    median, exact = km.median_expr(pl.col("ack_seconds"), pl.col("answered"), pl.col("horizon"))
    parts = pl.collect_all([t.lazy().group_by(list(by)).agg(
        median_ack_seconds=median, ack_exact=exact,
        ack_waiting=km.waiting_expr(pl.col("ack_seconds"), pl.col("answered")))
        for by in groupings])
    cols = list(_KM_COLUMNS["ack"])
    done = []
    for by, part in zip(groupings, parts, strict=True):
        keys = list(by)
        out = _with_intervals(part, "ack")
        slow = out.filter(~pl.col("ack_exact")).select(keys)
        if not slow.is_empty():
            general = _scipy_medians(t.join(slow, on=keys, how="semi", nulls_equal=True), keys)
            out = out.join(general.select([*keys, *cols]), on=keys, how="left",
                           nulls_equal=True, suffix="_scipy").with_columns(
                pl.when("ack_exact").then(c).otherwise(f"{c}_scipy").alias(c) for c in cols)
        done.append(out.select([*keys, *cols]))
    return done


def _with_intervals(out: pl.DataFrame, kind: str) -> pl.DataFrame:
    """The median's interval columns of ``kind`` from the gathered ``{kind}_waiting`` lists;
    a group the ranks cannot serve joins the SciPy fallback (``{kind}_exact`` False)."""
    import polars as pl

    _, low, high = _KM_COLUMNS[kind]
    lows, highs, exact = km.intervals(out[f"{kind}_waiting"])
    return out.drop(f"{kind}_waiting").with_columns(
        pl.Series(low, lows, dtype=pl.Float64), pl.Series(high, highs, dtype=pl.Float64),
        (pl.col(f"{kind}_exact") & pl.Series(exact, dtype=pl.Boolean)).alias(f"{kind}_exact"))


def _probe_query(t: pl.LazyFrame, by: list[str]) -> pl.LazyFrame:
    """Per-group figures of prepared probe rows (:func:`_prepared`) in one aggregation pass,
    KM medians included; lazy, so that several groupings run as one :func:`pl.collect_all`."""
    import polars as pl

    answered, resolved = pl.col("answered"), pl.col("resolved")
    ack, cutoff = pl.col("ack_seconds"), pl.col("cutoff_seconds")
    ack_median, ack_exact = km.median_expr(ack, answered, pl.col("horizon"))
    res_median, res_exact = km.median_expr(pl.col("resolution_seconds"), resolved,
                                           pl.col("horizon"))

    def within(limit: float) -> pl.Expr:
        observed = cutoff.is_not_null().all() & (cutoff.min() >= limit)
        share = (answered & (ack <= limit)).sum() / pl.len()
        return pl.when(observed).then(share).otherwise(None)

    return t.group_by(by).agg(
        # Grouped by brand, each group is one brand: no need to count distinct names.
        p_brands=pl.lit(1, dtype=pl.Int64) if "brand" in by else
        pl.col("brand").n_unique().cast(pl.Int64),
        p_probes=pl.len().cast(pl.Int64),
        p_answered=answered.sum().cast(pl.Int64),
        # Whole milliseconds (what timings hold) summed as integers: exact, and the same
        # whatever order polars' threads add them in, which a float sum is not.
        p_ack_total=pl.when(answered).then((ack * 1000).round().cast(pl.Int64)).sum() / 1000,
        p_resolved=resolved.sum().cast(pl.Int64),
        within_1h=within(HOUR),
        within_24h=within(DAY),
        first_sent=pl.col("sent_at").min(),
        last_sent=pl.col("sent_at").max(),
        cutoff_min_seconds=cutoff.min(),
        cutoff_max_seconds=cutoff.max(),
        median_ack_seconds=ack_median,
        median_resolution_seconds=res_median,
        ack_exact=ack_exact,
        res_exact=res_exact,
        # Every probe's time, gathered in the same pass, for the medians' intervals.
        ack_waiting=km.waiting_expr(ack, answered),
        res_waiting=km.waiting_expr(pl.col("resolution_seconds"), resolved),
    )


def _probe_finish(out: pl.DataFrame, t: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """The aggregation of :func:`_probe_query` with the medians' intervals, and SciPy's
    medians for the groups the fast path cannot serve."""
    import polars as pl

    out = _with_intervals(_with_intervals(out, "ack"), "res")
    slow = out.filter(~pl.col("ack_exact") | ~pl.col("res_exact")).select(by)
    if not slow.is_empty():
        general = _scipy_medians(t.join(slow, on=by, how="semi", nulls_equal=True), by)
        out = out.join(general, on=by, how="left", nulls_equal=True, suffix="_scipy")
        out = out.with_columns(
            pl.when(f"{kind}_exact").then(c).otherwise(f"{c}_scipy").alias(c)
            for kind, columns in _KM_COLUMNS.items() for c in columns)
    return out.drop("ack_exact", "res_exact", *(f"{c}_scipy" for c in _ALL_KM), strict=False)


def _brand_part(b: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    import polars as pl

    def exact_sum(column: str) -> pl.Expr:
        return pl.when(pl.col(column).is_null().any()).then(None).otherwise(pl.col(column).sum())

    weighted = (
        pl.when(pl.col("answered") == 0)
        .then(0.0)
        .otherwise(pl.col("mean_ack_seconds") * pl.col("answered"))
    )
    return b.group_by(by).agg(
        b_rows=pl.len().cast(pl.Int64),
        b_probes=exact_sum("probes"),
        b_answered=exact_sum("answered"),
        b_ack_total=pl.when(weighted.is_null().any()).then(None).otherwise(weighted.sum()),
        b_only_rate=pl.col("response_rate").first(),
        b_only_mean=pl.col("mean_ack_seconds").first(),
        b_cutoff_min=pl.col("cutoff_seconds").min(),
        b_cutoff_max=pl.col("cutoff_seconds").max(),
    )


def summarise(
    timings: pl.DataFrame, brand_rows: pl.DataFrame, by: Sequence[str]
) -> pl.DataFrame:
    """Figures (``FIGURES``, see the module docstring) per group of ``by`` columns, sorted."""
    return summarise_many(timings, brand_rows, [by])[0]


def summarise_many(
    timings: pl.DataFrame, brand_rows: pl.DataFrame, groupings: Sequence[Sequence[str]]
) -> list[pl.DataFrame]:
    """:func:`summarise` for each of ``groupings``, the same rows grouped several ways.

    Why together: the grouped passes over the probes are most of the cost of a table, and
    polars runs independent queries (``collect_all``) in one go, cheaper than one by one."""
    import polars as pl

    for by in groupings:
        missing = [k for k in by if k not in brand_rows.columns]
        if missing and not brand_rows.is_empty():  # e.g. the send window: no probes to place
            raise ValueError(f"brand rows cannot be grouped by {missing}")
    t = _prepared(counted(timings))
    parts = pl.collect_all([_probe_query(t.lazy(), list(by)) for by in groupings])
    return [_summarised(t, brand_rows, list(by), _probe_finish(part, t, list(by)))
            for by, part in zip(groupings, parts, strict=True)]


def _summarised(
    t: pl.DataFrame, brand_rows: pl.DataFrame, keys: list[str], probe_part: pl.DataFrame
) -> pl.DataFrame:
    """The figures of one grouping: the probes' part joined with the brand rows' part."""
    import polars as pl

    b = brand_rows
    missing = [k for k in keys if k not in b.columns]
    if missing:  # no brand rows (summarise_many refused any other case): empty key columns
        b = b.with_columns(pl.lit(None, dtype=t.schema[k]).alias(k) for k in missing)
    if b.is_empty():
        out = probe_part.rename({"p_brands": "brands"})
    else:
        with_brand = list(dict.fromkeys([*keys, "brand"]))
        brands = (
            pl.concat([t.select(with_brand), b.select(with_brand)])
            .unique()
            .group_by(keys)
            .agg(brands=pl.len().cast(pl.Int64))
        )
        out = brands.join(probe_part.drop("p_brands"), on=keys, how="left", nulls_equal=True)
    out = out.join(_brand_part(b, keys), on=keys, how="left", nulls_equal=True)
    zero = pl.lit(0, dtype=pl.Int64)
    p_probes = pl.col("p_probes").fill_null(zero)
    p_answered = pl.col("p_answered").fill_null(zero)
    b_rows = pl.col("b_rows").fill_null(zero)
    no_brand_rows = b_rows == 0
    single_row = (b_rows == 1) & (p_probes == 0)
    probes = pl.when(no_brand_rows).then(p_probes).otherwise(p_probes + pl.col("b_probes"))
    answered = pl.when(no_brand_rows).then(p_answered).otherwise(p_answered + pl.col("b_answered"))
    ack_total = pl.col("p_ack_total").fill_null(0.0) + pl.when(no_brand_rows).then(0.0).otherwise(
        pl.col("b_ack_total")
    )
    out = out.with_columns(
        *(pl.when(no_brand_rows).then(c).alias(c) for c in _ALL_KM),
        probes=probes,
        answered=answered,
        # One brand row alone: its rate as published (66.7 % stays 0.667, not 2/3), and
        # unknown when not published.
        response_rate=pl.when(single_row & (pl.col("b_probes").is_null()
                                            | pl.col("b_only_rate").is_not_null()))
        .then(pl.col("b_only_rate"))
        .otherwise(answered / probes),
        mean_ack_seconds=pl.when(single_row)
        .then(pl.col("b_only_mean"))
        .when(answered > 0)
        .then(ack_total / answered),
        resolved_rate=pl.when(no_brand_rows).then(pl.col("p_resolved") / p_probes),
        within_1h=pl.when(no_brand_rows).then(pl.col("within_1h")),
        within_24h=pl.when(no_brand_rows).then(pl.col("within_24h")),
        probe_level=no_brand_rows,
        cutoff_min_seconds=pl.min_horizontal("cutoff_min_seconds", "b_cutoff_min"),
        cutoff_max_seconds=pl.max_horizontal("cutoff_max_seconds", "b_cutoff_max"),
    )
    return out.select([*keys, *FIGURES]).sort(keys, nulls_last=True)


def _scipy_medians(wanted: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """KM medians by ``scipy.stats.ecdf``, one call per group (the general case)."""
    import numpy as np
    import polars as pl

    rows: list[dict[str, object]] = []
    for key, part in wanted.partition_by(keys, as_dict=True, maintain_order=True).items():
        ack = part["ack_seconds"].to_numpy()
        res = part["resolution_seconds"].to_numpy()
        horizon = part["horizon"].to_numpy().astype(float)
        known = np.concatenate([ack[~np.isnan(ack)], res[~np.isnan(res)], [0.0]])
        horizon = np.where(np.isinf(horizon), known.max() + 1.0, horizon)
        answered = part["answered"].to_numpy()
        resolved = part["resolved"].to_numpy()
        row: dict[str, object] = dict(zip(keys, key, strict=True))
        for kind, times, done in (("ack", ack, answered), ("res", res, resolved)):
            waited = np.where(done, times, horizon)
            median, low, high = _KM_COLUMNS[kind]
            row[median] = km.median(waited, done)
            row[low], row[high] = km.median_interval(waited, done)
        rows.append(row)
    schema = pl.Schema({**wanted.select(keys).schema, **dict.fromkeys(_ALL_KM, pl.Float64())})
    return pl.DataFrame(rows, schema=schema, orient="row")


#: The grouping of :func:`brand_metrics`.
BRAND_KEYS = ("series", "year", "channel", "brand")


def brand_metrics(
    timings: pl.DataFrame, brand_rows: pl.DataFrame, figures: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Figures per series × year × channel × brand, with the brand's sector and country.

    ``figures``: ``summarise`` of the same rows by ``BRAND_KEYS``, when the caller computed
    it already with its other groupings (:func:`summarise_many`)."""
    import polars as pl

    keys = list(BRAND_KEYS)
    out = summarise(timings, brand_rows, keys) if figures is None else figures
    cols = ["series", "year", "brand", "sector", "country"]
    labels = (  # lazy: only these columns are carried through the grouping (cheaper)
        pl.concat([counted(timings).lazy().select(cols), brand_rows.lazy().select(cols)])
        .group_by(["series", "year", "brand"])
        .agg(pl.col("sector").min(), pl.col("country").min())  # min skips nulls
        .collect()
    )
    out = out.join(labels, on=["series", "year", "brand"], how="left", nulls_equal=True)
    return out.select([*keys, "sector", "country", *FIGURES]).sort(keys)


def brand_time(stat: BrandStat) -> pl.Expr:
    """A brand's time for ranking: its mean over answered probes, or its KM median."""
    import polars as pl

    return pl.col("mean_ack_seconds" if stat == "mean" else "median_ack_seconds")


def survival_curve(
    timings: pl.DataFrame, grid: Sequence[float]
) -> tuple[int, int, list[float]] | None:
    """KM share of probes still unanswered at each grid time; (n, answered, shares) or None.

    Charts draw the curve on a fixed grid so that its size does not grow with the probes."""
    import numpy as np

    inputs = _km_inputs(timings)
    if inputs is None:
        return None
    times, answered, horizon = inputs
    curve = km.estimate_fast(times, answered)
    if curve is None:
        return None
    shares = curve.at(np.asarray(grid, dtype=np.float64))
    limit = float(np.nanmax(horizon))
    values = [float(v) if g <= limit else float("nan") for g, v in zip(grid, shares, strict=True)]
    return curve.n, curve.events, values


def _km_inputs(
    timings: pl.DataFrame,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.float64]] | None:
    """What a chart's KM curve is estimated from: each counted probe's time (its reply, or its
    cutoff when unanswered), whether it was answered, and its cutoff (an unstated cutoff
    just past the last known time); None when no probe counts."""
    import numpy as np

    t = counted(timings)
    if t.is_empty():
        return None
    ack = t["ack_seconds"].to_numpy()
    horizon = t["cutoff_seconds"].to_numpy()
    known = np.concatenate([ack[~np.isnan(ack)], [0.0]])
    horizon = np.where(np.isnan(horizon), known.max() + 1.0, horizon)
    answered = (t["status"] == "answered").to_numpy()
    return np.where(answered, ack, horizon), answered, horizon


@dataclass(frozen=True)
class SurvivalBand:
    """A chart's KM curve on a grid: n, answered, the share still waiting at each grid time,
    its 95 % band (NaN where undefined or past the cutoff) and the censoring ticks
    (time, share still waiting) of unanswered probes."""

    n: int
    answered: int
    waiting: list[float]
    low: list[float]
    high: list[float]
    censored: list[tuple[float, float]]


def survival_band(timings: pl.DataFrame, grid: Sequence[float]) -> SurvivalBand | None:
    """Like :func:`survival_curve`, with the confidence band and the censoring ticks."""
    import numpy as np

    inputs = _km_inputs(timings)
    if inputs is None:
        return None
    times, answered, horizon = inputs
    curve = km.band(times, answered)
    if curve is None:
        return None
    points = np.asarray(grid, dtype=np.float64)
    waiting, low, high = curve.at(points)
    past = points > float(np.nanmax(horizon))

    def cut(values: npt.NDArray[np.float64]) -> list[float]:
        return [float("nan") if p else float(v) for v, p in zip(values, past, strict=True)]

    ticks = [(float(a), float(b)) for a, b in zip(curve.censored, curve.censored_survival,
                                                  strict=True)]
    return SurvivalBand(len(times), int(answered.sum()), cut(waiting), cut(low), cut(high),
                        ticks)
