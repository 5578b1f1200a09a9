"""Local time for analysis: business-hours elapsed time and the send window of each probe.

A reply that comes at 09:05 on Monday to a question sent at 17:55 on Friday took 63 hours on
the clock but ten minutes of a brand's working week; both are fair figures and the report
shows both. The definition of "open" is :mod:`mystery.hours` (local wall-clock windows, DST
and holidays as stated there); this module only makes it fast enough for a million probes.

How: business time is additive, so ``business_seconds(s, e) = B(e) - B(s)`` where ``B(t)`` is
the open time before ``t`` since some fixed day. ``B`` is piecewise linear between the open
intervals that :func:`mystery.hours.open_intervals` gives for each local day, so a few thousand
calls (one per day in the data) and a vectorised ``searchsorted`` replace one walk per probe.
A test holds this equal to :func:`mystery.hours.business_seconds` on random instants.

Whose hours: each brand's own customer-service hours where the study file declares them
(``Brand.hours``, carried to publish by ``study.json``), else :data:`DEFAULT_WINDOWS`. Rows are
grouped by window set, not walked one by one, so a thousand brands sharing three sets of hours
cost three vectorised passes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from mystery.hours import Window

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import polars as pl

#: Used when a study declares no business hours: a conventional office week.
DEFAULT_WINDOWS = (Window(days="mon-fri", start=time(9), end=time(17)),)

#: Send windows, by the local time the probe went out: Mon–Fri 09:00–17:00 is ``weekday``,
#: any other Mon–Fri time ``evening`` (early mornings included), Sat–Sun ``weekend``.
SEND_WINDOWS = ("weekday", "evening", "weekend")
_DAY_START, _DAY_END = 9, 17
_MS = 1000


def _intervals_ms(
    first: date, last: date, windows: Sequence[Window], tz: ZoneInfo, holidays: Collection[date]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Open intervals of every local day in ``[first, last]`` as epoch milliseconds."""
    import numpy as np

    from mystery.hours import open_intervals

    starts: list[int] = []
    ends: list[int] = []
    day = first
    while day <= last:
        if day not in holidays:
            for a, b in open_intervals(day, windows, tz):
                starts.append(round(a.timestamp() * _MS))
                ends.append(round(b.timestamp() * _MS))
        day += timedelta(days=1)
    return np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64)


def business_elapsed(
    sent_at: pl.Series,
    elapsed_seconds: pl.Series,
    windows: Sequence[Window] = DEFAULT_WINDOWS,
    tz: ZoneInfo | str = "UTC",
    holidays: Collection[date] = (),
) -> pl.Series:
    """Open seconds in ``[sent_at, sent_at + elapsed)`` for each row; null where either is.

    ``sent_at`` is a UTC datetime series, ``elapsed_seconds`` a float series (an answer time,
    or the cutoff for a censored probe). Equal to ``mystery.hours.business_seconds`` row by row.
    """
    return _business_many(sent_at, [elapsed_seconds], windows, tz, holidays)[0]


def _business_many(
    sent_at: pl.Series,
    elapsed: Sequence[pl.Series],
    windows: Sequence[Window],
    tz: ZoneInfo | str,
    holidays: Collection[date],
) -> list[pl.Series]:
    """``business_elapsed`` of several durations from the same send times: the open intervals
    and ``B(sent_at)`` are computed once, not once per duration."""
    import numpy as np
    import polars as pl

    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    start_ms = sent_at.dt.cast_time_unit("ms").dt.epoch("ms")
    ends = [start_ms + (e * _MS).round(0).cast(pl.Int64) for e in elapsed]
    start_known = start_ms.is_not_null().to_numpy()
    knowns = [start_known & e.is_not_null().to_numpy() for e in ends]
    outs = [np.full(len(sent_at), np.nan) for _ in ends]
    if any(known.any() for known in knowns):
        every = np.logical_or.reduce(knowns)
        s_all = start_ms.to_numpy()[every].astype(np.int64)
        e_max = max(int(e.to_numpy()[k].astype(np.int64).max())
                    for e, k in zip(ends, knowns, strict=True) if k.any())
        first = datetime.fromtimestamp(int(s_all.min()) / _MS, UTC).astimezone(zone).date()
        last = datetime.fromtimestamp(e_max / _MS, UTC).astimezone(zone).date()
        a, b = _intervals_ms(first - timedelta(days=2), last + timedelta(days=2), windows, zone,
                             frozenset(holidays))
        opened = np.zeros(len(sent_at), dtype=np.float64)
        opened[every] = _cumulative(s_all, a, b)
        for out, e, known in zip(outs, ends, knowns, strict=True):
            if known.any():
                closed = _cumulative(e.to_numpy()[known].astype(np.int64), a, b)
                out[known] = (closed - opened[known]) / _MS
    return [pl.Series(sent_at.name, out, dtype=pl.Float64).fill_nan(None) for out in outs]


def _cumulative(
    t: npt.NDArray[np.int64], a: npt.NDArray[np.int64], b: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """``B(t)``: open milliseconds before ``t`` (sum over intervals of the part before t)."""
    import numpy as np

    if a.size == 0:
        return np.zeros(t.shape, dtype=np.float64)
    if np.any(a[1:] < b[:-1]):  # overlapping intervals (windows never cross midnight, so
        total = np.zeros(t.shape, dtype=np.float64)  # never seen): sum each one exactly
        for lo, hi in zip(a.tolist(), b.tolist(), strict=True):
            total += np.clip(t - lo, 0, hi - lo)
        return total
    lengths = b - a
    before = np.concatenate(([0], np.cumsum(lengths)))
    k = np.searchsorted(a, t, side="right")  # intervals that opened at or before t
    last = np.clip(k - 1, 0, None)
    partial = np.where(k > 0, np.clip(t - a[last], 0, lengths[last]), 0)
    return (before[last] * (k > 0) + partial).astype(np.float64)


def send_window(sent_at: pl.Expr, tz: str) -> pl.Expr:
    """The send window (``SEND_WINDOWS``) of each probe, from its local time in ``tz``."""
    import polars as pl

    local = sent_at.dt.convert_time_zone(tz)
    hour = local.dt.hour()
    weekend = local.dt.weekday() >= 6  # polars: Monday = 1 … Sunday = 7
    return (
        pl.when(sent_at.is_null())
        .then(None)
        .when(weekend)
        .then(pl.lit("weekend"))
        .when((hour >= _DAY_START) & (hour < _DAY_END))
        .then(pl.lit("weekday"))
        .otherwise(pl.lit("evening"))
    )


def to_business(
    timings: pl.DataFrame,
    tz: str,
    windows: Sequence[Window] = DEFAULT_WINDOWS,
    holidays: Collection[date] = (),
    brand_hours: Mapping[str, Sequence[Window]] | None = None,
    brand_holidays: Mapping[str, Collection[date]] | None = None,
) -> pl.DataFrame:
    """Timings with every duration (acknowledgement, resolution, cutoff) in business seconds.

    ``brand_hours`` gives some brands their own windows and ``brand_holidays`` their own
    public holidays (by the ``brand`` column); every other row uses ``windows`` and
    ``holidays``. The result is still valid timings, so the same metrics (Kaplan–Meier
    included, censored at the cutoff's business length) apply unchanged. Probes without a send
    time are dropped: their business time cannot be known."""
    import numpy as np
    import polars as pl

    columns = ("ack_seconds", "resolution_seconds", "cutoff_seconds")
    t = timings.filter(pl.col("sent_at").is_not_null())
    groups = _window_groups(t["brand"], (tuple(windows), frozenset(holidays)),
                            brand_hours or {}, brand_holidays or {})
    if len(groups) == 1:  # one set of hours for every row: no need to split
        ((hours, closed), _), = groups
        converted = _business_many(t["sent_at"], [t[c] for c in columns], hours, tz, closed)
        return t.with_columns(v.alias(c) for v, c in zip(converted, columns, strict=True))
    out = {c: np.full(t.height, np.nan) for c in columns}
    for (hours, closed), rows in groups:
        part, mask = t.filter(rows), rows.to_numpy()
        converted = _business_many(part["sent_at"], [part[c] for c in columns], hours, tz,
                                   closed)
        for c, values in zip(columns, converted, strict=True):
            out[c][mask] = values.to_numpy()
    return t.with_columns(pl.Series(c, out[c], dtype=pl.Float64).fill_nan(None) for c in columns)


_Key = tuple[tuple[Window, ...], frozenset[date]]


def _window_groups(
    brands: pl.Series, default: _Key, brand_hours: Mapping[str, Sequence[Window]],
    brand_holidays: Mapping[str, Collection[date]],
) -> list[tuple[_Key, pl.Series]]:
    """The distinct (windows, holidays) in use, each with a boolean mask of its rows."""
    by_key: dict[_Key, list[str]] = {}
    for brand in dict.fromkeys([*brand_hours, *brand_holidays]):
        hours = tuple(brand_hours.get(brand) or ()) or default[0]
        closed = frozenset(brand_holidays[brand]) if brand in brand_holidays else default[1]
        if (hours, closed) != default:
            by_key.setdefault((hours, closed), []).append(brand)
    own = [(key, brands.is_in(names).fill_null(False)) for key, names in by_key.items()]
    declared = [b for names in by_key.values() for b in names]
    rest = ~brands.is_in(declared).fill_null(False)
    groups = [(key, rows) for key, rows in own if rows.any()]
    if rest.any() or not groups:
        groups.insert(0, (default, rest))
    return groups
