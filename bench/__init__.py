"""Benchmarks of the tracker and the `tracker-mcp` bridge (`python -m bench --help`).

Every run measures its floors and the project in the same run, on the same machine, and
reports medians, p95, p99 and ratios. Nothing here is imported by the tests, and nothing
here imports from tests/.
"""
