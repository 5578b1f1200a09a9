"""Coding replies by hand (mystery.coding.review): codes decide resolution times, codes files travel
between coders and back without loss, a bad file changes nothing, and kappa is the textbook one.

The store here is built row by row through ``Store`` methods (fast, and every reply is one we
chose); the CLI tests run a real sandbox study."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import pytest

from mystery.coding.coders import Coders, MainCoderChange, coders, set_main_coder
from mystery.coding.review import (
    ReviewSession,
    agreement,
    code_rows,
    coder_codes,
    cohen_kappa,
    export_codes,
    import_codes,
    read_codes,
    redact_signature,
)
from mystery.errors import ImportFileError, MysteryError
from mystery.store.store import ReplyRow, Store
from mystery.study.load import load_study
from mystery.study.plan import make_plan
from mystery.text import spreadsheet_safe
from mystery.timings.export import timing_rows

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 4, 1, tzinfo=UTC)
HOLDING = "@mystery_demo Please DM us your order number and we'll look into it."
ANSWER = "@mystery_demo Yes: free delivery on every order over £30. ^JS"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """Three sent probes: one with a holding reply then an answer, one answered at once, one
    never answered."""
    study = load_study(REPO / "studies" / "demo.toml").study
    s = Store.open(tmp_path / "study.db")
    s.initialise(study, make_plan(study)[:3])
    first, second, third = s.probes()
    sent = datetime(2026, 3, 2, 10, tzinfo=UTC)
    replies = [
        (first.id, "101", HOLDING, sent + timedelta(minutes=10)),
        (first.id, "102", ANSWER, sent + timedelta(hours=2)),
        (second.id, "201", "@mystery_demo Open until 8pm today -Sam", sent + timedelta(minutes=5)),
    ]
    for n, probe in enumerate((first, second, third)):
        s.begin_send(probe.id, sent)
        s.mark_sent(probe.id, f"9{n}", sent, probe.text, sent)
    s.record_poll("x", [
        ReplyRow("x", mid, probe_id, "Brand", text, at, None, None,
                 "acknowledgement" if text == HOLDING else "resolution")
        for probe_id, mid, text, at in replies
    ], None, sent + timedelta(days=1), sent + timedelta(days=1))
    for probe in (first, second, third):
        s.settle(probe.id, "answered" if probe is not third else "unanswered", NOW)
    yield s
    s.close()


def _resolution(store: Store, probe_id: str) -> float | None:
    probe = next(p for p in store.probes() if p.id == probe_id)
    row = next(r for r in timing_rows(store) if r["sent_at"] == probe.sent_at
               and r["brand"] == probe.brand)
    return row["resolution_seconds"]


# -- the review session ------------------------------------------------------------------


def test_the_queue_holds_every_reply_in_thread_order_with_its_thread(store: Store) -> None:
    session = ReviewSession(store, "alice")
    assert [i.reply.message_id for i in session.queue] == ["101", "102", "201"]
    assert [r.message_id for r in session.queue[0].thread] == ["101", "102"]
    assert session.total == 3 and session.uncoded() == 3


def test_coding_a_holding_reply_as_resolution_moves_the_resolution_time(store: Store) -> None:
    probe_id = store.probes()[0].id
    assert _resolution(store, probe_id) == 7200.0  # the automatic code: the second reply
    session = ReviewSession(store, "alice")
    assert session.mark(session.queue[0], "r", NOW) == "resolution"
    assert _resolution(store, probe_id) == 600.0
    assert session.times(session.queue[0]) is not None
    assert session.times(session.queue[0]).resolution == 600.0  # type: ignore[union-attr]


def test_not_a_brand_reply_stops_counting_as_acknowledgement(store: Store) -> None:
    session = ReviewSession(store, "alice")
    session.mark(session.queue[0], "n", NOW)
    times = session.times(session.queue[0])
    assert times is not None and times.ack == 7200.0


def test_a_second_session_resumes_where_the_coder_stopped(store: Store) -> None:
    first = ReviewSession(store, "alice")
    first.mark(first.queue[0], "a", NOW)
    first.mark(first.queue[1], "s", NOW)
    assert (first.coded, first.skipped) == (1, 1)
    assert [i.reply.message_id for i in ReviewSession(store, "alice").queue] == ["102", "201"]
    assert len(ReviewSession(store, "alice", everything=True).queue) == 3
    assert len(ReviewSession(store, "bob").queue) == 3  # each coder codes everything


def test_a_coder_name_must_be_usable(store: Store) -> None:
    with pytest.raises(MysteryError, match="--coder"):
        ReviewSession(store, "  ")


# -- codes files -------------------------------------------------------------------------


def test_export_gives_each_coder_their_own_codes_and_by_default_what_timings_use(
        store: Store) -> None:
    store.set_code("x", "101", "resolution", "alice", NOW)
    store.set_code("x", "101", "not_brand", "bob", NOW + timedelta(seconds=1))
    store.set_code("x", "201", "not_brand", "bob", NOW + timedelta(seconds=1))
    alice = {r.message_id: (r.code, r.coder, r.source) for r in code_rows(store, "alice")}
    assert alice == {"101": ("resolution", "alice", "manual"),
                     "102": ("resolution", "", "auto"), "201": ("resolution", "", "auto")}
    # Without a coder: the main coder's (alice, who coded first), else the automatic code;
    # bob's later codes are for agreement only.
    used = {r.message_id: (r.code, r.source) for r in code_rows(store)}
    assert used == {"101": ("resolution", "manual"), "102": ("resolution", "auto"),
                    "201": ("resolution", "auto")}
    assert store.codes() == {("x", "101"): "resolution"}


# -- the main coder ----------------------------------------------------------------------------


def test_when_two_coders_disagree_the_timings_follow_the_main_coder(store: Store) -> None:
    probe_id = store.probes()[0].id
    store.set_code("x", "101", "acknowledgement", "alice", NOW)  # agrees with the rule
    store.set_code("x", "101", "resolution", "bob", NOW + timedelta(hours=1))  # codes later
    assert coders(store) == Coders("alice", {"alice": 1, "bob": 1})
    assert coders(store).role("alice") == "main" and coders(store).role("bob") == "second"
    assert _resolution(store, probe_id) == 7200.0  # alice's reading: the second reply answers
    store.set_code("x", "101", "acknowledgement", "alice", NOW + timedelta(hours=2))
    assert _resolution(store, probe_id) == 7200.0  # re-coding never hands the role over


def test_switching_the_main_coder_switches_the_timings(store: Store) -> None:
    probe_id = store.probes()[0].id
    store.set_code("x", "101", "acknowledgement", "alice", NOW)
    store.set_code("x", "101", "resolution", "bob", NOW)
    assert set_main_coder(store, "bob") == MainCoderChange("alice", "bob", 1)
    assert _resolution(store, probe_id) == 600.0  # bob: the holding reply already answers
    assert set_main_coder(store, " alice ").main == "alice"
    assert _resolution(store, probe_id) == 7200.0


def test_a_main_coder_who_never_coded_is_refused(store: Store) -> None:
    assert coders(store) == Coders(None, {})
    assert coders(store).role("alice") == "first"
    store.set_code("x", "101", "resolution", "alice", NOW)
    with pytest.raises(MysteryError, match=r"'alcie' has coded no reply in .*study\.db "
                       r"\(coders and their codes: alice \(1\)\); check the spelling"):
        set_main_coder(store, "alcie")
    assert coders(store).main == "alice"


def test_a_store_coded_before_the_rule_takes_its_earliest_coder_as_main(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store.set_code("x", "101", "not_brand", "bob", NOW + timedelta(days=1))
    store.set_code("x", "101", "resolution", "alice", NOW)
    with store.transaction() as db:  # as an older mystery left it: codes, no main coder,
        db.execute("DELETE FROM meta WHERE key = 'main_coder'")  # the last migration not run
        db.execute("DELETE FROM migrations WHERE name = 'm005_main_coder'")
    path = store.path
    store.close()
    with Store.open(path) as reopened:
        assert coders(reopened).main == "alice"
        assert reopened.codes() == {("x", "101"): "resolution"}


def test_export_then_import_round_trips_codes_to_another_coder(store: Store,
                                                              tmp_path: Path) -> None:
    store.set_code("x", "101", "resolution", "alice", NOW)
    store.set_code("x", "201", "not_brand", "alice", NOW)
    path = tmp_path / "alice.csv"
    assert export_codes(store, path, "alice") == 3
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "probe,channel,message_id,brand,reply_at,code,coder,source"
    assert "DM us" not in text  # no reply text without --with-text
    path.write_text(text.replace(",alice,", ",,"), encoding="utf-8")  # make them bob's
    done = import_codes(store, path, "bob", NOW)
    assert (done.written, done.uncoded, done.changed) == (3, 0, 2)
    assert coder_codes(store, "bob") == coder_codes(store, "alice") | {("x", "102"): "resolution"}


def test_export_with_text_redacts_signatures_and_defuses_formulas(store: Store,
                                                                  tmp_path: Path) -> None:
    path = tmp_path / "codes.csv"
    export_codes(store, path, with_text=True)
    rows = {r.message_id: r for r in read_codes(path)}
    assert set(rows) == {"101", "102", "201"}
    text = path.read_text(encoding="utf-8")
    assert "^JS" not in text and "-Sam" not in text
    assert "'@mystery_demo Yes: free delivery on every order over £30. ^[redacted]" in text
    assert "Open until 8pm today -[redacted]" in text


def test_import_accepts_bom_crlf_review_keys_and_blank_codes(store: Store,
                                                             tmp_path: Path) -> None:
    path = tmp_path / "codes.csv"
    path.write_bytes("\ufeffChannel,Message_ID,Code\r\nx,101,R\r\nx,102,\r\n\r\nx,201,n\r\n"
                     .encode())
    done = import_codes(store, path, "carol", NOW)
    assert (done.written, done.uncoded) == (2, 1)
    assert coder_codes(store, "carol") == {("x", "101"): "resolution", ("x", "201"): "not_brand"}


def test_a_bad_codes_file_reports_every_row_and_writes_nothing(store: Store,
                                                               tmp_path: Path) -> None:
    store.set_code("x", "101", "acknowledgement", "dave", NOW)
    first, second = (p.id for p in store.probes()[:2])
    path = tmp_path / "codes.csv"
    path.write_text(
        "probe,channel,message_id,code,coder\n"
        f"{first},x,101,resolution,\n"          # row 2: fine on its own
        f"{first},x,999,resolution,\n"          # row 3: no such reply
        f"{first},x,998,resolved,\n"            # row 4: not a code
        f"{first},x,2.03E+18,resolution,\n"     # row 5: a spreadsheet ate the id
        f"{first},x,101,acknowledgement,\n"     # row 6: the same reply as row 2
        "p0099,x,201,resolution,\n"             # row 7: the reply is another probe's
        f"{first},x,102\n"                      # row 8: a short row
        f"{first},x,102,resolution,erin\n",     # row 9: someone else's code
        encoding="utf-8")
    before = store.code_rows()
    with pytest.raises(ImportFileError) as caught:
        import_codes(store, path, "dave", NOW)
    assert store.code_rows() == before
    message = str(caught.value)
    for where, why in [
        ("row 3, column message_id", "'999': no reply with this id on 'x'"),
        ("row 4, column code", "'resolved': not a code; use acknowledgement, resolution"),
        ("row 5, column message_id", "a spreadsheet turned the id into a number"),
        ("row 6, column message_id", "the same reply is on row 2; keep one"),
        ("row 7, column probe", f"'p0099': this reply belongs to probe {second!r}"),
        ("row 8", "has 3 cells but the header has 5"),
        ("row 9, column coder", "'erin': these codes are erin's, not dave's; pass --coder erin"),
    ]:
        assert f"{path}: {where}: " in message and why in message, (where, message)
    assert [p.where.split(",")[0] for p in caught.value.problems] == [
        "row 3", "row 4", "row 5", "row 6", "row 7", "row 8", "row 9"]


@pytest.mark.parametrize(("content", "why"), [
    ("probe,channel,message_id\n", "required column 'code' is missing"),
    ("channel,message_id,code,colour\nx,101,r,red\n", "unknown column 'colour'"),
    ("channel,message_id,code\n", "the file has no rows"),
    ("", "required column 'channel' is missing"),
])
def test_a_codes_file_without_the_right_header_is_refused(tmp_path: Path, content: str,
                                                          why: str) -> None:
    path = tmp_path / "codes.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ImportFileError, match=why):
        read_codes(path)


def test_a_missing_codes_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="no such file"):
        read_codes(tmp_path / "nope.csv")


# -- signatures and spreadsheets -------------------------------------------------------------


@pytest.mark.parametrize(("text", "redacted"), [
    ("Sorted for you! ^JS", "Sorted for you! ^[redacted]"),
    ("Sorted for you! ^ JS", "Sorted for you! ^[redacted]"),
    ("We open at 9. -Sam", "We open at 9. -[redacted]"),
    ("We open at 9. - Sam", "We open at 9. -[redacted]"),
    ("Happy to help ~Jo B.", "Happy to help ~[redacted]"),
    ("Happy to help — Anna", "Happy to help —[redacted]"),
    ("Thanks for waiting.\n^KL\n", "Thanks for waiting.\n^[redacted]"),
    ("^JS", "^[redacted]"),
    ("It is a well-known issue", "It is a well-known issue"),
    ("Call 0800-123 -2 items", "Call 0800-123 -2 items"),
    ("Yes, all stores ^_^", "Yes, all stores ^_^"),
    ("Please DM us", "Please DM us"),
])
def test_agent_signatures_at_the_end_are_redacted(text: str, redacted: str) -> None:
    assert redact_signature(text) == redacted


@pytest.mark.parametrize(("cell", "safe"), [
    ("=HYPERLINK(\"http://evil\")", "'=HYPERLINK(\"http://evil\")"),
    ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"), ("Thanks", "Thanks"), ("", ""),
])
def test_reply_texts_cannot_become_spreadsheet_formulas(cell: str, safe: str) -> None:
    assert spreadsheet_safe(cell) == safe


# -- agreement between coders --------------------------------------------------------------


def test_kappa_of_the_textbook_two_by_two_table_is_exactly_0_4() -> None:
    # 50 items: both yes 20, A yes B no 5, A no B yes 10, both no 15. Observed 35/50 = 0.7;
    # expected 0.5 × 0.6 + 0.5 × 0.4 = 0.5; kappa (0.7 − 0.5) / (1 − 0.5) = 0.4.
    pairs = [("y", "y")] * 20 + [("y", "n")] * 5 + [("n", "y")] * 10 + [("n", "n")] * 15
    k = cohen_kappa(pairs)
    assert (k.n, k.observed, k.expected, k.kappa) == (50, 0.7, 0.5, 0.4)


def test_kappa_of_a_second_hand_worked_table() -> None:
    # 100 items: 45 / 15 / 25 / 15. Observed 0.6, expected 0.6 × 0.7 + 0.4 × 0.3 = 0.54,
    # kappa 0.06 / 0.46 = 3/23.
    pairs = [("y", "y")] * 45 + [("y", "n")] * 15 + [("n", "y")] * 25 + [("n", "n")] * 15
    k = cohen_kappa(pairs)
    assert (k.observed, k.expected, k.kappa) == (0.6, 0.54, float(Fraction(3, 23)))


def test_kappa_is_one_for_perfect_agreement_and_undefined_for_a_single_code() -> None:
    assert cohen_kappa([("a", "a"), ("r", "r")]).kappa == 1.0
    assert cohen_kappa([("r", "r"), ("r", "r")]).kappa is None
    with pytest.raises(ValueError):
        cohen_kappa([])


def test_agreement_compares_only_replies_both_coders_coded(tmp_path: Path) -> None:
    header = "probe,channel,message_id,code,coder,source\n"
    a = tmp_path / "a.csv"
    b = tmp_path / "b.csv"
    a.write_text(header + "p1,x,1,r,ann,manual\np1,x,2,a,ann,manual\np2,x,3,r,ann,manual\n"
                 "p3,x,4,resolution,,auto\n", encoding="utf-8")
    b.write_text(header + "p1,x,1,r,ben,manual\np1,x,2,r,ben,manual\np3,x,4,resolution,,auto\n"
                 "p4,x,5,n,ben,manual\n", encoding="utf-8")
    result = agreement(a, b)
    assert (result.coder_a, result.coder_b, result.kappa.n) == ("ann", "ben", 2)
    assert result.kappa.observed == 0.5
    assert [(d.probe, d.message_id, d.code_a, d.code_b) for d in result.disagreements] == \
        [("p1", "2", "acknowledgement", "resolution")]


def test_agreement_needs_overlap_and_valid_files(tmp_path: Path) -> None:
    a = tmp_path / "a.csv"
    b = tmp_path / "b.csv"
    a.write_text("channel,message_id,code\nx,1,r\n", encoding="utf-8")
    b.write_text("channel,message_id,code\nx,2,r\n", encoding="utf-8")
    with pytest.raises(MysteryError, match="no reply coded in both"):
        agreement(a, b)
    b.write_text("channel,message_id,code\nx,2,maybe\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="row 2, column code"):
        agreement(a, b)
