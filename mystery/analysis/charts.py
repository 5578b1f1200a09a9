"""Charts for people who present them: one house style, PNG (2×) and SVG, byte-stable.

Conventions (STYLE.md, research/ecosystem.md §2): time axes on a log scale labelled in human
units (1 min, 1 h, 1 day); brands drawn as dots, never bars (on a log axis a bar starts at an
arbitrary left edge, so its length means nothing); the client brand in colour (``colour``, the
client's own if they have one) and its peers grey when ``highlight`` is given; a brand that
fewer than half answered drawn distinctly at the cutoff, never as a short time; every chart is
titled by the study's title with one named statistic beneath it, and carries its method note
(n, dates, channels, cutoff); a synthetic year says so. ``aspect="slide"`` draws 16:9
(1920 × 1080 px at 2×) for a deck; the default is a report page's width with a height that grows.

Byte-stable because CI commits these files: the style fixes ``svg.hashsalt`` and the font
(DejaVu Sans ships with matplotlib), SVGs are saved without a date and PNGs without a software
tag, and figures are built with ``matplotlib.figure.Figure`` (no pyplot state, Agg for PNG).
"""

from __future__ import annotations

import math
import re
import statistics
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mystery.durations import format_duration, short_duration

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

STYLE = "mystery.analysis.house"
#: The default client colour: a strong blue, not red (red reads "bad" in a speed ranking).
HIGHLIGHT, PEER, BASE = "#1764ab", "#a9a9a9", "#44617b"
_TICKS = (
    (1.0, "1 s"), (10.0, "10 s"), (60.0, "1 min"), (600.0, "10 min"), (3600.0, "1 h"),
    (21600.0, "6 h"), (86400.0, "1 day"), (604800.0, "1 week"), (2592000.0, "30 days"),
)  # fmt: skip
WIDTH = 8.0  # inches; PNG at 200 dpi is 1600 px wide, a report page
SLIDE = (9.6, 5.4)  # inches: 16:9, PNG at 200 dpi is 1920 × 1080, a slide at 2×
ASPECTS = ("report", "slide")
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


def check_colour(colour: str) -> str:
    """``colour`` when it is ``#RRGGBB``; a ValueError saying how to write one otherwise."""
    if not _COLOUR.fullmatch(colour):
        raise ValueError(f"{colour!r} is not a colour; write it as #RRGGBB, e.g. '#1764ab'")
    return colour.lower()


@dataclass(frozen=True)
class Bar:
    """One brand in a ranking. ``seconds`` None: no time; drawn to ``censored_at`` (hatched)
    when the brand's time lies beyond the cutoff, or as a note when it is simply unknown."""

    brand: str
    seconds: float | None
    answered: int | None = None
    probes: int | None = None
    censored_at: float | None = None
    label: str = ""  # what the axis says, when not the brand alone ("Fresh Lane (x)")

    @property
    def name(self) -> str:
        """The bar's label: highlighting matches ``brand``, whatever the label adds."""
        return self.label or self.brand


@dataclass(frozen=True)
class YearRange:
    """One year of a channel in the year-on-year chart."""

    year: int
    synthetic: bool
    fastest: tuple[str, float] | None
    slowest: tuple[str, float] | None
    median: float | None = None
    client: tuple[str, float] | None = None


@dataclass(frozen=True)
class ClientYear:
    """The client's median (with its 95 % interval) and the peer median in one year."""

    year: int
    client: float | None
    low: float | None
    high: float | None
    peers: float | None


@dataclass(frozen=True)
class Curve:
    """One Kaplan–Meier curve: share of probes still unanswered at each grid time."""

    label: str
    synthetic: bool
    grid: Sequence[float]
    waiting: Sequence[float]
    low: Sequence[float] = ()  # the 95 % band at each grid time (NaN: undefined)
    high: Sequence[float] = ()
    censored: Sequence[tuple[float, float]] = ()  # (time, share waiting) of censored probes


@dataclass(frozen=True)
class Point:
    """One brand's time inside a group (a sector) of the distribution chart."""

    group: str
    brand: str
    seconds: float


def _figure(height: float, aspect: str = "report") -> Figure:
    from matplotlib.figure import Figure

    if aspect not in ASPECTS:
        raise ValueError(f"aspect {aspect!r}: one of {', '.join(ASPECTS)}")
    size = SLIDE if aspect == "slide" else (WIDTH, height)
    return Figure(figsize=size, layout="constrained")


def _finish(fig: Figure, title: str, note: str, subtitle: str = "") -> None:
    """Title top left with its statistic beneath (``subtitle``), method note bottom left,
    space reserved for all three."""
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    width, height = fig.get_figwidth(), fig.get_figheight()
    lines = textwrap.wrap(note, width=int(width * 17))
    bottom = 0.08  # inches, below the note
    reserve = (bottom + len(lines) * 0.135 + 0.15) / height  # 7 pt × 1.35 line spacing
    fig.text(0.01, bottom / height, "\n".join(lines), fontsize=7, color="#555555",
             va="bottom", ha="left", linespacing=1.35)
    # Title and statistic are placed here, outside the layout (which would otherwise reserve
    # the title's height a second time inside the rectangle), and the axes laid out below.
    title_lines = textwrap.wrap(title, width=int(width * 9.5)) or [""]
    edge = 0.1 / height
    fig.suptitle("\n".join(title_lines), x=0.01, y=1.0 - edge, ha="left", va="top",
                 fontsize=11, fontweight="bold").set_in_layout(False)
    used = 0.1 + len(title_lines) * 0.2  # inches from the top edge: 11 pt lines
    if subtitle:
        fig.text(0.01, 1.0 - (used + 0.04) / height, subtitle, fontsize=9, color="#333333",
                 va="top", ha="left").set_in_layout(False)
        used += 0.22
    top = 1.0 - (used + 0.12) / height
    engine = fig.get_layout_engine()
    if isinstance(engine, ConstrainedLayoutEngine):
        engine.set(rect=(0.0, reserve, 1.0, top - reserve))  # left, bottom, width, height


def _save(fig: Figure, stem: Path) -> list[Path]:
    """Lay the figure out once, then draw it once per format.

    ``savefig`` with a layout engine draws every figure twice (a dry run to lay it out, then
    the real one), so PNG and SVG cost four draws. Here the constrained layout runs once, at
    the PNG's resolution exactly as savefig's dry run would, and the engine is then removed:
    two draws, the same bytes."""
    import matplotlib as mpl
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    stem.parent.mkdir(parents=True, exist_ok=True)
    png, svg = stem.with_suffix(".png"), stem.with_suffix(".svg")
    FigureCanvasAgg(fig)
    engine = fig.get_layout_engine()
    if engine is not None:
        dpi = fig.dpi
        fig.dpi = mpl.rcParams["savefig.dpi"]
        engine.execute(fig)
        fig.dpi = dpi
        fig.set_layout_engine(None)
    # zlib level 3: 5 % larger than the default 6, at half the encoding time.
    fig.savefig(png, format="png", metadata={"Software": None}, pil_kwargs={"compress_level": 3})
    fig.savefig(svg, format="svg", metadata={"Date": None})
    _stable_clip_ids(svg)
    return [png, svg]


_CLIP_ID = re.compile(r'<clipPath id="(p[0-9a-f]{10})">')


def _stable_clip_ids(svg: Path) -> None:
    """Name the SVG's clip paths ``clip1``, ``clip2``… in order of appearance.

    matplotlib names each clip path by a hash of its rectangle's floats, and constrained layout
    with several panels can land those floats a last bit apart from one process to the next (its
    solver's order depends on memory layout): the drawing is the same to the pixel and to the
    sixth decimal of every coordinate, but the ids, and so the bytes, were not. A committed chart
    must regenerate byte for byte on every run (``mystery publish --check``)."""
    text = svg.read_bytes().decode("utf-8")  # bytes: no newline translation on any OS
    names = {old: f"clip{n}" for n, old in enumerate(_CLIP_ID.findall(text), start=1)}
    if names:
        text = re.sub(r"\bp[0-9a-f]{10}\b", lambda m: names.get(m.group(), m.group()), text)
        svg.write_bytes(text.encode("utf-8"))


def render(draw: Any, stem: Path) -> list[Path]:
    """Run ``draw() -> Figure`` inside the house style (from matplotlib's defaults, so a
    user's matplotlibrc cannot change committed bytes) and save PNG and SVG."""
    import matplotlib.style

    with matplotlib.style.context(["default", STYLE]):
        fig = draw()
        return _save(fig, stem)


def _time_axis(ax: Axes, low: float, high: float, axis: str = "x") -> None:
    from matplotlib.ticker import FixedLocator, NullLocator

    low, high = max(low, 1.0), max(high, low * 10)
    ticks = [(v, label) for v, label in _TICKS if low <= v <= high]
    if len(ticks) > 6:  # keep the round units readers anchor on
        ticks = [(v, label) for v, label in ticks if label not in ("10 s", "10 min", "6 h")]
    target = ax.xaxis if axis == "x" else ax.yaxis
    if axis == "x":
        ax.set_xscale("log")
        ax.set_xlim(low, high)
    else:
        ax.set_yscale("log")
        ax.set_ylim(low, high)
    target.set_major_locator(FixedLocator([v for v, _ in ticks]))
    target.set_ticklabels([label for _, label in ticks])
    target.set_minor_locator(NullLocator())


def _colour(brand: str, highlight: Sequence[str], colour: str = HIGHLIGHT) -> str:
    if not highlight:
        return BASE
    return colour if brand in highlight else PEER


def _share(bar: Bar) -> str:
    if bar.answered is None or bar.probes is None or bar.answered == bar.probes:
        return ""
    return f"{bar.answered}/{bar.probes} answered"


def _shown(order: list[Bar], highlight: Sequence[str], limit: int) -> list[Bar | None]:
    """At most ``limit`` rows: the fastest and the slowest halves, highlighted brands always;
    None marks the gap. A ranking of 200 brands is unreadable; the tables list them all."""
    if len(order) <= limit:
        return list(order)
    keep = set(range(limit // 2)) | set(range(len(order) - limit // 2, len(order)))
    keep |= {i for i, b in enumerate(order) if b.brand in highlight}
    shown: list[Bar | None] = []
    for i, bar in enumerate(order):
        if i in keep:
            shown.append(bar)
        elif shown and shown[-1] is not None:
            shown.append(None)
    return shown


def ranking(
    bars: Sequence[Bar], stem: Path, *, title: str, xlabel: str, note: str,
    highlight: Sequence[str] = (), limit: int = 30, subtitle: str = "",
    colour: str = HIGHLIGHT, aspect: str = "report",
) -> list[Path]:
    """A dot per brand, fastest at the top, on a faint guide line across the whole axis (a
    Cleveland dot plot: the position is the value, nothing is a length from an arbitrary
    edge). A brand that fewer than half answered is a hollow arrow at the cutoff ("beyond
    it"); one whose time is not published, a note. ``aspect="slide"`` keeps 16 rows."""
    if aspect == "slide":
        limit = min(limit, 16)
    timed = sorted((b for b in bars if b.seconds is not None), key=lambda b: (b.seconds, b.name))
    censored = sorted((b for b in bars if b.seconds is None and b.censored_at),
                      key=lambda b: b.name)
    unknown = sorted((b for b in bars if b.seconds is None and not b.censored_at),
                     key=lambda b: b.name)
    order: list[Bar | None] = [*_shown([*timed, *censored, *unknown], highlight, limit)]
    hidden = len(bars) - sum(b is not None for b in order)
    ends = [b.seconds or b.censored_at or 0.0 for b in order if b] or [3600.0]
    low = min([e for e in ends if e > 0] or [60.0]) / 3
    cutoff = max((b.censored_at or 0.0 for b in order if b), default=0.0)
    high = max([(b.seconds or 0.0) * 14 for b in timed] + [cutoff * 1.6, low * 100])

    def draw() -> Figure:
        fig = _figure(1.9 + 0.3 * max(len(order), 1), aspect)
        ax = fig.add_subplot()
        guides: list[list[tuple[float, float]]] = []
        dots: list[tuple[float, int, str]] = []
        beyond: list[tuple[float, int, str]] = []
        for y, bar in enumerate(order):
            if bar is None:
                ax.text(low * 1.3, y, f"… {hidden} brands in between (all in the tables)",
                        va="center", fontsize=8, color="#666666", fontstyle="italic")
                continue
            guides.append([(low, y), (high, y)])
            tint = _colour(bar.brand, highlight, colour)
            weight = "bold" if bar.brand in highlight else "normal"
            if bar.seconds is not None:
                dots.append((bar.seconds, y, tint))
                text = " · ".join(t for t in (format_duration(bar.seconds), _share(bar)) if t)
                ax.text(bar.seconds * 1.18, y, text, va="center", fontsize=8, color="#333333",
                        fontweight=weight)
            elif bar.censored_at:
                beyond.append((bar.censored_at, y, tint))
                share = _share(bar) or "none answered"
                ax.text(bar.censored_at / 1.3, y, f"fewer than half answered by the cutoff "
                        f"({share})", va="center", ha="right", fontsize=8, color="#333333",
                        fontstyle="italic", fontweight=weight)
            else:
                ax.text(low * 1.3, y, f"time not published ({_share(bar) or 'all answered'})",
                        va="center", fontsize=8, color="#666666", fontstyle="italic")
        ax.add_collection(_line_collection()(guides, colors="#ececec", linewidths=0.8,
                                             zorder=1))
        if dots:
            xs, ys, faces = zip(*dots, strict=True)
            ax.scatter(xs, ys, s=46, c=list(faces), edgecolors="white", linewidths=0.6,
                       zorder=3)
        if beyond:
            xs, ys, edges = zip(*beyond, strict=True)
            ax.scatter(xs, ys, s=52, marker=">", facecolors="white", edgecolors=list(edges),
                       linewidths=1.3, zorder=3)
        ax.set_yticks(range(len(order)), [b.name if b else "" for b in order])
        for label, bar in zip(ax.get_yticklabels(), order, strict=True):
            if bar and bar.brand in highlight:
                label.set_color(colour)
                label.set_fontweight("bold")
        ax.set_ylim(len(order) - 0.5, -0.5)
        if cutoff:
            ax.axvline(cutoff, color="#777777", lw=0.8, ls=":")
            ax.text(cutoff, 1.0, f"cutoff {short_duration(cutoff)}", fontsize=7,
                    color="#555555", va="bottom", ha="center", transform=ax.get_xaxis_transform())
        _time_axis(ax, low, high)
        ax.set_xlabel(xlabel)
        _finish(fig, title, note, subtitle)
        return fig

    return render(draw, stem)


def _line_collection() -> Any:
    from matplotlib.collections import LineCollection

    return LineCollection


def yoy(
    panels: Mapping[str, Sequence[YearRange]], stem: Path, *, title: str, note: str,
    client: str = "", subtitle: str = "", colour: str = HIGHLIGHT, aspect: str = "report",
) -> list[Path]:
    """Dumbbells per channel: fastest to slowest brand each year, median as a diamond. A year
    whose fastest brand is also its slowest (one brand ranked) is one dot with one label."""
    values = [v for rows in panels.values() for r in rows
              for v in (r.fastest and r.fastest[1], r.slowest and r.slowest[1], r.median,
                        r.client and r.client[1]) if v]
    low, high = (min(values) / 4, max(values) * 4) if values else (60.0, 86400.0)
    rows_total = sum(len(rows) for rows in panels.values())

    def draw() -> Figure:
        LineCollection = _line_collection()
        fig = _figure(2.3 + 0.62 * rows_total + 0.5 * len(panels), aspect)
        axes = fig.subplots(len(panels) or 1, 1, squeeze=False,
                            height_ratios=[max(len(r), 1) + 0.6 for r in panels.values()] or None)
        for ax, (channel, rows) in zip(axes[:, 0], panels.items(), strict=False):
            # One artist per kind of mark (not one per year): far faster to draw and save.
            bars: list[list[tuple[float, float]]] = []
            marks: dict[str, list[tuple[float, int, str]]] = {"fast": [], "slow": [], "mid": []}
            for y, r in enumerate(rows):
                alone = r.fastest is not None and r.fastest == r.slowest
                if r.fastest and r.slowest and not alone:
                    bars.append([(r.fastest[1], y), (r.slowest[1], y)])
                ends = ((r.fastest, "fast", "#00798c"),) if alone else (
                    (r.fastest, "fast", "#00798c"), (r.slowest, "slow", "#2e4057"))
                for point, kind, tint in ends:
                    if point is None:
                        continue
                    marks[kind].append((point[1], y, "white" if r.synthetic else tint))
                    # Fastest above its dot reading right, slowest below reading left: the
                    # two never collide, and neither runs into the year labels.
                    above = kind == "fast"
                    what = " (the only brand ranked)" if alone else ""
                    ax.text(point[1], y - 0.2 if above else y + 0.2,
                            f"{point[0]} {format_duration(point[1])}{what}", fontsize=7.5,
                            ha="left" if above else "right", va="bottom" if above else "top")
                if r.median:
                    marks["mid"].append((r.median, y, "white" if r.synthetic else "#edae49"))
            ax.add_collection(LineCollection(bars, colors="#c9c9c9", linewidths=3,
                                             capstyle="round", zorder=1))
            for kind, edge, marker, size in (("fast", "#00798c", "o", 42),
                                             ("slow", "#2e4057", "o", 42),
                                             ("mid", "#b07d10", "D", 30)):
                if marks[kind]:
                    xs, ys, faces = zip(*marks[kind], strict=True)
                    ax.scatter(xs, ys, s=size, marker=marker, c=list(faces), edgecolors=edge,
                               linewidths=1.4, zorder=3)
            clients = [(r.client[1], y) for y, r in enumerate(rows) if r.client]
            if clients:
                ax.scatter(*zip(*clients, strict=True), marker="*", s=110, color=colour,
                           zorder=5)
            labels = [f"{r.year} (synthetic)" if r.synthetic else str(r.year) for r in rows]
            ax.set_yticks(range(len(rows)), labels)
            ax.set_ylim(len(rows) - 0.45, -0.6)
            ax.set_title(f"channel: {channel}", fontsize=9, loc="left")
            _time_axis(ax, low, high)
        last = axes[-1, 0]
        last.set_xlabel("brand time to acknowledgement (log scale)")
        every = [r for rows in panels.values() for r in rows]
        handles = [
            last.scatter([], [], s=42, color="#00798c", label="fastest brand"),
            last.scatter([], [], s=42, color="#2e4057", label="slowest brand"),
        ]
        if any(r.median for r in every):
            handles.append(last.scatter([], [], marker="D", s=30, color="#edae49",
                                        label="median, all probes"))
        if any(r.synthetic for r in every):
            handles.append(last.scatter([], [], s=42, color="white", edgecolors="#555555",
                                        label="hollow: synthetic year"))
        if client:
            handles.append(last.scatter([], [], marker="*", s=110, color=colour, label=client))
        axes[0, 0].legend(handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0),
                          ncols=min(len(handles), 3), fontsize=7.5, borderaxespad=0.2)
        _finish(fig, title, note, subtitle)
        return fig

    return render(draw, stem)


def survival(
    panels: Mapping[str, Sequence[Curve]], stem: Path, *, title: str, note: str,
    subtitle: str = "",
) -> list[Path]:
    """Kaplan–Meier step curves per channel: share of probes still waiting, one per year."""
    grids = [g for curves in panels.values() for c in curves
             for g, w in zip(c.grid, c.waiting, strict=True) if not math.isnan(w)]
    low, high = (min(grids), max(grids)) if grids else (60.0, 604800.0)

    def draw() -> Figure:
        fig = _figure(1.6 + 2.6 * max(len(panels), 1))
        axes = fig.subplots(len(panels) or 1, 1, squeeze=False)
        for ax, (channel, curves) in zip(axes[:, 0], panels.items(), strict=False):
            for curve in curves:
                points = [(g, w) for g, w in zip(curve.grid, curve.waiting, strict=True)
                          if not math.isnan(w)]
                (line,) = ax.step([g for g, _ in points], [w * 100 for _, w in points],
                                  where="post", linestyle="--" if curve.synthetic else "-",
                                  label=curve.label)
                colour = line.get_color()
                if curve.low and curve.high:
                    ax.fill_between(curve.grid, [v * 100 for v in curve.low],
                                    [v * 100 for v in curve.high], step="post", alpha=0.15,
                                    color=colour, linewidth=0)
                if curve.censored:
                    ax.plot([c for c, _ in curve.censored], [s * 100 for _, s in curve.censored],
                            linestyle="none", marker="|", markersize=8, color=colour,
                            clip_on=False)
            ax.axhline(50, color="#999999", lw=0.7, ls=":")
            ax.set_ylim(0, 102)
            ax.set_ylabel("% of probes still unanswered")
            ax.set_title(f"channel: {channel}", fontsize=9, loc="left")
            ax.grid(True, axis="both")
            _time_axis(ax, low, high)
            ax.legend(loc="upper right")
        axes[-1, 0].set_xlabel("time since the probe was sent (log scale); dashed: synthetic; "
                               "shaded: 95 % band; |: probes censored (unanswered) there")
        _finish(fig, title, note, subtitle)
        return fig

    return render(draw, stem)


def distribution(
    panels: Mapping[str, Sequence[Point]], stem: Path, *, title: str, xlabel: str, note: str,
    highlight: Sequence[str] = (), subtitle: str = "", colour: str = HIGHLIGHT,
    aspect: str = "report",
) -> list[Path]:
    """Brand times by group (sector) per channel: one dot per brand, the group median a bar.

    A highlighted brand's name is written in the gap above its group's row, where no dot can
    be: dots lie within 0.14 of their row (the jitter) plus their radius, sector medians
    within 0.3, and the label is centred half-way between two rows. Brands highlighted in
    the same group share one label, so two labels never meet either."""
    values = [p.seconds for points in panels.values() for p in points]
    low, high = (min(values) / 3, max(values) * 4) if values else (60.0, 86400.0)
    groups_total = sum(len({p.group for p in points}) for points in panels.values())

    def draw() -> Figure:
        fig = _figure(1.9 + 0.5 * groups_total + 0.45 * len(panels), aspect)
        axes = fig.subplots(len(panels) or 1, 1, squeeze=False, height_ratios=[
            len({p.group for p in points}) + 0.9 for points in panels.values()] or None)
        for ax, (channel, points) in zip(axes[:, 0], panels.items(), strict=False):
            groups = sorted({p.group for p in points})
            dots: list[tuple[float, float, str]] = []
            medians: list[list[tuple[float, float]]] = []
            for y, group in enumerate(groups):
                members = sorted((p for p in points if p.group == group),
                                 key=lambda p: (p.seconds, p.brand))
                named: list[Point] = []
                # Fixed offsets (no randomness in output), centred on the row however many
                # brands the group has: a sector of one brand has its dot on its median's bar.
                centre = (min(len(members), 5) - 1) / 2
                for i, p in enumerate(members):
                    jitter = ((i % 5) - centre) * 0.07
                    dots.append((p.seconds, y + jitter, _colour(p.brand, highlight, colour)))
                    if p.brand in highlight:
                        named.append(p)
                if named:
                    ax.text(named[0].seconds, y - 0.5, " · ".join(
                        f"{p.brand} {format_duration(p.seconds)}" for p in named), fontsize=7.5,
                        color=colour, va="center", ha="left", fontweight="bold")
                middle = statistics.median(p.seconds for p in members)
                medians.append([(middle, y - 0.3), (middle, y + 0.3)])
            # Highlighted dots last, so that a peer's dot never hides the client's.
            dots.sort(key=lambda d: d[2] == colour and bool(highlight))
            xs, ys, colours = zip(*dots, strict=True)
            ax.scatter(xs, ys, s=30, zorder=3, c=list(colours), edgecolors="white")
            ax.add_collection(_line_collection()(medians, colors="#333333", linewidths=1.2))
            ax.set_yticks(range(len(groups)), [
                f"{g} ({sum(p.group == g for p in points)})" for g in groups])
            ax.set_ylim(len(groups) - 0.5, -0.5 - (0.4 if highlight else 0.0))
            ax.set_title(f"channel: {channel}", fontsize=9, loc="left")
            _time_axis(ax, low, high)
        axes[-1, 0].set_xlabel(xlabel)
        _finish(fig, title, note, subtitle)
        return fig

    return render(draw, stem)


def client_years(
    panels: Mapping[str, Sequence[ClientYear]], stem: Path, *, title: str, subtitle: str,
    note: str, client: str, colour: str = HIGHLIGHT, aspect: str = "slide",
) -> list[Path]:
    """Per channel, the client's median each year (a line of dots, its 95 % interval as a
    whisker; an end the data cannot bound runs to the axis edge, an arrowhead there) against
    the peer median (grey, dashed)."""
    values = [v for rows in panels.values() for r in rows
              for v in (r.client, r.low, r.high, r.peers) if v]
    low, high = (min(values) / 3, max(values) * 3) if values else (60.0, 86400.0)
    years = sorted({r.year for rows in panels.values() for r in rows})

    def draw() -> Figure:
        fig = _figure(2.4 + 2.2 * max(len(panels), 1), aspect)
        axes = fig.subplots(1, len(panels) or 1, squeeze=False, sharey=True)
        for ax, (channel, rows) in zip(axes[0, :], panels.items(), strict=False):
            ax.grid(False, axis="x")
            ax.grid(True, axis="y")
            peers = [(r.year, r.peers) for r in rows if r.peers]
            if peers:
                ax.plot(*zip(*peers, strict=True), color=PEER, ls="--", marker="o", ms=4,
                        label="peer median")
            mine = [(r.year, r.client) for r in rows if r.client]
            if mine:
                ax.plot(*zip(*mine, strict=True), color=colour, marker="o", ms=6, lw=2,
                        label=client)
            for r in rows:
                if r.client:
                    ax.vlines(r.year, r.low or low, r.high or high, color=colour, lw=1.2,
                              alpha=0.6)
                    # An end the data cannot bound runs to the edge, marked as open.
                    for end, edge, mark in ((r.low, low, "v"), (r.high, high, "^")):
                        if end is None:
                            ax.scatter([r.year], [edge], marker=mark, s=30, color=colour,
                                       clip_on=False, zorder=4)
            ax.set_xticks(years, [str(y) for y in years])
            ax.set_xlim(years[0] - 0.5, years[-1] + 0.5)
            ax.set_title(f"channel: {channel}", fontsize=9, loc="left")
            _time_axis(ax, low, high, axis="y")
            if any(r.client and (r.low is None or r.high is None) for r in rows):
                ax.scatter([], [], marker="^", s=30, color=colour,
                           label="95 % interval open (unbounded) this way")
            # Above the axes, beside the panel's title: never over a whisker or a line.
            ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=3, fontsize=7.5,
                      borderaxespad=0.2)
        axes[0, 0].set_ylabel("median time to acknowledgement (log scale)")
        _finish(fig, title, note, subtitle)
        return fig

    return render(draw, stem)
