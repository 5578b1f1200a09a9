"""Which charts under ``results/`` are current, known without drawing them: ``charts.json``.

Why not compare chart bytes: a chart's bytes are not portable. matplotlib prints SVG
coordinates with 6 decimals, and a coordinate on a rounding tie moves by one unit in the last
place under another CPU's SIMD code paths in numpy (343.03843750000004 prints ``343.038438``
on one machine, ``343.038437`` on the next), so a byte comparison called committed charts
stale on machines that drew nothing different (DESIGN.md, rule 5).

So every results folder keeps one manifest, ``charts.json``: for each chart, the
**fingerprint of what it draws** (the chart's data and options, the drawing code's source
(:func:`chart_code`), the house style and the matplotlib release) and the hash of each of its
files as they were drawn. A chart is current when today's fingerprint equals the manifest's
and its files still have the recorded hashes; it is redrawn only otherwise, so no machine
rewrites a committed chart whose inputs did not change, and a missing or hand-edited chart is
caught without drawing it.

The fingerprint must itself be portable. Every number a chart draws is computed from
millisecond timings by exact or correctly rounded arithmetic (counts, Kaplan–Meier medians that
are observed times, shares of integers, means, a grid built in decimal arithmetic), so its
``repr`` would already agree everywhere; numbers are nevertheless written with 12 significant
digits, a guard against a library summing in another order on another machine, and still a
thousand times finer than the 6 decimals an SVG coordinate can show.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from functools import cache
from pathlib import Path
from typing import Any

#: The modules whose source decides what a chart looks like, beside the house style: the
#: drawing code and the duration labels it writes (paths inside the mystery package).
DRAWING_CODE = ("analysis/charts.py", "durations.py")
FILE = "charts.json"
_ABOUT = ("Fingerprints of what each chart draws (data, options, chart code, matplotlib) and "
          "the hash of each file as drawn; see README, 'Publishing'. Charts are not compared "
          "byte for byte: their bytes differ from one CPU to another.")


@dataclass(frozen=True)
class Entry:
    """One chart in a manifest: what it drew, and its files' hashes when drawn."""

    fingerprint: str
    files: Mapping[str, str]
    chart_code: str = ""
    matplotlib: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "files": dict(sorted(self.files.items())),
                "chart_code": self.chart_code, "matplotlib": self.matplotlib}


def matplotlib_version() -> str:
    """The installed matplotlib's version, read from its metadata: no import of matplotlib
    (a second or so), which a publish with nothing to draw never needs."""
    from importlib.metadata import version

    return version("matplotlib")


@cache
def chart_code() -> str:
    """The drawing code's version: the sha256 of the source of :data:`DRAWING_CODE`, line ends
    normalised so that a Windows checkout agrees. Any edit redraws every chart once.

    Why a hash and not a number bumped by hand (as it was): a bump was forgotten. Labels
    under an hour came to show seconds (``17 min 54 s``) while a committed chart still read
    ``18 min`` under a fingerprint that called it current; a redraw for an edited comment is
    the cheaper mistake. The tests draw every committed chart afresh and compare its pixels,
    which catches a module that decides the drawing and is missing from the list."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for name in DRAWING_CODE:
        digest.update(name.encode() + b"\0")
        digest.update((package / name).read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return digest.hexdigest()


def _style_bytes() -> bytes:
    """The house style, line ends normalised so that a Windows checkout agrees."""
    style = Path(__file__).with_name("house.mplstyle").read_bytes()
    return style.replace(b"\r\n", b"\n")


def _number(value: float) -> str:
    return "nan" if math.isnan(value) else format(value, ".12g")


def _plain(value: Any) -> Any:
    """``value`` as JSON-ready data, keeping every order that changes the drawing."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return _number(float(value))
    if is_dataclass(value) and not isinstance(value, type):
        return {"type": type(value).__name__,
                **{f.name: _plain(getattr(value, f.name)) for f in fields(value)}}
    if isinstance(value, Mapping):  # panels are drawn in this order: keep it
        return [[_plain(k), _plain(v)] for k, v in value.items()]
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    raise TypeError(f"cannot fingerprint a {type(value).__name__}: {value!r}")


def fingerprint(kind: str, name: str, data: Any, options: Mapping[str, Any],
                matplotlib: str) -> str:
    """The sha256 of a canonical serialisation of everything that decides a chart's pixels."""
    payload = {
        "kind": kind, "name": name, "data": _plain(data),
        "options": {key: _plain(value) for key, value in sorted(options.items())},
        "chart_code": chart_code(), "matplotlib": matplotlib,
        "style": hashlib.sha256(_style_bytes()).hexdigest(),
    }
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_hash(path: Path) -> str | None:
    """The sha256 of a file's bytes; None when it does not exist."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def read(folder: Path) -> dict[str, Entry]:
    """The manifest of ``folder``; empty when there is none or it cannot be read (every chart
    is then redrawn, which is always safe)."""
    try:
        raw = json.loads((folder / FILE).read_bytes())
        return {name: Entry(str(e["fingerprint"]), {str(k): str(v) for k, v in e["files"].items()},
                            str(e.get("chart_code", "")), str(e.get("matplotlib", "")))
                for name, e in raw["charts"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def dumps(entries: Mapping[str, Entry]) -> bytes:
    """Stable bytes: sorted keys, two-space indent, ``\\n`` line ends, a final newline."""
    doc = {"about": _ABOUT, "charts": {name: entries[name].to_json() for name in sorted(entries)}}
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
