"""``mystery sandbox``: loopback only, prints where it listens, stops cleanly on Ctrl-C."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from mystery.cli import app
from mystery.sandbox import SandboxServer


def test_refuses_a_non_loopback_host() -> None:
    result = CliRunner().invoke(app, ["sandbox", "--host", "0.0.0.0"])
    assert result.exit_code == 1
    assert "only listens on loopback" in result.output


def test_serves_until_interrupted(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[str] = []

    def interrupt(server: SandboxServer) -> None:
        served.append(server.url)
        raise KeyboardInterrupt

    monkeypatch.setattr(SandboxServer, "wait", interrupt)
    result = CliRunner().invoke(app, ["sandbox", "--port", "0"])
    assert result.exit_code == 0, result.output
    assert served and served[0].startswith("http://127.0.0.1:")
    assert f"Sandbox listening on {served[0]}" in result.output
    assert "Sandbox stopped" in result.output
