#!/usr/bin/env bash
# Message-per-token against message-per-response on the same workload, tokenwire only: the default flood
# (20 channels x (1 publisher + 10 subscribers), 200-token responses, 256 tokens in flight per publisher), seed-shaped
# tokens, in JSON and msgpack. The four runs are interleaved in each of ROUNDS rounds, so each ratio compares runs
# minutes apart; the summary (Tokenwire.LoadGen --summarize) gives every run, and the docs quote the medians.
#
#   bash bench/patterns.sh                    # 3 rounds of 4 runs, ~6 minutes
#   ROUNDS=1 DURATION=5 bash bench/patterns.sh   # a quick look
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 MSBUILDDISABLENODEREUSE=1 DOTNET_CLI_USE_MSBUILD_SERVER=0

DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-3}"
ROUNDS="${ROUNDS:-3}"
OUT="${OUT:-$ROOT/artifacts/bench-patterns}"
mkdir -p "$OUT"
rm -f "$OUT/results.json" "$OUT/results.md"

for project in src/Tokenwire.Cli bench/Tokenwire.LoadGen bench/Tokenwire.Bench.StartupHook; do
  dotnet build "$project" -c Release -v quiet -nologo -p:UseSharedCompilation=false
done

LOADGEN=(dotnet "$ROOT/bench/Tokenwire.LoadGen/bin/Release/net10.0/Tokenwire.LoadGen.dll" --root "$ROOT"
  --warmup "$WARMUP" --duration "$DURATION" --json "$OUT/results.json" --markdown "$OUT/results.md" --check
  --target tokenwire --mode flood --channels 20 --publishers 1 --subscribers 10 --tokens-per-response 200 --window 256)

for round in $(seq 1 "$ROUNDS"); do
  for format in json msgpack; do
    for pattern in token response; do
      "${LOADGEN[@]}" --round "$round" --format "$format" --pattern "$pattern"
    done
  done
done

echo "results: $OUT/results.md"
