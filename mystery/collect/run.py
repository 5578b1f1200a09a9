"""``mystery run`` as a library call: load the study, plan it, open the store, connect, run.

Usable from Python exactly as the CLI uses it::

    from mystery.collect.run import run_study
    result = run_study("studies/demo.toml")
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mystery.collect.connect import connect, world_start
from mystery.collect.handoff import DueProbe
from mystery.collect.progress import Progress
from mystery.collect.runner import Runner, RunResult
from mystery.errors import MysteryError, SandboxError
from mystery.store.address import PostgresAddress, StoreAddress, store_address
from mystery.store.lock import study_lock
from mystery.store.store import Store, open_or_discard
from mystery.study.load import LoadedStudy, load_study
from mystery.study.model import Study
from mystery.study.plan import PlannedProbe, make_plan
from mystery.words import AUTOMATED_CHANNELS

if TYPE_CHECKING:
    from mystery.sandbox.replay import History


def _noop(_: object) -> None:
    return None


def store_path(loaded: LoadedStudy, db: str | Path | None) -> StoreAddress:
    """The store ``--db`` names: an SQLite file (by default beside the study) or a
    PostgreSQL URL."""
    return store_address(db, loaded.default_db)


def run_study(
    study_path: str | Path,
    *,
    db: str | Path | None = None,
    once: bool = False,
    sandbox_url: str | None = None,
    on_progress: Callable[[Progress], None] = _noop,
    on_notice: Callable[[str], None] = _noop,
    timeout: float = 30.0,
    until: datetime | None = None,
    live: bool = False,
    on_due: Callable[[DueProbe], None] = _noop,
    confirm: Callable[[DueProbe], bool] | None = None,
    account: str | None = None,
) -> tuple[LoadedStudy, RunResult]:
    """Run (or resume) a study until every probe is settled; ``once`` does a single pass.

    ``account`` runs only the probes of that researcher account (``mystery run --account``),
    on every channel that lists it; a study with several accounts on a channel needs it, one
    runner per account (:func:`served_accounts`).

    Holds the study's lock throughout (one runner per study; a lock left by a dead runner is
    taken over, with a notice). ``timeout`` bounds each platform request, in seconds;
    ``until`` pauses the run before its clock would pass that instant (a planned downtime).
    ``on_due`` shows each ``manual`` probe when it falls due; ``confirm`` asks before each
    ``confirm`` probe is posted.
    """
    loaded = load_study(study_path)
    study = loaded.study
    check_live(study, live)
    accounts = served_accounts(study, account)
    check_credentials(study, accounts)
    if sandbox_url is not None and not re.match(r"^https?://[^/\s]+", sandbox_url):
        # Refuse before anything is written: a failed run must leave no store behind.
        raise SandboxError(
            f"cannot reach the sandbox at {sandbox_url!r}: not an http:// URL; give the URL "
            "'mystery sandbox' prints, e.g. --sandbox-url http://127.0.0.1:8765"
        )
    by_hand = [n for n in study.sandbox_channels if study.channels[n].send_mode == "manual"]
    if by_hand and sandbox_url is None:
        raise MysteryError(
            f"channels.{by_hand[0]}.mode is 'manual' on the sandbox, whose virtual clock runs "
            "days ahead in seconds: nobody could post in time. Use mode = \"auto\" in the "
            "sandbox; manual mode is for a real platform (or a standalone 'mystery sandbox' "
            "driven by a test through --sandbox-url)"
        )
    team = [n for n in study.sandbox_channels if len(study.channels[n].account_names) > 1]
    if team:
        from mystery.sandbox.spec import WorldSpec

        # A team the sandbox cannot emulate is refused before anything is written.
        WorldSpec.from_study(study, world_start(study))
    if team and sandbox_url is None:
        raise SandboxError(
            f"channels.{team[0]} lists several accounts in the sandbox: their runners take "
            "turns on one world and one clock, which an in-process sandbox (gone when its "
            "runner stops) cannot give them. Start 'mystery sandbox' and pass its URL with "
            "--sandbox-url to each runner"
        )
    plan = make_plan(study)
    path = store_path(loaded, db)
    with study_lock(path) as lock:
        if lock is not None and lock.taken_over is not None:
            on_notice(f"took over the lock of a runner that is no longer running "
                      f"({lock.taken_over.describe()})")
        return _run_locked(loaded, plan, path, once=once, sandbox_url=sandbox_url,
                           on_progress=on_progress, on_notice=on_notice, timeout=timeout,
                           until=until, on_due=on_due, confirm=confirm, accounts=accounts)


def served_accounts(study: Study, account: str | None) -> dict[str, str]:
    """The account a runner serves on each channel (channel → account): ``account`` on every
    channel that lists it, or, without one, each channel's only account.

    Why one account per channel and runner: each account posts, reads its mentions and keeps
    its cursor on its own, as each researcher of a team does from their own machine; and a
    runner never touches another account's probes (:meth:`~mystery.store.store.Store.serve`).
    Raises :class:`MysteryError` for an account the study does not have, and for a channel
    with several accounts when none is named, before anything is written."""
    listed = {name: config.account_names for name, config in study.channels.items()}
    every = ", ".join(f"{name}: {', '.join(names)}" for name, names in listed.items())
    if account is None:
        several = [name for name, names in listed.items() if len(names) > 1]
        if several:
            names = listed[several[0]]
            raise MysteryError(
                f"channels.{several[0]} lists {len(names)} accounts ({', '.join(names)}): a "
                "runner serves one of them; start one runner per account, e.g. 'mystery run "
                f"STUDY --account {names[0]}'"
            )
        return {name: names[0] for name, names in listed.items()}
    wanted = account.strip().lstrip("@")
    served = {name: next(n for n in names if n.casefold() == wanted.casefold())
              for name, names in listed.items()
              if any(n.casefold() == wanted.casefold() for n in names)}
    if not served:
        raise MysteryError(
            f"--account {account}: the study has no such account; its accounts are {every} "
            "(the study file's account or accounts keys)"
        )
    return served


def check_credentials(study: Study, accounts: dict[str, str]) -> None:
    """A channel with several accounts needs each served account's own keys: falling back on
    the channel's plain key would post every account's probes from one account. Checked
    before anything is written; a one-account channel is checked when it opens, as always."""
    from mystery import credentials

    for name, account in accounts.items():
        config = study.channels[name]
        if (name in credentials.CHANNEL_KEYS and not config.is_sandbox
                and len(config.account_names) > 1 and credentials.missing(name, account)):
            raise MysteryError(
                f"channels.{name}: account {account} has no credentials of its own, and a "
                "channel with several accounts needs each account's: "
                f"{credentials.missing_help(name, account)}"
            )


def check_live(study: Study, live: bool) -> None:
    """Nothing is posted to (or read from) a real platform without ``--live``: a study file
    pointed at a real endpoint by mistake must not post in the researcher's name."""
    real = [n for n, c in study.channels.items() if n in AUTOMATED_CHANNELS and not c.is_sandbox]
    if not real:
        return
    if not live:
        raise MysteryError(
            f"channel(s) {', '.join(real)} point at a real platform "
            f"({study.channels[real[0]].endpoint}); nothing is posted there without --live. "
            "Read the platform's rules (README: 'Channels'), then run "
            "again with --live"
        )


def _run_locked(
    loaded: LoadedStudy,
    plan: list[PlannedProbe],
    path: StoreAddress,
    *,
    once: bool,
    sandbox_url: str | None,
    on_progress: Callable[[Progress], None],
    on_notice: Callable[[str], None],
    timeout: float,
    until: datetime | None,
    on_due: Callable[[DueProbe], None],
    confirm: Callable[[DueProbe], bool] | None,
    accounts: dict[str, str],
) -> tuple[LoadedStudy, RunResult]:
    study = loaded.study
    with open_or_discard(path) as store:
        store.durable_intent = not study.sandbox_channels
        new = store.initialise(study, plan)
        # Whether any account sent to the sandbox yet: the world check is the study's, not
        # one account's (another account's runner may have sent to a world since restarted).
        sent = store.count(("sending", "sent", "settled"), study.sandbox_channels)
        store.serve(accounts)
        if not store.count(("planned", "sending", "sent")):
            return loaded, RunResult(store.counts(), finished=True, passes=0)
        with ExitStack() as held:
            if isinstance(path, PostgresAddress):
                hold_leases(held, store, path, accounts, on_notice)
            return _run_open(loaded, store, new, sent, sandbox_url=sandbox_url, timeout=timeout,
                             on_progress=on_progress, on_notice=on_notice, once=once,
                             until=until, on_due=on_due, confirm=confirm, accounts=accounts)


def hold_leases(held: ExitStack, store: Store, address: PostgresAddress,
                accounts: dict[str, str], on_notice: Callable[[str], None]) -> None:
    """Several runners on one PostgreSQL study: hold the served accounts' leases for the run
    (:mod:`mystery.store.leases`), and fence every send with them."""
    from mystery.store.leases import Leases

    leases = held.enter_context(Leases(address, accounts))
    store.lease_holder = leases.holder
    store.lease_lost = leases.check
    for who in leases.taken_over:
        on_notice(f"took over account {who}: its uncertain sends are looked for on that "
                  "account's own timeline before anything is sent")


def _run_open(
    loaded: LoadedStudy,
    store: Store,
    new: bool,
    sent: int,
    *,
    once: bool,
    sandbox_url: str | None,
    on_progress: Callable[[Progress], None],
    on_notice: Callable[[str], None],
    timeout: float,
    until: datetime | None,
    on_due: Callable[[DueProbe], None],
    confirm: Callable[[DueProbe], bool] | None,
    accounts: dict[str, str],
) -> tuple[LoadedStudy, RunResult]:
    study = loaded.study
    in_process_sandbox = sandbox_url is None and bool(study.sandbox_channels)
    history = sandbox_history(store, study) if in_process_sandbox and not new else None
    sent_to = store.meta(SANDBOX_WORLD) if sent and not in_process_sandbox else None
    with connect(study, sandbox_url=sandbox_url, timeout=timeout, history=history,
                 sent_to=sent_to, on_notice=on_notice, accounts=accounts) as connection:
        if connection.world_id is not None and connection.world_id != sent_to:
            store.set_meta({SANDBOX_WORLD: connection.world_id})
        for name, why in connection.stopped.items():
            on_notice(f"{name}: stopped: {why}")
        runner = Runner(
            study, store, connection.channels, connection.clock,
            on_progress=on_progress, on_notice=on_notice, seed=study.schedule.seed,
            stopped=connection.stopped, on_due=on_due, confirm=confirm,
            accounts=accounts,
        )
        return loaded, runner.run(once=once, until=until)


SANDBOX_WORLD = "sandbox_world"
"""Store meta: the id of the sandbox world the study's probes were sent to."""


def sandbox_history(store: Store, study: Study) -> History | None:
    """What an in-process sandbox that died with an earlier run must be rebuilt from: every
    probe it received, in order, with its text, time and id; every reply recorded from it;
    and the clock's last recorded instant. None when the earlier run recorded nothing."""
    from mystery.sandbox.replay import History, SeenReply, SentPost

    channels = study.sandbox_channels
    now = store.last_instant(channels)
    if now is None:
        return None
    posts = [SentPost(p.channel, p.message_id or "", text, p.sent_at or now, p.id)
             for p, text in store.sent_in_order(channels)]
    replies = [SeenReply(r.channel, r.message_id, r.created_at)
               for r in store.replies() if r.channel in channels]
    return History(posts, replies, now)
