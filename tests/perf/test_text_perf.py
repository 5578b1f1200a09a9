"""Benchmark: cleaning hostile reply text for the terminal and for Markdown.

Run apart from the unit tests (pyproject's addopts ignore tests/perf):

    .venv/bin/pytest tests/perf/test_text_perf.py -o addopts="" -s

Every reply a brand sends is shown in ``mystery code``'s review screen and may reach a table:
a reply of ten thousand characters, mostly escape sequences and punctuation (the worst case
for the cleaners), is cleaned twenty times, both ways, within 2 CPU-s (about 0.2 s on a
laptop). It used to be a timed unit test, which a busy CI machine could fail.
"""

from __future__ import annotations

import os
import time

from mystery.text import markdown_cell, terminal_safe
from tests.test_text import hostile_body


def test_twenty_hostile_replies_are_cleaned_both_ways_in_under_two_seconds() -> None:
    body = hostile_body()
    began, began_cpu = time.perf_counter(), time.process_time()
    for _ in range(20):
        terminal_safe(body)
        markdown_cell(body)
    cpu, wall = time.process_time() - began_cpu, time.perf_counter() - began
    print(f"\n20 hostile replies of {len(body):,} characters, cleaned both ways: "
          f"{cpu:.2f} CPU-s, {wall:.2f} s wall; load average {os.getloadavg()[0]:.1f}")
    assert cpu < 2.0
