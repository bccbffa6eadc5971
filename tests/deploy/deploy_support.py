"""Reading the deployment files the way Docker and Compose do, closely enough to rehearse them.

- ``.env.example`` as Compose reads a ``.env`` file (``KEY=VALUE`` lines, ``#`` comments);
- ``docker-compose.yml`` with YAML anchors and merge keys resolved and ``${VAR}``, ``${VAR:-default}``,
  ``${VAR:?error}``, ``$$`` interpolated in values (never in keys), as the Compose specification says;
- the ``Dockerfile``'s final stage: its ``ENV``, ``USER``, ``WORKDIR``, ``HEALTHCHECK`` and ``CMD``;
- ``.dockerignore`` patterns, matched the way the Docker builder matches them.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

# `$$`, `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?err}`, `${NAME?err}`, `$NAME`.
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(KeyError):
    """A ``${NAME:?message}`` variable without a value: Compose refuses the file."""


def tool(name: str) -> str | None:
    """An executable installed beside this Python (the project's venv) or on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


# --- .env --------------------------------------------------------------------------------------


def read_env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """``KEY=VALUE`` lines; comments and blank lines skipped. Anything else is an error."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", line)
        assert match, f"{path.name}:{number}: not a KEY=VALUE line: {line!r}"
        assert match[1] not in values, f"{path.name}:{number}: {match[1]} is set twice"
        values[match[1]] = match[2]
    return values


# --- docker-compose.yml ------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """One use of a variable in the compose file."""

    name: str
    op: str | None  # ":-", "-", ":?", "?" or None
    arg: str | None  # the default or the error message


def references(text: str) -> list[Reference]:
    return [
        Reference(m["braced"] or m["named"], m["op"], m["arg"]) for m in _VARIABLE.finditer(text) if not m["escaped"]
    ]


def interpolate(text: str, env: dict[str, str]) -> str:
    def substitute(m: re.Match[str]) -> str:
        if m["escaped"]:
            return "$"
        name, op, arg = m["braced"] or m["named"], m["op"], m["arg"]
        value = env.get(name)
        unset = not value if op and op.startswith(":") else value is None
        if op and op.endswith("-") and unset:
            return arg or ""
        if op and op.endswith("?") and unset:
            raise MissingVariable(f"{name}: {arg}")
        return value or ""

    return _VARIABLE.sub(substitute, text)


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return []


def _interpolated(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: _interpolated(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolated(item, env) for item in node]
    return node


def raw_compose() -> dict[str, Any]:
    """The compose file as YAML (anchors and merge keys resolved), not yet interpolated."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


def compose_references() -> list[Reference]:
    return [ref for text in _strings(raw_compose()) for ref in references(text)]


def compose(env: dict[str, str]) -> dict[str, Any]:
    """The compose file as Compose sees it with this ``.env``."""
    return _interpolated(raw_compose(), env)


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's ``environment``, in either of its two forms, as the strings the container gets."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: _env_value(value) for key, value in env.items()}


def _env_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def named_volume_targets(service: dict[str, Any], declared: dict[str, Any]) -> dict[str, str]:
    """Container path -> named volume, for the service's mounts of top-level volumes."""
    mounts: dict[str, str] = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            source, _, rest = volume.partition(":")
            target = rest.split(":")[0]
        else:
            source, target = volume.get("source", ""), volume["target"]
        if source in declared:
            mounts[target] = source
    return mounts


def option(argv: list[str], name: str) -> str | None:
    """The value of ``--name VALUE`` or ``--name=VALUE`` in a command line."""
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


# --- Dockerfile --------------------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def last(self, keyword: str) -> str | None:
        found = self.all(keyword)
        return found[-1] if found else None

    @property
    def env(self) -> dict[str, str]:
        """``ENV`` of this stage, ``$NAME`` references resolved against earlier values (PATH from the base)."""
        values: dict[str, str] = {"PATH": "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"}
        for args in self.all("ENV"):
            for token in shlex.split(args):
                key, _, value = token.partition("=")
                values[key] = interpolate(value, values)
        return values

    @property
    def healthcheck(self) -> tuple[dict[str, str], list[str]]:
        """The HEALTHCHECK's options and its exec-form command."""
        args = self.last("HEALTHCHECK")
        assert args, "the final stage has no HEALTHCHECK"
        options, _, command = args.partition("CMD")
        assert command.strip().startswith("["), "HEALTHCHECK CMD should be in exec (JSON) form"
        parsed = dict(opt.lstrip("-").split("=", 1) for opt in options.split())
        return parsed, json.loads(command)

    @property
    def cmd(self) -> list[str]:
        args = self.last("CMD")
        assert args and args.startswith("["), "CMD should be in exec (JSON) form"
        return json.loads(args)


def dockerfile_stages(path: Path = DOCKERFILE) -> list[Stage]:
    """Instructions per stage, continuation lines joined and comments dropped; global ARGs resolved in FROM."""
    logical: list[str] = []
    pending = ""
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#") or (not line.strip() and not pending):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        logical.append(pending.strip())
        pending = ""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for text in logical:
        keyword, _, args = text.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            words = interpolate(args, global_args).split()
            stages.append(Stage(words[0], words[2] if len(words) > 2 and words[1].upper() == "AS" else None))
        elif not stages and keyword == "ARG":
            key, _, value = args.partition("=")
            global_args[key] = value
        else:
            stages[-1].instructions.append((keyword, args))
    return stages


# --- .dockerignore -----------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Go filepath.Match plus ``**`` (any number of directories), as the Docker builder matches."""
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):  # zero or more directories
            out += "(?:.*/)?"
            i += 3
            continue
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            end = pattern.index("]", i)
            out += "[" + pattern[i + 1 : end].replace("!", "^", 1) + "]"
            i = end
        else:
            out += re.escape(c)
        i += 1
    return re.compile(out)


def dockerignore_rules(path: Path = DOCKERIGNORE) -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        exclude = not line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        rules.append((exclude, _pattern_regex(pattern)))
    return rules


def in_build_context(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether a path (relative to the context root) is sent to the builder: the last matching rule wins,
    and a rule matching a directory applies to everything under it."""
    parts = relative.split("/")
    excluded = False
    for exclude, regex in rules:
        if any(regex.fullmatch("/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            excluded = exclude
    return not excluded
