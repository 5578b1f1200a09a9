"""``mystery code`` as a coder uses it: on the replies of a real sandbox study, one keystroke a
reply, codes that move resolution times, codes files out and back in, and kappa between coders.

Keystrokes are fed as lines: without a terminal the review reads a line per key, which is also
how a script would drive it."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mystery.cli import app
from mystery.coding.review import coder_codes
from mystery.store.store import ReplyRow, Store
from mystery.timings.export import timing_rows
from tests.terminal import run_in_terminal

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo study run once against the in-process sandbox (a few seconds)."""
    folder = tmp_path_factory.mktemp("demo")
    for name in ("demo.toml", "demo-brands.csv"):
        shutil.copy(REPO / "studies" / name, folder / name)
    result = CliRunner().invoke(app, ["run", str(folder / "demo.toml"), "--quiet",
                                      "--no-report"])
    assert result.exit_code == 0, result.output
    return folder


@pytest.fixture
def study(finished: Path, tmp_path: Path) -> Path:
    """A private copy of the finished study and its store, so each test codes from scratch."""
    for name in ("demo.toml", "demo-brands.csv", "demo.db"):
        shutil.copy(finished / name, tmp_path / name)
    return tmp_path / "demo.toml"


def _replies(study: Path) -> int:
    """How many replies the demo run recorded (the review's queue length)."""
    with Store.open(study.with_suffix(".db"), create=False) as store:
        return len(store.replies())


def _code(*args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["code", *args], input=input)
    return result.exit_code, result.output


def _holding(study: Path) -> tuple[int, ReplyRow]:
    """The first reply the automatic rule calls a holding message, and its place in the queue."""
    with Store.open(study.with_suffix(".db"), create=False) as store:
        order = [r for p in store.probes() for r in store.replies(p.id)]
    return next((n, r) for n, r in enumerate(order) if r.auto_code == "acknowledgement")


def _resolution_seconds(study: Path, probe_id: str) -> float | None:
    with Store.open(study.with_suffix(".db"), create=False) as store:
        probe = next(p for p in store.probes() if p.id == probe_id)
        row = next(r for r in timing_rows(store)
                   if (r["brand"], r["sent_at"]) == (probe.brand, probe.sent_at))
    return row["resolution_seconds"]


def test_the_review_shows_the_thread_and_one_key_codes_the_reply(study: Path) -> None:
    skip, holding = _holding(study)
    before = _resolution_seconds(study, holding.probe_id)
    with Store.open(study.with_suffix(".db"), create=False) as store:
        probe = next(p for p in store.probes() if p.id == holding.probe_id)
        sent_at = probe.sent_at
    assert sent_at is not None
    held = (holding.created_at - sent_at).total_seconds()
    assert before is not None and before > held  # the rule waits for the later answer

    code, output = _code(str(study), "--coder", "alice", input="s\n" * skip + "x\nr\nq\n")
    assert code == 0, output
    screen = output.split(f"reply {skip + 1} of {_replies(study)} · coder alice", 1)[1]
    assert f"{probe.id} · {probe.brand} · x · question {probe.question}" in screen
    assert probe.text[:30] in screen and "please" in screen.lower()
    assert "▶" in screen and "acknowledgement (auto)" in screen
    assert "'x' is not a choice; press a, r, n, s or q." in screen
    assert "resolution (saved)" in screen
    left = _replies(study) - 1
    assert f"1 coded, {skip} skipped; {left} replies not coded by alice yet: run the same " \
        "command again" in output
    assert _resolution_seconds(study, holding.probe_id) == held


def test_on_a_terminal_one_keystroke_without_enter_is_enough(
        study: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mystery.cli import code as command

    monkeypatch.setattr(command, "_is_tty", lambda: True)
    code, output = _code(str(study), "--coder", "kim", input="rnsq")
    assert code == 0, output
    assert "1 coded" not in output and "2 coded, 1 skipped" in output
    with Store.open(study.with_suffix(".db"), create=False) as store:
        assert sorted(coder_codes(store, "kim").values()) == ["not_brand", "resolution"]


def test_a_second_session_starts_at_the_first_reply_not_yet_coded(study: Path) -> None:
    assert _code(str(study), "--coder", "bob", input="a\nn\nq\n")[0] == 0
    code, output = _code(str(study), "--coder", "bob", input="")  # end of input: quit
    assert code == 0, output
    assert f"reply 1 of {_replies(study) - 2} · coder bob" in output
    with Store.open(study.with_suffix(".db"), create=False) as store:
        assert sorted(coder_codes(store, "bob").values()) == ["acknowledgement", "not_brand"]
    again = _code(str(study), "--coder", "bob", "--all", input="q\n")[1]
    assert f"reply 1 of {_replies(study)} · coder bob" in again and "(yours)" in again


def test_a_hostile_reply_cannot_act_on_the_coders_terminal(study: Path) -> None:
    with Store.open(study.with_suffix(".db"), create=False) as store:
        first = store.replies()[0]
        hostile = ReplyRow("x", "1", first.probe_id, "Evil\x1b]0;t\x07", "ok\x1b[2J\u202egnp.exe",
                           first.created_at, None, None, "resolution")
        store.record_poll("x", [hostile], None, first.created_at, first.created_at)
        skip = [r.message_id for p in store.probes() for r in store.replies(p.id)].index("1")
    output = _code(str(study), "--coder", "eve", input="s\n" * skip + "q\n")[1]
    assert "\x1b" not in output and "\u202e" not in output
    assert r"ok\x1b[2J\u202egnp.exe" in output and r"@Evil\x1b]0;t\x07" in output


def test_export_import_round_trip_through_the_cli(study: Path, tmp_path: Path) -> None:
    skip, holding = _holding(study)
    _code(str(study), "--coder", "alice", input="s\n" * skip + "r\nq\n")
    exported = tmp_path / "alice.csv"
    code, output = _code(str(study), "--export", str(exported), "--coder", "alice")
    assert code == 0 and f"wrote {_replies(study)} codes to {exported}" in output
    lines = exported.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "probe,channel,message_id,brand,reply_at,code,coder,source"
    assert f"x,{holding.message_id}," in next(li for li in lines if ",alice,manual" in li)
    assert len(lines) == _replies(study) + 1 and "DM" not in "".join(lines)

    # A colleague takes alice's file as the start of their own: clear the coder column.
    theirs = tmp_path / "carol.csv"
    theirs.write_text("\n".join(lines).replace(",alice,", ",,"), encoding="utf-8")
    code, output = _code(str(study), "--import", str(theirs), "--coder", "carol")
    assert code == 0, output
    assert f"imported {_replies(study)} codes by carol" in output
    assert "(1 differ from the automatic code)" in output
    with Store.open(study.with_suffix(".db"), create=False) as store:
        assert coder_codes(store, "carol")[("x", holding.message_id)] == "resolution"
        assert len(coder_codes(store, "carol")) == _replies(study)


def test_a_bad_import_exits_1_with_row_numbers_and_writes_nothing(study: Path,
                                                                  tmp_path: Path) -> None:
    exported = tmp_path / "codes.csv"
    _code(str(study), "--export", str(exported))
    lines = exported.read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3].replace(",resolution,", ",maybe,")
    lines[7] = lines[7].replace(",x,", ",x,12345", 1)
    bad = tmp_path / "bad.csv"
    bad.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8-sig")
    with Store.open(study.with_suffix(".db"), create=False) as store:
        before = store.code_rows()
    code, output = _code(str(study), "--import", str(bad), "--coder", "dan")
    assert code == 1
    assert f"Error: {bad}: row 4, column code: 'maybe': not a code" in output
    assert f"{bad}: row 8, column message_id: '12345" in output and "Traceback" not in output
    with Store.open(study.with_suffix(".db"), create=False) as store:
        assert store.code_rows() == before == []


def test_export_with_text_to_stdout_redacts_signatures(study: Path) -> None:
    with Store.open(study.with_suffix(".db"), create=False) as store:
        first = store.replies()[0]
        signed = ReplyRow("x", "2", first.probe_id, "Brand", "@mystery_demo Sorted now! ^JS",
                          first.created_at, None, None, "resolution")
        store.record_poll("x", [signed], None, first.created_at, first.created_at)
    code, output = _code(str(study), "--export", "-", "--with-text")
    assert code == 0
    assert output.splitlines()[0].endswith(",source,text")
    assert "'@mystery_demo Sorted now! ^[redacted]" in output and "^JS" not in output


def test_agreement_prints_kappa_and_disagreements(study: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    _code(str(study), "--coder", "ann", input="r\nr\na\nr\nq\n")
    _code(str(study), "--coder", "ben", input="r\na\na\nr\nq\n")
    _code(str(study), "--export", str(a), "--coder", "ann")
    _code(str(study), "--export", str(b), "--coder", "ben")
    code, output = _code("--agreement", str(a), str(b))
    assert code == 0, output
    # 4 replies; agree on 3. Ann: r r a r, Ben: r a a r. pₒ = 0.75,
    # pₑ = (3/4)(2/4) + (1/4)(2/4) = 0.5, κ = 0.5.
    assert "Agreement: ann (A) and ben (B)" in output
    for label, value in [("replies coded by both", "4"), ("observed agreement", "0.750"),
                         ("agreement expected by chance", "0.500"), ("Cohen's kappa", "0.500")]:
        assert any(label in li and value in li for li in output.splitlines()), label
    assert "1 disagreements" in output
    row = next(li for li in output.splitlines() if "│ p0" in li)
    assert "resolution" in row and "acknowledgement" in row
    code, output = _code("--agreement", str(a), str(b), "--format", "json")
    found = json.loads(output)
    assert (found["both_coded"], found["observed"], found["kappa"]) == (4, 0.75, 0.5)
    assert [(d["code_a"], d["code_b"]) for d in found["disagreements"]] == \
        [("resolution", "acknowledgement")]


@pytest.mark.parametrize(("args", "code", "message"), [
    ([], 2, "name the study file"),
    (["{study}", "--import", "x.csv"], 2, "say whose codes these are"),
    (["{study}", "--import", "x.csv", "--export", "y.csv"], 2, "one of --export, --import"),
    (["{study}", "--main-coder", "al", "--export", "y.csv"], 2, "one of --export, --import"),
    (["{study}", "--main-coder", "nobody"], 1, "'nobody' has coded no reply"),
    (["{study}", "--import", "{tmp}/none.csv", "--coder", "x"], 1, "no such file"),
    (["{study}", "--db", "{tmp}/none.db"], 1, "no store at"),
    (["{study}", "--export", "{tmp}"], 1, "cannot write"),  # a folder, not a file
    (["{study}", "--export", "{study}/codes.csv"], 1, "cannot write"),  # under a file
])
def test_mistakes_are_one_clear_message(study: Path, tmp_path: Path, args: list[str],
                                        code: int, message: str) -> None:
    filled = [a.format(study=study, tmp=tmp_path) for a in args]
    got, output = _code(*filled)
    assert got == code and message in output and "Traceback" not in output


def test_a_store_of_another_study_is_refused(study: Path, tmp_path: Path) -> None:
    with Store.open(study.with_suffix(".db"), create=False) as store:
        store.set_meta({"study": "other"})
    code, output = _code(str(study), "--coder", "x", input="q\n")
    assert code == 1 and "holds study 'other', not 'demo'" in output


def test_nothing_left_to_code_says_so(study: Path) -> None:
    with Store.open(study.with_suffix(".db"), create=False) as store:
        now = datetime.now(UTC)
        store.set_codes(((r.channel, r.message_id, "resolution") for r in store.replies()),
                        "zoe", now)
    code, output = _code(str(study), "--coder", "zoe")
    assert code == 0 and f"All {_replies(study)} replies are coded by zoe; pass --all" in output


def _said(output: str) -> str:
    """The output with rich's line wrapping undone, to find whole sentences in it."""
    return " ".join(output.split())


def test_the_first_coder_drives_the_timings_until_another_is_made_main(study: Path) -> None:
    skip, holding = _holding(study)
    auto = _resolution_seconds(study, holding.probe_id)
    with Store.open(study.with_suffix(".db"), create=False) as store:
        sent_at = next(p for p in store.probes() if p.id == holding.probe_id).sent_at
    assert sent_at is not None
    held = (holding.created_at - sent_at).total_seconds()

    code, output = _code(str(study), "--coder", "alice", input="s\n" * skip + "a\nq\n")
    assert code == 0, output
    assert "Nobody has coded this study yet: codes by alice (you) will drive the timings; " \
        "other coders' codes are kept for --agreement only." in _said(output)
    assert "· coder alice (main coder)" in output
    assert "Resolution times follow your codes" in _said(output)

    code, output = _code(str(study), "--coder", "bob", input="s\n" * skip + "r\nq\n")
    assert code == 0, output
    assert "Codes by alice drive the timings; you are coding as bob (second coder): your " \
        "codes are kept for --agreement and never change the timings ('mystery code " \
        f"{study} --main-coder bob' would make them drive the timings)." in _said(output)
    assert "· coder bob (second coder)" in output
    assert "The timings follow alice's codes (main coder); yours are for --agreement." \
        in _said(output)
    assert _resolution_seconds(study, holding.probe_id) == auto  # alice agreed with the rule

    code, output = _code(str(study), "--main-coder", "bob")
    assert code == 0, output
    assert "Codes by bob (1 reply coded) now drive the timings instead of alice's. Run " \
        f"'mystery report {study}' to update the figures." in _said(output)
    assert _resolution_seconds(study, holding.probe_id) == held  # bob: the holding reply answers
    assert "Codes by bob already drive" in _code(str(study), "--main-coder", "bob")[1]
    output = _code(str(study), "--coder", "alice", input="q\n")[1]
    assert "Codes by bob drive the timings; you are coding as alice (second coder)" \
        in _said(output)


HOSTILE = ("thanks\x1b]0;pwned\x07 \x1b[2J\x1b[H "
           "\x1b]8;;http://evil.example\x1b\\link\x1b]8;;\x1b\\ "
           "\x1b]52;c;cHduZWQ=\x07 \x9b31m red \u202egnp.exe \x00 end")
"""A reply that retitles the terminal, clears it, forges a link, writes the clipboard, uses an
8-bit CSI, reverses what follows and holds a NUL."""


def test_exported_reply_text_cannot_act_on_the_terminal_it_is_shown_in(study: Path) -> None:
    with Store.open(study.with_suffix(".db"), create=False) as store:
        probe = next(p for p in store.probes() if p.sent_at is not None)
        assert probe.sent_at is not None and probe.message_id is not None
        brand = store.replies(probe.id)[0].author
        now = datetime(2026, 3, 9, tzinfo=UTC)
        store.record_poll("x", [ReplyRow(
            channel="x", message_id="999000111", probe_id=probe.id, author=brand,
            text=HOSTILE, created_at=probe.sent_at, in_reply_to=probe.message_id,
            conversation_id=probe.message_id, auto_code="acknowledgement",
        )], None, now, now)
    code, shown = run_in_terminal(["code", str(study), "--export", "-", "--with-text"],
                                  study.parent)
    assert code == 0, shown[-2000:]
    assert b"999000111" in shown  # the hostile reply is listed ...
    for raw in (b"\x1b]", b"\x1b[2J", b"\x9b", "\u202e".encode(), b"\x00", b"\x07"):
        assert raw not in shown  # ... but none of its controls reach the terminal
    assert rb"\x1b]0;pwned\x07" in shown and rb"\u202e" in shown  # shown, made visible

    piped = CliRunner().invoke(app, ["code", str(study), "--export", "-", "--with-text"])
    assert piped.exit_code == 0 and "\x1b]0;pwned\x07" in piped.stdout  # a pipe: the evidence
