# Shared by scripts/test and scripts/demo. Sourced, not run.
ZREP_VENV=${ZREP_VENV:-/opt/zrep-dev/venv}
# vng runs virtme-run and friends from its own bin directory.
export PATH="$ZREP_VENV/bin:$PATH"

step() { printf '\n==> %s\n' "$*" >&2; }

guest_kernel() {
    ls /boot/vmlinuz-6.1.*-amd64 2>/dev/null | sort -V | tail -1
}

new_run_dir() {
    local d="$here/target/guest/run-$(date +%s)-$$"
    mkdir -p "$d"
    echo "$d"
}

# run_mode RUN_DIR: the run's MODE (all, guest, shell, exec), from RUN_DIR/env.
run_mode() {
    sed -n 's/^MODE=//p' "$1/env"
}

# boot_guest RUN_DIR: boots Debian's kernel under qemu (software emulation) with the
# host's root shared read-only and RUN_DIR writable, and runs scripts/guest-run in it.
boot_guest() {
    local run_dir=$1 kernel
    kernel=$(guest_kernel)
    [[ -n $kernel && -x $ZREP_VENV/bin/vng ]] || {
        echo "the guest is not installed: run scripts/setup (as root) first" >&2
        exit 1
    }
    step "booting $(basename "$kernel") in qemu (no KVM)"
    local t0=$SECONDS
    # Only the shell keeps the terminal as its input; everything else runs detached.
    local input=/dev/null
    [[ $(run_mode "$run_dir") == shell ]] && input=/dev/stdin
    # One guest at a time on this machine (2 cores): wait for the lock.
    exec 9>/tmp/zrep-guest.lock
    flock 9
    # A test stuck in the kernel cannot be killed from inside: bound the whole boot.
    local vng=(timeout --kill-after=30 "${ZREP_GUEST_TIMEOUT:-3600}"
        "$ZREP_VENV/bin/vng" --run "$kernel" --disable-kvm
        --cpus "${ZREP_GUEST_CPUS:-2}" --memory "${ZREP_GUEST_MEMORY:-6G}"
        --rwdir "$run_dir" --rwdir "$here/target/guest"
        --exec "bash $here/scripts/guest-run $run_dir")
    if [[ $input == /dev/stdin ]]; then
        # Interactive: keep the guest in the terminal's foreground process group,
        # or its first read of the terminal stops it (SIGTTIN).
        "${vng[0]}" --foreground "${vng[@]:1}" || true
    else
        # Through a pipe: qemu reopens its stdout, which would truncate a log file
        # that our caller redirected us into.
        "${vng[@]}" </dev/null 2>&1 | cat || true
    fi
    flock -u 9
    echo "guest finished in $((SECONDS - t0)) s" >&2
}

# report RUN_DIR: prints the closing line and exits with the tests' status.
report() {
    local run_dir=$1 mode
    mode=$(run_mode "$run_dir")
    if [[ $mode == shell || $mode == exec ]]; then
        exit "$(cat "$run_dir/status" 2>/dev/null || echo 1)"
    fi
    if [[ ! -f $run_dir/summary ]]; then
        echo "the guest produced no results (see $run_dir/console.log)" >&2
        tail -40 "$run_dir/console.log" 2>/dev/null >&2 || true
        echo "0 passed, 1 failed"
        exit 1
    fi
    local passed failed
    read -r passed failed <"$run_dir/summary"
    echo "real-ZFS tests: $passed passed, $failed failed (log: $run_dir/tests.log)"
    echo "$passed passed, $failed failed"
    if ((passed + failed == 0)); then
        echo "no real-ZFS test ran: that is a failure" >&2
        exit 1
    fi
    ((failed == 0))
}

# OpenZFS 2.1.11 as Debian 12 main ships it, unpacked under target/openzfs-2.1/ and
# never installed (scripts/check-openzfs-2.1, test-openzfs-2.1, package).
OPENZFS_21_DEBVER=2.1.11-1+deb12u1

# fetch_openzfs_21 DIR PKG...: downloads the 2.1.11 packages PKG... not yet in DIR/debs
# and unpacks each into DIR/root (once: a marker per package).
fetch_openzfs_21() {
    local dir=$1 p
    shift
    mkdir -p "$dir/debs" "$dir/root"
    for p in "$@"; do
        [[ -f $dir/root/.unpacked-$p ]] && continue
        # apt-get download runs as the _apt user when it can; a root-only dir is fine too.
        ls "$dir/debs/${p}_${OPENZFS_21_DEBVER}"_*.deb >/dev/null 2>&1 ||
            (cd "$dir/debs" && apt-get download -q "$p=$OPENZFS_21_DEBVER" 2>/dev/null)
        dpkg-deb -x "$dir/debs/${p}_${OPENZFS_21_DEBVER}"_*.deb "$dir/root"
        touch "$dir/root/.unpacked-$p"
    done
}

# link_openzfs_21 DIR: DIR/link holds libzfs_core.so, libnvpair.so and libzfs.so pointing
# at the 2.1 libraries (libzfslinux-dev's own .so links point at the installed ones);
# prints the libraries' directory.
link_openzfs_21() {
    local dir=$1 libs l
    libs="$dir/root/lib/$(gcc -dumpmachine)"
    mkdir -p "$dir/link"
    for l in zfs_core.so.3 nvpair.so.3 zfs.so.4; do
        ln -sfn "$libs/lib$l" "$dir/link/lib${l%.so.*}.so"
    done
    echo "$libs"
}
