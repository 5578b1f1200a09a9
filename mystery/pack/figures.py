"""The client pack's numbers: one client brand against its peers, from timings alone.

Every time is a Kaplan–Meier median with unanswered probes censored at the cutoff (DESIGN.md
rule 2), with its 95 % interval (rule 6, :func:`mystery.analysis.km.median_interval`), so the
pack shows one statistic throughout and says so; an undefined median or interval end stays
empty (rule 7). The *peer median* pools every peer probe on the channel (the median a customer
of "the market" meets), the *best peer* is the peer brand with the shortest median. The rank
counts brands from the fastest (1); a brand with no median (fewer than half answered) ranks
after every brand with one. The percentile is the share of peers the client is faster than.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mystery.analysis import km, metrics

if TYPE_CHECKING:
    import polars as pl


@dataclass(frozen=True)
class Median:
    """A KM median with its 95 % interval; None where the data cannot give a number."""

    value: float | None
    low: float | None
    high: float | None
    probes: int
    answered: int

    @property
    def rate(self) -> float | None:
        return self.answered / self.probes if self.probes else None


def median_of(part: pl.DataFrame, column: str = "ack_seconds") -> Median:
    """The KM median of ``column`` (``ack_seconds`` or ``resolution_seconds``) over counted
    probes: a probe without that time is censored at its cutoff."""
    import polars as pl

    t = metrics.counted(part)
    done = t[column].is_not_null()
    times = pl.select(pl.when(done).then(t[column]).otherwise(
        t["cutoff_seconds"].fill_null(float("inf")))).to_series()
    flags = done.to_numpy()
    value = km.median(times.to_numpy(), flags) if t.height else None
    low, high = km.median_interval(times.to_numpy(), flags) if t.height else (None, None)
    return Median(value, low, high, t.height, int(flags.sum()))


@dataclass(frozen=True)
class Standing:
    """The client on one channel of one study, against its peers there."""

    channel: str
    ack: Median
    resolution: Median
    peers: int
    peer_ack: Median
    peer_resolution: Median
    best_peer: str | None
    best_peer_ack: float | None
    rank: int | None
    ranked: int
    faster_than: float | None  # share of peers the client is faster than (its percentile)


def _brand_medians(t: pl.DataFrame) -> list[tuple[str, float | None]]:
    """Each brand's median, fastest first, brands without one last (by name)."""
    medians = [(str(brand), median_of(part).value)
               for (brand,), part in t.group_by("brand", maintain_order=True)]
    inf = float("inf")
    return sorted(medians, key=lambda m: (m[1] is None, m[1] if m[1] is not None else inf, m[0]))


def standings(timings: pl.DataFrame, client: str, peers: Sequence[str] = ()) -> list[Standing]:
    """One :class:`Standing` per channel the client was asked on, in channel order.

    ``peers``: the brands to compare with (all the study's other brands when empty)."""
    import polars as pl

    t = metrics.counted(timings)
    out = []
    for channel in sorted(t.filter(pl.col("brand") == client)["channel"].unique().to_list()):
        here = t.filter(pl.col("channel") == channel)
        if peers:
            here = here.filter(pl.col("brand").is_in([client, *peers]))
        mine = here.filter(pl.col("brand") == client)
        others = here.filter(pl.col("brand") != client)
        order = _brand_medians(here)
        rank = next(i for i, (brand, _) in enumerate(order, start=1) if brand == client)
        timed_peers = [(b, m) for b, m in order if b != client and m is not None]
        ack = median_of(mine)
        peer_count = others["brand"].n_unique()
        slower = sum(1 for b, m in order if b != client and (
            ack.value is not None and (m is None or m > ack.value)))
        out.append(Standing(
            channel=channel, ack=ack, resolution=median_of(mine, "resolution_seconds"),
            peers=peer_count, peer_ack=median_of(others),
            peer_resolution=median_of(others, "resolution_seconds"),
            best_peer=timed_peers[0][0] if timed_peers else None,
            best_peer_ack=timed_peers[0][1] if timed_peers else None,
            rank=rank if ack.value is not None else None, ranked=len(order),
            faster_than=slower / peer_count if peer_count else None,
        ))
    return out


@dataclass(frozen=True)
class YearLine:
    """The client and the peer median on one channel in one year (the year-on-year line)."""

    channel: str
    year: int
    client: Median
    peers: Median


def year_lines(timings: pl.DataFrame, client: str, peers: Sequence[str] = ()) -> list[YearLine]:
    """Per channel × year where the client has probes: its median and the peers' median.
    Years known only from published brand figures have no probe times and are not here."""
    import polars as pl

    t = metrics.counted(timings)
    if peers:
        t = t.filter(pl.col("brand").is_in([client, *peers]))
    lines = []
    keys = t.filter(pl.col("brand") == client).select("channel", "year").unique().sort(
        "channel", "year")
    for channel, year in keys.iter_rows():
        here = t.filter((pl.col("channel") == channel) & (pl.col("year") == year))
        lines.append(YearLine(channel, int(year), median_of(here.filter(pl.col("brand") == client)),
                              median_of(here.filter(pl.col("brand") != client))))
    return lines


@dataclass(frozen=True)
class Where:
    """The client's median on one channel for one question, or one send window (weekday,
    evening, weekend in the study's time zone): where it is fastest and where slowest."""

    channel: str
    by: str  # "question" or "sent"
    value: str
    ack: Median


def where(timings: pl.DataFrame, client: str, timezone: str = "UTC") -> list[Where]:
    """The client's median per channel × question and per channel × send window; within each
    kind, fastest first (no median: last)."""
    import polars as pl

    from mystery.analysis.business import send_window

    t = metrics.counted(timings).filter(pl.col("brand") == client).with_columns(
        window=send_window(pl.col("sent_at"), timezone))
    inf = float("inf")
    rows: list[Where] = []
    for by, column in (("question", "question"), ("sent", "window")):
        kind = [Where(str(channel), by, str(value or "(unknown)"), median_of(part))
                for (channel, value), part in t.group_by("channel", column, maintain_order=True)]
        rows += sorted(kind, key=lambda w: (w.ack.value is None,
                                            inf if w.ack.value is None else w.ack.value,
                                            w.channel, w.value))
    return rows
