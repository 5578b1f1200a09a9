"""``mystery pack``: write a client pack (page, PDF, slide charts) for one client brand.

Where the numbers come from: a study file's own store (its probes, fresh), joined to the
committed timings of the other studies of its series for the year-on-year line; or a series
by name, from what is committed (:func:`mystery.publish.gather`), its newest year being the
study the pack is about. Only timings: the pack reads no reply text.

The pack is written beside ``results/``, never inside it (``pack/<client>/`` by default), into
a temporary folder first and renamed into place at the end, so a failure (no Chromium, a full
disk) leaves no half-written pack and an earlier pack whole.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mystery.analysis import charts
from mystery.errors import MysteryError
from mystery.pack import figures, page
from mystery.timings.studyinfo import StudyInfo

if TYPE_CHECKING:
    import polars as pl

    from mystery.study.load import LoadedStudy

PAGE, PDF, CHARTS = "index.html", "pack.pdf", "charts"


@dataclass(frozen=True)
class Source:
    """The probes a pack is drawn from: ``timings`` of every year of the series (probe level),
    ``info`` of the study the pack is about (its newest year)."""

    timings: pl.DataFrame
    info: StudyInfo


def from_study(loaded: LoadedStudy, db: str | Path | None = None,
               root: str | Path = ".") -> Source:
    """A study file: its store's timings, and the committed other years of its series."""
    import polars as pl

    from mystery.timings import export
    from mystery.timings import schema as timings_schema

    info = StudyInfo.from_study(loaded)
    own = export.load_timings(loaded, db)
    others = _committed(root).filter((pl.col("series") == info.series)
                                     & (pl.col("study") != info.name))
    return Source(pl.concat([timings_schema.empty(), others, own]), info)


def from_series(name: str, root: str | Path = ".") -> Source:
    """A series by name, from what is committed under ``root``."""
    import polars as pl

    from mystery.publish import gather

    sources = gather(root)
    infos = sorted((i for i in sources.infos.values() if i.series == name),
                   key=lambda i: (i.year, i.name))
    if not infos:
        known = sorted({i.series for i in sources.infos.values()})
        raise MysteryError(f"{name!r} is neither a study file nor a series with probe timings "
                           f"under {Path(root) / 'results'}; series there: "
                           f"{', '.join(known) or 'none'}")
    every = _committed(root, sources.timings)
    return Source(every.filter(pl.col("series") == name), infos[-1])


def _committed(root: str | Path, frames: Sequence[pl.DataFrame] | None = None) -> pl.DataFrame:
    import polars as pl

    from mystery.timings import schema as timings_schema

    if frames is None:
        from mystery.publish import gather

        frames = gather(root).timings  # a broken committed source is named, not skipped
    return pl.concat([timings_schema.empty(), *frames])


def default_out(client: str, results: str | Path = "results") -> Path:
    """``pack/<client>/`` beside the results folder: never inside results/."""
    slug = re.sub(r"[^a-z0-9]+", "-", client.lower()).strip("-") or "client"
    return Path(results).resolve().parent / "pack" / slug


def make_pack(
    source: Source, client: str, out: str | Path, *, peers: Sequence[str] = (),
    colour: str = charts.HIGHLIGHT, pdf: bool = True, results: str | Path = "results",
) -> list[Path]:
    """Write the pack into ``out``; return its files. ``peers``: brands to compare with (all
    others by default); ``pdf`` False skips printing (no Chromium needed); ``results``: the
    results folder the pack must stay out of."""
    import polars as pl

    from mystery.publish import known_brands

    info = source.info
    current = source.timings.filter(pl.col("study") == info.name)
    brands = set(current["brand"].unique().to_list())
    known_brands([client], brands, option="--client")
    known_brands(peers, brands - {client}, option="--peers")
    target = Path(out)
    if target.resolve().is_relative_to(Path(results).resolve()):
        raise MysteryError(f"--out {out}: a pack never goes inside {results} (publish "
                           "regenerates it); choose another folder, e.g. pack/")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
    try:
        _write(staging, current, source.timings, info, client, peers, colour, pdf)
        _swap(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sorted(p for p in target.rglob("*") if p.is_file())


def _swap(staging: Path, target: Path) -> None:
    """Put the new pack in place of the old one; the old one is removed only afterwards."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    staging.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write(folder: Path, current: pl.DataFrame, every: pl.DataFrame, info: StudyInfo,
           client: str, peers: Sequence[str], colour: str, pdf: bool) -> None:
    from mystery.analysis.report import chart_title

    standings = figures.standings(current, client, peers)
    lines = figures.year_lines(every, client, peers)
    where = figures.where(current, client, info.timezone)
    note = _note(current, info)
    title = chart_title(info)
    made = _charts(folder / CHARTS, current, every, standings, lines, client, peers, colour,
                   title, info)
    tables = [page.standing_table(client, standings)]
    if len({y.year for y in lines}) > 1:
        tables.append(page.year_table(client, lines))
    tables.append(page.where_table(client, where))
    html = page.render(page.Page(client, title, info.name, info.synthetic, note, tables, made))
    (folder / PAGE).write_text(html, encoding="utf-8", newline="\n")
    if pdf:
        from mystery.pack.pdf import print_pdf

        print_pdf(folder / PAGE, folder / PDF)


def _note(timings: pl.DataFrame, info: StudyInfo) -> str:
    """The method line of what ``timings`` hold (a study, or one channel of it)."""
    from mystery.analysis.tables import method_note

    t = timings.filter(timings["status"] != "excluded")
    return method_note(
        probes=t.height, brands=t["brand"].n_unique(),
        channels=sorted(t["channel"].unique().to_list()),
        first=t["sent_at"].min(), last=t["sent_at"].max(),
        cutoff_low=t["cutoff_seconds"].min(), cutoff_high=t["cutoff_seconds"].max(),
        timezone=info.timezone, synthetic=info.synthetic,
    )


def _charts(folder: Path, current: pl.DataFrame, every: pl.DataFrame,
            standings: Sequence[figures.Standing],
            lines: Sequence[figures.YearLine], client: str, peers: Sequence[str], colour: str,
            title: str, info: StudyInfo) -> list[tuple[str, Path]]:
    """Slide charts (16:9, PNG at 2× and SVG with text): a ranking per channel, and the year
    on year line where the series has several years. Returns (caption, SVG) pairs."""
    import polars as pl

    from mystery.analysis import metrics
    from mystery.analysis.report import STATISTIC
    from mystery.timings import brandrows

    made = []
    for s in standings:
        here = current.filter(pl.col("channel") == s.channel)
        if peers:
            here = here.filter(pl.col("brand").is_in([client, *peers]))
        table = metrics.summarise(here, brandrows.empty(), ["brand"])
        bars = [charts.Bar(r["brand"], r["median_ack_seconds"], r["answered"], r["probes"],
                           r["cutoff_max_seconds"]) for r in table.iter_rows(named=True)]
        place = f"{client} ranks {s.rank} of {s.ranked}" if s.rank else f"{client} unranked"
        stem = folder / f"ranking-{s.channel}"
        charts.ranking(bars, stem, title=title, aspect="slide", highlight=[client],
                       colour=colour, subtitle=f"{STATISTIC}: {s.channel}, {info.year}; {place}",
                       xlabel="median time to acknowledgement (log scale)",
                       note=_note(here, info))
        made.append((f"{client} among its peers on {s.channel}", stem.with_suffix(".svg")))
    if len({y.year for y in lines}) > 1:
        panels: dict[str, list[charts.ClientYear]] = {}
        for y in lines:
            panels.setdefault(y.channel, []).append(charts.ClientYear(
                y.year, y.client.value, y.client.low, y.client.high, y.peers.value))
        stem = folder / "years"
        charts.client_years(panels, stem, title=title, client=client, colour=colour,
                            subtitle=f"Median time to acknowledgement (Kaplan–Meier, 95 % "
                            f"interval): {client} against the peer median, year on year",
                            note=f"series {info.series} · peer median: every peer probe of "
                            "the year pooled · " + _note(every, info))
        made.append((f"{client} year on year against the peer median", stem.with_suffix(".svg")))
    return made
