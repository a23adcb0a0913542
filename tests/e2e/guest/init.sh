#!/bin/sh
# /init of the e2e test guest (busybox sh, PID 1).
#
# The scenario arrives as kernel command-line words NAME=value, which the kernel hands to /init as
# environment variables. Values cannot contain spaces, hence this encoding:
#   VT_RUN=step;step;...   steps run in order; the words of a step are separated by ','
#       listen-echo,1234,4        run /bin/vsock-test with those words (foreground)
#       bg:listen-echo,1234,4     same, in the background
#       wait-ready,1234           wait until a vsock-test listener on port 1234 is listening
#       wait                      wait for every background step
#       sleep,0.5                 busybox sleep
#   VT_CONSOLE=1   after VT_RUN, read further steps from the serial console, one per line:
#                  "@ID step" (words separated by ',' or ' '); each answered by "VSOCKTEST STEP ID rc=N".
#                  A line "poweroff" ends the session.
#   VT_TIMEOUT=N   seconds each vsock-test process may run (default 120, 0 = unlimited).
#   VT_SHELL=1     drop to an interactive shell on the console instead (debugging by hand; with
#                  VT_HOSTRUN=1 the host root is ready under /mnt/host first).
#
# Host-run guests run the host's own programs (its .NET) on the guest's kernel, so AF_VSOCK code is
# exercised for real without ever touching the host's vsock:
#   VT_HOSTRUN=1   load the 9p modules, mount the host's root read-only (virtio-9p tag "hostroot", see
#                  QemuGuestOptions.HostRoot) on /mnt/host and prepare it for chroot: the guest's own proc,
#                  sys, devtmpfs, devpts and tmpfs on dev/shm, tmp, run, var/tmp, root. The tmpfs hides the
#                  host's /tmp, which stays readable at /run/host-tmp. Marker: VSOCKTEST HOSTROOT uptime=S.
#                  Then a step "host,PROG,ARG..." (also as bg:host,...) runs PROG inside the chroot, and
#   VT_HOSTCMD=PROG,ARG,...   runs after VT_RUN (words separated by ',');
#   VT_HOSTCMD_FILE=/path     a script on the host (path as the host sees it), run by the host's /bin/sh
#                             after VT_RUN and VT_HOSTCMD; it is copied before the tmpfs hides /tmp.
#   VT_HOSTCWD=/dir           working directory of host commands (default /).
#   Host commands get a clean environment (PATH, HOME=/tmp, DOTNET_CLI_HOME=/tmp, DOTNET_NOLOGO=1,
#   DOTNET_CLI_TELEMETRY_OPTOUT=1), run under VT_TIMEOUT, and each ends with
#   VSOCKTEST HOSTRUN rc=N secs=S (a non-zero rc also counts as a failure).
# Markers on the console: VSOCKTEST BOOTED, the program's READY/RESULT/FAIL lines,
# VSOCKTEST DONE failures=N; then the guest powers off (QEMU runs with -no-reboot).

export PATH=/bin
mount -t devtmpfs devtmpfs /dev
# The initramfs has no /dev/console node, so the kernel started us without stdio; take the console now.
exec 0</dev/console 1>/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /tmp

failures=0
bg_pids=""

note_fail() {
    failures=$((failures + 1))
    echo "VSOCKTEST FAIL $*"
}

while read -r module; do
    [ -n "$module" ] || continue
    insmod "/lib/modules/$module.ko" || note_fail "insmod $module"
done </lib/modules/load-order

echo "VSOCKTEST BOOTED uptime=$(cut -d' ' -f1 /proc/uptime)"

HOST=/mnt/host
host_ready=0

# The host root, made fit to chroot into: nothing of the host's /dev, /proc or /tmp is used, and
# everything a program writes goes to the guest's tmpfs (the 9p mount is read-only).
mount_host_root() {
    while read -r module; do
        [ -n "$module" ] || continue
        insmod "/lib/modules/$module.ko" || { note_fail "insmod $module"; return 1; }
    done </lib/modules/load-order-hostrun
    mkdir -p "$HOST"
    # cache=loose: 4-5x faster .NET start-up than the default (measured); the host files do not change meanwhile.
    mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=524288,cache=loose hostroot "$HOST" \
        || { note_fail "mount 9p hostroot (QEMU needs -virtfs ...,mount_tag=hostroot)"; return 1; }
    mount -t proc proc "$HOST/proc" &&
        mount -t sysfs sysfs "$HOST/sys" &&
        mount -t devtmpfs devtmpfs "$HOST/dev" &&
        mkdir -p "$HOST/dev/pts" "$HOST/dev/shm" &&
        mount -t devpts devpts "$HOST/dev/pts" &&
        mount -t tmpfs tmpfs "$HOST/dev/shm" &&
        mount -t tmpfs tmpfs "$HOST/run" &&
        mkdir -p "$HOST/run/host-tmp" "$HOST/run/host-var-tmp" "$HOST/run/host-root" "$HOST/run/vsocktest" &&
        mount -o bind "$HOST/tmp" "$HOST/run/host-tmp" &&
        mount -o bind "$HOST/var/tmp" "$HOST/run/host-var-tmp" &&
        mount -o bind "$HOST/root" "$HOST/run/host-root" || { note_fail "mounts inside the host root"; return 1; }
    if [ -n "$VT_HOSTCMD_FILE" ]; then
        cp "$HOST$VT_HOSTCMD_FILE" "$HOST/run/vsocktest/cmd.sh" \
            || { note_fail "VT_HOSTCMD_FILE $VT_HOSTCMD_FILE not readable"; return 1; }
    fi
    mount -t tmpfs tmpfs "$HOST/tmp" &&
        mount -t tmpfs tmpfs "$HOST/var/tmp" &&
        mount -t tmpfs tmpfs "$HOST/root" || { note_fail "tmpfs mounts inside the host root"; return 1; }
    host_ready=1
    echo "VSOCKTEST HOSTROOT uptime=$(cut -d' ' -f1 /proc/uptime)"
}

# run_host PROG ARG... : runs PROG inside the host root; prints VSOCKTEST HOSTRUN and returns its status.
run_host() {
    if [ "$host_ready" != "1" ]; then
        note_fail "host command '$*' without a host root (VT_HOSTRUN=1)"
        return 1
    fi
    start=$(cut -d' ' -f1 /proc/uptime)
    limit=""
    [ "${VT_TIMEOUT:-120}" != "0" ] && limit="timeout -k 5 ${VT_TIMEOUT:-120}"
    # shellcheck disable=SC2086 # $limit is empty or three words
    $limit env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/tmp DOTNET_CLI_HOME=/tmp DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 TERM=dumb \
        /bin/chroot "$HOST" /bin/sh -c 'cd "$1" || exit 125; shift; exec "$@"' vt-hostrun "${VT_HOSTCWD:-/}" "$@"
    rc=$?
    secs=$(awk -v a="$start" '{ printf "%.2f", $1 - a }' /proc/uptime)
    echo "VSOCKTEST HOSTRUN rc=$rc secs=$secs"
    [ "$rc" -eq 0 ] || note_fail "host '$*' rc=$rc"
    return $rc
}

if [ "$VT_HOSTRUN" = "1" ]; then
    mount_host_root
fi

if [ "$VT_SHELL" = "1" ]; then
    setsid cttyhack sh
    poweroff -f
fi

wait_ready() {
    # 20 ms polls; vsock-test creates the file right after listen().
    tries=$(( ${VT_TIMEOUT:-120} * 50 ))
    while [ ! -e "/tmp/vsocktest-ready-$1" ]; do
        tries=$((tries - 1))
        if [ "$tries" -le 0 ]; then
            note_fail "wait-ready $1 timed out"
            return 1
        fi
        sleep 0.02
    done
}

wait_background() {
    rc_all=0
    for pid in $bg_pids; do
        wait "$pid"
        rc=$?
        if [ "$rc" -ne 0 ]; then
            note_fail "background pid $pid rc=$rc"
            rc_all=1
        fi
    done
    bg_pids=""
    return $rc_all
}

# run_step WORD... : runs one step; returns its status.
run_step() {
    case "$1" in
        "") return 0 ;;
        bg:host)
            shift
            run_host "$@" &
            bg_pids="$bg_pids $!"
            return 0 ;;
        bg:*)
            first=${1#bg:}
            shift
            /bin/vsock-test "$first" "$@" &
            bg_pids="$bg_pids $!"
            return 0 ;;
        wait-ready) wait_ready "$2"; return ;;
        wait) wait_background; return ;;
        sleep) sleep "$2"; return ;;
        host) shift; run_host "$@"; return ;;
        *)
            /bin/vsock-test "$@"
            rc=$?
            [ "$rc" -eq 0 ] || note_fail "step '$*' rc=$rc"
            return $rc ;;
    esac
}

set -f
old_ifs=$IFS
IFS=';'
for step in $VT_RUN; do
    IFS=','
    # shellcheck disable=SC2086 # word splitting on ',' is the point
    set -- $step
    IFS=$old_ifs
    run_step "$@"
    IFS=';'
done
IFS=$old_ifs

if [ -n "$VT_HOSTCMD" ]; then
    IFS=','
    # shellcheck disable=SC2086 # word splitting on ',' is the point
    set -- $VT_HOSTCMD
    IFS=$old_ifs
    run_host "$@"
fi
if [ -n "$VT_HOSTCMD_FILE" ] && [ "$host_ready" = "1" ]; then
    run_host /bin/sh /run/vsocktest/cmd.sh
fi

if [ "$VT_CONSOLE" = "1" ]; then
    # Commands typed into the serial port must not be echoed back into the marker stream.
    stty -echo 2>/dev/null
    echo "VSOCKTEST CONSOLE READY"
    while read -r line; do
        case "$line" in
            poweroff) break ;;
            @*)
                id=${line%% *}
                id=${id#@}
                rest=${line#* }
                IFS=', '
                set -- $rest
                IFS=$old_ifs
                run_step "$@"
                echo "VSOCKTEST STEP $id rc=$?" ;;
            "") ;;
            *) echo "VSOCKTEST FAIL console: expected '@ID step', got '$line'" ;;
        esac
    done
fi

wait_background
echo "VSOCKTEST DONE failures=$failures"
poweroff -f
