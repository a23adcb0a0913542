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
#   VT_SHELL=1     drop to an interactive shell on the console instead (debugging by hand).
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
        bg:*)
            first=${1#bg:}
            shift
            /bin/vsock-test "$first" "$@" &
            bg_pids="$bg_pids $!"
            return 0 ;;
        wait-ready) wait_ready "$2"; return ;;
        wait) wait_background; return ;;
        sleep) sleep "$2"; return ;;
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
