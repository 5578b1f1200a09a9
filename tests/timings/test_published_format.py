"""The import format for real published tables: unknown rates stay unknown, partial studies
report the study's own totals, aggregates are study figures, bounds are refused, and every
published figure comes back out of the results exactly."""

from __future__ import annotations

import csv
import io
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mystery.cli import app
from mystery.durations import minutes_cell, parse_published_minutes
from mystery.publish import publish
from mystery.timings.importer import read_published

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "studies" / "veeqo-uk-retail-2014.csv"
HEAD = ("study,year,level,brand,channel,response_minutes,statistic,response_rate,answered,"
        "probes,brands,listed,published_as")


def _write(tmp_path: Path, *rows: str, head: str = HEAD) -> Path:
    path = tmp_path / "figures.csv"
    path.write_text("\n".join([head, *rows]) + "\n", encoding="utf-8")
    return path


def _project(tmp_path: Path, *rows: str) -> Path:
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "figures.csv").write_text("\n".join([HEAD, *rows]) + "\n",
                                                      encoding="utf-8")
    return tmp_path


def _csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


REFUSED = [
    ("p-2014,2014,brand,A,x,9,,≥ 90 %,,3,,,", "response_rate: '≥ 90 %': is a bound, not a rate"),
    ("p-2014,2014,brand,A,x,< 1 min,,100%,,3,,,",
     "response_minutes: '< 1 min': is a bound, not a figure"),
    ("p-2014,2014,brand,A,x,9,,,>3,,,,", "answered: '>3': is a bound, not a count"),
    ("p-2014,2014,brand,A,x,9,,90%+,,3,,,", "response_rate: '90%+': is a bound, not a rate"),
    ("p-2014,2014,brand,ALL (40 leading UK retailers),x,90,,,,,,,",
     "is a figure for the whole study, not a brand; set level to study"),
    ("p-2014,2014,brand,Average,x,90,,,,,,,", "is a figure for the whole study"),
    ("p-2014,2014,brand,A,x,2:61,,,,,,,", "minutes and seconds stop at 59"),
    ("p-2014,2014,brand,A,x,9,median,,,,,,", "brand medians cannot be pooled"),
    ("p-2014,2014,brand,A,x,9,,,4,3,,,", "answered: '4': is more than probes (3)"),
    ("p-2014,2014,brand,A,x,9,,,2,,,,", "needs probes beside it"),
    ("p-2014,2014,brand,A,x,9,,100%,2,3,,,", "gives 3 of 3 answered but answered says 2"),
    ("p-2014,2014,brand,A,x,9,,,,,,,quickest", "published_as: 'quickest': write one of"),
    ("p-2014,2014,brand,A,x,9,,,,,10,,", "brands: '10': belongs on the study row"),
    ("p-2014,2014,panel,A,x,9,,,,,,,", "level: 'panel': write one of probe, brand, study"),
    ("p-2014,2014,study,,x,600,,,,,,,", "say which average response_minutes is"),
    ("p-2014,2014,study,,x,,,,,,1,,", "says 1 brands but the file lists 2"),
    ("p-2014,2014,study,,x,,,,,,5,all,", "says all, but the file lists 2 of 5 brands"),
    ("p-2014,2014,study,,x,,,,,2,,,", "says 2 probes but the file's rows add up to 6"),
    ("p-2014,2014,brand,C,x,12,,100%,,3,,,fastest", "names its fastest brand on row 2"),
]


@pytest.mark.parametrize(("bad", "message"), REFUSED)
def test_what_is_not_a_published_figure_is_refused_with_its_fix(
    tmp_path: Path, bad: str, message: str,
) -> None:
    path = _write(tmp_path, "p-2014,2014,brand,A0,x,9,,100%,,3,,,fastest",
                  "p-2014,2014,brand,B0,x,12,,100%,,3,,,", bad)
    result = CliRunner().invoke(app, ["import", str(path), "--studies",
                                      str(tmp_path / "studies")])
    assert result.exit_code == 1
    assert message in result.output, result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "studies").exists()


def test_published_times_keep_their_precision(tmp_path: Path) -> None:
    path = _write(tmp_path, "p-2014,2014,brand,A,x,2:38,,100%,,3,,,",
                  "p-2014,2014,brand,B,x,1 h 05 min,,100%,,3,,,",
                  "p-2014,2014,brand,C,x,2.633333,,100%,,3,,,")
    rows = {r["brand"]: r for r in read_published(path).brand_rows.iter_rows(named=True)}
    assert rows["A"]["mean_ack_seconds"] == 158.0  # exactly, not 2.6 min
    assert rows["B"]["mean_ack_seconds"] == 3900.0
    assert rows["C"]["mean_ack_seconds"] == pytest.approx(157.99998)


def test_a_brand_with_no_published_rate_never_counts_as_answered(tmp_path: Path) -> None:
    root = _project(tmp_path, "u-2014,2014,brand,Quick,x,5,,,,3,,,",
                    "u-2014,2014,brand,Slow,x,50,,100%,,3,,,",
                    "u-2014,2014,brand,Slower,x,90,,100%,,3,,,")
    publish(root)
    yoy = _csv(root / "results/u-2014/yoy.csv")[0]
    # Quick's rate is unknown: it is not "answered every probe", so it is not fastest, and
    # the year's answered count and rate are unknown rather than inflated.
    assert (yoy["fastest_brand"], yoy["slowest_brand"]) == ("Slow", "Slower")
    assert (yoy["answered"], yoy["response_rate"]) == ("", "")
    brands = {r["brand"]: r for r in _csv(root / "results/u-2014/brands.csv")}
    assert (brands["Quick"]["answered"], brands["Quick"]["response_rate"],
            brands["Quick"]["answered_every_probe"]) == ("", "", "")
    md = (root / "results/u-2014/yoy.md").read_text(encoding="utf-8")
    assert "| Quick | — | 3 | — | response rate not published |" in md


def test_a_partial_study_reports_its_own_totals_and_ranks_only_what_the_list_shows(
    tmp_path: Path,
) -> None:
    root = _project(
        tmp_path,
        "top-2019,2019,study,ALL (395 brands),x,11 h 20 min,mean,62%,,1185,395,fastest,",
        "top-2019,2019,brand,A,x,0:45,,100%,,3,,,fastest",
        "top-2019,2019,brand,B,x,3:10,,100%,,3,,,",
        "top-2019,2019,brand,C,x,12,,100%,,3,,,",
    )
    publish(root)
    yoy = _csv(root / "results/top-2019/yoy.csv")[0]
    assert (yoy["brands"], yoy["brands_listed"], yoy["listed"]) == ("395", "3", "fastest")
    assert (yoy["probes"], yoy["response_rate"]) == ("1185", "0.62")  # the study's, not 9, 1.0
    assert yoy["answered"] == ""  # 62 % of 1185 is not a whole count: not published
    assert yoy["source"] == "published"
    # A top list holds the fastest brand, but its last brand is not the study's slowest.
    assert (yoy["fastest_brand"], yoy["fastest_mean_minutes"]) == ("A", "0.750000")
    assert (yoy["slowest_brand"], yoy["slowest_mean_minutes"]) == ("", "")
    assert (yoy["published_fastest_brand"], yoy["published_mean_minutes"]) == ("A", "680.000000")
    # The aggregate row is the study's: never a brand anywhere.
    brands = {r["brand"] for r in _csv(root / "results/top-2019/brands.csv")}
    assert brands == {"A", "B", "C"}


def _figures(path: Path) -> list[tuple[dict[str, str], str, str]]:
    """Every figure of an import CSV: (its row, its column, its text)."""
    numeric = ("response_minutes", "response_rate", "answered", "probes", "brands")
    return [(row, column, row[column]) for row in _csv(path) for column in numeric
            if row.get(column, "").strip()]


def _exact(column: str, text: str) -> str:
    """The cell a published figure must become, at full precision."""
    if column == "response_minutes":
        return minutes_cell(parse_published_minutes(text))
    if column == "response_rate":
        value = Decimal(text.removesuffix("%")) / (100 if text.endswith("%") else 1)
        return format(value.normalize(), "f") if value % 1 else f"{value:.1f}"
    return text


def test_every_published_figure_comes_back_out_exactly(tmp_path: Path) -> None:
    (tmp_path / "studies").mkdir()
    shutil.copy(SHIPPED, tmp_path / "studies")
    publish(tmp_path)
    yoy = {r["year"]: r for r in _csv(tmp_path / "results/uk-retail/yoy.csv")}
    brands = {r["brand"]: r for r in _csv(tmp_path / "results/uk-retail/brands.csv")}
    place = {"response_minutes": "mean_minutes_answered_only"}
    figures = _figures(SHIPPED)
    assert len(figures) >= 15
    for row, column, text in figures:
        want = _exact(column, text)
        if row["level"] == "study":  # the study's own totals are the year's row
            got = yoy[row["year"]][column]
        else:
            got = brands[row["brand"]][place.get(column, column)]
            if row["published_as"] and column == "response_minutes":
                # and a named extreme is in yoy.csv too, as published
                extreme = yoy[row["year"]]
                assert extreme[f"published_{row['published_as']}_brand"] == row["brand"]
                assert extreme[f"published_{row['published_as']}_mean_minutes"] == want
        assert got == want, (row["brand"], column, text)


def test_the_readme_example_says_what_publish_does(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    example = readme.split("Example, a top-3 list", 1)[1].split("```csv\n", 1)[1]
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "top.csv").write_text(example.split("```", 1)[0], encoding="utf-8")
    publish(tmp_path)
    yoy = _csv(tmp_path / "results/top-2019/yoy.csv")[0]
    assert (yoy["brands"], yoy["probes"], yoy["response_rate"]) == ("395", "1185", "0.62")
    assert (yoy["fastest_brand"], yoy["published_fastest_brand"]) == ("Alpha", "Alpha")
    assert (yoy["slowest_brand"], yoy["published_mean_minutes"]) == ("", "680.000000")
    md = (tmp_path / "results/top-2019/yoy.md").read_text(encoding="utf-8")
    assert "| Gamma | — | 3 | — | response rate not published |" in md


def test_import_says_what_the_file_holds(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["import", str(SHIPPED), "--studies",
                                      str(tmp_path / "studies")])
    assert result.exit_code == 0, result.output
    assert "0 probe rows, 5 brand rows, 1 study row" in result.output
    assert (tmp_path / "studies" / SHIPPED.name).read_bytes() == SHIPPED.read_bytes()


def test_a_study_row_s_cutoff_is_the_cutoff_of_its_rows(tmp_path: Path) -> None:
    head = "study,year,level,brand,channel,response_minutes,response_rate,probes,cutoff_minutes"
    path = _write(tmp_path, "c-2014,2014,study,,x,,,,4320", "c-2014,2014,brand,A,x,9,100%,3,",
                  "c-2014,2014,brand,B,x,12,100%,3,60", head=head)
    rows = {r["brand"]: r for r in read_published(path).brand_rows.iter_rows(named=True)}
    assert (rows["A"]["cutoff_seconds"], rows["B"]["cutoff_seconds"]) == (4320 * 60, 3600)
