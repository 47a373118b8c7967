//! Fixtures for the real-ZFS integration tests (they run in the guest: scripts/test).
//!
//! Each test makes its own file-backed pools, uniquely named (`zt<pid>x<n>`), and
//! [`TestPool`]'s `Drop` destroys them even when the test panics. A test that needs
//! ZFS and finds no `/dev/zfs` fails: it never skips.
//!
//! Pools are created with the `zpool` CLI (libzfs_core cannot create pools); that is
//! test setup only — the code under test never spawns `zfs` or `zpool`.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Fails the test unless the ZFS kernel module is reachable.
pub fn require_zfs() {
    assert!(
        Path::new("/dev/zfs").exists(),
        "no /dev/zfs: real-ZFS tests run in the guest (scripts/test) or with \
         ZREP_TEST_ON_HOST=1 on a machine with ZFS loaded"
    );
}

/// Scratch directory for pool files and mountpoints.
pub fn test_dir() -> PathBuf {
    let d =
        PathBuf::from(std::env::var("ZREP_TEST_DIR").unwrap_or_else(|_| "/tmp/zrep-test".into()));
    std::fs::create_dir_all(&d).expect("create ZREP_TEST_DIR");
    d
}

/// Runs a command, panicking with its output if it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `zfs ARGS...` for test setup and verification; returns stdout.
pub fn zfs(args: &[&str]) -> String {
    String::from_utf8(run(Command::new("zfs").args(args)).stdout).unwrap()
}

/// `zfs get -Hp -o value PROP NAME`.
pub fn zfs_get(prop: &str, name: &str) -> String {
    zfs(&["get", "-Hp", "-o", "value", prop, name])
        .trim()
        .to_string()
}

/// Snapshot names (full) of a dataset, oldest first, via the CLI (for cross-checks).
pub fn cli_snapshots(ds: &str) -> Vec<String> {
    zfs(&[
        "list",
        "-Hp",
        "-o",
        "name",
        "-t",
        "snapshot",
        "-s",
        "createtxg",
        "-d",
        "1",
        ds,
    ])
    .lines()
    .map(str::to_owned)
    .collect()
}

/// A file-backed pool, destroyed on drop.
pub struct TestPool {
    name: String,
    file: PathBuf,
    mnt: PathBuf,
}

impl TestPool {
    /// A 256 MiB pool.
    pub fn new() -> TestPool {
        TestPool::with_size(256 << 20)
    }

    /// A pool of `bytes` (sparse file; 64 MiB at least).
    pub fn with_size(bytes: u64) -> TestPool {
        TestPool::with_options(bytes, &[])
    }

    /// A pool with extra `zpool create` arguments (before the pool name).
    pub fn with_options(bytes: u64, extra: &[&str]) -> TestPool {
        require_zfs();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("zt{}x{}", std::process::id(), n);
        let dir = test_dir();
        let file = dir.join(format!("{name}.img"));
        let mnt = dir.join("mnt").join(&name);
        let f = std::fs::File::create(&file).expect("create pool file");
        f.set_len(bytes.max(64 << 20)).expect("size pool file");
        let mut cmd = Command::new("zpool");
        cmd.args([
            "create",
            "-f",
            "-o",
            "cachefile=none",
            "-O",
            "compression=off",
        ])
        .arg("-O")
        .arg(format!("mountpoint={}", mnt.display()))
        .args(extra)
        .arg(&name)
        .arg(&file);
        run(&mut cmd);
        TestPool { name, file, mnt }
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `pool/rel`.
    pub fn ds(&self, rel: &str) -> String {
        if rel.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.name, rel)
        }
    }

    /// `pool/nnn...`, a child whose full name is `len` bytes long.
    pub fn ds_of_len(&self, len: usize) -> String {
        let name = self.ds(&"n".repeat(len - self.name.len() - 1));
        assert_eq!(name.len(), len);
        name
    }

    /// Where `pool/rel` is mounted (by inheritance from the pool root).
    pub fn path(&self, rel: &str) -> PathBuf {
        self.mnt.join(rel)
    }

    /// Creates `pool/rel` with the CLI (setup).
    pub fn create(&self, rel: &str) -> String {
        let ds = self.ds(rel);
        zfs(&["create", "-p", &ds]);
        ds
    }

    /// Creates `pool/rel` with the CLI (mounted) and returns its fixture handle.
    pub fn fs(&self, rel: &str) -> Fs<'_> {
        self.create(rel);
        self.fs_at(rel)
    }

    /// Creates `pool/rel` with the library (unmounted) and returns its handle.
    pub fn lzc_fs(&self, rel: &str) -> Fs<'_> {
        lzc_create(&lzc(), &self.ds(rel));
        self.fs_at(rel)
    }

    /// The handle of `pool/rel`, which may not exist (nothing is created).
    pub fn fs_at(&self, rel: &str) -> Fs<'_> {
        Fs {
            pool: self,
            rel: rel.to_owned(),
            name: self.ds(rel),
        }
    }

    /// A source to send: `pool/rel` (CLI-created, mounted) with `a` (300 kB) and
    /// `dir/b` (50 kB), in `@s1`.
    pub fn source(&self, rel: &str) -> Fs<'_> {
        let fs = self.fs(rel);
        std::fs::create_dir(fs.path("dir")).expect("mkdir dir");
        fs.write("a", 300_000, 1)
            .write("dir/b", 50_000, 2)
            .snap("s1");
        fs
    }

    /// [`TestPool::source`], then `@s2`, which adds `c` (200 kB) and removes `dir/b`:
    /// an incremental with new data and a deletion.
    pub fn source_s2(&self, rel: &str) -> Fs<'_> {
        let fs = self.source(rel);
        fs.write("c", 200_000, 3);
        std::fs::remove_file(fs.path("dir/b")).expect("remove dir/b");
        fs.snap("s2");
        fs
    }

    /// A replicated pair: [`TestPool::source_s2`] at `src`, and its `@s1` received into
    /// `dst` (unmounted), ready for the incremental `@s1` to `@s2`.
    pub fn replicated(&self, src: &str, dst: &str) -> (Fs<'_>, Fs<'_>) {
        let src = self.source_s2(src);
        let dst = src.send_to("s1", self.fs_at(dst));
        (src, dst)
    }

    /// Creates `pool/rel` with the library, encrypted with the raw `key`
    /// ([`raw_key_props`]): key loaded, unmounted.
    pub fn encrypted_fs(&self, rel: &str, key: &[u8]) -> Fs<'_> {
        lzc()
            .create_encrypted(&dn(&self.ds(rel)), &raw_key_props(), key)
            .unwrap_or_else(|e| panic!("create encrypted {}: {e:?}", self.ds(rel)));
        self.fs_at(rel)
    }
}

/// The properties of a filesystem encrypted with a 32-byte raw key: aes-256-gcm,
/// keyformat=raw, keylocation=prompt (index properties as their enum values: 8, 1).
pub fn raw_key_props() -> libzfs::NvList {
    let mut p = libzfs::NvList::new();
    p.insert("encryption", &8u64).expect("nvlist insert");
    p.insert("keyformat", &1u64).expect("nvlist insert");
    p.insert("keylocation", "prompt").expect("nvlist insert");
    p
}

/// A filesystem of a [`TestPool`], for one-line setups in the style of zrepl's
/// platformtest: `pool.fs("src").write("f", 4096, 1).snaps(&["a", "b"])`.
pub struct Fs<'p> {
    pool: &'p TestPool,
    rel: String,
    name: String,
}

impl Fs<'_> {
    /// The full name, `pool/rel`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The snapshot name `pool/rel@snap`.
    pub fn at(&self, snap: &str) -> String {
        format!("{}@{snap}", self.name)
    }

    /// The bookmark name `pool/rel#mark`.
    pub fn mark(&self, mark: &str) -> String {
        format!("{}#{mark}", self.name)
    }

    /// Where `file` in this filesystem is (by the pool root's mountpoint).
    pub fn path(&self, file: &str) -> PathBuf {
        self.pool.path(&self.rel).join(file)
    }

    /// Takes `@snap` with the library.
    pub fn snap(&self, snap: &str) -> &Self {
        crate::snap(&lzc(), &[&self.at(snap)]);
        self
    }

    /// Takes the snapshots in order, one call (one transaction group) each.
    pub fn snaps(&self, snaps: &[&str]) -> &Self {
        snaps.iter().fold(self, |fs, s| fs.snap(s))
    }

    /// Writes `len` pseudo-random bytes (from `seed`) to `file`.
    pub fn write(&self, file: &str, len: usize, seed: u64) -> &Self {
        write_random(&self.path(file), len, seed);
        self
    }

    /// Bookmarks `@snap` as `#mark` with the library.
    pub fn bookmark(&self, mark: &str, snap: &str) -> &Self {
        lzc()
            .bookmark(&[(bn(&self.mark(mark)), src(&self.at(snap)))])
            .unwrap_or_else(|e| panic!("bookmark {}: {e}", self.mark(mark)));
        self
    }

    /// Mounts it with the CLI (lzc_receive leaves received filesystems unmounted).
    pub fn mount(&self) -> &Self {
        mount(&self.name);
        self
    }

    /// The [`tree_digest`] of its files (mounted), to compare with another's.
    pub fn digest(&self) -> Vec<(PathBuf, u64, u64)> {
        tree_digest(&self.pool.path(&self.rel))
    }

    /// Receives a full stream of `@snap` (default flags) into `target` with the
    /// library, and returns `target` (unmounted), which may be in another pool.
    pub fn send_to<'q>(&self, snap: &str, target: Fs<'q>) -> Fs<'q> {
        let opts = libzfs::ReceiveOptions::default();
        replicate(&lzc(), &self.at(snap), None, target.name(), &opts);
        target
    }

    /// Holds `@snap` with `tag` (no cleanup descriptor).
    pub fn hold(&self, snap: &str, tag: &str) -> &Self {
        let hold = libzfs::Hold {
            snapshot: sn(&self.at(snap)),
            tag: tag.into(),
        };
        lzc()
            .hold(&[hold], None)
            .unwrap_or_else(|e| panic!("hold {}: {e}", self.at(snap)));
        self
    }
}

impl Default for TestPool {
    fn default() -> Self {
        TestPool::new()
    }
}

impl Drop for TestPool {
    fn drop(&mut self) {
        // Holds with cleanup fds and busy mounts can make the first destroy fail.
        for _ in 0..5 {
            let ok = Command::new("zpool")
                .args(["destroy", "-f", &self.name])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if ok {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let _ = std::fs::remove_file(&self.file);
        let _ = std::fs::remove_dir_all(&self.mnt);
    }
}

/// Writes `len` bytes of pseudo-random (incompressible) data to `path`.
pub fn write_random(path: &Path, len: usize, seed: u64) {
    std::fs::write(path, random_bytes(len, seed)).expect("write test data");
}

/// `len` pseudo-random (incompressible) bytes from `seed`.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut buf = Vec::with_capacity(len);
    while buf.len() < len {
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        buf.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    buf.truncate(len);
    buf
}

/// A digest of every file (path, size, content) under `dir`, for comparing trees.
pub fn tree_digest(dir: &Path) -> Vec<(PathBuf, u64, u64)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(PathBuf, u64, u64)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                if p.file_name().is_some_and(|n| n == ".zfs") {
                    continue;
                }
                walk(base, &p, out);
            } else if ft.is_file() {
                let data = std::fs::read(&p).unwrap();
                // FNV-1a: enough to tell trees apart in tests.
                let mut h: u64 = 0xcbf2_9ce4_8422_2325;
                for b in &data {
                    h ^= u64::from(*b);
                    h = h.wrapping_mul(0x100_0000_01b3);
                }
                out.push((
                    p.strip_prefix(base).unwrap().to_path_buf(),
                    data.len() as u64,
                    h,
                ));
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, dir, &mut v);
    v
}

/// The zrep binary built by scripts/test (`target/<profile>/zrep`), or `ZREP_BIN` when
/// set (scripts/test-package: the packaged one).
pub fn zrep_bin() -> PathBuf {
    let p = std::env::var_os("ZREP_BIN")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("ZREP_PROFILE_DIR")).join("zrep"));
    assert!(
        p.exists(),
        "{} is missing: build it with cargo build -p zrep",
        p.display()
    );
    p
}

/// Mounts a dataset with the CLI (lzc_receive leaves received datasets unmounted).
pub fn mount(ds: &str) {
    let out = Command::new("zfs")
        .args(["mount", ds])
        .output()
        .expect("run zfs mount");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || err.contains("already mounted"),
        "zfs mount {ds}: {err}"
    );
}

// ---- Helpers for the libzfs API tests (tests/lib_*.rs) ----

/// The libzfs handle (panics when /dev/zfs is missing).
pub fn lzc() -> libzfs::Zfs {
    require_zfs();
    libzfs::Zfs::open().expect("Zfs::open")
}

/// A dataset name (panics when malformed).
pub fn dn(s: &str) -> libzfs::DatasetName {
    libzfs::DatasetName::new(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// A snapshot name (panics when malformed).
pub fn sn(s: &str) -> libzfs::SnapshotName {
    libzfs::SnapshotName::new(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// A bookmark name (panics when malformed).
pub fn bn(s: &str) -> libzfs::BookmarkName {
    libzfs::BookmarkName::new(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// A send source (snapshot or bookmark) name.
pub fn src(s: &str) -> libzfs::SendSource {
    libzfs::SendSource::new(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// Takes snapshots with the library, panicking on failure.
pub fn snap(zfs: &libzfs::Zfs, names: &[&str]) {
    let v: Vec<_> = names.iter().map(|n| sn(n)).collect();
    zfs.snapshot(&v, None)
        .unwrap_or_else(|e| panic!("snapshot {names:?}: {e}"));
}

/// Creates an (unmounted) filesystem with the library.
pub fn lzc_create(zfs: &libzfs::Zfs, name: &str) {
    zfs.create(&dn(name), libzfs::DatasetType::Filesystem, None)
        .unwrap_or_else(|e| panic!("create {name}: {e}"));
}

/// `filesystems` filesystems `f00`, `f01`... under `pool`, each with snapshots `@r0`
/// to `@r{rounds-1}`, one batch per round (one transaction group each).
pub fn snapshot_grid(
    zfs: &libzfs::Zfs,
    pool: &TestPool,
    filesystems: usize,
    rounds: usize,
) -> Vec<String> {
    let fss: Vec<String> = (0..filesystems)
        .map(|i| {
            let fs = pool.ds(&format!("f{i:02}"));
            lzc_create(zfs, &fs);
            fs
        })
        .collect();
    for round in 0..rounds {
        let batch: Vec<_> = fss.iter().map(|f| sn(&format!("{f}@r{round}"))).collect();
        zfs.snapshot(&batch, None).unwrap();
    }
    fss
}

/// The error of a result that must have failed, with the expected kind.
#[track_caller]
pub fn expect_kind<T: std::fmt::Debug>(
    r: libzfs::Result<T>,
    kind: libzfs::ErrorKind,
) -> libzfs::Error {
    match r {
        Ok(v) => panic!("expected {kind:?}, got Ok({v:?})"),
        Err(e) => {
            assert_eq!(
                e.kind(),
                kind,
                "wrong kind; error: {e} / {e:?} / errno {:?}",
                e.errno()
            );
            e
        }
    }
}

/// The error of a result that must have failed, with the expected errno.
#[track_caller]
pub fn expect_errno<T: std::fmt::Debug>(r: libzfs::Result<T>, errno: i32) -> libzfs::Error {
    match r {
        Ok(v) => panic!("expected errno {errno}, got Ok({v:?})"),
        Err(e) => {
            assert_eq!(
                e.errno().map(|e| e.raw()),
                Some(errno),
                "wrong errno; error: {e} / {e:?}"
            );
            e
        }
    }
}

/// Checks a table of calls that must fail, each `(what, result, kind, mentions)`: the
/// exact kind, and every `mentions` text in the message. Returns the errors by `what`;
/// panics listing every row that is wrong.
#[track_caller]
pub fn expect_kinds<const N: usize>(
    rows: [(&'static str, libzfs::Result<()>, libzfs::ErrorKind, &[&str]); N],
) -> std::collections::BTreeMap<&'static str, libzfs::Error> {
    let mut errors = std::collections::BTreeMap::new();
    let mut wrong = Vec::new();
    for (what, r, kind, mentions) in rows {
        match r {
            Ok(()) => wrong.push(format!("{what}: expected {kind:?}, got Ok")),
            Err(e) => {
                wrong.extend(row_mismatch(what, &e, kind, mentions));
                assert!(errors.insert(what, e).is_none(), "{what}: two rows");
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    errors
}

/// What is wrong with a row of [`expect_kinds`]: its kind, or a text its message lacks.
fn row_mismatch(
    what: &str,
    e: &libzfs::Error,
    kind: libzfs::ErrorKind,
    mentions: &[&str],
) -> Option<String> {
    if e.kind() != kind {
        let errno = e.errno();
        let got = e.kind();
        return Some(format!(
            "{what}: {got:?}, not {kind:?}: {e} / {e:?} / errno {errno:?}"
        ));
    }
    let msg = e.to_string();
    let missing: Vec<_> = mentions.iter().filter(|m| !msg.contains(*m)).collect();
    (!missing.is_empty()).then(|| format!("{what}: {missing:?} not in {msg}"))
}

/// Sends `snap` (incremental from `from`) into a pipe and collects the stream.
pub fn send_bytes(
    zfs: &libzfs::Zfs,
    snap: &str,
    from: Option<&str>,
    flags: libzfs::SendFlags,
) -> libzfs::Result<Vec<u8>> {
    use std::io::Read;
    let (mut r, w) = os_pipe::pipe().expect("pipe");
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        r.read_to_end(&mut v).map(|_| v)
    });
    let from = from.map(src);
    let res = zfs.send(&sn(snap), from.as_ref(), w, flags);
    let data = reader.join().expect("reader thread").expect("read stream");
    res.map(|()| data)
}

/// Receives `data` through a pipe (a writer thread feeds it).
pub fn recv_bytes(
    zfs: &libzfs::Zfs,
    target: &str,
    data: &[u8],
    opts: &libzfs::ReceiveOptions,
) -> libzfs::Result<libzfs::Received> {
    use std::io::Write;
    let (r, mut w) = os_pipe::pipe().expect("pipe");
    let data = data.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&data);
    });
    let res = zfs.receive(target, &r, opts);
    drop(r);
    writer.join().expect("writer thread");
    res
}

/// Sends in a thread and receives on this one through a pipe; returns both results.
pub fn send_recv_raw(
    zfs: &libzfs::Zfs,
    snap: &str,
    from: Option<&str>,
    flags: libzfs::SendFlags,
    target: &str,
    opts: &libzfs::ReceiveOptions,
) -> (libzfs::Result<()>, libzfs::Result<libzfs::Received>) {
    let (r, w) = os_pipe::pipe().expect("pipe");
    let z = *zfs;
    let s = sn(snap);
    let f = from.map(src);
    let sender = std::thread::spawn(move || z.send(&s, f.as_ref(), w, flags));
    let received = zfs.receive(target, &r, opts);
    drop(r);
    (sender.join().expect("sender thread"), received)
}

/// Sends and receives; panics unless both succeed.
pub fn replicate(
    zfs: &libzfs::Zfs,
    snap: &str,
    from: Option<&str>,
    target: &str,
    opts: &libzfs::ReceiveOptions,
) -> libzfs::Received {
    let (s, r) = send_recv_raw(zfs, snap, from, libzfs::SendFlags::default(), target, opts);
    let r = r.unwrap_or_else(|e| panic!("receive {snap} into {target}: {e} / {e:?}"));
    s.unwrap_or_else(|e| panic!("send {snap}: {e}"));
    r
}

/// An nvlist of string properties.
pub fn str_props(pairs: &[(&str, &str)]) -> libzfs::NvList {
    let mut nv = libzfs::NvList::new();
    for (k, v) in pairs {
        nv.insert(k, *v).expect("nvlist insert");
    }
    nv
}

/// A dataset's resume token (the `zfs` CLI), if an interrupted receive left one.
pub fn resume_token(ds: &str) -> Option<String> {
    let v = zfs_get("receive_resume_token", ds);
    (v != "-" && !v.is_empty()).then_some(v)
}

/// Whether `name` exists, via the CLI (independent of the library).
pub fn cli_exists(name: &str) -> bool {
    Command::new("zfs")
        .args(["list", "-H", "-t", "all", name])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

pub mod campaign;
pub mod cli;
pub mod lzc_setup;
pub mod pair;
