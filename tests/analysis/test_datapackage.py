"""Each results folder of a series is a Frictionless data package that validates: every CSV
named, every column typed, with units, the empty cell as missing, and the method."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import frictionless
import pytest

from mystery.publish import check, publish
from tests.analysis.synthetic import make_study

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("package")
    (root / "studies").mkdir()
    shutil.copy(REPO / "studies" / "veeqo-uk-retail-2014.csv", root / "studies")
    for year in (2025, 2026):
        make_study(root, series="uk-retail", year=year, brands=4, probes_per_brand=3, seed=7)
    publish(root)
    return root


def _report_errors(report: frictionless.Report) -> list[object]:
    errors: list[object] = report.flatten(["resourceName", "rowNumber", "fieldName", "type",
                                           "note"])
    return errors


def test_every_results_folder_is_a_valid_data_package(published: Path) -> None:
    folders = sorted(p for p in (published / "results").iterdir() if p.is_dir())
    assert [f.name for f in folders] == ["uk-retail", "uk-retail-2025", "uk-retail-2026"]
    for folder in folders:
        package = json.loads((folder / "datapackage.json").read_text(encoding="utf-8"))
        report = frictionless.validate(folder / "datapackage.json")
        assert report.valid, (folder.name, _report_errors(report))
        csvs = sorted(p.name for p in folder.glob("*.csv"))
        assert sorted(r["path"] for r in package["resources"]) == csvs  # every CSV, no other
        _check_fields(folder, package)
    package = json.loads((published / "results/uk-retail/datapackage.json").read_text("utf-8"))
    yoy = next(r for r in package["resources"] if r["name"] == "yoy")
    types = {f["name"]: f["type"] for f in yoy["schema"]["fields"]}
    assert (types["probes"], types["response_rate"], types["year"]) == (
        "integer", "number", "integer")
    assert "Kaplan–Meier" in package["description"]  # the method travels with the data
    assert "SYNTHETIC" in package["description"]


def _check_fields(folder: Path, package: dict[str, list[dict[str, object]]]) -> None:
    for resource in package["resources"]:
        with (folder / str(resource["path"])).open(encoding="utf-8", newline="") as handle:
            header = next(csv.reader(handle))
        schema = resource["schema"]
        assert isinstance(schema, dict)
        fields = schema["fields"]
        assert [f["name"] for f in fields] == header
        assert schema["missingValues"] == [""]
        assert all(f["description"] for f in fields)
        for f in fields:
            if f["name"].endswith("_minutes"):
                assert (f["type"], f["unit"]) == ("number", "minutes")
            if f["name"].endswith("_seconds"):
                assert (f["type"], f["unit"]) == ("number", "seconds")


def test_a_cell_that_breaks_its_schema_fails_validation(published: Path, tmp_path: Path) -> None:
    folder = tmp_path / "uk-retail"
    shutil.copytree(published / "results" / "uk-retail", folder)
    yoy = folder / "yoy.csv"
    lines = yoy.read_text(encoding="utf-8").splitlines()
    cells = lines[1].split(",")
    header = lines[0].split(",")
    cells[header.index("probes")] = "about 30"  # not an integer
    lines[1] = ",".join(cells)
    yoy.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = frictionless.validate(folder / "datapackage.json")
    assert not report.valid
    assert any("probes" in str(e) for e in _report_errors(report))


def test_the_package_is_part_of_what_publish_checks(published: Path) -> None:
    target = published / "results" / "uk-retail" / "datapackage.json"
    kept = target.read_bytes()
    target.write_bytes(kept.replace(b'"integer"', b'"string"', 1))
    try:
        stale = [o for o in check(published) if o.state != "unchanged"]
        assert [o.path.name for o in stale] == ["datapackage.json"]
    finally:
        target.write_bytes(kept)
