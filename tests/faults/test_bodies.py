"""Malformed and unexpected answers are noticed, counted and skipped, never a crash; duplicate
and out-of-order items are harmless."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from mystery.sandbox import SandboxControl, SandboxServer
from mystery.store.store import Store
from tests.faults.fault_helpers import assert_exact, collect

MENTIONS = "GET /2/users/:id/mentions"


def test_malformed_answers_are_noticed_and_read_again(
    study: Path, sandbox: SandboxServer, control: SandboxControl
) -> None:
    control.add_fault(MENTIONS, 200, times=None, body="malformed", probability=0.2, seed=5)
    control.add_fault(MENTIONS, 200, times=2, body="empty", skip=10)
    outcome = collect(study, sandbox)
    assert outcome.result.finished
    fired = sum(control.faults()["fired"].values())
    assert fired > 10
    assert len(outcome.said("X sent a malformed answer to GET /2/users/:id/mentions")) == fired
    assert outcome.result.retries == fired
    assert_exact(study, sandbox)


def test_items_without_a_usable_id_are_skipped_and_counted(
    study: Path, sandbox: SandboxServer, control: SandboxControl
) -> None:
    control.add_fault(MENTIONS, times=None, body="bad_items")
    outcome = collect(study, sandbox)
    assert outcome.result.finished
    polls = sandbox.stats.snapshot()[MENTIONS]
    answered = len(outcome.said("skipped 4 item(s) X sent without a usable post id"))
    assert answered > 0
    # Only pages holding data get bad items (an empty page has no "data" to add them to).
    assert outcome.result.skipped == 4 * answered and answered < polls
    assert_exact(study, sandbox)


def test_duplicate_and_out_of_order_items_are_harmless(
    study: Path, sandbox: SandboxServer, control: SandboxControl
) -> None:
    control.add_fault(MENTIONS, times=None, body="duplicate", probability=0.5, seed=6)
    control.add_fault(MENTIONS, times=None, body="out_of_order", seed=7)
    outcome = collect(study, sandbox)
    assert outcome.result.finished
    fired = control.faults()["fired"]
    assert fired[f"{MENTIONS} duplicate"] > 10 and fired[f"{MENTIONS} out_of_order"] > 10
    assert_exact(study, sandbox)
    with Store.open(study.with_suffix(".db"), create=False) as store:
        ids = Counter(r.message_id for r in store.replies())
    assert ids and max(ids.values()) == 1


def test_the_renamed_fields_of_x_s_newest_spec_are_read_too(
    study: Path, sandbox: SandboxServer, control: SandboxControl
) -> None:
    """v2.167 renames ``referenced_tweets`` to ``referenced_posts``: a reply found only by its
    replied-to id must still be attributed, with the same times."""
    control.add_fault(MENTIONS, times=None, body="renamed")
    outcome = collect(study, sandbox)
    assert outcome.result.finished
    assert control.faults()["fired"][f"{MENTIONS} renamed"] > 10
    assert_exact(study, sandbox)
    truth = {r["id"]: r["in_reply_to"] for r in sandbox.ground_truth()["replies"]}
    with Store.open(study.with_suffix(".db"), create=False) as store:
        replies = store.replies()
    assert replies and all(r.in_reply_to == truth[r.message_id] for r in replies)


def test_half_an_emoji_in_a_reply_is_recorded_and_the_study_goes_on(
    study: Path, sandbox: SandboxServer, control: SandboxControl
) -> None:
    """A lone surrogate cannot be stored as UTF-8: it becomes U+FFFD, never a wedged study."""
    control.add_fault(MENTIONS, times=None, body="surrogate")
    outcome = collect(study, sandbox)
    assert outcome.result.finished
    assert control.faults()["fired"][f"{MENTIONS} surrogate"] > 10
    assert_exact(study, sandbox)
    with Store.open(study.with_suffix(".db"), create=False) as store:
        texts = [r.text for r in store.replies()]
    assert texts and all(t.endswith("\ufffd") for t in texts)
