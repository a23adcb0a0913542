#!/usr/bin/env bash
# Benchmarks the daemon at full speed: builds the daemon and the benchmark (Release), starts the real
# daemon as its own process and drives it with the synthetic guest over the real sockets. Prints a
# Markdown report on stdout (progress on stderr); takes a few minutes. Arguments go to the benchmark
# (`--quick` for a short smoke run, `--help`-style usage on a bad argument); see docs/BENCHMARKS.md.
# VSOCK_BENCH_NO_BUILD=1 skips the two builds (scripts/bench-runs.sh builds once for all its runs).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if ! command -v dotnet >/dev/null 2>&1; then
  echo "bench.sh: the .NET 10 SDK is required (dotnet on PATH)" >&2
  exit 1
fi
if [ "${VSOCK_BENCH_NO_BUILD:-0}" != 1 ]; then
  dotnet build "$root/src/Vsock.Launcher" -c Release -nologo -clp:ErrorsOnly >&2
  dotnet build "$root/bench/Vsock.Bench" -c Release -nologo -clp:ErrorsOnly >&2
fi
exec dotnet "$root/bench/Vsock.Bench/bin/Release/net10.0/Vsock.Bench.dll" \
  --daemon "$root/src/Vsock.Launcher/bin/Release/net10.0/vhost-device-vsock.dll" "$@"
