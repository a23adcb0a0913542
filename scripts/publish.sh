#!/usr/bin/env bash
# Builds vhost-device-vsock as one self-contained executable for linux-x64 (no .NET needed where it
# runs) into artifacts/ (or the directory given as the first argument):
#   ./scripts/publish.sh              -> artifacts/vhost-device-vsock
#   ./scripts/publish.sh /tmp/out     -> /tmp/out/vhost-device-vsock
#   ./scripts/publish.sh artifacts -p:PublishReadyToRun=true   (further arguments go to dotnet publish)
# The dispatcher HOCON is embedded; a hocon/vsock.hocon next to the binary overrides it.
# Runtime settings (GC, tiering) are in src/Vsock.Launcher/Vsock.Launcher.csproj; the figures behind
# them and behind the publish options below are in docs/BENCHMARKS.md, "Idle memory and runtime settings".
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$(mkdir -p "${1:-$root/artifacts}" && cd "${1:-$root/artifacts}" && pwd)"
if ! command -v dotnet >/dev/null 2>&1; then
  echo "publish.sh: the .NET 10 SDK is required (dotnet on PATH)" >&2
  exit 1
fi
# DebugType=embedded: stack traces keep file and line without .pdb files beside the binary.
# PublishTrimmed with TrimMode=partial: only assemblies that declare themselves trimmable (the .NET
# libraries, Microsoft.Extensions.*, Serilog, System.CommandLine) lose what nothing references; Akka,
# Akka.Hosting, YamlDotNet and ours are kept whole, since Akka finds types by name in HOCON. Idle RSS
# 74 -> 55 MB with one VM (docs/BENCHMARKS.md). The trimmer warns about reflection it cannot follow in
# the assemblies it keeps whole; SuppressTrimAnalysisWarnings silences that (warnings are errors here),
# and tests/Vsock.Launcher.Tests/Publish runs the trimmed binary end to end.
# No ReadyToRun: it makes start-up several times cheaper but costs 14 MB of idle RSS (BENCHMARKS);
# add -p:PublishReadyToRun=true where start-up time matters more than memory.
dotnet publish "$root/src/Vsock.Launcher" -c Release -r linux-x64 --self-contained \
  -p:PublishSingleFile=true -p:IncludeNativeLibrariesForSelfExtract=true -p:DebugType=embedded \
  -p:PublishTrimmed=true -p:TrimMode=partial -p:SuppressTrimAnalysisWarnings=true \
  -o "$out" -nologo -clp:ErrorsOnly "${@:2}" >&2
echo "$out/vhost-device-vsock"
