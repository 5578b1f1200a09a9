"""``mystery store copy``: move a study between an SQLite file and a PostgreSQL database."""

from __future__ import annotations

from typing import Annotated

import typer

from mystery.cli.console import err_console, friendly_errors
from mystery.cli.options import StudyPath

store_app = typer.Typer(help="Move a study's store between SQLite and PostgreSQL.",
                        no_args_is_help=True, rich_markup_mode=None)


@store_app.command("copy")
@friendly_errors
def copy(
    study: StudyPath,
    to: Annotated[str, typer.Option(
        "--to", help="Where to copy the store: an empty PostgreSQL database "
        "(postgresql://user@host/dbname) or a new SQLite file.", show_default=False)],
    source: Annotated[str | None, typer.Option(
        "--from", help="The store to copy; by default the .db file beside the study file.",
        show_default=False)] = None,
) -> None:
    """Copy a study's store into another, checked by comparing its timings before and after.

    The copy lands whole or not at all; the original is left as it was. Stop the study's
    runner first (the copy holds both stores while it works).
    """
    from mystery.study.load import load_study
    from mystery.timings.move import copy_study

    moved = copy_study(load_study(study), source, to)
    rows = sum(moved.rows.values())
    err_console().print(
        f"copied {moved.source} to {moved.target}: {moved.rows.get('probes', 0)} probes, "
        f"{moved.rows.get('replies', 0)} replies, {rows} rows in all; the {moved.timings} "
        "timings are identical in both", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(store_app, name="store")
