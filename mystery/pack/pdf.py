"""The pack's PDF: the page printed by headless Chromium.

Why Chromium and not a PDF library: the PDF must be *the same page* the client opens, and a
browser is what lays that page out (great_tables' CSS, inline SVG charts with text). HTML to
PDF libraries re-implement a subset of CSS (WeasyPrint draws SVG through its own renderer and
pulls Pango and cairo); Chromium from Debian's packages is the one the tests already open the
page in (DESIGN.md "Libraries"), so what is tested is what is printed. It runs with a
throw-away profile, no network (the page needs none; its Content Security Policy forbids it)
and a time limit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from mystery.errors import MysteryError

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_INSTALL = ("install Chromium (Debian/Ubuntu: 'apt-get install chromium'; macOS: 'brew install "
            "--cask chromium') or set MYSTERY_CHROMIUM to its path, or pass --no-pdf")


def find_chromium() -> str | None:
    """``MYSTERY_CHROMIUM`` if set, else the first Chromium on PATH."""
    chosen = os.environ.get("MYSTERY_CHROMIUM")
    if chosen:
        return chosen if Path(chosen).is_file() else None
    return next((found for name in NAMES if (found := shutil.which(name))), None)


def headless(browser: str, profile: Path) -> list[str]:
    """The flags every headless run uses: a fresh profile, no first-run, no GPU, no network
    services; no sandbox when root (Chromium refuses to start as root with it)."""
    flags = [browser, "--headless", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking", "--disable-sync",
             "--metrics-recording-only", "--mute-audio", f"--user-data-dir={profile}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        flags.append("--no-sandbox")
    return flags


def print_pdf(page: Path, pdf: Path, *, timeout: float = 120.0) -> None:
    """Print ``page`` (an HTML file) to ``pdf``; one clear message when it cannot."""
    browser = find_chromium()
    if browser is None:
        raise MysteryError(f"cannot write {pdf.name}: no Chromium found; {_INSTALL}")
    with tempfile.TemporaryDirectory(prefix="mystery-chromium-") as profile:
        command = [*headless(browser, Path(profile)), "--no-pdf-header-footer",
                   f"--print-to-pdf={pdf}", page.resolve().as_uri()]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise MysteryError(f"cannot write {pdf.name}: Chromium did not finish within "
                               f"{timeout:.0f} s; try again, or pass --no-pdf") from None
    if done.returncode != 0 or not pdf.exists() or pdf.stat().st_size == 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise MysteryError(f"cannot write {pdf.name}: Chromium failed ({last}); {_INSTALL}")
