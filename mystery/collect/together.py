"""One runner for all of a team's accounts: a runner per account (a lane), stepped together.

A team study lists several researcher accounts on a channel. Each account posts its own
probes, reads its own mentions and keeps its own cursor, whichever machine runs it; run by one
person, ``mystery run STUDY`` serves them all. Rather than teach every part of the runner
(pacing, polling, safeguards, the manual ledger, the budget) that a channel may have several
accounts, the run deals the accounts out into *lanes* of one account per channel
(:func:`mystery.collect.run.lanes`) and gives each lane its own
:class:`~mystery.collect.runner.Runner`: its own channel clients (each account's own
credentials), its own view of the store narrowed to its account
(:meth:`~mystery.store.reads.StoreReads.serving_only`, on the one connection), its own pacing.

Why the lanes keep every rule of a run:

- **one clock**: every lane does a pass at the same instant, in a fixed order, before the
  clock moves, and the clock moves to the earliest event of any lane; so it never passes an
  event not yet done, and a run killed and resumed makes every send at the very instant (and
  in the very order) an undisturbed run would, which an in-process sandbox needs to rebuild
  its world;
- **one mentions request per account per poll**: each lane polls its own account, attributes
  replies to that account's probes only and reconciles that account's uncertain sends on that
  account's own timeline;
- **safeguards across accounts**: the brand rules (``min_gap``, one open probe per brand per
  channel) read the whole study, and a later lane sees what an earlier lane sent this very
  instant; the daily cap is per account, as it always was.

One runner with one lane is the plain run: :func:`run_together` over it alone. Why the loop
lives here and not on the runner: the runner is one lane's pass (:meth:`Runner.step`); the
passes, the clock and the end of a run are the lanes' together, and a runner that called
back into this module would tie the two into a circle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from mystery.collect.progress import Event, Progress
from mystery.collect.runner import Runner, RunResult


def _noop(_: Progress) -> None:
    return None


def run_together(runners: Sequence[Runner], names: Sequence[Mapping[str, str]] = (), *,
                 once: bool = False, until: datetime | None = None,
                 on_progress: Callable[[Progress], None] = _noop) -> RunResult:
    """Run the lanes until every probe of theirs is settled (one pass with ``once``; with
    ``until``, stop before the clock would pass that instant). The runners share one clock.
    ``names`` (per runner: channel → how a message names it, ``x as shopper_b``) names the
    channels that stopped in the result."""
    first = runners[0]
    passes = 0
    for runner in runners:
        runner.budget.keep()  # a budget already spent by earlier runs: not one more request
    while True:
        for runner in runners:
            runner.still_serving()
        passes += 1
        for runner in runners:
            runner.step()
        if (all(r.all_settled() for r in runners) or once
                or not any(r.live_channels() for r in runners)):
            break
        events = [e for r in runners if (e := r.next_event()) is not None]
        if not events:
            break
        wake = min(events, key=lambda e: e.at)  # the first lane listed wins a tie
        if until is not None and wake.at > until:
            break
        on_progress(_progress(runners, wake))
        first.sleep_until(wake.at)
    for runner in runners:
        runner.budget.keep(final=True)
    counts = first.store.counts()
    on_progress(_progress(runners, None, final=True))  # a display ends on these counts
    results = [r.result(counts, passes, names[i] if i < len(names) else None)
               for i, r in enumerate(runners)]
    if len(results) == 1:
        return results[0]
    return RunResult(
        counts=counts,
        finished=all(r.finished for r in results),
        passes=passes,
        stopped={k: v for r in results for k, v in r.stopped.items()},
        requests=sum(r.requests for r in results),
        retries=sum(r.retries for r in results),
        skipped=sum(r.skipped for r in results),
        flagged=sum(r.flagged for r in results),
    )


def _progress(runners: Sequence[Runner], wake: Event | None,
              final: bool = False) -> Progress:
    """One :class:`Progress` for every lane: the first lane's, with every lane's waits,
    holds and stopped channels (the counts are the whole study's either way)."""
    each = [r.progress(wake, final=final) for r in runners]
    if len(each) == 1:
        return each[0]
    held: dict[str, int] = {}
    for progress in each:
        for channel, n in progress.held.items():
            held[channel] = held.get(channel, 0) + n
    return replace(
        each[0],
        stopped_channels=tuple(dict.fromkeys(c for p in each for c in p.stopped_channels)),
        waits=tuple(w for p in each for w in p.waits),
        held=held,
    )
