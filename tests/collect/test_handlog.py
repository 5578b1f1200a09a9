"""Hand-logged channels: the researcher logs sends and replies (``mystery log``), by prompt or
by CSV, at minute precision in the study's time zone; cutoffs settle probes on the real clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from mystery.cli import app
from mystery.clock import RealClock
from mystery.collect import handlog
from mystery.collect.connect import connect
from mystery.store.store import ProbeRow, Store
from mystery.study.load import load_study
from mystery.timings.export import timing_rows
from tests.studybuilder import study_data, write_study

NOW = datetime(2026, 3, 10, 12, 0, 42, tzinfo=UTC)  # 08:00 in New York (EDT since 8 March)
NEW_YORK = ZoneInfo("America/New_York")

STUDY = study_data(
    name="hand-t", timezone="America/New_York", synthetic=None,
    channels={"phone": {"account": "researcher"}, "chat": {"account": "researcher"}},
    questions=[{"id": "sunday", "text": "Hi {brand}, do you deliver on Sundays?"},
               {"id": "returns", "text": "Hello {brand}, can I return an opened item?"}],
    schedule={"start": date(2026, 3, 2), "end": date(2026, 3, 6), "probes_per_brand": 1,
              "min_gap": "1d"},
    # study.py asks sandbox profiles of hand-logged channels (reported)
    brands=[{"name": "Acme", "handles": {"phone": "+1 212 555 0100",
                                         "chat": "https://acme.test/chat"}, "profile": "none"},
            {"name": "Globex", "handles": {"phone": "1-800-555-0199"}, "profile": "none"}],
    sandbox={"profiles": {"none": {"answer_rate": 0.0}}},
)


@pytest.fixture
def study_file(tmp_path: Path) -> Path:
    return write_study(tmp_path, STUDY, "hand.toml")


@pytest.fixture
def at_now(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[datetime]]:
    """The CLI's clock, fixed at NOW (a test may move it by replacing clock[0])."""
    clock = [NOW]
    monkeypatch.setattr("mystery.cli.log._now", lambda: clock[0])
    yield clock


def _store(study_file: Path) -> Store:
    return Store.open(study_file.with_suffix(".db"), create=False)


def _probes(study_file: Path) -> dict[tuple[str, str], ProbeRow]:
    with _store(study_file) as store:
        return {(p.brand, p.channel): p for p in store.probes()}


def _log(args: list[str], answers: str = "") -> tuple[int, str]:
    result = CliRunner().invoke(app, ["log", *args], input=answers)
    return result.exit_code, result.output


def _local(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=NEW_YORK).astimezone(UTC)


# -- typed times -------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("now", datetime(2026, 3, 10, 12, 0, tzinfo=UTC)),  # seconds dropped: to the minute
    ("07:15", datetime(2026, 3, 10, 11, 15, tzinfo=UTC)),  # today, New York (EDT)
    ("2026-03-06 09:30", datetime(2026, 3, 6, 14, 30, tzinfo=UTC)),  # EST, before the change
    ("2026-03-06T09:30:00", datetime(2026, 3, 6, 14, 30, tzinfo=UTC)),  # a spreadsheet's form
    ("2026-11-01 01:30 -05:00", datetime(2026, 11, 1, 6, 30, tzinfo=UTC)),  # offset decides
])
def test_times_are_read_in_the_study_zone_to_the_minute(text: str, expected: datetime) -> None:
    assert handlog.parse_local_time(text, NEW_YORK, NOW) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("2026-11-01 01:30", "happens twice"),  # the clocks go back: which 01:30?
    ("2026-03-08 02:30", "does not exist"),  # the clocks go forward past it
    ("9.14", "cannot read"),
    ("2026-03-06 09:30:15", "to the minute"),
])
def test_ambiguous_missing_and_unreadable_times_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        handlog.parse_local_time(text, NEW_YORK, NOW)


# -- CSV ---------------------------------------------------------------------------------------


def _csv(tmp_path: Path, study_file: Path, rows: list[str]) -> Path:
    """A CSV for ``rows``, where {acme_phone}-style fields are replaced by probe ids."""
    with handlog.open_store(load_study(study_file)) as store:
        ids = {f"{p.brand.lower()}_{p.channel}": p.id for p in store.probes()}
    path = tmp_path / "log.csv"
    path.write_text("probe,sent_at,reply_at,code\n"
                    + "".join(r.format(**ids) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_csv_logs_sends_and_replies_and_settles_what_it_decides(
    study_file: Path, tmp_path: Path, at_now: list[datetime]
) -> None:
    csv = _csv(tmp_path, study_file, [
        "{acme_phone},2026-03-02 09:14,2026-03-02 09:31,acknowledgement",
        "{acme_phone},,2026-03-02 11:02,resolution",  # sent_at given once is enough
        "{globex_phone},2026-03-03 14:40,,",  # no reply, cutoff long past: unanswered
        "{acme_chat},2026-03-09 16:00,2026-03-09 16:05,acknowledgement",  # still waiting
    ])
    code, output = _log([str(study_file), "--csv", str(csv)])
    assert code == 0, output
    assert "4 row(s) read, 6 new entries logged, 2 probe(s) settled" in output

    probes = _probes(study_file)
    acme, globex, chat = (probes[("Acme", "phone")], probes[("Globex", "phone")],
                          probes[("Acme", "chat")])
    assert acme.sent_at == datetime(2026, 3, 2, 14, 14, tzinfo=UTC)  # EST: UTC-5
    assert chat.sent_at == datetime(2026, 3, 9, 20, 0, tzinfo=UTC)  # EDT: UTC-4
    assert (acme.state, acme.outcome) == ("settled", "answered")
    assert (globex.state, globex.outcome) == ("settled", "unanswered")
    assert (chat.state, probes[("Globex", "chat")].state) == ("sent", "planned")
    with _store(study_file) as store:
        replies = store.replies(acme.id)
        assert [(r.created_at, r.auto_code) for r in replies] == [
            (_local("2026-03-02 09:31"), "acknowledgement"),
            (_local("2026-03-02 11:02"), "resolution")]
        assert replies[0].author == "+1 212 555 0100"
        # Marked hand-timed, for the method notes.
        sources = dict(store.db.execute("SELECT id, timing_source FROM probes").fetchall())
        assert {sources[p.id] for p in (acme, globex, chat)} == {"hand"}
        rows = {r["brand"] + r["channel"]: r for r in timing_rows(store)}
    assert rows["Acmephone"]["ack_seconds"] == 17 * 60
    assert rows["Acmephone"]["resolution_seconds"] == 108 * 60

    # The same file again changes nothing.
    code, output = _log([str(study_file), "--csv", str(csv)])
    assert code == 0 and "0 new entries" in output


def test_a_reply_logged_late_turns_a_settled_unanswered_probe_answered(
    study_file: Path, tmp_path: Path, at_now: list[datetime]
) -> None:
    first = _csv(tmp_path, study_file, ["{globex_phone},2026-03-03 14:40,,"])
    assert _log([str(study_file), "--csv", str(first)])[0] == 0
    assert _probes(study_file)[("Globex", "phone")].outcome == "unanswered"
    later = _csv(tmp_path, study_file, ["{globex_phone},,2026-03-04 10:00,acknowledgement"])
    assert _log([str(study_file), "--csv", str(later)])[0] == 0
    assert _probes(study_file)[("Globex", "phone")].outcome == "answered"


def test_bad_rows_are_all_reported_and_nothing_is_written(
    study_file: Path, tmp_path: Path, at_now: list[datetime]
) -> None:
    csv = _csv(tmp_path, study_file, [
        "p9999,2026-03-02 09:14,,",
        "{acme_phone},2026-03-02 9.14,,",
        "{globex_phone},2026-03-03 14:40,2026-03-03 14:00,acknowledgement",
        "{acme_chat},2026-03-04 10:00,2026-03-04 10:30,",
        "{globex_chat},2026-03-04 10:00,2026-03-04 10:30,answered",
        "{acme_phone},2026-03-20 10:00,,",
        "{globex_chat},2026-03-04 11:00,2026-03-04 11:30,resolution",
    ])
    code, output = _log([str(study_file), "--csv", str(csv)])
    assert code == 1
    lines = [line for line in output.splitlines() if "log.csv" in line]
    for where, says in [
        ("row 2, column probe", "no probe 'p9999'"),
        ("row 3, column sent_at", "cannot read '2026-03-02 9.14'"),
        ("row 4, column reply_at", "comes before the probe was sent"),
        ("row 5, column code", "a reply needs a code"),
        ("row 6, column code", "'answered' is not one of acknowledgement, resolution"),
        ("row 7, column sent_at", "in the future"),
        ("row 8, column sent_at", "differs from an earlier row"),
    ]:
        assert any(where in line and says in line for line in lines), (where, output)
    assert "Traceback" not in output
    with _store(study_file) as store:
        assert {p.state for p in store.probes()} == {"planned"}
        assert store.replies() == []


def test_a_csv_with_the_wrong_header_says_what_it_must_be(
    study_file: Path, tmp_path: Path, at_now: list[datetime]
) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text("probe,sent,reply\np0001,2026-03-02 09:00,\n")
    code, output = _log([str(study_file), "--csv", str(csv)])
    assert code == 1
    assert "row 1: missing column(s) sent_at, reply_at, code" in output
    assert "probe,sent_at,reply_at,code" in output


# -- prompts -----------------------------------------------------------------------------------


def test_the_prompts_log_a_send_and_replies_validate_times_and_quit_cleanly(
    study_file: Path, at_now: list[datetime]
) -> None:
    answers = "\n".join([
        "now",  # the first due probe: sent now (12:00 UTC, 08:00 in New York)
        "09:00",  # a reply in the future: refused, asked again
        "07:45",  # a reply before the send: refused
        "now", "x", "r",  # a reply now; a bad code, then resolution: settled
        "2026-03-09 10:00",  # the second: sent yesterday morning (EDT)
        "none",  # no reply yet
        "skip",  # the third: not sent yet
        "quit",
    ]) + "\n"
    code, output = _log([str(study_file)], answers)
    assert code == 0, output
    assert "in the future" in output and "comes before the probe was sent" in output
    assert "Settled: answered." in output and "Stopped." in output
    assert "question: " in output and "+1 212 555 0100" in output  # what to ask, and where

    probes = sorted(_probes(study_file).values(), key=lambda p: (p.planned_at, p.id))
    first, second, third = probes[:3]
    assert first.sent_at == datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    assert (first.state, first.outcome) == ("settled", "answered")
    assert second.sent_at == datetime(2026, 3, 9, 14, 0, tzinfo=UTC) and second.state == "sent"
    assert third.state == "planned"
    with _store(study_file) as store:
        assert [(r.created_at, r.auto_code) for r in store.replies(first.id)] == [
            (datetime(2026, 3, 10, 12, 0, tzinfo=UTC), "resolution")]

    # Two days later the second probe's cutoff has passed with no reply: settled on the way in.
    at_now[0] = NOW + timedelta(days=2)
    code, output = _log([str(study_file)], "")
    assert code == 0 and f"Settled 1 probe(s) whose cutoff has passed: {second.id}" in output
    assert _probes(study_file)[(second.brand, second.channel)].outcome == "unanswered"


def test_giving_up_settles_the_probe_and_is_kept_for_censoring(
    study_file: Path, at_now: list[datetime]
) -> None:
    code, output = _log([str(study_file)], "now\ngave-up\nquit\n")
    assert code == 0, output
    with _store(study_file) as store:
        (probe,) = [p for p in store.probes() if p.sent_at is not None]
        assert (probe.state, probe.outcome) == ("settled", "unanswered")
        assert store.gave_up() == {probe.id: datetime(2026, 3, 10, 12, 0, tzinfo=UTC)}


def test_settling_by_the_real_clock(study_file: Path) -> None:
    study = load_study(study_file).study
    with handlog.open_store(load_study(study_file)) as store:
        a, b = [p.id for p in store.probes()][:2]
        sent = datetime(2026, 3, 9, 15, 0, tzinfo=UTC)
        now = sent + timedelta(hours=1)
        entries = [handlog.sent_entry(store, study, probe, sent, now) for probe in (a, b)]
        handlog.log(store, study, [e for e in entries if e], now)
        ack = handlog.reply_entry(store, study, a, now, "acknowledgement", now)
        handlog.log(store, study, [ack], now)
        # Before the cutoff nothing is decided; an acknowledgement does not settle.
        assert handlog.settle(store, study, sent + timedelta(days=1)) == []
        assert handlog.settle(store, study, sent + timedelta(days=2)) == [a, b]
        outcomes = {p.id: p.outcome for p in store.probes_by_id([a, b])}
    assert outcomes == {a: "answered", b: "unanswered"}


def test_a_study_without_hand_logged_channels_is_refused(tmp_path: Path) -> None:
    demo = Path(__file__).resolve().parents[2] / "studies" / "demo.toml"
    code, output = _log([str(demo), "--db", str(tmp_path / "x.db")])
    assert code == 1 and "has no hand-logged channel" in output


def test_connect_leaves_hand_logged_channels_to_mystery_log(study_file: Path) -> None:
    with connect(load_study(study_file).study) as connection:
        assert connection.channels == {}
        assert isinstance(connection.clock, RealClock)


def test_a_probe_given_up_on_is_censored_when_the_researcher_stopped_waiting(
    study_file: Path,
) -> None:
    study = load_study(study_file).study
    with handlog.open_store(load_study(study_file)) as store:
        a, b = [p.id for p in store.probes()][:2]
        sent = datetime(2026, 3, 9, 15, 0, tzinfo=UTC)
        now = sent + timedelta(hours=3)
        entries = [handlog.sent_entry(store, study, probe, sent, now) for probe in (a, b)]
        handlog.log(store, study, [e for e in entries if e], now)
        ack = handlog.reply_entry(store, study, b, sent + timedelta(minutes=10),
                                  "acknowledgement", now)
        handlog.log(store, study, [ack], now)
        handlog.give_up(store, study, a, sent + timedelta(minutes=40), now)
        handlog.give_up(store, study, b, sent + timedelta(hours=2), now)
        rows = {r["brand"]: r for r in timing_rows(store)}
        brands = {p.id: p.brand for p in store.probes_by_id([a, b])}
    # Not answered by the time the researcher hung up: censored at 40 min, not at the cutoff.
    assert rows[brands[a]]["status"] == "unanswered"
    assert rows[brands[a]]["cutoff_seconds"] == 40 * 60
    assert rows[brands[b]]["ack_seconds"] == 600 and rows[brands[b]]["cutoff_seconds"] == 7200
