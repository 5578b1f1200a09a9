"""The runtime safeguards hold what actually happens, whatever the plan says: at most
``daily_cap`` posts per account in any 24 hours, one open probe per brand per channel, and
``min_gap`` between a brand's actual sends. Held probes are sent later, never dropped."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from mystery.collect.run import run_study
from mystery.store.store import Store
from tests.studybuilder import study_data, write_study

STUDY = study_data(
    name="guarded", timezone=None, cutoff="1d",
    channels={"x": {"account": "mystery_res", "poll_every": "10m", "safeguards": True,
                    "daily_cap": 4}},
    questions=[{"id": "a", "text": "Hi {brand}, do you deliver on Saturdays?"},
               {"id": "b", "text": "Hello {brand}, what time are you open until today?"}],
    schedule={"start": date(2026, 3, 2), "end": date(2026, 3, 3), "probes_per_brand": 2,
              "min_gap": "1h", "seed": 1},
    sandbox={"profiles": {"slow": {"ack_median": "3h", "resolve_after": "2h"},
                          "silent": {"answer_rate": 0.0}}},
)


def test_caps_gaps_and_one_open_probe_per_brand_hold(tmp_path: Path) -> None:
    brands = [{"name": f"B{i}", "handles": {"x": f"Brand{i}"},
               "profile": "silent" if i % 3 == 0 else "slow"} for i in range(5)]
    path = write_study(tmp_path, STUDY, "guarded.toml", brands=brands)
    notices: list[str] = []
    _, result = run_study(path, on_notice=notices.append)
    assert result.finished
    with Store.open(path.with_suffix(".db"), create=False) as store:
        probes = store.probes()
        settled = dict(store.db.execute("SELECT id, settled_at FROM probes"))
    assert all(p.sent_at is not None for p in probes)  # held, then sent: none dropped
    sends = sorted(p.sent_at for p in probes if p.sent_at)
    for i, start in enumerate(sends):  # the cap, in every 24-hour window
        assert sum(1 for t in sends[i:] if t < start + timedelta(hours=24)) <= 4
    for brand in {p.brand for p in probes}:
        mine = sorted((p for p in probes if p.brand == brand), key=lambda p: p.sent_at or 0)
        first, second = mine
        assert first.sent_at and second.sent_at
        assert second.sent_at - first.sent_at >= timedelta(hours=1)
        assert second.sent_at.isoformat() >= settled[first.id][:19]  # first was settled
    assert any("reach the daily cap of 4" in n for n in notices)
    assert any("is still open (one open probe per brand per channel)" in n for n in notices)
    assert len(sends) == 10 and sends[-1] - sends[0] > timedelta(days=2)  # the cap spread them
