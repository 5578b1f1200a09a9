"""The collection loop: send due probes, poll channels, record replies, settle probes.

The runner owns time (DESIGN.md): it asks the clock to sleep until its next event — a planned
send, a poll, a retry — and a virtual clock simply jumps there, so a seven-day sandbox study
takes seconds and a real one sleeps. It never moves the clock past an event it has not done:
every send due *now* is made before the clock moves, so a run killed and restarted sends each
probe at the very instant an undisturbed run would.

Each pass is safe to interrupt anywhere (SIGKILL included):

- **never send twice**: the intent is committed (durably) before the post; a probe left
  ``sending`` — by a crash, a timeout, a 5xx, a lost answer — is looked for on our own timeline
  before anything else happens on its channel, and sent again only if it is not there;
- **never lose a reply**: a poll's replies and the cursor that covers them commit together, and
  no channel is polled while one of its sends is uncertain (a reply to a post we do not know
  the id of could not be attributed, and the cursor would move past it);
- **catch up**: after downtime the first poll pages back to the cursor; where the platform
  cannot reach that far (X: 800 mentions) the open probes' threads are searched, and a probe
  whose replies may lie beyond even that is *excluded with a flag*, never counted unanswered;
- **unanswered is data**: a probe is settled as unanswered only once a poll has covered
  everything up to its cutoff.

Platform trouble: a 429 waits until the reset the platform names (a notice, never a silent
sleep, never hammering); 5xx, timeouts and dropped connections back off exponentially with
jitter, capped; a malformed answer is a notice and a retry; 401/403 stops that channel with the
credential to fix while the others go on.

The library never prints: progress and notices go to the callbacks the caller passes.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mystery.awaiting import Awaiting, Ledger
from mystery.channels.base import Channel, Message, Outgoing, Sent
from mystery.channels.catchup import Gap, GappedPoll, ThreadSearch
from mystery.clock import Clock, parse_iso
from mystery.coding import auto_code, probe_times
from mystery.cost import Spend
from mystery.errors import AuthError, ChannelError, MysteryError, RateLimited, Rejected
from mystery.manual import DueProbe, compose_link
from mystery.reschedule import next_slot
from mystery.safeguards import Hold, Safeguards
from mystery.store import Counts, ProbeRow, ReplyRow, Store
from mystery.study import Study

MAX_SEND_FAILURES = 5
"""Sends that reached the platform and failed; past this a probe is excluded, not sent late."""
BACKOFF_BASE = timedelta(seconds=2)
MAX_BACKOFF = timedelta(minutes=15)
RATE_LIMIT_FALLBACK = timedelta(minutes=1)
"""How long to wait after a 429 that names no reset (then backing off like any failure)."""
RECONCILE_MARGIN = timedelta(hours=1)
"""Our own timeline is searched from this long before the planned time: the platform's clock
and ours may disagree, and a post never precedes its plan by more."""
LATE_NOTICE = timedelta(minutes=5)


@dataclass(frozen=True)
class Progress:
    """Where a run stands. ``counts()`` queries the store, so a display that refreshes ten
    times a second pays for it ten times a second, not once per pass of a fast virtual run."""

    now: datetime
    store: Store
    stopped_channels: tuple[str, ...] = ()

    def counts(self) -> Counts:
        return self.store.counts()


@dataclass
class _ChannelState:
    """A channel's pacing: when it may next poll, send, and check an uncertain send."""

    channel: Channel
    poll_every: timedelta
    next_poll: datetime | None = None
    poll_failures: int = 0
    send_after: datetime | None = None
    send_failures: int = 0
    check_after: datetime | None = None
    check_failures: int = 0
    detect_after: datetime | None = None  # next look for posts the researcher made by hand
    detect_failures: int = 0
    stopped: str | None = None  # why the channel was stopped, if it was


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
        on_progress: Callable[[Progress], None] = _noop,
        on_notice: Callable[[str], None] = _noop,
        seed: int = 0,
        stopped: Mapping[str, str] | None = None,
        on_due: Callable[[DueProbe], None] = _noop,
        confirm: Callable[[DueProbe], bool] | None = None,
    ) -> None:
        """``stopped`` names channels of the study that could not even be opened (and why):
        reported with the result, and a study with probes on them is not finished.

        ``on_due`` shows a ``manual`` probe to the researcher when it falls due (again after a
        restart); ``confirm`` asks before each ``confirm`` probe is posted (True: post it)."""
        self.study = study
        self.store = store
        self.clock = clock
        self.on_progress = on_progress
        self.on_notice = on_notice
        self.cutoff = study.cutoff
        self._rng = random.Random(seed)  # jitter only; never affects what is measured
        self._channels = {
            name: _ChannelState(channel, study.channels[name].poll_every)
            for name, channel in channels.items()
        }
        self._authors: dict[str, set[str]] = {}
        for brand in study.brands:
            for name in channels:
                handles = [brand.handles.get(name, ""), *brand.aliases.get(name, [])]
                self._authors[f"{name}:{brand.name}"] = {h.lower() for h in handles if h}
        self._failed_to_open = dict(stopped or {})
        self.on_due = on_due
        self.confirm = confirm
        asking = [n for n in channels if study.channels[n].send_mode == "confirm"]
        if asking and confirm is None:
            raise MysteryError(
                f"channels.{asking[0]}.mode is 'confirm', which asks before each post, but "
                "there is nobody to ask (no terminal); run it in a terminal, or choose "
                "mode = \"manual\" or \"auto\""
            )
        self._ledger = Ledger(store)
        self._guards = Safeguards(study, store)
        self._waits: dict[str, datetime] = {}  # due probes held back: when to look again
        self._told: dict[str, str] = {}  # the hold last announced per probe (no repeats)
        self._shown: set[str] = set()  # manual probes shown by this runner
        for name, channel in channels.items():
            spend: Spend | None = getattr(channel, "spend", None)
            saved = store.meta(f"spend:{name}")
            if spend is not None and saved:  # what earlier runs of this study spent
                channel.spend = Spend(**json.loads(saved))  # type: ignore[attr-defined]
        self._retries = 0
        self._flagged = 0

    # -- the loop --------------------------------------------------------------------------

    def run(self, *, once: bool = False, until: datetime | None = None) -> RunResult:
        """Run until every probe is settled (one pass with ``once``; with ``until``, stop
        before the clock would pass that instant)."""
        passes = 0
        while True:
            passes += 1
            self.step()
            if self._all_settled() or once or not self._live_channels():
                break
            wake = self._next_event()
            if wake is None or (until is not None and wake > until):
                break
            self.clock.sleep_until(wake)
        return RunResult(
            counts=self.store.counts(),
            finished=self._all_settled(everywhere=True),
            passes=passes,
            stopped={**self._failed_to_open,
                     **{n: s.stopped for n, s in self._channels.items() if s.stopped}},
            requests=sum(getattr(s.channel, "requests", 0) for s in self._channels.values()),
            retries=self._retries,
            skipped=sum(getattr(s.channel, "skipped", 0) for s in self._channels.values()),
            flagged=self._flagged,
        )

    def step(self) -> None:
        """One pass at the present instant: check uncertain sends, send (or show, or ask
        about) what is due, look for posts made by hand, poll."""
        self._keep_to_budget()
        now = self.clock.now()
        for name, state in self._live():
            if self._uncertain(name) and (state.check_after is None or now >= state.check_after):
                self._check_uncertain(name, state, now)
        self._waits = {}
        shown = {a.probe.id: a for a in self._ledger.waiting() if a.shown_at is not None}
        for probe in self.store.due_probes(now):
            sender = self._channels.get(probe.channel)
            if sender is None or sender.stopped:
                continue
            if probe.id in shown:
                self._remind(shown[probe.id])
                continue
            if sender.send_after and now < sender.send_after:
                self._waits[probe.id] = sender.send_after
                continue
            hold = self._guards.hold(probe, now)
            if hold is not None:
                self._hold(probe, hold, sender, now)
                continue
            mode = self.study.channels[probe.channel].send_mode
            if mode == "manual":
                self._show(probe, sender, now)
            elif not self._affordable(probe, sender):
                continue
            elif mode == "auto" or self._confirmed(probe, now):
                self._send(probe, sender, now)
        blind: set[str] = set()  # channels whose hand-made posts we could not look for
        for name, state in self._live():
            waiting = self._ledger.waiting(name)
            if waiting and self._detect_due(state, waiting, now) \
                    and not self._detect(state, waiting, now):
                blind.add(name)
        for name, state in self._live():
            if state.next_poll is not None and now < state.next_poll:
                continue
            if self._uncertain(name) or name in blind:
                continue  # rule 4: first learn the id of every post we may have made
            if not self.store.any_in(("sent",), [name]):
                state.next_poll = None  # nothing to wait for: poll again once a probe goes out
                continue
            self._poll(name, state, now)
        self._keep_to_budget()
        self.on_progress(
            Progress(self.clock.now(), self.store,
                     tuple(n for n, s in self._channels.items() if s.stopped))
        )

    def _live(self) -> list[tuple[str, _ChannelState]]:
        return [(n, s) for n, s in self._channels.items() if not s.stopped]

    def _live_channels(self) -> list[str]:
        return [n for n, _ in self._live()]

    def _uncertain(self, name: str) -> bool:
        return self.store.any_in(("sending",), [name])

    def _all_settled(self, everywhere: bool = False) -> bool:
        channels = ([*self._channels, *self._failed_to_open] if everywhere
                    else self._live_channels())
        return not self.store.any_in(("planned", "sending", "sent"), channels)

    def _next_event(self) -> datetime | None:
        """The earliest thing left to do: never later than an event not yet done."""
        now = self.clock.now()
        events: list[datetime] = []
        events += self._waits.values()
        for name, state in self._live():
            planned = self.store.next_planned_at([name], after=now)
            if planned is not None:
                events.append(max(planned, state.send_after or planned))
            if state.send_after is not None and state.send_after > now:
                events.append(state.send_after)  # a post refused just now (e.g. a 429)
            waiting = self._ledger.waiting(name)
            if waiting:
                events.append(state.detect_after or now)
                events += [self._grace_end(a, state) for a in waiting if a.grace_until]
            if self._uncertain(name):
                events.append(state.check_after or now)
            elif state.next_poll is not None:
                events.append(state.next_poll)
            elif self.store.any_in(("sent",), [name]):
                events.append(now)
        return max(min(events), now) if events else None

    def _backoff(self, failures: int) -> timedelta:
        """Exponential, with jitter (so restarted clients do not retry in step), capped."""
        base: timedelta = min(MAX_BACKOFF, BACKOFF_BASE * 2 ** min(failures - 1, 20))
        jittered = base * (0.5 + self._rng.random())
        return min(MAX_BACKOFF, timedelta(milliseconds=round(jittered / timedelta(milliseconds=1))))

    # -- sending ---------------------------------------------------------------------------

    def _outgoing(self, probe: ProbeRow) -> Outgoing:
        handle = self.study.brand(probe.brand).handles.get(probe.channel, "")
        return Outgoing(probe.id, handle, probe.text)

    def _send(self, probe: ProbeRow, state: _ChannelState, now: datetime) -> None:
        earlier = [a[1] for a in self.store.attempts(probe.id)]
        failed = earlier.count("failed")
        if failed >= MAX_SEND_FAILURES:
            self._exclude(probe, "not_sent", f"not sent after {failed} failed attempts", now)
            return
        if now - probe.planned_at > LATE_NOTICE:
            self.on_notice(f"{probe.id}: due at {probe.planned_at:%Y-%m-%d %H:%M} UTC; "
                           f"sending it {_span(now - probe.planned_at)} late")
        self.store.begin_send(probe.id, now)
        try:
            sent = state.channel.send(self._outgoing(probe))
        except RateLimited as exc:
            self.store.abort_send(probe.id, str(exc), now)
            state.send_after = self._rate_limited(probe.channel, "posting", exc, now,
                                                  state.send_failures + 1)
            return
        except Rejected as exc:
            if any(outcome in ("failed", "interrupted") for outcome in earlier):
                # Perhaps a duplicate of our own earlier, uncertain post that is only now
                # showing: look again (after the platform's lag) before deciding anything.
                self.store.mark_uncertain(probe.id, str(exc), now)
                state.check_after = now + state.channel.visibility_lag
                return
            self.store.abort_send(probe.id, str(exc), now)
            self._exclude(probe, "rejected", str(exc), now)
            return
        except AuthError as exc:
            self.store.abort_send(probe.id, str(exc), now)
            self._stop(probe.channel, str(exc))
            return
        except ChannelError as exc:  # TransientError, or anything else a channel did not say
            # We do not know whether it went out: it stays 'sending' until our timeline says.
            self.store.mark_uncertain(probe.id, str(exc), now)
            self._retries += 1
            self._hold_sends(state, now)
            state.check_after = now + state.channel.visibility_lag
            self.on_notice(f"{probe.id}: {exc}; checking our timeline before any retry")
            return
        self.store.mark_sent(probe.id, sent.message_id, sent.sent_at, sent.text, now)
        state.send_failures, state.send_after = 0, None
        if state.next_poll is None:
            state.next_poll = now + state.poll_every

    def _hold_sends(self, state: _ChannelState, now: datetime) -> None:
        state.send_failures += 1
        state.send_after = now + self._backoff(state.send_failures)

    def _check_uncertain(self, name: str, state: _ChannelState, now: datetime) -> None:
        for probe in self.store.probes(state="sending", channel=name):
            if not self._reconcile(probe, state, now):
                return

    def _reconcile(self, probe: ProbeRow, state: _ChannelState, now: datetime) -> bool:
        """Rule 3: a send that may have happened is looked up before anything is re-sent.
        Returns False when the answer must wait (``check_after`` says until when)."""
        attempts = self.store.attempts(probe.id)
        started = parse_iso(attempts[-1][0]) if attempts else now
        visible_from = started + state.channel.visibility_lag
        if now < visible_from:
            state.check_after = visible_from  # the platform may not show it yet
            return False
        first = parse_iso(attempts[0][0]) if attempts else now
        since = min(probe.planned_at, first) - RECONCILE_MARGIN
        try:
            found = state.channel.find_sent(self._outgoing(probe), since)
        except RateLimited as exc:
            state.check_after = self._rate_limited(probe.channel, "checking our timeline", exc,
                                                   now, state.check_failures + 1)
            return False
        except AuthError as exc:
            self._stop(probe.channel, str(exc))
            return False
        except ChannelError as exc:
            self._retries += 1
            state.check_failures += 1
            state.check_after = now + self._backoff(state.check_failures)
            self.on_notice(f"{probe.id}: cannot check our timeline yet ({exc}); will retry")
            return False
        state.check_failures, state.check_after = 0, None
        if found is not None:
            self.store.mark_sent(probe.id, found.message_id, found.sent_at, found.text, now,
                                 how="reconciled")
            self.on_notice(f"{probe.id}: found on our timeline after an interrupted send")
            if state.next_poll is None:
                state.next_poll = now + state.poll_every
        else:
            crashed = attempts[-1][1] is None if attempts else True
            self.store.abort_send(probe.id, "not on our timeline", now,
                                  outcome="interrupted" if crashed else "failed")
        return True

    # -- a person in the loop: holds, manual posts, confirmation ---------------------------

    def _due(self, probe: ProbeRow, grace_until: datetime | None = None) -> DueProbe:
        outgoing = self._outgoing(probe)
        text = outgoing.compose()
        endpoint = self.study.channels[probe.channel].endpoint
        return DueProbe(probe.id, probe.brand, probe.channel, outgoing.handle, text,
                        compose_link(probe.channel, endpoint, text), probe.planned_at,
                        grace_until)

    def _hold(self, probe: ProbeRow, hold: Hold, state: _ChannelState, now: datetime) -> None:
        """A safeguard keeps ``probe`` back: say so once, and look again when it may pass."""
        self._waits[probe.id] = hold.until or state.next_poll or now + state.poll_every
        if self._told.get(probe.id) != hold.reason:
            self._told[probe.id] = hold.reason
            until = f" until {hold.until:%Y-%m-%d %H:%M} UTC" if hold.until else ""
            self.on_notice(f"{probe.id}: held back{until}: {hold.reason}")

    def _confirmed(self, probe: ProbeRow, now: datetime) -> bool:
        """``confirm`` mode: post only if the researcher says so; a refusal excludes the
        probe with a ``declined`` flag (recorded, never silently dropped)."""
        assert self.confirm is not None  # checked in __init__
        if self.confirm(self._due(probe)):
            return True
        self._exclude(probe, "declined", "declined by the researcher when asked to post it",
                      self.clock.now())
        return False

    def _show(self, probe: ProbeRow, state: _ChannelState, now: datetime) -> None:
        """``manual`` mode: show the due probe; the researcher posts it from their own app."""
        grace_until = now + self.study.channels[probe.channel].grace
        self._ledger.show(probe.id, now, grace_until)
        self._shown.add(probe.id)
        if state.detect_after is None or state.detect_after > now + state.poll_every:
            state.detect_after = now + state.poll_every
        self.on_due(self._due(probe, grace_until))

    def _remind(self, item: Awaiting) -> None:
        """Show a probe again that an earlier runner showed (the researcher may not have)."""
        if item.probe.id not in self._shown:
            self._shown.add(item.probe.id)
            self.on_due(self._due(item.probe, item.grace_until))

    def _grace_end(self, item: Awaiting, state: _ChannelState) -> datetime:
        """When a shown probe counts as missed: its grace window, plus the platform's lag in
        showing a post made at its very end."""
        assert item.grace_until is not None
        return item.grace_until + state.channel.visibility_lag

    def _detect_due(self, state: _ChannelState, waiting: list[Awaiting], now: datetime) -> bool:
        """Look for hand-made posts when it is time to, and always just before a poll of the
        channel: a reply to a post we do not know yet could not be attributed (rule 4)."""
        if state.detect_after is None or now >= state.detect_after:
            return True
        polling = (state.next_poll is None or now >= state.next_poll) \
            and self.store.any_in(("sent",), [state.channel.name])
        claimed = any(a.claimed_id for a in waiting)
        expired = any(a.grace_until and now >= self._grace_end(a, state) for a in waiting)
        return polling or claimed or expired

    def _detect(self, state: _ChannelState, waiting: list[Awaiting], now: datetime) -> bool:
        """Find each waiting probe's post on our own timeline (or verify the post named with
        ``mystery sent``); mark missed those past their grace window. False when the platform
        could not be asked, so that the channel is not polled blind."""
        try:
            for item in waiting:
                if item.claimed_id:
                    self._verify_claim(item, state, now)
                elif item.shown_at is not None:
                    since = min(item.probe.planned_at, item.shown_at) - RECONCILE_MARGIN
                    found = state.channel.find_sent(self._outgoing(item.probe), since)
                    if found is not None:
                        self._posted(item, found, state, now, "manual")
                    elif item.grace_until and now >= self._grace_end(item, state):
                        self._miss(item, now)
        except RateLimited as exc:
            state.detect_after = self._rate_limited(state.channel.name, "looking for posts "
                                                    "made by hand", exc, now,
                                                    state.detect_failures + 1)
            return False
        except AuthError as exc:
            self._stop(state.channel.name, str(exc))
            return False
        except ChannelError as exc:
            self._retries += 1
            state.detect_failures += 1
            state.detect_after = now + self._backoff(state.detect_failures)
            self.on_notice(f"{state.channel.name}: cannot look for posts made by hand yet "
                           f"({exc}); will retry")
            return False
        state.detect_failures = 0
        state.detect_after = now + state.poll_every
        return True

    def _verify_claim(self, item: Awaiting, state: _ChannelState, now: datetime) -> None:
        """``mystery sent``: believe a named post only once the platform shows it is ours,
        mentions the brand, and gives its time."""
        probe, url = item.probe, item.claimed_url or item.claimed_id
        fetch: Callable[[str], Sent | None] | None = getattr(state.channel, "fetch_own", None)
        assert item.claimed_id is not None
        found = fetch(item.claimed_id) if fetch is not None else None
        # Mastodon shows a remote mention by its local part: "@help", not "@help@acme.example".
        handle = self._outgoing(probe).handle.lower().split("@")[0]
        if found is None or f"@{handle}" not in found.text.lower():
            why = ("it is not a post of the study's account" if found is None
                   else f"it does not mention @{handle}")
            self._ledger.drop_claim(probe.id)
            self.on_notice(f"{probe.id}: ignored the post named with 'mystery sent' ({url}): "
                           f"{why}")
            return
        self._posted(item, found, state, now, "claimed")

    def _posted(self, item: Awaiting, sent: Sent, state: _ChannelState, now: datetime,
                how: str) -> None:
        if self._ledger.found(item, sent.message_id, sent.sent_at, sent.text, now, how):
            at = f"{sent.sent_at:%Y-%m-%d %H:%M:%S}"
            self.on_notice(f"{item.probe.id}: posted by hand at {at} UTC "
                           f"({state.channel.name} id {sent.message_id})")
            if state.next_poll is None:
                state.next_poll = now + state.poll_every

    def _miss(self, item: Awaiting, now: datetime) -> None:
        """Not posted within the grace window: to the next slot the plan's rules allow."""
        probe = item.probe
        others = [p.sent_at or p.planned_at for p in self.store.probes()
                  if p.brand == probe.brand and p.id != probe.id and p.outcome != "excluded"]
        slot = next_slot(self.study, now, others)
        grace = self.study.channels[probe.channel].grace
        reason = f"not posted within the grace window ({_span(grace)}) after it was shown"
        self._ledger.missed(item, slot, reason, now)
        self._shown.discard(probe.id)
        if slot is None:
            self.on_notice(f"{probe.id}: excluded from the study: {reason}, and the schedule "
                           "has no slot left for it")
        else:
            self.on_notice(f"{probe.id}: {reason}; rescheduled to {slot:%Y-%m-%d %H:%M} UTC")

    # -- polling ---------------------------------------------------------------------------

    def _poll(self, name: str, state: _ChannelState, now: datetime) -> None:
        cursor, _ = self.store.cursor(name)
        try:
            poll = state.channel.poll(cursor, now)
            found: list[Message] = []
            excluded: list[tuple[str, str]] = []
            if isinstance(poll, GappedPoll) and poll.gap is not None:
                found, excluded = self._catch_up(name, state.channel, poll.gap, now)
        except RateLimited as exc:
            state.next_poll = self._rate_limited(name, "polling", exc, now,
                                                 state.poll_failures + 1)
            return
        except AuthError as exc:
            self._stop(name, str(exc))
            return
        except ChannelError as exc:
            self._retries += 1
            state.poll_failures += 1
            delay = self._backoff(state.poll_failures)
            self.on_notice(f"{name}: {exc}; polling again in {_span(delay)}")
            state.next_poll = now + delay
            return
        state.poll_failures = 0
        replies = self._attribute(name, [*poll.messages, *found])
        self.store.record_poll(name, replies, poll.cursor, poll.complete_through, now,
                               excluded)
        for warning in poll.warnings:
            self.on_notice(f"{name}: {warning}")
        self._flagged += len(excluded)
        self._settle(name, poll.complete_through, {r.probe_id for r in replies})
        state.next_poll = now + state.poll_every

    def _catch_up(self, name: str, channel: Channel, gap: Gap,
                  now: datetime) -> tuple[list[Message], list[tuple[str, str]]]:
        """Replies the poll could not reach, from each open probe's thread; and the probes
        whose replies may lie beyond even that (to be excluded with their reason)."""
        found: list[Message] = []
        excluded: list[tuple[str, str]] = []
        probes = [p for p in self.store.open_probes(name, gap.before)
                  if p.sent_at is not None and p.sent_at + self.cutoff > gap.after]
        for probe in probes:
            reach = gap.before
            if isinstance(channel, ThreadSearch) and probe.message_id:
                thread = channel.thread(probe.message_id, now)
                found += thread.messages
                reach = thread.complete_after
            if gap.after < reach and probe.sent_at is not None and probe.sent_at < reach:
                excluded.append((probe.id, (
                    f"replies posted between {gap.after:%Y-%m-%d %H:%M} and "
                    f"{reach:%Y-%m-%d %H:%M} UTC lie beyond what {name} lets us look back "
                    "over (the runner was down too long); excluded, not counted unanswered"
                )))
        self.on_notice(
            f"{name}: the platform could not reach back to {gap.after:%Y-%m-%d %H:%M} UTC; "
            f"searched {len(probes)} open probe thread(s), {len(excluded)} excluded"
        )
        return found, excluded

    def _attribute(self, channel: str, messages: Iterable[Message]) -> list[ReplyRow]:
        """Replies to our probes among ``messages``, each once, oldest first. A reply to a
        reply in the same batch (a brand answering its own holding message) is found too.

        A direct message has no thread to follow: it belongs to the latest probe of its sender's
        brand on this channel sent before it and still open. The study's safeguards (on by
        default on a real platform) keep at most one probe per brand per channel open, so that
        probe is the one the brand is answering, unambiguously; with them off, probes to a brand
        that overlap give a DM to the later one. A DM from anyone but a brand is not ours."""
        out: dict[str, ReplyRow] = {}
        for message in sorted(messages, key=lambda m: (m.created_at, m.message_id)):
            if message.message_id in out:
                continue
            thread = [message.conversation_id, message.in_reply_to]
            if message.direct:
                sender = message.author.lower()
                probe_id = next(
                    (found for key, handles in self._authors.items()
                     if key.startswith(f"{channel}:") and sender in handles
                     and (found := self.store.latest_open_probe(
                         channel, key.partition(":")[2], message.created_at))),
                    None,
                )
            else:
                probe_id = self.store.probe_for_thread(channel, thread) or next(
                    (out[i].probe_id for i in thread if i and i in out), None
                )
            if probe_id is None:
                continue  # a mention unrelated to any probe: not ours to keep
            brand = next(p.brand for p in self.store.probes_by_id([probe_id]))
            from_brand = message.author.lower() in self._authors.get(f"{channel}:{brand}", set())
            out[message.message_id] = ReplyRow(
                channel=channel,
                message_id=message.message_id,
                probe_id=probe_id,
                author=message.author,
                text=message.text,
                created_at=message.created_at,
                in_reply_to=message.in_reply_to,
                conversation_id=message.conversation_id,
                auto_code=(
                    ("automatic" if message.automatic else auto_code(message.text))
                    if from_brand else "not_brand"
                ),
            )
        return list(out.values())

    def _settle(self, channel: str, complete_through: datetime, touched: set[str]) -> None:
        """Settle the probes this poll can decide: those with new replies (perhaps now
        resolved) and those whose cutoff the poll has covered. Others cannot have changed."""
        candidates = {p.id: p for p in self.store.probes_by_id(touched) if p.state == "sent"}
        for probe in self.store.expired(channel, complete_through - self.cutoff):
            candidates[probe.id] = probe
        if not candidates:
            return
        codes = self.store.codes()
        replies = self.store.replies_for(candidates)
        now = self.clock.now()
        for probe in candidates.values():
            assert probe.sent_at is not None
            times = probe_times(probe.sent_at, replies.get(probe.id, []), codes, self.cutoff)
            if times.resolution is not None:
                self.store.settle(probe.id, "answered", now)
            elif probe.sent_at + self.cutoff <= complete_through:
                self.store.settle(probe.id, "answered" if times.ack is not None
                                  else "unanswered", now)

    # -- waiting, excluding and stopping ---------------------------------------------------

    def _affordable(self, probe: ProbeRow, state: _ChannelState) -> bool:
        """Whether posting ``probe`` stays within the budget; if not, the channel stops."""
        spend: Spend | None = getattr(state.channel, "spend", None)
        budget = self.study.channels[probe.channel].budget_usd
        left = spend.remaining(budget) if spend is not None else None
        if spend is None or left is None or left >= spend.prices.of_post(probe.text):
            return True
        self._keep_to_budget(force=True)
        return False

    def _keep_to_budget(self, force: bool = False) -> None:
        """Save what each paid channel has spent, and stop one that has reached the study's
        ``budget_usd``: no more reads or posts there until the budget is raised."""
        for name, state in self._live():
            spend: Spend | None = getattr(state.channel, "spend", None)
            if spend is None:
                continue
            counts = json.dumps(spend.counts(), sort_keys=True)
            if self.store.meta(f"spend:{name}") != counts:
                self.store.set_meta({f"spend:{name}": counts})
            budget = self.study.channels[name].budget_usd
            if spend.over(budget) or (force and budget is not None):
                self._stop(name, f"the budget is spent: ${spend.total_usd:.3f} of "
                                 f"channels.{name}.budget_usd = {budget} (at X's prices"
                                 f"{', with too little left for the next post' if force else ''}"
                                 "); raise it in the study file and run again to go on")

    def _rate_limited(self, name: str, doing: str, exc: RateLimited, now: datetime,
                      failures: int) -> datetime:
        """When to try again after a 429: the reset the platform named, else a backoff."""
        self._retries += 1
        if exc.reset_at is not None and exc.reset_at > now:
            until = exc.reset_at
        else:
            until = now + max(RATE_LIMIT_FALLBACK, self._backoff(failures))
        self.on_notice(f"{name}: rate limited while {doing}; waiting until "
                       f"{until:%Y-%m-%d %H:%M:%S} UTC ({_span(until - now)})")
        return until

    def _exclude(self, probe: ProbeRow, kind: str, reason: str, now: datetime) -> None:
        self.store.exclude(probe.id, kind, reason, now)
        self.on_notice(f"{probe.id}: excluded from the study: {reason}")

    def _stop(self, name: str, why: str) -> None:
        self._channels[name].stopped = why
        self.on_notice(f"{name}: stopped: {why}")


def _span(delta: timedelta) -> str:
    seconds = max(0, round(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"
