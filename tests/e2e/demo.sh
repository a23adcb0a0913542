#!/usr/bin/env bash
# A tour of the daemon for newcomers: builds it, starts it with one VM, boots a real Linux guest under
# QEMU, and shows traffic both ways:
#   1. host -> guest: a host client connects to the daemon's unix socket, writes "CONNECT 1234",
#      gets "OK 1234", sends a line and reads the guest's echo;
#   2. guest -> host: the guest connects to CID 2 port 5000, which the daemon forwards to the host
#      socket <uds-path>_5000, where socat listens and prints the line.
# Everything runs in a temp directory and is stopped by PID at the end.
#
# Usage: tests/e2e/demo.sh        (VSOCK_DAEMON=<path> runs that daemon instead of building ours)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

if ! command -v socat >/dev/null; then
    if [ "$(id -u)" -eq 0 ]; then
        step "installing socat"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends socat
    else
        die "socat is missing: sudo apt-get update && sudo apt-get install -y socat"
    fi
fi

step "building the guest image (cached after the first run)"
IMAGE=$("$HERE/guest/build-guest.sh")   # prints VMLINUX=..., INITRAMFS=..., KERNEL=...
VMLINUX=$(sed -n 's/^VMLINUX=//p' <<<"$IMAGE")
INITRAMFS=$(sed -n 's/^INITRAMFS=//p' <<<"$IMAGE")
KERNEL=$(sed -n 's/^KERNEL=//p' <<<"$IMAGE")
echo "kernel $KERNEL: $VMLINUX"

if [ -n "${VSOCK_DAEMON:-}" ]; then
    DAEMON=("$VSOCK_DAEMON")
    [[ "$VSOCK_DAEMON" == *.dll ]] && DAEMON=(dotnet "$VSOCK_DAEMON")
else
    step "building the daemon: dotnet build src/Vsock.Launcher"
    dotnet build "$REPO/src/Vsock.Launcher" -c Debug -nologo -v q
    DAEMON=(dotnet "$REPO/src/Vsock.Launcher/bin/Debug/net10.0/vhost-device-vsock.dll")
fi

WORK=$(mktemp -d /tmp/vsock-demo.XXXXXX)
SOCKET=$WORK/vhost3.socket   # vhost-user: QEMU <-> daemon
UDS=$WORK/vm3.vsock          # host applications <-> daemon
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    sleep 0.5
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

step "starting the daemon"
echo "\$ vhost-device-vsock --guest-cid 3 --socket $SOCKET --uds-path $UDS"
"${DAEMON[@]}" --guest-cid 3 --socket "$SOCKET" --uds-path "$UDS" >"$WORK/daemon.log" 2>&1 &
PIDS+=($!)
DAEMON_PID=$!
for _ in $(seq 100); do [ -S "$SOCKET" ] && break; kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
[ -S "$SOCKET" ] || { cat "$WORK/daemon.log"; die "the daemon did not create $SOCKET"; }

step "host listener for guest connections to port 5000"
echo "\$ socat -u UNIX-LISTEN:${UDS}_5000 OPEN:$WORK/from-guest.txt,creat"
socat -u "UNIX-LISTEN:${UDS}_5000" "OPEN:$WORK/from-guest.txt,creat" &
PIDS+=($!)

step "booting the guest (QEMU TCG, vhost-user-vsock-pci)"
# The guest's /init reads its scenario from the kernel command line (see tests/e2e/guest/init.sh).
RUN="cid;bg:listen-echo,1234,1;wait-ready,1234;message,2,5000,hello,host,this,is,the,guest;wait"
qemu-system-x86_64 -machine q35,accel=tcg,memory-backend=mem0 -cpu qemu64 -smp 1 -m 256M \
    -object memory-backend-memfd,id=mem0,size=256M,share=on -nodefaults -display none -serial stdio -no-reboot \
    -kernel "$VMLINUX" -initrd "$INITRAMFS" \
    -append "console=ttyS0 panic=-1 quiet loglevel=3 mitigations=off i8042.noaux i8042.nokbd i8042.nopnp VT_RUN=$RUN" \
    -chardev socket,id=char0,path="$SOCKET" -device vhost-user-vsock-pci,chardev=char0 \
    </dev/null >"$WORK/console.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 600); do grep -q 'VSOCKTEST READY 1234' "$WORK/console.log" && break; sleep 0.1; done
grep -q 'VSOCKTEST READY 1234' "$WORK/console.log" || { cat "$WORK/console.log" "$WORK/daemon.log"; die "the guest did not start listening"; }
grep 'VSOCKTEST CID' "$WORK/console.log" | sed 's/^/guest console: /'

step "1. host -> guest: CONNECT 1234 through $UDS"
coproc HOST { socat -t 5 - "UNIX-CONNECT:$UDS"; }
PIDS+=("$HOST_PID")
echo "CONNECT 1234" >&"${HOST[1]}"
read -r -t 20 ok <&"${HOST[0]}" || die "no answer to CONNECT"
echo "host sent 'CONNECT 1234', daemon answered '$ok'"
echo "hello guest, this is the host" >&"${HOST[1]}"
read -r -t 20 echoed <&"${HOST[0]}" || die "no echo from the guest"
echo "host sent 'hello guest, this is the host', guest echoed '$echoed'"
exec {HOST[1]}>&-

step "2. guest -> host: the guest connected to CID 2 port 5000"
for _ in $(seq 200); do grep -q 'VSOCKTEST DONE' "$WORK/console.log" && break; sleep 0.1; done
grep 'VSOCKTEST RESULT message' "$WORK/console.log" | sed 's/^/guest console: /' || true
echo "host listener received: '$(cat "$WORK/from-guest.txt" 2>/dev/null)'"

step "guest console"
cat "$WORK/console.log"
step "daemon log"
cat "$WORK/daemon.log"
