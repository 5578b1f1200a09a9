"""A standalone sandbox restarted under a running study is another world: refused, never a
study quietly finished against brands that never saw its probes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from mystery.errors import SandboxError
from mystery.sandbox import SandboxServer
from mystery.store.store import Store
from tests.faults.fault_helpers import assert_exact, collect


def _recorded(db: Path) -> tuple[object, ...]:
    with Store.open(db, create=False) as store:
        return (tuple((p.id, p.state, p.message_id, p.sent_at) for p in store.probes()),
                tuple(r.message_id for r in store.replies()), store.meta("sandbox_world"))


def test_a_restarted_sandbox_is_refused_and_the_first_world_still_resumes(
    study: Path, sandbox: SandboxServer
) -> None:
    midway = datetime(2026, 3, 2, 15, tzinfo=UTC)
    first = collect(study, sandbox, until=midway)  # some probes sent, the study unfinished
    assert not first.result.finished and first.result.counts.sent > 0

    db = study.with_suffix(".db")
    before = _recorded(db)
    with SandboxServer() as restarted:  # the same study, a fresh world
        with pytest.raises(SandboxError, match="is not the world this study's store sent to"):
            collect(study, restarted)
        assert restarted.ground_truth()["posts"] == []  # nothing was sent to it
    assert _recorded(db) == before  # and nothing was recorded

    done = collect(study, sandbox)  # the world it sent to: resumes, exact
    assert done.result.finished
    assert_exact(study, sandbox)
