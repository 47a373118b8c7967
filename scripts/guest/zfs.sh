# Sourced by scripts/guest-run: load_zfs loads the ZFS module (the installed one, or
# ZFS_MODULES's .ko files: scripts/test-openzfs-2.1) and puts ZFS_USERLAND's zfs, zpool
# and libraries first. Uses fail() and the run's ZFS_MODULES and ZFS_USERLAND.

# load_ko NAME: insmods $ZFS_MODULES/NAME.ko after its dependencies (ours with insmod,
# the kernel's own with modprobe).
load_ko() {
    local d
    [[ -d /sys/module/$1 ]] && return 0
    [[ -f $ZFS_MODULES/$1.ko ]] || { modprobe "$1"; return; }
    for d in $(modinfo -F depends "$ZFS_MODULES/$1.ko" | tr , ' '); do
        load_ko "$d" || return 1
    done
    insmod "$ZFS_MODULES/$1.ko"
}

load_zfs() {
    if [[ ! -e /dev/zfs ]]; then
        if [[ -n $ZFS_MODULES ]]; then
            load_ko zfs || fail "loading $ZFS_MODULES/zfs.ko failed"
        else
            modprobe zfs || fail "modprobe zfs failed (is the DKMS module built? scripts/setup)"
        fi
    fi
    [[ -e /dev/zfs ]] || fail "/dev/zfs is missing after modprobe"
    if [[ -n $ZFS_MODULES ]]; then
        local want
        want=$(modinfo -F version "$ZFS_MODULES/zfs.ko")
        [[ $(cat /sys/module/zfs/version) == "$want" ]] ||
            fail "zfs $(cat /sys/module/zfs/version) is loaded, not $want from $ZFS_MODULES"
    fi
    [[ -n $ZFS_USERLAND ]] && use_userland
    echo "zfs $(cat /sys/module/zfs/version 2>/dev/null) loaded on $(uname -r), userland: $(zfs version 2>/dev/null | head -1)"
}

use_userland() {
    export PATH="$ZFS_USERLAND/sbin:$ZFS_USERLAND/usr/sbin:$PATH"
    local libs
    libs=$(printf '%s:' "$ZFS_USERLAND"/lib/*-linux-gnu)
    export LD_LIBRARY_PATH="${libs%:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    # The kernel mounts a snapshot on access (.zfs/snapshot/NAME) by running mount(8),
    # which runs /sbin/mount.zfs without our environment: the installed one, of the
    # other OpenZFS, re-enters the automount and every helper hangs. In the guest (its
    # mounts are its own) a wrapper running ours is bound over it.
    [[ ${ZREP_TEST_ON_HOST:-0} == 1 ]] && return 0
    printf '#!/bin/sh\nLD_LIBRARY_PATH=%q exec %q "$@"\n' "$LD_LIBRARY_PATH" \
        "$ZFS_USERLAND/sbin/mount.zfs" >/tmp/zrep-mount.zfs
    chmod +x /tmp/zrep-mount.zfs
    mount --bind /tmp/zrep-mount.zfs "$(readlink -f /sbin/mount.zfs)" ||
        fail "cannot put $ZFS_USERLAND/sbin/mount.zfs in place of /sbin/mount.zfs"
}
