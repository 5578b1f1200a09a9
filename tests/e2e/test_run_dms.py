"""End to end: brands that say "we've sent you a DM" in public and resolve in a direct message.

The same study runs twice against a fresh sandbox, with and without ``read_dms``. The sandbox's
brands behave identically both times (the world does not depend on the setting). With DMs read,
each such probe's resolution is the DM, to the millisecond; without, the same probe has only its
public acknowledgement and no resolution. Probes answered in public come out the same either way.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mystery.cli import app
from mystery.clock import parse_iso
from mystery.collect.verify import mismatches
from mystery.sandbox.server import SandboxServer
from mystery.store.store import Store
from mystery.timings.export import timing_rows
from tests.studybuilder import study_data, write_study

CUTOFF = timedelta(days=2)

def dm_study(read_dms: bool) -> dict[str, Any]:
    """3 brands × 2 probes: one resolving by DM, one by DM half the time, one in public."""
    return study_data(
        name="dms",
        channels={"x": {"account": "mystery_res", "endpoint": "sandbox", "poll_every": "30m",
                        "read_dms": read_dms}},
        questions=[
            {"id": "refund",
             "text": "Hi {brand}, I returned my order two weeks ago, where is my refund?"},
            {"id": "address",
             "text": "Hello {brand}, can I change the delivery address of my order?"},
        ],
        schedule={"start": date(2026, 3, 2), "end": date(2026, 3, 6), "probes_per_brand": 2,
                  "min_gap": "3d", "seed": 8},
        brands=[
            {"name": "Acme", "handles": {"x": "Acme"}, "aliases": {"x": ["AcmeHelp"]},
             "profile": "private"},
            {"name": "Globex", "handles": {"x": "Globex"}, "profile": "mixed"},
            {"name": "Initech", "handles": {"x": "Initech"}, "profile": "public"},
        ],
        sandbox={"seed": 15, "profiles": {
            "private": {"ack_median": "20m", "resolve_after": "1h", "dm_share": 1.0,
                        "alias_share": 0.5},
            "mixed": {"ack_median": "30m", "resolve_after": "2h", "dm_share": 0.5,
                      "holding_share": 0.5},
            "public": {"ack_median": "40m", "resolve_after": "1h", "holding_share": 0.5},
        }},
    )


def _within(at: str | None, sent: datetime) -> float | None:
    """Seconds from ``sent`` to ``at``, when that lies within the cutoff."""
    if at is None or parse_iso(at) - sent > CUTOFF:
        return None
    return (parse_iso(at) - sent).total_seconds()


@pytest.mark.parametrize("read_dms", [True, False])
def test_a_brand_resolving_by_dm_counts_only_when_dms_are_read(
    tmp_path: Path, sandbox: SandboxServer, read_dms: bool
) -> None:
    study = write_study(tmp_path, dm_study(read_dms), "dms.toml")
    result = CliRunner().invoke(
        app, ["run", str(study), "--sandbox-url", sandbox.url, "--quiet", "--no-report"]
    )
    assert result.exit_code == 0, result.output
    assert "finished" in result.output

    truth = sandbox.ground_truth()
    replies: dict[str, dict[str, Any]] = {r["id"]: r for r in truth["replies"]}
    posts = truth["posts"]
    assert len(posts) == 6 and len({p["text"] for p in posts}) == 6
    with Store.open(study.with_suffix(".db"), create=False) as store:
        rows = {(r["brand"], r["sent_at"]): r for r in timing_rows(store)}
        probes = {p.message_id: p for p in store.probes()}
        recorded = {r.message_id: r for r in store.replies()}
        assert mismatches(truth, store, read_dms=read_dms) == []
        assert len(mismatches(truth, store, read_dms=not read_dms)) == 3  # the DM probes

    by_dm: dict[str, int] = {}
    for post in posts:
        probe = probes[post["id"]]
        assert probe.sent_at == parse_iso(post["created_at"])
        row = rows[(post["brand"], probe.sent_at)]
        fate = post["fate"]
        ack = _within(fate["ack_at"], probe.sent_at)
        assert ack is not None  # every brand here answers, well within the cutoff
        assert row["ack_seconds"] == ack and row["status"] == "answered"
        dm = next((replies[i] for i in fate["reply_ids"] if replies[i]["direct"]), None)
        if dm is None:  # answered in public: the same with or without DMs
            assert row["resolution_seconds"] == _within(fate["resolution_at"], probe.sent_at)
            continue
        by_dm[post["brand"]] = by_dm.get(post["brand"], 0) + 1
        assert dm["created_at"] == fate["resolution_at"] and dm["probe"] == post["id"]
        if read_dms:
            assert row["resolution_seconds"] == _within(dm["created_at"], probe.sent_at)
            kept = recorded[dm["id"]]
            assert kept.probe_id == probe.id and kept.auto_code == "resolution"
            assert kept.created_at == parse_iso(dm["created_at"])  # to the millisecond
            assert kept.author == dm["author"] and kept.in_reply_to is None
        else:
            assert row["resolution_seconds"] is None  # only the public "we've sent you a DM"
            assert dm["id"] not in recorded
            kept_ack = recorded[fate["reply_ids"][0]]
            assert kept_ack.auto_code == "acknowledgement" and kept_ack.probe_id == probe.id
    assert by_dm == {"Acme": 2, "Globex": 1}  # dm_share 1.0 and 0.5; Initech answers in public
    dm_reads = sandbox.stats.snapshot().get("GET /2/dm_events", 0)
    assert dm_reads > 0 if read_dms else dm_reads == 0
