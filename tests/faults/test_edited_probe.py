"""A probe the researcher edits on X (the edit gets a new id, and the brand answers the edit):
its replies still belong to it, timed from the first version, and its edit chain is kept."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from mystery.clock import parse_iso
from mystery.sandbox import SandboxControl, SandboxServer
from mystery.store.store import Store
from mystery.study.load import load_study
from mystery.study.plan import make_plan
from mystery.timings.export import timing_rows
from tests.faults.fault_helpers import assert_exact, collect


def test_replies_to_an_edited_probe_are_its_own_timed_from_the_first_version(
    study: Path, sandbox: SandboxServer, control: SandboxControl
) -> None:
    first = min(make_plan(load_study(study).study), key=lambda p: p.planned_at)
    paused = collect(study, sandbox, until=first.planned_at + timedelta(seconds=1))
    assert not paused.result.finished
    with Store.open(study.with_suffix(".db"), create=False) as store:
        probe = next(p for p in store.probes() if p.id == first.id)
    assert probe.message_id is not None and probe.sent_at == first.planned_at
    edit = control.edit_as_researcher(probe.message_id, probe.text + " (edited: thanks!)")
    assert edit["edit_history"] == [probe.message_id, edit["id"]]

    done = collect(study, sandbox)
    assert done.result.finished
    assert_exact(study, sandbox)  # every time equals the ground truth, this probe's included
    truth = sandbox.ground_truth()
    answers = [r for r in truth["replies"] if r["conversation_id"] == edit["id"]]
    assert answers  # the brand answered the edit, not the first version
    with Store.open(study.with_suffix(".db"), create=False) as store:
        replies = {r.message_id: r.probe_id for r in store.replies()}
        assert {replies.get(a["id"]) for a in answers} == {probe.id}
        chain = store.db.execute("SELECT message_id FROM edits WHERE probe_id = ? "
                                 "ORDER BY message_id", (probe.id,)).fetchall()
        assert [c[0] for c in chain] == sorted([probe.message_id, edit["id"]])
        row = next(r for r in timing_rows(store) if r["sent_at"] == probe.sent_at
                   and r["brand"] == probe.brand)
    fate = next(p["fate"] for p in truth["posts"] if p["id"] == probe.message_id)
    first_answer = min(parse_iso(a["created_at"]) for a in answers)
    assert fate["ack_at"] is not None and parse_iso(fate["ack_at"]) == first_answer
    waited = (first_answer - probe.sent_at).total_seconds()
    assert row["ack_seconds"] == (waited if waited <= 2 * 86400 else None)  # from version 1
