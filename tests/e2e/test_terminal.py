"""What a user sees in a terminal: ``mystery`` run under a real pseudo-terminal.

Every other test drives the CLI with its output piped (or through ``CliRunner``), where the
live view is off by design; a live view that crashed in every terminal once went unnoticed
that way. Here the command runs as a user types it: a separate process whose stdin, stdout
and stderr are a pty (stdlib ``os.openpty``), with a terminal's ``TERM`` and size. The tests
read the screen as bytes, turn rich's cursor movements back into line breaks, and check the
frames: that they appear, that they advance, and that the last one agrees with the summary.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mystery.cli import app
from mystery.coding.review import coder_codes
from mystery.collect.connect import world_start
from mystery.sandbox import SandboxControl, SandboxServer
from mystery.sandbox.spec import WorldSpec
from mystery.store.store import Store
from mystery.study.load import load_study
from mystery.study.plan import make_plan
from tests.terminal import (
    MYSTERY,
    SGR,
    TIMEOUT,
    has_colour,
    run_in_terminal,
    screen_lines,
    terminal,
)

REPO = Path(__file__).resolve().parents[2]
_BAR = re.compile(r"(\d+)/(\d+) settled ·")
_ALL = re.compile(r"^all\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+\d+\s+(\d+)/(\d+)\s*$")
_SUMMARY = re.compile(r": finished: (\d+)/(\d+) probes sent, (\d+) acknowledged, (\d+) resolved, "
                      r"(\d+) unanswered, (\d+) settled;")


def check_live_view(raw: bytes) -> list[str]:
    """What must hold for any run in a terminal: no crash, frames that appear and advance, and
    a last frame whose counts are the summary line's. Returns the screen's lines."""
    lines = screen_lines(raw)
    screen = "\n".join(lines)
    assert "Traceback" not in screen and "lost sys.stderr" not in screen, screen
    settled = [(int(m[1]), int(m[2])) for line in lines if (m := _BAR.search(line))]
    distinct = [s for n, s in enumerate(settled) if n == 0 or s != settled[n - 1]]
    assert len(distinct) >= 3, f"the live view did not advance: {distinct}\n{screen}"
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(distinct)), distinct
    assert distinct[-1][0] > distinct[0][0], distinct
    totals = [m.groups() for line in lines if (m := _ALL.match(line))]
    summary = next(m.groups() for line in lines if (m := _SUMMARY.search(line)))
    sent, planned, acknowledged, resolved, unanswered, settled_total = summary
    # The last frame: its bar and its "all" row show the very numbers of the summary line.
    assert settled[-1] == (int(settled_total), int(planned)), (settled[-1], summary)
    assert totals[-1] == (sent, acknowledged, resolved, unanswered, settled_total, planned)
    return lines


@pytest.fixture
def demo_folder(tmp_path: Path) -> Path:
    """A folder laid out like a fresh clone (studies/ only), so the repository stays clean."""
    (tmp_path / "studies").mkdir()
    for name in ("demo.toml", "demo-brands.csv"):
        shutil.copy(REPO / "studies" / name, tmp_path / "studies" / name)
    return tmp_path


def test_the_demo_in_a_terminal_shows_a_live_view_that_ends_on_the_summary(
    demo_folder: Path,
) -> None:
    code, raw = run_in_terminal(["run", "studies/demo.toml"], demo_folder)
    lines = check_live_view(raw)
    assert code == 0, "\n".join(lines)
    screen = "\n".join(lines)
    assert re.search(r"study clock \w{3} 2026-03-\d\d \d\d:\d\d:\d\d Europe/London \(virtual",
                     screen), screen
    for channel in ("x", "mastodon", "bluesky"):
        assert any(re.match(rf"{channel}\s+\d+\s+\d+", line) for line in lines), channel
    assert re.search(r"next send p\d{4} on \w+ at \w{3} \d\d:\d\d Europe/London", screen)
    assert re.search(r"next poll \w+ (in \d|now)", screen)
    assert re.search(r"\d:\d\d:\d\d elapsed", screen)
    assert "ETA" not in screen  # a sandbox study ends when its virtual clock gets there
    assert "demo: per brand" in screen  # and it ends with the per-brand table
    assert has_colour(raw)  # a terminal gets colours (so the NO_COLOR test can fail)


def test_no_color_means_no_colour_in_the_terminal(demo_folder: Path) -> None:
    code, raw = run_in_terminal(["run", "studies/demo.toml", "--no-report"], demo_folder,
                                env={"NO_COLOR": "1"})
    check_live_view(raw)
    assert code == 0
    assert not has_colour(raw), [m.group(0) for m in SGR.finditer(raw)][:20]


def test_piped_stderr_and_quiet_get_no_live_frames(demo_folder: Path) -> None:
    piped = subprocess.run([*MYSTERY, "run", "studies/demo.toml", "--no-report"],
                           cwd=demo_folder, capture_output=True, timeout=TIMEOUT,
                           env={**os.environ, "TERM": "xterm-256color"})
    assert piped.returncode == 0, piped.stderr.decode()
    assert b"finished: 66/66 probes sent" in piped.stderr
    assert b"settled \xc2\xb7" not in piped.stderr and b"\x1b[" not in piped.stderr

    for name in demo_folder.glob("studies/demo.db*"):
        name.unlink()
    code, raw = run_in_terminal(["run", "studies/demo.toml", "--no-report", "--quiet"],
                                demo_folder)
    screen = "\n".join(screen_lines(raw))
    assert code == 0, screen
    assert "finished: 66/66 probes sent" in screen
    assert not _BAR.search(screen) and "study clock" not in screen


MANUAL_STUDY = """\
name = "by-hand"
year = 2026
timezone = "Europe/London"
cutoff = "1d"
synthetic = true

[channels.x]
account = "mystery_res"
endpoint = "sandbox"
mode = "manual"
grace = "1h"
poll_every = "10m"

[[questions]]
id = "delivery"
text = "Hi {brand}, do you deliver on Saturdays?"

[[questions]]
id = "hours"
text = "Hello {brand}, what time are you open until today?"

[schedule]
start = 2026-03-02
end = 2026-03-06
probes_per_brand = 2
min_gap = "1d"
seed = 3

[[brands]]
name = "Acme"
handles = { x = "AcmeHelp" }
profile = "quick"

[[brands]]
name = "Globex"
handles = { x = "GlobexCares" }
profile = "silent"

[sandbox]
seed = 4

[sandbox.profiles.quick]
ack_median = "15m"
resolve_after = "40m"

[sandbox.profiles.silent]
answer_rate = 0.0
"""
HANDLES = {"Acme": "AcmeHelp", "Globex": "GlobexCares"}


def test_a_manual_study_in_a_terminal_shows_due_probes_above_the_live_view(
    tmp_path: Path, sandbox: SandboxServer, control: SandboxControl,
) -> None:
    path = tmp_path / "by-hand.toml"
    path.write_text(MANUAL_STUDY, encoding="utf-8")
    study = load_study(path).study
    control.put_world(WorldSpec.from_study(study, world_start(study)))
    plan = make_plan(study)
    # The researcher posts each probe by hand a few minutes after it falls due (the sandbox
    # keeps a post made ahead of time invisible until its clock gets there).
    for probe in plan:
        control.post_as_researcher(f"@{HANDLES[probe.brand]} {probe.text}",
                                   at=probe.planned_at + timedelta(minutes=7))

    code, raw = run_in_terminal(["run", path.name, "--sandbox-url", sandbox.url,
                                 "--no-report"], tmp_path)
    lines = check_live_view(raw)
    screen = "\n".join(lines)
    assert code == 0, screen
    for probe in plan:  # each shown whole, as a notice above the frames, not torn by them
        assert f"{probe.id} is due on x: post it yourself, from your account mystery_res" in screen
        assert f"  text:  @{HANDLES[probe.brand]} {probe.text}" in lines
        assert f"{probe.id}: posted by hand at" in screen
    assert f"finished: {len(plan)}/{len(plan)} probes sent" in screen
    assert sandbox.stats.snapshot().get("POST /2/tweets", 0) == 0  # it posted nothing itself


def test_confirm_mode_pauses_the_live_view_to_ask_and_resumes_it(tmp_path: Path) -> None:
    path = tmp_path / "asking.toml"
    path.write_text(MANUAL_STUDY.replace('mode = "manual"\ngrace = "1h"\n',
                                         'mode = "confirm"\n'), encoding="utf-8")
    plan = make_plan(load_study(path).study)
    with terminal(["run", path.name, "--no-report"], tmp_path) as asking:
        for n, probe in enumerate(plan, start=1):
            asking.expect(f"Post {probe.id} to {probe.brand} now? [y/N]:")
            asking.type("n\n" if n == len(plan) else "y\n")  # the last one is declined
        code = asking.finish()
    lines = check_live_view(asking.raw)
    screen = "\n".join(lines)
    assert code == 0, screen
    # Frames before and after the questions: the view stopped to ask, then went on.
    first_question = screen.index(f"Post {plan[0].id} to")
    assert _BAR.search(screen[first_question:]) and _BAR.search(screen[:first_question])
    assert f"{plan[-1].id}: excluded from the study: declined by the researcher" in screen
    assert f"finished: {len(plan) - 1}/{len(plan)} probes sent" in screen


@pytest.fixture
def finished_demo(demo_folder: Path) -> Path:
    result = CliRunner().invoke(app, ["run", str(demo_folder / "studies" / "demo.toml"),
                                      "--quiet", "--no-report"])
    assert result.exit_code == 0, result.output
    return demo_folder / "studies" / "demo.toml"


def test_coding_in_a_terminal_takes_one_key_a_reply(finished_demo: Path) -> None:
    with terminal(["code", finished_demo.name, "--coder", "alice"],
                  finished_demo.parent) as coding:
        prompt = "[q] quit ›"
        coding.expect(prompt)
        assert "reply 1 of " in coding.screen()
        coding.press("s")  # one key, no Enter: the screen moves on
        coding.expect("reply 2 of ")
        coding.expect(prompt, times=2)
        coding.press("r")
        coding.expect("resolution (saved)")
        coding.expect(prompt, times=3)
        coding.press("q")
        code = coding.finish()
        screen = coding.screen()
    assert code == 0, screen
    assert "Traceback" not in screen
    assert "1 coded, 1 skipped" in screen
    with Store.open(finished_demo.with_suffix(".db"), create=False) as store:
        assert list(coder_codes(store, "alice").values()) == ["resolution"]


def test_the_report_table_in_an_80_column_terminal_cuts_no_name_and_no_time(
    finished_demo: Path,
) -> None:
    """With the intervals the per-brand table is wider than 80 columns: names stay whole and
    times wrap between their words instead of ending in "…" (a cut time is a wrong time)."""
    code, raw = run_in_terminal(["report", finished_demo.name, "--results", "out"],
                                finished_demo.parent, columns=80)
    lines = screen_lines(raw)
    screen = "\n".join(lines)
    assert code == 0 and "Traceback" not in screen, screen
    rows = [line for line in lines if line.startswith("│")]
    cells = [cell.strip() for line in rows for cell in line.strip("│").split("│")]
    brands = {row.split(",")[0] for row in
              (finished_demo.parent / "demo-brands.csv").read_text(encoding="utf-8")
              .splitlines()[1:]}
    assert brands <= {cell for cell in cells}, "a brand name was cut"
    assert not [cell for cell in cells if cell.endswith("…")], screen
    assert "open" in cells  # the interval's two ends as one range ("9 min 36 s – open")

