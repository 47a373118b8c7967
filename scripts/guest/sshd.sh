# Sourced by scripts/guest-run: start_sshd starts the loopback sshd the remote tests
# use (port 2222, its own keys and config under /tmp/zrep-ssh) and exports
# ZREP_TEST_SSH, the ssh command that reaches it. Idempotent.
start_sshd() {
    local d=/tmp/zrep-ssh
    export ZREP_TEST_SSH="ssh -F $d/config"
    [[ -f $d/id ]] && return 0
    mkdir -p "$d" /run/sshd && chmod 700 "$d"
    ip link set lo up 2>/dev/null || true
    ssh-keygen -q -t ed25519 -N '' -f "$d/hostkey"
    ssh-keygen -q -t ed25519 -N '' -f "$d/id"
    cp "$d/id.pub" "$d/authorized_keys"
    cat >"$d/sshd_config" <<CFG
Port 2222
ListenAddress 127.0.0.1
HostKey $d/hostkey
PermitRootLogin prohibit-password
AuthorizedKeysFile $d/authorized_keys
StrictModes no
UsePAM yes
PidFile $d/sshd.pid
SetEnv PATH=$ZREP_TEST_DIR/shims:$PATH${LD_LIBRARY_PATH:+ LD_LIBRARY_PATH=$LD_LIBRARY_PATH}
AcceptEnv ZREP_*
CFG
    cat >"$d/config" <<CFG
Host *
    Port 2222
    User root
    IdentityFile $d/id
    StrictHostKeyChecking no
    UserKnownHostsFile /dev/null
    LogLevel ERROR
    BatchMode yes
CFG
    /usr/sbin/sshd -f "$d/sshd_config"
}
