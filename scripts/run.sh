#!/usr/bin/env bash
# Runs the device, with all set-up: builds (Release) and starts `vhost-device-vsock` with your arguments,
# exactly those of rust-vmm's vhost-device-vsock, e.g.
#   ./scripts/run.sh --vm guest-cid=4,uds-path=/tmp/vm4.vsock,socket=/tmp/vhost4.socket
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if ! command -v dotnet >/dev/null 2>&1; then
  echo "run.sh: the .NET 10 SDK is required (dotnet on PATH)" >&2
  exit 1
fi
# The build compiles libvsockguard.so with gcc: install it first if it is missing.
"$root/scripts/setup.sh" --build >&2
dotnet build "$root/src/Vsock.Launcher" -c Release -nologo -clp:ErrorsOnly >&2
exec dotnet "$root/src/Vsock.Launcher/bin/Release/net10.0/vhost-device-vsock.dll" "$@"
