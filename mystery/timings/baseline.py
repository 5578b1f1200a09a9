"""The baseline a plan's power is simulated from: what acknowledgement times to expect.

For each channel of a plan, the probes of the series' latest earlier year with timings on that
channel (``results/<study>/timings.csv`` beside its ``study.json``, or probe rows of a
published-figures CSV in ``studies/``) as they were measured: that year is already collected,
so its size is fixed and only this plan's year is simulated anew from the same times. With no
earlier year, a sandbox channel falls back on the study's sandbox profiles: each brand draws
from its own profile (its answer rate and log-normal latency), and both years have this plan's
design (the comparison with a next wave like it).

It lives among the timings because it reads them and the study file both; analysis
(:mod:`mystery.analysis.power`) receives only these plain arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mystery.errors import MysteryError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import polars as pl

    from mystery.study.model import Profile, Study
    from mystery.study.plan import PlannedProbe

PROFILE_DRAWS = 1000
"""Points a profile is laid out on (evenly spaced quantiles): a rate to 0.1 %, no noise."""


@dataclass(frozen=True)
class Baseline:
    """One channel's expected acknowledgement times, and the plan's size there.

    Every simulated probe is an independent draw, with replacement, from ``times`` and
    ``answered``: the earlier year's probes, or each brand's profile laid out on as many points
    (the brands mixed in proportion to their probes, which are equal on one channel). Why not
    each brand from its own profile: the log-rank test of the year-on-year table treats probes
    as independent, and a simulation that gave each year exactly the same brands would hide
    the brand-to-brand spread that test ignores, making it look conservative (it then rejects
    a true "no change" far less often than 5 %)."""

    channel: str
    source: str  # in words, for the output: where the times come from
    earlier: str | None  # the earlier study compared with, None when simulated from profiles
    times: npt.NDArray[np.float64]  # seconds; the censoring time when unanswered
    answered: npt.NDArray[np.bool_]
    before: int | None  # the earlier year's probes as measured; None: simulated like this plan
    per_brand: int
    brands: int
    cutoff_seconds: float

    def sizes(self, per_brand: int) -> tuple[int, int]:
        """(earlier year's probes, this plan's probes) with ``per_brand`` probes per brand."""
        after = self.brands * per_brand
        return (after if self.before is None else self.before), after


def profile_pool(profile: Profile, cutoff_seconds: float) -> tuple[
        npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """A profile as ``PROFILE_DRAWS`` evenly spaced points of its distribution: the share it
    never answers censored at the cutoff, the rest at log-normal quantiles (median
    ``ack_median``, sigma ``ack_spread``), those past the cutoff unanswered too. The sandbox's
    business hours and holidays are left out (delays count in elapsed time)."""
    from statistics import NormalDist

    import numpy as np

    answering = round(profile.answer_rate * PROFILE_DRAWS)
    normal = NormalDist()  # the standard library's: scipy.stats costs a CLI run a second
    z = np.array([normal.inv_cdf((i + 0.5) / answering) for i in range(answering)])
    times = profile.ack_median.total_seconds() * np.exp(profile.ack_spread * z)
    times = np.concatenate([times, np.full(PROFILE_DRAWS - answering, cutoff_seconds)])
    answered = np.arange(PROFILE_DRAWS) < answering
    answered &= times <= cutoff_seconds
    return np.minimum(times, cutoff_seconds).astype(np.float64), answered


def _earlier_timings(study: Study, root: Path) -> pl.DataFrame:
    """Every valid probe of the series before the study's year, from results/ and studies/."""
    import polars as pl

    from mystery.timings import schema
    from mystery.timings.importer import is_published_csv, read_published
    from mystery.timings.studyinfo import FILE_NAME, StudyInfo

    frames = [schema.empty()]
    for info_file in sorted((root / "results").glob(f"*/{FILE_NAME}")):
        folder = info_file.parent
        info = StudyInfo.read(folder)
        if (info.series == study.series and info.year < study.year
                and info.name != study.name and (folder / "timings.csv").exists()):
            frames.append(schema.read_csv(folder / "timings.csv"))
    for csv_path in sorted((root / "studies").glob("*.csv")):
        if is_published_csv(csv_path):
            frames.append(read_published(csv_path).timings)
    df = pl.concat(frames)
    return df.filter((pl.col("series") == study.series) & (pl.col("year") < study.year)
                     & (pl.col("study") != study.name) & (pl.col("status") != "excluded"))


def baselines(study: Study, plan: Sequence[PlannedProbe], root: str | Path = ".") -> list[
        Baseline]:
    """One baseline per channel of ``plan``, in the plan's channel order; ``root`` holds the
    project's ``results/`` and ``studies/`` (the working folder, as for ``mystery publish``).

    Raises MysteryError for a real (not sandbox) channel with no earlier year to draw from:
    there is then nothing honest to simulate."""
    import numpy as np
    import polars as pl

    earlier = _earlier_timings(study, Path(root))
    cutoff = study.cutoff.total_seconds()
    per_brand = study.schedule.probes_per_brand
    channels = list(dict.fromkeys(p.channel for p in plan))
    found: list[Baseline] = []
    for channel in channels:
        brands = sorted({p.brand for p in plan if p.channel == channel})
        rows = earlier.filter(pl.col("channel") == channel)
        if rows.height:
            year = int(rows["year"].max())  # type: ignore[arg-type]
            rows = rows.filter(pl.col("year") == year)
            names = ", ".join(sorted(set(rows["study"].to_list())))
            answered = (rows["status"] == "answered").to_numpy()
            waited = rows["cutoff_seconds"].fill_null(cutoff).to_numpy()
            times = np.where(answered, rows["ack_seconds"].fill_null(0.0).to_numpy(), waited)
            unknown = int((~answered & rows["cutoff_seconds"].is_null().to_numpy()).sum())
            source = f"{names} ({year}): its {rows.height} probes on {channel} as measured"
            if unknown:  # an imported study that published no cutoff
                source += (f" ({unknown} unanswered with no published cutoff, taken to have "
                           "waited this study's cutoff)")
            found.append(Baseline(
                channel, source, names, times.astype(np.float64), answered.astype(bool),
                rows.height, per_brand, len(brands), cutoff))
            continue
        if channel not in study.sandbox_channels:  # a real platform, or a hand-logged one
            raise MysteryError(
                f"--power: no earlier year of series {study.series!r} has timings on "
                f"{channel} (looked in results/*/timings.csv and studies/*.csv under "
                f"{Path(root).resolve()}), and {channel} is not simulated by the sandbox, so "
                "there is nothing to simulate from; export last year's study there (mystery "
                "export), or run this command from the folder that holds results/")
        from mystery.study.model import Profile

        laid = [profile_pool(study.sandbox.profiles.get(study.brand(name).profile or "",
                                                        Profile()), cutoff) for name in brands]
        found.append(Baseline(
            channel, f"the sandbox profiles of its {len(brands)} "
            f"{'brand' if len(brands) == 1 else 'brands'} (no earlier year of "
            f"{study.series} on {channel})", None, np.concatenate([t for t, _ in laid]),
            np.concatenate([a for _, a in laid]), None, per_brand, len(brands), cutoff))
    return found
