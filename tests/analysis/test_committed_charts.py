"""Every committed chart is what today's code draws: each drawn afresh, compared by its pixels.

A chart's fingerprint holds its data, its options and a hash of the drawing code's source
(:data:`mystery.analysis.manifest.DRAWING_CODE`), so a chart is redrawn when any of them
changes. A module that decides what a chart looks like and is missing from that list would
leave committed charts that the code no longer draws, under fingerprints that call them
current: this is how a committed chart reading ``18 min`` was found, whose code writes
``17 min 54 s``. This test draws every chart of ``results/`` afresh and compares pixels.

Why pixels with a tolerance and not bytes: bytes are not portable (DESIGN.md, rule 5); a
coordinate on a rounding tie under other SIMD paths moves by far less than a pixel, which
can change the anti-aliased shade of an edge pixel, never draw or move a mark. A moved dot,
label or line changes hundreds of pixels by far more (the ``18 min`` label: 1,249 pixels
by more than 32 levels of 255).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from mystery.publish import publish

REPO = Path(__file__).resolve().parents[2]
#: A pixel whose shade moved this far (of 255, in any channel) is a different drawing.
FAR = 64
#: Pixels of a chart that may differ at all: edge shades, one in 2,000.
SHADES = 0.0005


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def test_every_committed_chart_is_what_the_code_draws_today(tmp_path: Path) -> None:
    for folder in ("studies", "results"):
        shutil.copytree(REPO / folder, tmp_path / folder,
                        ignore=shutil.ignore_patterns("*.db", "*.db-*", "*.lock"))
    fresh = tmp_path / "fresh"
    publish(tmp_path, out=fresh)  # every chart drawn, results/ untouched
    committed = {p.relative_to(REPO / "results") for p in (REPO / "results").rglob("*.png")}
    drawn = {p.relative_to(fresh) for p in fresh.rglob("*.png")}
    assert committed == drawn
    assert len(committed) >= 10
    for rel in sorted(committed):
        old, new = _pixels(REPO / "results" / rel), _pixels(fresh / rel)
        assert old.shape == new.shape, f"results/{rel}: {old.shape} committed, {new.shape} drawn"
        moved = np.abs(old - new).max(axis=2)
        far, some = int((moved > FAR).sum()), int((moved > 0).sum())
        assert far == 0 and some <= SHADES * moved.size, (
            f"results/{rel} is not what the code draws today ({far} pixels far off, {some} "
            "differ): add the module that changed it to manifest.DRAWING_CODE, then run "
            "'mystery publish'")
