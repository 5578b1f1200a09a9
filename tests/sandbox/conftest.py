"""Fixtures for the sandbox tests: a sandbox on a free loopback port, unmodified tweepy pointed at
it the way the X channel does (platforms.md §2.2), and the control plane."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import tweepy

from mystery.sandbox import SandboxServer
from tests.sandbox.sandbox_helpers import make_client, world_body


@pytest.fixture
def world(sandbox: SandboxServer) -> SandboxServer:
    """The sandbox with the default world (Acme with an alias, and Globex)."""
    response = requests.put(f"{sandbox.url}/_sandbox/world", json=world_body(), timeout=10)
    assert response.status_code == 201, response.text
    return sandbox


@pytest.fixture
def x(world: SandboxServer) -> Iterator[tweepy.Client]:
    """tweepy 4.17 ``Client`` (OAuth 1.0a user context) talking to the sandbox."""
    client = make_client(world.url)
    yield client
    client.session.close()


@pytest.fixture
def me(x: tweepy.Client) -> str:
    return str(x.get_me().data.id)
