"""The X spend of a study, before it runs (``mystery plan --cost``) and while it runs (Spend).

The small study below puts 3 brands × 2 probes on one Monday on the real X, cutoff 1 day, so
every count is known by hand: 6 probes, collection over 2 UTC days (Mon and Tue).
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mystery.channels.x_billing import X_PRICES, Spend, has_url
from mystery.cli import app
from mystery.study.cost import Estimate, estimate
from mystery.study.load import load_study
from mystery.study.plan import make_plan
from tests.studybuilder import study_data, write_study

X = {"account": "researcher", "endpoint": "https://api.x.com", "mode": "auto",
     "poll_every": "30m", "grace": "2h"}
QUESTIONS = [{"id": "delivery", "text": "Hi {brand}, do you deliver on Sundays?"},
             {"id": "hours", "text": "Hello {brand}, are you open on bank holidays?"}]
BRANDS = [{"name": "Alpha Stores", "handles": {"x": "AlphaStores"}},
          {"name": "Beta Foods", "handles": {"x": "BetaFoods"}},
          {"name": "Gamma Home", "handles": {"x": "GammaHome"}}]
STUDY = study_data(
    name="cost-test", cutoff="1d", synthetic=None, channels={"x": X}, questions=QUESTIONS,
    schedule={"start": date(2026, 3, 2), "end": date(2026, 3, 2), "probes_per_brand": 2,
              "min_gap": "1h"},
    brands=BRANDS, sandbox=None,
)


def with_x(**changes: Any) -> dict[str, Any]:
    """The study with ``changes`` to its X channel's settings."""
    return {**STUDY, "channels": {"x": {**X, **changes}}}


def write(tmp_path: Path, data: dict[str, Any] = STUDY) -> Path:
    return write_study(tmp_path, data)


def estimate_of(tmp_path: Path, data: dict[str, Any] = STUDY) -> Estimate:
    study = load_study(write(tmp_path, data)).study
    return estimate(study, make_plan(study))


def lines(est: Estimate) -> dict[str, tuple[int, Decimal]]:
    return {i.item: (i.count, i.total_usd) for i in est.items}


def test_auto_posts_are_charged_and_each_reply_is_read_once(tmp_path: Path) -> None:
    est = estimate_of(tmp_path)
    got = lines(est)
    assert got["posts created"] == (6, Decimal("0.090"))  # 6 × $0.015
    assert got["mentions read (replies)"] == (12, Decimal("0.012"))  # 6 × 2 × $0.001
    assert got["mentions polls"][1] == 0  # empty polls return nothing, and cost nothing
    assert "own timeline reads (finding manual posts)" not in got
    assert est.total_usd == Decimal("0.102")
    assert not est.sandbox and est.budget_usd is None and not est.over_budget


def test_manual_posts_are_free_but_finding_them_reads_our_timeline(tmp_path: Path) -> None:
    est = estimate_of(tmp_path, with_x(mode="manual"))
    got = lines(est)
    assert "posts created" not in got
    # grace 2 h / poll_every 30 min = 4 checks per probe, 1 post each: 24 × $0.001
    assert got["own timeline reads (finding manual posts)"] == (24, Decimal("0.024"))
    assert est.total_usd == Decimal("0.036")


def test_confirm_posts_through_the_api_like_auto(tmp_path: Path) -> None:
    est = estimate_of(tmp_path, with_x(mode="confirm"))
    assert lines(est)["posts created"] == (6, Decimal("0.090"))


def test_reading_dms_adds_one_event_per_probe_and_one_per_utc_day(tmp_path: Path) -> None:
    from mystery.channels.x_dms import DM_PAGE  # the first poll reads a page of history

    est = estimate_of(tmp_path, with_x(read_dms=True))
    # 6 DMs + the newest event read again on Mon and on Tue + the first page, at $0.010 each
    events = 6 + 2 + DM_PAGE
    assert lines(est)["DM events read"] == (events, Decimal("0.010") * events)
    assert est.total_usd == Decimal("0.102") + Decimal("0.010") * events


def test_the_assumed_replies_per_probe_can_be_changed(tmp_path: Path) -> None:
    study = load_study(write(tmp_path)).study
    est = estimate(study, make_plan(study), replies_per_probe=3)
    assert lines(est)["mentions read (replies)"] == (18, Decimal("0.018"))
    assert est.to_dict()["assumptions"]["replies_per_probe"] == 3


def test_a_text_with_a_link_is_priced_as_a_post_with_a_url(tmp_path: Path) -> None:
    # A bare domain passes validation (no scheme), but X links it and charges $0.20.
    linked = {"id": "hours", "text": "Hello {brand}, is alphastores.com down?"}
    data = {**STUDY, "questions": [QUESTIONS[0], linked]}
    got = lines(estimate_of(tmp_path, data))
    assert got["posts created"] == (3, Decimal("0.045"))
    assert got["posts created with a URL"] == (3, Decimal("0.600"))


def test_other_channels_cost_nothing(tmp_path: Path) -> None:
    gamma = {"name": "Gamma Home", "handles": {"x": "GammaHome", "phone": "0800 000 000"}}
    data = {**STUDY, "channels": {"x": X, "phone": {"account": "desk"}},
            "brands": [*BRANDS[:2], gamma]}
    est = estimate_of(tmp_path, data)
    phone = [i for i in est.items if i.channel == "phone"]
    assert len(phone) == 1 and phone[0].count > 0 and phone[0].total_usd == 0
    assert all(i.channel == "x" for i in est.items if i.total_usd)


def test_the_sandbox_is_priced_as_the_real_x_but_flagged(tmp_path: Path) -> None:
    data = {**with_x(endpoint="sandbox"), "brands": [{**b, "profile": "fast"} for b in BRANDS],
            "sandbox": {"profiles": {"fast": {}}}}
    est = estimate_of(tmp_path, data)
    assert est.sandbox and est.total_usd == Decimal("0.102")


# --- the CLI -------------------------------------------------------------------------------------


def plan_cost(path: Path, *extra: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["plan", str(path), "--cost", *extra])
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.stdout, result.stderr


def test_plan_cost_prints_each_line_the_total_and_the_budget(tmp_path: Path) -> None:
    path = write(tmp_path, with_x(budget_usd=5))
    code, out, err = plan_cost(path)
    assert code == 0, err
    for fragment in ("posts created", "$0.015", "$0.090", "mentions read (replies)", "$0.012",
                     "total", "$0.102", "budget", "$5.000"):
        assert fragment in out, f"{fragment!r} not in {out}"
    assert "exceeds" not in err


def test_plan_cost_warns_when_the_estimate_exceeds_the_budget(tmp_path: Path) -> None:
    path = write(tmp_path, with_x(budget_usd=0.10))
    code, out, err = plan_cost(path)
    assert code == 0
    assert "$0.102" in out
    assert "Warning: the estimate, $0.102, exceeds channels.x.budget_usd, $0.100" in err
    assert "raise budget_usd" in err


def test_plan_cost_as_json_and_csv(tmp_path: Path) -> None:
    path = write(tmp_path, with_x(budget_usd=0.10))
    code, out, _ = plan_cost(path, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["study"] == "cost-test"
    assert data["total_usd"] == pytest.approx(0.102)
    assert data["budget_usd"] == pytest.approx(0.10) and data["over_budget"] is True
    assert {i["item"]: i["count"] for i in data["items"]}["posts created"] == 6
    code, out, _ = plan_cost(path, "--csv")
    assert code == 0
    rows = out.splitlines()
    assert rows[0] == "channel,item,count,unit_usd,total_usd,basis"
    assert rows[1].startswith("x,posts created,6,0.015,0.090,")
    assert rows[-1] == ",total,,,0.102,"


def test_plan_json_without_cost_lists_the_probes(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["plan", str(write(tmp_path)), "--json"])
    assert result.exit_code == 0, result.output
    probes = json.loads(result.stdout)
    assert len(probes) == 6 and all(p["probe"].startswith("p") for p in probes)
    assert {p["channel"] for p in probes} == {"x"}


# --- Spend: the runner's ledger ------------------------------------------------------------------


def test_spend_prices_posts_and_reads_by_kind() -> None:
    spend = Spend()
    assert spend.posted("@Brand Hi, do you deliver?") == Decimal("0.015")
    assert spend.posted("@Brand see https://example.com") == Decimal("0.200")
    assert spend.read(7) == Decimal("0.007")  # mentions / own timeline: owned reads
    assert spend.read(2, "post") == Decimal("0.010")  # recent search
    assert spend.read(3, "dm") == Decimal("0.030")
    assert spend.read(0) == 0  # an empty poll is free
    assert (spend.posts, spend.posts_with_url, spend.owned_reads, spend.post_reads,
            spend.dm_event_reads) == (1, 1, 7, 2, 3)
    assert spend.total_usd == Decimal("0.262")


def test_spend_is_over_once_it_reaches_the_budget() -> None:
    spend = Spend(posts=6)  # $0.090
    assert not spend.over(None) and spend.remaining(None) is None
    assert not spend.over(0.10)
    assert spend.remaining(0.10) == Decimal("0.010")
    spend.read(10)  # $0.100
    assert spend.over(0.10) and spend.over(Decimal("0.1"))
    left = spend.remaining(0.10)
    assert left is not None and left < X_PRICES.of_post("@Brand next question")


def test_spend_survives_a_restart_as_counts() -> None:
    spend = Spend()
    spend.posted("@Brand hello")
    spend.read(4)
    saved = spend.counts()
    assert saved == {"posts": 1, "posts_with_url": 0, "owned_reads": 4, "post_reads": 0,
                     "dm_event_reads": 0}
    assert Spend.from_counts(saved) == spend
    assert Spend.from_counts(saved).total_usd == Decimal("0.019")


def test_spend_refuses_a_negative_read() -> None:
    with pytest.raises(ValueError, match="no fewer than 0"):
        Spend().read(-1)


@pytest.mark.parametrize(("text", "linked"), [
    ("see https://example.com/faq", True),
    ("see www.example.com", True),
    ("is alphastores.com down?", True),
    ("do you deliver on Sundays?", False),
    ("Hi B&Q, e.g. the red one?", False),
])
def test_what_counts_as_a_link(text: str, linked: bool) -> None:
    assert has_url(text) is linked
