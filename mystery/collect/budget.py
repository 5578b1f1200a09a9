"""Keeping a paid channel to the study's ``budget_usd`` while a run goes on.

A channel that charges (X: every post created and every resource read) carries a
:class:`~mystery.channels.x_billing.Spend`. What it has spent is added to the study's total in
the store's meta, and that total restored by the next run, so a budget holds across restarts and
across the runners of a team study (each adds its own spending, and asks for the total before a
post): on every change when
the channel has a budget, else every :data:`SAVE_EVERY` passes and at the end of the run (a commit
a pass was an eighth of a 10,000-probe sandbox run, for a figure nobody was waiting on). A channel
that reaches the budget, or has too little left for its next post, is stopped (no more reads or
posts there) until the researcher raises the budget in the study file."""

from __future__ import annotations

import json

from mystery.channels.base import Billed
from mystery.channels.x_billing import Spend, has_url, usd
from mystery.collect.pacing import ChannelState, Pacing
from mystery.store.store import ProbeRow, Store
from mystery.study.model import Study

SAVE_EVERY = 100
"""Passes between saves of an unbudgeted channel's spend (a crash loses at most these)."""


class Budget:
    """The spend of each paid channel of one run, against the study's budgets."""

    def __init__(self, study: Study, store: Store, pacing: Pacing) -> None:
        self.study = study
        self.store = store
        self.pacing = pacing
        self._passes = 0
        for name, state in pacing.channels.items():
            saved = store.meta(f"spend:{name}")
            if isinstance(state.channel, Billed) and saved:  # what earlier runs spent
                state.channel.spend = Spend.from_counts(json.loads(saved))

    def affordable(self, probe: ProbeRow, state: ChannelState) -> bool:
        """Whether posting ``probe`` stays within the budget; if not, the channel stops.

        With a budget, the post is *reserved* in the study's total in the store, in the
        transaction that checks it fits, so that two runners can never both take the last of
        it: the ledger's saved counts then hold the post before the channel counts it (its
        unsaved part is one post short until the post is made, and a post never made gives
        the reservation back at the next save)."""
        spend = state.channel.spend if isinstance(state.channel, Billed) else None
        budget = self.study.channels[probe.channel].budget_usd
        if spend is None or budget is None:
            return True
        post = "posts_with_url" if has_url(probe.text) else "posts"
        wanted = {k: v for k, v in spend.unsaved().items() if v}
        wanted[post] = wanted.get(post, 0) + 1
        total, reserved = self.store.add_counts(
            f"spend:{probe.channel}", wanted,
            within=lambda counts: Spend.from_counts(counts).total_usd <= usd(budget))
        if reserved:
            spend.settle(total)
            setattr(spend, post, getattr(spend, post) - 1)  # counted when the post is made
            return True
        wanted[post] -= 1  # the rest of what this runner spent is saved all the same
        self._save_counts(probe.channel, spend, wanted)
        self.keep(force=True)
        return False

    def keep(self, force: bool = False, final: bool = False) -> None:
        """Save what each paid channel has spent, and stop one that has reached the study's
        ``budget_usd``: no more reads or posts there until the budget is raised. ``final``:
        the run is ending, save everything."""
        self._passes += 1
        for name, state in self.pacing.channels.items():
            if not isinstance(state.channel, Billed):
                continue
            spend = state.channel.spend
            budget = self.study.channels[name].budget_usd
            if budget is not None or final or self._passes % SAVE_EVERY == 0:
                self._save(name, spend, only_new=True)
            if state.stopped:
                continue
            if spend.over(budget) or (force and budget is not None):
                short = ", with too little left for the next post" if force else ""
                self.pacing.stop(name, f"the budget is spent: ${spend.total_usd:.3f} of "
                                       f"channels.{name}.budget_usd = {budget} (at X's prices"
                                       f"{short}); raise it in the study file and run again "
                                       "to go on")

    def _save(self, name: str, spend: Spend, only_new: bool = False) -> None:
        """Add what this runner spent since it last saved to the study's total in the store,
        and take that total (what other runners saved too) as the ledger. ``only_new``: skip
        the store when nothing was spent since (a save, not a look at the others)."""
        unsaved = {k: v for k, v in spend.unsaved().items() if v}
        if only_new and not unsaved:
            return
        self._save_counts(name, spend, unsaved)

    def _save_counts(self, name: str, spend: Spend, unsaved: dict[str, int]) -> None:
        spend.settle(self.store.add_counts(f"spend:{name}", unsaved)[0])

