"""Every test runs in a clean room: none of the developer's credentials, config or terminal.

Why autouse: a test that passes only because the developer has ``MYSTERY_X_BEARER_TOKEN``
exported, or a keyring entry, or a wide terminal, proves nothing, and one that writes to the
real config dir damages the developer's setup.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from mystery.sandbox import SandboxControl, SandboxServer
from tests.postgres import PostgresServer

WIDTH = "100"

# rich reads COLUMNS when a Console is made (mystery.cli.console makes its consoles on first use),
# so the width must be set before any test module imports mystery.
os.environ["COLUMNS"] = WIDTH
# Publish keeps a memo in the user cache folder: a test's, even one made by a module-scoped
# fixture (before the function-scoped clean room below), goes to a folder of the tests' own.
os.environ["MYSTERY_CACHE_DIR"] = tempfile.mkdtemp(prefix="mystery-tests-cache-")
atexit.register(shutil.rmtree, os.environ["MYSTERY_CACHE_DIR"], ignore_errors=True)


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path_factory: pytest.TempPathFactory,
                         monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No ``MYSTERY_*`` variables, fresh config and cache dirs, no keyring, a fixed width."""
    for name in list(os.environ):
        if name.startswith("MYSTERY_"):
            monkeypatch.delenv(name)
    config = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("MYSTERY_CONFIG_DIR", str(config))
    monkeypatch.setenv("MYSTERY_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setenv("COLUMNS", WIDTH)
    # keyring caches its backend on first use, so the variable alone may come too late.
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())  # type: ignore[no-untyped-call]
    yield config
    keyring.set_keyring(before)


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """A fresh sandbox on a free loopback port, for tests that drive it over HTTP."""
    with SandboxServer() as server:
        yield server


@pytest.fixture
def control(sandbox: SandboxServer) -> Iterator[SandboxControl]:
    """The sandbox's control plane (world, clock, faults, ground truth)."""
    with SandboxControl(sandbox.url) as client:
        yield client


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the whole session (``tests/postgres.py``)."""
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def store_at(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], str]:
    """Where a fresh store goes, once on each kind of store: a file, or an empty PostgreSQL
    database's URL. Tests of the store and the runner take this, so each runs on both
    (``pytest -k postgres`` selects the PostgreSQL ones)."""
    names = itertools.count(1)
    if request.param == "sqlite":
        return lambda: str(tmp_path / f"s{next(names)}.db")
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.database
