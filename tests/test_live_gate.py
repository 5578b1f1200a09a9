"""Against a real platform nothing is posted without --live, and never in a mode this version
cannot honour (manual and confirm are not built yet: refusing beats posting automatically)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from mystery.cli import app

STUDY = """\
name = "real"
year = 2026
cutoff = "2d"

[channels.x]
account = "researcher"
endpoint = "https://api.x.com"
{mode}

[[questions]]
id = "q"
text = "Hi {{brand}}, are you open on Sundays?"

[schedule]
start = 2026-03-02
end = 2026-03-08
probes_per_brand = 1

[[brands]]
name = "Alpha"
handles = {{ x = "Alpha" }}
"""


def _run(tmp_path: Path, mode: str, *args: str) -> tuple[int, str]:
    path = tmp_path / "real.toml"
    path.write_text(STUDY.format(mode=mode), encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(path), "--once", "--quiet", *args])
    return result.exit_code, result.output


def test_real_endpoint_without_live_posts_nothing_and_writes_nothing(tmp_path: Path) -> None:
    code, output = _run(tmp_path, 'mode = "auto"')
    assert code == 1
    assert "nothing is posted there without --live" in output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["real.toml"]


def test_manual_mode_on_a_real_endpoint_is_refused_not_automated(tmp_path: Path) -> None:
    code, output = _run(tmp_path, "", "--live")  # real X defaults to manual
    assert code == 1
    assert "channels.x.mode is 'manual'" in output and "only posts automatically" in output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["real.toml"]
