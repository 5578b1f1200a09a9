"""``mystery run`` as a library call: load the study, plan it, open the store, connect, run.

Usable from Python exactly as the CLI uses it::

    from mystery.collect.run import run_study
    result = run_study("studies/demo.toml")
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mystery.collect.connect import Lane, connect, world_start
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
    account: str | Sequence[str] | None = None,
) -> tuple[LoadedStudy, RunResult]:
    """Run (or resume) a study until every probe is settled; ``once`` does a single pass.

    By default the run serves every researcher account of the study: a team study with
    several accounts on a channel is run by this one runner, each account posting and reading
    its own mentions. ``account`` runs only the probes of that researcher account, or those
    accounts (``mystery run --account``), on every channel that lists it: one runner per
    researcher (:func:`served_accounts`).

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
    # Accounts served by other runners would need this runner's world and clock, which an
    # in-process sandbox (gone when its runner stops) cannot give them.
    shared = [n for n in team if accounts.get(n, ()) != study.channels[n].account_names]
    if shared and sandbox_url is None:
        names = study.channels[shared[0]].account_names
        serving = ", ".join(accounts.get(shared[0], ())) or "none of them"
        raise SandboxError(
            f"channels.{shared[0]} lists several accounts in the sandbox ({', '.join(names)}) "
            f"and this runner serves {serving}: the other accounts' runners would take turns "
            "on one world and one clock, which an in-process sandbox (gone when its runner "
            "stops) cannot give them. Serve them all from this runner (drop --account), or "
            "start 'mystery sandbox' and pass its URL with --sandbox-url to each runner"
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


def served_accounts(study: Study,
                    account: str | Sequence[str] | None = None) -> dict[str, tuple[str, ...]]:
    """The accounts a runner serves on each channel (channel → accounts, in the study file's
    order): without ``account``, every account of every channel (one runner for all of a
    team's accounts); with it (``--account``, which may be repeated), those accounts on every
    channel that lists them (one runner per researcher, each from their own machine).

    Whichever the form, each account posts, reads its own mentions and keeps its own cursor,
    and a runner never touches the probes of an account it does not serve
    (:meth:`~mystery.store.store.Store.serve`). Raises :class:`MysteryError` for an account the
    study does not have, before anything is written."""
    listed = {name: config.account_names for name, config in study.channels.items()}
    if account is None or (not isinstance(account, str) and not account):
        return dict(listed)
    every = ", ".join(f"{name}: {', '.join(names)}" for name, names in listed.items())
    served: dict[str, tuple[str, ...]] = {}
    for asked in [account] if isinstance(account, str) else account:
        wanted = asked.strip().lstrip("@").casefold()
        found = {name: n for name, names in listed.items() for n in names
                 if n.casefold() == wanted}
        if not found:
            raise MysteryError(
                f"--account {asked}: the study has no such account; its accounts are {every} "
                "(the study file's account or accounts keys)"
            )
        for name, n in found.items():
            if n not in served.get(name, ()):
                served[name] = (*served.get(name, ()), n)
    # In the study file's order, whatever the order of the --account options.
    return {name: tuple(n for n in names if n in served[name])
            for name, names in listed.items() if name in served}


def lanes(served: Mapping[str, tuple[str, ...]]) -> list[dict[str, str]]:
    """The served accounts dealt out one per channel (channel → account), each lane for one
    :class:`~mystery.collect.runner.Runner`: the first account of every channel, then the
    second of each channel that has one, and so on. Why lanes rather than one runner keyed by
    (channel, account): a lane is exactly what a runner serving one account per channel always
    was, so one runner for a team is several of those stepped together on one clock
    (:mod:`mystery.collect.together`), and a one-account study has a single lane."""
    widest = max((len(names) for names in served.values()), default=0)
    return [{name: names[i] for name, names in served.items() if i < len(names)}
            for i in range(widest)]


def account_pairs(served: Mapping[str, tuple[str, ...]]) -> list[tuple[str, str]]:
    """Every (channel, account) served: what a runner takes a lease on."""
    return [(name, account) for name, names in served.items() for account in names]


def check_credentials(study: Study, accounts: Mapping[str, tuple[str, ...]]) -> None:
    """A channel with several accounts needs each served account's own keys: falling back on
    the channel's plain key would post every account's probes from one account. Checked
    before anything is written, for every account the runner serves; a one-account channel is
    checked when it opens, as always."""
    from mystery import credentials

    for name, account in account_pairs(accounts):
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
    accounts: dict[str, tuple[str, ...]],
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
                accounts: Mapping[str, tuple[str, ...]],
                on_notice: Callable[[str], None]) -> None:
    """Several runners on one PostgreSQL study: hold every served account's lease for the run
    (:mod:`mystery.store.leases`; all of them or none), and fence every send and every poll's
    commit with them."""
    from mystery.store.leases import Leases

    leases = held.enter_context(Leases(address, account_pairs(accounts)))
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
    accounts: dict[str, tuple[str, ...]],
) -> tuple[LoadedStudy, RunResult]:
    study = loaded.study
    in_process_sandbox = sandbox_url is None and bool(study.sandbox_channels)
    history = sandbox_history(store, study) if in_process_sandbox and not new else None
    sent_to = store.meta(SANDBOX_WORLD) if sent and not in_process_sandbox else None
    served = lanes(accounts)
    with connect(study, sandbox_url=sandbox_url, timeout=timeout, history=history,
                 sent_to=sent_to, on_notice=on_notice, lanes=served) as connection:
        if connection.world_id is not None and connection.world_id != sent_to:
            store.set_meta({SANDBOX_WORLD: connection.world_id})
        runners = []
        for lane, opened in zip(served, connection.lanes, strict=True):
            for name, why in opened.stopped.items():
                on_notice(f"{_lane_name(name, lane, accounts)}: stopped: {why}")
            runners.append(Runner(
                study, store.serving_only(lane), opened.channels, connection.clock,
                on_notice=on_notice, seed=study.schedule.seed,
                stopped=opened.stopped, on_due=on_due, confirm=confirm, accounts=lane,
            ))
        _share_spend(connection.lanes)
        from mystery.collect.together import run_together

        names = [{n: _lane_name(n, lane, accounts) for n in lane} for lane in served]
        return loaded, run_together(runners, names, once=once, until=until,
                                    on_progress=on_progress)


def _share_spend(opened: Sequence[Lane]) -> None:
    """A paid channel's budget is the study's, not one account's: the lanes of one channel
    keep one ledger (the first lane's, restored from the store), so that three accounts stop
    together when their spend reaches ``budget_usd``, not at three times it."""
    from mystery.channels.base import Billed

    ledgers: dict[str, Billed] = {}
    for lane in opened:
        for name, channel in lane.channels.items():
            if isinstance(channel, Billed):
                channel.spend = ledgers.setdefault(name, channel).spend


def _lane_name(channel: str, lane: Mapping[str, str],
               accounts: Mapping[str, tuple[str, ...]]) -> str:
    """How a message names a lane's channel: ``x as shopper_b`` where the runner serves
    several accounts there, plain ``x`` where one."""
    return f"{channel} as {lane[channel]}" if len(accounts.get(channel, ())) > 1 else channel


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
    posts = [SentPost(p.channel, p.message_id or "", text, p.sent_at or now, p.id, p.account)
             for p, text in store.sent_in_order(channels)]
    replies = [SeenReply(r.channel, r.message_id, r.created_at)
               for r in store.replies() if r.channel in channels]
    return History(posts, replies, now)
