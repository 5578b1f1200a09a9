"""Study warnings: one text sent to many brands on the same day reads as spam on real platforms.

A warning, not an error: the study still loads, validates (exit 0), plans and runs, and the
warning is printed by ``mystery validate``, ``mystery plan`` and at the start of ``mystery run``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from mystery.cli import app
from mystery.study.load import load_study
from mystery.study.plan import make_plan
from mystery.study.warnings import SAME_TEXT_PER_DAY, skeleton, study_warnings
from tests.studybuilder import study_data, write_study

BRANDS = ["Alpha Stores", "Beta Foods", "Gamma Home", "Delta Shoes", "Epsilon Books"]


def repeats_study(brands: list[str], questions: list[str], endpoint: str = "https://api.x.com",
                  end: str = "2026-03-02") -> dict[str, Any]:
    """One probe per brand on X at ``endpoint``, for ``questions`` (ids q0, q1…)."""
    sandbox = endpoint == "sandbox"
    return study_data(
        name="repeats", cutoff="1d", synthetic=None,
        channels={"x": {"account": "researcher", "endpoint": endpoint, "mode": "auto"}},
        schedule={"start": date(2026, 3, 2), "end": date.fromisoformat(end),
                  "probes_per_brand": 1},
        questions=[{"id": f"q{i}", "text": text} for i, text in enumerate(questions)],
        brands=[{"name": name, "handles": {"x": name.replace(" ", "")}}
                | ({"profile": "fast"} if sandbox else {}) for name in brands],
        sandbox={"profiles": {"fast": {}}} if sandbox else None,
    )


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    return write_study(tmp_path, data)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.stdout, result.stderr


def test_one_question_to_five_brands_on_one_day_is_a_warning_not_an_error(
        tmp_path: Path) -> None:
    path = write(tmp_path, repeats_study(BRANDS, ["Hi {brand}, do you deliver on Sundays?"]))
    code, _, err = invoke("validate", str(path))
    assert code == 0, err
    assert "OK: 5 brands" in err
    assert (f"Warning: {path}: questions[0].text: question 'q0' on x goes to more than "
            f"{SAME_TEXT_PER_DAY} brands a day on 1 day(s) (5 on Mon 2026-03-02)") in err
    assert "add reworded questions" in err


def test_plan_and_run_print_the_warning_too(tmp_path: Path) -> None:
    path = write(tmp_path, repeats_study(BRANDS, ["Hi {brand}, do you deliver on Sundays?"]))
    code, out, err = invoke("plan", str(path))
    assert code == 0 and "5 probes" in out
    assert "Warning:" in err and "questions[0].text" in err
    code, _, err = invoke("run", str(path))  # refused without --live, but warned first
    assert code == 1
    assert err.index("Warning:") < err.index("Error:")


def test_texts_that_differ_only_by_brand_case_or_punctuation_count_as_one(
        tmp_path: Path) -> None:
    questions = ["Hi {brand}, do you deliver on Sundays?", "hi {brand} - do you deliver on sundays"]
    study = load_study(write(tmp_path, repeats_study(BRANDS, questions))).study
    warnings = study_warnings(study, make_plan(study), "f")
    assert len(warnings) == 1
    assert "questions 'q0', 'q1' read the same on x" in warnings[0].message
    assert skeleton("Hi Beta Foods, do you deliver?", "Beta Foods") == "hi do you deliver"


def test_varied_questions_or_few_brands_a_day_are_fine(tmp_path: Path) -> None:
    varied = ["Hi {brand}, do you deliver on Sundays?", "Hello {brand}, are you open today?"]
    study = load_study(write(tmp_path, repeats_study(BRANDS, varied))).study
    assert study_warnings(study, make_plan(study)) == []  # 3 and 2 brands a day


def test_the_limit_is_more_than_three_brands_on_one_day(tmp_path: Path) -> None:
    one = ["Hi {brand}, do you deliver on Sundays?"]
    at_limit = load_study(write(tmp_path, repeats_study(BRANDS[:SAME_TEXT_PER_DAY], one))).study
    assert study_warnings(at_limit, make_plan(at_limit)) == []
    over = load_study(write(tmp_path, repeats_study(BRANDS[:SAME_TEXT_PER_DAY + 1], one))).study
    assert len(study_warnings(over, make_plan(over))) == 1


def test_the_sandbox_has_no_spam_rules_to_warn_about(tmp_path: Path) -> None:
    data = repeats_study(BRANDS, ["Hi {brand}, do you deliver on Sundays?"], endpoint="sandbox")
    path = write(tmp_path, data)
    study = load_study(path).study
    assert study_warnings(study, make_plan(study)) == []
    code, _, err = invoke("validate", str(path))
    assert code == 0 and "Warning" not in err


def test_an_email_address_is_not_a_mention(tmp_path: Path) -> None:
    data = repeats_study(BRANDS[:2], ["Hi {brand}, can I write to help@alphastores.example?"])
    code, _, err = invoke("validate", str(write(tmp_path, data)))
    assert code == 0, err
