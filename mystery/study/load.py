"""Loading a study file: TOML (and its brands CSV) to a validated
:class:`~mystery.study.model.Study`.

Every problem becomes a :class:`~mystery.errors.Problem` with file, line, key path and a fix
hint, all reported at once (:class:`~mystery.errors.StudyError`; the CLI prints them and exits 1).

Why apart from the model: loading ends with the checks that span sections
(:mod:`mystery.study.checks`), which need the plan, which needs the model. With loading in the
model's module that was a circle of imports; here it is a line: model ← plan ← checks ← load.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from mystery.errors import Problem, StudyError
from mystery.study.brandscsv import read_brands_csv
from mystery.study.checks import cross_checks
from mystery.study.model import Study
from mystery.study.problems import error_hint, key_path, line_of


class LoadedStudy(BaseModel):
    """A validated study with where it came from; the hash pins the store to this file."""

    model_config = ConfigDict(frozen=True)

    study: Study
    path: Path
    sha256: str

    @property
    def default_db(self) -> Path:
        return self.path.with_suffix(".db")


def load_study(path: str | Path) -> LoadedStudy:
    """Read and validate a study file; raise StudyError listing every problem found."""
    path = Path(path)
    file = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise StudyError([Problem(file, "", "no such file; check the path")]) from None
    except IsADirectoryError:
        raise StudyError([Problem(file, "", "is a folder; name the .toml study file")]) from None
    except OSError as exc:
        raise StudyError([Problem(file, "", f"cannot read it: {exc.strerror}")]) from None
    if raw.startswith(b"SQLite format 3\x00"):
        raise StudyError([Problem(file, "", "is a store (SQLite), not a study file; name the "
                                  ".toml study file (its store sits beside it)")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise StudyError([Problem(file, "", "not UTF-8 text; save it as UTF-8")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StudyError([Problem(file, "", f"not valid TOML: {exc}")]) from None
    if not data:
        raise StudyError(
            [Problem(file, "", "the file is empty; start from studies/demo.toml")]
        )

    problems: list[Problem] = []
    csv_rows: dict[int, str] = {}
    brands_csv = data.get("brands_csv")
    if isinstance(brands_csv, str):
        csv_path = path.parent / brands_csv
        rows = read_brands_csv(csv_path, problems)
        offset = len(data.get("brands", []))
        for i, row in enumerate(rows):
            csv_rows[offset + i] = f"{csv_path.name} row {row.pop('_row')}"
        data = {**data, "brands": list(data.get("brands", [])) + rows}

    try:
        study = Study.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            where = key_path(loc, data)
            if loc and loc[0] == "brands" and len(loc) > 1 and isinstance(loc[1], int):
                csv_row = csv_rows.get(loc[1])
                if csv_row:
                    where = csv_row + (("." + key_path(loc[2:], data)) if loc[2:] else "")
            value = error.get("input")
            hint = error_hint(error)
            quiet = error["type"] == "missing" or isinstance(value, dict | list)
            shown = "" if quiet or repr(value) in hint else f" (got {value!r})"
            problems.append(Problem(file, line_of(text, loc) + where, hint + shown))
        raise StudyError(problems) from None
    csv_failed = bool(problems)  # the brands CSV could not be read: "no brands" says nothing new
    for problem in cross_checks(study, file, csv_rows):
        if csv_failed and problem.where == "brands":
            continue
        if problem.file == file and re.fullmatch(r"[\w.\[\]-]+", problem.where):  # a key path
            loc = tuple(
                int(part[1:-1]) if part.startswith("[") else part
                for part in re.findall(r"\[\d+\]|[^.\[\]]+", problem.where)
            )
            problem = Problem(file, line_of(text, loc) + problem.where, problem.message)
        problems.append(problem)
    if problems:
        raise StudyError(problems)
    return LoadedStudy(study=study, path=path, sha256=hashlib.sha256(raw).hexdigest())
