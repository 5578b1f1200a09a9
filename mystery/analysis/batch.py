"""Charts drawn in a pool of processes while the tables are still being computed.

Why: drawing and saving a chart costs about as much as all the arithmetic of a large series,
and charts are independent of one another, so ``mystery publish`` draws them in one process
per CPU. The pool starts before the first table is computed (or at the first chart to draw,
when the caller expects few) and each chart is handed to it as soon as its data is known, so
drawing overlaps the arithmetic instead of waiting for it. A chart whose fingerprint and files
agree with its folder's manifest (:mod:`.manifest`) is not drawn at all.

Each job names a drawing function of :mod:`mystery.analysis.charts` and carries its picklable
arguments; each worker renders from matplotlib's defaults plus the house style, so the bytes
equal those drawn one by one in the parent (a test holds them equal).

Workers are forked from a fork server that has already imported matplotlib and the chart
module: one import for the pool, not one per worker. Not a plain fork of the parent: the
parent holds polars' thread pool, which a forked child may deadlock on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from mystery.analysis import charts, manifest

if TYPE_CHECKING:
    import threading
    from concurrent.futures import Future, ProcessPoolExecutor
    from multiprocessing.context import BaseContext

_DRAWERS: dict[str, Callable[..., list[Path]]] = {
    "ranking": charts.ranking, "yoy": charts.yoy, "survival": charts.survival,
    "distribution": charts.distribution, "client_years": charts.client_years,
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


@dataclass(frozen=True)
class Chart:
    """One chart handed to a batch, and what its folder's manifest says of it.

    ``state``: ``current`` (fingerprint and files as recorded: not drawn), ``draw`` (to be
    drawn), or, when the batch only checks, ``stale`` or ``missing`` (a file is absent)."""

    kind: str
    name: str
    out: Path
    home: Path
    fingerprint: str
    state: str
    previous: manifest.Entry | None

    @property
    def files(self) -> list[str]:
        return [f"{self.name}.png", f"{self.name}.svg"]


class Batch:
    """Charts handed over while tables are written; ``run`` waits until all are drawn.

    Only charts whose fingerprint or files disagree with their folder's ``charts.json`` are
    drawn (:mod:`.manifest`): a chart whose inputs did not change is never rewritten, and a
    batch with nothing to draw never imports matplotlib nor starts a process.

    Charts are drawn under ``out`` and belong under ``home`` (where the committed files and
    the manifest are); publish draws into a temporary ``out``, a report draws in place
    (both None). With ``drawing`` False nothing is drawn: the charts are only classified
    (``publish --check``). ``workers`` processes draw (None: one per CPU); with 1 they are
    drawn in this process by ``run``. The pool starts at the first chart to draw, or at once
    with ``eager`` (when the caller expects to draw, so that starting overlaps its reading).
    Use as a context manager so that the pool is shut down on an error.
    """

    def __init__(self, workers: int | None = 1, *, out: Path | None = None,
                 home: Path | None = None, drawing: bool = True, eager: bool = False) -> None:
        import os

        self.jobs: list[Job] = []
        self.charts: list[Chart] = []
        self.drawing = drawing
        self._out, self._home = out, home
        self._manifests: dict[Path, dict[str, manifest.Entry]] = {}
        self._matplotlib = manifest.matplotlib_version()
        self._futures: list[Future[list[Path]]] = []
        self._pool: ProcessPoolExecutor | None = None
        self._starting: threading.Thread | None = None
        self._count = workers or os.cpu_count() or 1
        if eager and drawing:
            self._start_pool()

    def _start_pool(self) -> None:
        import threading

        if self._count > 1 and self._pool is None:
            self._pool = _pool(self._count)
            # Starting the first worker waits for the fork server to import matplotlib (about
            # a second): done on a thread, so that the caller computes meanwhile.
            self._starting = threading.Thread(target=_start, args=(self._pool, self._count),
                                              daemon=True)
            self._starting.start()

    def _home_of(self, folder: Path) -> Path:
        if self._out is None or self._home is None:
            return folder
        return self._home / folder.relative_to(self._out)

    def add(self, kind: str, data: Any, stem: Path, **kwargs: Any) -> list[Path]:
        """Classify a chart by its manifest; queue it when it must be drawn. Returns the
        paths it will write (none when it is current or the batch only checks)."""
        out, home = stem.parent, self._home_of(stem.parent)
        if home not in self._manifests:
            self._manifests[home] = manifest.read(home)
        previous = self._manifests[home].get(stem.name)
        chart = Chart(kind, stem.name, out, home,
                      manifest.fingerprint(kind, stem.name, data, kwargs, self._matplotlib),
                      "draw", previous)
        found = {f: manifest.file_hash(home / f) for f in chart.files}
        if (previous is not None and previous.fingerprint == chart.fingerprint
                and all(found[f] == previous.files.get(f) for f in chart.files)):
            self.charts.append(replace(chart, state="current"))
            return []
        if not self.drawing:
            missing = any(h is None for h in found.values())
            self.charts.append(replace(chart, state="missing" if missing else "stale"))
            return []
        self.charts.append(chart)
        job = Job(kind, stem, (data,), kwargs)
        self.jobs.append(job)
        self._start_pool()
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

    def settle(self, *, merge: bool) -> list[Path]:
        """Write each folder's manifest under ``out`` where its bytes change; return those.

        After ``run``: a drawn chart is recorded with the hashes of the files just drawn, a
        current one keeps its entry. ``merge`` keeps the entries of charts this batch did not
        see (a study report shares results/demo with the demo series); without it the
        manifest lists exactly this batch's charts (publish sees every chart of a folder).
        When only checking, a chart not current keeps its old hashes under today's
        fingerprint: the manifest then differs exactly when publish would change it."""
        folders: dict[tuple[Path, Path], list[Chart]] = {}
        for chart in self.charts:
            folders.setdefault((chart.out, chart.home), []).append(chart)
        written = []
        for (out, home), seen in folders.items():
            entries = dict(self._manifests[home]) if merge else {}
            for chart in seen:
                if chart.state == "current" and chart.previous is not None:
                    entries[chart.name] = chart.previous
                    continue
                files = ({f: manifest.file_hash(out / f) or "" for f in chart.files}
                         if chart.state == "draw" else
                         dict(chart.previous.files) if chart.previous else {})
                entries[chart.name] = manifest.Entry(chart.fingerprint, files,
                                                     manifest.chart_code(), self._matplotlib)
            data = manifest.dumps(entries)
            target = out / manifest.FILE
            if not target.exists() or target.read_bytes() != data:
                target.write_bytes(data)
                written.append(target)
        return written

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
