#!/usr/bin/env bash
# Runs inside the guest (scripts/bench). Every row: one command, timed with the same
# clock, in the same boot; results appended to $BENCH_OUT/results.tsv as
# workload<TAB>contender<TAB>seconds<TAB>peak_rss_kib<TAB>note
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
    /usr/bin/time -f '%M' -o /tmp/rss "$@" >/tmp/row.out 2>&1 || { log "$c failed: $(tail -3 /tmp/row.out)"; note="FAILED $note"; }
    t1=$(now)
    rss=$(tail -1 /tmp/rss 2>/dev/null || echo 0)
    printf '%s\t%s\t%.3f\t%s\t%s\n' "$w" "$c" "$(echo "$t1 - $t0" | bc)" "$rss" "$note" >>"$res"
    log "$w / $c: $(tail -1 "$res" | cut -f3) s"
}
fresh() { zfs destroy -r "bdst/$1" 2>/dev/null; true; }

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
row full "zrep over ssh" "" -- "$zrep" replicate -q --no-snapshot --ssh "$ssh" --remote-zrep "$zrep" bsrc/full localhost:bdst/zrepssh
if [[ $BENCH_PEERS == 1 ]]; then
    row full "syncoid" "" -- syncoid --quiet --no-sync-snap bsrc/full bdst/syncoid
    zfs set autobackup:bench=true bsrc/full
    row full "zfs-autobackup" "" -- zfs-autobackup --no-progress bench bdst/zab
    zfs inherit autobackup:bench bsrc/full
fi
for d in recvonly pipe sshpipe zrep zrepssh syncoid zab; do fresh $d; done

# Workload 2: an incremental of a few MB.
zfs create bsrc/inc
head -c 64M /dev/urandom >/tmp/bsrc/inc/base
zfs snapshot bsrc/inc@a
zfs send bsrc/inc@a | zfs receive -u bdst/inc-pipe
zfs send bsrc/inc@a | zfs receive -u bdst/inc-zrep
zfs send bsrc/inc@a | zfs receive -u bdst/inc-zrepssh
head -c 4M /dev/urandom >/tmp/bsrc/inc/delta
zfs snapshot bsrc/inc@b
row incremental "zfs send -i | zfs receive" "" -- sh -c 'zfs send -i @a bsrc/inc@b | zfs receive -u bdst/inc-pipe'
row incremental "zrep local" "" -- "$zrep" replicate -q --no-snapshot bsrc/inc bdst/inc-zrep
row incremental "zrep over ssh" "" -- "$zrep" replicate -q --no-snapshot --ssh "$ssh" --remote-zrep "$zrep" bsrc/inc localhost:bdst/inc-zrepssh

# Workload 3: a scheduled run over N small datasets, nothing changed / all changed.
n=${BENCH_DATASETS:-50}
zfs create bsrc/many
for i in $(seq 1 "$n"); do zfs create "bsrc/many/d$i"; echo "$i" >"/tmp/bsrc/many/d$i/f"; done
"$zrep" replicate -q -r bsrc/many bdst/many-zrep
row "scheduled, $n datasets, no change" "zrep -r" "" -- "$zrep" replicate -q -r bsrc/many bdst/many-zrep
if [[ $BENCH_PEERS == 1 ]]; then
    syncoid --quiet -r bsrc/many bdst/many-syncoid >/dev/null 2>&1
    row "scheduled, $n datasets, no change" "syncoid -r" "" -- syncoid --quiet -r bsrc/many bdst/many-syncoid
    zfs set autobackup:many=true bsrc/many
    zfs-autobackup --no-progress many bdst/many-zab >/dev/null 2>&1
    row "scheduled, $n datasets, no change" "zfs-autobackup" "" -- zfs-autobackup --no-progress many bdst/many-zab
fi
for i in $(seq 1 "$n"); do echo "changed $i" >>"/tmp/bsrc/many/d$i/f"; done
row "scheduled, $n datasets, all changed" "zrep -r" "" -- "$zrep" replicate -q -r bsrc/many bdst/many-zrep
if [[ $BENCH_PEERS == 1 ]]; then
    row "scheduled, $n datasets, all changed" "syncoid -r" "" -- syncoid --quiet -r bsrc/many bdst/many-syncoid
    row "scheduled, $n datasets, all changed" "zfs-autobackup" "" -- zfs-autobackup --no-progress many bdst/many-zab
fi

# Processes started by one zrep run: none of them zfs or zpool.
strace -f -e trace=execve -o /tmp/strace.out "$zrep" replicate -q bsrc/inc bdst/inc-zrep >/dev/null 2>&1 || true
if [[ -s /tmp/strace.out ]]; then
    printf 'spawned\tzrep local\t%s\t0\t%s\n' "$(($(grep -c 'execve(' /tmp/strace.out) - 1))" \
        "$(grep -cE 'execve\("[^"]*/(zfs|zpool)"' /tmp/strace.out) zfs/zpool" >>"$res"
fi
uname -r >"$BENCH_OUT/kernel"
cat /sys/module/zfs/version >"$BENCH_OUT/zfs"
zpool destroy bsrc; zpool destroy bdst
