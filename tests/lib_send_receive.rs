//! libzfs against real pools: send (full, incremental, every flag), receive (full,
//! incremental, forced, refused, corrupt, truncated, resumable) and size estimates.
use std::os::fd::AsFd;

use libzfs::{ErrorKind, NvList, ReceiveOptions, ResumeToken, SendFlags};
use zrep_tests::*;

/// A source fs with some data and snapshot @s1 (and @s2 after more data).
fn source(pool: &TestPool, zfs: &libzfs::Zfs, two: bool) -> String {
    let fs = pool.create("src");
    write_random(&pool.path("src/a"), 300_000, 1);
    std::fs::create_dir(pool.path("src/dir")).unwrap();
    write_random(&pool.path("src/dir/b"), 50_000, 2);
    snap(zfs, &[&format!("{fs}@s1")]);
    if two {
        write_random(&pool.path("src/c"), 200_000, 3);
        std::fs::remove_file(pool.path("src/dir/b")).unwrap();
        snap(zfs, &[&format!("{fs}@s2")]);
    }
    fs
}

fn same_tree(pool: &TestPool, a: &str, b: &str) {
    assert_eq!(tree_digest(&pool.path(a)), tree_digest(&pool.path(b)));
}

fn opts() -> ReceiveOptions {
    ReceiveOptions::default()
}

// ---------- send + receive ----------

#[test]
fn full_send_receive() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs, false);
    let dst = pool.ds("dst");
    let r = replicate(&zfs, &format!("{fs}@s1"), None, &dst, &opts());
    assert_eq!(r.snapshot.as_str(), format!("{dst}@s1"));
    assert!(zfs.exists(&format!("{dst}@s1")));
    mount(&dst);
    same_tree(&pool, "src", "dst");
}

#[test]
fn received_header_describes_the_stream() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs, true);
    let s1 = format!("{fs}@s1");
    let s2 = format!("{fs}@s2");
    let dst = pool.ds("dst");
    let r = replicate(&zfs, &s1, None, &dst, &opts());
    assert_eq!(r.header.toguid.to_string(), zfs_get("guid", &s1));
    assert_eq!(r.header.fromguid, 0);
    assert!(!r.header.is_incremental());
    assert_eq!(r.header.toname, s1);
    assert_eq!(r.header.snapshot_short_name(), Some("s1"));
    assert!(!r.header.is_compound() && !r.header.is_raw() && !r.header.byteswapped);
    assert_eq!(r.header.creation_time.to_string(), zfs_get("creation", &s1));
    let r2 = replicate(&zfs, &s2, Some(&s1), &dst, &opts());
    assert!(r2.header.is_incremental());
    assert_eq!(r2.header.fromguid.to_string(), zfs_get("guid", &s1));
    assert_eq!(r2.header.toguid.to_string(), zfs_get("guid", &s2));
    // The received snapshots keep the source guids.
    assert_eq!(zfs_get("guid", &format!("{dst}@s2")), zfs_get("guid", &s2));
}

#[test]
fn received_bytes_match_the_stream_length() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs, false);
    let data = send_bytes(&zfs, &format!("{fs}@s1"), None, SendFlags::default()).unwrap();
    let r = recv_bytes(&zfs, &pool.ds("dst"), &data, &opts()).unwrap();
    assert_eq!(r.bytes, data.len() as u64);
    assert!(r.property_errors.is_empty());
}

#[test]
fn incremental_send_receive() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs, true);
    let dst = pool.ds("dst");
    replicate(&zfs, &format!("{fs}@s1"), None, &dst, &opts());
    let r = replicate(
        &zfs,
        &format!("{fs}@s2"),
        Some(&format!("{fs}@s1")),
        &dst,
        &opts(),
    );
    assert_eq!(r.snapshot.as_str(), format!("{dst}@s2"));
    mount(&dst);
    same_tree(&pool, "src", "dst");
    assert!(!pool.path("dst/dir/b").exists());
}

#[test]
fn receive_into_explicit_snapshot_name() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs, false);
    let target = pool.ds("dst@renamed");
    let r = replicate(&zfs, &format!("{fs}@s1"), None, &target, &opts());
    assert_eq!(r.snapshot.as_str(), target);
    assert!(zfs.exists(&target));
    assert!(!zfs.exists(&pool.ds("dst@s1")));
}

#[test]
fn receive_into_another_pool() {
    let p1 = TestPool::new();
    let p2 = TestPool::new();
    let zfs = lzc();
    let fs = source(&p1, &zfs, true);
    let dst = p2.ds("copy");
    replicate(&zfs, &format!("{fs}@s1"), None, &dst, &opts());
    replicate(
        &zfs,
        &format!("{fs}@s2"),
        Some(&format!("{fs}@s1")),
        &dst,
        &opts(),
    );
    mount(&dst);
    assert_eq!(tree_digest(&p1.path("src")), tree_digest(&p2.path("copy")));
}

#[test]
fn several_streams_on_one_descriptor() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs, true);
    let mut data = send_bytes(&zfs, &format!("{fs}@s1"), None, SendFlags::default()).unwrap();
    data.extend(
        send_bytes(
            &zfs,
            &format!("{fs}@s2"),
            Some(&format!("{fs}@s1")),
            SendFlags::default(),
        )
        .unwrap(),
    );
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
    let fs = source(&pool, &zfs, false);
    let path = test_dir().join(format!("{}.stream", pool.name()));
    let f = std::fs::File::create(&path).unwrap();
    zfs.send(&sn(&format!("{fs}@s1")), None, &f, SendFlags::default())
        .unwrap();
    drop(f);
    let f = std::fs::File::open(&path).unwrap();
    let r = zfs.receive(&pool.ds("dst"), &f, &opts()).unwrap();
    assert_eq!(r.bytes, std::fs::metadata(&path).unwrap().len());
    std::fs::remove_file(&path).unwrap();
    mount(&pool.ds("dst"));
    same_tree(&pool, "src", "dst");
}

fn flags_roundtrip(flags: SendFlags) {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("src");
    zfs_tests_data(&pool);
    snap(&zfs, &[&format!("{fs}@s1")]);
    write_random(&pool.path("src/more"), 100_000, 9);
    snap(&zfs, &[&format!("{fs}@s2")]);
    let dst = pool.ds("dst");
    let (s, r) = send_recv_raw(&zfs, &format!("{fs}@s1"), None, flags, &dst, &opts());
    r.unwrap_or_else(|e| panic!("{flags:?}: {e:?}"));
    s.unwrap();
    let (s, r) = send_recv_raw(
        &zfs,
        &format!("{fs}@s2"),
        Some(&format!("{fs}@s1")),
        flags,
        &dst,
        &opts(),
    );
    r.unwrap_or_else(|e| panic!("{flags:?}: {e:?}"));
    s.unwrap();
    mount(&dst);
    same_tree(&pool, "src", "dst");
}

/// Data with compressible, incompressible and tiny (embeddable) files.
fn zfs_tests_data(pool: &TestPool) {
    write_random(&pool.path("src/random"), 300_000, 5);
    std::fs::write(pool.path("src/zeros"), vec![b'z'; 200_000]).unwrap();
    std::fs::write(pool.path("src/tiny"), b"tiny file").unwrap();
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
    let fs = pool.create("src");
    zrep_tests::zfs(&["set", "compression=lz4", &fs]);
    std::fs::write(pool.path("src/zeros"), vec![b'q'; 1 << 20]).unwrap();
    let s = format!("{fs}@s");
    snap(&zfs, &[&s]);
    let plain = send_bytes(&zfs, &s, None, SendFlags::default()).unwrap();
    let comp = send_bytes(
        &zfs,
        &s,
        None,
        SendFlags {
            compressed: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(
        comp.len() * 4 < plain.len(),
        "{} vs {}",
        comp.len(),
        plain.len()
    );
    let r = recv_bytes(&zfs, &pool.ds("dst"), &comp, &opts()).unwrap();
    assert_eq!(r.bytes, comp.len() as u64);
}

// ---------- send errors ----------

#[test]
fn send_to_read_only_fd_is_an_error() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs, false);
    let path = test_dir().join(format!("{}.ro", pool.name()));
    std::fs::write(&path, b"").unwrap();
    let f = std::fs::File::open(&path).unwrap();
    let e = zfs
        .send(&sn(&format!("{fs}@s1")), None, &f, SendFlags::default())
        .unwrap_err();
    assert_eq!(e.errno().unwrap().raw(), libc::EBADF, "{e:?}");
    assert_eq!(e.kind(), ErrorKind::Io);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn send_to_broken_pipe_is_io() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("src");
    write_random(&pool.path("src/big"), 4 << 20, 7);
    let s = format!("{fs}@s");
    snap(&zfs, &[&s]);
    let (r, w) = os_pipe::pipe().unwrap();
    drop(r);
    let e = expect_kind(
        zfs.send(&sn(&s), None, w, SendFlags::default()),
        ErrorKind::Io,
    );
    assert_eq!(e.errno().unwrap().raw(), libc::EPIPE, "{e:?}");
    assert!(e.to_string().contains(&s), "{e}");
}

#[test]
fn send_missing_snapshot_is_not_found() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("src");
    let (_r, w) = os_pipe::pipe().unwrap();
    expect_kind(
        zfs.send(&sn(&format!("{fs}@none")), None, w, SendFlags::default()),
        ErrorKind::NotFound,
    );
}

#[test]
fn send_from_missing_snapshot_is_not_found() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs, false);
    let r = send_bytes(
        &zfs,
        &format!("{fs}@s1"),
        Some(&format!("{fs}@none")),
        SendFlags::default(),
    );
    expect_kind(r, ErrorKind::NotFound);
}

#[test]
fn send_incremental_from_unrelated_fs_fails() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs, false);
    let other = pool.create("other");
    snap(&zfs, &[&format!("{other}@o")]);
    let e = send_bytes(
        &zfs,
        &format!("{fs}@s1"),
        Some(&format!("{other}@o")),
        SendFlags::default(),
    )
    .unwrap_err();
    // ZFS says EXDEV: the source is not an ancestor of the snapshot (which is not
    // "pools differ", though the errno is the same).
    assert_eq!(e.errno().unwrap().raw(), libc::EXDEV, "{e:?}");
    assert_ne!(e.kind(), ErrorKind::PoolsDiffer, "{e}");
}

#[test]
fn send_incremental_in_wrong_order_fails() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs, true);
    let e = send_bytes(
        &zfs,
        &format!("{fs}@s1"),
        Some(&format!("{fs}@s2")),
        SendFlags::default(),
    )
    .unwrap_err();
    assert_eq!(e.errno().unwrap().raw(), libc::EXDEV, "{e:?}");
}

#[test]
fn send_incremental_from_itself_fails() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs, false);
    let s = format!("{fs}@s1");
    let e = send_bytes(&zfs, &s, Some(&s), SendFlags::default()).unwrap_err();
    assert!(e.errno().is_some(), "{e:?}");
}

#[test]
fn send_from_clone_origin_works() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs, false);
    let s1 = format!("{fs}@s1");
    let clone = pool.ds("clone");
    zfs.clone_snapshot(&dn(&clone), &sn(&s1), None).unwrap();
    snap(&zfs, &[&format!("{clone}@c")]);
    let data = send_bytes(&zfs, &format!("{clone}@c"), Some(&s1), SendFlags::default()).unwrap();
    let h = libzfs::StreamHeader::parse(&data).unwrap();
    assert!(h.is_incremental() && h.is_clone());
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

#[test]
fn send_space_full_is_accurate() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("src");
    write_random(&pool.path("src/d"), 2 << 20, 4);
    let s = format!("{fs}@s");
    snap(&zfs, &[&s]);
    let est = zfs.send_space(&sn(&s), None, SendFlags::default()).unwrap();
    let data = send_bytes(&zfs, &s, None, SendFlags::default()).unwrap();
    within_5_percent(est, data.len());
}

#[test]
fn send_space_incremental_is_accurate() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("src");
    write_random(&pool.path("src/d"), 1 << 20, 4);
    snap(&zfs, &[&format!("{fs}@a")]);
    write_random(&pool.path("src/e"), 2 << 20, 5);
    snap(&zfs, &[&format!("{fs}@b")]);
    let from = src(&format!("{fs}@a"));
    let est = zfs
        .send_space(&sn(&format!("{fs}@b")), Some(&from), SendFlags::default())
        .unwrap();
    let data = send_bytes(
        &zfs,
        &format!("{fs}@b"),
        Some(&format!("{fs}@a")),
        SendFlags::default(),
    )
    .unwrap();
    within_5_percent(est, data.len());
}

#[test]
fn send_space_missing_is_not_found() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("src");
    let e = expect_kind(
        zfs.send_space(&sn(&format!("{fs}@no")), None, SendFlags::default()),
        ErrorKind::NotFound,
    );
    assert!(e.to_string().contains("estimate"), "{e}");
}

#[test]
fn send_space_wrong_order_fails() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs, true);
    let e = zfs
        .send_space(
            &sn(&format!("{fs}@s1")),
            Some(&src(&format!("{fs}@s2"))),
            SendFlags::default(),
        )
        .unwrap_err();
    assert_eq!(e.errno().unwrap().raw(), libc::EXDEV, "{e:?}");
}

#[test]
fn send_space_grows_with_data() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("src");
    snap(&zfs, &[&format!("{fs}@empty")]);
    write_random(&pool.path("src/d"), 1 << 20, 4);
    snap(&zfs, &[&format!("{fs}@full")]);
    let a = zfs
        .send_space(&sn(&format!("{fs}@empty")), None, SendFlags::default())
        .unwrap();
    let b = zfs
        .send_space(&sn(&format!("{fs}@full")), None, SendFlags::default())
        .unwrap();
    assert!(b > a + (1 << 20) * 9 / 10, "{a} {b}");
}

// ---------- receive: refusals ----------

#[test]
fn receive_full_into_existing_fs_is_already_exists() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs, false);
    let dst = pool.create("dst");
    let (_, r) = send_recv_raw(
        &zfs,
        &format!("{fs}@s1"),
        None,
        SendFlags::default(),
        &dst,
        &opts(),
    );
    let e = expect_kind(r, ErrorKind::AlreadyExists);
    assert!(e.to_string().contains(&dst), "{e}");
    assert!(!zfs.exists(&format!("{dst}@s1")));
}

#[test]
fn force_receive_full_into_existing_fs_without_snapshots() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs, false);
    let dst = pool.create("dst");
    write_random(&pool.path("dst/junk"), 1000, 1);
    // lzc_receive does not unmount: a mounted target would be left stale.
    zrep_tests::zfs(&["unmount", &dst]);
    let o = ReceiveOptions {
        force: true,
        ..Default::default()
    };
    replicate(&zfs, &format!("{fs}@s1"), None, &dst, &o);
    assert!(zfs.exists(&format!("{dst}@s1")));
    mount(&dst);
    same_tree(&pool, "src", "dst");
}

#[test]
fn force_receive_full_into_fs_with_snapshots_replaces_it() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs, false);
    let dst = pool.ds("dst");
    lzc_create(&zfs, &dst);
    snap(&zfs, &[&format!("{dst}@old")]);
    let (_, r) = send_recv_raw(
        &zfs,
        &format!("{fs}@s1"),
        None,
        SendFlags::default(),
        &dst,
        &opts(),
    );
    expect_kind(r, ErrorKind::AlreadyExists);
    let o = ReceiveOptions {
        force: true,
        ..Default::default()
    };
    // A forced full receive replaces a filesystem with snapshots (2.1.11 and 2.3 alike).
    replicate(&zfs, &format!("{fs}@s1"), None, &dst, &o);
    assert_eq!(
        zfs_get("guid", &format!("{dst}@s1")),
        zfs_get("guid", &format!("{fs}@s1"))
    );
}

#[test]
fn receive_full_without_parent_is_not_found() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs, false);
    let (_, r) = send_recv_raw(
        &zfs,
        &format!("{fs}@s1"),
        None,
        SendFlags::default(),
        &pool.ds("no/parent"),
        &opts(),
    );
    expect_kind(r, ErrorKind::NotFound);
}

#[test]
fn receive_incremental_into_modified_fs_is_destination_modified() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs, true);
    let dst = pool.ds("dst");
    replicate(&zfs, &format!("{fs}@s1"), None, &dst, &opts());
    mount(&dst);
    write_random(&pool.path("dst/local"), 50_000, 8);
    zfs.sync(pool.name(), true).unwrap();
    let (_, r) = send_recv_raw(
        &zfs,
        &format!("{fs}@s2"),
        Some(&format!("{fs}@s1")),
        SendFlags::default(),
        &dst,
        &opts(),
    );
    let e = expect_kind(r, ErrorKind::DestinationModified);
    assert!(e.to_string().contains("modified"), "{e}");
    assert!(!zfs.exists(&format!("{dst}@s2")));
    assert!(pool.path("dst/local").exists());
}

#[test]
fn force_receive_incremental_into_modified_fs() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs, true);
    let dst = pool.ds("dst");
    replicate(&zfs, &format!("{fs}@s1"), None, &dst, &opts());
    mount(&dst);
    write_random(&pool.path("dst/local"), 50_000, 8);
    zfs.sync(pool.name(), true).unwrap();
    let o = ReceiveOptions {
        force: true,
        ..Default::default()
    };
    replicate(
        &zfs,
        &format!("{fs}@s2"),
        Some(&format!("{fs}@s1")),
        &dst,
        &o,
    );
    assert!(zfs.exists(&format!("{dst}@s2")));
    mount(&dst);
    assert!(!pool.path("dst/local").exists());
    same_tree(&pool, "src", "dst");
}

#[test]
fn force_receive_incremental_discards_later_snapshots() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs, true);
    let dst = pool.ds("dst");
    replicate(&zfs, &format!("{fs}@s1"), None, &dst, &opts());
    // A later snapshot with changes in it (one without changes would be accepted).
    mount(&dst);
    write_random(&pool.path("dst/local"), 20_000, 4);
    snap(&zfs, &[&format!("{dst}@local")]);
    let (_, r) = send_recv_raw(
        &zfs,
        &format!("{fs}@s2"),
        Some(&format!("{fs}@s1")),
        SendFlags::default(),
        &dst,
        &opts(),
    );
    // Without force, a later snapshot on the target refuses the stream.
    expect_kind(r, ErrorKind::DestinationModified);
    let o = ReceiveOptions {
        force: true,
        ..Default::default()
    };
    replicate(
        &zfs,
        &format!("{fs}@s2"),
        Some(&format!("{fs}@s1")),
        &dst,
        &o,
    );
    assert!(!zfs.exists(&format!("{dst}@local")));
    assert!(zfs.exists(&format!("{dst}@s2")));
}

#[test]
fn receive_incremental_with_source_missing_is_stream_mismatch() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs, true);
    // The target holds an unrelated filesystem.
    let other = pool.create("other");
    snap(&zfs, &[&format!("{other}@x")]);
    let dst = pool.ds("dst");
    replicate(&zfs, &format!("{other}@x"), None, &dst, &opts());
    let (_, r) = send_recv_raw(
        &zfs,
        &format!("{fs}@s2"),
        Some(&format!("{fs}@s1")),
        SendFlags::default(),
        &dst,
        &opts(),
    );
    let e = expect_kind(r, ErrorKind::StreamMismatch);
    assert!(e.to_string().contains("incremental source"), "{e}");
}

#[test]
fn receive_incremental_into_missing_fs_is_not_found() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs, true);
    let (_, r) = send_recv_raw(
        &zfs,
        &format!("{fs}@s2"),
        Some(&format!("{fs}@s1")),
        SendFlags::default(),
        &pool.ds("nothere"),
        &opts(),
    );
    expect_kind(r, ErrorKind::NotFound);
}

#[test]
fn receive_incremental_twice_fails() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs, true);
    let dst = pool.ds("dst");
    replicate(&zfs, &format!("{fs}@s1"), None, &dst, &opts());
    let incr = send_bytes(
        &zfs,
        &format!("{fs}@s2"),
        Some(&format!("{fs}@s1")),
        SendFlags::default(),
    )
    .unwrap();
    recv_bytes(&zfs, &dst, &incr, &opts()).unwrap();
    let e = recv_bytes(&zfs, &dst, &incr, &opts()).unwrap_err();
    assert!(e.errno().is_some(), "{e:?}");
}

#[test]
fn receive_incremental_snapshot_name_taken_is_already_exists() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs, true);
    let dst = pool.ds("dst");
    replicate(&zfs, &format!("{fs}@s1"), None, &dst, &opts());
    let incr = send_bytes(
        &zfs,
        &format!("{fs}@s2"),
        Some(&format!("{fs}@s1")),
        SendFlags::default(),
    )
    .unwrap();
    snap(&zfs, &[&format!("{dst}@s2")]);
    expect_kind(
        recv_bytes(&zfs, &dst, &incr, &opts()),
        ErrorKind::AlreadyExists,
    );
}

#[test]
fn receive_garbage_is_bad_stream_and_leaves_no_target() {
    let pool = TestPool::new();
    let zfs = lzc();
    let mut junk = vec![0u8; 64 << 10];
    let mut x = 12345u64;
    for b in junk.iter_mut() {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *b = (x >> 33) as u8;
    }
    let dst = pool.ds("dst");
    let e = expect_kind(recv_bytes(&zfs, &dst, &junk, &opts()), ErrorKind::BadStream);
    assert!(matches!(e, libzfs::Error::Stream(_)), "{e:?}");
    assert!(!zfs.exists(&dst));
}

#[test]
fn receive_empty_input_fails() {
    let pool = TestPool::new();
    let zfs = lzc();
    let dst = pool.ds("dst");
    let e = expect_kind(recv_bytes(&zfs, &dst, &[], &opts()), ErrorKind::BadStream);
    assert!(e.to_string().contains("empty"), "{e}");
    assert!(!zfs.exists(&dst));
}

#[test]
fn receive_short_header_fails() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs, false);
    let data = send_bytes(&zfs, &format!("{fs}@s1"), None, SendFlags::default()).unwrap();
    let e = expect_kind(
        recv_bytes(&zfs, &pool.ds("dst"), &data[..100], &opts()),
        ErrorKind::BadStream,
    );
    assert!(e.to_string().contains("truncated"), "{e}");
}

#[test]
fn receive_corrupted_payload_fails() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs, false);
    let mut data = send_bytes(&zfs, &format!("{fs}@s1"), None, SendFlags::default()).unwrap();
    // Flip bytes after the BEGIN record: the stream checksum no longer matches.
    let n = data.len();
    for b in &mut data[n / 2..n / 2 + 64] {
        *b ^= 0xff;
    }
    let dst = pool.ds("dst");
    let e = recv_bytes(&zfs, &dst, &data, &opts()).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::BadStream | ErrorKind::InvalidArgument),
        "{e:?}"
    );
    assert!(!zfs.exists(&format!("{dst}@s1")));
}

#[test]
fn receive_truncated_stream_fails() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs, false);
    let data = send_bytes(&zfs, &format!("{fs}@s1"), None, SendFlags::default()).unwrap();
    let dst = pool.ds("dst");
    let e = recv_bytes(&zfs, &dst, &data[..data.len() / 2], &opts()).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::StreamTruncated | ErrorKind::BadStream),
        "{e:?}"
    );
    assert!(!zfs.exists(&format!("{dst}@s1")));
    assert!(!zfs.exists(&dst), "a non-resumable receive leaves nothing");
}

// ---------- resumable receive ----------

fn truncated_resumable(pool: &TestPool, zfs: &libzfs::Zfs) -> (String, String, Vec<u8>) {
    truncated_resumable_into(pool, zfs, &pool.ds("dst"))
}

/// A resumable full receive of src@s1 into `dst`, cut at two thirds: (the snapshot,
/// `dst`, the whole stream).
fn truncated_resumable_into(
    pool: &TestPool,
    zfs: &libzfs::Zfs,
    dst: &str,
) -> (String, String, Vec<u8>) {
    let fs = pool.create("src");
    write_random(&pool.path("src/big"), 3 << 20, 11);
    write_random(&pool.path("src/small"), 10_000, 12);
    let s = format!("{fs}@s1");
    snap(zfs, &[&s]);
    let data = send_bytes(zfs, &s, None, SendFlags::default()).unwrap();
    let o = ReceiveOptions {
        resumable: true,
        ..Default::default()
    };
    let e = recv_bytes(zfs, dst, &data[..data.len() * 2 / 3], &o).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::StreamTruncated | ErrorKind::BadStream),
        "{e:?}"
    );
    (s, dst.to_string(), data)
}

#[test]
fn resumable_receive_leaves_a_token() {
    let pool = TestPool::new();
    let zfs = lzc();
    let (s, dst, _) = truncated_resumable(&pool, &zfs);
    let info = zfs
        .dataset(&dn(&dst))
        .unwrap()
        .expect("partial target kept");
    let token = info.receive_resume_token.expect("a resume token");
    assert_eq!(token, zfs_get("receive_resume_token", &dst));
    let t = ResumeToken::parse(&token).unwrap();
    assert_eq!(t.to.as_str(), s);
    assert_eq!(t.toguid.to_string(), zfs_get("guid", &s));
    assert!(t.from.is_none());
    assert_eq!(t.fromguid, 0);
}

#[test]
fn resume_completes_the_receive() {
    let pool = TestPool::new();
    let zfs = lzc();
    let (s, dst, _) = truncated_resumable(&pool, &zfs);
    let token = zfs_get("receive_resume_token", &dst);
    let t = ResumeToken::parse(&token).unwrap();
    let (r, w) = os_pipe::pipe().unwrap();
    let t2 = t.clone();
    let sender = std::thread::spawn(move || lzc().send_from_token(&t2, w));
    let o = ReceiveOptions {
        resumable: true,
        ..Default::default()
    };
    let got = zfs
        .receive(&dst, &r, &o)
        .unwrap_or_else(|e| panic!("{e:?}"));
    drop(r);
    sender.join().unwrap().unwrap();
    assert_eq!(got.snapshot.short_name(), "s1");
    assert_eq!(zfs_get("guid", &format!("{dst}@s1")), zfs_get("guid", &s));
    assert!(zfs
        .dataset(&dn(&dst))
        .unwrap()
        .unwrap()
        .receive_resume_token
        .is_none());
    mount(&dst);
    same_tree(&pool, "src", "dst");
}

#[test]
fn send_space_from_token_is_at_most_the_full_size() {
    let pool = TestPool::new();
    let zfs = lzc();
    let (_, dst, data) = truncated_resumable(&pool, &zfs);
    let t = ResumeToken::parse(&zfs_get("receive_resume_token", &dst)).unwrap();
    let left = zfs.send_space_from_token(&t).unwrap();
    assert!(left <= data.len() as u64 + 4096, "{left} vs {}", data.len());
}

#[test]
fn abort_resumable_receive_discards_the_state() {
    let pool = TestPool::new();
    let zfs = lzc();
    let (_, dst, data) = truncated_resumable(&pool, &zfs);
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
    truncated_resumable_into(&pool, &zfs, &dst);
    assert!(zfs.exists(&dst), "the partial target is kept");
    assert!(zfs.abort_resumable_receive(&dn(&dst)).unwrap());
    assert!(!zfs.exists(&dst));
    assert!(!zfs.abort_resumable_receive(&dn(&dst)).unwrap());
}

/// An incremental receive cut in half: `src@s1` received into `dst`, then 3 MiB
/// written and `src@s2` sent from @s1, only half of that stream received
/// (resumable): `dst` holds a resume token.
struct Interrupted {
    fs: String,
    dst: String,
    /// The whole incremental stream.
    incr: Vec<u8>,
    /// The resumable receive's options.
    o: ReceiveOptions,
}

fn interrupted_incremental(pool: &TestPool, zfs: &libzfs::Zfs) -> Interrupted {
    let fs = pool.create("src");
    write_random(&pool.path("src/a"), 100_000, 1);
    snap(zfs, &[&format!("{fs}@s1")]);
    let dst = pool.ds("dst");
    replicate(zfs, &format!("{fs}@s1"), None, &dst, &opts());
    write_random(&pool.path("src/b"), 3 << 20, 2);
    snap(zfs, &[&format!("{fs}@s2")]);
    let incr = send_bytes(
        zfs,
        &format!("{fs}@s2"),
        Some(&format!("{fs}@s1")),
        SendFlags::default(),
    )
    .unwrap();
    let o = ReceiveOptions {
        resumable: true,
        ..Default::default()
    };
    assert!(recv_bytes(zfs, &dst, &incr[..incr.len() / 2], &o).is_err());
    Interrupted { fs, dst, incr, o }
}

#[test]
fn resumable_incremental_receive_and_abort() {
    let pool = TestPool::new();
    let zfs = lzc();
    let Interrupted { fs, dst, incr, o } = interrupted_incremental(&pool, &zfs);
    let token = zfs
        .dataset(&dn(&dst))
        .unwrap()
        .unwrap()
        .receive_resume_token;
    let t = ResumeToken::parse(&token.expect("token after incremental")).unwrap();
    assert_eq!(t.fromguid.to_string(), zfs_get("guid", &format!("{fs}@s1")));
    // A second resumable receive is refused while the state exists.
    let again = recv_bytes(&zfs, &dst, &incr, &o);
    assert!(again.is_err(), "{again:?}");
    assert!(zfs.abort_resumable_receive(&dn(&dst)).unwrap());
    assert!(zfs
        .dataset(&dn(&dst))
        .unwrap()
        .unwrap()
        .receive_resume_token
        .is_none());
    assert!(zfs.exists(&format!("{dst}@s1")), "the target itself stays");
    recv_bytes(&zfs, &dst, &incr, &opts()).unwrap();
    assert!(zfs.exists(&format!("{dst}@s2")));
}

#[test]
fn resume_incremental_completes() {
    let pool = TestPool::new();
    let zfs = lzc();
    let Interrupted { dst, o, .. } = interrupted_incremental(&pool, &zfs);
    let t = ResumeToken::parse(&zfs_get("receive_resume_token", &dst)).unwrap();
    let (r, w) = os_pipe::pipe().unwrap();
    let sender = std::thread::spawn(move || lzc().send_from_token(&t, w));
    zfs.receive(&dst, &r, &o)
        .unwrap_or_else(|e| panic!("{e:?}"));
    drop(r);
    sender.join().unwrap().unwrap();
    mount(&dst);
    same_tree(&pool, "src", "dst");
}

// ---------- receive options ----------

#[test]
fn receive_props_override() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs, false);
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
    let r = replicate(&zfs, &format!("{fs}@s1"), None, &dst, &o);
    assert!(r.property_errors.is_empty(), "{:?}", r.property_errors);
    assert_eq!(zfs_get("zrep:origin", &dst), "test");
    assert_eq!(zfs_get("compression", &dst), "lz4");
    assert_eq!(zfs_get("recordsize", &dst), "32768");
    let source = zrep_tests::zfs(&["get", "-H", "-o", "source", "compression", &dst]);
    assert_eq!(source.trim(), "local");
}

#[test]
fn receive_exclude_inherits() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs, false);
    zrep_tests::zfs(&["set", "compression=gzip", pool.name()]);
    let o = ReceiveOptions {
        exclude: vec!["compression".into()],
        ..Default::default()
    };
    let dst = pool.ds("dst");
    replicate(&zfs, &format!("{fs}@s1"), None, &dst, &o);
    assert_eq!(zfs_get("compression", &dst), "gzip");
    let source = zrep_tests::zfs(&["get", "-H", "-o", "source", "compression", &dst]);
    assert!(source.contains("inherited"), "{source}");
}

#[test]
fn receive_clone_stream_with_origin() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs, false);
    let s1 = format!("{fs}@s1");
    let clone = pool.ds("clone");
    zfs.clone_snapshot(&dn(&clone), &sn(&s1), None).unwrap();
    mount(&clone);
    write_random(&pool.path("clone/extra"), 20_000, 3);
    snap(&zfs, &[&format!("{clone}@c")]);
    // Receive the origin elsewhere, then the clone stream as a clone of it.
    let base = pool.ds("base");
    replicate(&zfs, &s1, None, &base, &opts());
    let o = ReceiveOptions {
        origin: Some(sn(&format!("{base}@s1"))),
        ..Default::default()
    };
    let dst = pool.ds("dclone");
    let r = replicate(&zfs, &format!("{clone}@c"), Some(&s1), &dst, &o);
    assert!(r.header.is_clone());
    assert_eq!(zfs_get("origin", &dst), format!("{base}@s1"));
}

#[test]
fn receive_from_a_closed_descriptor_is_an_error() {
    let pool = TestPool::new();
    let zfs = lzc();
    let (r, w) = os_pipe::pipe().unwrap();
    drop(w);
    // EOF straight away.
    let e = expect_kind(
        zfs.receive(&pool.ds("dst"), r.as_fd(), &opts()),
        ErrorKind::BadStream,
    );
    assert!(e.to_string().contains("empty"), "{e}");
}
