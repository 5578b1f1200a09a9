"""Which accounts a runner serves, and how they are dealt into lanes of one account per channel:
every account without ``--account``; the named ones (repeatable) with it, in the study file's
order; an account the study does not have is refused, naming the study's accounts."""

from __future__ import annotations

import pytest

from mystery.collect.run import account_pairs, lanes, served_accounts
from mystery.errors import MysteryError
from mystery.study.model import Study

STUDY = Study.model_validate({
    "name": "lanes-t", "year": 2026, "cutoff": "1d",
    "channels": {"x": {"accounts": ["shopper_a", "shopper_b", "shopper_c"]},
                 "mastodon": {"accounts": ["shopper_a@example.social"]}},
    "questions": [{"id": "q", "text": "Hi {brand}, are you open on Sundays?"}],
    "schedule": {"start": "2026-03-02", "end": "2026-03-03", "probes_per_brand": 1},
    "brands": [{"name": "Acme", "handles": {"x": "acme", "mastodon": "acme@shop.example"}}],
})


def test_without_account_a_runner_serves_every_account_in_lanes() -> None:
    served = served_accounts(STUDY)
    assert served == {"x": ("shopper_a", "shopper_b", "shopper_c"),
                      "mastodon": ("shopper_a@example.social",)}
    assert lanes(served) == [{"x": "shopper_a", "mastodon": "shopper_a@example.social"},
                             {"x": "shopper_b"}, {"x": "shopper_c"}]
    assert len(account_pairs(served)) == 4


def test_a_repeated_account_serves_those_in_the_study_files_order() -> None:
    served = served_accounts(STUDY, ["@Shopper_C", "shopper_a", "shopper_c"])
    assert served == {"x": ("shopper_a", "shopper_c")}
    assert lanes(served) == [{"x": "shopper_a"}, {"x": "shopper_c"}]
    assert served_accounts(STUDY, "shopper_b") == {"x": ("shopper_b",)}


def test_an_account_the_study_does_not_have_is_refused() -> None:
    with pytest.raises(MysteryError, match=r"--account shopper_d: the study has no such "
                       r"account; its accounts are x: shopper_a, shopper_b, shopper_c, "
                       r"mastodon: shopper_a@example.social"):
        served_accounts(STUDY, ["shopper_a", "shopper_d"])
