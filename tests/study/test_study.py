"""Study files: every broken file is refused through the CLI with exit 1, one line per problem
naming the file, where (key path or CSV row) and how to fix it, and never a traceback."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mystery.cli import app
from mystery.hours import Window, format_hours, parse_hours
from mystery.study.load import load_study

DEMO = Path(__file__).resolve().parents[2] / "studies" / "demo.toml"

GOOD = """\
name = "test-study"
year = 2026
timezone = "Europe/London"
cutoff = "2d"

[channels.x]
account = "researcher"

[[questions]]
id = "delivery"
text = "Hi {brand}, do you deliver on Sundays?"

[[questions]]
id = "hours"
text = "Hello {brand}, are you open today?"

[schedule]
start = 2026-03-02
end = 2026-03-08
probes_per_brand = 2
min_gap = "1d"

[[schedule.windows]]
days = "mon-fri"
start = "09:00"
end = "17:00"

[[brands]]
name = "Alpha Stores"
handles = { x = "AlphaStores" }
profile = "fast"

[[brands]]
name = "Beta Foods"
handles = { x = "BetaFoods" }
profile = "fast"

[sandbox.profiles.fast]
ack_median = "10m"
"""

# The same study with its brands in a CSV.
GOOD_WITH_CSV = (
    GOOD.split("[[brands]]")[0].replace('cutoff = "2d"', 'cutoff = "2d"\nbrands_csv = "brands.csv"')
    + GOOD.split('profile = "fast"\n\n')[-1]
)
CSV = (
    "name,sector,country,x,profile\n"
    "Alpha Stores,grocery,UK,AlphaStores,fast\n"
    "Beta Foods,grocery,UK,BetaFoods,fast\n"
)


def edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def line(text: str, needle: str, nth: int = 1) -> int:
    """The 1-based number of the ``nth`` line of ``text`` containing ``needle``."""
    found = [n for n, ln in enumerate(text.splitlines(), start=1) if needle in ln]
    return found[nth - 1]


@dataclass
class Case:
    id: str
    toml: str | None  # None: no study file at all
    expected: tuple[str, ...]  # fragments the error output must contain
    csv: str | None = None
    absent: tuple[str, ...] = ()  # fragments the error output must not contain


BROKEN = [
    Case(
        "unknown key (typo)",
        edit(GOOD, 'cutoff = "2d"', 'cuttoff = "2d"'),
        (f"line {line(GOOD, 'cutoff')}: cuttoff: unknown key", "check its spelling"),
    ),
    Case(
        "missing required section",
        GOOD.split("[schedule]")[0] + GOOD.split('end = "17:00"\n')[1],
        ("schedule", "required key is missing; add it"),
    ),
    Case(
        "bad timezone",
        edit(GOOD, "Europe/London", "Europe/Londn"),
        ("timezone", "unknown time zone 'Europe/Londn'", "IANA name such as 'Europe/London'"),
    ),
    Case(
        "bad duration",
        edit(GOOD, 'cutoff = "2d"', 'cutoff = "two days"'),
        ("cutoff", "cannot read duration 'two days'", "'7d'"),
    ),
    Case(
        "duration without a unit",
        edit(GOOD, 'cutoff = "2d"', "cutoff = 48"),
        ("cutoff", "write durations with a unit", "'48h'"),
    ),
    Case(
        "window ends before it starts",
        edit(GOOD, 'start = "09:00"\nend = "17:00"', 'start = "17:00"\nend = "09:00"'),
        (
            f"line {line(GOOD, '[[schedule.windows]]')}: schedule.windows[0]: ",
            "ends (09:00) before it starts (17:00)",
            "split it into two",
        ),
    ),
    Case(
        "schedule ends before it starts",
        edit(GOOD, "end = 2026-03-08", "end = 2026-02-20"),
        ("schedule", "end 2026-02-20 is before start 2026-03-02", "swap them"),
    ),
    Case(
        "unknown channel",
        edit(GOOD, "[channels.x]", "[channels.myspace]"),
        ("channels.myspace: unknown channel 'myspace'", "known channels: x, mastodon"),
    ),
    Case(
        "brand without a handle on any of the study's channels",
        edit(GOOD, 'handles = { x = "BetaFoods" }\n', ""),
        (
            f"line {line(GOOD, '[[brands]]', 2)}: brands[1].handles: ",
            "'Beta Foods' has no handle on any of the study's channels (x)",
            "add one",
        ),
    ),
    Case(
        "duplicate brand in the CSV",
        GOOD_WITH_CSV,
        ("brands.csv row 4", "duplicate brand 'alpha stores'", "give each brand once"),
        csv=CSV + "alpha stores,grocery,UK,AlphaAgain,fast\n",
    ),
    Case(
        "empty brand name (the line is the brand's, not the study's name)",
        edit(GOOD, 'name = "Beta Foods"', 'name = ""'),
        (f"line {line(GOOD, 'Beta Foods')}: brands[1].name: is empty; give it a value",),
    ),
    Case(
        "unknown profile",
        edit(GOOD, 'profile = "fast"\n\n[[brands]]', 'profile = "speedy"\n\n[[brands]]'),
        ("brands[0].profile", "unknown profile 'speedy'", "[sandbox.profiles.speedy]", "fast"),
    ),
    Case(
        "year disagrees with the dates",
        edit(GOOD, "year = 2026", "year = 2025"),
        ("year", "year 2025 disagrees with the schedule", "correct one of them"),
    ),
    Case(
        "URL in an X question",
        edit(GOOD, "do you deliver on Sundays?", "see https://example.com/faq"),
        ("questions[0].text", "contains a URL", "remove it"),
    ),
    Case(
        "a second mention in a question",
        edit(GOOD, "do you deliver on Sundays?", "do you deliver on Sundays? cc @someone"),
        ("questions[0].text", "contains the mention '@someone'",
         "may mention only the brand it asks", "mystery adds that mention itself",
         "remove '@someone'"),
    ),
    Case(
        "the brand mentioned by hand",
        edit(GOOD, "Hello {brand}, are", "Hello @{brand}, are"),
        (f"line {line(GOOD, 'Hello {brand}')}: questions[1].text",
         "contains the mention '@{brand}'", "write {brand} without '@'"),
        absent=("questions[0]",),
    ),
    Case(
        "a Mastodon-style mention",
        edit(GOOD, "do you deliver on Sundays?", "ask @help@mastodon.social?"),
        ("questions[0].text", "'@help@mastodon.social'"),
    ),
    Case(
        "duplicate question id",
        edit(GOOD, 'id = "hours"', 'id = "delivery"'),
        ("questions[1].id", "duplicate question id 'delivery'"),
    ),
    Case(
        "unknown placeholder in a question",
        edit(GOOD, "Hi {brand}, do", "Hi {brand_name}, do"),
        ("questions[0].text", "unknown placeholder", "the only placeholder is {brand}"),
    ),
    Case(
        "CSV with an unknown column",
        GOOD_WITH_CSV,
        ("brands.csv: row 1", "unknown column(s) twitter", "known: name"),
        csv=CSV.replace(",x,", ",twitter,"),
        absent=("no brands",),  # a consequence, not news
    ),
    Case("empty file", "", ("empty", "start from studies/demo.toml")),
    Case("comments only", "# nothing yet\n", ("empty",)),
    Case("not TOML", "name = demo\n[channels\n", ("not valid TOML", "line 1")),
    Case("missing file", None, ("no such file", "check the path")),
    Case(
        "impossible min_gap",
        edit(GOOD, 'min_gap = "1d"', 'min_gap = "7d"'),
        ("schedule.min_gap", "2 probes per brand 7 d apart", "shorten min_gap"),
    ),
    Case(
        "windows never occur on the schedule's days",
        edit(GOOD, "start = 2026-03-02\nend = 2026-03-08", "start = 2026-03-07\nend = 2026-03-08"),
        ("schedule.windows", "no send window falls on any day", "widen the dates"),
    ),
    Case(
        "more probes than the windows can hold",
        edit(GOOD, "probes_per_brand = 2", "probes_per_brand = 6"),
        ("schedule", "cannot fit 6 probes per brand", "only 5 fit", "lengthen the schedule"),
    ),
    Case(
        "missing brands CSV",
        GOOD_WITH_CSV,
        ("brands.csv", "brands CSV not found", "check brands_csv"),
        absent=("no brands",),
    ),
    Case(
        "bad value in a CSV row",
        GOOD_WITH_CSV,
        ("study.toml: brands.csv row 3.name: is empty; give it a value",),
        csv=CSV.replace("Beta Foods,", ",", 1),
        absent=("line ",),  # the row is in the CSV: no line of the TOML file is to blame
    ),
    Case(
        "brand hours in TOML with a misspelt day",
        edit(GOOD, 'profile = "fast"\n\n[[brands]]',
             'profile = "fast"\nhours = [{ days = "mon-fry", start = "08:00", end = "20:00" }]'
             '\n\n[[brands]]'),
        (f"line {line(GOOD, 'profile', 1) + 1}: brands[0].hours[0].days: cannot read days "
         "'mon-fry'", "write e.g. 'mon-fri'"),
    ),
    Case(
        "brand hours in TOML that end before they start",
        edit(GOOD, 'profile = "fast"\n\n[[brands]]',
             'profile = "fast"\nhours = [{ days = "sat", start = "20:00", end = "08:00" }]'
             '\n\n[[brands]]'),
        ("brands[0].hours[0]: window ends (08:00) before it starts (20:00)", "split it"),
    ),
    Case(
        "brand hours in the CSV without days",
        GOOD_WITH_CSV,
        ("study.toml: brands.csv row 3.hours: cannot read '09:00-17:00'; write days then "
         "opening times, separated by ';', e.g. 'mon-fri 09:00-17:00; sat 10:00-16:00' "
         "(got 'sat 10:00-14:00; 09:00-17:00')",),
        csv=CSV.replace("profile\n", "profile,hours\n").replace(
            "BetaFoods,fast\n", "BetaFoods,fast,sat 10:00-14:00; 09:00-17:00\n"),
        absent=("line ",),
    ),
    Case(
        "brand hours in the CSV with an impossible time",
        GOOD_WITH_CSV,
        ("brands.csv row 2.hours: 'mon-fri 09:00-17:60': 17:60 is not a time of day; write "
         "HH:MM from 00:00 to 24:00",),
        csv=CSV.replace("profile\n", "profile,hours\n").replace(
            "AlphaStores,fast\n", "AlphaStores,fast,mon-fri 09:00-17:60\n"),
    ),
    Case(
        "unknown send mode",
        edit(GOOD, 'account = "researcher"', 'account = "researcher"\nmode = "yolo"'),
        ("channels.x.mode", "auto, confirm, manual"),
    ),
]


def write(tmp_path: Path, case: Case) -> Path:
    path = tmp_path / "study.toml"
    if case.toml is not None:
        path.write_text(case.toml, encoding="utf-8")
    if case.csv is not None:
        (tmp_path / "brands.csv").write_text(case.csv, encoding="utf-8")
    return path


def validate(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert "Traceback" not in result.output
    if result.exit_code not in (0, 1):  # pragma: no cover - shows what went wrong
        raise AssertionError(result.output) from result.exception
    return result.exit_code, result.output


@pytest.mark.parametrize("case", BROKEN, ids=[c.id for c in BROKEN])
def test_broken_study_files_are_refused_with_where_and_how_to_fix(
    tmp_path: Path, case: Case
) -> None:
    path = write(tmp_path, case)
    code, output = validate(path)
    assert code == 1, output
    assert output.startswith(f"Error: {tmp_path}"), output
    for fragment in case.expected:
        assert fragment in output, f"{fragment!r} not in {output!r}"
    for fragment in case.absent:
        assert fragment not in output, f"{fragment!r} in {output!r}"


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = edit(GOOD, 'cutoff = "2d"', 'cuttoff = "2d"')
    text = edit(text, "Europe/London", "Mars/Olympus")
    path = write(tmp_path, Case("two", text, ()))
    code, output = validate(path)
    assert code == 1
    lines = output.strip().splitlines()
    assert len(lines) == 2, output
    assert any("cuttoff" in line for line in lines)
    assert any("Mars/Olympus" in line for line in lines)
    assert all(f"{path}: " in line for line in lines)


def test_the_demo_study_validates() -> None:
    code, output = validate(DEMO)
    assert code == 0, output
    assert "OK: 20 brands, 3 questions, channels x" in output


def test_a_csv_with_bom_and_crlf_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "study.toml"
    path.write_text(GOOD_WITH_CSV, encoding="utf-8")
    (tmp_path / "brands.csv").write_bytes(
        b"\xef\xbb\xbf" + CSV.replace("\n", "\r\n").encode("utf-8")
    )
    code, output = validate(path)
    assert code == 0, output
    study = load_study(path).study
    assert [b.name for b in study.brands] == ["Alpha Stores", "Beta Foods"]
    assert study.brands[0].handles == {"x": "AlphaStores"}


def test_unicode_brand_names_are_accepted(tmp_path: Path) -> None:
    names = ["Café Zoë", "Ørsted Energi", "東京マート", "Škoda Dílna"]
    rows = "".join(f"{name},retail,XX,handle{i},fast\n" for i, name in enumerate(names))
    path = write(tmp_path, Case("unicode", GOOD_WITH_CSV, (), csv=CSV.split("\n")[0] + "\n" + rows))
    code, output = validate(path)
    assert code == 0, output
    study = load_study(path).study
    assert [b.name for b in study.brands] == names
    assert study.questions[0].render(names[2]) == "Hi 東京マート, do you deliver on Sundays?"


def test_the_good_study_and_its_csv_twin_validate(tmp_path: Path) -> None:
    assert validate(write(tmp_path, Case("good", GOOD, ())))[0] == 0
    assert validate(write(tmp_path, Case("csv", GOOD_WITH_CSV, (), csv=CSV)))[0] == 0


def test_brand_hours_from_toml_and_from_the_csv(tmp_path: Path) -> None:
    toml = edit(GOOD, 'profile = "fast"\n\n[[brands]]',
                'profile = "fast"\nhours = [{ days = "mon-sun", start = "08:00", end = "20:00" }]'
                '\n\n[[brands]]')
    study = load_study(write(tmp_path, Case("toml", toml, ()))).study
    assert [format_hours(b.hours) for b in study.brands] == ["mon-sun 08:00-20:00", ""]
    csv = CSV.replace("profile\n", "profile,hours\n").replace(
        "AlphaStores,fast\n", "AlphaStores,fast,mon-fri 09:00-17:00; sat: 10:00 – 24:00;\n")
    study = load_study(write(tmp_path, Case("csv", GOOD_WITH_CSV, (), csv=csv))).study
    alpha, beta = study.brands
    assert alpha.hours == [Window(days="mon-fri", start=time(9), end=time(17)),
                           Window(days="sat", start=time(10), end=time(23, 59, 59))]
    assert format_hours(alpha.hours) == "mon-fri 09:00-17:00; sat 10:00-24:00"
    assert parse_hours(format_hours(alpha.hours)) == alpha.hours
    assert beta.hours == []  # an empty cell: the study default


def test_sending_modes_default_by_channel_and_endpoint() -> None:
    from mystery.study.model import Study

    def study(channels: dict[str, dict[str, str]]) -> Study:
        return Study.model_validate({
            "name": "m", "year": 2026, "channels": channels,
            "questions": [{"id": "q", "text": "Hi {brand}?"}],
            "schedule": {"start": "2026-03-02", "end": "2026-03-06"},
        })

    real = study({"x": {"account": "me", "endpoint": "https://api.x.com"},
                  "email": {"account": "me@example.org", "endpoint": "imaps://mail.example.org"},
                  "mastodon": {"account": "me", "endpoint": "https://mastodon.social"}})
    assert {n: c.send_mode for n, c in real.channels.items()} == {
        "x": "manual", "email": "auto", "mastodon": "manual"}
    sandbox = study({"x": {"account": "me"}})
    assert sandbox.channels["x"].send_mode == "auto"
    assert not sandbox.channels["x"].guarded and real.channels["x"].guarded
