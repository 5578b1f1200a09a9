"""Benchmarks: run apart from the unit tests with

    .venv/bin/pytest tests/perf -o addopts="" -s

Each prints its figures (copy them into README.md's Performance section) and asserts the target.
"""
