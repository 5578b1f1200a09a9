"""A person in the loop: the runner's side of the ``manual`` and ``confirm`` sending modes.

``manual``: when a probe falls due the runner *shows* it
(:class:`~mystery.collect.handoff.DueProbe`: brand, handle, text, a compose link) and the researcher
posts it from their own app; the runner then looks for the post on our own timeline, or verifies the
post named with ``mystery sent``, and records the platform's id and time (the ledger is
:mod:`mystery.collect.ledger`). A probe not posted within its grace window is *missed*: moved to the
next slot the plan's rules allow, or excluded with a flag when none is left. ``confirm``: the runner
asks before each post, and posts only on a yes.

Rule 4 holds for hand-made posts too: they are looked for just before each poll of their
channel, and a channel whose hand-made posts could not be looked for is not polled, because a
reply to a post we do not know yet could not be attributed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from mystery.channels.base import OwnPosts, Sent
from mystery.collect.handoff import DueProbe, compose_link
from mystery.collect.ledger import Awaiting, Held, Ledger
from mystery.collect.outgoing import outgoing
from mystery.collect.pacing import RECONCILE_MARGIN, ChannelState, Pacing
from mystery.durations import format_span
from mystery.errors import ChannelError, MysteryError
from mystery.store.store import ProbeRow, Store
from mystery.study.model import Study
from mystery.study.reschedule import next_slot


class HandPosting:
    """Shows ``manual`` probes, asks about ``confirm`` ones, and finds the posts made by hand.

    ``on_due`` shows a ``manual`` probe to the researcher when it falls due (again after a
    restart); ``confirm`` asks before each ``confirm`` probe is posted (True: post it)."""

    def __init__(
        self,
        study: Study,
        store: Store,
        pacing: Pacing,
        on_due: Callable[[DueProbe], None],
        confirm: Callable[[DueProbe], bool] | None,
    ) -> None:
        asking = [n for n in pacing.channels if study.channels[n].send_mode == "confirm"]
        if asking and confirm is None:
            raise MysteryError(
                f"channels.{asking[0]}.mode is 'confirm', which asks before each post, but "
                "there is nobody to ask (no terminal); run it in a terminal, or choose "
                "mode = \"manual\" or \"auto\""
            )
        self.study = study
        self.store = store
        self.pacing = pacing
        self.on_due = on_due
        self.confirm = confirm
        self.ledger = Ledger(store)
        self._shown: set[str] = set()  # manual probes shown by this runner
        # Whether anything can wait for a person in this run: a ``manual`` channel, or what an
        # earlier run left in the ledger (the mode may have changed since). Else the ledger
        # stays empty all run long ('mystery sent' refuses any other mode) and is not read
        # three times a pass: on PostgreSQL each read is a round trip, a sixth of a pass's.
        self.by_hand = (any(study.channels[n].send_mode == "manual" for n in pacing.channels)
                        or bool(self.ledger.waiting()))

    def due(self, probe: ProbeRow, grace_until: datetime | None = None) -> DueProbe:
        post = outgoing(self.study, probe)
        text = post.compose()
        endpoint = self.study.channels[probe.channel].endpoint
        return DueProbe(probe.id, probe.brand, probe.channel, post.handle, text,
                        compose_link(probe.channel, endpoint, text), probe.planned_at,
                        grace_until, probe.account)

    def asked(self, probe: ProbeRow) -> bool:
        """``confirm`` mode: whether the researcher says to post ``probe``. The runner
        excludes a refused probe with a ``declined`` flag (recorded, never silently dropped)."""
        assert self.confirm is not None  # checked in __init__
        return self.confirm(self.due(probe))

    def shown(self) -> dict[str, Awaiting]:
        """Waiting probes that were shown (by this runner or an earlier one), by id."""
        if not self.by_hand:
            return {}
        return {a.probe.id: a for a in self.ledger.waiting() if a.shown_at is not None}

    def show(self, probe: ProbeRow, state: ChannelState, now: datetime,
             brand: tuple[str, Callable[[], Held | None]] | None = None) -> Held | None:
        """``manual`` mode: show the due probe; the researcher posts it from their own app.
        ``brand`` as for :meth:`Ledger.show`: its answer when it holds the probe back."""
        grace_until = now + self.study.channels[probe.channel].grace
        held = self.ledger.show(probe.id, now, grace_until, brand)
        if held is not None:
            return held
        self._shown.add(probe.id)
        if state.detect.at is None or state.detect.at > now + state.poll_every:
            state.detect.at = now + state.poll_every
        self.on_due(self.due(probe, grace_until))
        return None

    def remind(self, item: Awaiting) -> None:
        """Show a probe again that an earlier runner showed (the researcher may not have)."""
        if item.probe.id not in self._shown:
            self._shown.add(item.probe.id)
            self.on_due(self.due(item.probe, item.grace_until))

    def wake_times(self, name: str, state: ChannelState, now: datetime) -> list[datetime]:
        """When the channel's waiting probes next need a pass: the next look for their posts,
        and the end of each grace window."""
        waiting = self.ledger.waiting(name) if self.by_hand else []
        if not waiting:
            return []
        return [state.detect.at or now,
                *(self._grace_end(a, state) for a in waiting if a.grace_until)]

    def look(self, name: str, state: ChannelState, now: datetime) -> bool:
        """Look for the channel's hand-made posts if it is time to. False when the platform
        could not be asked, so that the channel is not polled blind."""
        waiting = self.ledger.waiting(name) if self.by_hand else []
        if waiting and self._detect_due(state, waiting, now):
            return self._detect(state, waiting, now)
        return True

    def _grace_end(self, item: Awaiting, state: ChannelState) -> datetime:
        """When a shown probe counts as missed: its grace window, plus the platform's lag in
        showing a post made at its very end."""
        assert item.grace_until is not None
        return item.grace_until + state.channel.visibility_lag

    def _detect_due(self, state: ChannelState, waiting: list[Awaiting], now: datetime) -> bool:
        """Look for hand-made posts when it is time to, and always just before a poll of the
        channel: a reply to a post we do not know yet could not be attributed (rule 4)."""
        if state.detect.at is None or now >= state.detect.at:
            return True
        polling = (state.poll.at is None or now >= state.poll.at) \
            and self.store.any_in(("sent",), [state.channel.name])
        claimed = any(a.claimed_id for a in waiting)
        expired = any(a.grace_until and now >= self._grace_end(a, state) for a in waiting)
        return polling or claimed or expired

    def _detect(self, state: ChannelState, waiting: list[Awaiting], now: datetime) -> bool:
        """Find each waiting probe's post on our own timeline (or verify the post named with
        ``mystery sent``); mark missed those past their grace window. False when the platform
        could not be asked, so that the channel is not polled blind."""
        try:
            for item in waiting:
                if item.claimed_id:
                    self._verify_claim(item, state, now)
                elif item.shown_at is not None:
                    since = min(item.probe.planned_at, item.shown_at) - RECONCILE_MARGIN
                    found = state.channel.find_sent(outgoing(self.study, item.probe), since)
                    if found is not None:
                        self._posted(item, found, state, now, "manual")
                    elif item.grace_until and now >= self._grace_end(item, state):
                        self._miss(item, now)
        except ChannelError as exc:
            name = state.channel.name
            self.pacing.failed(name, state, "detect", exc, now, "looking for posts made by hand",
                               f"{name}: cannot look for posts made by hand yet ({exc}); "
                               "will retry")
            return False
        state.detect.failures = 0
        state.detect.at = now + state.poll_every
        return True

    def _verify_claim(self, item: Awaiting, state: ChannelState, now: datetime) -> None:
        """``mystery sent``: believe a named post only once the platform shows it is ours,
        mentions the brand, and gives its time."""
        probe, url = item.probe, item.claimed_url or item.claimed_id
        assert item.claimed_id is not None
        channel = state.channel
        found = channel.fetch_own(item.claimed_id) if isinstance(channel, OwnPosts) else None
        # Mastodon shows a remote mention by its local part: "@help", not "@help@acme.example".
        handle = outgoing(self.study, probe).handle.lower().split("@")[0]
        if found is None or f"@{handle}" not in found.text.lower():
            why = ("it is not a post of the study's account" if found is None
                   else f"it does not mention @{handle}")
            self.ledger.drop_claim(probe.id)
            self.pacing.on_notice(f"{probe.id}: ignored the post named with 'mystery sent' "
                                  f"({url}): {why}")
            return
        self._posted(item, found, state, now, "claimed")

    def _posted(self, item: Awaiting, sent: Sent, state: ChannelState, now: datetime,
                how: str) -> None:
        if self.ledger.found(item, sent.message_id, sent.sent_at, sent.text, now, how):
            at = f"{sent.sent_at:%Y-%m-%d %H:%M:%S}"
            self.pacing.on_notice(f"{item.probe.id}: posted by hand at {at} UTC "
                                  f"({state.channel.name} id {sent.message_id})")
            if state.poll.at is None:
                state.poll.at = now + state.poll_every

    def _miss(self, item: Awaiting, now: datetime) -> None:
        """Not posted within the grace window: to the next slot the plan's rules allow."""
        probe = item.probe
        others = [p.sent_at or p.planned_at for p in self.store.probes()
                  if p.brand == probe.brand and p.id != probe.id and p.outcome != "excluded"]
        slot = next_slot(self.study, now, others, probe.brand)
        grace = self.study.channels[probe.channel].grace
        reason = f"not posted within the grace window ({format_span(grace)}) after it was shown"
        self.ledger.missed(item, slot, reason, now)
        self._shown.discard(probe.id)
        if slot is None:
            self.pacing.on_notice(f"{probe.id}: excluded from the study: {reason}, and the "
                                  "schedule has no slot left for it")
        else:
            self.pacing.on_notice(f"{probe.id}: {reason}; rescheduled to "
                                  f"{slot:%Y-%m-%d %H:%M} UTC")
