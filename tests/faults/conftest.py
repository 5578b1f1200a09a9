"""Fixtures for the fault tests: a fresh sandbox (standalone, over loopback HTTP) and a study."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.fault_helpers import write_study


@pytest.fixture
def study(tmp_path: Path) -> Path:
    return write_study(tmp_path)
