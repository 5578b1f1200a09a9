"""Regenerate ``results/`` from what is committed, byte for byte; or check that it is current.

Inputs, and only these (so CI needs no store, no network, no study run):

* ``studies/*.csv`` whose header has a ``study`` column: imported published figures
  (:mod:`mystery.timings.importer`); brands CSVs of study files have no such column and are skipped;
* ``results/<study>/timings.csv`` with its ``results/<study>/study.json`` (written by
  ``mystery export`` or ``mystery report``): a study's timings, and the facts timings do not
  carry: time zone, title, and whether the study is **synthetic**. Series and year come from
  the timings rows themselves and must agree with ``study.json``.

Outputs: for each such study, its report in ``results/<study>/`` (:mod:`.analysis.report`);
for each series, its year-on-year results in ``results/<series>/`` (:mod:`.analysis.seriesreport`).
A study name used by two sources is refused: its probes would count twice.

Why generate into a temporary folder first: ``check`` compares those bytes with the committed
files without touching them, and ``publish`` copies only files whose bytes changed, so a
regeneration that changes nothing leaves the working tree clean (the CI "commit if changed"
idiom depends on it).

:func:`report_study` is the one other way results are written: a study's own report from its
store, for ``mystery report`` and the end of ``mystery run``. It lives here, above both the
timings seam and analysis, because it joins them: analysis never reads a store or a study file.

Charts are the exception to byte comparison: their bytes differ from one CPU to another, so
each results folder's ``charts.json`` records what every chart draws (its fingerprint) and
its files' hashes as drawn (:mod:`.analysis.manifest`). ``publish`` draws only the charts
whose fingerprint changed or whose file is missing or edited; ``check`` draws none.

A ``publish`` or ``check`` whose inputs, options, code and machine are those of the last
publish (or all-current check) here, and whose outputs are untouched since, recomputes nothing
(:mod:`.memo`); ``recompute`` (``--recompute``) recomputes all the same.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mystery.analysis.charts import HIGHLIGHT
from mystery.analysis.manifest import FILE, file_hash
from mystery.errors import ImportFileError, MysteryError, Problem
from mystery.timings.studyinfo import StudyInfo
from mystery.words import BrandStat

if TYPE_CHECKING:
    import polars as pl

    from mystery.analysis.batch import Batch, Chart
    from mystery.analysis.report import StudyReport
    from mystery.study.load import LoadedStudy


@dataclass
class Sources:
    """Everything publish reads, gathered and validated."""

    timings: list[pl.DataFrame] = field(default_factory=list)
    brand_rows: list[pl.DataFrame] = field(default_factory=list)
    study_rows: list[pl.DataFrame] = field(default_factory=list)
    infos: dict[str, StudyInfo] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    #: Each measured study's own timings (also in ``timings``), for its report.
    studies: dict[str, pl.DataFrame] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """One output file and what publish (or check) found: written, unchanged, stale, missing."""

    path: Path
    state: str


def _claim(sources: Sources, name: str, owner: str, problems: list[Problem]) -> None:
    if name in sources.owners:
        problems.append(Problem(owner, "", f"study {name!r} is also in {sources.owners[name]}; "
                                "a study may come from one source only, rename one"))
    sources.owners.setdefault(name, owner)


def _check_study_timings(folder: Path, df: pl.DataFrame, info: StudyInfo) -> list[Problem]:
    problems = []
    file = str(folder / "timings.csv")
    if info.name != folder.name:
        problems.append(Problem(str(folder / "study.json"), "", f"names study {info.name!r} but "
                                f"sits in results/{folder.name}/; move it or rename the study"))
    for column, expected in (("study", info.name), ("series", info.series), ("year", info.year)):
        found = sorted(set(df[column].unique().to_list()) - {expected})
        if found:
            problems.append(Problem(file, f"column {column}", f"has {found}, but study.json "
                                    f"says {expected!r}; export the study again"))
    return problems


def gather(root: str | Path = ".") -> Sources:
    """Read every source under ``root`` (``studies/`` and ``results/``); raise on any problem."""
    from mystery.timings import schema as timings
    from mystery.timings.importer import is_published_csv, read_published

    base = Path(root)
    if not base.is_dir():
        raise MysteryError(f"{base}: no such folder; pass --root the project folder that holds "
                           "studies/ and results/")
    sources = Sources()
    problems: list[Problem] = []
    for csv_path in sorted((base / "studies").glob("*.csv")):
        if not is_published_csv(csv_path):
            continue
        try:
            published = read_published(csv_path)
        except ImportFileError as exc:
            problems.extend(exc.problems)
            continue
        for name in published.studies:
            _claim(sources, name, str(csv_path.relative_to(base)), problems)
        sources.timings.append(published.timings)
        sources.brand_rows.append(published.brand_rows)
        sources.study_rows.append(published.study_rows)
    for csv_path in sorted((base / "results").glob("*/timings.csv")):
        folder = csv_path.parent
        try:
            df = timings.read_csv(csv_path)
            info = StudyInfo.read(folder)
        except ImportFileError as exc:
            problems.extend(exc.problems)
            continue
        problems.extend(_check_study_timings(folder, df, info))
        _claim(sources, info.name, str(csv_path.relative_to(base)), problems)
        sources.timings.append(df)
        sources.infos[info.name] = info
        sources.studies[info.name] = df
    if problems:
        raise ImportFileError(problems)
    return sources


@dataclass(frozen=True)
class Generated:
    """What a generation wrote under ``out`` (tables, manifests, charts it drew) and every
    chart it saw, with its state."""

    files: list[Path]
    charts: list[Chart]


def generate(
    root: str | Path, out: str | Path, *, brand_stat: BrandStat = "mean",
    highlight: Sequence[str] = (), workers: int | None = 1, drawing: bool = True,
    colour: str = HIGHLIGHT, fresh_charts: bool = False,
) -> Generated:
    """Write every study report and series result of ``root`` under ``out/results``; paths
    are relative to ``out``. Tables are always computed (they are compared byte for byte);
    a chart is drawn only when it is not current under ``root/results`` by its folder's
    ``charts.json``, and never with ``drawing`` False (check).

    Charts are drawn in ``workers`` processes (None: one per CPU), each as soon as its data
    is known, while the tables are still being computed. The default, 1, draws them in this
    process, last: a pool re-imports the caller's main module, which a script needs to guard
    with ``if __name__ == "__main__":``; the ``mystery`` command is guarded and uses one
    process per CPU. ``fresh_charts``: every chart is drawn under ``out`` whatever
    ``root/results`` holds (``publish --out``: a folder of its own, complete)."""
    from mystery.analysis.batch import Batch

    base, fresh = Path(root), Path(out)
    eager = drawing and _expects_drawing(base / "results")
    sources = gather(base)
    if not sources.owners:  # a check of nothing would pass, and say results/ is current
        raise MysteryError(f"{base.resolve()}: nothing to publish: no results/<study>/timings.csv "
                           "(written by 'mystery export' or 'mystery report') and no "
                           "studies/*.csv of published figures; run it in the project folder, "
                           "or pass --root")
    if highlight:
        known_brands(highlight, {b for df in (*sources.timings, *sources.brand_rows)
                                 for b in df["brand"].unique().to_list()})
    home = fresh / "results" if fresh_charts else base / "results"
    with Batch(workers, out=fresh / "results", home=home, drawing=drawing,
               eager=eager) as batch:  # an eager pool starts now, while sources are read
        written = _write_all(sources, fresh / "results", brand_stat, highlight, batch, colour)
        batch.run()
        written += batch.settle(merge=False)
    return Generated(sorted({p.relative_to(fresh) for p in written}), batch.charts)


def _expects_drawing(results: Path) -> bool:
    """A folder of timings without a manifest: its charts will be drawn, so start the pool
    at once (the cold publish); otherwise only at the first chart to draw."""
    folders = [csv.parent for csv in results.glob("*/timings.csv")]
    return not folders or any(not (f / FILE).exists() for f in folders)


def _write_all(
    sources: Sources, results: Path, brand_stat: BrandStat, highlight: Sequence[str],
    batch: Batch, colour: str = HIGHLIGHT,
) -> list[Path]:
    """Every study report and series. A highlighted brand colours only the studies and series
    it is in: the others are written exactly as without ``--highlight`` (no greyed-out chart
    of brands that are all peers of nobody)."""
    import polars as pl

    from mystery.analysis.report import write_report
    from mystery.analysis.seriesreport import write_series
    from mystery.timings import brandrows, studyrows
    from mystery.timings import schema as timings

    written: list[Path] = []
    all_timings = pl.concat([timings.empty(), *sources.timings])
    all_brands = pl.concat([brandrows.empty(), *sources.brand_rows])
    all_studies = pl.concat([studyrows.empty(), *sources.study_rows])
    def present(*frames: pl.DataFrame) -> list[str]:
        if not highlight:
            return []
        brands = {b for df in frames for b in df["brand"].unique().to_list()}
        return [h for h in highlight if h in brands]

    for name, info in sorted(sources.infos.items()):
        study = sources.studies[name]  # its rows are its study's alone (_check_study_timings)
        written += write_report(study, results / name, info, highlight=present(study),
                                batch=batch, colour=colour)
    synthetic = {name: info.synthetic for name, info in sources.infos.items()}
    names = sorted(set(all_timings["series"].unique().to_list())
                   | set(all_brands["series"].unique().to_list()))
    for name in names:
        # A filter, not partition_by: a series that is every row costs no copy of them.
        part = all_timings.filter(pl.col("series") == name)
        brands = all_brands.filter(pl.col("series") == name)
        written += write_series(
            name, part, brands, synthetic, results / name,
            brand_stat=brand_stat, highlight=present(part, brands), batch=batch,
            title=series_title(name, sources.infos), colour=colour,
            study_rows=all_studies.filter(pl.col("series") == name),
        )
    return written


def series_title(name: str, infos: Mapping[str, StudyInfo]) -> str:
    """A series has no title of its own: its newest titled study's title heads its charts
    (what its readers last saw); ``Series <name>`` when none of its studies has one."""
    titled = sorted((info.year, info.title) for info in infos.values()
                    if info.series == name and info.title)
    return titled[-1][1] if titled else f"Series {name}"


def _compare(root: Path, fresh: Path, files: list[Path]) -> list[Outcome]:
    outcomes = []
    for rel in files:
        target = root / rel
        if not target.exists():
            outcomes.append(Outcome(rel, "missing"))
        elif not target.is_file() or target.read_bytes() != (fresh / rel).read_bytes():
            outcomes.append(Outcome(rel, "stale"))
        else:
            outcomes.append(Outcome(rel, "unchanged"))
    return outcomes


def _chart_files(root: Path, charts: list[Chart]) -> list[tuple[Path, Chart]]:
    return [((chart.home / name).relative_to(root), chart)
            for chart in charts for name in chart.files]


def _options(brand_stat: BrandStat, highlight: Sequence[str], colour: str) \
        -> dict[str, object]:
    """The options that decide what a publish writes, as its memo's key holds them."""
    return {"brand_stat": brand_stat, "highlight": list(highlight), "colour": colour}


def _recalled(base: Path, options: dict[str, object], recompute: bool) \
        -> tuple[str, list[Outcome] | None]:
    """The memo's key for this publish or check, and every file ``unchanged`` when the memo
    vouches for them all (nothing read has changed, nothing written was touched)."""
    from mystery import memo

    inputs = memo.key(base, options)
    recalled = None if recompute else memo.recall(base, inputs)
    if recalled is None:
        return inputs, None
    return inputs, [Outcome(rel, "unchanged") for rel in sorted(recalled)]


def _remember(base: Path, options: dict[str, object], inputs: str, files: list[Path]) -> None:
    """Keep the memo only when no input changed while the publish or check ran."""
    from mystery import memo

    if memo.key(base, options) == inputs:
        memo.remember(base, inputs, files)


def publish(
    root: str | Path = ".", *, brand_stat: BrandStat = "mean", highlight: Sequence[str] = (),
    workers: int | None = 1, colour: str = HIGHLIGHT, out: str | Path | None = None,
    recompute: bool = False,
) -> list[Outcome]:
    """Regenerate ``results/``; write only files whose bytes changed (state ``written``).

    Tables and manifests are compared byte for byte; a chart is drawn only when its
    fingerprint changed or its file is missing or edited, and written only then. Nothing is
    recomputed when the memo vouches for every file, unless ``recompute``.

    With ``out`` the results are written to ``out/<folder>/`` instead, complete, and
    ``root/results`` is not touched: a consultant's highlighted copy needs no restore with git
    afterwards. Paths returned are then relative to ``out``."""
    base = Path(root)
    if out is not None:
        return _publish_to(base, Path(out), brand_stat, highlight, workers, colour)
    options = _options(brand_stat, highlight, colour)
    inputs, recalled = _recalled(base, options, recompute)
    if recalled is not None:
        return recalled
    with tempfile.TemporaryDirectory(prefix="mystery-publish-") as tmp:
        fresh = Path(tmp)
        made = generate(base, fresh, brand_stat=brand_stat, highlight=highlight,
                        workers=workers, colour=colour)
        compared = _compare(base, fresh, made.files)
        compared += [Outcome(rel, "unchanged") for rel, chart in _chart_files(base, made.charts)
                     if chart.state == "current"]
        changed = {o.path for o in compared if o.state != "unchanged"}
        replace_all({base / rel: (fresh / rel).read_bytes() for rel in sorted(changed)})
    _remember(base, options, inputs, [o.path for o in compared])
    return [Outcome(o.path, "written" if o.path in changed else o.state)
            for o in sorted(compared, key=lambda o: o.path)]


def _publish_to(base: Path, out: Path, brand_stat: BrandStat, highlight: Sequence[str],
                workers: int | None, colour: str) -> list[Outcome]:
    """``publish --out``: everything generated afresh, then put in place as one write."""
    if out.resolve() == (base / "results").resolve():
        raise MysteryError(f"--out {out}: that is results/ itself; leave --out out to "
                           "regenerate results/, or name another folder")
    with tempfile.TemporaryDirectory(prefix="mystery-publish-") as tmp:
        fresh = Path(tmp)
        made = generate(base, fresh, brand_stat=brand_stat, highlight=highlight,
                        workers=workers, colour=colour, fresh_charts=True)
        files = sorted(made.files + [rel for rel, _ in _chart_files(fresh, made.charts)
                                     if rel not in made.files])
        # Paths under results/… in the temporary folder become paths under out/.
        moved = {out / rel.relative_to("results"): (fresh / rel).read_bytes() for rel in files}
        replace_all(moved)
    return [Outcome(path.relative_to(out), "written") for path in sorted(moved)]


def replace_all(files: dict[Path, bytes]) -> None:
    """Write ``files`` as one: each new version first to a temporary file beside its target,
    then, once every one is written, all renamed into place. A failure (a read-only folder, a
    full disk, a folder where a file should be) is one message, and no target is touched."""
    staged: list[tuple[Path, Path]] = []
    try:
        for target, data in files.items():
            if target.is_dir():  # found now, before any file is replaced
                raise IsADirectoryError(errno.EISDIR, "Is a directory", str(target))
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
            staged.append((Path(name), target))
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        for temp, target in staged:
            os.replace(temp, target)
    except OSError as exc:
        for temp, _ in staged:
            temp.unlink(missing_ok=True)
        raise _cannot_write(exc) from None


def _cannot_write(exc: OSError) -> MysteryError:
    where = exc.filename or "results/"
    return MysteryError(f"cannot write {where}: {exc.strerror or exc}; nothing under "
                        "results/ was changed. Make the folder writable (and free some space), "
                        "then run the same command again")


@contextmanager
def whole_or_untouched(folder: Path) -> Iterator[None]:
    """Outputs appear whole or not at all (DESIGN.md rule 8): ``folder`` as it was is kept
    aside, and put back if the command fails half-way, so a report that cannot write its
    ``summary.md`` has not already replaced its ``timings.csv``. Why a copy of the folder and
    not a temporary file per output: the report's writers (tables, the chart workers, the
    manifest) each write their own files; the folder of one study is small."""
    kept: Path | None = None
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        if folder.exists():
            kept = Path(tempfile.mkdtemp(prefix=f".{folder.name}.kept-", dir=folder.parent))
            shutil.copytree(folder, kept, dirs_exist_ok=True)
    except OSError as exc:
        if kept is not None:
            shutil.rmtree(kept, ignore_errors=True)
        raise _cannot_write(exc) from None
    try:
        yield
    except BaseException as exc:
        shutil.rmtree(folder, ignore_errors=True)
        if kept is not None:
            os.replace(kept, folder)
        if isinstance(exc, OSError):
            raise _cannot_write(exc) from None
        raise
    if kept is not None:
        shutil.rmtree(kept, ignore_errors=True)


def _chart_state(path: Path, chart: Chart) -> str:
    """One file of a chart: current when the chart's fingerprint is the manifest's and the
    file has the hash recorded when it was drawn."""
    found = file_hash(path)
    if found is None:
        return "missing"
    previous = chart.previous
    if (previous is not None and previous.fingerprint == chart.fingerprint
            and previous.files.get(path.name) == found):
        return "unchanged"
    return "stale"


def check(
    root: str | Path = ".", *, brand_stat: BrandStat = "mean", highlight: Sequence[str] = (),
    workers: int | None = 1, colour: str = HIGHLIGHT, recompute: bool = False,
) -> list[Outcome]:
    """Every output with its state; ``stale`` or ``missing`` ones mean results/ is not current.

    Draws nothing: tables and manifests are compared byte for byte, and each chart is
    ``unchanged`` when today's fingerprint is its manifest's and its file has the recorded
    hash (``missing`` when the file is absent, ``stale`` otherwise). When the memo vouches
    for every file (the same inputs, options, code and machine as a publish or check here
    that left these very bytes), that is the answer without recomputing, unless
    ``recompute``; a check that finds every file current leaves the memo. ``workers`` is
    accepted for symmetry with :func:`publish`; no chart process is started."""
    base = Path(root)
    options = _options(brand_stat, highlight, colour)
    inputs, recalled = _recalled(base, options, recompute)
    if recalled is not None:
        return recalled
    with tempfile.TemporaryDirectory(prefix="mystery-check-") as tmp:
        made = generate(base, tmp, brand_stat=brand_stat, highlight=highlight,
                        workers=workers, drawing=False, colour=colour)
        outcomes = _compare(base, Path(tmp), made.files)
    outcomes += [Outcome(rel, _chart_state(base / rel, chart))
                 for rel, chart in _chart_files(base, made.charts)]
    if all(o.state == "unchanged" for o in outcomes):
        _remember(base, options, inputs, [o.path for o in outcomes])
    return sorted(outcomes, key=lambda o: o.path)


def report_study(
    loaded: LoadedStudy, db: str | Path | None = None, results: str | Path = "results",
    *, highlight: Sequence[str] = (), colour: str = HIGHLIGHT,
) -> StudyReport:
    """Export a study's timings from its store and write its report: the one call for
    ``mystery report`` and for the runner at the end of ``mystery run``."""
    from mystery.analysis.report import StudyReport, build_report
    from mystery.timings import export

    known_brands(highlight, {b.name for b in loaded.study.brands})
    timings = export.load_timings(loaded, db)
    info = StudyInfo.from_study(loaded)
    folder = Path(results) / info.name
    with whole_or_untouched(folder):
        paths = export.write_export(timings, info, folder)
        built = build_report(timings, folder, info, highlight=highlight, colour=colour)
    return StudyReport(paths + built.paths, built.summary)


def export_study(
    loaded: LoadedStudy, db: str | Path | None = None, results: str | Path = "results"
) -> list[Path]:
    """``mystery export``: the study's timings and study.json under ``results/<study>/``,
    both written or neither."""
    from mystery.timings import export

    info = StudyInfo.from_study(loaded)
    timings = export.load_timings(loaded, db)
    with whole_or_untouched(Path(results) / info.name):
        return export.write_export(timings, info, Path(results) / info.name)


def known_brands(highlight: Sequence[str], brands: set[str], option: str = "--highlight") \
        -> None:
    """Refuse a ``--highlight`` (or ``option``) that names no brand, with the closest names: a
    misspelt client would otherwise draw every bar grey and say nothing."""
    from difflib import get_close_matches

    for name in highlight:
        if name in brands:
            continue
        close = get_close_matches(name, sorted(brands), n=3, cutoff=0.6)
        hint = (f"did you mean {' or '.join(repr(c) for c in close)}?" if close
                else "brand names are as in the study file, e.g. "
                f"{', '.join(repr(b) for b in sorted(brands)[:3])}")
        raise MysteryError(f"{option} {name!r}: no such brand here; {hint}")
