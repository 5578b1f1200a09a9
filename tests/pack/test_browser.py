"""The pack opened in a real browser: headless Chromium from Debian's packages (``.ci/run``
installs it when missing), driven by Playwright. No console error, no network request, the
client's name and table on the page, a screenshot; hostile names stay text."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pytest
from PIL import Image
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Request, sync_playwright
from typer.testing import CliRunner

from mystery.cli import app
from mystery.pack.pdf import find_chromium
from mystery.timings import schema as timings
from tests.analysis.synthetic import make_study

HOSTILE = '<img src=x onerror="alert(1)">Evil & Co'
QUESTION = "<script>alert('q')</script>"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = find_chromium()
    assert chromium, "Chromium is needed: apt-get install chromium (.ci/run installs it)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


@dataclass
class Visit:
    """What the browser saw while it opened a page."""

    console: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


def _open(browser: Browser, page_path: Path, shot: Path) -> tuple[Visit, dict[str, object]]:
    visit = Visit()
    page = browser.new_page(viewport={"width": 1200, "height": 900})

    def console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            visit.console.append(message.text)

    def request(req: Request) -> None:
        visit.requests.append(req.url)

    def dialog(d: Dialog) -> None:
        visit.dialogs.append(d.message)
        d.dismiss()

    page.on("console", console)
    page.on("pageerror", lambda error: visit.console.append(str(error)))
    page.on("request", request)
    page.on("dialog", dialog)
    page.goto(page_path.as_uri(), wait_until="load")
    seen = {
        "h1": page.locator("h1").inner_text(),
        "rows": page.locator("#standing tbody tr").count(),
        "first_cell": page.locator("#standing tbody tr td").first.inner_text(),
        "svgs": page.locator("figure svg").count(),
        "markup": page.evaluate("document.querySelectorAll('img, script, iframe').length"),
        # Two inline charts both drawn with clip paths "clip1"…: one id space on the page.
        "duplicate_ids": page.evaluate("(() => { const ids = [...document.querySelectorAll("
                                       "'[id]')].map(e => e.id); return ids.length - "
                                       "new Set(ids).size; })()"),
        "body": page.locator("body").inner_text(),
    }
    page.screenshot(path=str(shot), full_page=True)
    page.close()
    return visit, seen


def _series(root: Path) -> None:
    for year in (2025, 2026):
        df = make_study(root, series="telco", year=year, brands=5, probes_per_brand=3, seed=9)
        df = df.with_columns(
            brand=pl.col("brand").replace({"Brand 001": HOSTILE}),
            question=pl.lit(QUESTION))
        timings.write_csv(df, root / "results" / f"telco-{year}" / "timings.csv")


def test_the_pack_renders_in_headless_chromium_offline_and_without_errors(
    browser: Browser, tmp_path: Path
) -> None:
    _series(tmp_path)
    out = tmp_path / "pack"
    result = CliRunner().invoke(app, ["pack", "telco", "--client", "Brand 003", "--out",
                                      str(out), "--results", str(tmp_path / "results")])
    assert result.exit_code == 0, result.output
    visit, seen = _open(browser, out / "index.html", tmp_path / "shot.png")
    assert visit.console == [] and visit.dialogs == []
    assert visit.requests == [(out / "index.html").as_uri()]  # the page itself, nothing else
    assert seen["h1"] == "Brand 003 against its peers"
    assert seen["rows"] == 5 and seen["first_cell"] == "x"  # five measures on one channel
    assert seen["svgs"] == 2  # the ranking and the year-on-year chart, inline
    assert seen["duplicate_ids"] == 0
    with Image.open(tmp_path / "shot.png") as shot:
        assert shot.size[0] == 1200 and shot.size[1] > 900  # the whole page, not a blank one
        low, high = shot.convert("L").getextrema()
        assert isinstance(low, int) and isinstance(high, int)
        assert high - low > 128  # drawn on: dark text on white


def test_hostile_names_appear_as_text_never_as_markup(browser: Browser, tmp_path: Path) -> None:
    _series(tmp_path)
    out = tmp_path / "pack"
    result = CliRunner().invoke(app, ["pack", "telco", "--client", HOSTILE, "--out", str(out),
                                      "--results", str(tmp_path / "results"), "--no-pdf"])
    assert result.exit_code == 0, result.output
    visit, seen = _open(browser, out / "index.html", tmp_path / "shot.png")
    assert visit.dialogs == [] and visit.console == []
    assert seen["markup"] == 0  # no <img>, <script> or <iframe> came from a name
    assert seen["h1"] == f"{HOSTILE} against its peers"  # the name, as text
    assert QUESTION in str(seen["body"])


def test_the_demo_pack_renders_as_the_readme_promises(
    browser: Browser, ran: Path, tmp_path: Path
) -> None:
    """mystery pack studies/demo.toml --client "Fresh Lane" --out DIR, after the demo run."""
    out = tmp_path / "pack"
    result = CliRunner().invoke(app, ["pack", str(ran / "demo.toml"), "--client", "Fresh Lane",
                                      "--out", str(out), "--results", str(ran / "results")])
    assert result.exit_code == 0, result.output
    visit, seen = _open(browser, out / "index.html", tmp_path / "shot.png")
    assert visit.console == [] and visit.dialogs == []
    assert visit.requests == [(out / "index.html").as_uri()]
    assert seen["h1"] == "Fresh Lane against its peers" and seen["rows"] == 5
    assert "Synthetic data" in str(seen["body"])
