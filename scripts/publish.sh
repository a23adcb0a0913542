#!/usr/bin/env bash
# Builds vhost-device-vsock as one self-contained executable for linux-x64 (no .NET needed where it
# runs) into artifacts/ (or the directory given as the first argument):
#   ./scripts/publish.sh              -> artifacts/vhost-device-vsock
#   ./scripts/publish.sh /tmp/out     -> /tmp/out/vhost-device-vsock
# The dispatcher HOCON is embedded; a hocon/vsock.hocon next to the binary overrides it.
# Runtime settings (GC, tiering, ReadyToRun) are in src/Vsock.Launcher/Vsock.Launcher.csproj: the
# figures behind them are in docs/BENCHMARKS.md, "Idle memory and runtime settings".
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$(mkdir -p "${1:-$root/artifacts}" && cd "${1:-$root/artifacts}" && pwd)"
if ! command -v dotnet >/dev/null 2>&1; then
  echo "publish.sh: the .NET 10 SDK is required (dotnet on PATH)" >&2
  exit 1
fi
# DebugType=embedded: stack traces keep file and line without .pdb files beside the binary.
dotnet publish "$root/src/Vsock.Launcher" -c Release -r linux-x64 --self-contained \
  -p:PublishSingleFile=true -p:DebugType=embedded \
  -o "$out" -nologo -clp:ErrorsOnly >&2
echo "$out/vhost-device-vsock"
