"""The sandbox's ground truth in tests: rebuilt from a study's store, and held against it.

An in-process sandbox ends with its run; what a resumed run would find is the world the store
rebuilds (every post, id and reply time replayed from its seed and history, each post from
the account that made it). Tests of resumes, kills and team studies compare the store with
that world's ground truth; one helper, so that they rebuild it the same way the runner does.

Imported as a module of the ``tests`` package: ``from tests.rebuilt import rebuilt_truth``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mystery.collect.connect import world_start
from mystery.collect.run import sandbox_history
from mystery.sandbox import World, WorldSpec
from mystery.sandbox.inspection import ground_truth
from mystery.sandbox.replay import replay
from mystery.store.store import ProbeRow, Store
from mystery.study.model import Study


def rebuilt_truth(store: Store, study: Study) -> dict[str, Any]:
    """The ground truth of the world a run resumed from ``store`` would rebuild."""
    history = sandbox_history(store, study)
    assert history is not None, "the store holds no in-process sandbox history"
    world = World()
    world.configure(WorldSpec.from_study(study, world_start(study)))
    replay(world, history)
    return ground_truth(world)


def assert_settled_and_posted_once_by_its_account(truth: dict[str, Any],
                                                  probes: Sequence[ProbeRow]) -> None:
    """Every probe settled, posted exactly once, and by the researcher account it was dealt
    to (a team study's runners must never post another account's probe)."""
    assert {p.state for p in probes} == {"settled"}
    author = {p["id"]: p["author"] for p in truth["posts"]}
    assert len(author) == len(probes)  # nothing sent twice
    assert all(author[p.message_id or ""] == p.account for p in probes)
