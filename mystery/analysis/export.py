"""From a study's store to ``results/<study>/timings.csv`` and ``study.json``.

The export is the only way collected data leaves the store for analysis, and it carries only
timings (no reply text, no account or agent name, no credential), so ``results/`` can be
committed and published as is.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mystery.analysis import timings
from mystery.analysis.studyinfo import StudyInfo
from mystery.errors import StoreError

if TYPE_CHECKING:
    import polars as pl

    from mystery.studyload import LoadedStudy


def load_timings(loaded: LoadedStudy, db: str | Path | None = None) -> pl.DataFrame:
    """The study's timings from its store (``db``, default: beside the study file)."""
    from mystery.store import Store

    path = Path(db) if db is not None else loaded.default_db
    with Store.open(path, create=False) as store:
        owner = store.meta("study")
        if owner is not None and owner != loaded.study.name:
            raise StoreError(
                f"{path} belongs to study {owner!r}, not {loaded.study.name!r}; pass the "
                "store of this study with --db"
            )
        rows = store.timing_rows()
    names = {row["study"] for row in rows}
    if names - {loaded.study.name}:
        raise StoreError(
            f"{path} holds study {', '.join(sorted(names))}, not {loaded.study.name}; "
            "pass the store of this study with --db"
        )
    return timings.frame(rows)


def write_export(df: pl.DataFrame, info: StudyInfo, folder: Path) -> list[Path]:
    """Write timings.csv and study.json into ``folder``; return both paths."""
    return [timings.write_csv(df, folder / "timings.csv"), info.write(folder)]


def export_study(
    loaded: LoadedStudy, db: str | Path | None = None, results: str | Path = "results"
) -> list[Path]:
    """``mystery export``: the study's timings and study.json under ``results/<study>/``."""
    info = StudyInfo.from_study(loaded)
    return write_export(load_timings(loaded, db), info, Path(results) / info.name)
