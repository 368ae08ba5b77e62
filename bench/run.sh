#!/usr/bin/env bash
# Regenerates the measured section of docs/BENCHMARKS.md: builds Release, then runs the default workloads against
# tokenwire, the SignalR baseline and the raw relay, one server at a time, in ROUNDS interleaved rounds:
#   flood  20 channels x (1 publisher + 10 subscribers), 200-token responses, 256 tokens in flight per publisher
#   paced  the same at 50 tokens/s per channel
#   idle   1000 connections, server memory per connection
# Tokens have the seed's shape (name "token", data, extras.headers with responseId and a timestamp; each response
# framed by start and stop messages, as the seed's publisher sends them), in JSON and in
# msgpack; the bare token (name and data only) runs too, for comparison with earlier tables, and so does a
# message-per-response flood against tokenwire (one message per response, tokens appended; mutable:bench-N), and the
# seed-shaped flood with each server's publishers writing as the other's do by default (tokenwire's frames queued into
# one write, and the relay's with them; SignalR's invocations a write each), so the servers are also compared with the same publishers. Each ratio in the
# summary comes from one round; the summary gives the median over the rounds. Then (when perf works here) a CPU
# profile of tokenwire under a seed-shaped flood, and its allocations by type.
#
#   bash bench/run.sh                         # 3 rounds: ~110 minutes (15 s warm-up; ~65 s per run with the waits for the load to fall)
#   ROUNDS=1 DURATION=10 BARE=0 SAME_PUBLISHERS=0 bash bench/run.sh   # a quick look
#
# Before each server it waits (up to WAIT_LOAD seconds) for the 1-minute load average to fall below MAX_LOAD: the
# machine has 2 cores and other builds may be running. The load at measurement time is in every table.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1
# No shared build servers: on a shared machine another user's `dotnet build-server shutdown` would kill this build.
export MSBUILDDISABLENODEREUSE=1 DOTNET_CLI_USE_MSBUILD_SERVER=0

DURATION="${DURATION:-20}"
WARMUP="${WARMUP:-15}"            # by 15 s every server has tiered up (BENCHMARKS: "Steady state")
ROUNDS="${ROUNDS:-3}"
FORMATS="${FORMATS:-json msgpack}"
BARE="${BARE:-1}"                 # 1: also run the bare token (the earlier tables' shape)
RESPONSE="${RESPONSE:-1}"         # 1: also a message-per-response flood against tokenwire (appends; no baseline has them)
SAME_PUBLISHERS="${SAME_PUBLISHERS:-1}"  # 1: also the seed-shaped flood with the other publisher write pattern on each server
WAIT_LOAD="${WAIT_LOAD:-1200}"
MAX_LOAD="${MAX_LOAD:-1.5}"
OUT="${OUT:-$ROOT/artifacts/bench}"
DOC="$ROOT/docs/BENCHMARKS.md"
mkdir -p "$OUT"
rm -f "$OUT/results.json"

for project in src/Tokenwire.Cli bench/Tokenwire.LoadGen bench/Tokenwire.Bench.SignalRServer bench/Tokenwire.Bench.RelayServer bench/Tokenwire.Bench.StartupHook; do
  dotnet build "$project" -c Release -v quiet -nologo -p:UseSharedCompilation=false
done

LOADGEN_DLL="$ROOT/bench/Tokenwire.LoadGen/bin/Release/net10.0/Tokenwire.LoadGen.dll"
# The generator's gen0 budget: 64 MB, so it collects ~100 times per flood instead of ~3,000-9,000 (3.5-7 s of its
# pauses, during which no server is fed or read, and each server batches what piles up in its own way). Only the
# generator gets it: ServerProcess leaves DOTNET_GC* out of the servers' environment. Only the environment variable
# works; the runtimeconfig knob is not read for it. BENCHMARKS: "A generator that does not stall".
export DOTNET_GCgen0size="${GENERATOR_GEN0SIZE:-0x4000000}"
LOADGEN=(dotnet "$LOADGEN_DLL" --root "$ROOT"
  --warmup "$WARMUP" --duration "$DURATION" --wait-for-load "$WAIT_LOAD" --max-load "$MAX_LOAD" --json "$OUT/results.json")
FLOOD=(--target all --mode flood --channels 20 --publishers 1 --subscribers 10 --tokens-per-response 200 --window 256)
PACED=(--target all --mode paced --rate 50 --channels 20 --publishers 1 --subscribers 10 --tokens-per-response 200)
IDLE=(--target all --mode idle --connections 1000 --channels 20)
SHAPES=("")                       # "" = the seed's shape (the default)
[ "$BARE" = 1 ] && SHAPES+=("--bare")

for round in $(seq 1 "$ROUNDS"); do
  for shape in "${SHAPES[@]}"; do
    for format in $FORMATS; do
      "${LOADGEN[@]}" --round "$round" --format "$format" $shape "${FLOOD[@]}"
      if [ "$SAME_PUBLISHERS" = 1 ] && [ -z "$shape" ]; then
        "${LOADGEN[@]}" --round "$round" --format "$format" "${FLOOD[@]}" --target tokenwire,relay --tokenwire-sends coalesced
        "${LOADGEN[@]}" --round "$round" --format "$format" "${FLOOD[@]}" --target signalr --signalr-sends each
      fi
      "${LOADGEN[@]}" --round "$round" --format "$format" $shape "${PACED[@]}"
    done
  done
  if [ "$RESPONSE" = 1 ]; then
    for format in $FORMATS; do
      "${LOADGEN[@]}" --round "$round" --format "$format" "${FLOOD[@]}" --target tokenwire --pattern response
    done
  fi
  "${LOADGEN[@]}" --round "$round" "${IDLE[@]}"
done

# Where tokenwire's server time goes, on the seed-shaped flood: perf (cpu-clock samples, JIT-compiled code named
# through the runtime's perf map) and the startup hook's allocation sampler, in runs of their own so neither
# profiler's cost touches the figures above.
PROFILE=""
if command -v perf >/dev/null && perf record -o /dev/null -q true 2>/dev/null; then
  rm -rf "$OUT/perf"
  dotnet "$LOADGEN_DLL" --root "$ROOT" --warmup "$WARMUP" --duration "$DURATION" \
    --wait-for-load "$WAIT_LOAD" --max-load "$MAX_LOAD" "${FLOOD[@]}" --target tokenwire --perf "$OUT/perf" >/dev/null || true
  if [ -f "$OUT/perf/tokenwire-flood.data" ]; then
    PROFILE="$(perf report -i "$OUT/perf/tokenwire-flood.data" --no-children --sort dso -g none --percent-limit 2 2>/dev/null | grep -v '^#' | grep -v '^$' | head -20)
--
$(perf report -i "$OUT/perf/tokenwire-flood.data" --no-children --sort sym -g none --percent-limit 0.7 2>/dev/null | grep -v '^#' | grep -v '^$' | head -45)"
  fi
fi
ALLOCATIONS=""
for format in $FORMATS; do
  lines="$(dotnet "$LOADGEN_DLL" --root "$ROOT" --warmup "$WARMUP" --duration "$DURATION" --wait-for-load "$WAIT_LOAD" --max-load "$MAX_LOAD" \
    "${FLOOD[@]}" --target tokenwire --format "$format" --alloc-profile 2>/dev/null | grep -E '^ +alloc ' | head -15 | sed 's/^ *alloc //' || true)"
  [ -n "$lines" ] && ALLOCATIONS+="$format (sampled bytes, type):"$'\n'"$lines"$'\n'
done

# --- docs/BENCHMARKS.md: replace the generated section --------------------------------------------------------
{
  echo "<!-- BEGIN GENERATED by bench/run.sh: do not edit by hand -->"
  echo "## Latest run"
  echo
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with local changes)')"
  echo "- Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr)"
  echo "- .NET: SDK $(dotnet --version), runtime $(dotnet --list-runtimes | awk '/Microsoft.NETCore.App/{v=$2} END{print v}'); all three servers run workstation concurrent GC"
  echo "- Generator and servers share the machine; the load average column is the 1-minute load when that row's measurement began. The generator runs with DOTNET_GCgen0size=$DOTNET_GCgen0size (the servers with their defaults)."
  echo
  echo "Commands (bench/run.sh):"
  echo
  echo '```'
  echo "dotnet build Tokenwire.slnx -c Release   # run.sh builds just the five projects it runs"
  echo "export DOTNET_GCgen0size=$DOTNET_GCgen0size   # the generator's only"
  echo "LOADGEN=\"dotnet bench/Tokenwire.LoadGen/bin/Release/net10.0/Tokenwire.LoadGen.dll --warmup $WARMUP --duration $DURATION --wait-for-load $WAIT_LOAD --max-load $MAX_LOAD --json results.json\""
  echo "for round in \$(seq 1 $ROUNDS); do"
  if [ "$BARE" = 1 ]; then echo '  for shape in "" --bare; do    # "" = the seed'"'"'s shape'; else echo '  for shape in ""; do    # the seed'"'"'s shape'; fi
  echo "    for format in $FORMATS; do"
  echo "      \$LOADGEN --round \$round --format \$format \$shape ${FLOOD[*]}"
  if [ "$SAME_PUBLISHERS" = 1 ]; then
    echo "      if [ -z \"\$shape\" ]; then    # the same publishers on both sides: each server's with the other's write pattern"
    echo "        \$LOADGEN --round \$round --format \$format ${FLOOD[*]} --target tokenwire,relay --tokenwire-sends coalesced"
    echo "        \$LOADGEN --round \$round --format \$format ${FLOOD[*]} --target signalr --signalr-sends each"
    echo "      fi"
  fi
  echo "      \$LOADGEN --round \$round --format \$format \$shape ${PACED[*]}"
  echo "    done"
  echo "  done"
  [ "$RESPONSE" = 1 ] && echo "  for format in $FORMATS; do \$LOADGEN --round \$round --format \$format ${FLOOD[*]} --target tokenwire --pattern response; done"
  echo "  \$LOADGEN --round \$round ${IDLE[*]}"
  echo "done"
  echo "dotnet bench/Tokenwire.LoadGen/bin/Release/net10.0/Tokenwire.LoadGen.dll --summarize results.json"
  echo '```'
  echo
  dotnet "$ROOT/bench/Tokenwire.LoadGen/bin/Release/net10.0/Tokenwire.LoadGen.dll" --summarize "$OUT/results.json"
  if [ -n "$PROFILE" ]; then
    echo
    echo "### Where tokenwire's server CPU goes (perf, seed-shaped flood, json)"
    echo
    echo '```'
    echo "$PROFILE"
    echo '```'
  fi
  if [ -n "$ALLOCATIONS" ]; then
    echo
    echo "### What tokenwire's server allocates (seed-shaped flood; startup hook's GCAllocationTick sampler, one sample per ~100 KB)"
    echo
    echo '```'
    printf '%s' "$ALLOCATIONS"
    echo '```'
  fi
  echo "<!-- END GENERATED -->"
} > "$OUT/generated.md"

if [ -f "$DOC" ] && grep -q '<!-- BEGIN GENERATED' "$DOC"; then
  python3 - "$DOC" "$OUT/generated.md" <<'PY'
import re, sys
doc, gen = sys.argv[1], open(sys.argv[2]).read().rstrip("\n")
text = open(doc).read()
text = re.sub(r"<!-- BEGIN GENERATED.*?<!-- END GENERATED -->", lambda _: gen, text, flags=re.S)
open(doc, "w").write(text)
PY
else
  cat "$OUT/generated.md" >> "$DOC"
fi
echo "updated $DOC (raw results: $OUT/results.json)"
