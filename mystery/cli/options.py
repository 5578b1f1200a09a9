"""What several commands share: the study argument, ``--db``, ``--results``, and writing rows
to stdout.

Why one module: the same argument spelt three times drifted (two helps for ``--db``), and a
fix to CSV output (line ends, encoding) must reach every command that writes CSV.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

StudyPath = Annotated[
    Path, typer.Argument(help="The study file (TOML), e.g. studies/demo.toml.", show_default=False)
]
DbOption = Annotated[
    str | None,
    typer.Option("--db", help="The study's store: an SQLite file (by default the .db file beside "
                 "the study file) or a PostgreSQL database, postgresql://user@host/dbname.",
                 show_default=False),
]

ResultsOption = Annotated[
    Path, typer.Option("--results", help="The folder that holds results/<study>/ folders.")
]


Format = Literal["table", "csv", "json"]
FormatOption = Annotated[
    Format,
    typer.Option("--format", help="How to write the rows to stdout: a table for people, or CSV "
                 "or JSON for scripts (never cut to the terminal's width)."),
]


def write_csv(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Rows as CSV on stdout: a header, ``\\n`` line ends, whatever the platform."""
    import csv

    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)


def write_json(value: Any) -> None:
    """``value`` as indented JSON on stdout, non-ASCII text as itself."""
    import json

    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


ColourOption = Annotated[
    str | None,
    typer.Option("--colour", help="The highlighted (client) brand's colour as #RRGGBB, e.g. the "
                 "client's own; a strong blue by default.", metavar="#RRGGBB", show_default=False),
]


def colour_of(value: str | None) -> str:
    """``--colour`` checked before any work, so that a mistyped colour is one message."""
    from mystery.analysis.charts import HIGHLIGHT, check_colour
    from mystery.errors import MysteryError

    if value is None:
        return HIGHLIGHT
    try:
        return check_colour(value)
    except ValueError as exc:
        raise MysteryError(f"--colour {exc}") from None
