"""Coding replies by hand: the review queue, codes files, and agreement between coders.

Why people code replies at all: the automatic rule (:func:`mystery.coding.rules.auto_code`) only
spots holding phrases, and a resolution time is only as good as the decision "this reply answers".
Each coder's codes are kept apart in the store (one row per reply and coder), so a second
coder can code the same replies blind and :func:`agreement` can report Cohen's kappa, the
figure reviewers ask for before they trust hand-coded data. Only the main coder's codes drive
the timings (:mod:`mystery.coding.coders`).

A codes CSV has the columns :data:`COLUMNS` (plus ``text`` when exported with text). On import
only ``channel``, ``message_id`` and ``code`` are required; every row is taken as the importing
coder's code, except rows whose ``code`` is empty (left uncoded). ``code`` accepts the full name
or the review key (``a``, ``r``, ``n``), in any case. The file is validated whole (row as a
spreadsheet numbers it, column, value, why, fix) and written in one transaction, so a bad file
changes nothing (DESIGN.md, Errors).
"""

from __future__ import annotations

import csv
import errno
import io
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import IO

from mystery.clock import iso
from mystery.coding.rules import CODES, ProbeTimes, probe_times
from mystery.errors import ImportFileError, MysteryError, Problem
from mystery.store.store import MAIN_CODER, ProbeRow, ReplyRow, Store
from mystery.text import spreadsheet_safe, terminal_safe
from mystery.words import Code

COLUMNS = ("probe", "channel", "message_id", "brand", "reply_at", "code", "coder", "source")
KEYS: dict[str, Code] = {"a": "acknowledgement", "r": "resolution", "n": "not_brand"}
"""The review keystrokes, also accepted in a codes file's ``code`` column."""

Key = tuple[str, str]  # (channel, message_id): how a reply is named everywhere


def _key(reply: ReplyRow) -> Key:
    return reply.channel, reply.message_id


def coder_codes(store: Store, coder: str) -> dict[Key, str]:
    """One coder's manual codes (a coder sees their own work, not the latest of anyone's)."""
    return {(ch, mid): code for ch, mid, code, who, _ in store.code_rows() if who == coder}


def check_coder(coder: str) -> str:
    name = coder.strip()
    if not name or any(c in name for c in ",\n\r\t"):
        raise MysteryError(f"coder name {coder!r} is not usable; pass --coder with a short name "
                           "such as your initials")
    return name


# -- the review queue ----------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewItem:
    """One reply to code, with the whole thread it sits in (a coder judges "answers" in
    context: a second reply may only make sense after the first)."""

    probe: ProbeRow
    thread: tuple[ReplyRow, ...]
    reply: ReplyRow


@dataclass
class ReviewSession:
    """What ``mystery code`` walks through: replies in probe order, then time order.

    ``everything`` includes replies this coder already coded (to revise them)."""

    store: Store
    coder: str
    everything: bool = False
    queue: list[ReviewItem] = field(init=False)
    total: int = field(init=False)
    coded: int = field(default=0, init=False)
    skipped: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.coder = check_coder(self.coder)
        done = coder_codes(self.store, self.coder)
        probes = self.store.probes()
        threads = self.store.replies_for(p.id for p in probes)
        self.queue = []
        self.total = 0
        for probe in probes:
            thread = tuple(threads.get(probe.id, ()))
            self.total += len(thread)
            self.queue += [ReviewItem(probe, thread, r) for r in thread
                           if self.everything or _key(r) not in done]

    def uncoded(self) -> int:
        """Replies this coder has not coded yet (skipped ones included)."""
        return self.total - len(self.codes())

    def codes(self) -> dict[Key, str]:
        """This coder's current codes, read afresh so a thread shows what was just coded."""
        return coder_codes(self.store, self.coder)

    def times(self, item: ReviewItem) -> ProbeTimes | None:
        """The probe's times as this coder's codes make them (None: never sent)."""
        if item.probe.sent_at is None:
            return None
        return probe_times(item.probe.sent_at, item.thread, self.codes(), self.store.cutoff())

    def mark(self, item: ReviewItem, key: str, now: datetime) -> str | None:
        """Apply one review keystroke; returns the code stored, or None for a skip."""
        if key == "s":
            self.skipped += 1
            return None
        code = KEYS[key]
        self.store.set_code(item.reply.channel, item.reply.message_id, code, self.coder, now)
        self.coded += 1
        return code


# -- codes files -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeRow:
    """One reply in a codes file, with its effective code: the coder's, else the automatic."""

    probe: str
    channel: str
    message_id: str
    brand: str
    reply_at: datetime
    code: str
    coder: str
    source: str  # "manual" or "auto"
    text: str


def code_rows(store: Store, coder: str | None = None) -> list[CodeRow]:
    """Every reply with its effective code for ``coder``; with no coder, the code the timings
    use (the main coder's, else the automatic one: ``mystery.coding.coders``)."""
    if coder is None:
        coder = store.meta(MAIN_CODER)
    manual = {(ch, mid): (code, who) for ch, mid, code, who, _ in store.code_rows()
              if who == coder}
    probes = store.probes()
    threads = store.replies_for(p.id for p in probes)
    rows = []
    for probe in probes:
        for r in threads.get(probe.id, ()):
            code, who = manual.get(_key(r), (r.auto_code, ""))
            rows.append(CodeRow(probe.id, r.channel, r.message_id, probe.brand, r.created_at,
                                code, who, "manual" if who else "auto", r.text))
    return rows


_SIGNATURE = re.compile(
    r"(?:(?<=\s)|^)([\^~\-–—])\s?[A-Z][\w.'’-]{0,20}(?:\s[A-Z][\w.'’-]{0,20})?[\s.!]*\Z"
)


def redact_signature(text: str) -> str:
    """Hide an agent's sign-off at the end of a reply (``^JS``, ``-Sam``, ``~Jo B.``).

    Why: the brand is the subject of a study, its agents are not, and a first name plus a
    brand can identify a person. A marker must follow a space (``well-known`` is not a
    signature); a capitalised last word after a dash is redacted even when it is no name,
    because hiding a word costs less than publishing a person."""
    return _SIGNATURE.sub(lambda m: f"{m.group(1)}[redacted]", text.rstrip())


def write_codes(rows: Iterable[CodeRow], handle: IO[str], *, with_text: bool = False,
                terminal: bool = False) -> None:
    """The codes CSV. ``terminal``: the handle is a terminal (``--export -`` read by a
    person), so every cell is made :func:`~mystery.text.terminal_safe`: a reply's escape
    sequences would otherwise retitle, clear or write the clipboard of the coder's terminal.
    A file or a pipe gets the text as it is (a spreadsheet-safe CSV cell)."""
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow([*COLUMNS, "text"] if with_text else COLUMNS)
    for r in rows:
        cells = [r.probe, r.channel, r.message_id, r.brand, iso(r.reply_at), r.code, r.coder,
                 r.source]
        if with_text:
            cells.append(spreadsheet_safe(redact_signature(r.text)))
        writer.writerow([terminal_safe(c, keep_newlines=True) for c in cells] if terminal
                        else cells)


def export_codes(store: Store, path: Path, coder: str | None = None, *,
                 with_text: bool = False) -> int:
    """Write the codes file; a temporary file renamed into place, so never half a file, and
    a file that cannot be written is one message with the old one untouched."""
    rows = code_rows(store, coder)
    try:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise MysteryError(f"cannot write {path}: {exc.strerror}; name a file in a folder you "
                           "may write") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            write_codes(rows, handle, with_text=with_text)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise MysteryError(f"cannot write {path}: {exc.strerror}; the file there, if any, "
                               "is as it was") from None
        raise
    return len(rows)


@dataclass(frozen=True)
class CodeRecord:
    """One valid row of a codes file as read (``code`` None: left uncoded)."""

    row: int
    channel: str
    message_id: str
    code: str | None
    probe: str
    coder: str
    source: str


_SCIENTIFIC = re.compile(r"^\d(?:\.\d+)?e\+?\d+$", re.IGNORECASE)


def _records(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    file = str(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
        records = list(csv.reader(io.StringIO(text, newline="")))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        why = ("no such file; check the path" if isinstance(exc, FileNotFoundError) else
               "is a folder; name the .csv file" if isinstance(exc, IsADirectoryError) else
               "not UTF-8; save the CSV as UTF-8" if isinstance(exc, UnicodeDecodeError) else
               f"cannot be read: {exc}")
        raise ImportFileError([Problem(file, "", why)]) from None
    header = [c.strip().lower() for c in records[0]] if records else []
    problems = [Problem(file, "row 1", f"unknown column {n!r}; a codes file has the columns "
                        f"{', '.join(COLUMNS)} (and text)")
                for n in header if n not in (*COLUMNS, "text")]
    problems += [Problem(file, "row 1", f"column {n!r} appears twice; keep one")
                 for n in sorted({n for n in header if header.count(n) > 1})]
    problems += [Problem(file, "row 1", f"required column {n!r} is missing; export a codes file "
                         "with 'mystery code STUDY --export FILE.csv' to start from")
                 for n in ("channel", "message_id", "code") if n not in header]
    rows = [(n, r) for n, r in enumerate(records[1:], start=2) if any(c.strip() for c in r)]
    if not problems and not rows:
        problems.append(Problem(file, "row 2", "the file has no rows; add codes"))
    if problems:
        raise ImportFileError(problems)
    return header, rows


def read_codes(path: str | Path) -> list[CodeRecord]:
    """Read and check a codes file on its own (no store needed); raise ImportFileError
    listing every bad row."""
    records, problems = _parse(Path(path))
    if problems:
        raise ImportFileError(problems)
    return records


def _parse(path: Path) -> tuple[list[CodeRecord], list[Problem]]:
    """The well-formed rows and the problems of the others (the header must be sound)."""
    file = str(path)
    header, rows = _records(path)
    problems: list[Problem] = []
    out: list[CodeRecord] = []
    seen: dict[Key, int] = {}
    for number, cells in rows:
        if len(cells) != len(header):
            problems.append(Problem(file, f"row {number}", f"has {len(cells)} cells but the "
                                    f"header has {len(header)}; quote cells that contain commas"))
            continue
        v = {k: c.strip() for k, c in zip(header, cells, strict=True)}
        bad = len(problems)

        def problem(column: str, why: str, v: dict[str, str] = v, number: int = number) -> None:
            problems.append(Problem(file, f"row {number}, column {column}",
                                    f"{v.get(column, '')!r}: {why}"))

        for column in ("channel", "message_id"):
            if not v[column]:
                problem(column, "is empty; copy it from the exported codes file")
        if _SCIENTIFIC.match(v["message_id"]):
            problem("message_id", "a spreadsheet turned the id into a number and lost digits; "
                    "re-export, and open the file with message_id as a text column")
        typed = v["code"].lower()
        code = KEYS.get(typed, typed) or None
        if code is not None and code not in CODES:
            problem("code", f"not a code; use {', '.join(CODES)} (or a, r, n), or leave it "
                    "empty for a reply you did not code")
        if v.get("source", "") not in ("", "manual", "auto"):
            problem("source", "use manual or auto, or leave it empty")
        key = (v["channel"], v["message_id"])
        if key in seen and v["message_id"]:
            problem("message_id", f"the same reply is on row {seen[key]}; keep one")
        seen.setdefault(key, number)
        if len(problems) == bad:
            out.append(CodeRecord(number, key[0], key[1], code, v.get("probe", ""),
                                  v.get("coder", ""), v.get("source", "")))
    return out, problems


def _row_number(problem: Problem) -> int:
    return int(re.search(r"\d+", problem.where).group())  # type: ignore[union-attr]


@dataclass(frozen=True)
class Imported:
    written: int
    uncoded: int  # rows left with an empty code
    changed: int  # codes that differ from the automatic code


def import_codes(store: Store, path: str | Path, coder: str, now: datetime) -> Imported:
    """Take a codes file as ``coder``'s codes: every row checked against the store, then all
    written in one transaction, or nothing when any row is wrong."""
    coder = check_coder(coder)
    file = str(path)
    records, problems = _parse(Path(path))
    replies = {_key(r): r for r in store.replies()}
    others: dict[str, list[int]] = {}
    for rec in records:
        where = f"row {rec.row}, column"
        reply = replies.get((rec.channel, rec.message_id))
        if reply is None:
            problems.append(Problem(file, f"{where} message_id", f"{rec.message_id!r}: no reply "
                                    f"with this id on {rec.channel!r} in {store.path}; was the "
                                    "file exported from another study, or the id rounded by a "
                                    "spreadsheet? Fix or remove the row"))
        elif rec.probe and rec.probe != reply.probe_id:
            problems.append(Problem(file, f"{where} probe", f"{rec.probe!r}: this reply belongs "
                                    f"to probe {reply.probe_id!r}; was the file exported from "
                                    "another study?"))
        if rec.coder and rec.coder != coder and rec.source != "auto":
            others.setdefault(rec.coder, []).append(rec.row)
    for other, numbers in sorted(others.items()):
        listed = ", ".join(map(str, numbers[:5])) + (", …" if len(numbers) > 5 else "")
        rows = "rows" if len(numbers) > 1 else "row"
        problems.append(Problem(file, f"{rows} {listed}, column coder", f"{other!r}: these codes "
                                f"are {other}'s, not {coder}'s; pass --coder {other}, or clear "
                                "the coder column to make them yours"))
    if problems:
        raise ImportFileError(sorted(problems, key=_row_number))
    coded = [r for r in records if r.code is not None]
    written = store.set_codes(((r.channel, r.message_id, str(r.code)) for r in coded), coder,
                              now)
    changed = sum(r.code != replies[(r.channel, r.message_id)].auto_code for r in coded)
    return Imported(written, len(records) - len(coded), changed)


# -- agreement between coders --------------------------------------------------------------


@dataclass(frozen=True)
class Kappa:
    n: int
    observed: float
    expected: float
    kappa: float | None  # None: undefined, both coders used one and the same code throughout


def cohen_kappa(pairs: Sequence[tuple[str, str]]) -> Kappa:
    """Cohen's kappa: agreement beyond what the two coders' own code frequencies predict.

    κ = (pₒ − pₑ) / (1 − pₑ), pₑ = Σ_c p_A(c)·p_B(c). Computed in fractions, so a hand-checked
    example gives exactly the textbook value."""
    n = len(pairs)
    if n == 0:
        raise ValueError("kappa needs at least one pair")
    observed = Fraction(sum(a == b for a, b in pairs), n)
    a_counts, b_counts = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    expected = Fraction(sum(a_counts[c] * b_counts[c] for c in a_counts), n * n)
    kappa = None if expected == 1 else (observed - expected) / (1 - expected)
    return Kappa(n, float(observed), float(expected), None if kappa is None else float(kappa))


@dataclass(frozen=True)
class Disagreement:
    probe: str
    channel: str
    message_id: str
    code_a: str
    code_b: str


@dataclass(frozen=True)
class Agreement:
    coder_a: str
    coder_b: str
    kappa: Kappa
    disagreements: list[Disagreement]


def _coded(records: list[CodeRecord]) -> dict[Key, CodeRecord]:
    """Rows a person coded: an exported ``auto`` row is the rule's code, not a coder's."""
    return {(r.channel, r.message_id): r for r in records
            if r.code is not None and r.source != "auto"}


def _coder_name(records: Iterable[CodeRecord], path: Path) -> str:
    names = {r.coder for r in records if r.coder}
    return names.pop() if len(names) == 1 else path.stem


def agreement(path_a: str | Path, path_b: str | Path) -> Agreement:
    """Compare two coders' codes files over the replies both coded."""
    problems: list[Problem] = []
    read: list[list[CodeRecord]] = []
    for path in (path_a, path_b):
        try:
            read.append(read_codes(path))
        except ImportFileError as exc:
            problems += exc.problems
    if problems:
        raise ImportFileError(problems)
    a, b = _coded(read[0]), _coded(read[1])
    both = [k for k in a if k in b]
    if not both:
        raise MysteryError(f"{path_a} and {path_b} have no reply coded in both (rows with source "
                           "'auto' do not count); compare files coded from the same study")
    pairs = [(str(a[k].code), str(b[k].code)) for k in both]
    disagreements = [Disagreement(a[k].probe or b[k].probe, k[0], k[1], ca, cb)
                     for k, (ca, cb) in zip(both, pairs, strict=True) if ca != cb]
    return Agreement(_coder_name(a.values(), Path(path_a)), _coder_name(b.values(), Path(path_b)),
                     cohen_kappa(pairs), disagreements)
