"""Commands that analyse and publish: export, report, import, publish.

Each parses its options, calls one library function (``mystery.analysis``,
``mystery.timings.importer``, ``mystery.publish``) and renders what it returns: data and tables to
stdout, what was written and any problem to stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mystery.cli.console import err_console, friendly_errors, out_console, shown_path
from mystery.cli.options import (
    ColourOption,
    DbOption,
    Format,
    FormatOption,
    ResultsOption,
    StudyPath,
    colour_of,
    write_json,
)
from mystery.words import BrandStat

if TYPE_CHECKING:
    from mystery.study.load import LoadedStudy

HighlightOption = Annotated[
    list[str] | None,
    typer.Option("--highlight", help="A brand to draw in colour with its peers in grey "
                 "(repeat for more); brand names as in the study.", metavar="BRAND",
                 show_default=False),
]


@friendly_errors
def export(study: StudyPath, db: DbOption = None, results: ResultsOption = Path("results")) \
        -> None:
    """Write the study's timings (one row per probe, no reply text) to results/<study>/."""
    from mystery.publish import export_study
    from mystery.study.load import load_study

    for path in export_study(load_study(study), db, results):
        err_console().print(f"wrote {shown_path(path)}")


@friendly_errors
def report(
    study: StudyPath,
    db: DbOption = None,
    results: ResultsOption = Path("results"),
    highlight: HighlightOption = None,
    output: FormatOption = "table",
    colour: ColourOption = None,
) -> None:
    """Write the study's summary (CSV, Markdown) and chart, and print the summary table."""
    from mystery.study.load import load_study

    show_report(load_study(study), db, results, highlight or (), output=output,
                colour=colour_of(colour))


_SHORT = {  # terminal headers; summary.md has the long ones
    "acknowledged": "Acked", "median_ack_minutes": "Median ack.",
    "median_resolution_minutes": "Median res.", "mean_ack_minutes_answered_only": "Mean ack.*",
}


def _json_value(cell: str) -> object:
    """A summary.csv cell as JSON: a number where it is one, null where it is empty."""
    if cell == "":
        return None
    try:
        number = float(cell)
    except ValueError:
        return cell
    return int(number) if number.is_integer() and "." not in cell else number


def show_report(
    loaded: LoadedStudy, db: str | None = None, results: Path = Path("results"),
    highlight: Sequence[str] = (), *, output: Format = "table", colour: str = "",
) -> None:
    """Write a study's report and print its per-brand table (stdout) and the files (stderr).

    Shared by ``mystery report`` and by ``mystery run`` when a study finishes. ``output``
    csv is summary.csv's rows; json the same rows as objects, unknowns as null."""
    from rich.table import Table

    from mystery.analysis.report import HUMAN, SUMMARY_COLS
    from mystery.analysis.tables import csv_bytes, rows_for_humans
    from mystery.publish import report_study

    built = report_study(loaded, db, results, highlight=highlight,
                         colour=colour or colour_of(None))
    if output != "table":
        if output == "csv":
            sys.stdout.write(csv_bytes(built.summary, SUMMARY_COLS).decode("utf-8"))
        else:
            import csv as csvlib

            rows = csvlib.DictReader(csv_bytes(built.summary, SUMMARY_COLS)
                                     .decode("utf-8").splitlines())
            write_json([{k: _json_value(v) for k, v in row.items()} for row in rows])
        for path in built.paths:
            err_console().print(f"wrote {shown_path(path)}")
        return
    cols = [c for name in HUMAN for c in SUMMARY_COLS if c.name == name]
    title = f"{loaded.study.name}: per brand" + (" (synthetic)" if loaded.study.synthetic else "")
    table = Table(title=title, title_justify="left", caption_justify="left",
                  caption="Medians: Kaplan–Meier, unanswered probes censored at the cutoff. "
                  "* Mean over answered probes only.")
    # The interval's two ends read as one range ("9 min 36 s – open"), and cells wrap between
    # words: with the intervals the table is wider than an 80-column terminal, and a time cut
    # to "7 h 41…" would be a wrong time, not a short one.
    names = [c.name for c in cols]
    low, high = names.index("median_ack_ci_low_minutes"), names.index("median_ack_ci_high_minutes")
    cells_by_row = rows_for_humans(built.summary, cols)
    for i, col in enumerate(cols):
        if i == high:
            continue
        title = "95 % CI" if i == low else _SHORT.get(col.name, col.title)
        # Names are never cut: the times give way first, wrapping between their words.
        whole = max((len(r[i]) for r in cells_by_row), default=0) if col.kind == "text" else None
        table.add_column(title, justify="left" if col.kind == "text" or i == low else "right",
                         min_width=min(whole, 24) if whole else None)
    for cells in cells_by_row:
        ends = (cells[low], cells[high])
        cells[low] = "—" if ends == ("—", "—") else " – ".join(
            "open" if end == "—" else end for end in ends)
        table.add_row(*(cell for i, cell in enumerate(cells) if i != high))
    out_console().print(table)
    for path in built.paths:
        err_console().print(f"wrote {shown_path(path)}")


@friendly_errors
def import_(
    file: Annotated[Path, typer.Argument(help="A published-figures CSV (see README: import "
                                              "format).", show_default=False)],
    studies: Annotated[Path, typer.Option("--studies", help="The folder to copy it into.")] =
    Path("studies"),
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite a different file of the "
                                          "same name in the studies folder.")] = False,
) -> None:
    """Check a CSV of published figures and copy it into studies/ (nothing if any row is bad)."""
    from mystery.timings.importer import import_file

    target, published = import_file(file, studies, replace=replace)
    probes = published.timings.height
    brands = published.brand_rows.height
    whole = published.study_rows.height
    err_console().print(
        f"{file}: OK: {', '.join(published.studies)}: {probes} probe rows, {brands} brand rows"
        + (f", {whole} study row{'s' if whole > 1 else ''}" if whole else "")
    )
    out_console().print(shown_path(target))


@friendly_errors
def publish(
    check: Annotated[bool, typer.Option("--check", help="Write nothing under results/; exit 1 "
                                        "naming every file there that is stale or "
                                        "missing.")] = False,
    recompute: Annotated[bool, typer.Option("--recompute", help="Recompute every table even when "
                                            "the memo of the last publish or check of this "
                                            "folder vouches for them (a fresh clone has "
                                            "none).")] = False,
    root: Annotated[Path, typer.Option("--root", help="The project folder holding studies/ and "
                                       "results/.")] = Path("."),
    brand_stat: Annotated[BrandStat, typer.Option("--brand-stat", help="A brand's time in "
                                                  "rankings: its mean over answered probes, or "
                                                  "its Kaplan–Meier median.")] = "mean",
    highlight: HighlightOption = None,
    jobs: Annotated[int | None, typer.Option("--jobs", min=1, help="Draw charts in this many "
                                             "processes; by default one per CPU.",
                                             show_default=False)] = None,
    colour: ColourOption = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the results, complete, into "
                                             "this folder instead of results/ (which is left "
                                             "untouched).", show_default=False)] = None,
) -> None:
    """Regenerate every study report and series under results/ from studies/ and timings."""
    from mystery import publish as publishing

    chosen = colour_of(colour)
    if check:
        if out is not None:
            from mystery.errors import MysteryError

            raise MysteryError("--check compares results/ itself; leave --out out")
        outcomes = publishing.check(root, brand_stat=brand_stat, highlight=highlight or (),
                                    colour=chosen, recompute=recompute)
        bad = [o for o in outcomes if o.state != "unchanged"]
        for outcome in bad:
            err_console().print(f"{outcome.path}: {outcome.state}")
        if bad:
            err_console().print(f"Error: {len(bad)} of {len(outcomes)} files under results/ are "
                                "stale or missing; run 'mystery publish' and commit them.")
            raise typer.Exit(1)
        err_console().print(f"results/ is current: {len(outcomes)} files checked.")
        return
    outcomes = publishing.publish(root, brand_stat=brand_stat, highlight=highlight or (),
                                  workers=jobs, out=out, colour=chosen, recompute=recompute)
    written = [o for o in outcomes if o.state == "written"]
    for outcome in written:
        err_console().print(f"wrote {outcome.path}")
    err_console().print(f"{len(written)} of {len(outcomes)} files changed.")


def register(app: typer.Typer) -> None:
    """Add the analysing commands to the app."""
    app.command()(export)
    app.command()(report)
    app.command("import")(import_)
    app.command()(publish)
