"""Helpers for the fault tests: a small study, a sandbox, and a run through the library.

Every fault test ends the same way: the run finished, nothing was posted twice, and every time
equals the sandbox's ground truth (:func:`mystery.collect.verify.mismatches`). Imported as
``tests.faults.fault_helpers``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from mystery.collect.run import run_study
from mystery.collect.runner import RunResult
from mystery.collect.verify import mismatches
from mystery.sandbox import SandboxControl, SandboxServer
from mystery.store.store import Store
from tests import studybuilder
from tests.studybuilder import study_data


def study(*, cutoff: str = "2d", poll_every: str = "30m", end: str = "2026-03-03",
          min_gap: str = "4h", slow: str = "60h") -> dict[str, Any]:
    """5 brands × 2 probes: fast, holding then answering, silent, answering from an alias, and
    slow (past the cutoff by default). One question holds ``<``, ``&`` and ``£``: X returns
    such text HTML-escaped, and reconciliation must still recognise it."""
    return study_data(
        name="faults", cutoff=cutoff,
        channels={"x": {"account": "fault_researcher", "endpoint": "sandbox", "mode": "auto",
                        "poll_every": poll_every}},
        questions=[
            {"id": "delivery", "text": "Hi {brand}, do you deliver on Sundays?"},
            {"id": "stock",
             "text": "Hello {brand}, is the blue kettle in stock? Price < £30 & in Leeds?"},
        ],
        schedule={"start": date(2026, 3, 2), "end": date.fromisoformat(end),
                  "probes_per_brand": 2, "min_gap": min_gap, "seed": 3,
                  "windows": [{"days": "mon-sun", "start": "09:00", "end": "17:00"}]},
        sandbox={"seed": 9, "profiles": {
            "fast": {"ack_median": "10m"},
            "holding": {"ack_median": "40m", "resolve_after": "3h", "holding_share": 1.0},
            "never": {"answer_rate": 0.0},
            "alias": {"ack_median": "20m", "alias_share": 1.0},
            "slow": {"ack_median": slow, "ack_spread": 0.2},
        }},
        brands=[
            {"name": "Alpha", "handles": {"x": "alpha"}, "profile": "fast"},
            {"name": "Bravo", "handles": {"x": "bravo"}, "profile": "holding"},
            {"name": "Charlie", "handles": {"x": "charlie"}, "profile": "never"},
            {"name": "Echo", "handles": {"x": "echo"}, "aliases": {"x": ["echohelp"]},
             "profile": "alias"},
            {"name": "Foxtrot", "handles": {"x": "foxtrot"}, "profile": "slow"},
        ],
    )


def write_study(folder: Path, **changes: str) -> Path:
    """:func:`study` with ``changes``, written to ``folder / "faults.toml"``."""
    return studybuilder.write_study(folder, study(**changes), "faults.toml")


@dataclass
class Outcome:
    result: RunResult
    notices: list[str] = field(default_factory=list)

    def said(self, text: str) -> list[str]:
        return [n for n in self.notices if text in n]


def collect(study: Path, sandbox: SandboxServer, *, timeout: float = 5.0,
            until: datetime | None = None) -> Outcome:
    """``mystery run`` as a library call against ``sandbox`` (standalone, over HTTP)."""
    notices: list[str] = []
    _, result = run_study(study, sandbox_url=sandbox.url, on_notice=notices.append,
                          timeout=timeout, until=until)
    return Outcome(result, notices)


def assert_exact(study: Path, sandbox: SandboxServer,
                 excluded: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The run matches the ground truth exactly; returns the truth for further checks."""
    truth = sandbox.ground_truth()
    with Store.open(study.with_suffix(".db"), create=False) as store:
        assert mismatches(truth, store, excluded=excluded) == []
        assert len(truth["posts"]) == len(store.probes())
    return truth


def control(sandbox: SandboxServer) -> SandboxControl:
    return SandboxControl(sandbox.url)
