"""The client pack's page: one self-contained HTML file (tables, inline SVG charts, method).

Tables are great_tables (polars-native, publication quality, DESIGN.md "Libraries"); every cell
is a string formatted here (durations as in every other output) and escaped by great_tables,
so a brand name or a reply is text, never markup. Charts are the pack's own SVG files inlined:
their XML prologue dropped and every ``id`` prefixed per chart, since two charts drawn by
matplotlib both name their clip paths ``clip1``… and a page has one id space. The page asks
for nothing over a network: no font, script or image from anywhere, and a Content Security
Policy that forbids it (``default-src 'none'``), so a copy opened offline or printed by a
headless browser shows exactly what was written.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mystery.durations import format_duration
from mystery.pack.figures import Median, Standing, Where, YearLine

_STYLE = """
body { font-family: "DejaVu Sans", Arial, sans-serif; color: #222; margin: 2rem auto;
       max-width: 60rem; padding: 0 1rem; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
.sub { color: #555; margin-top: 0; }
.synthetic { background: #fff3cd; padding: .4rem .6rem; border-left: 4px solid #e0a800; }
figure { margin: 1rem 0; page-break-inside: avoid; }
figure svg { width: 100%; height: auto; }
.method { font-size: .85rem; color: #444; }
@page { size: A4; margin: 14mm; }
@media print { body { margin: 0; max-width: none; } h2 { page-break-after: avoid; } }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def interval(m: Median) -> str:
    """``19 min (12 min–41 min)``: the median and its 95 % interval; an end the data cannot
    bound reads "open"; no median (fewer than half answered) says so."""
    if m.value is None:
        return "— (fewer than half answered)" if m.probes else "—"
    low = format_duration(m.low) if m.low is not None else "open"
    high = format_duration(m.high) if m.high is not None else "open"
    return f"{format_duration(m.value)} ({low}–{high})"


def _rate(m: Median) -> str:
    return "—" if m.rate is None else f"{m.answered}/{m.probes} ({m.rate:.0%})"


def _table(columns: Sequence[str], rows: Sequence[Sequence[str]], *, id_: str, title: str,
           note: str) -> str:
    """A great_tables table from string cells; ``id_`` keeps its CSS ids stable."""
    import great_tables as gt
    import polars as pl

    frame = pl.DataFrame({c: [r[i] for r in rows] for i, c in enumerate(columns)},
                         schema={c: pl.String for c in columns})
    table = gt.GT(frame, id=id_).tab_header(title=title).tab_source_note(note)
    return str(table.as_raw_html())


def standing_table(client: str, standings: Sequence[Standing]) -> str:
    """One row per measure and channel, the client beside the peers: five columns, narrow
    enough for a printed page (a column per measure was not)."""
    cols = ("Channel", "Measure", client, "Peers (all probes pooled)", "Best peer")
    rows = []
    for s in standings:
        best = f"{s.best_peer}, {format_duration(s.best_peer_ack)}" if s.best_peer else "—"
        rank = f"{s.rank} of {s.ranked}" if s.rank is not None else f"unranked (of {s.ranked})"
        faster = "—" if s.faster_than is None else f"{s.faster_than:.0%} of {s.peers} peers"
        rows += [
            (s.channel, "Rank (1 = fastest median)", rank, "", best),
            (s.channel, "Faster than", faster, "", ""),
            (s.channel, "Acknowledgement: median (95 % interval)", interval(s.ack),
             interval(s.peer_ack), ""),
            (s.channel, "Resolution: median (95 % interval)", interval(s.resolution),
             interval(s.peer_resolution), ""),
            (s.channel, "Response rate", _rate(s.ack), _rate(s.peer_ack), ""),
        ]
    return _table(cols, rows, id_="standing", title=f"{client} against its peers, per channel",
                  note="Medians: Kaplan–Meier, unanswered probes censored at the cutoff, with "
                  "95 % intervals (log-log Greenwood); open: an end the data cannot bound; — "
                  "where there is no median. Best peer: the peer with the shortest median "
                  "acknowledgement. A brand that fewer than half answered ranks last.")


def year_table(client: str, lines: Sequence[YearLine]) -> str:
    cols = ("Channel", "Year", f"{client}: acknowledgement", f"{client}: answered",
            "Peers: acknowledgement", "Peers: answered")
    rows = [(y.channel, str(y.year), interval(y.client), _rate(y.client), interval(y.peers),
             _rate(y.peers)) for y in lines]
    return _table(cols, rows, id_="years", title=f"{client} year on year",
                  note="Median time to acknowledgement (Kaplan–Meier) with 95 % intervals; "
                  "years known only from published brand figures have no probe times and are "
                  "not shown.")


def where_table(client: str, rows: Sequence[Where]) -> str:
    cols = ("Channel", "By", "Which", "Acknowledgement: median (95 % interval)", "Answered")
    cells = [(w.channel, w.by, w.value, interval(w.ack), _rate(w.ack)) for w in rows]
    said = []
    for by, what in (("question", "question"), ("sent", "send window")):
        kind = [w for w in rows if w.by == by and w.ack.value is not None]
        if len(kind) > 1:
            said.append(f"by {what}, fastest: {kind[0].value} on {kind[0].channel}, slowest: "
                        f"{kind[-1].value} on {kind[-1].channel}")
    note = ("; ".join(said).capitalize() + ". " if said else "") + (
        "Fastest first within each kind. Send window by local time in the study's time zone: "
        "weekday = Mon–Fri 09:00–17:00, evening = other Mon–Fri times, weekend = Sat–Sun. "
        "Medians: Kaplan–Meier with 95 % intervals; a few probes each, so intervals are wide.")
    return _table(cols, cells, id_="where", title=f"Where {client} is fastest and slowest",
                  note=note)


_PROLOGUE = re.compile(r"\A.*?(?=<svg\b)", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_ID = re.compile(r'\bid="([^"]+)"')


def inline_svg(svg: Path, prefix: str) -> str:
    """An SVG file as markup for the page: prologue and metadata (the file's RDF block, for
    editors) dropped, ids made unique to ``prefix``."""
    text = _METADATA.sub("", _PROLOGUE.sub("", svg.read_text(encoding="utf-8")))
    for name in sorted(set(_ID.findall(text)), key=len, reverse=True):
        new = f"{prefix}-{name}"
        text = (text.replace(f'id="{name}"', f'id="{new}"').replace(f"#{name})", f"#{new})")
                .replace(f'"#{name}"', f'"#{new}"'))
    return text


@dataclass(frozen=True)
class Page:
    """What the page says: who, about which study, its sections and charts."""

    client: str
    title: str
    study: str
    synthetic: bool
    note: str
    tables: Sequence[str]
    charts: Sequence[tuple[str, Path]]  # caption, SVG file


def render(page: Page) -> str:
    """The whole page as one string of HTML."""
    charts = "\n".join(
        f'<figure>{inline_svg(svg, f"chart{n}")}<figcaption>{_e(caption)}</figcaption></figure>'
        for n, (caption, svg) in enumerate(page.charts, start=1))
    synthetic = ('<p class="synthetic">Synthetic data: simulated brands in the sandbox, not '
                 "real ones.</p>") if page.synthetic else ""
    return "\n".join([
        "<!doctype html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(page.client)}: client pack, {_e(page.title)}</title>",
        f"<style>{_STYLE}</style>", "</head>", "<body>",
        f'<header><h1 id="client">{_e(page.client)} against its peers</h1>',
        f'<p class="sub">{_e(page.title)} · study {_e(page.study)}</p>{synthetic}</header>',
        '<section id="tables">', *page.tables, "</section>",
        '<section id="charts"><h2>Charts</h2>', charts, "</section>",
        '<section id="method"><h2>Method</h2>',
        f'<p class="method">{_e(page.note)}.</p>',
        '<p class="method">Times come from the platforms\' own timestamps. A probe nobody '
        "answered by the cutoff is censored there, never dropped and never given the cutoff "
        "as its time.</p>", "</section>", "</body>", "</html>", "",
    ])
