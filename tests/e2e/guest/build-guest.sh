#!/usr/bin/env bash
# Builds the end-to-end test guest: an uncompressed Debian 12 kernel (vmlinux, which QEMU boots via PVH,
# ~2.5 s faster than the bzImage under TCG) and an initramfs with busybox-static, the virtio/vsock modules,
# the virtio-9p modules (loaded only by host-run guests, VT_HOSTRUN=1), the static guest program vsock-test
# and /init.
#
# Usage: tests/e2e/guest/build-guest.sh
#   VSOCK_GUEST_CACHE   output/cache directory (default: <repo>/.cache/guest)
#   VSOCK_GUEST_KERNEL  kernel package (default: whatever linux-image-amd64 depends on, e.g. linux-image-6.1.0-56-amd64)
# Prints on stdout, on success:
#   VMLINUX=<path>  INITRAMFS=<path>  KERNEL=<release>   (one per line)
# Everything else goes to stderr. Idempotent: the outputs are reused while the hash of this script, init.sh,
# vsock-test.c and the kernel package version is unchanged. As root, missing Debian packages are installed;
# otherwise the script says what to install and exits 2.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
CACHE=${VSOCK_GUEST_CACHE:-$REPO/.cache/guest}

# Load order matters: each module needs the ones before it (facts measured on Debian 12's 6.1 kernel).
MODULES=(
    drivers/virtio/virtio_ring
    drivers/virtio/virtio
    drivers/virtio/virtio_pci_legacy_dev
    drivers/virtio/virtio_pci_modern_dev
    drivers/virtio/virtio_pci
    net/vmw_vsock/vsock
    net/vmw_vsock/vmw_vsock_virtio_transport_common
    net/vmw_vsock/vmw_vsock_virtio_transport
    net/vmw_vsock/vsock_loopback
)
# Host-run guests (init.sh, VT_HOSTRUN=1) mount the host's root over virtio-9p to run the host's .NET;
# loaded after the modules above, in this order, and only then (they cost boot time the other guests need not pay).
HOSTRUN_MODULES=(
    fs/netfs/netfs
    fs/fscache/fscache
    net/9p/9pnet
    net/9p/9pnet_virtio
    fs/9p/9p
)
# qemu-system-x86 is not used here but by every consumer of the image; busybox-static also writes the cpio.
PACKAGES=(qemu-system-x86 busybox-static gcc libc6-dev linux-libc-dev xz-utils)

log() { echo "build-guest: $*" >&2; }
die() { echo "build-guest: error: $*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

apt_updated=0
apt_update_once() {
    if [ "$apt_updated" -eq 0 ]; then
        log "apt-get update"
        apt-get update -qq >&2
        apt_updated=1
    fi
}

ensure_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$p")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if ! is_root; then
        echo "build-guest: missing Debian packages: ${missing[*]}" >&2
        echo "build-guest: install them with:" >&2
        echo "    sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
        exit 2
    fi
    apt_update_once
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# Sets KPKG (e.g. linux-image-6.1.0-56-amd64) and KVER (its Debian version) from the apt lists.
# apt-cache takes ~1.5 s here (no pkgcache.bin), so the answer is remembered until the lists change.
resolve_kernel() {
    local sig memo="$CACHE/resolved-kernel" out
    sig=$( { echo "${VSOCK_GUEST_KERNEL:-}"; ls -l --time-style=+%s /var/lib/apt/lists/ 2>/dev/null; } | sha256sum | cut -c1-16)
    if [ -f "$memo" ] && [ "$(sed -n 1p "$memo")" = "$sig" ]; then
        KPKG=$(sed -n 2p "$memo")
        KVER=$(sed -n 3p "$memo")
        return 0
    fi
    if [ -n "${VSOCK_GUEST_KERNEL:-}" ]; then
        KPKG=$VSOCK_GUEST_KERNEL
        KVER=$(apt-cache show --no-all-versions "$KPKG" 2>/dev/null | awk '/^Version:/ { print $2; exit }')
    else
        # The meta package pins its kernel exactly: "Depends: linux-image-6.1.0-56-amd64 (= 6.1.192-2)".
        out=$(apt-cache show --no-all-versions linux-image-amd64 2>/dev/null \
            | sed -n 's/^Depends:.*\(linux-image-[0-9][^ ,]*\) (= \([^)]*\)).*/\1 \2/p' | head -n1)
        KPKG=${out% *}
        KVER=${out#* }
    fi
    if [ -z "$KPKG" ] || [ -z "$KVER" ]; then
        return 1
    fi
    printf '%s\n%s\n%s\n' "$sig" "$KPKG" "$KVER" >"$memo"
}

ensure_kernel_known() {
    resolve_kernel && return 0
    if is_root; then
        apt_update_once
        resolve_kernel && return 0
        die "apt knows no kernel package (linux-image-amd64 / \$VSOCK_GUEST_KERNEL)"
    fi
    echo "build-guest: apt knows no linux-image-amd64 package; run: sudo apt-get update" >&2
    exit 2
}

# The kernel's scripts/extract-vmlinux method: find each compression format's magic in the bzImage, try to
# decompress from there, keep the first result that is an ELF file.
extract_vmlinux() {
    local img=$1 out=$2 tmp
    tmp=$(mktemp "$out.XXXXXX")
    try_decompress() {
        local pos
        # tr maps the magic's first byte to '\n' so grep -abo reports the offset of each candidate line start.
        for pos in $(tr "$1\n$2" "\n$2=" <"$img" | grep -abo "^$2" || true); do
            pos=${pos%%:*}
            tail -c+"$pos" "$img" | $3 >"$tmp" 2>/dev/null || true
            if [ "$(head -c4 "$tmp" | od -An -tx1 | tr -d ' \n')" = "7f454c46" ]; then
                chmod 0644 "$tmp"
                mv "$tmp" "$out"
                return 0
            fi
        done
        return 1
    }
    try_decompress '\3757zXZ\000' abcde unxz && return 0
    try_decompress '(\265/\375' xxx unzstd && return 0
    try_decompress '\037\213\010' xy gunzip && return 0
    try_decompress '\135\0\0\0' xxx unlzma && return 0
    rm -f "$tmp"
    die "no ELF kernel found inside $img (unsupported compression?)"
}

# copy_modules MODDIR RELEASE OUT LISTNAME MODULE...: decompresses each module that is not built in to
# OUT/modules/<name>.ko and appends its name to OUT/LISTNAME (the load order init.sh follows).
copy_modules() {
    local moddir=$1 release=$2 out=$3 list=$4 m name file ext builtin
    shift 4
    builtin="$moddir/modules.builtin"
    : >"$out/$list"
    for m in "$@"; do
        name=${m##*/}
        if [ -f "$builtin" ] && grep -qx "kernel/$m.ko" "$builtin"; then
            log "module $name is built into $release"
            continue
        fi
        file=""
        for ext in .ko .ko.xz .ko.zst .ko.gz; do
            [ -f "$moddir/kernel/$m$ext" ] && { file="$moddir/kernel/$m$ext"; break; }
        done
        [ -n "$file" ] || die "module $m is neither built in nor shipped in $KPKG"
        # busybox insmod cannot read compressed modules.
        case "$file" in
            *.xz) xz -dc "$file" ;;
            *.zst) command -v zstd >/dev/null || die "zstd needed for $file"; zstd -qdc "$file" ;;
            *.gz) gzip -dc "$file" ;;
            *) cat "$file" ;;
        esac >"$out/modules/$name.ko"
        echo "$name" >>"$out/$list"
    done
}

# Fills $1/vmlinux, $1/modules/<name>.ko, $1/load-order, $1/load-order-hostrun and $1/release from the
# kernel package.
build_kernel_dir() {
    local dir=$1 debs="$CACHE/debs" deb work release
    mkdir -p "$debs"
    deb=$(ls "$debs/${KPKG}_${KVER//:/%3a}_"*.deb 2>/dev/null | head -n1 || true)
    if [ -z "$deb" ]; then
        rm -f "$debs"/*.deb
        log "downloading $KPKG=$KVER"
        if ! (cd "$debs" && apt-get download -q "$KPKG=$KVER" >&2); then
            # Stale apt lists name a kernel the mirror no longer has: refresh them and start over, so the
            # version (and with it every cache key) is resolved afresh.
            if is_root && [ -z "${BUILD_GUEST_RETRIED:-}" ]; then
                log "download failed; refreshing the apt lists and starting over"
                apt-get update -qq >&2
                BUILD_GUEST_RETRIED=1 exec "$HERE/build-guest.sh"
            fi
            die "apt-get download $KPKG=$KVER failed (stale apt lists? run: sudo apt-get update)"
        fi
        deb=$(ls "$debs/${KPKG}_"*.deb | head -n1)
    fi
    work=$(mktemp -d "$CACHE/kernel-work.XXXXXX")
    log "extracting $(basename "$deb")"
    # Only the kernel image and the few modules we load; the whole package unpacks to ~400 MB.
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" --wildcards \
        './boot/vmlinuz-*' '*/modules/*/modules.builtin' \
        '*/kernel/drivers/virtio/*' '*/kernel/net/vmw_vsock/*' \
        '*/kernel/fs/netfs/*' '*/kernel/fs/fscache/*' '*/kernel/net/9p/*' '*/kernel/fs/9p/*'
    local vmlinuz
    vmlinuz=$(ls "$work"/boot/vmlinuz-* | head -n1)
    release=${vmlinuz##*/vmlinuz-}
    local moddir
    moddir=$(ls -d "$work"/lib/modules/"$release" "$work"/usr/lib/modules/"$release" 2>/dev/null | head -n1 || true)
    [ -n "$moddir" ] || die "no modules directory for $release in $deb"

    mkdir -p "$work/out/modules"
    extract_vmlinux "$vmlinuz" "$work/out/vmlinux"
    copy_modules "$moddir" "$release" "$work/out" load-order "${MODULES[@]}"
    copy_modules "$moddir" "$release" "$work/out" load-order-hostrun "${HOSTRUN_MODULES[@]}"
    echo "$release" >"$work/out/release"
    rm -rf "$dir"
    mv "$work/out" "$dir"
    rm -rf "$work"
}

build_initramfs() {
    local kdir=$1 out=$2 root bb a
    root=$(mktemp -d "$CACHE/initramfs-work.XXXXXX")
    mkdir -p "$root"/{bin,dev,proc,sys,tmp,run,lib/modules}
    log "compiling vsock-test.c"
    gcc -static -O2 -Wall -Wextra -Werror -o "$root/bin/vsock-test" "$HERE/vsock-test.c"
    strip "$root/bin/vsock-test" 2>/dev/null || true
    # busybox-static's binary (the guest has no libc); the dynamic busybox package conflicts with it.
    cp /bin/busybox "$root/bin/busybox"
    for a in $("$root/bin/busybox" --list); do
        [ "$a" = busybox ] || ln -s busybox "$root/bin/$a"
    done
    install -m 0755 "$HERE/init.sh" "$root/init"
    cp "$kdir"/modules/*.ko "$root/lib/modules/" 2>/dev/null || true
    cp "$kdir/load-order" "$kdir/load-order-hostrun" "$root/lib/modules/"
    (cd "$root" && find . -mindepth 1 | LC_ALL=C sort | "$root/bin/busybox" cpio -o -H newc 2>/dev/null) \
        | gzip -9 >"$out.tmp"
    mv "$out.tmp" "$out"
    rm -rf "$root"
}

main() {
    ensure_packages
    mkdir -p "$CACHE"
    exec 9>"$CACHE/.lock"
    flock 9  # concurrent test runs share one cache

    ensure_kernel_known
    local kkey ikey kdir
    kkey=$( { sha256sum "$HERE/build-guest.sh" | cut -d' ' -f1; echo "$KPKG=$KVER"; } | sha256sum | cut -c1-16)
    ikey=$( { echo "$kkey"; cat "$HERE/init.sh" "$HERE/vsock-test.c"; } | sha256sum | cut -c1-16)
    kdir="$CACHE/kernel-$kkey"

    if [ -f "$CACHE/stamp" ] && [ "$(cat "$CACHE/stamp")" = "$ikey" ] \
        && [ -f "$CACHE/vmlinux" ] && [ -f "$CACHE/initramfs.cpio.gz" ] && [ -f "$kdir/release" ]; then
        log "up to date ($KPKG=$KVER, key $ikey)"
    else
        rm -f "$CACHE/stamp"
        if [ ! -f "$kdir/release" ]; then
            find "$CACHE" -maxdepth 1 -name 'kernel-*' -exec rm -rf {} +
            build_kernel_dir "$kdir"
        fi
        build_initramfs "$kdir" "$CACHE/initramfs.cpio.gz"
        # A hard link: the 65 MB kernel need not be stored twice.
        ln -f "$kdir/vmlinux" "$CACHE/vmlinux" 2>/dev/null || cp "$kdir/vmlinux" "$CACHE/vmlinux"
        echo "$ikey" >"$CACHE/stamp"
        log "built $KPKG=$KVER ($(cat "$kdir/release")), key $ikey"
    fi
    echo "VMLINUX=$CACHE/vmlinux"
    echo "INITRAMFS=$CACHE/initramfs.cpio.gz"
    echo "KERNEL=$(cat "$kdir/release")"
}

main "$@"
