#!/usr/bin/env bash
# run-two-nodes.sh ABLY_JS_DIR [OUT_DIR] [test files or quoted globs...]
#
# Runs ably-js's own tests (default: the presence files) against a sandbox spread over two Tokenwire nodes that share
# one Redis: a redis-server and two `serve --sandbox --redis` processes on free loopback ports, and
# two-node-balancer.mjs in front (WebSocket connections and REST requests alternate between the nodes; sandbox apps are
# created on both). Prints run-ably-js.sh's table and "N passed, N failed"; the results are not checked against the
# single-node known-failures list (docs/COMPATIBILITY.md has the numbers of the last run).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
die() { echo "two-nodes: error: $*" >&2; exit 2; }
say() { echo "two-nodes: $*"; }

[ $# -ge 1 ] || die "usage: $0 ABLY_JS_DIR [OUT_DIR] [test files...]"
ABLY_JS_DIR=$(cd "$1" 2>/dev/null && pwd) || die "no such directory: $1"; shift
OUT_DIR=$ROOT/tests/conformance/out-two-nodes
if [ $# -gt 0 ] && [[ $1 != *.js && $1 != *'*'* ]]; then OUT_DIR=$1; shift; fi
mkdir -p "$OUT_DIR" && OUT_DIR=$(cd "$OUT_DIR" && pwd)
[ $# -gt 0 ] || set -- 'test/realtime/presence.test.js' 'test/rest/presence.test.js'
for c in dotnet node redis-server redis-cli; do command -v "$c" >/dev/null || die "'$c' is not on PATH"; done
export CAP_S=${CAP_S:-900} JOBS=${JOBS:-1}

DLL=$ROOT/src/Tokenwire.Cli/bin/Release/net10.0/tokenwire.dll
if [ -z "${SKIP_BUILD:-}" ] || [ ! -f "$DLL" ]; then
  (cd "$ROOT" && dotnet build src/Tokenwire.Cli -c Release --nologo -v quiet) >"$OUT_DIR/build.log" 2>&1 || die "build failed (see $OUT_DIR/build.log)"
fi

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tokenwire-two-nodes.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" >"$OUT_DIR/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

NODE_PORTS=()
for n in a b; do
  port=$(free_port)
  mkdir -p "$TMP/$n"
  dotnet "$DLL" serve --sandbox --no-demo --host 127.0.0.1 --port "$port" --data "$TMP/$n" --redis "127.0.0.1:$REDIS_PORT" >"$OUT_DIR/node-$n.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 600); do grep -q 'Tokenwire listening on' "$OUT_DIR/node-$n.log" && break; sleep 0.1; done
  grep -q 'Tokenwire listening on' "$OUT_DIR/node-$n.log" || die "node $n did not start (see $OUT_DIR/node-$n.log)"
  NODE_PORTS+=("$port")
done

LB_PORT=$(free_port)
node "$HERE/two-node-balancer.mjs" "$LB_PORT" "${NODE_PORTS[0]}" "${NODE_PORTS[1]}" >"$OUT_DIR/balancer.log" 2>&1 &
LB_PID=$!
PIDS+=($LB_PID)
sleep 0.5
say "redis 127.0.0.1:$REDIS_PORT, nodes ${NODE_PORTS[*]}, balancer http://127.0.0.1:$LB_PORT"

"$HERE/run-ably-js.sh" "$ABLY_JS_DIR" "http://127.0.0.1:$LB_PORT" "$OUT_DIR" "$@"
kill -TERM "$LB_PID" 2>/dev/null || true
sleep 0.5
tail -n 1 "$OUT_DIR/balancer.log"
