"""Rendering for ``mystery plan --power`` and ``--detect``: the numbers come from
:func:`mystery.analysis.power.plan_power`, its inputs from
:func:`mystery.timings.baseline.baselines`.

The assumptions travel with the figures in every format (under the table, in the JSON, on
stderr beside a CSV): a power figure read without them is easily read as a promise.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

import typer

from mystery.cli.console import err_console, out_console
from mystery.cli.options import Format, write_csv, write_json

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID

    from mystery.analysis.power import Detectable, Needed, PowerReport
    from mystery.study.model import Study
    from mystery.study.plan import PlannedProbe

_CHANGE = re.compile(r"\s*([+-]?)\s*(\d+(?:\.\d*)?|\.\d+)\s*(%?)\s*")


def parse_change(text: str) -> float:
    """``--detect 20%`` as a share (0.2); a usage error (exit 2) names the value and the fix."""
    found = _CHANGE.fullmatch(text)
    if found is None:
        raise typer.BadParameter(f"{text!r} is not a change such as 20%: write the change in "
                                 "median acknowledgement time as a percentage",
                                 param_hint="--detect")
    sign, number, percent = found.groups()
    if not percent:
        raise typer.BadParameter(f"{text!r} has no % sign: write 20% for a change of a fifth "
                                 "(0.2 would be ambiguous)", param_hint="--detect")
    if sign:
        raise typer.BadParameter(f"{text!r} has a sign: write the size only, e.g. 20%; both "
                                 "directions are tested (20% faster and 20% slower)",
                                 param_hint="--detect")
    share = float(number) / 100
    if not 0 < share < 1:
        raise typer.BadParameter(f"{text!r} is outside 0%–100%: name a change larger than 0% "
                                 "and smaller than 100%, e.g. 20% (a median cannot fall by "
                                 "100% or more)", param_hint="--detect")
    return share


class _LateProgress:
    """A rich progress bar on stderr that appears only once the work has taken a second
    (a quick answer should not flash a bar), and only on a terminal."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.started = time.monotonic()
        self.bar: RichProgress | None = None
        self.task: TaskID | None = None
        self.enabled = err_console().is_terminal

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            if time.monotonic() - self.started < 1.0:
                return
            from rich.progress import Progress

            self.bar = Progress(console=err_console(), transient=True)
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=total)
        assert self.task is not None
        self.bar.update(self.task, completed=done, total=total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def show_power(study: Study, plan: Sequence[PlannedProbe], output: Format, *,
               detect: float | None, simulations: int) -> None:
    """Simulate and print the plan's power; assumptions in every format."""
    from mystery.analysis.power import plan_power
    from mystery.timings.baseline import baselines

    found = baselines(study, plan)
    progress = _LateProgress(f"{simulations:,} simulated studies per point")
    try:
        report = plan_power(found, simulations=simulations, seed=study.schedule.seed,
                            detect=detect, on_progress=progress)
    finally:
        progress.close()
    notes = assumptions(study, report)
    if output == "json":
        write_json(_as_json(study, report, notes))
        return
    if output == "csv":
        if detect is None:
            write_csv(_DETECTABLE, [_detectable_row(report, d) for d in report.detectable])
        else:
            write_csv(_NEEDED, [_needed_row(report, n) for n in report.needed])
        for note in notes:
            err_console().print(note, markup=False)
        return
    _tables(study, report, notes)


def assumptions(study: Study, report: PowerReport) -> list[str]:
    """What the figures assume, in words, one sentence each."""
    from mystery.analysis.power import ALPHA, TARGET, monte_carlo_se
    from mystery.durations import format_duration

    cutoff = format_duration(study.cutoff.total_seconds())
    notes = [
        "Change: every acknowledgement time of this plan's year multiplied by one factor (a "
        "median 20% faster is ×0.8, 20% slower ×1.2); a probe that never answered stays "
        f"unanswered, and a time scaled past the cutoff ({cutoff}) is unanswered, censored "
        "at the cutoff; the Kaplan–Meier median moves by the same factor.",
        f"Test: two-sample log-rank over every probe of the two years on a channel, "
        f"two-sided, α = {ALPHA:g}; a change is detected with {TARGET:.0%} power when "
        f"{TARGET:.0%} of simulated studies reject 'no change'.",
    ]
    for b in report.baselines:
        before, after = b.sizes(b.per_brand)
        share = f"{b.answered.mean():.0%} answered within the cutoff"
        if b.before is None:
            notes.append(
                f"{b.channel}: both years simulated with this plan's {after} probes, drawn "
                f"from {b.source}: each profile's answer rate and log-normal latency, its "
                f"business hours left out; the profiles: {share}.")
        else:
            notes.append(
                f"{b.channel}: drawn with replacement from {b.source}; that year keeps its "
                f"{before} probes, this plan has {after}; that year: {share}. Probes that "
                "never answer weaken the log-rank test: the fewer answer, the larger the "
                "change it needs.")
    from mystery.analysis.power import MAX_PER_BRAND

    for n in report.needed:
        b = next(b for b in report.baselines if b.channel == n.channel)
        if n.per_brand is None and b.before is not None:
            notes.append(
                f"{n.channel}: no count up to {MAX_PER_BRAND:,} probes per brand detects a "
                f"change of {_percent(n.factor - 1)} with {TARGET:.0%} power: the earlier "
                f"year's {b.before} probes limit the comparison (power at {MAX_PER_BRAND:,}: "
                f"{n.power:.3f}).")
    notes += _schedule_notes(study, report)
    se = monte_carlo_se(TARGET, report.simulations)
    notes.append(
        "Each probe is an independent draw, as the log-rank test assumes (brands mixed in "
        f"proportion to their probes). {report.simulations:,} simulated pairs of years per "
        f"point, seeded by schedule.seed ({study.schedule.seed}): the same figures on every "
        f"machine. Monte Carlo standard error of a power near {TARGET:.0%}: {se:.3f} "
        "(√(p(1−p)/simulations)); a detectable change is found to 0.1%, probes per brand "
        "to within 5%.")
    return notes


def _schedule_notes(study: Study, report: PowerReport) -> list[str]:
    """Whether the study's schedule can hold the counts of probes per brand named: a count
    that does not fit the send windows is no plan yet, so say how many do fit."""
    from mystery.durations import format_duration
    from mystery.study.plan import schedule_problems

    def fits(k: int) -> bool:
        bigger = study.model_copy(update={
            "schedule": study.schedule.model_copy(update={"probes_per_brand": k})})
        return not schedule_problems(bigger)

    named = sorted({n.per_brand for n in report.needed if n.per_brand is not None})
    over = [k for k in named if k > study.schedule.probes_per_brand and not fits(k)]
    if not over:
        return []
    low, high = study.schedule.probes_per_brand, over[0]  # this plan fits; over[0] does not
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    shown = [f"{k:,}" for k in over]
    counts = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"
    gap = format_duration(study.schedule.min_gap.total_seconds())
    return [f"This schedule holds at most {low} probes per brand (its send windows from "
            f"{study.schedule.start} to {study.schedule.end}, min_gap {gap}, on every channel "
            f"a brand is asked on), so {counts} do not fit: lengthen the schedule, widen its "
            "windows or shorten min_gap."]


_DETECTABLE = ("channel", "direction", "source", "probes_earlier", "probes_plan",
               "median_minutes", "change_percent", "factor", "median_at_change_minutes",
               "power", "power_se", "simulations")
_NEEDED = ("channel", "direction", "source", "change_percent", "factor", "plan_power",
           "plan_power_se", "probes_per_brand", "probes_earlier", "probes_plan", "power",
           "power_se", "simulations")


def _minutes(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds / 60:.4f}"


def _median(report: PowerReport, channel: str) -> float | None:
    from mystery.analysis.power import baseline_median

    return baseline_median(next(b for b in report.baselines if b.channel == channel))


def _source(report: PowerReport, channel: str) -> str:
    return next(b.source for b in report.baselines if b.channel == channel)


def _detectable_row(report: PowerReport, d: Detectable) -> tuple[object, ...]:
    median = _median(report, d.channel)
    at = None if median is None or d.factor is None else median * d.factor
    return (d.channel, d.direction, _source(report, d.channel), d.probes_before,
            d.probes_after, _minutes(median),
            "" if d.change is None else f"{d.change * 100:.1f}",
            "" if d.factor is None else f"{d.factor:.4f}", _minutes(at), f"{d.power:.3f}",
            f"{d.power_se:.4f}", report.simulations)


def _needed_row(report: PowerReport, n: Needed) -> tuple[object, ...]:
    return (n.channel, n.direction, _source(report, n.channel),
            f"{(n.factor - 1) * 100:.1f}", f"{n.factor:.4f}", f"{n.plan_power:.3f}",
            f"{n.plan_power_se:.4f}", "" if n.per_brand is None else n.per_brand,
            n.probes_before, n.probes_after, f"{n.power:.3f}", f"{n.power_se:.4f}",
            report.simulations)


def _as_json(study: Study, report: PowerReport, notes: list[str]) -> dict[str, object]:
    from mystery.analysis.power import ALPHA, MAX_PER_BRAND, TARGET

    def typed(columns: tuple[str, ...], row: tuple[object, ...]) -> dict[str, object]:
        values: dict[str, object] = {}
        for column, value in zip(columns, row, strict=True):
            if value == "":
                values[column] = None  # unknown or not reached: null, never a number
            elif isinstance(value, str) and column not in ("channel", "direction", "source"):
                values[column] = float(value)
            else:
                values[column] = value
        return values

    return {
        "study": study.name, "test": "log-rank, two-sided", "alpha": ALPHA,
        "target_power": TARGET, "simulations": report.simulations,
        "seed": study.schedule.seed, "max_probes_per_brand": MAX_PER_BRAND,
        "detect_percent": None if report.detect is None else round(report.detect * 100, 4),
        "assumptions": notes,
        "detectable": [typed(_DETECTABLE, _detectable_row(report, d))
                       for d in report.detectable],
        "needed": [typed(_NEEDED, _needed_row(report, n)) for n in report.needed],
    }


def _percent(share: float) -> str:
    """-0.25 as "25.0% faster"; a change of more than double also as its factor."""
    words = f"{abs(share) * 100:.1f}% {'faster' if share < 0 else 'slower'}"
    return words if share < 1 else f"{words} (×{1 + share:.2f})"


def _tables(study: Study, report: PowerReport, notes: list[str]) -> None:
    from rich.table import Table

    from mystery.analysis.power import MAX_PER_BRAND
    from mystery.durations import format_duration

    console = out_console()
    table = Table(title=f"{study.name}: the smallest change in median acknowledgement time "
                  "this plan detects with 80% power", title_justify="left")
    for column, justify in (("channel", "left"), ("probes (earlier / plan)", "right"),
                            ("median", "right"), ("smallest change detected", "right"),
                            ("median then", "right"), ("power", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for d in report.detectable:
        median = _median(report, d.channel)
        if d.change is None:
            extreme = "100× faster" if d.direction == "faster" else "100× slower"
            change, then = f"none up to {extreme}", ""
        else:
            change = _percent(d.change)
            then = "unknown" if median is None else format_duration(median * (d.factor or 1))
        table.add_row(d.channel, f"{d.probes_before} / {d.probes_after}",
                      "unknown" if median is None else format_duration(median), change, then,
                      f"{d.power:.3f} ± {d.power_se:.3f}")
    console.print(table)
    if report.needed:
        assert report.detect is not None
        needed = Table(title=f"{study.name}: probes per brand to detect a change of "
                       f"{report.detect * 100:g}% with 80% power", title_justify="left")
        for column in ("channel", "change", "power with this plan", "probes per brand",
                       "probes (earlier / plan)", "power then"):
            needed.add_column(column, justify="left" if column in ("channel", "change")
                              else "right")
        for n in report.needed:
            count = f"{n.per_brand:,}" if n.per_brand is not None else (
                f"more than {MAX_PER_BRAND:,}")
            needed.add_row(n.channel, _percent(n.factor - 1),
                           f"{n.plan_power:.3f} ± {n.plan_power_se:.3f}", count,
                           f"{n.probes_before:,} / {n.probes_after:,}",
                           f"{n.power:.3f} ± {n.power_se:.3f}")
        console.print(needed)
    for note in notes:
        console.print(note, markup=False)
