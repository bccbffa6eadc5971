"""The bridge is a REST client: it never imports the service, so `pip install agent-tracker[mcp]`
runs it without the service's dependencies."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import mcp_tools

PACKAGE = Path(mcp_tools.__file__).parent


def test_no_module_of_the_bridge_imports_the_service():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.relative_to(PACKAGE)}: {n}" for n in names if n.split(".")[0] == "tracker_service"]
    assert offenders == []


def test_loading_every_bridge_module_loads_no_service_module():
    modules = sorted(
        "mcp_tools." + ".".join(p.relative_to(PACKAGE).with_suffix("").parts)
        for p in PACKAGE.rglob("*.py")
        if p.name != "__init__.py"
    )
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('tracker_service', 'litestar', 'sqlalchemy')]\n"
        "print(','.join(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"the bridge loaded: {out}"
