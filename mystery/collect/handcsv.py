"""Bulk entry of hand-logged probes from a CSV (``mystery log STUDY --csv FILE``).

The file (UTF-8, a header row, comma-separated; a spreadsheet's "CSV UTF-8" export is fine)::

    probe,sent_at,reply_at,code
    p0004,2026-03-02 09:14,2026-03-02 09:31,acknowledgement
    p0004,2026-03-02 09:14,2026-03-02 11:02,resolution
    p0009,2026-03-03 14:40,,

- ``probe``: the probe id, as ``mystery plan`` lists it (a hand-logged channel's probe);
- ``sent_at``: when the probe went out, local time in the study's time zone, to the minute
  (``YYYY-MM-DD HH:MM``; an offset such as ``+01:00`` may follow, and must where a clock change
  repeats the hour). It may be left empty on rows of a probe already logged as sent;
- ``reply_at``: when a reply came, in the same form; empty for "sent, no reply (yet)";
- ``code``: ``acknowledgement`` (a first response that does not answer) or ``resolution``
  (it answers the question); required with ``reply_at``, empty without it;
- ``note`` (optional column): what the brand said, kept as the reply's text.

One row per reply; a probe with two replies has two rows. Every row is checked before anything
is written: one bad row and the store is left as it was, with every problem listed by row
(numbered as a spreadsheet shows them, header = row 1), column, value and fix. Importing the
same file again changes nothing.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from mystery.collect import handlog
from mystery.errors import ImportFileError, Problem
from mystery.store.store import HandEntry, Store
from mystery.study.model import Study

COLUMNS = ("probe", "sent_at", "reply_at", "code")
OPTIONAL = ("note",)


@dataclass(frozen=True)
class CsvResult:
    rows: int
    new_entries: int  # 0 when the file had all been imported before
    settled: list[str]


def import_csv(store: Store, study: Study, path: Path, now: datetime) -> CsvResult:
    """Validate every row of ``path``, then log them all in one transaction."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ImportFileError([Problem(file, "", "no such file; check the path")]) from None
    except UnicodeDecodeError:
        raise ImportFileError([Problem(file, "", "not UTF-8; save the CSV as UTF-8")]) from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in COLUMNS if c not in header]
    unknown = [c for c in header if c not in COLUMNS + OPTIONAL]
    if missing or unknown:
        what = (f"missing column(s) {', '.join(missing)}" if missing else
                f"unknown column(s) {', '.join(unknown)}")
        raise ImportFileError([Problem(file, "row 1", f"{what}; the header must be "
                                       f"{','.join(COLUMNS)} (and optionally note)")])
    problems: list[Problem] = []
    entries: list[HandEntry] = []
    sent_in_file: dict[str, datetime] = {}
    rows = 0
    for number, raw in enumerate(reader, start=2):
        rows += 1
        if None in raw:
            problems.append(Problem(file, f"row {number}", "more cells than header columns; "
                                    "quote cells that hold commas"))
            continue
        row = {k.strip(): (v or "").strip() for k, v in raw.items()}
        reader_row = _Row(store, study, row, f"{path.name} row {number}", now, sent_in_file)
        entries += reader_row.entries()
        problems += [Problem(file, f"row {number}, column {col}", msg)
                     for col, msg in reader_row.problems]
    if problems:
        raise ImportFileError(problems)
    if rows == 0:
        raise ImportFileError([Problem(file, "", "no rows under the header; nothing to log")])
    logged = handlog.log(store, study, entries, now)
    return CsvResult(rows, logged.new, logged.settled)


class _Row:
    """One CSV row checked cell by cell; ``problems`` holds (column, message) pairs."""

    def __init__(self, store: Store, study: Study, row: dict[str, str], source: str,
                 now: datetime, sent_in_file: dict[str, datetime]) -> None:
        self.store, self.study, self.row = store, study, row
        self.source, self.now, self.sent_in_file = source, now, sent_in_file
        self.problems: list[tuple[str, str]] = []

    def _time(self, column: str) -> datetime | None:
        value = self.row.get(column, "")
        if not value:
            return None
        try:
            return handlog.parse_local_time(value, self.study.zone, self.now,
                                            date_required=True)
        except ValueError as exc:
            self.problems.append((column, f"{exc} (in {self.study.timezone})"))
            return None

    def _fail(self, column: str, exc: Exception) -> list[HandEntry]:
        self.problems.append((column, f"{self.row.get(column, '')!r}: {exc}"))
        return []

    def entries(self) -> list[HandEntry]:
        probe_id, code = self.row.get("probe", ""), self.row.get("code", "")
        sent_at, reply_at = self._time("sent_at"), self._time("reply_at")
        if not probe_id:
            self.problems.append(("probe", "empty; give the probe id from 'mystery plan'"))
        if code and not self.row.get("reply_at"):
            self.problems.append(("code", f"{code!r} without reply_at; give the reply's time "
                                  "or leave code empty"))
        if self.row.get("reply_at") and not code:
            self.problems.append(("code", "empty; a reply needs a code: "
                                  f"{' or '.join(handlog.HAND_CODES)}"))
        if self.problems:
            return []
        out: list[HandEntry] = []
        try:
            logged = handlog.loggable(self.store, probe_id).sent_at
            if sent_at is None and logged is None and probe_id not in self.sent_in_file:
                self.problems.append(("sent_at", f"empty, and {probe_id} has not been logged "
                                      "as sent; give when it was sent"))
                return []
            first = self.sent_in_file.setdefault(probe_id, sent_at) if sent_at else None
            if first is not None and sent_at is not None and first != sent_at:
                earlier = first.astimezone(self.study.zone)
                self.problems.append(("sent_at", f"{self.row['sent_at']!r} differs from an "
                                      f"earlier row of {probe_id} ({earlier:%Y-%m-%d %H:%M}); "
                                      "a probe is sent once"))
                return []
            if sent_at is not None:
                entry = handlog.sent_entry(self.store, self.study, probe_id, sent_at, self.now,
                                           self.source)
                out += [entry] if entry else []
        except handlog.HandLogError as exc:
            return self._fail(exc.field, exc)
        if reply_at is not None:
            try:
                out.append(handlog.reply_entry(
                    self.store, self.study, probe_id, reply_at, code, self.now, self.source,
                    note=self.row.get("note", ""),
                    sent_at=sent_at or self.sent_in_file.get(probe_id)))
            except handlog.HandLogError as exc:
                return self._fail(exc.field, exc)
        return out
