"""``datapackage.json``: each results folder as a Frictionless data package.

Why: a researcher who downloads ``results/<series>/`` should not need this README to read it.
The descriptor names every CSV, each column's type, unit and meaning, the empty cell as the one
missing value, and the method (the same note every table carries), in the Table Schema
convention that research-data tools (frictionless, R's ``frictionless``, Data Package viewers)
read and validate. It is built from the same column specs that write the CSVs, so the two
cannot drift, and written as sorted, indented JSON so it is byte-stable like every table.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mystery.analysis.tables import Col, Kind
from mystery.durations import MINUTES_DECIMALS

FILE_NAME = "datapackage.json"
_TYPES: dict[Kind, str] = {
    "text": "string", "int": "integer", "minutes": "number", "rate": "number",
    "date": "date", "bool": "boolean", "year": "integer", "p": "number", "change": "number",
}
_UNITS: dict[Kind, str] = {"minutes": "minutes", "rate": "share (0 to 1)", "int": "count",
                           "year": "year", "p": "probability", "change": "share (-1 to 1)"}
#: What a column means, where its header alone does not say it.
MEANINGS = {
    "series": "the series (the same study repeated over years)",
    "study": "the study (one wave of measurement)",
    "year": "the study's year",
    "channel": "where probes were sent: x, mastodon, bluesky, email or a hand-logged channel",
    "source": "measured (mystery's own runs), published (figures others published) or both",
    "brands": "brands asked (a partial published study: the study's published count)",
    "brands_listed": "brands the sources list",
    "listed": "which brands the sources list: all, fastest, slowest or some",
    "probes": "probes sent and counted (excluded probes left out)",
    "answered": "probes acknowledged before the cutoff",
    "response_rate": "share of probes acknowledged before the cutoff",
    "median_minutes": "Kaplan–Meier median time to acknowledgement over all probes, unanswered "
    "ones censored at the cutoff (the lower of the two middle times when survival is exactly "
    "one half)",
    "within_1h": "share of probes acknowledged within 1 hour",
    "within_24h": "share of probes acknowledged within 24 hours",
    "mean_minutes_answered_only": "mean time to acknowledgement over answered probes only",
    "published_mean_minutes": "the study's own published mean time",
    "published_median_minutes": "the study's own published median time",
    "answered_every_probe": "the brand answered every probe (empty: not known)",
    "median_ci_low_minutes": "lower end of the 95 % confidence interval of the median "
    "(Greenwood variance, log-log transform; empty when the band never reaches one half)",
    "median_ci_high_minutes": "upper end of the 95 % confidence interval of the median "
    "(empty when undefined: the band's upper edge never falls to one half)",
    "logrank_p": "two-sided log-rank p-value of the change from the previous year, all probes",
    "panel_brands": "brands present in both this year and the previous one (the panel)",
    "panel_logrank_p": "log-rank p-value of the change over the panel's probes only",
    "rate_change": "change in response rate since the previous year, as a share",
    "rate_change_ci_low": "lower end of the 95 % interval of the rate change (Newcombe's "
    "hybrid score interval from Wilson intervals)",
    "rate_change_ci_high": "upper end of the 95 % interval of the rate change (Newcombe)",
}


def _meaning(col: Col) -> str:
    if col.name in MEANINGS:
        return MEANINGS[col.name]
    text = col.title
    for stat in ("mean", "median"):
        if f"_{stat}_minutes" in col.name or col.name.startswith(f"{stat}_"):
            text += f" ({stat} time to acknowledgement)"
    return text


def field(col: Col) -> dict[str, Any]:
    """One Table Schema field for one output column."""
    out: dict[str, Any] = {"name": col.name, "type": _TYPES[col.kind],
                           "description": _meaning(col)}
    if col.kind in _UNITS:
        out["unit"] = _UNITS[col.kind]
    if col.kind == "minutes":
        out["description"] += f"; minutes with {MINUTES_DECIMALS} decimals"
    if col.kind in ("rate", "p"):
        out["constraints"] = {"minimum": 0, "maximum": 1}
    if col.kind == "change":
        out["constraints"] = {"minimum": -1, "maximum": 1}
    if col.kind == "bool":
        out["trueValues"], out["falseValues"] = ["true"], ["false"]
    return out


_TIMINGS = {
    "study": "the study (one wave of measurement)",
    "series": "the series it belongs to",
    "year": "the study's year",
    "brand": "the brand asked",
    "sector": "the brand's sector",
    "country": "the brand's country",
    "channel": "where the probe was sent",
    "question": "the question id from the study's question bank",
    "sent_at": "when the platform says the probe was posted (UTC, milliseconds)",
    "ack_seconds": "seconds from sent_at to the first reply (acknowledgement); empty when "
    "unanswered",
    "resolution_seconds": "seconds to the first reply coded as answering; empty when not "
    "resolved by the cutoff (censored)",
    "status": "answered, unanswered (censored at cutoff_seconds, never dropped) or excluded "
    "(left out of every figure)",
    "cutoff_seconds": "how long the probe waited",
    "account": "the researcher account that sent the probe (a team study only)",
}


def timings_fields(with_account: bool = False) -> list[dict[str, Any]]:
    """The Table Schema of ``timings.csv`` (:mod:`mystery.timings.schema`); ``with_account``
    for a team study's file, which ends with the optional ``account`` column."""
    from mystery.timings import schema as timings

    out: list[dict[str, Any]] = []
    columns = timings.full_schema() if with_account else timings.schema()
    for name, dtype in columns.items():
        kind = ("integer" if dtype.is_integer() else "number" if dtype.is_float()
                else "datetime" if dtype.is_temporal() else "string")
        entry: dict[str, Any] = {"name": name, "type": kind, "description": _TIMINGS[name]}
        if name.endswith("_seconds"):
            entry["unit"] = "seconds"
            entry["description"] += "; seconds with 3 decimals (milliseconds)"
        if kind == "datetime":
            entry["format"] = "%Y-%m-%dT%H:%M:%S.%fZ"
        if name == "status":
            entry["constraints"] = {"enum": list(timings.STATUSES)}
        out.append(entry)
    return out


def resource(file: str, fields: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": file.removesuffix(".csv"),
        "path": file,
        "profile": "tabular-data-resource",
        "format": "csv",
        "mediatype": "text/csv",
        "encoding": "utf-8",
        "schema": {"fields": fields, "missingValues": [""]},
    }


def descriptor(name: str, title: str, method: str,
               tables: Mapping[str, Sequence[Col]]) -> dict[str, Any]:
    """The package of one results folder: ``tables`` maps each CSV file name to its columns."""
    return {
        "profile": "tabular-data-package",
        "name": name,
        "title": title,
        "description": method,
        "resources": [resource(file, [field(c) for c in cols])
                      for file, cols in sorted(tables.items())],
    }


def write(folder: Path, package: dict[str, Any], *, primary: bool) -> Path:
    """Write ``package`` into ``folder``, joined with the package already there: a study and
    its series can share a folder (``results/demo/``), and each adds its own CSVs. The
    ``primary`` part (the series) gives the title and method; the other only when alone."""
    path = folder / FILE_NAME
    try:
        existing: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        existing = {}
    ours = {r["path"] for r in package["resources"]}
    kept = [r for r in existing.get("resources", [])
            if isinstance(r, dict) and r.get("path") not in ours]
    merged = dict(package) if primary or not existing else {**existing}
    merged["resources"] = sorted([*kept, *package["resources"]], key=lambda r: str(r["path"]))
    folder.mkdir(parents=True, exist_ok=True)
    path.write_bytes(to_bytes(merged))
    return path


def to_bytes(package: Mapping[str, Any]) -> bytes:
    """The descriptor's byte-stable form."""
    return (json.dumps(package, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
