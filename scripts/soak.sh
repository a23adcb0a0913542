#!/usr/bin/env bash
# Long reliability runs against the daemon as its own process (docs/RELIABILITY.md), outside ./scripts/test.sh:
#   ./scripts/soak.sh streams  [--streams 1000] [--mib 1] [--rounds 3]  # concurrent streams, N MiB both ways, every byte checked
#   ./scripts/soak.sh vmm-kill [--cycles 1000] [--every 100]   # a VMM SIGKILLed mid-transfer, a new one attaches; N times
# Each prints a Markdown report on stdout (the daemon's fds, RSS and managed heap along the way) and exits non-zero if
# a byte was wrong or a cycle failed. Builds the daemon and the benchmark driver (Release) first, which runs the soaks
# (`Vsock.Bench --soak`); VSOCK_BENCH_NO_BUILD=1 skips the builds.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ "${VSOCK_BENCH_NO_BUILD:-0}" != 1 ]; then
  dotnet build "$root/src/Vsock.Launcher" -c Release -nologo -clp:ErrorsOnly >&2
  dotnet build "$root/bench/Vsock.Bench" -c Release -nologo -clp:ErrorsOnly >&2
fi
exec dotnet "$root/bench/Vsock.Bench/bin/Release/net10.0/Vsock.Bench.dll" --soak "$@" \
  --daemon "$root/src/Vsock.Launcher/bin/Release/net10.0/vhost-device-vsock.dll"
