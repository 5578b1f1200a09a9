"""``mystery run`` as a library call: load the study, plan it, open the store, connect, run.

Usable from Python exactly as the CLI uses it::

    from mystery.collect import run_study
    result = run_study("studies/demo.toml")
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mystery.connect import connect
from mystery.errors import StoreError
from mystery.plan import make_plan
from mystery.runner import Progress, Runner, RunResult
from mystery.store import Store
from mystery.study import LoadedStudy, load_study


def _noop(_: object) -> None:
    return None


def store_path(loaded: LoadedStudy, db: str | Path | None) -> Path:
    return Path(db) if db is not None else loaded.default_db


def run_study(
    study_path: str | Path,
    *,
    db: str | Path | None = None,
    once: bool = False,
    sandbox_url: str | None = None,
    on_progress: Callable[[Progress], None] = _noop,
    on_notice: Callable[[str], None] = _noop,
) -> tuple[LoadedStudy, RunResult]:
    """Run (or resume) a study until every probe is settled; ``once`` does a single pass."""
    loaded = load_study(study_path)
    study = loaded.study
    plan = make_plan(study)
    with Store.open(store_path(loaded, db)) as store:
        new = store.initialise(study, plan)
        in_process_sandbox = sandbox_url is None and any(
            c.is_sandbox for c in study.channels.values()
        )
        unfinished = store.count(("sending", "sent"))
        if not new and in_process_sandbox and unfinished:
            raise StoreError(
                f"{store.path} holds {unfinished} probe(s) sent to an in-process sandbox that "
                "ended with its run, so their replies can never arrive. Delete the store to "
                "start the sandbox study again, or use a standalone 'mystery sandbox' with "
                "--sandbox-url for runs you mean to interrupt"
            )
        if not store.count(("planned", "sending", "sent")):
            return loaded, RunResult(store.counts(), finished=True, passes=0)
        with connect(study, sandbox_url=sandbox_url) as connection:
            runner = Runner(
                study, store, connection.channels, connection.clock,
                on_progress=on_progress, on_notice=on_notice, seed=study.schedule.seed,
            )
            return loaded, runner.run(once=once)
