"""Charts drawn in a pool of processes while the tables are still being computed.

Why: drawing and saving a chart costs about as much as all the arithmetic of a large series,
and charts are independent of one another, so ``mystery publish`` draws them in one process
per CPU. The pool starts before the first table is computed and each chart is handed to it as
soon as its data is known, so drawing overlaps the arithmetic instead of waiting for it.

Each job names a drawing function of :mod:`mystery.analysis.charts` and carries its picklable
arguments; each worker renders from matplotlib's defaults plus the house style, so the bytes
equal those drawn one by one in the parent (a test holds them equal).

Workers are forked from a fork server that has already imported matplotlib and the chart
module: one import for the pool, not one per worker. Not a plain fork of the parent: the
parent holds polars' thread pool, which a forked child may deadlock on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from mystery.analysis import charts

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor
    from multiprocessing.context import BaseContext

_DRAWERS: dict[str, Callable[..., list[Path]]] = {
    "ranking": charts.ranking, "yoy": charts.yoy, "survival": charts.survival,
    "distribution": charts.distribution,
}
#: Imported once by the fork server, so that every worker starts with them loaded; the
#: caller's main module too, as multiprocessing does by default (workers then skip it).
_PRELOAD = ["__main__", "mystery.analysis.batch", "matplotlib.figure",
            "matplotlib.backends.backend_agg", "matplotlib.backends.backend_svg",
            "matplotlib.style", "PIL.PngImagePlugin"]


@dataclass(frozen=True)
class Job:
    """One chart to draw: which kind, and its (picklable) arguments."""

    kind: str
    stem: Path
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def run(self) -> list[Path]:
        return _DRAWERS[self.kind](self.args[0], self.stem, *self.args[1:], **self.kwargs)


class Batch:
    """Charts handed over while tables are written; ``run`` waits until all are drawn.

    ``workers`` processes draw them (None: one per CPU); with 1 they are drawn in this
    process by ``run``. Use as a context manager so that the pool is shut down on an error.
    """

    def __init__(self, workers: int | None = 1) -> None:
        import os
        import threading

        self.jobs: list[Job] = []
        self._futures: list[Future[list[Path]]] = []
        self._pool: ProcessPoolExecutor | None = None
        self._starting: threading.Thread | None = None
        count = workers or os.cpu_count() or 1
        if count > 1:
            self._pool = _pool(count)
            # Starting the first worker waits for the fork server to import matplotlib (about
            # a second): done on a thread, so that the caller reads its sources meanwhile.
            self._starting = threading.Thread(target=_start, args=(self._pool, count),
                                              daemon=True)
            self._starting.start()

    def add(self, kind: str, data: Any, stem: Path, **kwargs: Any) -> list[Path]:
        job = Job(kind, stem, (data,), kwargs)
        self.jobs.append(job)
        if self._pool is not None:
            self._futures.append(self._pool.submit(_run, job))
        return [stem.with_suffix(".png"), stem.with_suffix(".svg")]

    def run(self) -> None:
        """Draw (or wait for) every chart handed over; raise the first drawing error."""
        if self._pool is None:
            for job in self.jobs:
                job.run()
            return
        try:
            for future in self._futures:
                future.result()
        finally:
            self.close()

    def close(self) -> None:
        if self._starting is not None:
            self._starting.join()
            self._starting = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


def _pool(count: int) -> ProcessPoolExecutor:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context: BaseContext
    if "forkserver" in multiprocessing.get_all_start_methods():
        server = multiprocessing.get_context("forkserver")
        server.set_forkserver_preload(_PRELOAD)  # no effect once the server runs: harmless
        context = server
    else:
        context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(count, mp_context=context)


def _start(pool: ProcessPoolExecutor, count: int) -> None:
    """Start every worker now (the pool would start each at its first chart)."""
    for _ in range(count):
        pool.submit(_nothing)


def _nothing() -> None:
    """A job whose only effect is to start a worker."""


def _run(job: Job) -> list[Path]:
    return job.run()


def draw(batch: Batch | None, kind: str, data: Any, stem: Path, **kwargs: Any) -> list[Path]:
    """Draw a chart now, or add it to ``batch`` to be drawn with the others."""
    if batch is not None:
        return batch.add(kind, data, stem, **kwargs)
    return _DRAWERS[kind](data, stem, **kwargs)
