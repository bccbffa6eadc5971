"""The README's bridge commands name the client versions ``scripts/check_clients.sh`` runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INSPECTOR = "@modelcontextprotocol/inspector"


def test_every_inspector_command_pins_the_checked_version_and_names_node_22() -> None:
    readme = (REPO / "README.md").read_text()
    pinned = json.loads((REPO / "scripts" / "package.json").read_text())["dependencies"][INSPECTOR]
    commands = re.findall(rf"npx ({re.escape(INSPECTOR)}\S*)", readme)

    # Unpinned, npm under Node 20 quietly installs Inspector 0.15, which refuses `--transport http`.
    assert len(commands) >= 3, commands
    assert set(commands) == {f"{INSPECTOR}@{pinned}"}
    assert pinned.startswith("2.")
    assert re.search(r"Inspector 2\.x needs Node 22", readme)
