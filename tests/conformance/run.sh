#!/usr/bin/env bash
# run.sh ABLY_JS_DIR [OUT_DIR] [test files or quoted globs...]
#
# Runs ably-js's own Node test suite against Tokenwire and checks the result against
# tests/conformance/ably-js-known-failures.txt:
#   1. builds the server (dotnet build -c Release; incremental, skip with SKIP_BUILD=1);
#   2. starts `tokenwire serve --sandbox` on a free loopback port with a fresh data folder;
#   3. runs run-ably-js.sh (one mocha process per file, CAP_S cap, JOBS at a time) with
#      ABLY_LOCAL_SANDBOX_URL pointing at that server, writing OUT_DIR/summary.json and a table;
#      redirect-hosts.cjs (preloaded) sends the tests' https requests for echo.ably.io and the
#      connectivity-check hosts to that server's stand-ins (NO_REDIRECTS=1: off);
#   4. compares every failing test with the known-failures list (check-known-failures.js);
#   5. stops the server (SIGTERM, then SIGKILL after 15 s).
# ABLY_JS_DIR is a checkout made by prepare-ably-js.sh. OUT_DIR defaults to
# tests/conformance/out (ignored by git). The second argument is taken as OUT_DIR unless it
# looks like a test file (ends in .js or contains *).
#
# Exit status: 0 when every failing test is on the list and every listed test that ran failed;
# 1 when a test failed that is not listed, a listed test passed, a listed test no longer exists,
# or a file crashed or timed out without being listed; 2 when the run could not take place.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
die() { echo "conformance: error: $*" >&2; exit 2; }
say() { echo "conformance: $*"; }

[ $# -ge 1 ] || die "usage: $0 ABLY_JS_DIR [OUT_DIR] [test files or quoted globs...]"
ABLY_JS_DIR=$(cd "$1" 2>/dev/null && pwd) || die "no such directory: $1"; shift
OUT_DIR=$ROOT/tests/conformance/out
if [ $# -gt 0 ] && [[ $1 != *.js && $1 != *'*'* ]]; then OUT_DIR=$1; shift; fi
mkdir -p "$OUT_DIR" && OUT_DIR=$(cd "$OUT_DIR" && pwd) || die "cannot create $OUT_DIR"
KNOWN=${KNOWN_FAILURES:-$HERE/ably-js-known-failures.txt}
[ -f "$KNOWN" ] || die "no known-failures list at $KNOWN"

# The runner: the shared harness's run-ably-js.sh when it sits beside the repo
# ($(dirname repo)/shared/conformance), else the copy kept here.
RUNNER=$HERE/run-ably-js.sh
[ -z "${USE_SHARED_RUNNER:-}" ] || [ ! -x "$(dirname "$ROOT")/shared/conformance/run-ably-js.sh" ] ||
  RUNNER=$(dirname "$ROOT")/shared/conformance/run-ably-js.sh

for c in dotnet node timeout; do command -v "$c" >/dev/null || die "'$c' is not on PATH"; done
# realtime/auth.test.js alone takes about 14 minutes offline (each echo.ably.io test waits out its 60 s timeout),
# so the default cap is generous; four files at a time keep the whole run near that one file's time.
export CAP_S=${CAP_S:-1200} JOBS=${JOBS:-4}

DLL=$ROOT/src/Tokenwire.Cli/bin/Release/net10.0/tokenwire.dll
if [ -z "${SKIP_BUILD:-}" ] || [ ! -f "$DLL" ]; then
  say "building the server (Release)"
  (cd "$ROOT" && DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 dotnet build src/Tokenwire.Cli -c Release --nologo -v quiet) \
    >"$OUT_DIR/build.log" 2>&1 || { tail -n 30 "$OUT_DIR/build.log" >&2; die "build failed (see $OUT_DIR/build.log)"; }
fi
[ -f "$DLL" ] || die "no server at $DLL after the build"

# A free loopback port (the kernel picks it; a tiny race with other processes is possible, so
# the start is retried on another port if the server cannot bind).
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

DATA=$(mktemp -d "${TMPDIR:-/tmp}/tokenwire-conformance.XXXXXX")
SERVER_PID=
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$SERVER_PID" 2>/dev/null && { say "server did not stop in 15 s; killing it"; kill -KILL "$SERVER_PID" 2>/dev/null || true; }
  fi
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}
cleanup() { stop_server; rm -rf "$DATA"; }
trap cleanup EXIT
trap 'echo "conformance: interrupted" >&2; exit 130' INT TERM

URL=
for attempt in 1 2 3; do
  PORT=$(free_port)
  : >"$OUT_DIR/server.log"
  dotnet "$DLL" serve --sandbox --host 127.0.0.1 --port "$PORT" --data "$DATA" \
    ${TOKENWIRE_ARGS:-} >>"$OUT_DIR/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 600); do  # up to 60 s
    if grep -q 'Tokenwire listening on' "$OUT_DIR/server.log"; then URL=http://127.0.0.1:$PORT; break; fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$URL" ] && break
  stop_server
  say "server start attempt $attempt failed:"; tail -n 5 "$OUT_DIR/server.log" >&2
done
[ -n "$URL" ] || die "the server did not start (see $OUT_DIR/server.log)"
say "server pid $SERVER_PID at $URL (log: $OUT_DIR/server.log)"

# Offline, the tests' requests for Ably's echo server and the connectivity-check hosts go to the sandbox's stand-ins
# (/echo on the server under test, and its /time), through a preload module; ably-js and its tests are unchanged.
# An unroutable address hangs instead of being refused, as on a routed network. NO_REDIRECTS=1 turns this off.
if [ -z "${NO_REDIRECTS:-}" ]; then
  export EXTRA_REQUIRE="${EXTRA_REQUIRE:+$EXTRA_REQUIRE }$HERE/redirect-hosts.cjs"
  # ws-up.ably-realtime.com is ably-js's WebSocket connectivity check (wss://): answered by the server's own WebSocket
  # endpoint. Without it ably-js concludes WebSockets are blocked and falls back to comet on the primary host.
  export HOST_REDIRECTS="echo.ably.io=$URL/echo internet-up.ably-realtime.com=$URL/echo ws-up.ably-realtime.com=$URL sandbox.realtime.ably-nonprod.net=$URL"
  export BLACKHOLE_HOSTS=10.255.255.1
fi

run_rc=0
"$RUNNER" "$ABLY_JS_DIR" "$URL" "$OUT_DIR" "$@" || run_rc=$?
stop_server
[ "$run_rc" -eq 0 ] || die "run-ably-js.sh exited with $run_rc"

node "$HERE/check-known-failures.js" "$OUT_DIR/summary.json" "$KNOWN" "$OUT_DIR/known-failures-check.json"
