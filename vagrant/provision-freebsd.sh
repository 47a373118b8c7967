#!/bin/sh
# FreeBSD 14: ZFS is in the base system; libzfs-sys reads the headers from the source
# tree (/usr/src/sys/contrib/openzfs), which we fetch for the running release.
set -eu
pkg install -y rust pkgconf llvm bash git
if [ ! -f /usr/src/sys/contrib/openzfs/META ]; then
    rel=$(freebsd-version -u | sed 's/-p[0-9]*$//')
    git clone --depth 1 -b "releng/${rel%-RELEASE}" https://git.FreeBSD.org/src.git /usr/src
fi
kldload -n zfs
echo 'export LIBCLANG_PATH=/usr/local/llvm19/lib ZREP_TEST_DIR=/var/tmp/zrep-test' >/etc/profile.d/zrep.sh
