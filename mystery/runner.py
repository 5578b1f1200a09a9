"""The collection loop: send due probes, poll channels, record replies, settle probes.

The runner owns time (DESIGN.md): it asks the clock to sleep until its next event — a planned
send or a poll — and a virtual clock simply jumps there, so a seven-day sandbox study takes
seconds and a real one sleeps. Each pass is safe to interrupt anywhere:

- **never send twice**: the intent is committed before the post; a probe left ``sending`` by a
  crash or a dropped connection is looked for on our own timeline before it is sent again;
- **never lose a reply**: a poll's replies and the cursor that covers them commit together;
- **unanswered is data**: a probe is settled as unanswered only once a poll has covered
  everything up to its cutoff.

The library never prints: progress and notices go to the callbacks the caller passes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mystery.channels.base import Channel, Message, Outgoing
from mystery.clock import Clock
from mystery.coding import auto_code, probe_times
from mystery.errors import AuthError, ChannelError, RateLimited, Rejected, TransientError
from mystery.store import Counts, ProbeRow, ReplyRow, Store
from mystery.study import Study

MAX_SEND_ATTEMPTS = 5
MAX_BACKOFF = timedelta(minutes=15)


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
    channel: Channel
    poll_every: timedelta
    next_poll: datetime | None = None
    failures: int = 0
    stopped: str | None = None  # why the channel was stopped, if it was


@dataclass
class RunResult:
    counts: Counts
    finished: bool
    passes: int
    stopped: dict[str, str] = field(default_factory=dict)
    requests: int = 0


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
    ) -> None:
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

    # -- the loop --------------------------------------------------------------------------

    def run(self, *, once: bool = False) -> RunResult:
        """Run until every probe is settled (or one pass with ``once``)."""
        passes = 0
        self._reconcile_uncertain()
        while True:
            passes += 1
            self.step()
            done = self._all_settled()
            if done or once or not self._live_channels():
                break
            wake = self._next_event()
            if wake is None:
                break
            self.clock.sleep_until(wake)
        return RunResult(
            counts=self.store.counts(),
            finished=self._all_settled(),
            passes=passes,
            stopped={n: s.stopped for n, s in self._channels.items() if s.stopped},
            requests=sum(getattr(s.channel, "requests", 0) for s in self._channels.values()),
        )

    def step(self) -> None:
        now = self.clock.now()
        for probe in self.store.due_probes(now):
            self._send(probe)
        for name, state in self._channels.items():
            if state.stopped or (state.next_poll is not None and now < state.next_poll):
                continue
            if not self.store.any_in(("sent", "sending"), [name]):
                state.next_poll = None  # nothing to wait for: poll again once a probe goes out
                continue
            self._poll(name, state)
        self.on_progress(
            Progress(self.clock.now(), self.store,
                     tuple(n for n, s in self._channels.items() if s.stopped))
        )

    def _live_channels(self) -> list[str]:
        return [n for n, s in self._channels.items() if not s.stopped]

    def _all_settled(self) -> bool:
        return not self.store.any_in(("planned", "sending", "sent"), self._live_channels())

    def _next_event(self) -> datetime | None:
        events: list[datetime] = []
        planned = self.store.next_planned_at()
        if planned is not None:
            events.append(planned)
        for state in self._channels.values():
            if state.stopped:
                continue
            if state.next_poll is not None:
                events.append(state.next_poll)
        if not events:
            return None
        return max(min(events), self.clock.now())

    # -- sending ---------------------------------------------------------------------------

    def _outgoing(self, probe: ProbeRow) -> Outgoing:
        handle = self.study.brand(probe.brand).handles.get(probe.channel, "")
        return Outgoing(probe.id, handle, probe.text)

    def _send(self, probe: ProbeRow) -> None:
        state = self._channels.get(probe.channel)
        if state is None or state.stopped:
            return
        attempts = len(self.store.attempts(probe.id))
        if attempts >= MAX_SEND_ATTEMPTS:
            self.store.begin_send(probe.id, self.clock.now())
            self.store.abort_send(probe.id, "gave up", self.clock.now())
            self.store.settle(probe.id, "excluded", self.clock.now())
            self.on_notice(f"{probe.id}: not sent after {attempts} attempts; excluded")
            return
        outgoing = self._outgoing(probe)
        self.store.begin_send(probe.id, self.clock.now())
        try:
            sent = state.channel.send(outgoing)
        except TransientError as exc:
            # We do not know whether it went out: leave it 'sending' and reconcile first.
            self.on_notice(f"{probe.id}: {exc}; will check our timeline before any retry")
            self._reconcile(probe)
            return
        except RateLimited as exc:
            self.store.abort_send(probe.id, str(exc), self.clock.now())
            self._wait(probe.channel, exc)
            return
        except Rejected as exc:
            self.store.abort_send(probe.id, str(exc), self.clock.now())
            self.store.settle(probe.id, "excluded", self.clock.now())
            self.on_notice(f"{probe.id}: {exc}; excluded from the study")
            return
        except AuthError as exc:
            self.store.abort_send(probe.id, str(exc), self.clock.now())
            self._stop(probe.channel, str(exc))
            return
        self.store.mark_sent(probe.id, sent.message_id, sent.sent_at, sent.text,
                             self.clock.now())
        if state.next_poll is None:
            state.next_poll = self.clock.now() + state.poll_every

    def _reconcile_uncertain(self) -> None:
        for probe in self.store.probes(state="sending"):
            state = self._channels.get(probe.channel)
            if state is not None and not state.stopped:
                self._reconcile(probe)

    def _reconcile(self, probe: ProbeRow) -> None:
        """Rule 3: a send that may have happened is looked up before anything is re-sent."""
        state = self._channels[probe.channel]
        started = self.store.attempts(probe.id)[-1][0]
        since = min(probe.planned_at, datetime.fromisoformat(started.replace("Z", "+00:00")))
        try:
            found = state.channel.find_sent(self._outgoing(probe), since - timedelta(minutes=1))
        except ChannelError as exc:
            self.on_notice(f"{probe.id}: cannot check our timeline yet ({exc}); will retry")
            return
        if found is None:
            self.store.abort_send(probe.id, "not on our timeline", self.clock.now())
        else:
            self.store.mark_sent(probe.id, found.message_id, found.sent_at, found.text,
                                 self.clock.now(), how="reconciled")
            self.on_notice(f"{probe.id}: found on our timeline after an interrupted send")

    # -- polling ---------------------------------------------------------------------------

    def _poll(self, name: str, state: _ChannelState) -> None:
        now = self.clock.now()
        cursor, _ = self.store.cursor(name)
        try:
            poll = state.channel.poll(cursor, now)
        except RateLimited as exc:
            self._wait(name, exc)
            return
        except TransientError as exc:
            state.failures += 1
            delay = min(MAX_BACKOFF, timedelta(seconds=2 ** state.failures))
            delay *= 0.5 + self._rng.random()
            self.on_notice(f"{name}: {exc}; retrying in {delay.total_seconds():.0f} s")
            state.next_poll = now + delay
            return
        except AuthError as exc:
            self._stop(name, str(exc))
            return
        state.failures = 0
        replies = [r for m in poll.messages if (r := self._attribute(name, m)) is not None]
        self.store.record_poll(name, replies, poll.cursor, poll.complete_through, now)
        for warning in poll.warnings:
            self.on_notice(f"{name}: {warning}")
        self._settle(name, poll.complete_through, {r.probe_id for r in replies})
        state.next_poll = now + state.poll_every

    def _attribute(self, channel: str, message: Message) -> ReplyRow | None:
        probe_id = self.store.probe_for_thread(
            channel, [message.conversation_id, message.in_reply_to]
        )
        if probe_id is None:
            return None  # a mention unrelated to any probe: not ours to keep
        brand = next(p.brand for p in self.store.probes_by_id([probe_id]))
        from_brand = message.author.lower() in self._authors.get(f"{channel}:{brand}", set())
        return ReplyRow(
            channel=channel,
            message_id=message.message_id,
            probe_id=probe_id,
            author=message.author,
            text=message.text,
            created_at=message.created_at,
            in_reply_to=message.in_reply_to,
            conversation_id=message.conversation_id,
            auto_code=auto_code(message.text) if from_brand else "not_brand",
        )

    def _settle(self, channel: str, complete_through: datetime, touched: set[str]) -> None:
        """Settle the probes this poll can decide: those with new replies (perhaps now
        resolved) and those whose cutoff the poll has covered. Others cannot have changed."""
        candidates = {p.id: p for p in self.store.probes_by_id(touched) if p.state == "sent"}
        for probe in self.store.expired(channel, complete_through - self.cutoff):
            candidates[probe.id] = probe
        if not candidates:
            return
        codes = self.store.codes()
        open_probes = list(candidates.values())
        replies = self.store.replies_for(candidates)
        now = self.clock.now()
        for probe in open_probes:
            assert probe.sent_at is not None
            times = probe_times(probe.sent_at, replies.get(probe.id, []), codes, self.cutoff)
            if times.resolution is not None:
                self.store.settle(probe.id, "answered", now)
            elif probe.sent_at + self.cutoff <= complete_through:
                self.store.settle(probe.id, "answered" if times.ack is not None
                                  else "unanswered", now)

    # -- waiting and stopping --------------------------------------------------------------

    def _wait(self, name: str, exc: RateLimited) -> None:
        now = self.clock.now()
        until = exc.reset_at if exc.reset_at and exc.reset_at > now else now + timedelta(
            minutes=1
        )
        self.on_notice(f"{name}: rate limited; waiting until {until:%Y-%m-%d %H:%M:%S} UTC")
        self._channels[name].next_poll = until
        self.clock.sleep_until(until)

    def _stop(self, name: str, why: str) -> None:
        self._channels[name].stopped = why
        self.on_notice(f"{name}: stopped: {why}")
