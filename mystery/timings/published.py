"""One row of a published-figures CSV: the format's columns and the rules of each cell.

The file-level work (reading, the header, rules between rows, copying into ``studies/``) is in
:mod:`mystery.timings.importer`; this module turns one record into values, collecting a problem
(row, column, value, why, fix) for every bad cell rather than stopping at the first, so a
researcher fixes a spreadsheet in one pass. The format itself is described there.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from mystery.errors import Problem
from mystery.words import CHANNELS

REQUIRED = ("study", "year", "brand", "channel")
OPTIONAL = (
    "series", "sector", "country", "question", "response_minutes", "resolution_minutes",
    "responded", "response_rate", "probes", "cutoff_minutes", "sent_at", "source_url", "note",
)  # fmt: skip
SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}
_CHANNEL_ALIASES = {"twitter": "x", "x.com": "x", "e-mail": "email", "mail": "email"}


class Row:
    """One CSV record being validated: collects problems instead of stopping at the first."""

    def __init__(self, file: str, number: int, cells: dict[str, str]) -> None:
        self.file, self.number, self.cells = file, number, cells
        self.problems: list[Problem] = []

    def bad(self, column: str, why: str) -> None:
        value = self.cells.get(column, "")
        self.problems.append(
            Problem(self.file, f"row {self.number}, column {column}", f"{value!r}: {why}")
        )

    def text(self, column: str) -> str:
        return self.cells.get(column, "").strip()

    def number_of(self, column: str, unit: str, example: str) -> float | None:
        raw = self.text(column)
        if not raw:
            return None
        try:
            value = float(raw)
        except ValueError:
            self.bad(column, f"not a number; write only the number of {unit}, e.g. {example}")
            return None
        if not math.isfinite(value) or value < 0:
            self.bad(column, f"must be zero or more {unit}, e.g. {example}")
            return None
        return value


def _slug(row: Row, column: str, required: bool) -> str:
    value = row.text(column)
    if not value:
        if required:
            row.bad(column, "is empty; every row needs it")
        return ""
    if not SLUG.match(value):
        row.bad(column, "use lower-case letters, digits, '-' and '_', e.g. veeqo-uk-retail-2014")
    return value


def _year(row: Row) -> int | None:
    raw = row.text("year")
    if not raw:
        row.bad("year", "is empty; give the year the study ran, e.g. 2014")
        return None
    if not raw.isdigit() or not 1990 <= int(raw) <= 2100:
        row.bad("year", "not a year; write four digits, e.g. 2014")
        return None
    return int(raw)


def _channel(row: Row) -> str:
    raw = row.text("channel").lower()
    value = _CHANNEL_ALIASES.get(raw, raw)
    if not raw:
        row.bad("channel", "is empty; name the channel, e.g. x (twitter) or email")
    elif value not in CHANNELS:
        row.bad("channel", f"unknown channel; use one of twitter, {', '.join(CHANNELS)}")
    return value


def _responded(row: Row) -> bool | None:
    raw = row.text("responded").lower()
    if not raw:
        return None
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    row.bad("responded", "write true or false (or leave it empty on a brand row)")
    return None


def _rate(row: Row) -> float | None:
    raw = row.text("response_rate")
    if not raw:
        return None
    percent = raw.endswith("%")
    try:
        value = float(raw.removesuffix("%").strip()) / (100 if percent else 1)
    except ValueError:
        row.bad("response_rate", "not a rate; write it like 83.3% or 0.833")
        return None
    if not 0 <= value <= 1:
        row.bad("response_rate", "must be between 0 and 1, or 0% and 100%; e.g. 83.3% or 0.833")
        return None
    return value


def _answered(row: Row, rate: float, probes: int) -> int | None:
    """Answered probes from a published rate; the rate must be what some whole count gives.

    A published rate is rounded, so the tolerance is half a unit of its last digit times the
    number of probes: ``66.7%`` of 3 is 2, while ``50%`` of 3 is no whole number of probes.
    """
    raw = row.text("response_rate").removesuffix("%").strip()
    decimals = len(raw.split(".")[1]) if "." in raw else 0
    unit = 10.0**-decimals / (100 if row.text("response_rate").endswith("%") else 1)
    exact = rate * probes
    if abs(exact - round(exact)) > unit / 2 * probes + 1e-9:
        row.bad(
            "response_rate",
            f"{exact:.2f} of {probes} probes is not a whole number of probes; give the rate "
            "as answered/probes (e.g. 66.7% for 2 of 3) or correct probes",
        )
        return None
    return round(exact)


def _sent_at(row: Row) -> datetime | None:
    raw = row.text("sent_at")
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        row.bad("sent_at", "not an ISO 8601 time; write e.g. 2014-05-12T09:30:00Z")
        return None
    if value.tzinfo is None:
        row.bad("sent_at", "has no time zone; add Z for UTC or an offset such as +01:00")
        return None
    return value.astimezone(UTC)


def validate_row(row: Row) -> dict[str, Any]:
    """Check one record; return its values (meaningful only if it added no problems)."""
    for column, value in row.cells.items():
        if any(not ch.isprintable() for ch in value.strip()):
            # A terminal escape or a bidi override in a brand's name would act on whoever
            # reads the tables and make an SVG chart ill-formed; as in a study file, refused.
            row.bad(column, "contains a line break or control character; write it on one "
                    "line (look for an unclosed quote)")
    study = _slug(row, "study", required=True)
    values: dict[str, Any] = {
        "study": study,
        "series": _slug(row, "series", required=False) or study,
        "year": _year(row),
        "brand": row.text("brand"),
        "sector": row.text("sector") or None,
        "country": row.text("country") or None,
        "channel": _channel(row),
    }
    if not values["brand"]:
        row.bad("brand", "is empty; every row needs the brand's name")
    response = row.number_of("response_minutes", "minutes", "543 for 9 h 03 min")
    resolution = row.number_of("resolution_minutes", "minutes", "60")
    cutoff = row.number_of("cutoff_minutes", "minutes", "10080 for 7 days")
    if cutoff == 0:
        row.bad("cutoff_minutes", "must be more than zero minutes, e.g. 10080 for 7 days")
    url = row.text("source_url")
    if url and not re.match(r"^https?://\S+$", url):
        row.bad("source_url", "not a web address; write the full http(s):// URL")
    responded = _responded(row)
    values["cutoff_seconds"] = cutoff * 60 if cutoff else None
    if responded is None and row.text("responded") == "":
        values["kind"] = "brand"
        _brand_row(row, values, response)
    else:
        values["kind"] = "probe"
        _probe_row(row, values, responded, response, resolution, cutoff)
    return values


def _probe_row(
    row: Row,
    values: dict[str, Any],
    responded: bool | None,
    response: float | None,
    resolution: float | None,
    cutoff: float | None,
) -> None:
    for column in ("response_rate", "probes"):
        if row.text(column):
            row.bad(column, "belongs on brand rows; a probe row (responded set) is one probe")
    if responded is True and response is None and not row.text("response_minutes"):
        row.bad("response_minutes", "is empty but responded is true; give the minutes "
                "or set responded to false")
    if responded is False and row.text("response_minutes"):
        row.bad("response_minutes", "has a time but responded is false; clear one of them")
    if responded is False and row.text("resolution_minutes"):
        row.bad("resolution_minutes", "has a time but responded is false; clear it")
    if response is not None and resolution is not None and resolution < response:
        row.bad("resolution_minutes", "is before response_minutes; the answer cannot come "
                "before the first reply")
    if cutoff and response is not None and response > cutoff:
        row.bad("response_minutes", "is past cutoff_minutes; a reply after the cutoff means "
                "responded is false")
    values.update(
        question=row.text("question") or None,
        sent_at=_sent_at(row),
        status="answered" if responded else "unanswered",
        ack_seconds=response * 60 if responded and response is not None else None,
        resolution_seconds=resolution * 60 if responded and resolution is not None else None,
    )


def _brand_row(row: Row, values: dict[str, Any], response: float | None) -> None:
    for column, why in (
        ("question", "belongs on probe rows; set responded to true or false"),
        ("sent_at", "belongs on probe rows; set responded to true or false"),
        ("resolution_minutes", "is not supported on brand rows (published mean resolution "
         "times cannot be pooled); move it to note"),
    ):
        if row.text(column):
            row.bad(column, why)
    probes: int | None = None
    raw_probes = row.text("probes")
    if raw_probes:
        if raw_probes.isdigit() and int(raw_probes) > 0:
            probes = int(raw_probes)
        else:
            row.bad("probes", "must be a whole number of probes, at least 1, e.g. 3")
    rate = _rate(row)
    if response is None and rate is None and not row.text("response_minutes") \
            and not row.text("response_rate"):
        row.bad("response_minutes", "the brand row carries no figure; give response_minutes, "
                "response_rate or both (or responded for a probe row)")
    if rate == 0 and response is not None:
        row.bad("response_minutes", "the brand answered nothing (response_rate 0) yet has a "
                "time; clear one of them")
    answered: int | None = None
    if probes is not None:
        answered = probes if rate is None else _answered(row, rate, probes)
    values.update(
        probes=probes,
        answered=answered,
        response_rate=1.0 if rate is None else rate,
        mean_ack_seconds=response * 60 if response is not None else None,
    )
