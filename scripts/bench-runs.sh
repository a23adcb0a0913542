#!/usr/bin/env bash
# Runs the full benchmark N times back to back (default 3), saves each report as
# artifacts/bench/<timestamp>-<i>.md and prints a summary: every throughput ratio, round-trip p50 (next
# to its reference), set-up rate, idle RSS per connection and GC figure, with its min–max over the runs
# and each run's value (also saved as artifacts/bench/<timestamp>-summary.md).
#
#   scripts/bench-runs.sh [N] [benchmark arguments...]     e.g. scripts/bench-runs.sh 1 --quick
#
# The builds run once, before the first run. A failed run stops the series; the reports so far stay.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
runs=3
if [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]]; then
  runs="$1"
  shift
fi
if [ "$runs" -lt 1 ]; then
  echo "usage: scripts/bench-runs.sh [N >= 1] [benchmark arguments...]" >&2
  exit 2
fi
out="$root/artifacts/bench"
mkdir -p "$out"
stamp="$(date +%Y%m%d-%H%M%S)"
reports=()
for i in $(seq 1 "$runs"); do
  report="$out/$stamp-$i.md"
  echo "bench-runs: run $i of $runs -> $report" >&2
  if ! "$root/scripts/bench.sh" "$@" >"$report"; then
    [ -s "$report" ] || rm -f "$report"
    echo "bench-runs: run $i failed (progress and error above); reports so far: ${reports[*]:-none}" >&2
    exit 1
  fi
  reports+=("$report")
  export VSOCK_BENCH_NO_BUILD=1
done
dotnet "$root/bench/Vsock.Bench/bin/Release/net10.0/Vsock.Bench.dll" --summarize "${reports[@]}" | tee "$out/$stamp-summary.md"
