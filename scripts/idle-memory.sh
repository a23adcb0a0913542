#!/usr/bin/env bash
# Start-up time and idle memory of the daemon (docs/BENCHMARKS.md, "Idle memory and runtime settings").
#   ./scripts/idle-memory.sh [-n VMS] [-r RUNS] [-w IDLE_SECONDS] [-s] -- COMMAND...
# e.g.
#   ./scripts/idle-memory.sh -n 1 -r 5 -- dotnet src/Vsock.Launcher/bin/Release/net10.0/vhost-device-vsock.dll
#   DOTNET_gcServer=1 ./scripts/idle-memory.sh -n 100 -- artifacts/vhost-device-vsock
# Starts COMMAND --config <a YAML file with VMS unix-backend VMs, sockets in a scratch directory> RUNS times.
# Start-up: from just before the exec until every VM's vhost-user and uds-path socket exists (polled every
# 2 ms), as wall time and as the CPU time (user + system) the daemon used until then; on a shared machine
# the CPU time is the steadier figure. Then the daemon idles IDLE_SECONDS (no VMM connects) and its VmRSS and thread count are read from
# /proc; then SIGTERM. Prints one line per run and the ranges. Environment variables pass through, so
# runtime knobs (DOTNET_gcServer=1, DOTNET_GCgen0size=...) can be tried without rebuilding.
# -s: COMMAND has --metrics-listen; /metrics is scraped once (curl) right after start-up, before the idle wait,
# so the RSS includes a served scrape (the URL is taken from the daemon's log line).
set -euo pipefail
vms=1 runs=5 idle=5 scrape=0
while getopts "n:r:w:s" opt; do
  case $opt in
    n) vms=$OPTARG ;;
    r) runs=$OPTARG ;;
    w) idle=$OPTARG ;;
    s) scrape=1 ;;
    *) echo "usage: $0 [-n VMS] [-r RUNS] [-w IDLE_SECONDS] [-s] -- COMMAND..." >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ "${1:-}" = "--" ] && shift
[ $# -gt 0 ] || { echo "usage: $0 [-n VMS] [-r RUNS] [-w IDLE_SECONDS] -- COMMAND..." >&2; exit 2; }

dir=$(mktemp -d /tmp/idle-XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

{
  echo "vms:"
  for ((i = 0; i < vms; i++)); do
    cid=$((3 + i))
    printf '  - guest_cid: %d\n    socket: %s/h%d\n    uds_path: %s/u%d\n' "$cid" "$dir" "$cid" "$dir" "$cid"
  done
} >"$dir/vms.yaml"

starts=() cpus=() rsss=() threads=()
ticks=$(getconf CLK_TCK)
for ((run = 1; run <= runs; run++)); do
  rm -f "$dir"/h* "$dir"/u*
  t0=$(date +%s%N)
  "$@" --config "$dir/vms.yaml" 2>"$dir/stderr" &
  pid=$!
  for ((i = 0; i < vms; i++)); do
    cid=$((3 + i))
    until [ -S "$dir/h$cid" ] && [ -S "$dir/u$cid" ]; do
      kill -0 "$pid" 2>/dev/null || { echo "the daemon exited:" >&2; cat "$dir/stderr" >&2; exit 1; }
      sleep 0.002
    done
  done
  t1=$(date +%s%N)
  cpu_ms=$(awk -v hz="$ticks" '{ print int(($14 + $15) * 1000 / hz) }' "/proc/$pid/stat")
  if [ "$scrape" = 1 ]; then
    url=$(grep -o 'http://[^ ]*/metrics' "$dir/stderr" | head -1)
    [ -n "$url" ] || { echo "-s: no 'serving metrics' line in the daemon's log (is --metrics-listen given?)" >&2; exit 1; }
    curl -sf -m 10 "$url" >/dev/null || { echo "-s: scraping $url failed" >&2; exit 1; }
  fi
  sleep "$idle"
  rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
  nthreads=$(awk '/^Threads:/ { print $2 }' "/proc/$pid/status")
  kill -TERM "$pid"
  wait "$pid" || true
  pid=
  start_ms=$(((t1 - t0) / 1000000))
  rss_mb=$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')
  echo "run $run: start-up ${start_ms} ms (${cpu_ms} ms CPU), idle RSS ${rss_mb} MB, ${nthreads} threads"
  starts+=("$start_ms") cpus+=("$cpu_ms") rsss+=("$rss_mb") threads+=("$nthreads")
done

range() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print (lo == hi ? lo : lo "–" hi) }'; }
echo "summary: ${vms} VM(s), ${runs} runs: start-up $(range "${starts[@]}") ms ($(range "${cpus[@]}") ms CPU), idle RSS $(range "${rsss[@]}") MB, threads $(range "${threads[@]}")"
