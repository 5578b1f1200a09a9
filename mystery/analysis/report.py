"""The report of one study: ``results/<study>/summary.csv``, ``summary.md``, ``ack_by_brand``.

Called by ``mystery report``, by ``mystery publish`` for every committed ``timings.csv``, and
by the runner at the end of ``mystery run``; one function so the three can never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mystery.analysis import business, charts, datapackage, metrics
from mystery.analysis.batch import Batch
from mystery.analysis.tables import Col, csv_bytes, markdown, method_note
from mystery.text import markdown_cell
from mystery.timings import brandrows
from mystery.timings.studyinfo import StudyInfo

if TYPE_CHECKING:
    import polars as pl

SUMMARY_COLS = (
    Col("study", "study"),
    Col("channel", "channel", header="Channel"),
    Col("brand", "brand", header="Brand"),
    Col("sector", "sector"),
    Col("probes", "probes", "int", "Probes"),
    Col("answered", "acknowledged", "int", "Acknowledged"),
    Col("unanswered", "unanswered", "int", "Unanswered"),
    Col("response_rate", "response_rate", "rate", "Response rate"),
    Col("median_ack_seconds", "median_ack_minutes", "minutes", "Median acknowledgement"),
    Col("median_ack_ci_low_seconds", "median_ack_ci_low_minutes", "minutes", "95 % CI from"),
    Col("median_ack_ci_high_seconds", "median_ack_ci_high_minutes", "minutes", "95 % CI to"),
    Col("median_resolution_seconds", "median_resolution_minutes", "minutes", "Median resolution"),
    Col("median_resolution_ci_low_seconds", "median_resolution_ci_low_minutes", "minutes"),
    Col("median_resolution_ci_high_seconds", "median_resolution_ci_high_minutes", "minutes"),
    Col("mean_ack_seconds", "mean_ack_minutes_answered_only", "minutes",
        "Mean acknowledgement (answered only)"),
    Col("within_1h", "within_1h", "rate", "Within 1 h"),
    Col("within_24h", "within_24h", "rate", "Within 24 h"),
    Col("business_median_ack_seconds", "median_ack_business_minutes", "minutes",
        "Median acknowledgement (business hours)"),
    Col("business_median_ack_ci_low_seconds", "median_ack_business_ci_low_minutes", "minutes"),
    Col("business_median_ack_ci_high_seconds", "median_ack_business_ci_high_minutes", "minutes"),
)
#: The columns shown on the terminal and in summary.md (the CSV has them all).
HUMAN = ("brand", "channel", "probes", "acknowledged", "median_ack_minutes",
         "median_ack_ci_low_minutes", "median_ack_ci_high_minutes", "median_resolution_minutes",
         "unanswered", "mean_ack_minutes_answered_only")
WINDOW_COLS = (
    Col("channel", "channel", header="Channel"),
    Col("window", "window", header="Sent"),
    Col("probes", "probes", "int", "Probes"),
    Col("answered", "acknowledged", "int", "Acknowledged"),
    Col("response_rate", "response_rate", "rate", "Response rate"),
    Col("median_ack_seconds", "median_ack_minutes", "minutes", "Median acknowledgement"),
    Col("median_ack_ci_low_seconds", "median_ack_ci_low_minutes", "minutes", "95 % CI from"),
    Col("median_ack_ci_high_seconds", "median_ack_ci_high_minutes", "minutes", "95 % CI to"),
    Col("business_median_ack_seconds", "median_ack_business_minutes", "minutes",
        "Median (business hours)"),
)
ACCOUNT_COLS = (
    Col("channel", "channel", header="Channel"),
    Col("account", "account", header="Account"),
    Col("brands", "brands", "int", "Brands"),
    Col("probes", "probes", "int", "Probes"),
    Col("answered", "acknowledged", "int", "Acknowledged"),
    Col("response_rate", "response_rate", "rate", "Response rate"),
    Col("median_ack_seconds", "median_ack_minutes", "minutes", "Median acknowledgement"),
    Col("median_resolution_seconds", "median_resolution_minutes", "minutes", "Median resolution"),
)
"""A team study's figures per researcher account: whether who asked changed the answer."""

CHANNEL_COLS = (
    Col("channel", "channel", header="Channel"),
    Col("brands", "brands", "int", "Brands"),
    Col("probes", "probes", "int", "Probes"),
    Col("answered", "acknowledged", "int", "Acknowledged"),
    Col("response_rate", "response_rate", "rate", "Response rate"),
    Col("median_ack_seconds", "median_ack_minutes", "minutes", "Median acknowledgement"),
    Col("median_ack_ci_low_seconds", "median_ack_ci_low_minutes", "minutes", "95 % CI from"),
    Col("median_ack_ci_high_seconds", "median_ack_ci_high_minutes", "minutes", "95 % CI to"),
    Col("median_resolution_seconds", "median_resolution_minutes", "minutes", "Median resolution"),
    Col("within_1h", "within_1h", "rate", "Within 1 h"),
    Col("within_24h", "within_24h", "rate", "Within 24 h"),
)


def _business(timings: pl.DataFrame, info: StudyInfo) -> pl.DataFrame:
    """The counted probes with every duration in business seconds (each brand's hours)."""
    counted = metrics.counted(timings)
    years = counted["sent_at"].dt.year().drop_nulls()
    span = (int(years.min()), int(years.max()) + 1) if years.len() else None  # type: ignore[arg-type]
    closed = info.holiday_dates(*span) if info.holidays and span else frozenset()
    own = info.brand_holiday_dates(*span) if span else {}
    return business.to_business(counted, info.timezone, holidays=closed,
                                brand_hours=info.brand_hours(), brand_holidays=own)


def _with_business(
    timings: pl.DataFrame, business_timings: pl.DataFrame, by: list[str]
) -> pl.DataFrame:
    """Figures per ``by`` with the KM median in business hours beside the clock median."""
    clock = metrics.summarise(timings, brandrows.empty(), by)
    return _beside(clock, metrics.median_ack(business_timings, by), by)


def _beside(clock: pl.DataFrame, biz: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """The clock figures with the business-hours medians (``business_…`` columns)."""
    biz = biz.rename(lambda c: f"business_{c}" if c.startswith("median_") else c)
    return clock.join(biz, on=by, how="left", nulls_equal=True)


SUMMARY_BY = ["study", "channel", "brand"]


def summary(
    timings: pl.DataFrame, info: StudyInfo, business_timings: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Per brand × channel figures of one study (``SUMMARY_COLS`` sources).

    ``business_timings``: the same probes in business time when the caller has them already
    (the report converts once for the summary and the send windows); computed otherwise."""
    if business_timings is None:
        business_timings = _business(timings, info)
    return _summary_table(timings, _with_business(timings, business_timings, SUMMARY_BY))


def _summary_table(timings: pl.DataFrame, figures: pl.DataFrame) -> pl.DataFrame:
    """The summary's figures (:data:`SUMMARY_BY`) with each brand's sector, in table order."""
    import polars as pl

    sectors = (
        metrics.counted(timings).group_by("brand").agg(pl.col("sector").min())
    )
    return (
        figures.join(sectors, on="brand", how="left")
        .with_columns(unanswered=pl.col("probes") - pl.col("answered"))
        .sort(["channel", "brand"])
    )


def _info_for(timings: pl.DataFrame) -> StudyInfo:
    """When no study.json is at hand: identity from the timings, UTC, not marked synthetic."""
    first = timings.row(0, named=True) if timings.height else {}
    return StudyInfo(name=str(first.get("study", "study")), series=str(first.get("series", "")),
                     year=int(first.get("year") or 0))


@dataclass(frozen=True)
class StudyReport:
    """What a report wrote, and its per-brand summary (for the terminal table)."""

    paths: list[Path]
    summary: pl.DataFrame


def write_report(
    timings: pl.DataFrame,
    out_dir: str | Path,
    info: StudyInfo | None = None,
    *,
    highlight: Sequence[str] = (),
    batch: Batch | None = None,
    colour: str = charts.HIGHLIGHT,
) -> list[Path]:
    """Write one study's summary.csv, summary.md and ack_by_brand.png/.svg; return the paths.

    ``info`` (time zone, title, synthetic flag, brands' service hours) comes from the study
    file or its study.json; without it times are read in UTC, business hours are the default
    and the output is not marked synthetic. With ``batch`` the chart is only queued there
    (publish draws all charts at the end, in parallel); without, it is drawn here, and only
    when its folder's ``charts.json`` says it changed, so that an unchanged report never
    rewrites a committed chart.
    """
    return build_report(timings, out_dir, info, highlight=highlight, batch=batch,
                        colour=colour).paths


def build_report(
    timings: pl.DataFrame,
    out_dir: str | Path,
    info: StudyInfo | None = None,
    *,
    highlight: Sequence[str] = (),
    batch: Batch | None = None,
    colour: str = charts.HIGHLIGHT,
) -> StudyReport:
    """``write_report``, also returning the summary frame."""
    if batch is None:
        with Batch() as own:  # in place: charts drawn here, the manifest merged
            built = build_report(timings, out_dir, info, highlight=highlight, batch=own,
                                 colour=colour)
            own.run()
            return StudyReport(built.paths + own.settle(merge=True), built.summary)
    info = info or _info_for(timings)
    return _written(Path(out_dir), info, _figures(timings, info), tuple(highlight), batch, colour)


@dataclass(frozen=True)
class _Figures:
    """One study's report figures: the per-brand table, the send windows, the channels, and
    the facts of its method note."""

    table: pl.DataFrame
    windows: pl.DataFrame
    per_channel: pl.DataFrame
    per_account: pl.DataFrame | None
    note: str
    channels: list[str]
    team: bool


def _figures(timings: pl.DataFrame, info: StudyInfo) -> _Figures:
    """The report figures of one study: its groupings in two batches of passes (clock,
    business hours)."""
    import polars as pl

    # The send window of each probe, then business time: both once (the local time is the
    # costly part), for the summary and the send-window table; business keeps the column.
    window = business.send_window(pl.col("sent_at"), info.timezone).alias("window")
    t = metrics.counted(timings).with_columns(window)
    biz = _business(t, info)
    groupings = [SUMMARY_BY, ["channel", "window"], ["channel"]]
    by_brand, by_window, per_channel = metrics.summarise_many(t, brandrows.empty(), groupings)
    biz_brand, biz_window = metrics.median_ack_many(biz, groupings[:2])
    table = _summary_table(t, _beside(by_brand, biz_brand, SUMMARY_BY))
    order = pl.col("window").replace_strict(business.SEND_WINDOWS, range(3), default=3)
    windows = _beside(by_window, biz_window, groupings[1]).sort(["channel", order])
    channels = sorted(t["channel"].unique().to_list())
    note = method_note(
        probes=t.height, brands=t["brand"].n_unique(), channels=channels,
        first=t["sent_at"].min(), last=t["sent_at"].max(),
        cutoff_low=t["cutoff_seconds"].min(), cutoff_high=t["cutoff_seconds"].max(),
        timezone=info.timezone, synthetic=info.synthetic,
    )
    team = timings["account"].null_count() < timings.height  # timings.csv names accounts
    per_account = (metrics.summarise(t, brandrows.empty(), ["channel", "account"])
                   if team else None)
    return _Figures(table, windows, per_channel, per_account, note, channels, team)


def _written(out: Path, info: StudyInfo, found: _Figures, highlight: tuple[str, ...],
             batch: Batch, colour: str) -> StudyReport:
    """Write one study's tables and queue its chart."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "summary.csv", out / "summary.md"]
    paths[0].write_bytes(csv_bytes(found.table, SUMMARY_COLS))
    package = datapackage.descriptor(info.name, f"Study {info.name}", found.note,
                                     {"summary.csv": SUMMARY_COLS})
    package["resources"].append(datapackage.resource("timings.csv",
                                                     datapackage.timings_fields(found.team)))
    paths.append(datapackage.write(out, package, primary=False))
    paths[1].write_text(_markdown(info, found.note, found.table, found.windows,
                                  found.per_channel, found.per_account),
                        encoding="utf-8", newline="\n")
    options = {"colour": colour} if highlight else {}  # no client, no colour to draw
    paths += batch.add(
        "ranking", _bars(found.table, len(found.channels) > 1), out / "ack_by_brand",
        title=chart_title(info), subtitle=_headline(found.table),
        xlabel="median time to acknowledgement (log scale)",
        note=found.note, highlight=highlight, **options,
    )
    return StudyReport(paths, found.table)


def _bars(table: pl.DataFrame, label_channel: bool) -> list[charts.Bar]:
    return [
        charts.Bar(
            brand=r["brand"], label=f"{r['brand']} ({r['channel']})" if label_channel else "",
            seconds=r["median_ack_seconds"], answered=r["answered"], probes=r["probes"],
            censored_at=r["cutoff_max_seconds"],
        )
        for r in table.iter_rows(named=True)
    ]


def chart_title(info: StudyInfo) -> str:
    """A chart's title is the study's own title (what its readers were told it asks), not its
    id; a synthetic study says so there, unless its title already does."""
    title = info.title or info.name
    if info.synthetic and "synthetic" not in title.lower():
        title += " (synthetic data)"
    return title


STATISTIC = "Median time to acknowledgement by brand (Kaplan–Meier, unanswered censored)"


def _headline(table: pl.DataFrame) -> str:
    """The chart's one statistic, named, with who did best on it."""
    import polars as pl

    from mystery.durations import format_duration

    timed = table.filter(pl.col("median_ack_seconds").is_not_null()).sort(
        ["median_ack_seconds", "brand"])
    if timed.is_empty():
        return f"{STATISTIC}: no brand acknowledged half of its probes before the cutoff"
    best = timed.row(0, named=True)
    return (f"{STATISTIC}; fastest {best['brand']}, "
            f"{format_duration(best['median_ack_seconds'])}")


def _markdown(info: StudyInfo, note: str, table: pl.DataFrame, windows: pl.DataFrame,
              per_channel: pl.DataFrame, per_account: pl.DataFrame | None = None) -> str:
    human = [c for name in HUMAN for c in SUMMARY_COLS if c.name == name]
    title = info.title or info.name
    synthetic = "\n**Synthetic data**: simulated brands in the sandbox, not real ones.\n" \
        if info.synthetic else ""
    return "\n".join([
        f"# {title}: summary", "", f"Study `{info.name}`, series `{info.series}`, {info.year}.",
        synthetic, f"_{note}._", "", "## Per brand", "", markdown(table, human),
        "Median: Kaplan–Meier, unanswered probes censored at the cutoff; — when fewer than half "
        "were answered (or resolved) before it. Mean: over answered probes only. Resolution: "
        "the first reply coded as answering the question. summary.csv has within 1 h / 24 h "
        "and business-hours medians too.", "",
        "## Per channel", "", markdown(per_channel, CHANNEL_COLS),
        *(["## Per account", "", markdown(per_account, ACCOUNT_COLS)]
          if per_account is not None else []),
        "## By send window", "", markdown(windows, WINDOW_COLS),
        f"Send window by local time in {info.timezone}: weekday = Mon–Fri 09:00–17:00, evening = "
        f"other Mon–Fri times, weekend = Sat–Sun. {_hours_note(info)}", "",
        *_accounts_note(info),
    ])


def _accounts_note(info: StudyInfo) -> list[str]:
    """Who asked, for a team study: the method travels with the numbers."""
    if not info.accounts:
        return []
    listed = "; ".join(f"{channel}: {', '.join(markdown_cell(n) for n in names)}"
                       for channel, names in sorted(info.accounts.items()))
    return [f"Researcher accounts ({listed}): each brand's probes were dealt among its "
            "channel's accounts, so that each brand heard from several and each account asked "
            "each question about equally often.", ""]


def _hours_note(info: StudyInfo) -> str:
    """Which hours the business-hours medians count: the method travels with the numbers."""
    closed = (f" Closed on the public holidays of {info.holidays} (the holidays package)."
              if info.holidays else "")
    if info.brand_holidays:
        own_calendars = ", ".join(f"{brand} ({code})" for brand, code in
                                  sorted(info.brand_holidays.items()))
        closed += (f" Brands with their own holiday calendar: {own_calendars}"
                   + ("." if info.holidays else "; no public holidays for the others."))
    if not info.hours:
        return "Business hours: Mon–Fri 09:00–17:00 in the same zone." + closed
    own = ", ".join(f"{brand} ({spec})" for brand, spec in sorted(info.hours.items()))
    return ("Business hours, in the same zone: each brand's own service hours where the study "
            f"declares them ({own}); Mon–Fri 09:00–17:00 for the others." + closed)
