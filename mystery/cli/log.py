"""``mystery log``: the researcher's side of hand-logged channels (phone, chat, social, web).

A thin skin over :mod:`mystery.collect.handlog` and :mod:`mystery.collect.handcsv`: it asks, the
library checks and records. Prompts and messages go to stderr, so nothing here mixes with data.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mystery.cli.console import err_console, friendly_errors
from mystery.cli.options import DbOption, StudyPath

if TYPE_CHECKING:
    from mystery.collect.handlog import Pending
    from mystery.store.store import Store
    from mystery.study.model import Study

CsvOption = Annotated[
    Path | None,
    typer.Option("--csv", help="Log from this CSV instead of asking, with columns probe, "
                 "sent_at, reply_at, code (local times, e.g. 2026-03-02 14:05); every row is "
                 "checked before anything is written.", show_default=False),
]

_CODES = {"a": "acknowledgement", "ack": "acknowledgement", "r": "resolution",
          "res": "resolution", "acknowledgement": "acknowledgement", "resolution": "resolution"}


class _Quit(Exception):
    """The researcher asked to stop (or the input ended)."""


def _now() -> datetime:
    """The real clock: hand logging happens in the researcher's present."""
    return datetime.now(UTC)


@friendly_errors
def log(study: StudyPath, db: DbOption = None, csv_file: CsvOption = None) -> None:
    """Log probes on hand-logged channels: when each was sent, and each reply with its code.

    Without --csv, walks through the probes that are due or awaiting replies and asks. Probes
    whose cutoff has passed with no reply logged are settled as unanswered.
    """
    from mystery.collect import handlog
    from mystery.study.load import load_study

    loaded = load_study(study)
    s = loaded.study
    with handlog.open_store(loaded, db) as store:
        settled = handlog.settle(store, s, _now())
        if settled:
            err_console().print(f"Settled {len(settled)} probe(s) whose cutoff has passed: "
                                f"{', '.join(settled)}.", markup=False)
        if csv_file is not None:
            from mystery.collect.handcsv import import_csv

            result = import_csv(store, s, csv_file, _now())
            err_console().print(
                f"{csv_file}: {result.rows} row(s) read, {result.new_entries} new entr"
                f"{'y' if result.new_entries == 1 else 'ies'} logged, "
                f"{len(result.settled)} probe(s) settled.", markup=False)
            return
        _walk(store, s)


def _walk(store: Store, study: Study) -> None:
    from mystery.collect import handlog

    items = handlog.pending(store, study, _now())
    if not items:
        err_console().print("Nothing to log: no hand-logged probe is due or awaiting a reply.")
        return
    err_console().print(
        f"{len(items)} probe(s) to log. Times are {study.timezone}, to the minute: 'now', "
        "14:05 or 2026-03-02 14:05. 'quit' stops; run again to go on.", markup=False)
    done = 0
    try:
        for item in items:
            done += _one(store, study, item)
    except _Quit:
        err_console().print("Stopped. Everything logged so far is saved.")
    err_console().print(f"Logged {done} entr{'y' if done == 1 else 'ies'}.")


def _show(study: Study, item: Pending) -> None:
    from rich.markup import escape  # lazily: rich costs 'mystery --help' ~30 ms

    zone = study.zone
    p = item.probe
    contact = escape(item.contact) if item.contact else "[dim](no contact point in the study)[/]"
    err_console().print()
    err_console().print(f"[bold]{p.id}[/]  {escape(p.brand)}  {p.channel}  {contact}")
    err_console().print(f"  planned {p.planned_at.astimezone(zone):%a %Y-%m-%d %H:%M}")
    err_console().print(f"  question: {escape(p.text)}")
    if p.sent_at is not None and item.deadline is not None:
        err_console().print(f"  sent {p.sent_at.astimezone(zone):%a %Y-%m-%d %H:%M}; waits until "
                            f"{item.deadline.astimezone(zone):%a %Y-%m-%d %H:%M}")
    for reply in item.replies:
        err_console().print(f"  reply {reply.created_at.astimezone(zone):%a %Y-%m-%d %H:%M} "
                            f"({reply.auto_code})")


def _ask(prompt: str, default: str) -> str:
    try:
        answer = err_console().input(f"{prompt} [{default}]: ", markup=False).strip()
    except EOFError:
        raise _Quit from None
    if answer.lower() in ("q", "quit"):
        raise _Quit
    return answer or default


def _one(store: Store, study: Study, item: Pending) -> int:
    """Ask about one probe until it is logged as far as the researcher can say now."""
    from mystery.collect import handlog

    _show(study, item)
    done = 0
    probe_id = item.probe.id
    while item.to_send:
        answer = _ask("  Sent? now, a time, skip or quit", "skip")
        if answer.lower() == "skip":
            return done
        try:
            at = handlog.parse_local_time(answer, study.zone, _now())
            entry = handlog.sent_entry(store, study, probe_id, at, _now())
        except (ValueError, handlog.HandLogError) as exc:
            err_console().print(f"  {exc}", markup=False)
            continue
        if entry is not None:
            handlog.log(store, study, [entry], _now())
            done += 1
        break
    while True:
        answer = _ask("  Reply? now, a time, none (no reply yet), gave-up or quit", "none")
        word = answer.lower()
        if word == "none":
            return done
        try:
            if word in ("gave-up", "gave up", "g"):
                handlog.give_up(store, study, probe_id, _now(), _now())
                err_console().print("  Settled: no longer waiting.")
                return done + 1
            typed = handlog.parse_local_time(answer, study.zone, _now())
            at = handlog.reply_time(store, study, probe_id, typed, _now())
            entry = handlog.reply_entry(store, study, probe_id, at, _code(), _now())
        except (ValueError, handlog.HandLogError) as exc:
            err_console().print(f"  {exc}", markup=False)
            continue
        logged = handlog.log(store, study, [entry], _now())
        done += logged.new
        if probe_id in logged.settled:
            err_console().print("  Settled: answered.")
            return done


def _code() -> str:
    while True:
        answer = _ask("  Code: acknowledgement (a) or resolution (r)", "a").lower()
        if answer in _CODES:
            return _CODES[answer]
        err_console().print("  Answer a (acknowledgement: a first response that does not "
                            "answer) or r (resolution: it answers the question).")


def register(app: typer.Typer) -> None:
    app.command()(log)
