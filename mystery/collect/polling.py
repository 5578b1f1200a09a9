"""Polling a channel: read what came in, attribute replies to probes, settle what is decided.

The runner decides *when* a channel is polled (never while one of its sends is uncertain: a
reply to a post we do not know the id of could not be attributed); this module does the poll,
and keeps the rules that make its result trustworthy:

- **never lose a reply**: a poll's replies and the cursor that covers them commit together;
- **catch up**: after downtime the first poll pages back to the cursor; where the platform
  cannot reach that far (X: 800 mentions) the open probes' threads are searched, and a probe
  whose replies may lie beyond even that is *excluded with a flag*, never counted unanswered;
- **unanswered is data**: a probe is settled as unanswered only once a poll has covered
  everything up to its cutoff.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from mystery.channels.base import Channel, EditHistory, Message
from mystery.channels.catchup import Gap, GappedPoll, ThreadSearch
from mystery.clock import Clock
from mystery.coding.rules import auto_code, probe_times
from mystery.collect.pacing import ChannelState, Pacing
from mystery.errors import ChannelError
from mystery.store.store import ReplyRow, Store
from mystery.study.model import Study


class Poller:
    """Polls the channels of one run, for the runner."""

    def __init__(self, study: Study, store: Store, clock: Clock, pacing: Pacing,
                 accounts: Mapping[str, str] | None = None) -> None:
        """``accounts``: the account each channel is polled as (its mentions, its cursor);
        replies are kept only for that account's probes (another account polls its own)."""
        self.store = store
        self.accounts = dict(accounts or {})
        self.clock = clock
        self.pacing = pacing
        self.cutoff = study.cutoff
        self.flagged = 0  # probes excluded because their replies could not be vouched for
        self._authors: dict[str, set[str]] = {}
        self._asked: set[str] = set()  # posts whose edit history was asked for this run
        for brand in study.brands:
            for name in pacing.channels:
                handles = [brand.handles.get(name, ""), *brand.aliases.get(name, [])]
                self._authors[f"{name}:{brand.name}"] = {h.lower() for h in handles if h}

    def poll(self, name: str, state: ChannelState, now: datetime) -> None:
        account = self.accounts.get(name, "")
        cursor, _ = self.store.cursor(name, account)
        try:
            poll = state.channel.poll(cursor, now)
            found: list[Message] = []
            excluded: list[tuple[str, str]] = []
            if isinstance(poll, GappedPoll) and poll.gap is not None:
                found, excluded = self._catch_up(name, state.channel, poll.gap, now)
            self._learn_edits(name, state.channel, [*poll.messages, *found])
        except ChannelError as exc:
            self.pacing.failed(name, state, "poll", exc, now, "polling",
                               f"{name}: {exc}; polling again in " "{delay}")
            return
        state.poll.failures = 0
        replies = self.attribute(name, [*poll.messages, *found])
        self.store.record_poll(name, replies, poll.cursor, poll.complete_through, now,
                               excluded, account=account)
        for warning in poll.warnings:
            self.pacing.on_notice(f"{name}: {warning}")
        self.flagged += len(excluded)
        self._settle(name, poll.complete_through, {r.probe_id for r in replies})
        state.poll.at = now + state.poll_every

    def _learn_edits(self, name: str, channel: Channel, messages: list[Message]) -> None:
        """A reply to one of our posts whose id the store does not know may answer an edited
        probe (X gives an edit a new id, and replies answer the latest version): ask the
        platform for that post's edit history once, and when it leads to a probe, record every
        version's id, so this reply and the next are the probe's, timed from its first
        version. Asked only for replies to us, and once per post id a run."""
        if not isinstance(channel, EditHistory):
            return
        for message in messages:
            post_id = message.in_reply_to or message.conversation_id
            if (not message.to_us or not post_id or post_id in self._asked
                    or self.store.probe_for_thread(name, [message.conversation_id,
                                                          message.in_reply_to])):
                continue
            self._asked.add(post_id)
            versions = channel.edit_history(post_id)
            probe_id = self.store.probe_for_thread(name, versions)
            if probe_id is not None:
                self.store.record_edits(name, versions, probe_id)

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
        self.pacing.on_notice(
            f"{name}: the platform could not reach back to {gap.after:%Y-%m-%d %H:%M} UTC; "
            f"searched {len(probes)} open probe thread(s), {len(excluded)} excluded"
        )
        return found, excluded

    def attribute(self, channel: str, messages: Iterable[Message]) -> list[ReplyRow]:
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
            probe = next(iter(self.store.probes_by_id([probe_id])))
            if channel in self.accounts and probe.account != self.accounts[channel]:
                continue  # another account's probe: its own poll records it
            brand = probe.brand
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
