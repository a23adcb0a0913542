#!/usr/bin/env bash
# The test-harness library as a user gets it: `dotnet pack src/Vsock.Testing`, then the example project
# (examples/Vsock.Example.Tests) copied into a scratch directory outside this repository, its project
# reference replaced by a PackageReference to the package just made, restored, built and run.
#   scripts/check-package.sh
# Every run packs a version of its own (1.0.0-check.<time>), so NuGet's global cache never serves an older
# build of the package; that version is removed from the cache at the end.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
version="1.0.0-check.$(date +%Y%m%d%H%M%S)"
cache="${NUGET_PACKAGES:-$HOME/.nuget/packages}/vsockactors.testing/$version"
trap 'rm -rf "$work" "$cache"' EXIT

dotnet pack "$root/src/Vsock.Testing" -c Release -nologo -v quiet \
  -p:PackageVersion="$version" -o "$work/packages"

# The consumer: the example's own files, the repository's package versions, no project reference.
mkdir "$work/example"
cp "$root/examples/Vsock.Example.Tests/"*.cs "$work/example/"
sed 's|<ProjectReference Include="[^"]*Vsock.Testing.csproj" />|<PackageReference Include="VsockActors.Testing" />|' \
  "$root/examples/Vsock.Example.Tests/Vsock.Example.Tests.csproj" >"$work/example/Vsock.Example.Tests.csproj"
grep -q '<PackageReference Include="VsockActors.Testing" />' "$work/example/Vsock.Example.Tests.csproj" || {
  echo "check-package: the example no longer references src/Vsock.Testing as this script expects" >&2
  exit 1
}
sed "s|</ItemGroup>|  <PackageVersion Include=\"VsockActors.Testing\" Version=\"$version\" />\n  </ItemGroup>|" \
  "$root/Directory.Packages.props" >"$work/Directory.Packages.props"
cat >"$work/Directory.Build.props" <<'PROPS'
<Project>
  <PropertyGroup>
    <TargetFramework>net10.0</TargetFramework>
    <Nullable>enable</Nullable>
    <ImplicitUsings>enable</ImplicitUsings>
    <ManagePackageVersionsCentrally>true</ManagePackageVersionsCentrally>
  </PropertyGroup>
</Project>
PROPS
# The package comes from the scratch feed; everything else from the sources this machine already uses.
cat >"$work/nuget.config" <<CONFIG
<configuration>
  <packageSources>
    <add key="vsockactors-testing" value="$work/packages" />
  </packageSources>
</configuration>
CONFIG

cd "$work/example"
dotnet test -c Release -nologo -v quiet
echo "check-package: VsockActors.Testing $version packed, restored from a feed and its example test passed"
