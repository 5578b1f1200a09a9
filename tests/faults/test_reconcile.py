"""Finding our own post again (reconciliation) against the sandbox with the real X channel:
``start_time`` has second granularity and is inclusive; X escapes ``&<>``; pages past 100."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests

from mystery.channels.base import Outgoing
from mystery.channels.x import XChannel, same_text
from mystery.clock import parse_iso
from mystery.sandbox import SandboxServer

START = parse_iso("2026-03-02T09:00:00.000Z")


@pytest.fixture
def x(sandbox: SandboxServer) -> Iterator[XChannel]:
    requests.put(f"{sandbox.url}/_sandbox/world", timeout=5, json={
        "seed": 1, "start": "2026-03-02T09:00:00Z", "researcher": {"x": "res"},
        "brands": [{"name": "Acme", "handles": {"x": "acme"},
                    "profile": {"answer_rate": 0}}]})
    channel = XChannel("res", sandbox.url, sandbox=True, visibility_lag=timedelta(0))
    channel.open()
    yield channel
    channel.close()


def _probe(text: str) -> Outgoing:
    return Outgoing("p1", "acme", text)


@pytest.mark.parametrize("offset_ms", [0, 1, 999])
def test_a_post_is_found_from_any_instant_within_its_own_second(
    x: XChannel, sandbox: SandboxServer, offset_ms: int
) -> None:
    sandbox.world.advance_to(START + timedelta(milliseconds=offset_ms))
    sent = x.send(_probe("Hi, open on Sundays?"))
    assert sent.sent_at == START + timedelta(milliseconds=offset_ms)
    for since in (START, sent.sent_at, START + timedelta(milliseconds=999)):
        assert x.find_sent(_probe("Hi, open on Sundays?"), since) == sent
    assert x.find_sent(_probe("Hi, open on Sundays?"), START + timedelta(seconds=1)) is None


def test_text_x_escaped_is_still_recognised(x: XChannel, sandbox: SandboxServer) -> None:
    text = "Is it < £30 & in stock? See https://example.com/kettle?a=1&b=2"
    sent = x.send(_probe(text))
    assert x.find_sent(_probe(text), START) == sent
    assert x.find_sent(_probe(text.replace("30", "31")), START) is None
    assert same_text("@acme a &amp; b &lt;c&gt;  https://t.co/xyz", "@acme a & b <c> http://x.y")


def test_our_post_is_found_beyond_the_first_page(x: XChannel, sandbox: SandboxServer) -> None:
    wanted = x.send(_probe("The very first question"))
    for i in range(150):
        sandbox.world.advance_by(timedelta(seconds=7))
        x.send(_probe(f"Filler question {i}"))
    assert x.find_sent(_probe("The very first question"), START) == wanted
