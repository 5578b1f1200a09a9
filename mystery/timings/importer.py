"""Import published figures (other people's studies) so they join our own year on year.

A published-figures CSV has one header row; column order is free, an unknown column is refused
(a typo must not silently drop a figure). Required: ``study, year, brand, channel``. Optional:
the rest of ``OPTIONAL``.

Three levels of row (``level``; when empty, a row with ``responded`` is a probe row, else a
brand row):

* a **probe row** is one question to one brand: ``responded`` true or false,
  ``response_minutes`` when it was answered, optionally ``resolution_minutes``, ``question``,
  ``sent_at`` (ISO 8601 with ``Z`` or an offset) and ``cutoff_minutes``. It becomes timings.
* a **brand row** is the brand's published figure: ``response_minutes`` is its mean over the
  questions it answered, ``response_rate`` (``83.3%`` or ``0.833``) and/or ``answered`` the
  share or count answered of ``probes``, ``published_as`` ``fastest``/``slowest`` when the
  study named it so. **No rate means unknown**, never "answered everything" (write ``100%``).
  It becomes a brand row (:mod:`mystery.timings.brandrows`).
* a **study row** carries the study's own figures: ``brands``, ``probes``, ``answered``,
  ``response_rate``, its average (``response_minutes`` with ``statistic`` mean or median), and
  ``listed`` (``all``, ``fastest``, ``slowest``, ``some``: which brands the file lists). An
  aggregate such as ``ALL (40 leading UK retailers)`` belongs here, and is refused as a brand.
  It becomes a study row (:mod:`mystery.timings.studyrows`).

Times are read as published (``2:38``, ``9 h 03 min``, decimal minutes: see
:func:`mystery.durations.parse_published_minutes`); a bound (``≥ 90 %``) is refused, since it
is not a figure.
``channel`` is case-insensitive and ``twitter`` means ``x``; ``series`` defaults to ``study``.
Files may start with a BOM and use CRLF (spreadsheets write both).

Why all-or-nothing: a half-imported survey would publish a ranking with brands missing and no
sign of it. Every bad row is reported (row as a spreadsheet numbers it, column, value, why,
fix) in one :class:`~mystery.errors.ImportFileError`, and nothing from that file is accepted.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mystery.errors import ImportFileError, Problem
from mystery.timings.published import OPTIONAL, REQUIRED, Row, validate_row

if TYPE_CHECKING:
    import polars as pl

__all__ = ["OPTIONAL", "REQUIRED", "Published", "import_file", "read_published"]


@dataclass(frozen=True)
class Published:
    """What a valid published-figures file holds: probe rows as timings, brand rows and
    study rows."""

    path: Path
    timings: pl.DataFrame
    brand_rows: pl.DataFrame
    study_rows: pl.DataFrame
    studies: tuple[str, ...]


def _read_records(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    file = str(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise ImportFileError([Problem(file, "", "no such file; check the path")]) from None
    except IsADirectoryError:
        raise ImportFileError([Problem(file, "", "is a folder; name the .csv file")]) from None
    except UnicodeDecodeError:
        raise ImportFileError([Problem(file, "", "not UTF-8; save the CSV as UTF-8")]) from None
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise ImportFileError([Problem(file, "", f"not a readable CSV: {exc}")]) from None
    if not records or not any(c.strip() for c in records[0]):
        raise ImportFileError([Problem(file, "row 1", "no header row; the first row must name "
                                       "the columns, e.g. study,year,brand,channel")])
    header = [c.strip().lower() for c in records[0]]
    rows = [(n, r) for n, r in enumerate(records[1:], start=2) if any(c.strip() for c in r)]
    return header, rows


def _check_header(file: str, header: list[str]) -> None:
    problems: list[Problem] = []
    known = set(REQUIRED) | set(OPTIONAL)
    for name in header:
        if name not in known:
            problems.append(Problem(file, "row 1", f"unknown column {name!r}; known columns: "
                                    f"{', '.join(REQUIRED + OPTIONAL)}"))
    for name in sorted({n for n in header if header.count(n) > 1}):
        problems.append(Problem(file, "row 1", f"column {name!r} appears twice; keep one"))
    for name in REQUIRED:
        if name not in header:
            problems.append(Problem(file, "row 1", f"required column {name!r} is missing; add it"))
    if problems:
        raise ImportFileError(problems)


def _cross_rows(file: str, rows: list[tuple[int, dict[str, Any]]]) -> list[Problem]:
    """Rules between rows: a study has one series and year; a brand × channel appears once as
    a brand row and never as both kinds; a probe sent at one moment is listed once."""
    problems: list[Problem] = []
    first: dict[str, tuple[int, str, int]] = {}
    kinds: dict[tuple[str, str, str], tuple[int, str]] = {}
    probes_seen: dict[tuple[Any, ...], int] = {}
    for number, v in rows:
        where = f"row {number}"
        seen = first.setdefault(v["study"], (number, v["series"], v["year"]))
        if (seen[1], seen[2]) != (v["series"], v["year"]):
            problems.append(Problem(file, f"{where}, column year", f"study {v['study']!r} is "
                                    f"series {seen[1]!r}, year {seen[2]} on row {seen[0]}; a "
                                    "study has one series and one year"))
        key = (v["study"], v["brand"], v["channel"])
        if v["kind"] == "study":
            continue  # checked by _study_cross
        if key in kinds:
            other, kind = kinds[key]
            if kind != v["kind"] or kind == "brand":
                why = ("both a brand row and probe rows" if kind != v["kind"]
                       else "two brand rows")
                problems.append(Problem(file, f"{where}, column brand", f"{v['brand']!r} on "
                                        f"{v['channel']} has {why} (see row {other}); keep one"))
        else:
            kinds[key] = (number, v["kind"])
        if v["kind"] == "probe" and v.get("sent_at") is not None:
            probe = (*key, v.get("question"), v["sent_at"])
            if probe in probes_seen:
                problems.append(Problem(file, f"{where}, column sent_at", "the same probe "
                                        f"(brand, channel, question, time) is on row "
                                        f"{probes_seen[probe]}; remove the duplicate"))
            probes_seen.setdefault(probe, number)
    return problems


def _study_cross(file: str, rows: list[tuple[int, dict[str, Any]]]) -> list[Problem]:
    """Rules of study rows and named extremes: one study row per study × channel, its totals
    no smaller than what the file lists, ``listed`` true to the file, one brand named fastest
    and one slowest. Settles ``listed`` when the file leaves it empty: ``all`` when the study
    row gives no brand count or the file lists that many brands, else ``some``."""
    problems: list[Problem] = []
    listed: dict[tuple[str, str], set[str]] = {}
    probes: dict[tuple[str, str], int | None] = {}
    named: dict[tuple[str, str, str], int] = {}
    study_rows: dict[tuple[str, str], int] = {}
    for number, v in rows:
        cell = (v["study"], v["channel"])
        if v["kind"] == "study":
            if cell in study_rows:
                problems.append(Problem(file, f"row {number}, column level", f"study "
                                        f"{v['study']!r} on {v['channel']} has a study row "
                                        f"already (row {study_rows[cell]}); keep one"))
            study_rows.setdefault(cell, number)
            continue
        listed.setdefault(cell, set()).add(v["brand"])
        known = probes.get(cell, 0)
        count = 1 if v["kind"] == "probe" else v.get("probes")
        probes[cell] = None if known is None or count is None else known + count
        extreme = v.get("published_as")
        if extreme:
            if (*cell, extreme) in named:
                problems.append(Problem(file, f"row {number}, column published_as", f"study "
                                        f"{v['study']!r} on {v['channel']} names its {extreme} "
                                        f"brand on row {named[(*cell, extreme)]} already; "
                                        "keep one"))
            named.setdefault((*cell, extreme), number)
    for number, v in rows:
        if v["kind"] != "study":
            continue
        cell = (v["study"], v["channel"])
        count = len(listed.get(cell, set()))
        where = f"row {number}"
        if v["brands"] is not None and v["brands"] < count:
            problems.append(Problem(file, f"{where}, column brands", f"says {v['brands']} "
                                    f"brands but the file lists {count} on {v['channel']}; "
                                    "correct brands"))
        if v["listed"] is None:
            v["listed"] = "all" if v["brands"] in (None, count) else "some"
        elif v["listed"] == "all" and v["brands"] not in (None, count):
            problems.append(Problem(file, f"{where}, column listed", f"says all, but the file "
                                    f"lists {count} of {v['brands']} brands; write fastest, "
                                    "slowest or some"))
        if v["cutoff_seconds"] is not None:  # the study's cutoff is its rows' cutoff
            for _, other in rows:
                if (other["study"], other["channel"]) == cell and other["kind"] != "study" \
                        and other.get("cutoff_seconds") is None:
                    other["cutoff_seconds"] = v["cutoff_seconds"]
        found = probes.get(cell)
        if v["probes"] is not None and found is not None and v["probes"] < found:
            problems.append(Problem(file, f"{where}, column probes", f"says {v['probes']} "
                                    f"probes but the file's rows add up to {found}; correct "
                                    "probes"))
    return problems


def read_published(path: str | Path) -> Published:
    """Validate a published-figures CSV; raise ImportFileError listing every bad row."""
    from mystery.timings import brandrows, studyrows
    from mystery.timings import schema as timings

    path = Path(path)
    file = str(path)
    header, records = _read_records(path)
    _check_header(file, header)
    problems: list[Problem] = []
    valid: list[tuple[int, dict[str, Any]]] = []
    for number, cells in records:
        if len(cells) != len(header):
            problems.append(Problem(file, f"row {number}", f"has {len(cells)} cells but the "
                                    f"header has {len(header)}; quote cells that contain commas"))
            continue
        row = Row(file, number, dict(zip(header, cells, strict=True)))
        values = validate_row(row)
        problems.extend(row.problems)
        if not row.problems:
            valid.append((number, values))
    if not records:
        problems.append(Problem(file, "row 2", "the file has a header but no rows; add figures"))
    problems.extend(_cross_rows(file, valid))
    problems.extend(_study_cross(file, valid))
    if problems:
        raise ImportFileError(problems)
    probe_rows = [v for _, v in valid if v["kind"] == "probe"]
    return Published(
        path=path,
        timings=timings.frame({c: v.get(c) for c in timings.COLUMNS} for v in probe_rows),
        brand_rows=brandrows.frame(v for _, v in valid if v["kind"] == "brand"),
        study_rows=studyrows.frame(v for _, v in valid if v["kind"] == "study"),
        studies=tuple(sorted({v["study"] for _, v in valid})),
    )


def is_published_csv(path: Path) -> bool:
    """A CSV in ``studies/`` is a published-figures file when its header has a ``study``
    column; brands CSVs of study files start with ``name`` and are not."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        header = next(csv.reader(handle), [])
    return "study" in {c.strip().lower() for c in header}


def study_file_names(studies_dir: Path) -> dict[str, Path]:
    """Study names declared by the TOML study files in a folder (a cheap read, no validation)."""
    names: dict[str, Path] = {}
    for toml in sorted(studies_dir.glob("*.toml")):
        try:
            name = tomllib.loads(toml.read_text(encoding="utf-8-sig")).get("name")
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            continue
        if isinstance(name, str):
            names[name] = toml
    return names


def import_file(path: str | Path, studies_dir: str | Path = "studies", replace: bool = False) \
        -> tuple[Path, Published]:
    """Validate ``path`` and copy it into ``studies_dir``; nothing is written when it is invalid.

    Refused too: a study name that another imported file or a study file already uses (its
    probes would be counted twice), and overwriting a different file of the same name unless
    ``replace``. The copy is written to a temporary file and renamed, so it is all or nothing.
    """
    source = Path(path)
    published = read_published(source)
    target_dir = Path(studies_dir)
    target = target_dir / source.name
    problems: list[Problem] = []
    if target_dir.is_dir():
        owners = {name: toml for name, toml in study_file_names(target_dir).items()}
        for other in sorted(target_dir.glob("*.csv")):
            if other.resolve() == target.resolve() or not is_published_csv(other):
                continue
            try:
                for name in read_published(other).studies:
                    owners.setdefault(name, other)
            except ImportFileError:
                continue
        for name in published.studies:
            if name in owners:
                problems.append(Problem(str(source), "", f"study {name!r} is already defined by "
                                        f"{owners[name]}; rename the study in one of them"))
    if target.exists() and target.resolve() != source.resolve() and not replace \
            and target.read_bytes() != source.read_bytes():
        problems.append(Problem(str(source), "", f"{target} exists with other figures; "
                                "use --replace to overwrite it"))
    if problems:
        raise ImportFileError(problems)
    if target.resolve() != source.resolve():
        target_dir.mkdir(parents=True, exist_ok=True)
        data = source.read_bytes()
        fd, tmp = tempfile.mkstemp(dir=target_dir, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return target, published
