#!/usr/bin/env bash
# The scale-out benchmark of docs/BENCHMARKS.md: the default flood workload (20 channels x (1 publisher + 10
# subscribers), 200-token responses, 256 tokens in flight per publisher) against
#   1. one node, in-memory engine (the single-node default);
#   2. one node on Redis (the cost of the Redis engine alone);
#   3. three nodes on one Redis: publishers on node 1, subscribers on nodes 2 and 3 (every token crosses Redis).
# Server CPU is summed over the nodes; Redis's commands per published token come from INFO commandstats (which counts
# the commands run inside scripts), read at the start and end of the measurement.
#
#   bash bench/scale-out.sh              # DURATION=20 WARMUP=5 by default
#   DURATION=10 FORMAT=msgpack bash bench/scale-out.sh
#   PATTERN=response bash bench/scale-out.sh   # message-per-response: each token appended to its response
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 MSBUILDDISABLENODEREUSE=1 DOTNET_CLI_USE_MSBUILD_SERVER=0
DURATION="${DURATION:-20}"
WARMUP="${WARMUP:-5}"
FORMAT="${FORMAT:-json}"
PATTERN="${PATTERN:-token}"
WAIT_LOAD="${WAIT_LOAD:-0}"
MAX_LOAD="${MAX_LOAD:-1.5}"
OUT="${OUT:-$ROOT/artifacts/bench}"
mkdir -p "$OUT"
rm -f "$OUT/scale-out-$PATTERN.json"

command -v redis-server >/dev/null || { echo "redis-server is not installed (apt-get install redis-server)" >&2; exit 2; }
for project in src/Tokenwire.Cli bench/Tokenwire.LoadGen bench/Tokenwire.Bench.StartupHook; do
  dotnet build "$project" -c Release -v quiet -nologo -p:UseSharedCompilation=false
done

PORT="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
DIR="$(mktemp -d "${TMPDIR:-/tmp}/tokenwire-bench-redis.XXXXXX")"
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR" --daemonize no >"$DIR/redis.log" 2>&1 &
REDIS_PID=$!
trap 'kill "$REDIS_PID" 2>/dev/null || true; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

# The generator's gen0 budget, as bench/run.sh gives it (the servers keep their defaults: ServerProcess leaves DOTNET_GC*
# out of their environment). BENCHMARKS: "A generator that does not stall".
export DOTNET_GCgen0size="${GENERATOR_GEN0SIZE:-0x4000000}"
LOADGEN=(dotnet "$ROOT/bench/Tokenwire.LoadGen/bin/Release/net10.0/Tokenwire.LoadGen.dll" --root "$ROOT" --target tokenwire
  --mode flood --channels 20 --publishers 1 --subscribers 10 --tokens-per-response 200 --window 256 --format "$FORMAT" --pattern "$PATTERN"
  --warmup "$WARMUP" --duration "$DURATION" --wait-for-load "$WAIT_LOAD" --max-load "$MAX_LOAD" --json "$OUT/scale-out-$PATTERN.json" --check)

"${LOADGEN[@]}" --label "1 node, in-memory"
redis-cli -p "$PORT" flushall >/dev/null
"${LOADGEN[@]}" --label "1 node, Redis" --redis "127.0.0.1:$PORT"
redis-cli -p "$PORT" flushall >/dev/null
"${LOADGEN[@]}" --label "3 nodes, Redis" --redis "127.0.0.1:$PORT" --nodes 3
