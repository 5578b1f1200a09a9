"""Warnings, not errors: a plan that sends one text to many brands on the same day.

X's rules for automated accounts say "No identical cross-posting" and list "identical content
across accounts" under spam; many Mastodon instances forbid "posting the same content across
multiple accounts" (research/platforms.md §7). A question is a template, so the posts it makes
differ only by the brand's mention and name: sent to many brands in one day they read as a
campaign, and an account posting them can be limited or suspended mid-study.

The rule, kept simple enough to predict: on each real X, Mastodon or Bluesky channel, count the
brands that get the same *skeleton* on the same local day, where a skeleton is the question as
rendered with the brand's name taken out, case, punctuation and spacing ignored (so questions
that differ only by the brand's name, or by a comma, count as one text). More than
:data:`SAME_TEXT_PER_DAY` brands is a warning: the study still loads and runs. X publishes no
threshold; three a day keeps any day's repeats few while the research notes' own guard (no
text too like the last 20 posts) would forbid nearly every study with a question bank.

Not for the sandbox (it has no spam rules, and the demo would warn on every run), and computed
from the plan, so it lives beside :mod:`mystery.study.plan` rather than in the study loader.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING

from mystery.errors import Problem
from mystery.study.model import Study

if TYPE_CHECKING:
    from mystery.study.plan import PlannedProbe

__all__ = ["SAME_TEXT_PER_DAY", "SOCIAL_CHANNELS", "skeleton", "study_warnings", "warnings_apply"]

SAME_TEXT_PER_DAY = 3
"""Brands one text may go to on one channel in one local day before it is worth a warning."""
SOCIAL_CHANNELS = ("x", "mastodon", "bluesky")


def skeleton(text: str, brand: str) -> str:
    """``text`` with ``brand`` taken out, case-folded, and only its words kept."""
    without = text.replace(brand, " ") if brand else text
    return " ".join(re.findall(r"\w+", without.casefold()))


def _channels(study: Study) -> list[str]:
    return [n for n in SOCIAL_CHANNELS if n in study.channels and not study.channels[n].is_sandbox]


def warnings_apply(study: Study) -> bool:
    """Whether :func:`study_warnings` can find anything (so a caller may skip planning)."""
    return bool(_channels(study))


def study_warnings(study: Study, plan: Sequence[PlannedProbe], file: str = "") -> list[Problem]:
    """One warning per (channel, repeated text) whose busiest day exceeds the limit."""
    channels = _channels(study)
    if not channels:
        return []
    zone = study.zone
    days: dict[tuple[str, str], dict[date, set[str]]] = defaultdict(lambda: defaultdict(set))
    questions: dict[tuple[str, str], set[str]] = defaultdict(set)
    for probe in plan:
        if probe.channel in channels:
            key = (probe.channel, skeleton(probe.text, probe.brand))
            days[key][probe.planned_at.astimezone(zone).date()].add(probe.brand)
            questions[key].add(probe.question)
    order = {q.id: i for i, q in enumerate(study.questions)}
    warnings: list[Problem] = []
    for (channel, text), by_day in days.items():
        busy = {day: len(brands) for day, brands in by_day.items()
                if len(brands) > SAME_TEXT_PER_DAY}
        if not busy:
            continue
        ids = sorted(questions[(channel, text)], key=order.__getitem__)
        worst = max(busy, key=lambda d: (busy[d], -d.toordinal()))
        same = (f"questions {', '.join(repr(i) for i in ids)} read the same" if len(ids) > 1
                else f"question {ids[0]!r}")
        warnings.append(Problem(
            file, f"questions[{order[ids[0]]}].text",
            f"{same} on {channel} goes to more than {SAME_TEXT_PER_DAY} brands a day on "
            f"{len(busy)} day(s) ({busy[worst]} on {worst:%a %Y-%m-%d}), each post differing "
            "only by the brand: platforms flag identical posts to many accounts as spam; add "
            "reworded questions, or spread the schedule over more days",
        ))
    return sorted(warnings, key=lambda p: (p.where, p.message))
