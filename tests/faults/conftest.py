"""Fixtures for the fault tests: a fresh sandbox (standalone, over loopback HTTP) and a study."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_helpers import write_study

from mystery.sandbox import SandboxControl, SandboxServer


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


@pytest.fixture
def control(sandbox: SandboxServer) -> Iterator[SandboxControl]:
    with SandboxControl(sandbox.url) as client:
        yield client


@pytest.fixture
def study(tmp_path: Path) -> Path:
    return write_study(tmp_path)
