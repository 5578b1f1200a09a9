"""The optional ``account`` column of timings: a team study's files carry it, every other file
keeps its thirteen columns and its bytes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mystery.errors import ImportFileError
from mystery.timings import schema as timings


def _row(account: str | None = None, **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "study": "s", "series": "s", "year": 2026, "brand": "Acme", "sector": "", "country": "",
        "channel": "x", "question": "q", "sent_at": datetime(2026, 3, 2, 9, tzinfo=UTC),
        "ack_seconds": 60.0, "resolution_seconds": None, "status": "answered",
        "cutoff_seconds": 3600.0, **changes,
    }
    if account is not None:
        row["account"] = account
    return row


def test_timings_without_accounts_keep_their_thirteen_columns(tmp_path: Path) -> None:
    df = timings.frame([_row()])
    assert df["account"].to_list() == [None]
    text = timings.to_csv_bytes(df).decode()
    assert text.splitlines()[0] == ",".join(timings.COLUMNS)
    path = timings.write_csv(df, tmp_path / "timings.csv")
    assert timings.to_csv_bytes(timings.read_csv(path)) == text.encode()


def test_a_team_studys_timings_name_the_account_and_read_back(tmp_path: Path) -> None:
    df = timings.frame([_row("shopper_a"), _row("shopper_b", brand="Globex")])
    path = timings.write_csv(df, tmp_path / "timings.csv")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == ",".join(timings.ALL_COLUMNS)
    assert [line.rsplit(",", 1)[1] for line in lines[1:]] == ["shopper_a", "shopper_b"]
    back = timings.read_csv(path)
    assert back["account"].to_list() == ["shopper_a", "shopper_b"]
    assert timings.to_csv_bytes(back) == path.read_bytes()


def test_an_unknown_column_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "timings.csv"
    text = timings.to_csv_bytes(timings.frame([_row()])).decode()
    header, rest = text.split("\n", 1)
    path.write_text(header + ",agent\n" + rest.replace("\n", ",x\n"), encoding="utf-8")
    with pytest.raises(ImportFileError, match="unknown: agent"):
        timings.read_csv(path)
