"""Where a missed probe goes: the next slot the plan's own rules allow.

A ``manual`` probe the researcher did not post within its grace window is not sent late at an
arbitrary moment (that would bias its send window, e.g. push a weekday question into a
weekend evening): it moves to the first instant that the plan itself could have chosen, i.e.
inside the study's send windows (``schedule.windows``, local time) and at least ``min_gap``
from every other probe of the same brand, on any channel, as :mod:`mystery.study.plan` keeps them.
When the schedule has no such instant left, the probe is excluded with a ``missed`` flag.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime

from mystery.study.model import Study
from mystery.study.plan import _Calendar, _gap


def next_slot(study: Study, after: datetime, others: Iterable[datetime],
              brand: str | None = None) -> datetime | None:
    """The first whole second at or after ``after`` inside the send windows and ``min_gap``
    away from each of ``others`` (the brand's other probes), never on a public holiday of
    ``brand``'s calendar (its own, else the study's); ``None`` if the schedule has none left."""
    code = study.calendar_of(study.brand(brand)) if brand is not None else study.holidays
    calendar = _Calendar(study, code)
    gap = _gap(study)
    taken = sorted(int(o.timestamp()) for o in others)
    t = calendar.first_open(math.ceil(after.timestamp()))
    while t is not None:
        clash = next((o for o in taken if abs(t - o) < gap), None)
        if clash is None:
            return datetime.fromtimestamp(t, UTC)
        t = calendar.first_open(clash + gap)
    return None
