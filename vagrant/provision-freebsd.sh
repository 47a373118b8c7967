#!/bin/sh
# FreeBSD 14: ZFS is in the base system; libzfs-sys reads the headers from the source
# tree (/usr/src/sys/contrib/openzfs), which we fetch for the running release.
set -eu
# python3: scripts/test reads cargo's JSON with it.
pkg install -y rust pkgconf llvm bash git python3
if [ ! -f /usr/src/sys/contrib/openzfs/META ]; then
    rel=$(freebsd-version -u | sed 's/-p[0-9]*$//')
    git clone --depth 1 -b "releng/${rel%-RELEASE}" https://git.FreeBSD.org/src.git /usr/src
fi
kldload -n zfs
# bindgen's libclang: the newest LLVM the llvm package brought.
llvm=$(ls -d /usr/local/llvm[0-9]* | sort -t m -k 2 -n | tail -1)
mkdir -p /etc/profile.d
echo "export LIBCLANG_PATH=$llvm/lib ZREP_TEST_DIR=/var/tmp/zrep-test" >/etc/profile.d/zrep.sh
