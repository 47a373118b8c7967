#!/bin/sh
# Debian 12 with OpenZFS 2.3 from bookworm-backports, loaded in the box's own kernel.
set -eu
export DEBIAN_FRONTEND=noninteractive
cat >/etc/apt/sources.list.d/zfs.sources <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-backports
Components: main contrib
SRC
apt-get update -qq
apt-get install -y -qq linux-headers-amd64 build-essential pkg-config libclang-dev curl \
    openssh-server openssh-client valgrind
apt-get install -y -qq -t bookworm-backports zfs-dkms zfsutils-linux libzfslinux-dev
modprobe zfs
[ -x /root/.cargo/bin/cargo ] || curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
echo 'export PATH=/root/.cargo/bin:$PATH ZREP_TEST_DIR=/var/tmp/zrep-test' >/etc/profile.d/zrep.sh
