//! libzfs against real pools: send (full, incremental, every flag), receive (full,
//! incremental, forced, refused, corrupt, truncated, resumable) and size estimates.
use std::os::fd::AsFd;

use libzfs::{ErrorKind, NvList, ReceiveOptions, ResumeToken, SendFlags};
use zrep_tests::*;

fn opts() -> ReceiveOptions {
    ReceiveOptions::default()
}

/// The options of a forced receive (`-F`).
fn force() -> ReceiveOptions {
    ReceiveOptions {
        force: true,
        ..Default::default()
    }
}

/// The options of a resumable receive (`-s`).
fn resumable() -> ReceiveOptions {
    ReceiveOptions {
        resumable: true,
        ..Default::default()
    }
}

/// The stream of `snap` (incremental from `from`), default flags.
fn stream(zfs: &libzfs::Zfs, snap: &str, from: Option<&str>) -> Vec<u8> {
    send_bytes(zfs, snap, from, SendFlags::default())
        .unwrap_or_else(|e| panic!("send {snap}: {e:?}"))
}

// ---------- send + receive ----------

#[test]
fn full_send_receive() {
    let pool = TestPool::new();
    let zfs = lzc();
    let (src, dst) = (pool.source("src"), pool.fs_at("dst"));
    let r = replicate(&zfs, &src.at("s1"), None, dst.name(), &opts());
    assert_eq!(r.snapshot.as_str(), dst.at("s1"));
    assert!(zfs.exists(&dst.at("s1")));
    assert_eq!(src.digest(), dst.mount().digest());
}

#[test]
fn received_header_describes_the_stream() {
    let pool = TestPool::new();
    let zfs = lzc();
    let (src, dst) = (pool.source_s2("src"), pool.fs_at("dst"));
    let (s1, s2) = (src.at("s1"), src.at("s2"));
    let r = replicate(&zfs, &s1, None, dst.name(), &opts());
    assert_eq!(r.header.toguid.to_string(), zfs_get("guid", &s1));
    assert_eq!(r.header.fromguid, 0);
    assert!(!r.header.is_incremental());
    assert_eq!(r.header.toname, s1);
    assert_eq!(r.header.snapshot_short_name(), Some("s1"));
    assert!(!r.header.is_compound() && !r.header.is_raw() && !r.header.byteswapped);
    assert_eq!(r.header.creation_time.to_string(), zfs_get("creation", &s1));
    let r2 = replicate(&zfs, &s2, Some(&s1), dst.name(), &opts());
    assert!(r2.header.is_incremental());
    assert_eq!(r2.header.fromguid.to_string(), zfs_get("guid", &s1));
    assert_eq!(r2.header.toguid.to_string(), zfs_get("guid", &s2));
    // The received snapshots keep the source guids.
    assert_eq!(zfs_get("guid", &dst.at("s2")), zfs_get("guid", &s2));
}

#[test]
fn received_bytes_match_the_stream_length() {
    let pool = TestPool::new();
    let zfs = lzc();
    let data = stream(&zfs, &pool.source("src").at("s1"), None);
    let r = recv_bytes(&zfs, &pool.ds("dst"), &data, &opts()).unwrap();
    assert_eq!(r.bytes, data.len() as u64);
    assert!(r.property_errors.is_empty());
}

#[test]
fn incremental_send_receive() {
    let pool = TestPool::new();
    let zfs = lzc();
    let (src, dst) = pool.replicated("src", "dst");
    let r = replicate(
        &zfs,
        &src.at("s2"),
        Some(&src.at("s1")),
        dst.name(),
        &opts(),
    );
    assert_eq!(r.snapshot.as_str(), dst.at("s2"));
    assert_eq!(src.digest(), dst.mount().digest());
    assert!(!dst.path("dir/b").exists());
}

#[test]
fn receive_into_explicit_snapshot_name() {
    let pool = TestPool::new();
    let zfs = lzc();
    let src = pool.source("src");
    let target = pool.ds("dst@renamed");
    let r = replicate(&zfs, &src.at("s1"), None, &target, &opts());
    assert_eq!(r.snapshot.as_str(), target);
    assert!(zfs.exists(&target));
    assert!(!zfs.exists(&pool.ds("dst@s1")));
}

#[test]
fn receive_into_another_pool() {
    let (p1, p2) = (TestPool::new(), TestPool::new());
    let zfs = lzc();
    let src = p1.source_s2("src");
    let copy = src.send_to("s1", p2.fs_at("copy"));
    replicate(
        &zfs,
        &src.at("s2"),
        Some(&src.at("s1")),
        copy.name(),
        &opts(),
    );
    assert_eq!(src.digest(), copy.mount().digest());
}

#[test]
fn several_streams_on_one_descriptor() {
    let pool = TestPool::new();
    let zfs = lzc();
    let src = pool.source_s2("src");
    let mut data = stream(&zfs, &src.at("s1"), None);
    data.extend(stream(&zfs, &src.at("s2"), Some(&src.at("s1"))));
    use std::io::Write;
    let (r, mut w) = os_pipe::pipe().unwrap();
    let writer = std::thread::spawn(move || w.write_all(&data));
    let dst = pool.ds("dst");
    let a = zfs.receive(&dst, &r, &opts()).unwrap();
    let b = zfs.receive(&dst, &r, &opts()).unwrap();
    drop(r);
    writer.join().unwrap().unwrap();
    assert_eq!(a.snapshot.short_name(), "s1");
    assert_eq!(b.snapshot.short_name(), "s2");
}

#[test]
fn send_to_a_regular_file_then_receive_from_it() {
    let pool = TestPool::new();
    let zfs = lzc();
    let (src, dst) = (pool.source("src"), pool.fs_at("dst"));
    let path = test_dir().join(format!("{}.stream", pool.name()));
    let f = std::fs::File::create(&path).unwrap();
    zfs.send(&sn(&src.at("s1")), None, &f, SendFlags::default())
        .unwrap();
    drop(f);
    let f = std::fs::File::open(&path).unwrap();
    let r = zfs.receive(dst.name(), &f, &opts()).unwrap();
    assert_eq!(r.bytes, std::fs::metadata(&path).unwrap().len());
    std::fs::remove_file(&path).unwrap();
    assert_eq!(src.digest(), dst.mount().digest());
}

/// Sends `src@s1`, then `@s1` to `@s2`, with `flags`, and checks the copy's files.
fn flags_roundtrip(flags: SendFlags) {
    let pool = TestPool::new();
    let zfs = lzc();
    let (src, dst) = (mixed_data(&pool), pool.fs_at("dst"));
    for (from, to) in [(None, "s1"), (Some("s1"), "s2")] {
        let from = from.map(|f| src.at(f));
        let (s, r) = send_recv_raw(
            &zfs,
            &src.at(to),
            from.as_deref(),
            flags,
            dst.name(),
            &opts(),
        );
        r.unwrap_or_else(|e| panic!("{flags:?}: {e:?}"));
        s.unwrap();
    }
    assert_eq!(src.digest(), dst.mount().digest());
}

/// `src` with compressible, incompressible and tiny (embeddable) files in `@s1`, and
/// one more file in `@s2`.
fn mixed_data(pool: &TestPool) -> Fs<'_> {
    let src = pool.fs("src");
    src.write("random", 300_000, 5);
    std::fs::write(src.path("zeros"), vec![b'z'; 200_000]).unwrap();
    std::fs::write(src.path("tiny"), b"tiny file").unwrap();
    src.snap("s1").write("more", 100_000, 9).snap("s2");
    src
}

macro_rules! flag_tests {
    ($($name:ident: $l:expr, $e:expr, $c:expr, $r:expr;)*) => {$(
        #[test]
        fn $name() {
            flags_roundtrip(SendFlags {
                large_blocks: $l,
                embedded: $e,
                compressed: $c,
                raw: $r,
                saved: false,
            });
        }
    )*};
}

flag_tests! {
    flags_none: false, false, false, false;
    flags_l: true, false, false, false;
    flags_e: false, true, false, false;
    flags_le: true, true, false, false;
    flags_c: false, false, true, false;
    flags_lc: true, false, true, false;
    flags_ec: false, true, true, false;
    flags_lec: true, true, true, false;
    flags_w: false, false, false, true;
    flags_lw: true, false, false, true;
    flags_ew: false, true, false, true;
    flags_lew: true, true, false, true;
    flags_cw: false, false, true, true;
    flags_lcw: true, false, true, true;
    flags_ecw: false, true, true, true;
    flags_lecw: true, true, true, true;
}

#[test]
fn compressed_stream_of_compressed_fs_is_smaller() {
    let pool = TestPool::new();
    let zfs = lzc();
    let src = pool.fs("src");
    zrep_tests::zfs(&["set", "compression=lz4", src.name()]);
    std::fs::write(src.path("zeros"), vec![b'q'; 1 << 20]).unwrap();
    let s = src.snap("s").at("s");
    let plain = stream(&zfs, &s, None);
    let compressed = SendFlags {
        compressed: true,
        ..Default::default()
    };
    let comp = send_bytes(&zfs, &s, None, compressed).unwrap();
    assert!(
        comp.len() * 4 < plain.len(),
        "{} vs {}",
        comp.len(),
        plain.len()
    );
    let r = recv_bytes(&zfs, &pool.ds("dst"), &comp, &opts()).unwrap();
    assert_eq!(r.bytes, comp.len() as u64);
}

/// A clone's stream from its origin is an incremental clone stream; received with
/// `origin`, it makes a clone of that origin.
#[test]
fn clone_stream_from_its_origin() {
    let pool = TestPool::new();
    let zfs = lzc();
    let (src, clone) = (pool.source("src"), pool.fs_at("clone"));
    zfs.clone_snapshot(&dn(clone.name()), &sn(&src.at("s1")), None)
        .unwrap();
    clone.mount().write("extra", 20_000, 3).snap("c");
    let data = stream(&zfs, &clone.at("c"), Some(&src.at("s1")));
    let h = libzfs::StreamHeader::parse(&data).unwrap();
    assert!(h.is_incremental() && h.is_clone());
    // Receive the origin elsewhere, then the clone stream as a clone of it.
    let base = src.send_to("s1", pool.fs_at("base"));
    let o = ReceiveOptions {
        origin: Some(sn(&base.at("s1"))),
        ..Default::default()
    };
    let dst = pool.ds("dclone");
    let r = recv_bytes(&zfs, &dst, &data, &o).unwrap();
    assert!(r.header.is_clone());
    assert_eq!(zfs_get("origin", &dst), base.at("s1"));
}

// ---------- send errors ----------

/// Sends and estimates that fail, each with its kind, on one pool.
#[test]
fn failing_sends_have_their_kind() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.source_s2("src");
    let other = pool.fs("other");
    other.snap("o");
    let (s1, s2, none) = (fs.at("s1"), fs.at("s2"), fs.at("none"));
    let bytes =
        |snap: &str, from: &str| send_bytes(&zfs, snap, Some(from), SendFlags::default()).map(drop);
    let send_to = |w: std::os::fd::BorrowedFd| zfs.send(&sn(&s1), None, w, SendFlags::default());
    let space = |snap: &str, from: Option<&str>| {
        let from = from.map(src);
        zfs.send_space(&sn(snap), from.as_ref(), SendFlags::default())
            .map(drop)
    };
    let (closed, w) = os_pipe::pipe().unwrap();
    drop(closed);
    let read_only = test_dir().join(format!("{}.ro", pool.name()));
    std::fs::write(&read_only, b"").unwrap();
    let ro = std::fs::File::open(&read_only).unwrap();
    let (_r, open) = os_pipe::pipe().unwrap();
    let e = expect_kinds([
        (
            "send a missing snapshot",
            zfs.send(&sn(&none), None, open, SendFlags::default()),
            ErrorKind::NotFound,
            &[],
        ),
        (
            "send from a missing snapshot",
            bytes(&s1, &none),
            ErrorKind::NotFound,
            &[],
        ),
        (
            "send from an unrelated filesystem",
            bytes(&s1, &other.at("o")),
            ErrorKind::NotAnAncestor,
            &[],
        ),
        (
            "send from a later snapshot",
            bytes(&s1, &s2),
            ErrorKind::NotAnAncestor,
            &[],
        ),
        (
            "send from itself",
            bytes(&s1, &s1),
            ErrorKind::NotAnAncestor,
            &[],
        ),
        (
            "send into a pipe nobody reads",
            send_to(w.as_fd()),
            ErrorKind::Io,
            &[s1.as_str()],
        ),
        (
            "send to a read-only file",
            send_to(ro.as_fd()),
            ErrorKind::Io,
            &[],
        ),
        (
            "estimate a missing snapshot",
            space(&none, None),
            ErrorKind::NotFound,
            &["estimate"],
        ),
        (
            "estimate from a later snapshot",
            space(&s1, Some(&s2)),
            ErrorKind::NotAnAncestor,
            &[],
        ),
    ]);
    std::fs::remove_file(&read_only).unwrap();
    let errno = |what| e[what].errno().map(|n| n.raw());
    assert_eq!(errno("send into a pipe nobody reads"), Some(libc::EPIPE));
    assert_eq!(errno("send to a read-only file"), Some(libc::EBADF));
    // ZFS says EXDEV: the source is not an ancestor of the snapshot (which is not
    // "pools differ", though the errno is the same).
    for what in [
        "send from an unrelated filesystem",
        "send from a later snapshot",
        "estimate from a later snapshot",
    ] {
        assert_eq!(errno(what), Some(libc::EXDEV), "{what}: {:?}", e[what]);
    }
}

// ---------- send_space ----------

fn within_5_percent(estimate: u64, actual: usize) {
    let actual = actual as f64;
    let diff = (estimate as f64 - actual).abs() / actual;
    assert!(
        diff <= 0.05,
        "estimate {estimate} vs actual {actual} ({diff:.3})"
    );
}

/// Estimates of a full and an incremental send are within 5% of the stream, and grow
/// with the data.
#[test]
fn send_space_estimates_the_stream() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.fs("src");
    fs.snap("empty").write("d", 1 << 20, 4).snap("a");
    fs.write("e", 2 << 20, 5).snap("b");
    let space = |snap: &str, from: Option<&str>| {
        let from = from.map(|f| src(&fs.at(f)));
        zfs.send_space(&sn(&fs.at(snap)), from.as_ref(), SendFlags::default())
            .unwrap()
    };
    within_5_percent(space("b", None), stream(&zfs, &fs.at("b"), None).len());
    let incremental = stream(&zfs, &fs.at("b"), Some(&fs.at("a")));
    within_5_percent(space("b", Some("a")), incremental.len());
    let (empty, full) = (space("empty", None), space("a", None));
    assert!(full > empty + (1 << 20) * 9 / 10, "{empty} {full}");
}

// ---------- receive: refusals ----------

/// Targets that refuse `src`'s streams unless forced.
struct Refusing<'p> {
    /// A filesystem with a file and no snapshots: a full stream is refused.
    exists: Fs<'p>,
    /// A filesystem with a snapshot of its own: a full stream is refused.
    snapped: Fs<'p>,
    /// `src@s1` received, then a file written (mounted): the incremental is refused.
    modified: Fs<'p>,
    /// `src@s1` received, then a file written and `@local` taken (mounted): the
    /// incremental is refused (a later snapshot without changes would be accepted).
    later: Fs<'p>,
}

fn refusing<'p>(pool: &'p TestPool, src: &Fs) -> Refusing<'p> {
    let exists = pool.fs("exists");
    exists.write("junk", 1000, 1);
    let snapped = pool.lzc_fs("snapped");
    snapped.snap("old");
    let modified = src.send_to("s1", pool.fs_at("modified"));
    modified.mount().write("local", 50_000, 8);
    let later = src.send_to("s1", pool.fs_at("later"));
    later.mount().write("local", 20_000, 4).snap("local");
    lzc().sync(pool.name(), true).unwrap();
    Refusing {
        exists,
        snapped,
        modified,
        later,
    }
}

/// Receives the target refuses, each with its kind, on one pool; they change nothing.
#[test]
fn refused_receives_have_their_kind() {
    let pool = TestPool::new();
    let zfs = lzc();
    let src = pool.source_s2("src");
    let t = refusing(&pool, &src);
    let full = stream(&zfs, &src.at("s1"), None);
    let incr = stream(&zfs, &src.at("s2"), Some(&src.at("s1")));
    let other = pool.fs("other");
    let unrelated = other.snap("x").send_to("x", pool.fs_at("unrelated"));
    let twice = src.send_to("s1", pool.fs_at("twice"));
    recv_bytes(&zfs, twice.name(), &incr, &opts()).unwrap();
    let taken = src.send_to("s1", pool.fs_at("taken"));
    taken.snap("s2");
    let recv = |target: &str, data: &[u8]| recv_bytes(&zfs, target, data, &opts()).map(drop);
    expect_kinds([
        (
            "full into a filesystem",
            recv(t.exists.name(), &full),
            ErrorKind::AlreadyExists,
            &[t.exists.name()],
        ),
        (
            "full into a filesystem with snapshots",
            recv(t.snapped.name(), &full),
            ErrorKind::AlreadyExists,
            &[],
        ),
        (
            "full without the parent",
            recv(&pool.ds("no/parent"), &full),
            ErrorKind::NotFound,
            &[],
        ),
        (
            "incremental into a modified filesystem",
            recv(t.modified.name(), &incr),
            ErrorKind::DestinationModified,
            &["modified"],
        ),
        (
            "incremental under a later snapshot",
            recv(t.later.name(), &incr),
            ErrorKind::DestinationModified,
            &[],
        ),
        (
            "incremental into an unrelated filesystem",
            recv(unrelated.name(), &incr),
            ErrorKind::StreamMismatch,
            &["incremental source"],
        ),
        (
            "incremental into a missing filesystem",
            recv(&pool.ds("nothere"), &incr),
            ErrorKind::NotFound,
            &[],
        ),
        (
            "incremental received twice",
            recv(twice.name(), &incr),
            ErrorKind::AlreadyExists,
            &[],
        ),
        (
            "incremental whose snapshot name is taken",
            recv(taken.name(), &incr),
            ErrorKind::AlreadyExists,
            &[],
        ),
    ]);
    assert!(!zfs.exists(&t.exists.at("s1")));
    assert!(!zfs.exists(&t.modified.at("s2")));
    assert!(t.modified.path("local").exists());
}

/// A forced receive replaces what refused the stream: a filesystem without snapshots,
/// one with snapshots (2.1.11 and 2.3 alike), changes, and later snapshots.
#[test]
fn forced_receives_replace_the_target() {
    let pool = TestPool::new();
    let zfs = lzc();
    let src = pool.source_s2("src");
    let t = refusing(&pool, &src);
    let (s1, s2) = (src.at("s1"), src.at("s2"));
    // lzc_receive does not unmount: a mounted target would be left stale.
    zrep_tests::zfs(&["unmount", t.exists.name()]);
    replicate(&zfs, &s2, None, t.exists.name(), &force());
    assert!(zfs.exists(&t.exists.at("s2")));
    assert_eq!(src.digest(), t.exists.mount().digest());
    replicate(&zfs, &s1, None, t.snapped.name(), &force());
    assert_eq!(zfs_get("guid", &t.snapped.at("s1")), zfs_get("guid", &s1));
    replicate(&zfs, &s2, Some(&s1), t.modified.name(), &force());
    assert!(zfs.exists(&t.modified.at("s2")));
    t.modified.mount();
    assert!(!t.modified.path("local").exists());
    assert_eq!(src.digest(), t.modified.digest());
    replicate(&zfs, &s2, Some(&s1), t.later.name(), &force());
    assert!(!zfs.exists(&t.later.at("local")));
    assert!(zfs.exists(&t.later.at("s2")));
}

/// Streams that are not streams, or damaged ones, fail and leave no target.
#[test]
fn bad_streams_are_refused() {
    let pool = TestPool::new();
    let zfs = lzc();
    let full = stream(&zfs, &pool.source("src").at("s1"), None);
    let (closed, w) = os_pipe::pipe().unwrap();
    drop(w);
    let recv = |target: &str, data: &[u8]| recv_bytes(&zfs, target, data, &opts()).map(drop);
    let e = expect_kinds([
        (
            "garbage",
            recv(&pool.ds("junk"), &random_bytes(64 << 10, 12345)),
            ErrorKind::BadStream,
            &[],
        ),
        (
            "empty input",
            recv(&pool.ds("empty"), &[]),
            ErrorKind::BadStream,
            &["empty"],
        ),
        (
            "a descriptor at EOF straight away",
            zfs.receive(&pool.ds("closed"), closed.as_fd(), &opts())
                .map(drop),
            ErrorKind::BadStream,
            &["empty"],
        ),
        (
            "a short header",
            recv(&pool.ds("short"), &full[..100]),
            ErrorKind::BadStream,
            &["truncated"],
        ),
    ]);
    assert!(matches!(e["garbage"], libzfs::Error::Stream(_)), "{e:?}");
    // Flip bytes after the BEGIN record: the stream checksum no longer matches.
    let mut corrupt = full.clone();
    let n = corrupt.len();
    corrupt[n / 2..n / 2 + 64]
        .iter_mut()
        .for_each(|b| *b ^= 0xff);
    let e = recv(&pool.ds("corrupt"), &corrupt).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::BadStream | ErrorKind::InvalidArgument),
        "{e:?}"
    );
    let e = recv(&pool.ds("cut"), &full[..full.len() / 2]).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::StreamTruncated | ErrorKind::BadStream),
        "{e:?}"
    );
    assert!(!zfs.exists(&pool.ds("corrupt@s1")) && !zfs.exists(&pool.ds("cut@s1")));
    for gone in ["junk", "empty", "cut"] {
        // A non-resumable receive leaves nothing.
        assert!(!zfs.exists(&pool.ds(gone)), "{gone}");
    }
}

// ---------- resumable receive ----------

/// Receives `data` cut to `len` bytes, resumably: the receive fails as truncated and
/// leaves its state in `dst`.
fn receive_cut(zfs: &libzfs::Zfs, dst: &str, data: &[u8], len: usize) {
    let e = recv_bytes(zfs, dst, &data[..len], &resumable()).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::StreamTruncated | ErrorKind::BadStream),
        "{e:?}"
    );
}

/// A resumable full receive of `src@s1` (3 MiB) into `dst`, cut at two thirds: the
/// source, and the whole stream.
fn truncated_resumable<'p>(pool: &'p TestPool, zfs: &libzfs::Zfs, dst: &str) -> (Fs<'p>, Vec<u8>) {
    let src = pool.fs("src");
    src.write("big", 3 << 20, 11)
        .write("small", 10_000, 12)
        .snap("s1");
    let data = stream(zfs, &src.at("s1"), None);
    receive_cut(zfs, dst, &data, data.len() * 2 / 3);
    (src, data)
}

/// The resume token the library lists for `ds`.
fn listed_token(zfs: &libzfs::Zfs, ds: &str) -> Option<String> {
    let info = zfs.dataset(&dn(ds)).unwrap();
    info.expect("the target is there").receive_resume_token
}

/// Completes the interrupted receive into `dst`: sends from its resume token (in a
/// thread) and receives resumably.
fn resume(zfs: &libzfs::Zfs, dst: &str) -> libzfs::Received {
    let t = ResumeToken::parse(&zfs_get("receive_resume_token", dst)).unwrap();
    let (r, w) = os_pipe::pipe().unwrap();
    let sender = std::thread::spawn(move || lzc().send_from_token(&t, w));
    let got = zfs
        .receive(dst, &r, &resumable())
        .unwrap_or_else(|e| panic!("{e:?}"));
    drop(r);
    sender.join().unwrap().unwrap();
    got
}

#[test]
fn resumable_receive_leaves_a_token() {
    let pool = TestPool::new();
    let zfs = lzc();
    let dst = pool.ds("dst");
    let (src, data) = truncated_resumable(&pool, &zfs, &dst);
    let s = src.at("s1");
    let token = listed_token(&zfs, &dst).expect("a resume token");
    assert_eq!(token, zfs_get("receive_resume_token", &dst));
    let t = ResumeToken::parse(&token).unwrap();
    assert_eq!(t.to.as_str(), s);
    assert_eq!(t.toguid.to_string(), zfs_get("guid", &s));
    assert!(t.from.is_none());
    assert_eq!(t.fromguid, 0);
    // What is left to send is at most the whole stream.
    let left = zfs.send_space_from_token(&t).unwrap();
    assert!(left <= data.len() as u64 + 4096, "{left} vs {}", data.len());
}

#[test]
fn resume_completes_the_receive() {
    let pool = TestPool::new();
    let zfs = lzc();
    let dst = pool.fs_at("dst");
    let (src, _) = truncated_resumable(&pool, &zfs, dst.name());
    let got = resume(&zfs, dst.name());
    assert_eq!(got.snapshot.short_name(), "s1");
    assert_eq!(
        zfs_get("guid", &dst.at("s1")),
        zfs_get("guid", &src.at("s1"))
    );
    assert!(listed_token(&zfs, dst.name()).is_none());
    assert_eq!(src.digest(), dst.mount().digest());
}

#[test]
fn abort_resumable_receive_discards_the_state() {
    let pool = TestPool::new();
    let zfs = lzc();
    let dst = pool.ds("dst");
    let (_, data) = truncated_resumable(&pool, &zfs, &dst);
    assert!(zfs.abort_resumable_receive(&dn(&dst)).unwrap());
    assert!(!zfs.exists(&dst));
    assert!(!zfs.abort_resumable_receive(&dn(&dst)).unwrap_or(false));
    // A fresh receive now works.
    let r = recv_bytes(&zfs, &dst, &data, &opts()).unwrap();
    assert_eq!(r.snapshot.short_name(), "s1");
}

/// An interrupted full receive into a new 250-byte target: `dst/%recv` would be 256
/// bytes, which libzfs_core cuts, so abort must find the state in `dst` itself (the
/// kernel marks it inconsistent) without naming the child.
#[test]
fn abort_resumable_receive_on_a_250_byte_target() {
    let pool = TestPool::new();
    let zfs = lzc();
    let dst = pool.ds_of_len(250);
    truncated_resumable(&pool, &zfs, &dst);
    assert!(zfs.exists(&dst), "the partial target is kept");
    assert!(zfs.abort_resumable_receive(&dn(&dst)).unwrap());
    assert!(!zfs.exists(&dst));
    assert!(!zfs.abort_resumable_receive(&dn(&dst)).unwrap());
}

/// An incremental receive cut in half: `src@s1` received into `dst`, then 3 MiB
/// written and `src@s2` sent from @s1, only half of that stream received
/// (resumable): `dst` holds a resume token. Returns src, dst and the whole stream.
fn interrupted_incremental<'p>(pool: &'p TestPool, zfs: &libzfs::Zfs) -> (Fs<'p>, Fs<'p>, Vec<u8>) {
    let src = pool.fs("src");
    src.write("a", 100_000, 1).snap("s1");
    let dst = src.send_to("s1", pool.fs_at("dst"));
    src.write("b", 3 << 20, 2).snap("s2");
    let incr = stream(zfs, &src.at("s2"), Some(&src.at("s1")));
    receive_cut(zfs, dst.name(), &incr, incr.len() / 2);
    (src, dst, incr)
}

#[test]
fn resumable_incremental_receive_and_abort() {
    let pool = TestPool::new();
    let zfs = lzc();
    let (src, dst, incr) = interrupted_incremental(&pool, &zfs);
    let token = listed_token(&zfs, dst.name()).expect("token after incremental");
    let t = ResumeToken::parse(&token).unwrap();
    assert_eq!(t.fromguid.to_string(), zfs_get("guid", &src.at("s1")));
    // A second resumable receive is refused while the state exists.
    expect_kind(
        recv_bytes(&zfs, dst.name(), &incr, &resumable()),
        ErrorKind::Busy,
    );
    assert!(zfs.abort_resumable_receive(&dn(dst.name())).unwrap());
    assert!(listed_token(&zfs, dst.name()).is_none());
    assert!(zfs.exists(&dst.at("s1")), "the target itself stays");
    recv_bytes(&zfs, dst.name(), &incr, &opts()).unwrap();
    assert!(zfs.exists(&dst.at("s2")));
}

#[test]
fn resume_incremental_completes() {
    let pool = TestPool::new();
    let zfs = lzc();
    let (src, dst, _) = interrupted_incremental(&pool, &zfs);
    resume(&zfs, dst.name());
    assert_eq!(src.digest(), dst.mount().digest());
}

// ---------- receive options ----------

/// Where `ds`'s `prop` comes from (`local`, `inherited from ...`), via the CLI.
fn prop_source(prop: &str, ds: &str) -> String {
    let out = zrep_tests::zfs(&["get", "-H", "-o", "source", prop, ds]);
    out.trim().to_string()
}

#[test]
fn receive_props_override() {
    let pool = TestPool::new();
    let zfs = lzc();
    let src = pool.source("src");
    let mut props = NvList::new();
    props.insert("zrep:origin", "test").unwrap();
    // compression is an index property: lz4 is 15 (enum zio_compress).
    props.insert("compression", &15u64).unwrap();
    props.insert("recordsize", &(32u64 << 10)).unwrap();
    let o = ReceiveOptions {
        props: Some(props),
        ..Default::default()
    };
    let dst = pool.ds("dst");
    let r = replicate(&zfs, &src.at("s1"), None, &dst, &o);
    assert!(r.property_errors.is_empty(), "{:?}", r.property_errors);
    assert_eq!(zfs_get("zrep:origin", &dst), "test");
    assert_eq!(zfs_get("compression", &dst), "lz4");
    assert_eq!(zfs_get("recordsize", &dst), "32768");
    assert_eq!(prop_source("compression", &dst), "local");
}

#[test]
fn receive_exclude_inherits() {
    let pool = TestPool::new();
    let zfs = lzc();
    let src = pool.source("src");
    zrep_tests::zfs(&["set", "compression=gzip", pool.name()]);
    let o = ReceiveOptions {
        exclude: vec!["compression".into()],
        ..Default::default()
    };
    let dst = pool.ds("dst");
    replicate(&zfs, &src.at("s1"), None, &dst, &o);
    assert_eq!(zfs_get("compression", &dst), "gzip");
    let source = prop_source("compression", &dst);
    assert!(source.contains("inherited"), "{source}");
}
