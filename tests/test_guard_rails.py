"""Guard rails that run with the tests: the code is linted, formatted and type-checked clean.

The rules are in pyproject.toml ([tool.ruff], [tool.mypy]); both tools come with the dev extra.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CODE = ["tracker_service", "mcp_tools", "tests", "bench"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing():
    result = run("ruff", "check", *CODE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_code_is_formatted():
    result = run("ruff", "format", "--check", *CODE)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_mypy_finds_nothing():
    result = run("mypy")  # the packages and settings of [tool.mypy]
    assert result.returncode == 0, result.stdout + result.stderr
