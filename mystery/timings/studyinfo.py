"""What the analysis needs to know about a study beyond its timings: ``study.json``.

Timings carry study, series and year on every row, but not the study's time zone (for send
windows and business hours), its title, or whether it is **synthetic** (a sandbox run, which
must be marked as such wherever its numbers appear). ``mystery export`` and ``mystery report``
write these beside the timings, in ``results/<study>/study.json``, so that ``mystery publish``
(in CI, with no store and perhaps no study file at hand) regenerates everything from
``results/`` and ``studies/`` alone, and a synthetic study can never be published as real by
a missing file: publish refuses timings without their ``study.json``.

It also carries the brands' own service hours (``hours``: brand → ``mon-fri 09:00-17:00; …``,
the brands CSV's syntax), so business-hours figures regenerate the same without the study file;
the key is left out when no brand declares hours. Likewise ``accounts`` (channel → the
researcher accounts that sent its probes), only for a study with several on some channel: the
method note names them (the names, never a credential).

The file is small, sorted JSON with a trailing newline, so it is byte-stable like the rest.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mystery.errors import ImportFileError, Problem
from mystery.hours import Window, format_hours, holiday_dates, parse_hours

if TYPE_CHECKING:  # publish reads study.json without the study package (pydantic, TOML)
    from mystery.study.load import LoadedStudy

FILE_NAME = "study.json"
FORMAT = 1


def _portable(path: Path) -> str:
    """The study file relative to the working folder: no absolute path in committed output."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.name


@dataclass(frozen=True)
class StudyInfo:
    """A study's identity and method facts that timings do not carry."""

    name: str
    series: str
    year: int
    title: str = ""
    timezone: str = "UTC"
    synthetic: bool = False
    cutoff_seconds: float | None = None
    study_file: str = ""
    study_sha256: str = ""
    #: Brands with declared service hours → those hours (``parse_hours`` syntax); others use
    #: the default business hours.
    hours: dict[str, str] = field(default_factory=dict, hash=False)
    #: The public-holiday calendar business hours close on (``holidays`` code), if any.
    holidays: str | None = None
    #: Brands that keep their own holiday calendar → its code (the brands CSV's ``holidays``);
    #: the key is left out when no brand has one.
    brand_holidays: dict[str, str] = field(default_factory=dict, hash=False)
    #: Channel → the researcher accounts its probes were dealt among, for a team study
    #: (several accounts on some channel); empty otherwise.
    accounts: dict[str, list[str]] = field(default_factory=dict, hash=False)

    @classmethod
    def from_study(cls, loaded: LoadedStudy) -> StudyInfo:
        """From a loaded study file (the runner and the CLI have one)."""
        study = loaded.study
        return cls(
            name=study.name,
            series=study.series,
            year=study.year,
            title=study.title,
            timezone=study.timezone,
            synthetic=study.synthetic,
            cutoff_seconds=study.cutoff.total_seconds(),
            study_file=_portable(loaded.path),
            study_sha256=loaded.sha256,
            hours={b.name: format_hours(b.hours) for b in study.brands if b.hours},
            holidays=study.holidays,
            brand_holidays={b.name: b.holidays for b in study.brands if b.holidays},
            accounts=({name: list(c.account_names) for name, c in study.channels.items()}
                      if any(len(c.account_names) > 1 for c in study.channels.values())
                      else {}),
        )

    def holiday_dates(self, first: int, last: int) -> frozenset[date]:
        """The public holidays of the study's calendar in years ``first`` to ``last``."""
        return holiday_dates(self.holidays, first, last) if self.holidays else frozenset()

    def brand_holiday_dates(self, first: int, last: int) -> dict[str, frozenset[date]]:
        """Each brand with its own calendar → its public holidays in years ``first``–``last``."""
        return {brand: holiday_dates(code, first, last)
                for brand, code in sorted(self.brand_holidays.items())}

    def brand_hours(self) -> dict[str, list[Window]]:
        """Each brand's declared service hours as windows (ValueError if ``hours`` is bad)."""
        return {brand: parse_hours(spec) for brand, spec in self.hours.items()}

    def to_json(self) -> str:
        data = asdict(self)
        if not self.hours:  # studies without brand hours keep the bytes they always had
            del data["hours"]
        if self.holidays is None:  # and so do studies without a holiday calendar
            del data["holidays"]
        if not self.brand_holidays:
            del data["brand_holidays"]
        if not self.accounts:  # and one-account studies
            del data["accounts"]
        return json.dumps({"format": FORMAT, **data}, indent=2, sort_keys=True,
                          ensure_ascii=False) + "\n"

    def write(self, folder: Path) -> Path:
        path = folder / FILE_NAME
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json(), encoding="utf-8", newline="\n")
        return path

    @classmethod
    def read(cls, folder: Path) -> StudyInfo:
        """Read ``folder/study.json``; ImportFileError with a fix when missing or malformed."""
        path = folder / FILE_NAME
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ImportFileError([Problem(
                str(path), "", "missing; it says whether the study is synthetic and its time "
                "zone. Run 'mystery export STUDY.toml' to write it beside timings.csv",
            )]) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ImportFileError([Problem(str(path), "", f"not valid JSON ({exc}); run "
                                           "'mystery export STUDY.toml' again")]) from None
        data.pop("format", None)
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        try:
            if unknown:
                raise TypeError(f"unknown keys {unknown}")
            info = cls(**data)
            if not isinstance(info.hours, dict) or not all(
                    isinstance(v, str) for v in info.hours.values()):
                raise TypeError("hours must map brand names to hours such as "
                                "'mon-fri 09:00-17:00'")
            try:
                info.brand_hours()
            except ValueError as exc:
                raise TypeError(f"hours: {exc}") from None
            if not isinstance(info.accounts, dict) or not all(
                    isinstance(v, list) and all(isinstance(a, str) for a in v)
                    for v in info.accounts.values()):
                raise TypeError("accounts must map channels to lists of account names")
            if info.holidays is not None:
                try:
                    info.holiday_dates(2000, 2000)
                except (ValueError, AttributeError) as exc:
                    raise TypeError(f"holidays: {exc}") from None
            if not isinstance(info.brand_holidays, dict) or not all(
                    isinstance(v, str) for v in info.brand_holidays.values()):
                raise TypeError("brand_holidays must map brand names to calendars such as "
                                "'GB-SCT'")
            try:
                info.brand_holiday_dates(2000, 2000)
            except (ValueError, AttributeError) as exc:
                raise TypeError(f"brand_holidays: {exc}") from None
            return info
        except TypeError as exc:
            raise ImportFileError([Problem(str(path), "", f"{exc}; run 'mystery export "
                                           "STUDY.toml' again to rewrite it")]) from None
