"""Commands that design and collect a study: validate, plan, run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mystery.cli.console import err_console, friendly_errors, out_console
from mystery.cli.options import (
    DbOption,
    Format,
    FormatOption,
    StudyPath,
    write_csv,
    write_json,
)

if TYPE_CHECKING:

    from mystery.collect.handoff import DueProbe
    from mystery.collect.progress import Progress
    from mystery.store.address import StoreAddress



@friendly_errors
def validate(study: StudyPath, output: FormatOption = "table") -> None:
    """Check a study file and its brands CSV; report every problem at once."""
    from mystery.durations import format_duration
    from mystery.study.load import load_study

    if output != "table":  # for scripts: every problem and warning as a row on stdout
        _validate_rows(study, output)
        return
    loaded = load_study(study)
    s = loaded.study
    err_console().print(
        f"{study}: OK: {len(s.brands)} brands, {len(s.questions)} questions, "
        f"channels {', '.join(s.channels)}, cutoff {format_duration(s.cutoff.total_seconds())}"
    )
    from mystery.cli.estimate import show_warnings

    show_warnings(s, str(study))


def _validate_rows(study: Path, output: Format) -> None:
    """``validate --format csv|json``: one row per problem (``error``) or warning, with its
    file, where and message; exit 1 when there is an error, as without --format."""
    from mystery.errors import StudyError
    from mystery.study.load import load_study
    from mystery.study.plan import make_plan
    from mystery.study.warnings import study_warnings, warnings_apply

    rows: list[tuple[str, str, str, str]] = []
    try:
        s = load_study(study).study
    except StudyError as exc:
        rows = [("error", p.file, p.where, p.message) for p in exc.problems]
    else:
        if warnings_apply(s):
            rows = [("warning", p.file, p.where, p.message)
                    for p in study_warnings(s, make_plan(s), str(study))]
    columns = ("kind", "file", "where", "message")
    if output == "csv":
        write_csv(columns, rows)
    else:
        write_json([dict(zip(columns, row, strict=True)) for row in rows])
    if any(row[0] == "error" for row in rows):
        raise typer.Exit(1)


@friendly_errors
def plan(
    study: StudyPath,
    output: FormatOption = "table",
    as_csv: Annotated[
        bool, typer.Option("--csv", help="The same as --format csv.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="The same as --format json.")
    ] = False,
    cost: Annotated[
        bool, typer.Option("--cost", help="Show the study's estimated X API spend (posts and "
                           "reads at X's pay-per-use prices) against channels.x.budget_usd, "
                           "instead of the plan.")
    ] = False,
    power: Annotated[
        bool, typer.Option("--power", help="Show instead the smallest change in median "
                           "acknowledgement time this plan detects with 80% power (log-rank, "
                           "alpha 0.05), simulated from the series' previous year's timings "
                           "under results/ or, with none, from the sandbox profiles.")
    ] = False,
    detect: Annotated[
        str | None, typer.Option("--detect", metavar="PERCENT", help="With --power (implied): "
                                 "also how many probes per brand detect a change of this size "
                                 "in median acknowledgement time, faster and slower, e.g. 20%.",
                                 show_default=False)
    ] = None,
    simulations: Annotated[
        int | None, typer.Option("--simulations", min=200, max=100_000, metavar="N",
                                 help="Simulated studies per power figure for --power, "
                                 "200 to 100,000 (by default 1000); more is slower and more "
                                 "precise.", show_default=False)
    ] = None,
) -> None:
    """Show the deterministic probe plan: who is asked what, when (same seed, same plan)."""
    from mystery.cli.estimate import show_estimate, show_warnings
    from mystery.study.load import load_study
    from mystery.study.plan import make_plan

    if as_csv and as_json:
        raise typer.BadParameter("choose one of --csv and --json")
    share = None
    if detect is not None:
        from mystery.cli.power import parse_change

        share, power = parse_change(detect), True
    if power and cost:
        raise typer.BadParameter("choose one of --cost and --power (or --detect)")
    if simulations is not None and not power:
        raise typer.BadParameter("--simulations counts the simulated studies of --power; add "
                                 "--power (or --detect), or leave it out")
    if as_csv or as_json:  # the older spellings of --format
        output = "csv" if as_csv else "json"
    as_csv, as_json = output == "csv", output == "json"
    s = load_study(study).study
    probes = make_plan(s)
    show_warnings(s, str(study), probes)
    if power:
        from mystery.cli.power import show_power

        show_power(s, probes, output, detect=share, simulations=simulations or 1000)
        return
    if cost:
        from mystery.study.cost import estimate

        show_estimate(s.name, estimate(s, probes), as_csv=as_csv, as_json=as_json)
        return
    zone = s.zone
    # A study with several accounts on a channel says which one sends each probe; a
    # one-account study's plan keeps the columns it always had.
    team = any(len(c.account_names) > 1 for c in s.channels.values())
    columns: tuple[str, ...] = ("probe", "planned_at_utc", "planned_at_local", "brand",
                                "channel", "question", "text") + (("account",) if team else ())
    rows = [(p.id, p.planned_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
             p.planned_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"), p.brand, p.channel,
             p.question, p.text) + ((p.account,) if team else ()) for p in probes]
    if as_json:
        write_json([dict(zip(columns, row, strict=True)) for row in rows])
        return
    if as_csv:
        write_csv(columns, rows)
        return
    from rich.table import Table

    table = Table(title=f"{s.name}: {len(probes)} probes ({s.timezone})", title_justify="left")
    for column in ("probe", f"planned ({s.timezone})", "brand", "channel", "question",
                   *(("account",) if team else ())):
        table.add_column(column)
    for p in probes:
        table.add_row(p.id, p.planned_at.astimezone(zone).strftime("%a %Y-%m-%d %H:%M"),
                      p.brand, p.channel, p.question, *((p.account,) if team else ()))
    out_console().print(table)


def due_text(due: DueProbe, study: Path, asking: bool = False) -> str:
    """What the researcher reads when a probe falls due: whom to ask, the exact text, where to
    post it, and (manual) by when and how to record it."""
    mine = f"from your account {due.account}" if due.account else "from your own account"
    lines = [f"{due.probe_id} is due on {due.channel}: "
             + ("the runner will post it if you say yes" if asking
                else f"post it yourself, {mine}")]
    lines.append(f"  to:    {due.brand} (@{due.handle})")
    lines.append(f"  text:  {due.text}")
    if due.link:
        lines.append(f"  post:  {due.link}")
    if not asking and due.grace_until is not None:
        lines.append(f"  by:    {due.grace_until:%Y-%m-%d %H:%M} UTC, or it is missed and "
                     "rescheduled")
        lines.append("  The runner finds the post on your timeline by its text; if you edit "
                     f"the text, run: mystery sent {study} {due.probe_id} <link to your post>")
    return "\n".join(lines)


@friendly_errors
def run(
    study: StudyPath,
    db: DbOption = None,
    once: Annotated[
        bool, typer.Option("--once", help="Do one pass (send what is due, poll once) and exit: "
                           "for cron jobs and CI.")
    ] = False,
    sandbox_url: Annotated[
        str | None,
        typer.Option("--sandbox-url", help="Use a standalone sandbox started with 'mystery "
                     "sandbox' (e.g. http://127.0.0.1:8765) instead of an in-process one."),
    ] = None,
    post_live: Annotated[
        bool, typer.Option("--live", help="Allow posting to real platforms (never needed for "
                           "the sandbox).")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No live view; only notices and the end.")
    ] = False,
    report: Annotated[
        bool, typer.Option(help="Write the report under results/<study>/ when the study is done.")
    ] = True,
    output: FormatOption = "table",
    account: Annotated[
        list[str] | None,
        typer.Option("--account", help="Run only the probes of this researcher account (one "
                     "of a channel's accounts = [...]), one runner per researcher; repeat it "
                     "to serve several. Without it the run serves every account.",
                     metavar="NAME", show_default=False),
    ] = None,
) -> None:
    """Run a study: send due probes, collect replies, settle probes, until all are settled.

    Safe to stop at any moment and run again: it resumes where it stopped.

    In a terminal, a live view on stderr shows the probes settled out of planned, the study's
    clock, the elapsed time (and the ETA of a real study), the counts per channel, the next
    event and any rate-limit wait; it is off with --quiet or when stderr is not a terminal,
    and NO_COLOR turns its colours off.
    """
    from mystery.cli.estimate import warn_before_run
    from mystery.collect.run import run_study

    warn_before_run(study)
    view = None
    if not quiet and err_console().is_terminal:
        from mystery.cli.liveview import LiveView

        view = LiveView(err_console(), f"mystery run {study}")

    def on_progress(progress: Progress) -> None:
        if view is not None:
            view.report(progress)

    def on_notice(message: str) -> None:
        err_console().print(message, markup=False)

    def on_due(due: DueProbe) -> None:
        err_console().print(due_text(due, study), markup=False, highlight=False)

    def confirm(due: DueProbe) -> bool:
        """Ask before posting; the live display is paused so the question can be read."""
        if view is not None:
            view.pause()
        err_console().print(due_text(due, study, asking=True), markup=False, highlight=False)
        try:
            return typer.confirm(f"Post {due.probe_id} to {due.brand} now?", err=True)
        except typer.Abort:
            from mystery.errors import MysteryError

            raise MysteryError(
                f"{due.probe_id} needs a yes or no (channels.{due.channel}.mode is 'confirm') "
                "but nobody answered; run it in a terminal, or choose mode = \"manual\""
            ) from None
        finally:
            if view is not None:
                view.resume()

    try:
        loaded, result = run_study(study, db=db, once=once, sandbox_url=sandbox_url,
                                   on_progress=on_progress, on_notice=on_notice,
                                   live=post_live, on_due=on_due, confirm=confirm,
                                   account=account)
    finally:
        if view is not None:
            view.close()
    c = result.counts
    state = "finished" if result.finished else "paused (run again to resume)"
    if account and result.finished:
        state = (f"finished for account {', '.join(account)}" if c.settled < c.planned
                 else "finished")  # the other accounts' runners may still be at work
    err_console().print(
        f"{loaded.study.name}: {state}: {c.sent}/{c.planned} probes sent, {c.acknowledged} "
        f"acknowledged, {c.resolved} resolved, {c.unanswered} unanswered, "
        f"{c.settled} settled; {result.passes} passes."
    )
    if any(len(c.account_names) > 1 for c in loaded.study.channels.values()):
        from mystery.store.address import store_address

        _per_account(loaded.study.name, store_address(db, loaded.default_db))
    for name, why in result.stopped.items():
        err_console().print(f"channel {name} stopped: {why}", markup=False)
    if result.finished and report and (not account or c.settled == c.planned):
        from mystery.cli.analysis import show_report

        show_report(loaded, db, output=output)
    if result.stopped:
        raise typer.Exit(1)


def _per_account(name: str, db: StoreAddress) -> None:
    """A team study's standing per researcher account (each runner sees every account's)."""
    from mystery.store.store import Store

    with Store.open(db, create=False) as store:
        for (channel, account), c in store.account_counts().items():
            err_console().print(
                f"{name}: {channel} as {account}: {c.sent}/{c.planned} probes sent, "
                f"{c.acknowledged} acknowledged, {c.resolved} resolved, {c.unanswered} "
                f"unanswered, {c.settled} settled.", markup=False)


def register(app: typer.Typer) -> None:
    app.command()(validate)
    app.command()(plan)
    app.command()(run)
