"""Bad input, on purpose: study files, brands CSVs and command lines a user gets wrong.

Each is refused through the CLI with one message that says where and how to fix it, exit 1 for
a bad file and 2 for a bad command line, never a traceback, and nothing on disk changes: a
study's existing store stays byte for byte as it was, and no store appears for a study that
could not be loaded. (tests/study/test_study.py holds the first 27 broken study files; this table
adds to them, it does not repeat them.)
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mystery.cli import app
from mystery.store.store import Store
from mystery.study.load import load_study
from mystery.study.plan import make_plan
from tests.study.test_study import CSV, GOOD, GOOD_WITH_CSV, edit, line

OTHER = edit(GOOD, 'name = "test-study"', 'name = "other-study"')
HAND = edit(GOOD, "[channels.x]", "[channels.phone]").replace("{ x = ", "{ phone = ")
REAL = edit(GOOD, 'account = "researcher"', 'account = "researcher"\nendpoint = "https://api.x.com"')
CSV_HEADER = CSV.splitlines()[0] + "\n"


@dataclass
class Case:
    id: str
    files: dict[str, str | bytes]  # what to write in the study's folder
    expected: tuple[str, ...]  # fragments of the output
    args: tuple[str, ...] = ("validate", "{dir}/study.toml")
    code: int = 1
    store: bool = True  # the study already has a store (study.db) that must not change
    marks: tuple[pytest.MarkDecorator, ...] = field(default_factory=tuple)


def study(text: str | bytes, csv: str | bytes | None = None) -> dict[str, str | bytes]:
    files: dict[str, str | bytes] = {"study.toml": text}
    if csv is not None:
        files["brands.csv"] = csv
    return files


BOM = b"\xef\xbb\xbf"
WITH_ALIAS = edit(GOOD, 'handles = { x = "AlphaStores" }',
                  'handles = { x = "AlphaStores" }\naliases = { x = ["AlphaHelp", "Alpha-Care"] }')

STUDY_FILES = [
    # -- X handles: X usernames are [A-Za-z0-9_]{1,15} ------------------------------------
    Case("X handle with a non-ASCII letter",
         study(edit(GOOD, 'x = "AlphaStores"', 'x = "CaféZoë"')),
         (f"line {line(GOOD, 'AlphaStores')}: brands[0].handles.x: 'CaféZoë' is not an X "
          "username: it contains 'é', 'ë'", "letters A-Z, digits and '_'")),
    Case("X handle in Japanese (CSV)",
         study(GOOD_WITH_CSV, CSV + "東京マート,retail,JP,東京マート,fast\n"),
         ("brands.csv row 4.handles.x: '東京マート' is not an X username",)),
    Case("X handle with a space and punctuation (CSV)",
         study(GOOD_WITH_CSV, CSV.replace("BetaFoods", "Beta Foods!")),
         ("brands.csv row 3.handles.x: 'Beta Foods!' is not an X username: it contains a "
          "space, '!'",)),
    Case("X handle longer than 15 characters",
         study(edit(GOOD, 'x = "AlphaStores"', 'x = "AlphaStoresCustomerCare"'))
         , ("brands[0].handles.x: 'AlphaStoresCustomerCare' has 23 characters; X usernames "
            "have at most 15",)),
    Case("X handle given as a profile link",
         study(edit(GOOD, 'x = "AlphaStores"', 'x = "https://x.com/AlphaStores"')),
         ("'https://x.com/AlphaStores' is a link; write the username alone, e.g. "
          "'AlphaStores'",)),
    Case("X alias with a hyphen",
         study(WITH_ALIAS),
         ("brands[0].aliases.x[1]: 'Alpha-Care' is not an X username: it contains '-'",)),
    Case("researcher account with a space",
         study(edit(GOOD, 'account = "researcher"', 'account = "my research"')),
         (f"line {line(GOOD, 'account')}: channels.x.account: 'my research' is not an X "
          "username",)),
    Case("researcher account too long for real X",
         study(edit(REAL, 'account = "researcher"', 'account = "researcher_account"')),
         ("channels.x.account: 'researcher_account' has 18 characters; X usernames have at "
          "most 15",)),
    Case("an account of several with a space",
         study(edit(GOOD, 'account = "researcher"', 'accounts = ["shopper_a", "shopper b"]')),
         ("channels.x.accounts[1]: 'shopper b' is not an X username",)),
    Case("no account on a channel",
         study(edit(GOOD, 'account = "researcher"', 'poll_every = "30m"')),
         ("channels.x: name the researcher's account: account = \"your_handle\" (or "
          "accounts = [\"shopper_a\", \"shopper_b\"] for several)",)),
    Case("both account and accounts",
         study(edit(GOOD, 'account = "researcher"',
                    'account = "researcher"\naccounts = ["shopper_a"]')),
         ("channels.x: give either account or accounts, not both",)),
    Case("an account listed twice",
         study(edit(GOOD, 'account = "researcher"', 'accounts = ["shopper_a", "@shopper_a"]')),
         ("channels.x.accounts: account 'shopper_a' is listed twice; list each account once",)),
    Case("two accounts that would share credentials",
         study(edit(GOOD, 'account = "researcher"', 'accounts = ["shopper.a", "shopper_a"]')),
         ("channels.x.accounts: accounts 'shopper.a' and 'shopper_a' would share one set of "
          "credentials (both are SHOPPER_A to 'mystery auth'); rename one",)),
    Case("two brands share an X handle (case differs)",
         study(edit(GOOD, 'x = "BetaFoods"', 'x = "ALPHASTORES"')),
         ("brands[1].handles.x: @ALPHASTORES is also the account of brand 'Alpha Stores'",
          "give each brand its own handles")),
    Case("a question too long to post on X (CJK counts double)",
         study(edit(GOOD, "do you deliver on Sundays?", "日曜日に配達しますか" * 13)),
         ("questions[0].text: is 290 characters as posted to 'Alpha Stores'", "X allows 280",
          "shorten it")),
    # -- brands: duplicates, Unicode, line breaks -----------------------------------------
    Case("duplicate brand, differing in case (TOML)",
         study(edit(GOOD, 'name = "Beta Foods"', 'name = "ALPHA STORES"')),
         ("brands[1]: duplicate brand 'ALPHA STORES'; give each brand once",)),
    Case("duplicate brand, equal only when case-folded (Straße / STRASSE)",
         study(edit(edit(GOOD, 'name = "Alpha Stores"', 'name = "Straße"'),
                    'name = "Beta Foods"', 'name = "STRASSE"')),
         ("brands[1]: duplicate brand 'STRASSE'",)),
    Case("duplicate brand between the TOML file and its CSV",
         study(GOOD_WITH_CSV.replace("[sandbox.profiles.fast]",
                                     '[[brands]]\nname = "beta foods"\nhandles = { x = "Beta2" }'
                                     '\nprofile = "fast"\n\n[sandbox.profiles.fast]'), CSV),
         ("brands.csv row 3: duplicate brand 'Beta Foods'",)),
    Case("duplicate Unicode brand in the CSV (ÉCLAIR / éclair)",
         study(GOOD_WITH_CSV, CSV + "Éclair,bakery,FR,Eclair1,fast\néclair,bakery,FR,Eclair2,"
               "fast\n"),
         ("brands.csv row 5: duplicate brand 'éclair'",)),
    Case("brand name with a line break",
         study(edit(GOOD, 'name = "Beta Foods"', 'name = "Beta\\nFoods"')),
         ("brands[1].name: contains a line break or control character", "on one line")),
    Case("handle for an unknown channel",
         study(edit(GOOD, 'handles = { x = "BetaFoods" }',
                    'handles = { x = "BetaFoods", tiktok = "betafoods" }')),
         ("brands[1].handles.tiktok: unknown channel 'tiktok'", "known channels: x")),
    # -- schedule, windows, cutoff ---------------------------------------------------------
    Case("window of zero length",
         study(edit(GOOD, 'end = "17:00"', 'end = "09:00"')),
         ("schedule.windows[0]: window ends (09:00) before it starts (09:00)",)),
    Case("window ending at 25:00",
         study(edit(GOOD, 'end = "17:00"', 'end = "25:00"')),
         ("schedule.windows[0].end: hour must be in 0..23 (got '25:00')",)),
    Case("window on a day that does not exist",
         study(edit(GOOD, 'days = "mon-fri"', 'days = "mon-funday"')),
         ("schedule.windows[0].days: cannot read days 'mon-funday'", "'mon-fri'")),
    Case("a one-day study on a Sunday with weekday windows",
         study(edit(edit(GOOD, "start = 2026-03-02\nend = 2026-03-08",
                         "start = 2026-03-08\nend = 2026-03-08"),
                    "probes_per_brand = 2", "probes_per_brand = 1")),
         ("schedule.windows: no send window falls on any day from 2026-03-08 to 2026-03-08",)),
    Case("cutoff shorter than the poll interval",
         study(edit(edit(GOOD, 'cutoff = "2d"', 'cutoff = "10m"'), 'account = "researcher"',
                    'account = "researcher"\npoll_every = "15m"')),
         ("channels.x.poll_every: polls every 15 min but the cutoff is 10 min",
          "poll more often than the cutoff")),
    Case("cutoff equal to the poll interval",
         study(edit(edit(GOOD, 'cutoff = "2d"', 'cutoff = "1h"'), 'account = "researcher"',
                    'account = "researcher"\npoll_every = "60m"')),
         ("polls every 1 h 00 min but the cutoff is 1 h 00 min",)),
    Case("cutoff too long to represent",
         study(edit(GOOD, 'cutoff = "2d"', 'cutoff = "99999999999d"')),
         (f"line {line(GOOD, 'cutoff')}: cutoff: duration '99999999999d' is far too long",)),
    Case("negative cutoff",
         study(edit(GOOD, 'cutoff = "2d"', 'cutoff = "-2d"')),
         ("cutoff: cannot read duration '-2d'",)),
    Case("year disagrees with a schedule across New Year",
         study(edit(edit(GOOD, "start = 2026-03-02\nend = 2026-03-08",
                         "start = 2025-12-29\nend = 2026-01-04"), "year = 2026", "year = 2024")),
         ("year: year 2024 disagrees with the schedule (2025-12-29 to 2026-01-04)",)),
    Case("30 February",
         study(edit(GOOD, "start = 2026-03-02", "start = 2026-02-30")),
         ("not valid TOML: Invalid date or datetime (at line 18",)),
    # -- encodings and empty files ---------------------------------------------------------
    Case("study file with only a BOM", study(BOM), ("the file is empty",)),
    Case("study file of blank CRLF lines", study(b"\r\n  \r\n\r\n"), ("the file is empty",)),
    Case("BOM and CRLF: line numbers still right",
         study(BOM + edit(GOOD, 'cutoff = "2d"', 'cuttoff = "2d"').replace("\n", "\r\n")
               .encode()),
         (f"line {line(GOOD, 'cutoff')}: cuttoff: unknown key",)),
    Case("study saved as UTF-16 (Notepad's 'Unicode')",
         study(GOOD.encode("utf-16")), ("not UTF-8 text; save it as UTF-8",)),
    Case("study saved as Latin-1",
         study(edit(GOOD, "Beta Foods", "Bêta Foods").encode("latin-1")),
         ("not UTF-8 text",)),
    Case("a store given as the study file",
         {"study.toml": GOOD, "given.db": b"SQLite format 3\x00" + bytes(100)},
         ("given.db: is a store (SQLite), not a study file",),
         args=("validate", "{dir}/given.db")),
    # -- brands CSV --------------------------------------------------------------------------
    Case("empty brands CSV", study(GOOD_WITH_CSV, ""),
         ("brands.csv: the brands CSV is empty", "one row per brand"), store=False),
    Case("brands CSV with a header and no rows", study(GOOD_WITH_CSV, CSV_HEADER),
         ("brands.csv: row 2: no brands below the header",), store=False),
    Case("brands CSV from a European Excel: BOM and semicolons",
         study(GOOD_WITH_CSV, BOM + CSV.replace(",", ";").replace("\n", "\r\n").encode()),
         ("brands.csv: row 1: header has no 'name' column; the columns are separated by ';'",),
         store=False),
    Case("tab-separated brands file",
         study(GOOD_WITH_CSV, CSV.replace(",", "\t")),
         ("the columns are separated by tabs",), store=False),
    Case("brands CSV with an unclosed quote",
         study(GOOD_WITH_CSV, CSV.replace("Alpha Stores", '"Alpha Stores')),
         ("brands.csv: row 2: a cell spans several lines", "unclosed quote"), store=False),
    Case("brands CSV with a repeated column",
         study(GOOD_WITH_CSV, CSV.replace("x,profile", "x,x")),
         ("brands.csv: row 1: column(s) x appear more than once",), store=False),
    Case("brands CSV saved as UTF-16",
         study(GOOD_WITH_CSV, CSV.encode("utf-16")), ("brands.csv: not UTF-8",), store=False),
    Case("brands_csv names a folder",
         study(GOOD_WITH_CSV.replace('brands_csv = "brands.csv"', 'brands_csv = "."')),
         ("is a folder; brands_csv must name a .csv file",), store=False),
]

# -- command lines ---------------------------------------------------------------------------

COMMAND_LINES = [
    Case("unknown command", study(GOOD), ("No such command 'runn'", "Did you mean 'run'"),
         args=("runn", "{dir}/study.toml"), code=2),
    Case("unknown option", study(GOOD), ("No such option: --fast",),
         args=("run", "{dir}/study.toml", "--fast"), code=2),
    Case("missing study argument", study(GOOD), ("Missing argument",), args=("plan",), code=2),
    Case("two studies where one is expected", study(GOOD), ("unexpected extra argument",),
         args=("validate", "{dir}/study.toml", "{dir}/study.toml"), code=2),
    Case("port out of range", study(GOOD), ("Invalid value for '--port'",),
         args=("sandbox", "--port", "70000"), code=2),
    Case("missing study path", study(GOOD), ("nope.toml: no such file; check the path",),
         args=("run", "{dir}/nope.toml")),
    Case("a folder given as the study", study(GOOD), ("is a folder; name the .toml study file",),
         args=("run", "{dir}")),
    Case("plan on a broken study", study(edit(GOOD, 'x = "BetaFoods"', 'x = "Beta.Foods"')),
         ("brands[1].handles.x: 'Beta.Foods' is not an X username",),
         args=("plan", "{dir}/study.toml", "--csv")),
    Case("run on a broken study", study(edit(GOOD, "Europe/London", "Europe/Londres")),
         ("unknown time zone 'Europe/Londres'",), args=("run", "{dir}/study.toml")),
    Case("--db is a text file", study(GOOD) | {"notes.txt": "not a database\n"},
         ("notes.txt is not a mystery store (not an SQLite database); pass another --db",),
         args=("run", "{dir}/study.toml", "--db", "{dir}/notes.txt")),
    Case("--db is a folder", study(GOOD), ("is a folder, not a mystery store",),
         args=("run", "{dir}/study.toml", "--db", "{dir}")),
    Case("--db is another study's store", study(GOOD),
         ("other.db belongs to study 'other-study', not 'test-study'",),
         args=("run", "{dir}/study.toml", "--db", "{dir}/other.db")),
    Case("export with no store yet", study(GOOD), ("no store at", "run 'mystery run'"),
         args=("export", "{dir}/study.toml"), store=False),
    Case("export from a text file", study(GOOD) | {"notes.txt": "not a database\n"},
         ("is not a mystery store",),
         args=("export", "{dir}/study.toml", "--db", "{dir}/notes.txt")),
    Case("import a folder", study(GOOD), ("is a folder; name the .csv file",),
         args=("import", "{dir}")),
    Case("--db is some other program's SQLite database", study(GOOD),
         ("foreign.sqlite is not a mystery store",),
         args=("run", "{dir}/study.toml", "--db", "{dir}/foreign.sqlite")),
    Case("report from another study's store", study(GOOD), ("belongs to study 'other-study'",),
         args=("report", "{dir}/study.toml", "--db", "{dir}/other.db")),
    Case("--sandbox-url that is not a URL", study(GOOD), ("cannot reach the sandbox",),
         args=("run", "{dir}/study.toml", "--sandbox-url", "not-a-url"), store=False),
    Case("a holiday calendar the holidays package does not know",
         study(edit(GOOD, 'timezone = "Europe/London"',
                    'timezone = "Europe/London"\nholidays = "GB-ZZZ"')),
         ("line 4: holidays: 'GB' has no subdivision 'ZZZ'; use one of GB-ENG, GB-NIR",),
         store=False),
    Case("--sandbox-url where nothing listens", study(GOOD), ("cannot reach the sandbox at "
         "http://127.0.0.1:9",), args=("run", "{dir}/study.toml", "--sandbox-url",
                                       "http://127.0.0.1:9"), store=False),
    Case("log --csv with every row refused", study(HAND) | {
        "log.csv": "probe,sent_at,reply_at,code\np9999,2026-03-02 09:00,,\n"},
         ("log.csv: row 2, column probe: 'p9999'",),
         args=("log", "{dir}/study.toml", "--csv", "{dir}/log.csv"), store=False),
]

CASES = STUDY_FILES + COMMAND_LINES


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file's hash; a released (empty) runner lock is left out: by design (lock.py) it
    is never deleted, so a refused ``run`` may leave one."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not (path.suffix == ".lock" and path.stat().st_size == 0)
    }


def _make_store(folder: Path, study_text: str, name: str) -> None:
    source = folder / f".{name}.toml"
    source.write_text(study_text)
    loaded = load_study(source)
    with Store.open(folder / f"{name}.db") as store:
        store.initialise(loaded.study, make_plan(loaded.study))
    source.unlink()


def _prepare(folder: Path, case: Case) -> None:
    for name, content in case.files.items():
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    if case.store:
        _make_store(folder, GOOD, "study")
    _make_store(folder, OTHER, "other")
    with sqlite3.connect(folder / "foreign.sqlite") as db:
        db.execute("CREATE TABLE recipes (name TEXT)")
        db.execute("INSERT INTO recipes VALUES ('soup')")
    db.close()


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands that write results/ write them under the test's folder, never the repo's."""
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_bad_input_is_refused_clearly_and_changes_nothing(tmp_path: Path, case: Case) -> None:
    folder = tmp_path / "study"
    folder.mkdir()
    _prepare(folder, case)
    before = _snapshot(tmp_path)
    args = [arg.replace("{dir}", str(folder)) for arg in case.args]

    result = CliRunner().invoke(app, args)

    output = result.output
    assert "Traceback" not in output
    if not isinstance(result.exception, SystemExit | None):  # pragma: no cover - shows the bug
        raise AssertionError(output) from result.exception
    assert result.exit_code == case.code, output
    for fragment in case.expected:
        assert fragment in output, f"{fragment!r} not in {output!r}"
    if case.code == 1:
        assert output.startswith("Error: "), output
    assert _snapshot(tmp_path) == before, "a refused input changed files on disk"


def test_the_table_covers_enough_cases() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)


# -- what must be accepted --------------------------------------------------------------------


def test_unicode_brands_rtl_and_emoji_names_are_accepted(tmp_path: Path) -> None:
    names = ["مكتبة جرير", "שופרסל", "Café Zoë 🍰", "Ørsted"]
    rows = "".join(f"{name},retail,XX,brand_{i},fast\n" for i, name in enumerate(names))
    (tmp_path / "study.toml").write_text(GOOD_WITH_CSV)
    (tmp_path / "brands.csv").write_bytes(BOM + (CSV_HEADER + rows).replace("\n", "\r\n")
                                          .encode())
    result = CliRunner().invoke(app, ["plan", str(tmp_path / "study.toml"), "--csv"])
    assert result.exit_code == 0, result.output
    assert [b.name for b in load_study(tmp_path / "study.toml").study.brands] == names
    assert "Hi مكتبة جرير, do you deliver on Sundays?" in result.output


def test_handles_written_with_at_and_twitter_as_channel_name_are_accepted(
    tmp_path: Path,
) -> None:
    text = edit(edit(GOOD, "[channels.x]", "[channels.Twitter]"),
                'x = "AlphaStores"', 'twitter = "@Alpha_Stores_15"')
    (tmp_path / "study.toml").write_text(text)
    loaded = load_study(tmp_path / "study.toml")
    assert loaded.study.brands[0].handles == {"x": "Alpha_Stores_15"}


def test_a_long_researcher_account_is_allowed_in_the_sandbox(tmp_path: Path) -> None:
    # The demo's account (mystery_researcher, 18 characters) only exists in the sandbox.
    (tmp_path / "study.toml").write_text(
        edit(GOOD, 'account = "researcher"', 'account = "mystery_researcher"'))
    assert load_study(tmp_path / "study.toml").study.channels["x"].account == \
        "mystery_researcher"


def test_a_quoted_line_break_is_reported_on_its_spreadsheet_row(tmp_path: Path) -> None:
    rows = CSV + '"Gamma\nFoods",grocery,UK,GammaFoods,fast\nDelta,grocery,UK,Delta,fast\n'
    (tmp_path / "study.toml").write_text(GOOD_WITH_CSV)
    (tmp_path / "brands.csv").write_text(rows)
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "study.toml")])
    assert result.exit_code == 1
    assert result.output.strip().endswith(
        "brands.csv: row 4: a cell spans several lines, which usually means an unclosed quote "
        '("); close the quote or remove it'
    )
