"""The brands CSV a study names with ``brands_csv``: one row per brand, as a spreadsheet keeps
them, for studies with more brands than a TOML file comfortably holds.

Each row becomes the dict a ``[[brands]]`` table would give, so the study model validates both
alike; a row's problems are reported by its spreadsheet row number (``brands.csv row 4``).
Problems with the file itself (missing, not UTF-8, a header mystery cannot read) are collected
with the study's others, never raised one at a time.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from mystery.errors import Problem
from mystery.words import CHANNELS


def read_brands_csv(path: Path, problems: list[Problem]) -> list[dict[str, Any]]:
    """Brands CSV: name, sector, country, one column per channel handle, ``<channel>_aliases``
    (separated by ``;``), profile, hours (``parse_hours``; empty = the study default), holidays
    (the brand's own public-holiday calendar, e.g. ``GB-SCT``; empty = the study's). BOM and
    CRLF are accepted; rows are numbered as a spreadsheet shows them (header = row 1)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        problems.append(Problem(str(path), "", "brands CSV not found; check brands_csv"))
        return []
    except IsADirectoryError:
        problems.append(Problem(str(path), "", "is a folder; brands_csv must name a .csv file"))
        return []
    except UnicodeDecodeError:
        problems.append(Problem(str(path), "", "not UTF-8; save the CSV as UTF-8"))
        return []
    except OSError as exc:
        problems.append(Problem(str(path), "", f"cannot read it: {exc.strerror}"))
        return []
    if not text.strip():
        problems.append(Problem(str(path), "", "the brands CSV is empty; write a header row "
                                "(e.g. name,sector,country,x,profile) and one row per brand"))
        return []
    # newline="" keeps a quoted line break inside its cell, where the checks below can see it.
    reader = csv.DictReader(io.StringIO(text, newline=""))
    known = {"name", "sector", "country", "profile", "hours", "holidays"}
    known |= set(CHANNELS) | {f"{c}_aliases" for c in CHANNELS}
    fields = reader.fieldnames or []
    if "name" not in fields:
        hint = "add one"
        if len(fields) == 1 and ";" in fields[0]:
            hint = "the columns are separated by ';': save the CSV with ',' between columns"
        elif len(fields) == 1 and "\t" in fields[0]:
            hint = "the columns are separated by tabs: save the CSV with ',' between columns"
        problems.append(Problem(str(path), "row 1", f"header has no 'name' column; {hint}"))
        return []
    repeated = sorted({f for f in fields if fields.count(f) > 1})
    if repeated:
        problems.append(Problem(str(path), "row 1", f"column(s) {', '.join(repeated)} appear "
                                "more than once; keep one of each"))
        return []
    unknown = [f for f in fields if f not in known]
    if unknown:
        problems.append(
            Problem(
                str(path), "row 1", f"unknown column(s) {', '.join(unknown)}; known: "
                "name, sector, country, profile, hours, holidays, a channel name, "
                "<channel>_aliases",
            )
        )
        return []
    rows: list[dict[str, Any]] = []
    for number, row in enumerate(reader, start=2):
        if None in row:
            problems.append(Problem(str(path), f"row {number}", "more cells than header columns"))
            continue
        if any("\n" in cell or "\r" in cell for cell in row.values() if cell):
            problems.append(Problem(
                str(path), f"row {number}", "a cell spans several lines, which usually means "
                "an unclosed quote (\"); close the quote or remove it",
            ))
            continue
        brand: dict[str, Any] = {"name": row["name"] or ""}
        for key in ("sector", "country"):
            if row.get(key):
                brand[key] = row[key]
        if row.get("profile"):
            brand["profile"] = row["profile"].strip()
        if (row.get("hours") or "").strip():
            brand["hours"] = row["hours"]  # a string: Brand.hours parses it, naming the row
        if (row.get("holidays") or "").strip():
            brand["holidays"] = row["holidays"]  # Brand.holidays checks the code
        brand["handles"] = {c: row[c] for c in CHANNELS if row.get(c)}
        brand["aliases"] = {
            c: row[f"{c}_aliases"].split(";") for c in CHANNELS if row.get(f"{c}_aliases")
        }
        brand["_row"] = number
        rows.append(brand)
    if not rows and not problems:
        problems.append(Problem(str(path), "row 2", "no brands below the header; add one row "
                                "per brand"))
    return rows
