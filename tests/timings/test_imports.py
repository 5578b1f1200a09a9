"""Importing published figures: every bad row is named with its fix, and a file with any bad
row leaves studies/ untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mystery.cli import app
from mystery.errors import ImportFileError
from mystery.timings.importer import import_file, read_published

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "studies" / "veeqo-uk-retail-2014.csv"
GOOD = "s-2014,2014,Alpha,twitter,9,,3"
HEAD = "study,year,brand,channel,response_minutes,response_rate,probes"
PROBE_HEAD = "study,year,brand,channel,responded,response_minutes,resolution_minutes,sent_at"

# (header, bad row, the message it must give): one case per rule.
CASES = [
    ("study,year,brand,channel,respons_minutes", "s-2014,2014,A,x,9",
     "row 1: unknown column 'respons_minutes'"),
    ("study,year,channel", "s-2014,2014,x", "required column 'brand' is missing"),
    (HEAD, "Veeqo 2014,2014,A,x,9,,3",
     "row 3, column study: 'Veeqo 2014': use lower-case letters"),
    (HEAD, "s-2014,14,A,x,9,,3", "row 3, column year: '14': not a year; write four digits"),
    (HEAD, "s-2014,2014,A,myspace,9,,3", "row 3, column channel: 'myspace': unknown channel"),
    (HEAD, "s-2014,2014,A,x,nine,,3",
     "row 3, column response_minutes: 'nine': cannot read this time; write decimal minutes"),
    (HEAD, "s-2014,2014,A,x,9,150%,3", "row 3, column response_rate: '150%': must be between"),
    (HEAD, "s-2014,2014,A,x,9,50%,3", "1.50 of 3 probes is not a whole number of probes"),
    (HEAD, "s-2014,2014,A,x,9,,three", "row 3, column probes: 'three': must be a whole number"),
    (HEAD, "s-2014,2014,,x,9,,3", "row 3, column brand: '': is empty"),
    (HEAD, "s-2014,2014,A,x,,,3", "the brand row carries no figure"),
    (HEAD, "s-2014,2014,A,x,9,0%,3", "the brand answered nothing (response_rate 0) yet has a time"),
    (HEAD, "s-2014,2014,Alpha,x,12,,3", "'Alpha' on x has two brand rows (see row 2); keep one"),
    (HEAD, "s-2014,2015,B,x,12,,3", "study 's-2014' is series 's-2014', year 2014 on row 2"),
    (HEAD, "s-2014,2014,A,x,9,,3,extra", "row 3: has 8 cells but the header has 7"),
    (PROBE_HEAD + ",question", "s-2014,2014,A,x,maybe,9,,,", "write true or false"),
    (PROBE_HEAD + ",question", "s-2014,2014,A,x,true,,,,",
     "is empty but responded is true; give the minutes or set responded to false"),
    (PROBE_HEAD + ",question", "s-2014,2014,A,x,false,9,,,",
     "has a time but responded is false"),
    (PROBE_HEAD + ",question", "s-2014,2014,A,x,true,9,5,,",
     "row 3, column resolution_minutes: '5': is before response_minutes"),
    (PROBE_HEAD + ",question", "s-2014,2014,A,x,true,9,,2014-05-12 09:30,",
     "row 3, column sent_at: '2014-05-12 09:30': has no time zone; add Z"),
    (PROBE_HEAD + ",question", "s-2014,2014,A,x,true,9,,yesterday,",
     "not an ISO 8601 time"),
    (PROBE_HEAD + ",response_rate", "s-2014,2014,A,x,true,9,,,50%",
     "response_rate: '50%': belongs on brand rows"),
    (HEAD + ",question", "s-2014,2014,A,x,9,,3,delivery",
     "question: 'delivery': belongs on probe rows"),
    (HEAD + ",source_url", "s-2014,2014,A,x,9,,3,www.example.com", "not a web address"),
    ("study,year,brand,channel,responded,response_minutes,cutoff_minutes",
     "s-2014,2014,A,x,true,90,60", "is past cutoff_minutes"),
]


def _good_row(header: str) -> str:
    values = {"study": "s-2014", "year": "2014", "brand": "Alpha", "channel": "x",
              "response_minutes": "9", "probes": "3", "responded": "true"}
    return ",".join(values.get(c, "") for c in header.split(","))


@pytest.mark.parametrize(("header", "bad", "message"), CASES)
def test_each_bad_row_is_reported_and_nothing_is_imported(
    tmp_path: Path, header: str, bad: str, message: str,
) -> None:
    source = tmp_path / "figures.csv"
    source.write_text(f"{header}\n{_good_row(header)}\n{bad}\n", encoding="utf-8")
    studies = tmp_path / "studies"
    with pytest.raises(ImportFileError) as caught:
        import_file(source, studies)
    assert message in str(caught.value)
    assert not studies.exists() or not any(studies.iterdir())


def test_every_bad_row_is_reported_at_once(tmp_path: Path) -> None:
    source = tmp_path / "figures.csv"
    source.write_text(f"{HEAD}\n{GOOD}\ns-2014,20x4,B,x,9,,3\ns-2014,2014,C,fax,9,,3\n",
                      encoding="utf-8")
    with pytest.raises(ImportFileError) as caught:
        read_published(source)
    assert [p.where for p in caught.value.problems] == ["row 3, column year",
                                                        "row 4, column channel"]


def test_bom_crlf_and_twitter_are_accepted(tmp_path: Path) -> None:
    source = tmp_path / "figures.csv"
    source.write_bytes(("\ufeff" + f"{HEAD}\r\n{GOOD}\r\ns-2014,2014,Beta,Twitter,30,66.7%,3\r\n")
                       .encode())
    published = read_published(source)
    rows = {r["brand"]: r for r in published.brand_rows.iter_rows(named=True)}
    assert rows["Beta"]["channel"] == "x"
    assert (rows["Beta"]["answered"], rows["Beta"]["mean_ack_seconds"]) == (2, 1800)
    # No published rate: unknown, never "answered all three".
    assert (rows["Alpha"]["answered"], rows["Alpha"]["response_rate"]) == (None, None)
    assert rows["Alpha"]["series"] == "s-2014"


def test_probe_rows_become_timings(tmp_path: Path) -> None:
    source = tmp_path / "figures.csv"
    source.write_text(
        "study,series,year,brand,channel,question,responded,response_minutes,cutoff_minutes,"
        "sent_at\n"
        "e-2013,eptica,2013,Alpha,email,q1,true,90,4320,2013-05-01T10:00:00+01:00\n"
        "e-2013,eptica,2013,Alpha,email,q2,false,,4320,2013-05-01T11:00:00Z\n",
        encoding="utf-8")
    t = read_published(source).timings
    assert t["status"].to_list() == ["answered", "unanswered"]
    assert t["ack_seconds"].to_list() == [5400.0, None]
    assert t["cutoff_seconds"].to_list() == [259200.0, 259200.0]
    assert str(t["sent_at"][0]) == "2013-05-01 09:00:00+00:00"


def test_the_shipped_2014_figures_import(tmp_path: Path) -> None:
    target, published = import_file(SHIPPED, tmp_path / "studies")
    assert target.read_bytes() == SHIPPED.read_bytes()
    assert published.studies == ("veeqo-uk-retail-2014",)
    rows = {r["brand"]: r for r in published.brand_rows.iter_rows(named=True)}
    assert rows["B&Q"]["mean_ack_seconds"] == 540
    assert rows["The Co-operative"]["mean_ack_seconds"] == 543 * 60
    assert (rows["John Lewis"]["answered"], rows["John Lewis"]["probes"]) == (2, 3)


def test_a_study_name_already_imported_is_refused(tmp_path: Path) -> None:
    studies = tmp_path / "studies"
    import_file(SHIPPED, studies)
    copy = tmp_path / "again.csv"
    copy.write_bytes(SHIPPED.read_bytes())
    with pytest.raises(ImportFileError, match="already defined by"):
        import_file(copy, studies)


def test_cli_import_reports_problems_without_a_traceback(tmp_path: Path) -> None:
    source = tmp_path / "figures.csv"
    source.write_text(f"{HEAD}\ns-2014,2014,A,myspace,9,,3\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["import", str(source), "--studies",
                                      str(tmp_path / "studies")])
    assert result.exit_code == 1
    assert "row 2, column channel: 'myspace': unknown channel" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "studies").exists()
    ok = CliRunner().invoke(app, ["import", str(SHIPPED), "--studies", str(tmp_path / "studies")])
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "studies" / SHIPPED.name).exists()
