"""The deployment files checked without a Docker engine: against their schemas and linters, and
against each other (a variable, port or path named in one file must match the others)."""

from __future__ import annotations

import re
import subprocess
from dataclasses import MISSING, fields
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy.engine import make_url

from mcp_tools.config import DEFAULT_TIMEOUT
from tracker_service.settings import Settings

from .deploy_support import (
    COMPOSE_FILE,
    DOCKERFILE,
    ROOT,
    compose,
    compose_references,
    dockerfile_stages,
    dockerignore_rules,
    environment,
    in_build_context,
    named_volume_targets,
    option,
    read_env_file,
    tool,
)

# Settings announced for the tracker (Prometheus metrics, JSON logs) that .env.example already
# passes on; Settings ignores a TRACKER_* name it does not know. Drop a name once Settings has it.
ANNOUNCED_SETTINGS: set[str] = set()
# Settings that the compose file fixes for the container rather than taking from .env.
FIXED_BY_COMPOSE = {"TRACKER_DATABASE_URL", "TRACKER_DATA_DIR"}


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return read_env_file()


@pytest.fixture(scope="module")
def services(env_example: dict[str, str]) -> dict[str, dict]:
    return compose(env_example)["services"]


def run_tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    exe = tool(name)
    if exe is None:
        pytest.skip(f"{name} is not installed (it comes with the dev extra: pip install -e '.[dev]')")
    return subprocess.run([exe, *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


# --- schemas and linters -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "path", "breakage"),
    [
        # A misspelt service key: the specification allows no unknown keys in a service.
        ("vendor.compose-spec", COMPOSE_FILE, ("    healthcheck:", "    healthchek:")),
        ("vendor.taskfile", ROOT / "Taskfile.yml", ("    cmds:", "    commands:")),
    ],
    ids=["docker-compose.yml", "Taskfile.yml"],
)
def test_file_matches_its_json_schema(schema: str, path: Path, breakage: tuple[str, str], tmp_path: Path) -> None:
    """check-jsonschema with the schema it ships (offline); a broken copy must fail, so the check is live."""
    result = run_tool("check-jsonschema", "--builtin-schema", schema, str(path))
    assert result.returncode == 0, result.stdout + result.stderr

    old, new = breakage
    assert old in path.read_text()
    broken = tmp_path / path.name
    broken.write_text(path.read_text().replace(old, new, 1))
    result = run_tool("check-jsonschema", "--builtin-schema", schema, str(broken))
    assert result.returncode == 1, f"the {schema} schema accepted a broken {path.name}:\n{result.stdout}"


def test_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    """hadolint at its strictest threshold (style); every inline ignore says why just above it."""
    result = run_tool("hadolint", "--no-color", "--failure-threshold", "style", str(DOCKERFILE))
    assert result.returncode == 0, result.stdout + result.stderr

    lines = DOCKERFILE.read_text().splitlines()
    for number, line in enumerate(lines):
        if match := re.match(r"#\s*hadolint\s+ignore=([\w,]+)", line):
            reason = "\n".join(lines[max(0, number - 3) : number])
            for rule in match[1].split(","):
                assert rule in reason, f"Dockerfile:{number + 1}: ignore {rule} without a comment saying why"

    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install requests\n")
    result = run_tool("hadolint", "--no-color", "--failure-threshold", "style", str(bad))
    assert result.returncode == 1 and "DL3006" in result.stdout, result.stdout


# --- the Dockerfile ----------------------------------------------------------------------------


def test_dockerfile_builds_one_slim_non_root_image(services: dict[str, dict]) -> None:
    stages = dockerfile_stages()
    builder, runtime = stages[0], stages[-1]
    assert len(stages) >= 2, "the image should be built in a builder stage and copied to a runtime stage"
    assert {stage.base for stage in stages} == {runtime.base}, "the venv only runs on the Python it was made with"
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", runtime.base), runtime.base

    # The runtime stage takes the venv and nothing else from the builder.
    copies = runtime.all("COPY")
    assert copies == [f"--from={builder.name} /opt/venv /opt/venv"], copies
    assert "pip wheel" in " ".join(builder.all("RUN")), "the builder should install from the project's wheel"
    assert runtime.env["PATH"].startswith("/opt/venv/bin:")

    user = runtime.last("USER")
    assert user and user.split(":")[0] not in ("root", "0"), f"the image runs as {user!r}"

    _, check = runtime.healthcheck
    assert check[:2] == ["python", "-c"] and "/health" in check[2], check

    # `docker run IMAGE` does what the compose file's tracker service does.
    assert runtime.cmd == services["tracker"]["command"]
    for name in ("migrate", "tracker", "mcp"):
        assert services[name]["image"] == services["tracker"]["image"], "one image for tracker and bridge"


def test_build_context_has_what_the_dockerfile_copies_and_no_secrets() -> None:
    rules = dockerignore_rules()
    builder = dockerfile_stages()[0]
    sources = [word for args in builder.all("COPY") for word in args.split()[:-1] if not word.startswith("--")]
    assert sources, "the builder copies nothing"
    for source in sources:
        path = ROOT / source
        assert path.exists(), f"COPY {source}: no such file"
        files = [path] if path.is_file() else [f for f in path.rglob("*") if "__pycache__" not in f.parts]
        for file in filter(Path.is_file, files):
            relative = file.relative_to(ROOT).as_posix()
            assert in_build_context(relative, rules), f".dockerignore keeps {relative} out, but COPY {source} needs it"

    kept_out = [".env", ".venv/bin/python", ".git/HEAD", "tests/conftest.py", ".tracker-data/admin.key"]
    for path in [*kept_out, "tracker_service/__pycache__/app.cpython-312.pyc"]:
        assert not in_build_context(path, rules), f"{path} would be sent to the builder"


# --- .env.example and the compose file ---------------------------------------------------------


def test_env_example_lists_every_compose_variable_with_its_default(env_example: dict[str, str]) -> None:
    refs = compose_references()
    used = {ref.name for ref in refs}
    assert used - env_example.keys() == set(), "docker-compose.yml uses variables .env.example does not list"
    assert env_example.keys() - used == set(), ".env.example lists variables docker-compose.yml never uses"
    for ref in refs:
        assert ref.op in (":-", ":?"), f"${{{ref.name}}} needs a default (:-) or an error message (:?)"
        if ref.op == ":?":
            assert env_example[ref.name], f"{ref.name} is required: .env.example must give it a value"
        elif ref.arg:
            assert env_example[ref.name] == ref.arg, f"{ref.name}: .env.example and docker-compose.yml disagree"


def test_every_tracker_setting_can_be_set_from_env(env_example: dict[str, str], services: dict[str, dict]) -> None:
    """Each Settings field reaches the tracker service, from .env with the program's default, or
    fixed by the compose file; a new setting fails here until it is added to both files."""
    tracker, migrate = services["tracker"], services["migrate"]
    env = environment(tracker)
    assert environment(migrate) == env, "migrate and tracker should run with the same settings"

    raw_env = {ref.name for ref in compose_references()}
    for f in fields(Settings):
        name = f"TRACKER_{f.name.upper()}"
        if f.name in ("host", "port"):
            assert option(tracker["command"], f"--{f.name}"), f"the tracker's command should give --{f.name}"
            continue
        assert name in env, f"{name} does not reach the tracker service"
        if name in FIXED_BY_COMPOSE:
            continue
        assert name in raw_env, f"{name} should be taken from .env (${{{name}:-}})"
        if f.default is not MISSING and f.default is not None:
            default = str(f.default).lower() if isinstance(f.default, bool) else str(f.default)
            assert env_example[name] == default, f"{name}: .env.example {env_example[name]!r}, Settings {default!r}"

    known = {f"TRACKER_{f.name.upper()}" for f in fields(Settings)}
    unknown = {name for name in env if name.startswith("TRACKER_")} - known
    assert unknown <= ANNOUNCED_SETTINGS, f"the tracker ignores {sorted(unknown - ANNOUNCED_SETTINGS)}"


def test_bridge_settings(env_example: dict[str, str], services: dict[str, dict]) -> None:
    env = environment(services["mcp"])
    assert float(env_example["TASK_TRACKING_TIMEOUT"]) == DEFAULT_TIMEOUT
    assert "TASK_TRACKING_API_KEY" not in env, "in HTTP mode each client sends its own key"
    assert option(services["mcp"]["command"], "--transport") == "streamable-http"
    assert env["TRACKER_MCP_ALLOWED_HOSTS"], "binding 0.0.0.0 needs the allowed Host names"

    tracker_url = urlsplit(env["TASK_TRACKING_URL"])
    tracker_port = int(option(services["tracker"]["command"], "--port"))
    assert (tracker_url.hostname, tracker_url.port) == ("tracker", tracker_port), "the bridge should call the tracker"


@pytest.mark.parametrize("name", ["tracker", "mcp"])
def test_ports_agree(name: str, services: dict[str, dict]) -> None:
    """The port the program listens on is the one published and the one its health check asks."""
    service = services[name]
    port = int(option(service["command"], "--port"))
    assert option(service["command"], "--host") == "0.0.0.0", "inside a container, listen on every interface"
    published = [str(p).rsplit(":", 1) for p in service["ports"]]
    assert [int(target) for _, target in published] == [port]
    assert all(host.startswith("127.0.0.1:") for host, _ in published), "publish on loopback by default"

    _, check = dockerfile_stages()[-1].healthcheck
    default_url = re.search(r"'(http://[^']+)'", check[2])[1]
    url = urlsplit(environment(service).get("HEALTHCHECK_URL", default_url))
    assert (url.hostname, url.port, url.path) == ("127.0.0.1", port, "/health")


def test_services_start_in_order(services: dict[str, dict]) -> None:
    def waits_for(name: str) -> dict[str, str]:
        return {dep: spec["condition"] for dep, spec in services[name]["depends_on"].items()}

    assert waits_for("migrate") == {"db": "service_healthy"}
    assert waits_for("tracker") == {"db": "service_healthy", "migrate": "service_completed_successfully"}
    assert waits_for("mcp") == {"tracker": "service_healthy"}
    assert services["migrate"]["command"] == ["tracker", "migrate"]
    assert services["migrate"].get("restart", "no") == "no", "migrate is one-shot"
    assert services["tracker"]["restart"] == services["mcp"]["restart"] == "unless-stopped"


def test_database_service(env_example: dict[str, str], services: dict[str, dict]) -> None:
    db = services["db"]
    image, _, tag = db["image"].partition(":")
    assert image == "postgres" and int(tag.split(".")[0].split("-")[0]) >= 17, db["image"]
    assert "ports" not in db, "the database is reachable only inside the project"

    db_env = environment(db)
    url = make_url(environment(services["tracker"])["TRACKER_DATABASE_URL"])
    assert url.get_backend_name() == "postgresql"
    assert (url.host, url.port) == ("db", 5432)
    assert (url.username, url.password, url.database) == (
        db_env["POSTGRES_USER"],
        env_example["POSTGRES_PASSWORD"],
        db_env["POSTGRES_DB"],
    )

    test = db["healthcheck"]["test"]
    assert test[:2] == ["CMD", "pg_isready"], test
    assert {option(test, "--username"), option(test, "--dbname")} == {db_env["POSTGRES_USER"], db_env["POSTGRES_DB"]}

    declared = compose(env_example)["volumes"]
    # PostgreSQL 18's image keeps its data in a versioned directory under /var/lib/postgresql.
    data = "/var/lib/postgresql" if int(tag.split(".")[0].split("-")[0]) >= 18 else "/var/lib/postgresql/data"
    assert data in named_volume_targets(db, declared), f"the database should live in a named volume at {data}"


def test_admin_key_lands_on_a_named_volume(env_example: dict[str, str], services: dict[str, dict]) -> None:
    tracker = services["tracker"]
    data_dir = environment(tracker)["TRACKER_DATA_DIR"]
    assert data_dir in named_volume_targets(tracker, compose(env_example)["volumes"])
    assert dockerfile_stages()[-1].env["TRACKER_DATA_DIR"] == data_dir, "docker run should use the same data dir"
