#!/usr/bin/env bash
# The idle RSS a daemon built on this stack cannot go below: three programs published exactly as
# scripts/publish.sh publishes the daemon (self-contained single file, partial trimming, the launcher's GC
# settings), each started and left idle, VmRSS read after 5 s, three runs each:
#   hello   - an empty .NET program that prints "ready" and sleeps;
#   akka    - the same with one Akka ActorSystem (ActorSystem.Create) and one idle actor;
#   hosted  - the same through the generic host, Akka.Hosting and Microsoft.Extensions.Hosting.Systemd,
#             as the daemon starts (without its devices, Serilog, the command line and YAML).
#   scripts/idle-floor.sh          (figures in docs/BENCHMARKS.md, "Idle memory and runtime settings")
# Builds in a scratch directory outside the repository (its packages are not the repository's).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
akka_version="$(sed -n 's|.*<AkkaVersion>\(.*\)</AkkaVersion>.*|\1|p' "$root/Directory.Packages.props")"
hosting_version="$(sed -n 's|.*"Microsoft.Extensions.Hosting" Version="\([^"]*\)".*|\1|p' "$root/Directory.Packages.props")"

cat >"$work/Directory.Build.props" <<'PROPS'
<Project>
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <ImplicitUsings>enable</ImplicitUsings>
    <Nullable>enable</Nullable>
    <InvariantGlobalization>true</InvariantGlobalization>
    <ServerGarbageCollection>false</ServerGarbageCollection>
    <ConcurrentGarbageCollection>false</ConcurrentGarbageCollection>
    <TieredPGO>true</TieredPGO>
  </PropertyGroup>
</Project>
PROPS
mkdir "$work/hello" "$work/akka" "$work/hosted"
echo '<Project Sdk="Microsoft.NET.Sdk" />' >"$work/hello/hello.csproj"
cat >"$work/hello/Program.cs" <<'CS'
Console.WriteLine("ready");
Thread.Sleep(Timeout.Infinite);
CS
cat >"$work/akka/floor-akka.csproj" <<PROJ
<Project Sdk="Microsoft.NET.Sdk">
  <ItemGroup><PackageReference Include="Akka" Version="$akka_version" /></ItemGroup>
</Project>
PROJ
cat >"$work/akka/Program.cs" <<'CS'
using Akka.Actor;
using Akka.Configuration;
var system = ActorSystem.Create("floor", ConfigurationFactory.ParseString("akka.loglevel = WARNING"));
system.ActorOf(Props.Create(() => new Idle()), "idle");
Console.WriteLine("ready");
Thread.Sleep(Timeout.Infinite);
sealed class Idle : ReceiveActor { public Idle() => ReceiveAny(_ => { }); }
CS
cat >"$work/hosted/hosted.csproj" <<PROJ
<Project Sdk="Microsoft.NET.Sdk">
  <ItemGroup>
    <PackageReference Include="Akka.Hosting" Version="$akka_version" />
    <PackageReference Include="Microsoft.Extensions.Hosting" Version="$hosting_version" />
    <PackageReference Include="Microsoft.Extensions.Hosting.Systemd" Version="$hosting_version" />
  </ItemGroup>
</Project>
PROJ
cat >"$work/hosted/Program.cs" <<'CS'
using Akka.Actor;
using Akka.Hosting;
using Microsoft.Extensions.Hosting;
var builder = Host.CreateApplicationBuilder(args);
builder.Services.AddSystemd();
builder.Services.AddAkka("floor", b => b.WithActors((system, _) => system.ActorOf(Props.Create(() => new Idle()), "idle")));
using var host = builder.Build();
await host.StartAsync();
Console.WriteLine("ready");
await host.WaitForShutdownAsync();
sealed class Idle : ReceiveActor { public Idle() => ReceiveAny(_ => { }); }
CS

printf '| program | idle RSS, 3 runs |\n|---|---|\n'
for name in hello akka hosted; do
  dotnet publish "$work/$name" -c Release -r linux-x64 --self-contained \
    -p:PublishSingleFile=true -p:IncludeNativeLibrariesForSelfExtract=true \
    -p:PublishTrimmed=true -p:TrimMode=partial -p:SuppressTrimAnalysisWarnings=true \
    -o "$work/$name/out" -nologo -clp:ErrorsOnly >&2
  binary="$(find "$work/$name/out" -maxdepth 1 -type f -perm -u+x | head -n 1)"
  figures=()
  for run in 1 2 3; do
    "$binary" >"$work/out.txt" 2>&1 &
    pid=$!
    for _ in $(seq 1 200); do grep -q ready "$work/out.txt" && break; sleep 0.1; done
    sleep 5
    figures+=("$(awk '/^VmRSS/ { printf "%.1f MB", $2 / 1024 }' "/proc/$pid/status")")
    kill "$pid"
    wait "$pid" 2>/dev/null || true
  done
  printf '| %s | %s |\n' "$name" "$(IFS=,; echo "${figures[*]}" | sed 's/,/, /g')"
done
