"""Configuration from the environment and ``.env``, and the one stderr line per tool call."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import responses

from mcp_tools import calllog
from mcp_tools.config import Config, ConfigError

from .bridge_support import API_KEY, URL, ToolCall, problem, task_json

#: What a user might paste into a task or a handoff; it must never reach the bridge's log.
FAKE_SECRET = "sk-live-FAKE0123456789abcdef"


def test_defaults() -> None:
    config = Config.from_env({"TASK_TRACKING_API_KEY": "k"})

    assert (config.api_key, config.base_url, config.timeout) == ("k", "http://localhost:8080", 5.0)


def test_url_and_timeout_from_the_environment() -> None:
    env = {
        "TASK_TRACKING_API_KEY": "k",
        "TASK_TRACKING_URL": "https://tracker.example/",
        "TASK_TRACKING_TIMEOUT": "2.5",
    }

    config = Config.from_env(env)

    assert (config.base_url, config.timeout) == ("https://tracker.example", 2.5)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "TASK_TRACKING_API_KEY environment variable not set"),
        ({"TASK_TRACKING_API_KEY": "  "}, "TASK_TRACKING_API_KEY environment variable not set"),
        ({"TASK_TRACKING_API_KEY": "k", "TASK_TRACKING_URL": "localhost:8080"}, "TASK_TRACKING_URL must start with"),
        ({"TASK_TRACKING_API_KEY": "k", "TASK_TRACKING_TIMEOUT": "soon"}, "TASK_TRACKING_TIMEOUT must be a positive"),
        ({"TASK_TRACKING_API_KEY": "k", "TASK_TRACKING_TIMEOUT": "0"}, "TASK_TRACKING_TIMEOUT must be a positive"),
    ],
)
def test_bad_environments_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config.from_env(env)


def test_dotenv_fills_in_but_never_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("TASK_TRACKING_API_KEY=from-dotenv\nTASK_TRACKING_URL=http://from-dotenv:1\n")
    monkeypatch.setattr(os, "environ", {"TASK_TRACKING_URL": "http://from-env:2"})
    monkeypatch.chdir(tmp_path)

    config = Config.from_env()

    assert config.api_key == "from-dotenv"
    assert config.base_url == "http://from-env:2"


def test_the_key_never_shows_in_repr() -> None:
    assert API_KEY not in repr(Config(api_key=API_KEY))


def test_each_tool_call_is_logged_once_with_status_and_duration(
    http: responses.RequestsMock, call: ToolCall, caplog: pytest.LogCaptureFixture
) -> None:
    http.get(f"{URL}/tasks/next", json={"task": None})

    with caplog.at_level(logging.INFO, logger="mcp_tools.calls"):
        call("get_next_task", project_id="p")

    (line,) = [r.getMessage() for r in caplog.records if r.name == "mcp_tools.calls"]
    assert line.startswith('tool=get_next_task args={"project_id":"p","status_filter":"pending","claim":false')
    assert " http=200 duration_ms=" in line
    assert "error=" not in line


def test_a_failed_call_logs_its_status_and_error_and_truncates_content(
    http: responses.RequestsMock, call: ToolCall, caplog: pytest.LogCaptureFixture
) -> None:
    http.post(f"{URL}/handoffs", **problem(403, "FORBIDDEN", "Forbidden", "read-only key"))
    content = "# Report\n" + "x" * 5000
    topic = "weekly-report-" + "y" * 150

    with caplog.at_level(logging.INFO, logger="mcp_tools.calls"):
        call("create_handoff", project_id="p", task=topic, content=content)

    (record,) = [r for r in caplog.records if r.name == "mcp_tools.calls"]
    line = record.getMessage()
    assert "tool=create_handoff" in line and " http=403 " in line and line.endswith("error=ApiError")
    assert f'"content":"<{len(content)} chars>"' in line  # free text: its size only
    assert f'"task":"{topic[:80]}…(+{len(topic) - 80})"' in line  # other long strings: cut
    assert len(line) < 800
    assert API_KEY not in caplog.text
    assert record.created  # the handler's formatter prints the time


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Undo a test's ``calllog.configure()``, which replaces the root logger's handlers."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_free_text_and_json_are_logged_by_size_so_pasted_secrets_stay_out(
    http: responses.RequestsMock, call: ToolCall, restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    calllog.configure(logging.INFO)  # the bridge's own setup: plain lines on stderr (here, the captured one)
    http.post(f"{URL}/tasks/batch", json={"success": True, "tasks_added": 1, "task_ids": ["TASK-001"]})
    http.put(f"{URL}/tasks/TASK-001/status", json={"updated_task": task_json("TASK-001")})
    http.patch(f"{URL}/tasks/TASK-001", json=task_json("TASK-001"))
    http.post(f"{URL}/handoffs", **problem(403, "FORBIDDEN", "Forbidden", "read-only key"))
    http.post(f"{URL}/task/delegate", json={"task_id": "TASK-002", "status": "delegated"})
    description = f"Deploy the release.\nUse the token {FAKE_SECRET} for the registry.\n" + "Steps: " * 40
    secret_json = {"registry": {"token": FAKE_SECRET}}

    new_task = {
        "project_id": "release",
        "title": "Deploy 1.4",
        "description": description,
        "notes": FAKE_SECRET,
        "inputs": secret_json,
        "outputs": [FAKE_SECRET],
    }
    call("add_task", tasks=[new_task])
    call("update_task_status", task_id="TASK-001", status="completed", completion_notes=FAKE_SECRET, result=secret_json)
    call("update_task", task_id="TASK-001", description=FAKE_SECRET, notes=FAKE_SECRET, outputs=secret_json)
    call("create_handoff", project_id="release", task="deploy", content=f"key: {FAKE_SECRET}")
    call("delegate_task", prompt=f"Log in with {FAKE_SECRET}")

    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if " mcp_tools.calls tool=" in line]
    assert len(lines) == 5, err
    assert FAKE_SECRET not in err
    assert FAKE_SECRET[:12] not in err  # not even the start of it, as truncation would keep
    json_size = len(json.dumps(secret_json, separators=(",", ":")))
    add_task = lines[0]
    # The parameters spec 001 asks for are still there; free text and JSON by their size only.
    assert '"project_id":"release","title":"Deploy 1.4"' in add_task
    assert f'"description":"<{len(description)} chars>"' in add_task
    assert f'"notes":"<{len(FAKE_SECRET)} chars>"' in add_task
    assert f'"inputs":"<{json_size} chars>"' in add_task
    assert f'"outputs":"<{len(FAKE_SECRET) + 4} chars>"' in add_task
    assert '"task_id":"TASK-001","status":"completed"' in lines[1]
    assert f'"completion_notes":"<{len(FAKE_SECRET)} chars>"' in lines[1]
    assert f'"result":"<{json_size} chars>"' in lines[1]
    assert f'"content":"<{len(FAKE_SECRET) + 5} chars>"' in lines[3]
    assert '"prompt":"<' in lines[4] and '"type":"general","priority":5' in lines[4]
    # An omitted field stays visibly omitted.
    assert '"title":null' in lines[2] and '"description":"<' in lines[2]


# Transport settings


def test_streamable_http_defaults_and_needs_no_key() -> None:
    config = Config.from_env({"TRACKER_MCP_TRANSPORT": "streamable-http"})

    assert (config.transport, config.host, config.port, config.allowed_hosts) == (
        "streamable-http",
        "127.0.0.1",
        8766,
        (),
    )
    assert config.api_key is None


def test_over_http_the_process_key_is_never_used() -> None:
    """A client without a key must get a 401, not the operator's tenant."""
    config = Config.from_env({"TASK_TRACKING_API_KEY": "operator-key"}, ["--transport", "streamable-http"])

    assert config.api_key is None


def test_flags_win_over_the_environment() -> None:
    env = {
        "TRACKER_MCP_TRANSPORT": "stdio",
        "TRACKER_MCP_HOST": "10.0.0.1",
        "TRACKER_MCP_PORT": "9000",
        "TRACKER_MCP_ALLOWED_HOSTS": "from-env",
    }
    args = ["--transport", "streamable-http", "--host", "0.0.0.0", "--port", "9100"]
    args += ["--allowed-host", "a.example", "--allowed-host", "b.example:9100"]

    config = Config.from_env(env, args)

    assert (config.host, config.port, config.allowed_hosts) == ("0.0.0.0", 9100, ("a.example", "b.example:9100"))


def test_the_environment_alone_configures_http() -> None:
    env = {
        "TRACKER_MCP_TRANSPORT": "streamable-http",
        "TRACKER_MCP_HOST": "0.0.0.0",
        "TRACKER_MCP_PORT": "9000",
        "TRACKER_MCP_ALLOWED_HOSTS": " tracker.example , ,10.0.0.5,tracker.example",
    }

    config = Config.from_env(env)

    assert (config.host, config.port, config.allowed_hosts) == ("0.0.0.0", 9000, ("tracker.example", "10.0.0.5"))


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_every_address_without_allowed_hosts_is_refused(host: str) -> None:
    with pytest.raises(ConfigError) as failure:
        Config.from_env({}, ["--transport", "streamable-http", "--host", host])

    message = str(failure.value)
    assert message.startswith(f"refusing to listen on {host} without allowed host names")
    assert "--allowed-host" in message and "TRACKER_MCP_ALLOWED_HOSTS" in message


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TRACKER_MCP_TRANSPORT": "sse"}, "TRACKER_MCP_TRANSPORT must be stdio or streamable-http, got 'sse'"),
        ({"TRACKER_MCP_TRANSPORT": "streamable-http", "TRACKER_MCP_PORT": "http"}, "TRACKER_MCP_PORT must be a port"),
        ({"TRACKER_MCP_TRANSPORT": "streamable-http", "TRACKER_MCP_PORT": "70000"}, "TRACKER_MCP_PORT must be a port"),
    ],
)
def test_bad_transport_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config.from_env(env)


def test_a_bad_flag_exits_with_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        Config.from_env({}, ["--transport", "carrier-pigeon"])

    assert exit_.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "invalid choice: 'carrier-pigeon'" in captured.err


def test_the_bridge_freezes_what_start_up_made_before_it_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    """A full garbage collection over the ~95,000 objects that imports leave stalled a tool call
    for 40-60 ms every few seconds; they are frozen out of its sight before serving starts."""
    import gc

    from mcp.server.mcpserver import MCPServer

    from mcp_tools.__main__ import main

    frozen: list[int] = []
    monkeypatch.setattr(MCPServer, "run", lambda self, transport: frozen.append(gc.get_freeze_count()))
    monkeypatch.setattr(calllog, "configure", lambda level: None)  # leave this process's logging alone
    monkeypatch.setenv("TASK_TRACKING_URL", URL)
    monkeypatch.setenv("TASK_TRACKING_API_KEY", API_KEY)
    gc.unfreeze()
    try:
        main([])
    finally:
        gc.unfreeze()
    assert frozen and frozen[0] > 10_000
