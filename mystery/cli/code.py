"""``mystery code``: code replies by hand, one keystroke each; export, import and compare codes.

The library (:mod:`mystery.coding.review`) owns the queue, the codes files and the arithmetic; this
module draws the review screen, reads keys and prints results. Reply texts and handles come
from strangers, so they reach the terminal only through :func:`mystery.text.terminal_text`.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mystery.cli.console import err_console, friendly_errors, out_console
from mystery.cli.options import DbOption, Format, FormatOption, write_csv, write_json

if TYPE_CHECKING:
    from mystery.coding.coders import Coders
    from mystery.coding.review import Agreement, ReviewItem, ReviewSession
    from mystery.store.store import Store

_PROMPT = "[a] acknowledgement only  [r] resolves  [n] not a brand reply  [s] skip  [q] quit › "
_THREAD_LIMIT = 280  # other replies in the thread: a glance is enough
_REVIEW_LIMIT = 2000  # the reply under review: all of it, short of flooding the screen


def _is_tty() -> bool:
    return sys.stdin.isatty()


def _read_key() -> str:
    """One keystroke on a terminal (no Enter); a line's first character otherwise, which is
    how scripts and tests drive the review. End of input means quit."""
    if _is_tty():
        try:
            return typer.getchar(echo=False).lower()
        except EOFError:
            return "q"
    line = sys.stdin.readline()
    return line.strip()[:1].lower() if line else "q"


def _open_store(study: Path, db: str | None) -> Store:
    from mystery.errors import StoreError
    from mystery.store.address import store_address
    from mystery.store.store import Store
    from mystery.study.load import load_study

    loaded = load_study(study)
    store = Store.open(store_address(db, loaded.default_db), create=False)
    owner = store.meta("study")
    if owner != loaded.study.name:
        store.close()
        raise StoreError(f"{store.path} holds no study yet; run 'mystery run {study}' first"
                         if owner is None else f"{store.path} holds study {owner!r}, not "
                         f"{loaded.study.name!r}; pass the study's own --db")
    return store


def _default_coder() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):
        from mystery.errors import MysteryError

        raise MysteryError("cannot tell who you are; pass --coder NAME") from None


_ROLE_LABEL = {"main": "main coder", "first": "main coder", "second": "second coder"}


def _whose_codes(found: Coders, coder: str, study: Path) -> str:
    """One sentence: whose codes drive the timings, and what this coder's codes are for."""
    role = found.role(coder)
    if role == "first":
        return (f"Nobody has coded this study yet: codes by {coder} (you) will drive the "
                "timings; other coders' codes are kept for --agreement only.")
    if role == "main":
        return f"Codes by {coder} (you, main coder) drive the timings."
    return (f"Codes by {found.main} drive the timings; you are coding as {coder} (second "
            "coder): your codes are kept for --agreement and never change the timings "
            f"('mystery code {study} --main-coder {coder}' would make them drive the timings).")


def _show(session: ReviewSession, item: ReviewItem, position: int, role: str) -> None:
    from rich.rule import Rule
    from rich.table import Table
    from rich.text import Text

    from mystery.durations import format_duration
    from mystery.text import terminal_safe, terminal_text

    probe = item.probe
    codes = session.codes()
    cutoff = session.store.cutoff().total_seconds()
    if err_console().is_terminal:
        err_console().clear()
    err_console().print(Rule(f"reply {position} of {len(session.queue)} · coder "
                             f"{terminal_safe(session.coder)} ({role})", align="left"))
    sent = probe.sent_at.strftime("%a %Y-%m-%d %H:%M UTC") if probe.sent_at else "not sent"
    err_console().print(Text(f"{probe.id} · {probe.brand} · {probe.channel} · question "
                             f"{probe.question} · sent {sent}", style="bold"))
    table = Table(box=None, show_header=False, pad_edge=False, expand=False)
    for justify in ("left", "right", "left", "left", "left"):  # marker, time, who, text, code
        table.add_column(justify=justify)
    table.add_row("", "sent", "(probe)", terminal_text(probe.text), "")
    for reply in item.thread:
        here = reply == item.reply
        elapsed = (reply.created_at - probe.sent_at).total_seconds() if probe.sent_at else None
        when = format_duration(None if elapsed is None else max(0.0, elapsed))
        if elapsed is not None and elapsed > cutoff:
            when += " (after cutoff)"
        manual = codes.get((reply.channel, reply.message_id))
        code = f"{manual} (yours)" if manual else f"{reply.auto_code} (auto)"
        table.add_row("▶" if here else "", when, terminal_text(f"@{reply.author}"),
                      terminal_text(reply.text, limit=_REVIEW_LIMIT if here else _THREAD_LIMIT,
                                    keep_newlines=here),
                      code, style="reverse" if here else None)
    err_console().print(table)
    times = session.times(item)
    if times is not None:
        err_console().print(f"as you code it: acknowledged after {format_duration(times.ack)}, "
                            f"resolved after {format_duration(times.resolution)}", markup=False)


def _review(session: ReviewSession, study: Path) -> None:
    from mystery.coding.coders import coders
    from mystery.coding.review import KEYS

    found = coders(session.store)
    err_console().print(_whose_codes(found, session.coder, study), markup=False)
    role = _ROLE_LABEL[found.role(session.coder)]
    if not session.total:
        err_console().print("No replies recorded yet: nothing to code.")
        return
    if not session.queue:
        err_console().print(f"All {session.total} replies are coded by {session.coder}; pass --all "
                            "to review them again.", markup=False)
        return
    stopped = False
    for position, item in enumerate(session.queue, start=1):
        _show(session, item, position, role)
        while True:
            err_console().print(_PROMPT, end="", markup=False)
            key = _read_key()
            if key in (*KEYS, "s", "q"):
                break
            err_console().print(f"\n{key!r} is not a choice; press a, r, n, s or q.", markup=False)
        if key == "q":
            stopped = True
            err_console().print("quit")
            break
        code = session.mark(item, key, datetime.now(UTC))
        err_console().print(f"{code} (saved)" if code else "skipped", markup=False)
    left = session.uncoded()
    main = coders(session.store).main
    follow = (" Resolution times follow your codes: 'mystery report' shows them."
              if main in (None, session.coder) else
              f" The timings follow {main}'s codes (main coder); yours are for --agreement.")
    err_console().print(
        f"{session.coded} coded, {session.skipped} skipped; "
        + (f"{left} replies not coded by {session.coder} yet" if left else "all replies coded")
        + (": run the same command again to go on." if stopped and left else ".")
        + follow, markup=False)


def _show_agreement(result: Agreement, output: Format = "table") -> None:
    from rich.table import Table
    from rich.text import Text

    from mystery.text import terminal_text

    k = result.kappa
    columns = ("probe", "channel", "message_id", "code_a", "code_b")
    rows = [(d.probe, d.channel, d.message_id, d.code_a, d.code_b)
            for d in result.disagreements]
    if output == "json":
        write_json({"coder_a": result.coder_a, "coder_b": result.coder_b, "both_coded": k.n,
                    "observed": k.observed, "expected": k.expected, "kappa": k.kappa,
                    "disagreements": [dict(zip(columns, r, strict=True)) for r in rows]})
        return
    if output == "csv":  # the disagreements, one a row (kappa is one number: see json)
        write_csv(columns, rows)
        return
    summary = Table(title=Text(f"Agreement: {result.coder_a} (A) and {result.coder_b} (B)"),
                    title_justify="left", show_header=False)
    summary.add_column()
    summary.add_column(justify="right")
    summary.add_row("replies coded by both", str(k.n))
    summary.add_row("observed agreement", f"{k.observed:.3f}")
    summary.add_row("agreement expected by chance", f"{k.expected:.3f}")
    summary.add_row("Cohen's kappa", "undefined (one code only)" if k.kappa is None
                    else f"{k.kappa:.3f}")
    out_console().print(summary)
    if not result.disagreements:
        out_console().print("No disagreements.")
        return
    table = Table(title=f"{len(result.disagreements)} disagreements", title_justify="left")
    for column in ("probe", "channel", "message id", "A", "B"):
        table.add_column(column)
    for d in result.disagreements:
        table.add_row(*(terminal_text(c) for c in (d.probe, d.channel, d.message_id, d.code_a,
                                                   d.code_b)))
    out_console().print(table)


StudyArg = Annotated[
    Path | None,
    typer.Argument(help="The study file (TOML) whose replies to code; not needed with "
                   "--agreement.", show_default=False),
]


@friendly_errors
def code(
    study: StudyArg = None,
    db: DbOption = None,
    coder: Annotated[str | None, typer.Option(
        "--coder", help="Who is coding: each coder's codes are kept apart. Defaults to your "
        "login name; required with --import.", show_default=False)] = None,
    everything: Annotated[bool, typer.Option(
        "--all", help="Review every reply, including those you already coded.")] = False,
    export: Annotated[Path | None, typer.Option(
        "--export", help="Write every reply's code to this CSV file ('-' for stdout) instead "
        "of reviewing: --coder's code where they coded it, else the automatic one; without "
        "--coder, the codes the timings use.", show_default=False)] = None,
    with_text: Annotated[bool, typer.Option(
        "--with-text", help="With --export, add the reply texts, agents' signatures "
        "redacted.")] = False,
    import_: Annotated[Path | None, typer.Option(
        "--import", help="Read a codes CSV (as written by --export) as --coder's codes; "
        "every row is checked and nothing is written unless all are valid.",
        show_default=False)] = None,
    agreement: Annotated[tuple[Path, Path] | None, typer.Option(
        "--agreement", help="Compare two coders' codes CSVs: Cohen's kappa over the replies "
        "both coded, and every disagreement.", show_default=False,
        metavar="A.csv B.csv")] = None,
    main_coder: Annotated[str | None, typer.Option(
        "--main-coder", help="Make NAME's codes the ones that drive the timings (by default, "
        "the first coder who coded this study); every other coder's codes are kept for "
        "--agreement only. NAME must have coded.", show_default=False,
        metavar="NAME")] = None,
    output: FormatOption = "table",
) -> None:
    """Code replies by hand: a for acknowledgement only, r resolves, n not a brand reply.

    The main coder's codes (the first coder's, unless --main-coder says otherwise) override
    the automatic ones, so resolution times follow them; other coders' codes are kept for
    agreement. Also exports, imports and compares codes files (--export, --import,
    --agreement)."""
    from mystery.coding import coders, review

    if agreement is not None:
        _show_agreement(review.agreement(*agreement), output)
        return
    if study is None:
        raise typer.BadParameter("name the study file, e.g. mystery code studies/demo.toml",
                                 param_hint="STUDY")
    if sum(x is not None for x in (export, import_, main_coder)) > 1:
        raise typer.BadParameter("use one of --export, --import and --main-coder at a time",
                                 param_hint="--export")
    with _open_store(study, db) as store:
        if main_coder is not None:
            change = coders.set_main_coder(store, main_coder)
            if change.previous == change.main:
                err_console().print(f"Codes by {change.main} already drive the timings.",
                                    markup=False)
            else:
                err_console().print(
                    f"Codes by {change.main} ({change.coded} "
                    f"{'reply' if change.coded == 1 else 'replies'} coded) now drive the "
                    "timings" + (f" instead of {change.previous}'s" if change.previous else "")
                    + f". Run 'mystery report {study}' to update the figures.", markup=False)
        elif export is not None:
            who = None if coder is None else review.check_coder(coder)
            if str(export) == "-":
                review.write_codes(review.code_rows(store, who), sys.stdout, with_text=with_text,
                                   terminal=sys.stdout.isatty())
                return
            n = review.export_codes(store, export, who, with_text=with_text)
            err_console().print(f"wrote {n} codes to {export}", markup=False)
        elif import_ is not None:
            if coder is None:
                raise typer.BadParameter("say whose codes these are", param_hint="--coder")
            done = review.import_codes(store, import_, coder, datetime.now(UTC))
            err_console().print(
                f"imported {done.written} codes by {coder.strip()} from {import_} "
                f"({done.changed} differ from the automatic code"
                + (f", {done.uncoded} rows left uncoded" if done.uncoded else "") + "). "
                + _whose_codes(coders.coders(store), coder.strip(), study), markup=False)
        else:
            _review(review.ReviewSession(store, coder or _default_coder(), everything), study)


def register(app: typer.Typer) -> None:
    app.command()(code)
