"""The reference worker (`tracker worker`): a result with huge output still fits the tracker's limits."""

from __future__ import annotations

import json
import sys
import time

import httpx
import pytest

from tests.helpers import ok, running_worker
from tracker_service.worker import MAX_OUTPUT_CHARS, _clip

PROMPT = "Create a Python function to calculate prime numbers"


def wait_for_status(api: httpx.Client, task_id: str, status: str, seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    while (task := ok(api.get(f"/tasks/{task_id}")))["status"] != status:
        assert time.monotonic() < deadline, f"task still {task['status']}, not {status}, after {seconds} s"
        time.sleep(0.1)
    return task


def delegate(api: httpx.Client, project: str, prompt: str = PROMPT) -> str:
    body = {"type": "code", "prompt": prompt, "priority": 8, "options": {"project": project}}
    return ok(api.post("/task/delegate", json=body))["task_id"]


@pytest.mark.parametrize("char", ["a", '"', "\n", "\x01", "é", "\u2028", "😀"])
def test_output_is_clipped_by_its_encoded_length(char):
    clipped = _clip(char * 300_000)
    assert clipped is not None
    kept, marker = clipped.split("\n[... ")
    assert kept == char * len(kept) and marker == f"{300_000 - len(kept)} more characters cut]"
    assert len(json.dumps(clipped)) <= MAX_OUTPUT_CHARS
    assert len(json.dumps(clipped, ensure_ascii=False).encode()) <= MAX_OUTPUT_CHARS
    # As much as fits is kept: one more character would not.
    assert len(json.dumps(char * (len(kept) + 1))) > MAX_OUTPUT_CHARS - 64
    result = {"success": True, "output": clipped, "error": clipped, "exit_code": 0}
    assert len(json.dumps(result).encode()) <= 512 * 1024
    fits = char * 1000
    assert _clip(fits) == fits and _clip(None) is None


@pytest.mark.slow
def test_output_that_escapes_to_megabytes_is_clipped_and_stored(tracker_url, api, api_key, project):
    # 300k control characters per stream: 1.8 MB each once JSON-escaped, far over the body limit.
    script = "import sys; sys.stdout.write(chr(1) * 300_000); sys.stderr.write(chr(1) * 300_000)"
    with running_worker(tracker_url, api_key, project, sys.executable, "-c", script):
        task_id = delegate(api, project)
        task = wait_for_status(api, task_id, "completed")
    result = task["result"]
    assert len(json.dumps(result).encode()) <= 512 * 1024
    assert result["output"].startswith(chr(1) * 1000) and result["output"].endswith(" more characters cut]")
    assert result["error"].startswith(chr(1) * 1000) and result["exit_code"] == 0
