#!/usr/bin/env bash
# Runs inside the guest (scripts/bench). Every row: one command, timed with the same
# clock, in the same boot; results appended to $BENCH_OUT/results.tsv as
# workload<TAB>contender<TAB>seconds<TAB>peak_rss_kib<TAB>note<TAB>cpu_seconds (user+sys
# of the command and its children, kernel work done in their system calls included)
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
zrep=$repo/target/release/zrep
ssh="ssh -F /tmp/zrep-ssh/config"
res=$BENCH_OUT/results.tsv
: >"$res"
export PATH=/opt/zrep-dev/bench-venv/bin:$PATH
log() { echo "[bench] $*" >&2; }

# Pools on the guest's tmpfs: the disk is not what we measure.
truncate -s 3G /tmp/bsrc.img /tmp/bdst.img
zpool create -f -O compression=off -O mountpoint=/tmp/bsrc bsrc /tmp/bsrc.img
zpool create -f -O compression=off -O mountpoint=/tmp/bdst bdst /tmp/bdst.img

now() { date +%s.%N; }
# row WORKLOAD CONTENDER NOTE -- CMD...: times CMD (GNU time for peak RSS).
row() {
    local w=$1 c=$2 note=$3; shift 4
    local t0 t1 rss
    t0=$(now)
    /usr/bin/time -f '%M %U %S' -o /tmp/rss "$@" >/tmp/row.out 2>&1 || { log "$c failed: $(tail -3 /tmp/row.out)"; note="FAILED $note"; }
    t1=$(now)
    read -r rss user sys < <(tail -1 /tmp/rss 2>/dev/null || echo "0 0 0")
    printf '%s\t%s\t%.3f\t%s\t%s\t%s\n' "$w" "$c" "$(echo "$t1 - $t0" | bc)" "$rss" "$note" \
        "$(echo "${user:-0} + ${sys:-0}" | bc)" >>"$res"
    log "$w / $c: $(tail -1 "$res" | cut -f3) s"
}
# gone DATASET: destroys it and all below it. zrep keeps holds on the snapshots both
# ends share: they are released first, or the destroy fails and the copy stays (the
# pool ran out of space so once). One `zfs holds` for all held snapshots and one
# `zfs release` per tag: a command per snapshot took minutes on a tree of 300.
gone() {
    local tag
    zfs list -H -r -t snapshot -o name,userrefs "$1" 2>/dev/null | awk '$2 > 0 { print $1 }' >/tmp/held
    if [[ -s /tmp/held ]]; then
        xargs zfs holds -H </tmp/held | awk -F'\t' '{ print $2 "\t" $1 }' | sort >/tmp/holds
        cut -f1 /tmp/holds | uniq | while read -r tag; do
            awk -F'\t' -v t="$tag" '$1 == t { print $2 }' /tmp/holds | xargs zfs release "$tag"
        done
    fi
    zfs destroy -r "$1" 2>/dev/null
}
# fresh NAME...: destroys bdst/NAME..., waits until their space is free again (destroys
# free it in the background), then trims both pools: their image files live on the
# guest's tmpfs, which gets back what ZFS freed only when the vdev punches holes in them.
# Without it the tmpfs fills up after the first workload and later rows fail "out of space".
fresh() {
    local d
    for d in "$@"; do gone "bdst/$d"; done
    zpool wait -t free bdst
    zpool trim -w bsrc && zpool trim -w bdst || log "trim failed"
    log "tmpfs: $(df -h --output=used,avail /tmp | tail -1)"
}

# Which workloads this boot runs. `scripts/bench` runs all but the link, whose rows
# come from a boot of their own; --only-KIND runs one kind (BENCH_ONLY=KIND), for
# when the whole run at full size does not fit in one boot. BENCHMARKS.md joins the
# last run of each kind.
#   full: full streams (1, 1b)          inc: one incremental (2), and the process
#   tree: a no-change -r run (3)             counts and profiles, which reuse it
#   busy: foreign snapshots (4)         hist: a long history (5)
#   list: a wide tree's listing (6, 7)  link: --bwlimit and a shaped link
# (--only-trees: tree and busy, the recursive runs.)
case ${BENCH_ONLY:-} in
    "") want="full inc tree busy hist list" ;;
    history) want="busy hist" ;;
    scale) want="list tree" ;;  # the two largest trees, with the peers on the first
    trees) want="tree busy" ;;  # the recursive runs, with the peers
    link) want="link" ;;
    *) log "unknown BENCH_ONLY=$BENCH_ONLY"; exit 2 ;;
esac
wants() { [[ " $want " == *" $1 "* ]]; }
# peer NAME: whether this boot runs that peer (syncoid, zab) on the tree workloads: all
# of them with BENCH_PEERS=1, or those BENCH_PEER_TOOLS names.
peer() { [[ $BENCH_PEERS == 1 && " ${BENCH_PEER_TOOLS:-syncoid zab} " == *" $1 "* ]]; }

traced() { # NAME ARGS...: a zrep run under strace, summed per ZFS ioctl
    local name=$1; shift
    strace -f -T -e trace=ioctl -o "/tmp/$name.strace" "$zrep" "$@" >/dev/null 2>&1
    python3 "$repo/bench/ioctls.py" "/tmp/$name.strace" /usr/include/libzfs/sys/fs/zfs.h >"$BENCH_OUT/ioctls-$name.txt"
}
# make_tree ROOT N: ROOT with N child filesystems, unmounted (a backup host's shape,
# and quick to make), and one recursive snapshot @seed.
make_tree() {
    local root=$1 n=$2 i
    zfs create -o canmount=off "$root"
    for i in $(seq 1 "$n"); do zfs create -o canmount=off "$root/d$i"; done
    zfs snapshot -r "$root@seed"
}
# copy_tree FROM TO: TO, a copy of FROM@seed and all below it (one replication stream).
copy_tree() { zfs send -R "$1@seed" | zfs receive -u "$2"; }

if wants full; then
# Workload 1: 300 MB incompressible, full stream.
zfs create bsrc/full
head -c 300M /dev/urandom >/tmp/bsrc/full/data
zfs snapshot bsrc/full@s1
row full "bound: zfs send > /dev/null" "" -- sh -c 'zfs send bsrc/full@s1 >/dev/null'
zfs send bsrc/full@s1 >/dev/shm/full.stream
row full "bound: zfs receive < file (tmpfs)" "" -- sh -c 'zfs receive -u bdst/recvonly </dev/shm/full.stream'
rm -f /dev/shm/full.stream
row full "zfs send | zfs receive" "" -- sh -c 'zfs send bsrc/full@s1 | zfs receive -u bdst/pipe'
row full "zfs send | ssh zfs receive" "" -- sh -c "zfs send bsrc/full@s1 | $ssh localhost zfs receive -u bdst/sshpipe"
row full "zrep local" "" -- "$zrep" replicate -q --no-snapshot bsrc/full bdst/zrep
# The pipe size, measured in the same boot: zrep's direct pipe at 1 MiB instead of
# the kernel's default.
row full "zrep local, 1 MiB pipe" "" -- env ZREP_PIPE_BYTES=1048576 "$zrep" replicate -q --no-snapshot bsrc/full bdst/zrep1m
row full "zrep over ssh" "" -- "$zrep" replicate -q --no-snapshot --ssh "$ssh" --remote-zrep "$zrep" bsrc/full localhost:bdst/zrepssh
if [[ $BENCH_PEERS == 1 ]]; then
    row full "syncoid" "" -- syncoid --quiet --no-sync-snap bsrc/full bdst/syncoid
    zfs set autobackup:bench=true bsrc/full
    zfs create bdst/zab  # zfs-autobackup wants its target to exist
    row full "zfs-autobackup" "" -- zfs-autobackup --no-progress bench bdst/zab
    zfs inherit autobackup:bench bsrc/full
fi
fresh recvonly pipe sshpipe zrep zrep1m zrepssh syncoid zab

# Workload 1b: 300 MB of compressible data on an lz4 dataset, sent compressed.
zfs create -o compression=lz4 bsrc/comp
python3 - <<'PY'
import random
r = random.Random(7)
words = [bytes(r.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(r.randint(2, 9))) for _ in range(5000)]
with open("/tmp/bsrc/comp/text", "wb") as f:
    n = 0
    while n < 300 << 20:
        line = b" ".join(r.choice(words) for _ in range(12)) + b"\n"
        f.write(line)
        n += len(line)
PY
zfs snapshot bsrc/comp@s1
w="full, compressible, sent compressed"
row "$w" "bound: zfs send -c > /dev/null" "" -- sh -c 'zfs send -c bsrc/comp@s1 >/dev/null'
zfs send -c bsrc/comp@s1 >/dev/shm/comp.stream
row "$w" "bound: zfs receive < file (tmpfs)" "" -- sh -c 'zfs receive -u bdst/crecvonly </dev/shm/comp.stream'
rm -f /dev/shm/comp.stream
row "$w" "zfs send -c | zfs receive" "" -- sh -c 'zfs send -c bsrc/comp@s1 | zfs receive -u bdst/cpipe'
row "$w" "zfs send -c | ssh zfs receive" "" -- sh -c "zfs send -c bsrc/comp@s1 | $ssh localhost zfs receive -u bdst/csshpipe"
row "$w" "zrep local -c" "" -- "$zrep" replicate -q -c --no-snapshot bsrc/comp bdst/czrep
row "$w" "zrep over ssh -c" "" -- "$zrep" replicate -q -c --no-snapshot --ssh "$ssh" --remote-zrep "$zrep" bsrc/comp localhost:bdst/czrepssh
if [[ $BENCH_PEERS == 1 ]]; then
    row "$w" "syncoid --sendoptions=c" "" -- syncoid --quiet --no-sync-snap --sendoptions=c bsrc/comp bdst/csyncoid
    zfs set autobackup:cbench=true bsrc/comp
    zfs create bdst/czab
    row "$w" "zfs-autobackup --zfs-compressed" "" -- zfs-autobackup --no-progress --zfs-compressed cbench bdst/czab
    zfs inherit autobackup:cbench bsrc/comp
fi
fresh crecvonly cpipe csshpipe czrep czrepssh csyncoid czab
gone bsrc/comp

fi
# The link workloads run in a boot of their own (`scripts/bench --only-link`): after the
# full streams, the guest's tmpfs (which holds both pools) had too little room left for
# their 300 MB copies and a pool ran out of space (the whole bench hung once).
if wants link; then
# Workload: --bwlimit on loopback (issue 17): BENCH_BWLIMIT (5) MiB/s, 32 seconds' worth
# of incompressible data pushed over ssh without compression; bench/rate.py samples
# the bytes zrep writes to ssh every second.
bw=${BENCH_BWLIMIT:-5}
w="bwlimit ${bw}M over ssh, $((bw * 32)) MiB incompressible"
zfs create bsrc/bw
head -c "$((bw * 32))M" /dev/urandom >/tmp/bsrc/bw/data
zfs snapshot bsrc/bw@s1
t0=$(now)
"$zrep" replicate -q --no-snapshot --compress none --bwlimit "${bw}M" --ssh "$ssh" \
    --remote-zrep "$zrep" bsrc/bw localhost:bdst/bw &
python3 "$repo/bench/rate.py" $! $((bw << 20)) >"$BENCH_OUT/bwlimit.txt"
wait $! || log "$w: zrep failed"
printf '%s\t%s\t%.3f\t0\t%s\t0\n' "$w" "zrep --bwlimit ${bw}M --compress none" \
    "$(echo "$(now) - $t0" | bc)" \
    "average $(sed -n 's/^average=//p' "$BENCH_OUT/bwlimit.txt"), peak second $(sed -n 's/^peak=//p' "$BENCH_OUT/bwlimit.txt") of the limit" >>"$res"
log "$w: $(tr '\n' ' ' <"$BENCH_OUT/bwlimit.txt")"
fresh bw
gone bsrc/bw
# Workload: a rate-limited link (issue 17). A second sshd runs in a network namespace
# behind a veth pair shaped to BENCH_LINK_MBIT (20) Mbit/s each way (tbf); the senders
# run outside it, so every byte crosses the shaped link. The data: BENCH_LINK_MB (300)
# MB of the guest's own files (/usr: text and binaries, compressible as real data
# is), one full stream each: zrep (compression by default, then none), the plain
# pipeline, syncoid (its default compression, lzo).
link_mbit=${BENCH_LINK_MBIT:-20}
link_mb=${BENCH_LINK_MB:-300}
w="link ${link_mbit} Mbit/s, ${link_mb} MB compressible, full"
if ip netns add zshape 2>/dev/null; then
    ip link add zveth0 type veth peer name zveth1
    ip link set zveth1 netns zshape
    ip addr add 10.77.0.1/24 dev zveth0 && ip link set zveth0 up
    ip netns exec zshape ip addr add 10.77.0.2/24 dev zveth1
    ip netns exec zshape ip link set zveth1 up
    ip netns exec zshape ip link set lo up
    tc qdisc add dev zveth0 root tbf rate "${link_mbit}mbit" burst 32kb latency 100ms
    ip netns exec zshape tc qdisc add dev zveth1 root tbf rate "${link_mbit}mbit" burst 32kb latency 100ms
    # The loopback sshd's setup, listening in the namespace, with the plain PATH.
    sed -e 's/^ListenAddress .*/ListenAddress 10.77.0.2/' \
        -e 's|^PidFile .*|PidFile /tmp/zrep-ssh/sshd-shaped.pid|' -e '/^SetEnv /d' \
        /tmp/zrep-ssh/sshd_config >/tmp/zrep-ssh/sshd_shaped_config
    ip netns exec zshape /usr/sbin/sshd -f /tmp/zrep-ssh/sshd_shaped_config
    far=10.77.0.2
    zfs create bsrc/link
    tar -cf - /usr/lib /usr/share 2>/dev/null | head -c "${link_mb}M" >/tmp/bsrc/link/data
    zfs snapshot bsrc/link@s1
    log "$w: $(zstd -1 -c /tmp/bsrc/link/data | wc -c) bytes with zstd -1, $(lzop -c /tmp/bsrc/link/data | wc -c) with lzop"
    # Each copy is destroyed once timed (the pools' files live on the guest's tmpfs).
    zfar=("$zrep" replicate -q --no-snapshot --ssh "$ssh" --remote-zrep "$zrep")
    row "$w" "zrep (zstd, its default)" "" -- "${zfar[@]}" bsrc/link "$far:bdst/l-zrep"
    fresh l-zrep
    row "$w" "zrep --compress lz4" "" -- "${zfar[@]}" --compress lz4 bsrc/link "$far:bdst/l-zrep-lz4"
    fresh l-zrep-lz4
    row "$w" "zrep --compress none" "" -- "${zfar[@]}" --compress none bsrc/link "$far:bdst/l-zrep-none"
    fresh l-zrep-none
    row "$w" "zfs send | ssh zfs receive" "" -- sh -c "zfs send bsrc/link@s1 | $ssh $far zfs receive -u bdst/l-pipe"
    fresh l-pipe
    if command -v syncoid >/dev/null; then
        row "$w" "syncoid (lzo, its default)" "" -- syncoid --quiet --no-sync-snap \
            --sshkey=/tmp/zrep-ssh/id --sshport=2222 -o StrictHostKeyChecking=no \
            -o UserKnownHostsFile=/dev/null bsrc/link "root@$far:bdst/l-syncoid"
        fresh l-syncoid
    fi
    kill "$(cat /tmp/zrep-ssh/sshd-shaped.pid)" 2>/dev/null
    ip netns del zshape
    ip link del zveth0 2>/dev/null
    gone bsrc/link
else
    log "$w: cannot create a network namespace: skipped"
fi
fi
if wants inc; then
# Workload 2: one incremental of 4 MB, each contender taking its own snapshot, on its
# own source dataset (same base, same change) so that none sends another's snapshots.
inc_tools=(pipe zrep zrepssh)
[[ $BENCH_PEERS == 1 ]] && inc_tools+=(syncoid zab)
for t in "${inc_tools[@]}"; do
    zfs create "bsrc/inc-$t"
    head -c 64M /dev/urandom >"/tmp/bsrc/inc-$t/base"
    case $t in
        pipe) zfs snapshot "bsrc/inc-$t@a"; zfs send "bsrc/inc-$t@a" | zfs receive -u "bdst/inc-$t" ;;
        zrep) "$zrep" replicate -q "bsrc/inc-$t" "bdst/inc-$t" ;;
        zrepssh) "$zrep" replicate -q --ssh "$ssh" --remote-zrep "$zrep" "bsrc/inc-$t" "localhost:bdst/inc-$t" ;;
        syncoid) syncoid --quiet "bsrc/inc-$t" "bdst/inc-$t" >/dev/null 2>&1 ;;
        zab) zfs set autobackup:inc=true "bsrc/inc-$t"; zfs create bdst/inc-zab-root
             zfs-autobackup --no-progress inc bdst/inc-zab-root >/dev/null 2>&1 ;;
    esac
    head -c 4M /dev/urandom >"/tmp/bsrc/inc-$t/delta"
done
w="incremental, 4 MB, with its snapshot"
# txg POOL: the pool's newest transaction group. counted CONTENDER CMD...: runs CMD
# and records how many each pool committed meanwhile (an idle pool also commits one
# every zfs_txg_timeout, 5 s).
txg() { awk 'END { print $1 }' "/proc/spl/kstat/zfs/$1/txgs"; }
counted() {
    local c=$1 s0 d0; shift
    s0=$(txg bsrc) d0=$(txg bdst)
    "$@"
    printf 'txgs\t%s\t%s\t0\t%s\n' "$c" "$(($(txg bsrc) - s0))" "$(($(txg bdst) - d0))" >>"$res"
}
if [[ -n ${BENCH_BASELINE:-} ]]; then
    # The same run by an earlier zrep (scripts/bench --baseline REV), on its own dataset.
    zfs create bsrc/inc-base
    head -c 64M /dev/urandom >/tmp/bsrc/inc-base/base
    "$BENCH_BASELINE" replicate -q bsrc/inc-base bdst/inc-base
    head -c 4M /dev/urandom >/tmp/bsrc/inc-base/delta
fi
# The local contenders run three rounds, in turn, each round after a new 4 MB on each
# source: one run is too noisy here to compare. BENCHMARKS.md shows the median round
# (report.py) and every round's time; transaction groups are counted in the first.
for r in 1 2 3; do
    if ((r > 1)); then
        for t in pipe zrep ${BENCH_BASELINE:+base}; do
            head -c 4M /dev/urandom >"/tmp/bsrc/inc-$t/delta$r"
        done
    fi
    how=(row) from=a
    ((r == 1)) || from=b$((r - 1))
    ((r == 1)) && how=(counted "zfs snapshot && zfs send -i | zfs receive" row)
    "${how[@]}" "$w" "ref: zfs snapshot && zfs send -i | zfs receive" "" -- sh -c \
        "zfs snapshot bsrc/inc-pipe@b$r && zfs send -i @$from bsrc/inc-pipe@b$r | zfs receive -u bdst/inc-pipe"
    ((r == 1)) && how=(counted "zrep local" row)
    "${how[@]}" "$w" "zrep local" "" -- "$zrep" replicate -q bsrc/inc-zrep bdst/inc-zrep
    if [[ -n ${BENCH_BASELINE:-} ]]; then
        ((r == 1)) && how=(counted "zrep local, $BENCH_BASELINE_NAME" row)
        "${how[@]}" "$w" "zrep local, $BENCH_BASELINE_NAME" "" -- \
            "$BENCH_BASELINE" replicate -q bsrc/inc-base bdst/inc-base
    fi
done
row "$w" "zrep over ssh" "" -- "$zrep" replicate -q --ssh "$ssh" --remote-zrep "$zrep" bsrc/inc-zrepssh localhost:bdst/inc-zrepssh
if [[ $BENCH_PEERS == 1 ]]; then
    row "$w" "syncoid" "" -- syncoid --quiet bsrc/inc-syncoid bdst/inc-syncoid
    row "$w" "zfs-autobackup" "" -- zfs-autobackup --no-progress inc bdst/inc-zab-root
fi
# The transaction groups of one incremental run: zrep's sync tasks, by ioctl, with
# the wall-clock time of each (strace -T), for BENCHMARKS.md.
head -c 4M /dev/urandom >/tmp/bsrc/inc-zrep/delta2
traced incremental replicate -q bsrc/inc-zrep bdst/inc-zrep
fi
if wants list; then
# Workload 6: listing a tree of D datasets with 10 snapshots each.
# listing_rows WORKLOAD: zfs list, zrep list and zrep list over SSH of bsrc/wide's
# snapshots; how many each listed goes to listings.txt.
listing_rows() {
    row "$1" "ref: zfs list -H -r -t snapshot -o name,guid,createtxg" "" -- sh -c \
        'zfs list -H -r -t snapshot -o name,guid,createtxg bsrc/wide | wc -l >/tmp/list.ref'
    row "$1" "zrep list -r -t snapshot" "" -- sh -c "$zrep list -r -t snapshot bsrc/wide | wc -l >/tmp/list.local"
    row "$1" "zrep list -r -t snapshot over ssh" "" -- sh -c \
        "$zrep list -r -t snapshot --ssh '$ssh' --remote-zrep $zrep localhost:bsrc/wide | wc -l >/tmp/list.ssh"
    echo "$1: zfs list $(cat /tmp/list.ref) snapshots, zrep list $(($(cat /tmp/list.local) - 1)), over ssh $(($(cat /tmp/list.ssh) - 1))" >>"$BENCH_OUT/listings.txt"
}
d=${BENCH_LIST_DATASETS:-1000}
make_tree bsrc/wide "$d"
for j in $(seq 1 9); do zfs snapshot -r "bsrc/wide@s$j"; done
listing_rows "listing $d datasets x 10 snapshots"

# Workload 7 (BENCH_BIG_SNAPSHOTS=N, off by default): the same tree grown to about N
# snapshots in all, past what one channel program can list, listed locally and over SSH.
big=${BENCH_BIG_SNAPSHOTS:-0}
if ((big > 0)); then
    rounds=$(((big + d) / (d + 1)))
    for j in $(seq 11 "$rounds"); do zfs snapshot -r "bsrc/wide@s$j"; done
    listing_rows "listing $d datasets x $rounds snapshots"
fi
# bsrc/wide stays: destroying thousands of snapshots here would make the final
# `zpool destroy` wait for their space to be freed.

fi
if wants tree; then
# Workload 3: a scheduled run over N datasets where nothing changed, each tool on its
# own copy of the tree, against `zfs list -t all -r` of both trees.
n=${BENCH_DATASETS:-300}
make_tree bsrc/many-zrep "$n"
"$zrep" replicate -q -r bsrc/many-zrep bdst/many-zrep
w="scheduled, $n datasets, no change"
row "$w" "ref: zfs list -t all -r of both trees" "" -- sh -c 'zfs list -t all -r bsrc/many-zrep bdst/many-zrep >/dev/null'
row "$w" "zrep -r" "" -- "$zrep" replicate -q -r bsrc/many-zrep bdst/many-zrep
if peer syncoid; then
    # syncoid's target starts as a replication stream of its source (syncoid's own
    # first run, one full stream per dataset, takes longer than the guest's time
    # allows here); the timed run then takes and sends its sync snapshots as on any
    # later run, but has no older ones to prune: if anything, syncoid's row is short.
    copy_tree bsrc/many-zrep bsrc/many-syncoid
    copy_tree bsrc/many-syncoid bdst/many-syncoid
    row "$w" "syncoid -r" "" -- syncoid --quiet -r bsrc/many-syncoid bdst/many-syncoid
fi
if peer zab; then
    copy_tree bsrc/many-zrep bsrc/many-zab
    zfs set autobackup:many=true bsrc/many-zab
    zfs create bdst/many-zab
    zfs-autobackup --no-progress many bdst/many-zab >/dev/null 2>&1
    row "$w" "zfs-autobackup" "" -- zfs-autobackup --no-progress many bdst/many-zab
fi
traced noop replicate -q -r bsrc/many-zrep bdst/many-zrep
gone bsrc/many-syncoid; gone bsrc/many-zab
fresh many-zrep many-syncoid many-zab
gone bsrc/many-zrep

fi
if wants busy; then
# Workload 4: 50 datasets where another tool (sanoid, say) took two snapshots of each,
# each after a small write, since this tool's last run: every dataset has something to
# send. Mounted trees (the writes need them), each tool on its own.
m=${BENCH_CHANGED:-50}
fs_tools=(zrep)
peer syncoid && fs_tools+=(syncoid)
peer zab && fs_tools+=(zab)
for t in "${fs_tools[@]}"; do
    zfs create "bsrc/busy-$t"
    for i in $(seq 1 "$m"); do zfs create "bsrc/busy-$t/d$i"; echo "$i" >"/tmp/bsrc/busy-$t/d$i/f"; done
    case $t in
        zrep) "$zrep" replicate -q -r bsrc/busy-zrep bdst/busy-zrep ;;
        syncoid) syncoid --quiet -r bsrc/busy-syncoid bdst/busy-syncoid >/dev/null 2>&1 ;;
        zab) zfs set autobackup:busy=true bsrc/busy-zab; zfs create bdst/busy-zab
             zfs-autobackup --no-progress busy bdst/busy-zab >/dev/null 2>&1 ;;
    esac
    for k in 1 2; do
        for i in $(seq 1 "$m"); do echo "foreign $k" >>"/tmp/bsrc/busy-$t/d$i/f"; done
        zfs snapshot -r "bsrc/busy-$t@autosnap_$k"
    done
done
w="scheduled, $m datasets, two foreign snapshots each"
row "$w" "zrep -r" "" -- "$zrep" replicate -q -r bsrc/busy-zrep bdst/busy-zrep
peer syncoid && row "$w" "syncoid -r" "" -- syncoid --quiet -r bsrc/busy-syncoid bdst/busy-syncoid
peer zab && row "$w" "zfs-autobackup" "" -- zfs-autobackup --no-progress busy bdst/busy-zab
for i in $(seq 1 "$m"); do echo "again $i" >>"/tmp/bsrc/busy-zrep/d$i/f"; done
traced changed replicate -q -r bsrc/busy-zrep bdst/busy-zrep
for t in "${fs_tools[@]}"; do gone "bsrc/busy-$t"; done
fresh busy-zrep busy-syncoid busy-zab
fi
if wants hist; then
# Workload 5: a dataset with K snapshots, replicated, nothing changed since, against
# `zfs list -t snapshot` of both sides. The target gets them in one replication stream.
k=${BENCH_SNAPSHOTS:-1000}
zfs create bsrc/hist
for i in $(seq 1 "$k"); do zfs snapshot "bsrc/hist@h$i"; done
zfs send -R "bsrc/hist@h$k" | zfs receive -u bdst/hist
"$zrep" replicate -q bsrc/hist bdst/hist  # adopts the target, places the cursor
w="no change, one dataset with $k snapshots"
row "$w" "ref: zfs list -t snapshot -o name,guid,createtxg,userrefs of both" "" -- sh -c \
    'zfs list -t snapshot -o name,guid,createtxg,userrefs bsrc/hist bdst/hist >/dev/null'
row "$w" "zrep replicate" "" -- "$zrep" replicate -q bsrc/hist bdst/hist
row "$w" "zrep replicate over ssh" "" -- "$zrep" replicate -q --ssh "$ssh" --remote-zrep "$zrep" bsrc/hist localhost:bdst/hist
gone bsrc/hist; fresh hist

fi
if wants inc; then
# Processes each tool starts for one incremental run (a small change first).
spawned() {
    local c=$1 t=$2; shift 2
    echo "x" >>"/tmp/bsrc/inc-$t/delta"
    strace -f -qq -e trace=execve -e signal=none -o /tmp/strace.out "$@" >/dev/null 2>&1 || true
    [[ -s /tmp/strace.out ]] || return 0
    printf 'spawned\t%s\t%s\t0\t%s\n' "$c" "$(($(grep -c 'execve(' /tmp/strace.out) - 1))" \
        "$(grep -cE 'execve\("[^"]*/(zfs|zpool)"' /tmp/strace.out)" >>"$res"
}
spawned "zrep local" zrep "$zrep" replicate -q bsrc/inc-zrep bdst/inc-zrep
spawned "zrep over ssh" zrepssh "$zrep" replicate -q --ssh "$ssh" --remote-zrep "$zrep" bsrc/inc-zrepssh localhost:bdst/inc-zrepssh
if [[ $BENCH_PEERS == 1 ]]; then
    spawned "syncoid" syncoid syncoid --quiet bsrc/inc-syncoid bdst/inc-syncoid
    spawned "zfs-autobackup" zab zfs-autobackup --no-progress inc bdst/inc-zab-root
fi
# Where the time of a local full stream goes: every CPU sampled (the kernel's ZFS
# threads do most of the work), for zrep and for the receive-alone bound.
# The profiles need ~1 GB of the guest's tmpfs (200 MB of data, its stream, three
# copies): with less, a pool's image file cannot grow, the pool suspends, and the
# guest hangs until its time limit.
tmpfs_free_mb=$(df -m --output=avail /tmp | tail -1 | tr -d ' ')
((tmpfs_free_mb > 1500)) || log "profiles skipped: $tmpfs_free_mb MB free on /tmp"
if command -v perf >/dev/null && ((tmpfs_free_mb > 1500)); then
    zfs create bsrc/prof
    head -c 200M /dev/urandom >/tmp/bsrc/prof/data
    zfs snapshot bsrc/prof@s1
    zfs send bsrc/prof@s1 >/dev/shm/prof.stream
    profile() {
        local name=$1; shift
        perf record -q -a -e cpu-clock -o "/tmp/$name.perf" -- "$@" >/dev/null 2>&1
        perf report -q -i "/tmp/$name.perf" --sort comm,sym --stdio 2>/dev/null |
            grep -v '^#' | grep -v '^$' | head -25 >"$BENCH_OUT/profile-$name.txt"
    }
    profile receive sh -c 'zfs receive -u bdst/prof-recv </dev/shm/prof.stream'
    profile zrep "$zrep" replicate -q --no-snapshot bsrc/prof bdst/prof-zrep
    rm -f /dev/shm/prof.stream
    # Over SSH: which processes take the CPU, for the pipeline and for zrep.
    by_command() {
        local name=$1; shift
        perf record -q -a -e cpu-clock -o "/tmp/$name.perf" -- "$@" >/dev/null 2>&1
        perf report -q -i "/tmp/$name.perf" --sort comm --stdio 2>/dev/null |
            grep -v '^#' | grep -v '^$' | head -12 >"$BENCH_OUT/commands-$name.txt"
    }
    by_command sshpipe sh -c "zfs send bsrc/prof@s1 | $ssh localhost zfs receive -u bdst/prof-sshpipe"
    by_command zrepssh "$zrep" replicate -q --no-snapshot --ssh "$ssh" --remote-zrep "$zrep" bsrc/prof localhost:bdst/prof-zrepssh
fi
fi
uname -r >"$BENCH_OUT/kernel"
cat /sys/module/zfs/version >"$BENCH_OUT/zfs"
zpool destroy bsrc; zpool destroy bdst
