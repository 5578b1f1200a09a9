"""Rendering for ``mystery plan --cost`` and the study warnings the collect commands print.

Only rendering: the numbers come from :func:`mystery.study.cost.estimate`, the warnings from
:func:`mystery.study.warnings.study_warnings`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from mystery.cli.console import err_console, out_console
from mystery.cli.options import write_csv, write_json

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from mystery.study.cost import Estimate
    from mystery.study.model import Study
    from mystery.study.plan import PlannedProbe


def _usd(value: Decimal) -> str:
    return f"${value:,.3f}"


def show_estimate(name: str, est: Estimate, *, as_csv: bool = False,
                  as_json: bool = False) -> None:
    """The estimate as a table (or CSV, JSON) on stdout; budget and sandbox notes on stderr."""
    if as_json:
        write_json({"study": name, **est.to_dict()})
    elif as_csv:
        write_csv(("channel", "item", "count", "unit_usd", "total_usd", "basis"), [
            *((i.channel, i.item, i.count, f"{i.unit_usd:.3f}", f"{i.total_usd:.3f}", i.basis)
              for i in est.items),
            ("", "total", "", "", f"{est.total_usd:.3f}", ""),
        ])
    else:
        from rich.table import Table

        table = Table(title=f"{name}: estimated API spend (X pay-per-use prices)",
                      title_justify="left")
        for column, justify in (("channel", "left"), ("item", "left"), ("count", "right"),
                                ("unit", "right"), ("total", "right"), ("how counted", "left")):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for i in est.items:
            table.add_row(i.channel, i.item, f"{i.count:,}", _usd(i.unit_usd),
                          _usd(i.total_usd), i.basis)
        table.add_section()
        table.add_row("", "total", "", "", _usd(est.total_usd), "")
        if est.budget_usd is not None:
            table.add_row("", "budget_usd", "", "", _usd(est.budget_usd), "")
        out_console().print(table)
    if est.sandbox:
        err_console().print("X is the sandbox here, which charges nothing: the lines are what the "
                            "real X would charge for this plan.", markup=False)
    if est.over_budget:
        assert est.budget_usd is not None
        err_console().print(
            f"Warning: the estimate, {_usd(est.total_usd)}, exceeds channels.x.budget_usd, "
            f"{_usd(est.budget_usd)}: the run would stop paid reads at the budget and leave "
            "replies unread; raise budget_usd, or plan fewer X probes",
            markup=False, style="bold red",
        )


def show_warnings(study: Study, file: str, plan: Sequence[PlannedProbe] | None = None) -> None:
    """Each study warning as one ``Warning: ...`` line on stderr. Without ``plan``, the study
    is planned only if a warning could apply (no second plan for a sandbox study)."""
    from mystery.study.warnings import study_warnings, warnings_apply

    if not warnings_apply(study):
        return
    if plan is None:
        from mystery.study.plan import make_plan

        plan = make_plan(study)
    for problem in study_warnings(study, plan, file):
        err_console().print(f"Warning: {problem}", markup=False, style="yellow")


def warn_before_run(path: Path) -> None:
    """The study warnings for ``mystery run``; silent when the study does not load, since the
    run then reports why itself."""
    from mystery.errors import MysteryError
    from mystery.study.load import load_study

    try:
        show_warnings(load_study(path).study, str(path))
    except MysteryError:
        return
