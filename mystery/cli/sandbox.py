"""``mystery sandbox``: run the platform emulator on its own, until Ctrl-C.

Why standalone: crash tests and dry runs kill and restart the runner while the sandbox (and the
world in it) lives on, exactly as a real platform would.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

from mystery.cli.console import err_console, friendly_errors
from mystery.errors import SandboxError


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@friendly_errors
def sandbox(
    port: Annotated[
        int,
        typer.Option(help="The port to listen on; 0 picks a free one.", min=0, max=65535),
    ] = 8765,
    host: Annotated[
        str,
        typer.Option(help="The loopback address to listen on (127.0.0.1, ::1 or localhost)."),
    ] = "127.0.0.1",
    enforce_rate_limits: Annotated[
        bool,
        typer.Option(help="Answer 429 once a route's 15-minute limit is used up."),
    ] = False,
    runner_timeout: Annotated[
        float,
        typer.Option(help="Seconds the clock waits for a runner that has gone silent before "
                          "it stops waiting for it (a dead runner must not freeze the world).",
                     min=0.1),
    ] = 10.0,  # runners.RUNNER_TIMEOUT; not imported here, so that the CLI starts quickly
    fair_clock: Annotated[
        bool,
        typer.Option(help="Move the clock only as far as every runner has asked, so each sends "
                          "on time; --no-fair-clock lets each runner move it at once (faster "
                          "for benchmarks, but a slower runner then sends late)."),
    ] = True,
) -> None:
    """Serve the sandbox (the X, Mastodon and Bluesky APIs mystery uses, and the /_sandbox/
    control plane) until Ctrl-C."""
    from mystery.sandbox import SandboxServer

    if not _loopback(host):
        raise SandboxError(
            f"refusing to listen on {host}: the sandbox accepts any credentials, so it only "
            "listens on loopback; use --host 127.0.0.1"
        )
    server = SandboxServer(
        "127.0.0.1" if host == "localhost" else host, port,
        enforce_rate_limits=enforce_rate_limits, runner_timeout=runner_timeout,
        fair_clock=fair_clock,
    )
    server.start()
    err_console().print(
        f"Sandbox listening on {server.url}  (X API under /2/, control under "
        "/_sandbox/). Press Ctrl-C to stop."
    )
    try:
        server.wait()
    except KeyboardInterrupt:
        err_console().print("Sandbox stopped; its world is gone.")
    finally:
        server.stop()


def register(app: typer.Typer) -> None:
    """Add this group's commands to the app."""
    app.command()(sandbox)
