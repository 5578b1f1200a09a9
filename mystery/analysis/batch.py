"""Charts queued while tables are written, then drawn together in a pool of processes.

Why: drawing and saving a chart costs about as much as all the arithmetic of a large series,
and charts are independent of one another, so ``mystery publish`` draws them in one process
per CPU. Each job names a drawing function of :mod:`mystery.analysis.charts` and carries its
picklable arguments; each worker renders from matplotlib's defaults plus the house style, so
the bytes equal those drawn one by one in the parent (a test holds them equal).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mystery.analysis import charts

_DRAWERS: dict[str, Callable[..., list[Path]]] = {
    "ranking": charts.ranking, "yoy": charts.yoy, "survival": charts.survival,
    "distribution": charts.distribution,
}
@dataclass(frozen=True)
class Job:
    """One chart to draw later: which kind, and its (picklable) arguments."""

    kind: str
    stem: Path
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def run(self) -> list[Path]:
        return _DRAWERS[self.kind](self.args[0], self.stem, *self.args[1:], **self.kwargs)


class Batch:
    """Charts collected while tables are written, to be drawn together by ``run``."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []

    def add(self, kind: str, data: Any, stem: Path, **kwargs: Any) -> list[Path]:
        self.jobs.append(Job(kind, stem, (data,), kwargs))
        return [stem.with_suffix(".png"), stem.with_suffix(".svg")]

    def run(self, workers: int | None = 1) -> None:
        """Draw every queued chart, in ``workers`` processes (None: one per CPU)."""
        import multiprocessing
        import os
        from concurrent.futures import ProcessPoolExecutor

        count = min(workers or os.cpu_count() or 1, len(self.jobs))
        if count <= 1:
            for job in self.jobs:
                job.run()
            return
        # Not fork: the parent holds polars' thread pool, which a forked child may deadlock on.
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        with ProcessPoolExecutor(count, mp_context=context) as pool:
            for _ in pool.map(_run, self.jobs):
                pass


def _run(job: Job) -> list[Path]:
    return job.run()


def draw(batch: Batch | None, kind: str, data: Any, stem: Path, **kwargs: Any) -> list[Path]:
    """Draw a chart now, or add it to ``batch`` to be drawn with the others."""
    if batch is not None:
        return batch.add(kind, data, stem, **kwargs)
    return _DRAWERS[kind](data, stem, **kwargs)
