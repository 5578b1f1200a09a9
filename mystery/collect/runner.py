"""One lane's pass of the collection loop: send due probes, poll, record replies, settle probes.

The runner owns time (DESIGN.md): it asks the clock to sleep until its next event — a planned
send, a poll, a retry — and a virtual clock simply jumps there, so a seven-day sandbox study
takes seconds and a real one sleeps. It never moves the clock past an event it has not done:
every send due *now* is made before the clock moves, so a run killed and restarted sends each
probe at the very instant an undisturbed run would.

Each pass is safe to interrupt anywhere (SIGKILL included):

- **never send twice**: the intent is committed (durably) before the post; a probe left
  ``sending`` — by a crash, a timeout, a 5xx, a lost answer — is looked for on our own timeline
  before anything else happens on its channel, and sent again only if it is not there;
- **never lose a reply**: no channel is polled while one of its sends is uncertain (a reply to
  a post we do not know the id of could not be attributed, and the cursor would move past it);
  a poll's replies and the cursor that covers them commit together (:mod:`mystery.collect.polling`,
  which also keeps the rules for catching up after downtime and for counting a probe
  unanswered).

This module keeps a pass (:meth:`Runner.step`), sending and the reconciling of uncertain
sends; the loop of passes is :func:`mystery.collect.together.run_together`. Its collaborators
each own one part of a run: :mod:`mystery.collect.pacing` (each channel's waits, and platform
trouble: 429s, 5xx, timeouts, 401/403), :mod:`mystery.collect.polling` (replies and settling),
:mod:`mystery.collect.manual` (a person in the loop: ``manual`` and ``confirm`` modes) and
:mod:`mystery.collect.budget` (a paid channel's spend).

The library never prints: progress and notices go to the callbacks the caller passes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mystery.channels.base import Channel
from mystery.clock import Clock, RealClock, parse_iso
from mystery.collect.budget import Budget
from mystery.collect.handoff import DueProbe
from mystery.collect.manual import HandPosting
from mystery.collect.outgoing import outgoing
from mystery.collect.pacing import RECONCILE_MARGIN, ChannelState, Pacing
from mystery.collect.polling import Poller
from mystery.collect.progress import Event, Progress, Wait
from mystery.collect.safeguards import Hold, Safeguards
from mystery.durations import format_span
from mystery.errors import (
    AuthError,
    ChannelError,
    RateLimited,
    Rejected,
    StoreError,
    StoreLockedError,
)
from mystery.store.store import Counts, ProbeRow, Store
from mystery.study.model import Study

MAX_SEND_FAILURES = 5
"""Sends that reached the platform and failed; past this a probe is excluded, not sent late."""
LATE_NOTICE = timedelta(minutes=5)
LEASE_LOOK = timedelta(seconds=1)
"""How often a runner waiting on the wall clock looks whether it still holds its lease."""


@dataclass
class RunResult:
    counts: Counts
    finished: bool
    passes: int
    stopped: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    retries: int = 0  # failed requests retried later (5xx, timeouts, malformed answers, 429s)
    skipped: int = 0  # items a platform sent that could not be used
    flagged: int = 0  # probes excluded in this run because their replies could not be vouched for


def _noop(_: object) -> None:
    return None


class Runner:
    def __init__(
        self,
        study: Study,
        store: Store,
        channels: Mapping[str, Channel],
        clock: Clock,
        *,
        on_notice: Callable[[str], None] = _noop,
        seed: int = 0,
        stopped: Mapping[str, str] | None = None,
        on_due: Callable[[DueProbe], None] = _noop,
        confirm: Callable[[DueProbe], bool] | None = None,
        accounts: Mapping[str, str] | None = None,
    ) -> None:
        """``accounts``: the researcher's account each channel runs as (one per channel, a
        lane: :func:`mystery.collect.run.lanes`; by default each channel's first), and the
        store is made to serve the same (:meth:`~mystery.store.store.Store.serve`), so a
        runner never touches another account's probes. A run serving several accounts of a
        channel has one runner per lane, each on its own view of the store
        (:mod:`mystery.collect.together`). ``stopped`` names channels of the study
        that could not even be opened (and why): reported with the result, and a study with
        probes on them is not finished.

        ``on_due`` shows a ``manual`` probe to the researcher when it falls due (again after a
        restart); ``confirm`` asks before each ``confirm`` probe is posted (True: post it)."""
        self.study = study
        self.store = store
        self.clock = clock
        if accounts is None:  # every channel, those that could not open too
            accounts = {n: c.account_names[0] for n, c in study.channels.items()}
        store.serve(accounts)
        self.on_notice = on_notice
        self.cutoff = study.cutoff
        self._pacing = Pacing(study, channels, on_notice, seed)
        self._channels = self._pacing.channels
        self._poller = Poller(study, store, clock, self._pacing, accounts)
        self._failed_to_open = dict(stopped or {})
        self._hand = HandPosting(study, store, self._pacing, on_due, confirm)
        self._guards = Safeguards(study, store)
        self._waits: dict[str, tuple[str, datetime]] = {}  # held back: channel, look again at
        self._held: dict[str, str] = {}  # due probes a safeguard holds back, and their channel
        self._told: dict[str, str] = {}  # the hold last announced per probe (no repeats)
        self.budget = Budget(study, store, self._pacing)

    # -- one pass ----------------------------------------------------------------------------

    def result(self, counts: Counts, passes: int,
               names: Mapping[str, str] | None = None) -> RunResult:
        """What this runner did in a run of ``passes`` that ended on ``counts``; ``names`` says
        how to name a stopped channel (``x as shopper_b``, for one lane of several)."""
        names = names or {}
        stopped = {**self._failed_to_open,
                   **{n: s.stopped for n, s in self._channels.items() if s.stopped}}
        return RunResult(
            counts=counts,
            finished=self.all_settled(everywhere=True),
            passes=passes,
            stopped={names.get(n, n): why for n, why in stopped.items()},
            requests=sum(s.channel.requests for s in self._channels.values()),
            retries=self._pacing.retries,
            skipped=sum(s.channel.skipped for s in self._channels.values()),
            flagged=self._poller.flagged,
        )

    def _brand_check(self, probe: ProbeRow,
                     now: datetime) -> tuple[str, Callable[[], Hold | None]] | None:
        """The brand safeguards' check, for the store to make again under the brand's lock
        (PostgreSQL) where they apply (the daily cap is per account, and one runner serves an
        account)."""
        if not self.study.channels[probe.channel].guarded:
            return None
        return probe.brand, lambda: self._guards.hold(probe, now)

    def still_serving(self) -> None:
        """Stop, with the reason, once this runner lost its accounts' lease (PostgreSQL): it
        may neither send (the store's fence refuses anyway) nor poll, which would move a cursor
        that is now another runner's."""
        why = self.store.lease_lost()
        if why is not None:
            raise StoreLockedError(why)

    def sleep_until(self, at: datetime) -> None:
        """The clock's sleep; on the wall clock in slices of at most :data:`LEASE_LOOK`, so
        that a lost lease stops a runner waiting hours for its next probe within seconds."""
        if not isinstance(self.clock, RealClock):
            self.clock.sleep_until(at)  # a virtual clock jumps: the next pass looks
            return
        while (now := self.clock.now()) < at:
            self.clock.sleep_until(min(at, now + LEASE_LOOK))
            self.still_serving()

    def step(self) -> None:
        """One pass at the present instant: check uncertain sends, send (or show, or ask
        about) what is due, look for posts made by hand, poll."""
        now = self.clock.now()
        for name, state in self._live():
            if self._uncertain(name) and (state.check.at is None or now >= state.check.at):
                self._check_uncertain(name, state, now)
        self._waits, self._held = {}, {}
        shown = self._hand.shown()
        for probe in self.store.due_probes(now):
            sender = self._channels.get(probe.channel)
            if sender is None or sender.stopped:
                continue
            if probe.id in shown:
                self._hand.remind(shown[probe.id])
                continue
            if sender.send.at and now < sender.send.at:
                self._waits[probe.id] = (probe.channel, sender.send.at)
                continue
            hold = self._guards.hold(probe, now)
            if hold is not None:
                self._hold(probe, hold, sender, now)
                continue
            mode = self.study.channels[probe.channel].send_mode
            if mode == "manual":
                hold = self._hand.show(probe, sender, now, self._brand_check(probe, now))
                if hold is not None:
                    self._hold(probe, hold, sender, now)
            elif not self.budget.affordable(probe, sender):
                continue
            elif mode == "auto" or self._confirmed(probe):
                self._send(probe, sender, now)
        self.still_serving()  # the lease may have been lost while sending: read nothing
        blind: set[str] = set()  # channels whose hand-made posts we could not look for
        for name, state in self._live():
            if not self._hand.look(name, state, now):
                blind.add(name)
        for name, state in self._live():
            if state.poll.at is not None and now < state.poll.at:
                continue
            if self._uncertain(name) or name in blind:
                continue  # rule 4: first learn the id of every post we may have made
            if not self.store.any_in(("sent",), [name]):
                state.poll.at = None  # nothing to wait for: poll again once a probe goes out
                continue
            self._poller.poll(name, state, now)
        self.budget.keep()

    def progress(self, wake: Event | None, *, final: bool = False) -> Progress:
        """The facts of this moment for ``on_progress``: only what the runner holds in memory
        is gathered here; counts are read from the store if and when the display asks."""
        now = self.clock.now()
        held: dict[str, int] = {}
        for channel in self._held.values():
            held[channel] = held.get(channel, 0) + 1
        waits = tuple(Wait(n, s.rate_limit[0], s.rate_limit[1])
                      for n, s in self._live() if s.rate_limit and s.rate_limit[1] > now)
        return Progress(
            now, self.store, tuple(n for n, s in self._channels.items() if s.stopped),
            timezone=self.study.timezone, virtual=not isinstance(self.clock, RealClock),
            next_event=wake, waits=waits, held=held, final=final,
        )

    def _live(self) -> list[tuple[str, ChannelState]]:
        return self._pacing.live()

    def live_channels(self) -> list[str]:
        return [n for n, _ in self._live()]

    def _uncertain(self, name: str) -> bool:
        return self.store.any_in(("sending",), [name])

    def all_settled(self, everywhere: bool = False) -> bool:
        channels = ([*self._channels, *self._failed_to_open] if everywhere
                    else self.live_channels())
        return not self.store.any_in(("planned", "sending", "sent"), channels)

    def next_event(self) -> Event | None:
        """The earliest thing left to do: never later than an event not yet done. Labelled
        (what, where, which probe) so that a display can say what the run is waiting for."""
        now = self.clock.now()
        events = [Event(at, "send", channel, probe_id)
                  for probe_id, (channel, at) in self._waits.items()]
        for name, state in self._live():
            planned = self.store.next_planned([name], after=now)
            if planned is not None:
                at = max(planned[1], state.send.at or planned[1])
                events.append(Event(at, "send", name, planned[0]))
            if state.send.at is not None and state.send.at > now:
                events.append(Event(state.send.at, "resume", name))  # a post refused (429)
            events += [Event(at, "look", name) for at in self._hand.wake_times(name, state, now)]
            if self._uncertain(name):
                events.append(Event(state.check.at or now, "check", name))
            elif state.poll.at is not None:
                events.append(Event(state.poll.at, "poll", name))
            elif self.store.any_in(("sent",), [name]):
                events.append(Event(now, "poll", name))
        if not events:
            return None
        first = min(events, key=lambda e: e.at)  # the first listed wins a tie, as before
        return first if first.at >= now else Event(now, first.kind, first.channel,
                                                   first.probe_id)

    # -- sending ---------------------------------------------------------------------------

    def _send(self, probe: ProbeRow, state: ChannelState, now: datetime) -> None:
        earlier = [a[1] for a in self.store.attempts(probe.id)]
        failed = earlier.count("failed")
        if failed >= MAX_SEND_FAILURES:
            self._exclude(probe, "not_sent", f"not sent after {failed} failed attempts", now)
            return
        # Another runner (another account, same brand) may pass the same check this very
        # moment: on PostgreSQL the store checks again under a lock on the brand, atomically
        # with the intent (the daily cap is per account, and one runner serves an account).
        hold = self.store.begin_send(probe.id, now, self._brand_check(probe, now))
        if hold is not None:
            self._hold(probe, hold, state, now)
            return
        if now - probe.planned_at > LATE_NOTICE:
            self.on_notice(f"{probe.id}: due at {probe.planned_at:%Y-%m-%d %H:%M} UTC; "
                           f"sending it {format_span(now - probe.planned_at)} late")
        try:
            sent = state.channel.send(outgoing(self.study, probe))
        except RateLimited as exc:
            self.store.abort_send(probe.id, str(exc), now)
            state.send.at = self._pacing.rate_limited(probe.channel, "posting", exc, now,
                                                         state.send.failures + 1)
            return
        except Rejected as exc:
            if any(outcome in ("failed", "interrupted") for outcome in earlier):
                # Perhaps a duplicate of our own earlier, uncertain post that is only now
                # showing: look again (after the platform's lag) before deciding anything.
                self.store.mark_uncertain(probe.id, str(exc), now)
                state.check.at = now + state.channel.visibility_lag
                return
            self.store.abort_send(probe.id, str(exc), now)
            self._another_store(probe, state, now)
            self._exclude(probe, "rejected", str(exc), now)
            return
        except AuthError as exc:
            self.store.abort_send(probe.id, str(exc), now)
            self._pacing.stop(probe.channel, str(exc))
            return
        except ChannelError as exc:  # TransientError, or anything else a channel did not say
            # We do not know whether it went out: it stays 'sending' until our timeline says.
            self.store.mark_uncertain(probe.id, str(exc), now)
            self._pacing.uncertain(state, now)
            self.on_notice(f"{probe.id}: {exc}; checking our timeline before any retry")
            return
        self.store.mark_sent(probe.id, sent.message_id, sent.sent_at, sent.text, now)
        state.send.failures, state.send.at = 0, None
        if state.poll.at is None:
            state.poll.at = now + state.poll_every

    def _another_store(self, probe: ProbeRow, state: ChannelState, now: datetime) -> None:
        """A post refused that this store never made before: if the account's own timeline
        already holds this probe's exact text, another store (another runner with another
        ``--db``) is running the study on this account, and the study would end split between
        the two. Stop the run, naming the post, rather than exclude the probe as refused."""
        try:
            found = state.channel.find_sent(outgoing(self.study, probe),
                                            probe.planned_at - RECONCILE_MARGIN)
        except ChannelError:
            return  # cannot tell: the refusal stands as it is
        if found is not None:
            raise StoreError(
                f"{probe.id} ({probe.brand} on {probe.channel}) is already on the account's "
                f"timeline as post {found.message_id}, sent {found.sent_at:%Y-%m-%d %H:%M:%S} "
                f"UTC, but {self.store.path} never sent it: another store of this study is "
                "collecting on the same account. Run the study from one store only (the "
                "other's --db), or give this one its own account"
            )

    def _check_uncertain(self, name: str, state: ChannelState, now: datetime) -> None:
        for probe in self.store.probes(state="sending", channel=name):
            if not self._reconcile(probe, state, now):
                return

    def _reconcile(self, probe: ProbeRow, state: ChannelState, now: datetime) -> bool:
        """Rule 3: a send that may have happened is looked up before anything is re-sent.
        Returns False when the answer must wait (``check.at`` says until when)."""
        attempts = self.store.attempts(probe.id)
        started = parse_iso(attempts[-1][0]) if attempts else now
        visible_from = started + state.channel.visibility_lag
        if now < visible_from:
            state.check.at = visible_from  # the platform may not show it yet
            return False
        first = parse_iso(attempts[0][0]) if attempts else now
        since = min(probe.planned_at, first) - RECONCILE_MARGIN
        try:
            found = state.channel.find_sent(outgoing(self.study, probe), since)
        except ChannelError as exc:
            self._pacing.failed(probe.channel, state, "check", exc, now,
                                "checking our timeline",
                                f"{probe.id}: cannot check our timeline yet ({exc}); "
                                "will retry")
            return False
        state.check.failures, state.check.at = 0, None
        if found is not None:
            self.store.mark_sent(probe.id, found.message_id, found.sent_at, found.text, now,
                                 how="reconciled")
            self.on_notice(f"{probe.id}: found on our timeline after an interrupted send")
            if state.poll.at is None:
                state.poll.at = now + state.poll_every
        else:
            crashed = attempts[-1][1] is None if attempts else True
            self.store.abort_send(probe.id, "not on our timeline", now,
                                  outcome="interrupted" if crashed else "failed")
        return True

    # -- holds, refusals and exclusions ----------------------------------------------------

    def _hold(self, probe: ProbeRow, hold: Hold, state: ChannelState, now: datetime) -> None:
        """A safeguard keeps ``probe`` back: say so once, and look again when it may pass."""
        self._waits[probe.id] = (probe.channel,
                                 hold.until or state.poll.at or now + state.poll_every)
        self._held[probe.id] = probe.channel
        if self._told.get(probe.id) != hold.reason:
            self._told[probe.id] = hold.reason
            until = f" until {hold.until:%Y-%m-%d %H:%M} UTC" if hold.until else ""
            self.on_notice(f"{probe.id}: held back{until}: {hold.reason}")

    def _confirmed(self, probe: ProbeRow) -> bool:
        """``confirm`` mode: post only if the researcher says so; a refusal excludes the
        probe with a ``declined`` flag (recorded, never silently dropped)."""
        if self._hand.asked(probe):
            return True
        self._exclude(probe, "declined", "declined by the researcher when asked to post it",
                      self.clock.now())
        return False

    def _exclude(self, probe: ProbeRow, kind: str, reason: str, now: datetime) -> None:
        self.store.exclude(probe.id, kind, reason, now)
        self.on_notice(f"{probe.id}: excluded from the study: {reason}")
