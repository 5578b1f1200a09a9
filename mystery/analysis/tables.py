"""Tables as files: CSV for machines, Markdown for people, both byte-stable.

Why hand-formatted cells: a float printed by a library may switch to exponent notation or
change its digits between versions, and committed results must only change when the numbers
do. Every CSV cell is formatted here with a fixed rule per kind, at full precision (minutes
with six decimals, finer than a millisecond; rates as exactly as known, a published 98 % stays
``0.98``: :func:`mystery.durations.minutes_cell`, :func:`~mystery.durations.rate_cell`), empty
when unknown; Markdown shows the same values the way published surveys do, rounded for
display only (``9 h 03 min``, ``2 min 38 s``, ``93.3 %``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Literal

from mystery.durations import format_duration, minutes_cell, rate_cell, short_duration
from mystery.text import markdown_cell, spreadsheet_safe

if TYPE_CHECKING:
    import polars as pl

Kind = Literal["text", "int", "minutes", "rate", "date", "bool", "year", "p", "change"]


@dataclass(frozen=True)
class Col:
    """One output column: the frame column it reads, its CSV name, its header, its kind.

    ``minutes`` columns read seconds and print minutes (CSV) or a human duration (Markdown)."""

    source: str
    name: str
    kind: Kind = "text"
    header: str = ""

    @property
    def title(self) -> str:
        return self.header or self.name.replace("_", " ")


def csv_cell(value: object, kind: Kind) -> str:
    """The CSV form of one value (empty when unknown)."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if kind == "minutes":
        return minutes_cell(float(value))  # type: ignore[arg-type]
    if kind == "rate":
        return rate_cell(float(value))  # type: ignore[arg-type]
    if kind == "p":  # a p-value: six decimals, never exponent notation
        return f"{float(value):.6f}"  # type: ignore[arg-type]
    if kind == "change":  # a change of rate, as a share (0.1333 is 13.33 points)
        return f"{float(value):.4f}"  # type: ignore[arg-type]
    if kind == "bool":
        return "true" if value else "false"
    if kind == "date" and isinstance(value, datetime | date):
        return value.strftime("%Y-%m-%d")
    return str(value)


def human_cell(value: object, kind: Kind) -> str:
    """The Markdown (and terminal) form of one value; an em dash when unknown."""
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    if kind == "minutes":
        return format_duration(float(value))  # type: ignore[arg-type]
    if kind == "rate":
        return f"{float(value) * 100:.1f} %"  # type: ignore[arg-type]
    if kind == "p":
        return "< 0.001" if float(value) < 0.001 else f"{float(value):.3f}"  # type: ignore[arg-type]
    if kind == "change":
        return f"{float(value) * 100:+.1f} pts"  # type: ignore[arg-type]
    if kind == "bool":
        return "yes" if value else "no"
    if kind == "date" and isinstance(value, datetime | date):
        return value.strftime("%Y-%m-%d")
    return str(value).replace("|", "\\|")


def csv_bytes(df: pl.DataFrame, cols: Sequence[Col]) -> bytes:
    """CSV with a header of ``cols`` names, ``\\n`` line ends, cells by ``csv_cell``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([c.name for c in cols])
    writer.writerows(zip(*_cells(df, cols, csv_cell), strict=True))
    return buffer.getvalue().encode("utf-8")


def _cells(
    df: pl.DataFrame, cols: Sequence[Col], cell: Callable[[object, Kind], str]
) -> list[list[str]]:
    """Every column's cells, column by column: one kind per column, and text columns of
    strings (the most cells) copied as they are instead of dispatched cell by cell."""
    import polars as pl

    columns = []
    for col in cols:
        values = df[col.source].to_list()
        if cell is csv_cell and col.kind == "text" and df.schema[col.source] == pl.String:
            # Names come from studies and imported files: never a formula in a spreadsheet.
            columns.append(["" if v is None else spreadsheet_safe(v) for v in values])
        else:
            columns.append([cell(v, col.kind) for v in values])
    return columns


def _cells_rows(df: pl.DataFrame, cols: Sequence[Col]) -> list[list[str]]:
    """Each row's cells as people read them, text cells not yet escaped for Markdown."""
    return [list(row) for row in zip(*_cells(df, cols, _plain_cell), strict=True)]


def _plain_cell(value: object, kind: Kind) -> str:
    return human_cell(value, kind) if kind != "text" or value is None else str(value)


def rows_for_humans(df: pl.DataFrame, cols: Sequence[Col]) -> list[list[str]]:
    """Each row's cells as people read them (used for Markdown and the terminal table)."""
    return [list(row) for row in zip(*_cells(df, cols, human_cell), strict=True)]


def markdown(df: pl.DataFrame, cols: Sequence[Col]) -> str:
    """A GitHub-flavoured Markdown table; numbers right-aligned."""
    if df.is_empty():
        return "_No rows._\n"
    lines = ["| " + " | ".join(c.title for c in cols) + " |"]
    lines.append("| " + " | ".join(
        "---" if c.kind in ("text", "date", "year", "bool") else "---:" for c in cols
    ) + " |")
    text = [c.kind == "text" for c in cols]
    lines += ["| " + " | ".join(markdown_cell(cell) if is_text else cell
                                for cell, is_text in zip(cells, text, strict=True)) + " |"
              for cells in _cells_rows(df, cols)]
    return "\n".join(lines) + "\n"


#: The median convention, stated in every method note.
MEDIAN_NOTE = ("medians: Kaplan–Meier, unanswered probes censored at the cutoff, the first time "
               "at most half still wait (the lower middle time, never an average), 95 % "
               "intervals by Greenwood's log-log band")


def plural(count: object, word: str) -> str:
    """``1 brand``, ``10 brands``: a count in a note reads as English."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def span(first: object, last: object) -> str:
    """``2026-03-02 to 2026-03-08`` (or the one date, or ``dates not published``)."""
    if not isinstance(first, datetime) or not isinstance(last, datetime):
        return "dates not published"
    a, b = first.strftime("%Y-%m-%d"), last.strftime("%Y-%m-%d")
    return a if a == b else f"{a} to {b}"


def cutoff_text(low: object, high: object) -> str:
    """``cutoff 7 d 0 h``, a range when studies differ, or ``cutoff not stated``."""
    if not isinstance(low, float) or not isinstance(high, float):
        return "cutoff not stated"
    if low == high:
        return f"cutoff {short_duration(low)}"
    return f"cutoff {short_duration(low)} to {short_duration(high)}"


def hand_timed(channels: Iterable[str]) -> str:
    """The method note's word on hand-logged channels: no platform vouches for their times."""
    from mystery.words import HAND_LOGGED_CHANNELS

    hand = sorted(set(channels) & set(HAND_LOGGED_CHANNELS))
    return (f"{', '.join(hand)}: timed by hand by the researcher, to the minute" if hand
            else "")


def method_note(
    *,
    probes: object,
    brands: object,
    channels: Sequence[str],
    first: object,
    last: object,
    cutoff_low: object,
    cutoff_high: object,
    timezone: str = "UTC",
    synthetic: bool = False,
    published: bool = False,
) -> str:
    """The line that travels with every table and chart: n, dates, channels, cutoff, method."""
    n = f"n = {plural(probes, 'probe')} to {plural(brands, 'brand')}" if probes is not None else (
        f"n = {plural(brands, 'brand')} (probe counts not all published)"
    )
    parts = [
        n,
        f"channels: {', '.join(channels)}",
        f"sent {span(first, last)}" + (f" ({timezone})" if isinstance(first, datetime) else ""),
        cutoff_text(cutoff_low, cutoff_high),
        MEDIAN_NOTE,
    ]
    if hand := hand_timed(channels):
        parts.append(hand)
    if published:
        parts.append("includes published brand figures (means over answered probes)")
    if synthetic:
        parts.append("SYNTHETIC data (sandbox), not real brands")
    return " · ".join(parts)
