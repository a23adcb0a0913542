#!/usr/bin/env bash
# Installs what building and testing VsockActors needs on a Debian 12 machine, when it is missing:
# the .NET 10 SDK must already be there (it is not in Debian's archive); QEMU, busybox-static, gcc,
# cpio, xz and AFL++ (scripts/fuzz.sh) come from apt. Run as root to install; otherwise it says what to install.
#   --build   only what building needs (gcc compiles libvsockguard.so, the SIGBUS guard): scripts/run.sh
set -euo pipefail
build_only=false
[ "${1:-}" = "--build" ] && build_only=true

if ! command -v dotnet >/dev/null 2>&1 || ! dotnet --list-sdks 2>/dev/null | grep -q '^10\.'; then
  echo "setup: the .NET 10 SDK is required (dotnet on PATH); see https://learn.microsoft.com/dotnet/core/install/linux-debian" >&2
  exit 1
fi

need=()
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
if [ "$build_only" = false ]; then
  command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
  dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
  command -v cpio >/dev/null 2>&1 || need+=(cpio)
  command -v xz >/dev/null 2>&1 || need+=(xz-utils)
  command -v zstd >/dev/null 2>&1 || need+=(zstd)
  command -v afl-fuzz >/dev/null 2>&1 || need+=(afl++)
fi

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "setup: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "setup: missing packages; run as root: apt-get install ${need[*]}" >&2
    exit 1
  fi
fi
