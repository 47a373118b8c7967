//! libzfs against real pools: user holds (with and without cleanup descriptors) and
//! bookmarks (create, copy, list, destroy, use as incremental source).
use std::os::fd::AsFd;

use libzfs::{ErrorKind, Hold, ReceiveOptions, SendFlags};
use zrep_tests::*;

fn hold(s: &str, tag: &str) -> Hold {
    Hold {
        snapshot: sn(s),
        tag: tag.into(),
    }
}

/// Whether a bookmark exists (lzc_exists does not see bookmarks: ask the CLI).
fn bm_exists(b: &str) -> bool {
    cli_exists(b)
}

fn tags(zfs: &libzfs::Zfs, s: &str) -> Vec<String> {
    let mut v: Vec<String> = zfs
        .holds(&sn(s))
        .unwrap()
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    v.sort();
    v
}

// ---------- holds ----------

#[test]
fn hold_list_release() {
    let pool = TestPool::new();
    let zfs = lzc();
    let s = pool.fs("fs").snap("s").at("s");
    let missing = zfs.hold(&[hold(&s, "t1")], None).unwrap();
    assert!(missing.is_empty());
    assert_eq!(tags(&zfs, &s), ["t1"]);
    assert_eq!(zfs_get("userrefs", &s), "1");
    let cli = zrep_tests::zfs(&["holds", "-H", &s]);
    assert!(cli.contains("t1"), "{cli}");
    zfs.release(&[hold(&s, "t1")]).unwrap();
    assert!(tags(&zfs, &s).is_empty());
    assert_eq!(zfs_get("userrefs", &s), "0");
}

#[test]
fn holds_report_creation_time() {
    let pool = TestPool::new();
    let zfs = lzc();
    let s = pool.fs("fs").snap("s").at("s");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    zfs.hold(&[hold(&s, "t")], None).unwrap();
    let h = zfs.holds(&sn(&s)).unwrap();
    assert_eq!(h.len(), 1);
    assert!(h[0].1 + 3600 > now && h[0].1 < now + 3600, "{h:?} vs {now}");
}

#[test]
fn hold_many_tags_on_one_snapshot() {
    let pool = TestPool::new();
    let zfs = lzc();
    let s = pool.fs("fs").snap("s").at("s");
    zfs.hold(&[hold(&s, "a")], None).unwrap();
    zfs.hold(&[hold(&s, "b")], None).unwrap();
    zfs.hold(&[hold(&s, "c")], None).unwrap();
    assert_eq!(tags(&zfs, &s), ["a", "b", "c"]);
    // Several tags of one snapshot released in one call.
    zfs.release(&[hold(&s, "a"), hold(&s, "c")]).unwrap();
    assert_eq!(tags(&zfs, &s), ["b"]);
}

#[test]
fn hold_many_snapshots_at_once() {
    let pool = TestPool::new();
    let zfs = lzc();
    let a = pool.fs("a").snap("s").at("s");
    let b = pool.fs("b").snap("s").at("s");
    let missing = zfs.hold(&[hold(&a, "t"), hold(&b, "t")], None).unwrap();
    assert!(missing.is_empty());
    assert_eq!(tags(&zfs, &a), ["t"]);
    assert_eq!(tags(&zfs, &b), ["t"]);
    zfs.release(&[hold(&a, "t"), hold(&b, "t")]).unwrap();
    assert!(tags(&zfs, &a).is_empty() && tags(&zfs, &b).is_empty());
}

#[test]
fn hold_empty_list_is_ok() {
    let _pool = TestPool::new();
    let zfs = lzc();
    assert!(zfs.hold(&[], None).unwrap().is_empty());
    zfs.release(&[]).unwrap();
}

#[test]
fn hold_missing_snapshot_is_returned_as_missing() {
    let pool = TestPool::new();
    let zfs = lzc();
    let s = pool.fs("fs").snap("s").at("s");
    let gone = format!("{}@gone", pool.ds("fs"));
    let missing = zfs.hold(&[hold(&s, "t"), hold(&gone, "t")], None).unwrap();
    assert_eq!(missing, [sn(&gone)]);
    assert_eq!(tags(&zfs, &s), ["t"], "the existing one is held");
}

#[test]
fn hold_all_missing() {
    let pool = TestPool::new();
    let zfs = lzc();
    let a = pool.ds("nofs@a");
    let missing = zfs.hold(&[hold(&a, "t")], None).unwrap();
    assert_eq!(missing, [sn(&a)]);
}

#[test]
fn hold_with_cleanup_fd_vanishes_on_close() {
    let pool = TestPool::new();
    let zfs = lzc();
    let s = pool.fs("fs").snap("s").at("s");
    let fd = zfs.cleanup_fd().unwrap();
    zfs.hold(&[hold(&s, "tmp")], Some(fd.as_fd())).unwrap();
    assert_eq!(tags(&zfs, &s), ["tmp"]);
    expect_kind(zfs.destroy_snapshots(&[sn(&s)], false), ErrorKind::Held);
    drop(fd);
    // The hold goes with the last copy of the descriptor; a process another test
    // thread is forking may hold a copy until it execs: allow it a moment.
    let t0 = std::time::Instant::now();
    while !tags(&zfs, &s).is_empty() && t0.elapsed().as_secs() < 10 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(tags(&zfs, &s).is_empty(), "released with the descriptor");
    zfs.destroy_snapshots(&[sn(&s)], false).unwrap();
}

#[test]
fn hold_with_cleanup_fd_can_be_released_first() {
    let pool = TestPool::new();
    let zfs = lzc();
    let s = pool.fs("fs").snap("s").at("s");
    let fd = zfs.cleanup_fd().unwrap();
    zfs.hold(&[hold(&s, "tmp")], Some(fd.as_fd())).unwrap();
    zfs.release(&[hold(&s, "tmp")]).unwrap();
    assert!(tags(&zfs, &s).is_empty());
    drop(fd);
    assert!(zfs.exists(&s));
}

#[test]
fn cleanup_fd_holds_mixed_with_permanent_ones() {
    let pool = TestPool::new();
    let zfs = lzc();
    let s = pool.fs("fs").snap("s").at("s");
    zfs.hold(&[hold(&s, "perm")], None).unwrap();
    let fd = zfs.cleanup_fd().unwrap();
    zfs.hold(&[hold(&s, "tmp")], Some(fd.as_fd())).unwrap();
    assert_eq!(tags(&zfs, &s), ["perm", "tmp"]);
    drop(fd);
    let t0 = std::time::Instant::now();
    while tags(&zfs, &s).len() > 1 && t0.elapsed().as_secs() < 10 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(tags(&zfs, &s), ["perm"]);
}

#[test]
fn hold_with_a_regular_file_as_cleanup_fd_fails() {
    let pool = TestPool::new();
    let zfs = lzc();
    let s = pool.fs("fs").snap("s").at("s");
    let f = std::fs::File::open("/dev/null").unwrap();
    let e = zfs.hold(&[hold(&s, "t")], Some(f.as_fd())).unwrap_err();
    assert_eq!(e.errno().unwrap().raw(), libc::EBADF, "{e:?}");
    assert!(tags(&zfs, &s).is_empty());
}

#[test]
fn release_unknown_tag_is_skipped() {
    let pool = TestPool::new();
    let zfs = lzc();
    let s = pool.fs("fs").snap("s").at("s");
    zfs.hold(&[hold(&s, "t")], None).unwrap();
    // lzc_release succeeds, listing the unknown tag only in its error list.
    zfs.release(&[hold(&s, "other")]).unwrap();
    assert_eq!(tags(&zfs, &s), ["t"]);
}

#[test]
fn release_unknown_tag_is_reported() {
    let pool = TestPool::new();
    let zfs = lzc();
    let s = pool.fs("fs").snap("s").at("s");
    zfs.hold(&[hold(&s, "t")], None).unwrap();
    // The kernel skips a hold that is not there and reports it.
    let skipped = zfs.release(&[hold(&s, "other")]).unwrap();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert!(skipped[0].name.contains(&s), "{skipped:?}");
    assert_eq!(zfs.holds(&sn(&s)).unwrap().len(), 1);
}

#[test]
fn release_on_missing_snapshot() {
    let pool = TestPool::new();
    let zfs = lzc();
    let gone = pool.ds("nofs@s");
    // lzc_release skips snapshots that do not exist.
    let r = zfs.release(&[hold(&gone, "t")]);
    if let Err(e) = r {
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e:?}");
    }
}

#[test]
fn release_last_hold_of_deferred_snapshots_destroys_them() {
    let pool = TestPool::new();
    let zfs = lzc();
    let a = pool.fs("a").snap("s").at("s");
    let b = pool.fs("b").snap("s").at("s");
    zfs.hold(&[hold(&a, "t"), hold(&b, "t")], None).unwrap();
    zfs.destroy_snapshots(&[sn(&a), sn(&b)], true).unwrap();
    assert!(zfs.exists(&a) && bm_exists(&b));
    zfs.release(&[hold(&a, "t"), hold(&b, "t")]).unwrap();
    assert!(!zfs.exists(&a) && !bm_exists(&b));
}

// ---------- bookmarks ----------

#[test]
fn bookmark_from_snapshot_matches_it() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.fs("fs");
    let (s, b) = (fs.snap("s").at("s"), fs.mark("b"));
    zfs.bookmark(&[(bn(&b), src(&s))]).unwrap();
    assert!(bm_exists(&b));
    let list = zfs.bookmarks(&dn(fs.name())).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name.as_str(), b);
    assert_eq!(list[0].guid.to_string(), zfs_get("guid", &s));
    assert_eq!(list[0].createtxg.to_string(), zfs_get("createtxg", &s));
    assert_eq!(list[0].creation.to_string(), zfs_get("creation", &s));
    assert_eq!(zfs_get("guid", &b), zfs_get("guid", &s));
}

#[test]
fn bookmark_survives_its_snapshot() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.fs("fs");
    let s = fs.snap("s").at("s");
    let guid = zfs_get("guid", &s);
    zfs.bookmark(&[(bn(&fs.mark("b")), src(&s))]).unwrap();
    zfs.destroy_snapshots(&[sn(&s)], false).unwrap();
    let list = zfs.bookmarks(&dn(fs.name())).unwrap();
    assert_eq!(list[0].guid.to_string(), guid);
}

#[test]
fn bookmark_several_at_once() {
    let pool = TestPool::new();
    let zfs = lzc();
    let a = pool.fs("a").snap("s").at("s");
    let b = pool.fs("b").snap("s").at("s");
    zfs.bookmark(&[
        (bn(&pool.ds("a#1")), src(&a)),
        (bn(&pool.ds("b#1")), src(&b)),
        (bn(&pool.ds("a#2")), src(&a)),
    ])
    .unwrap();
    assert_eq!(zfs.bookmarks(&dn(&pool.ds("a"))).unwrap().len(), 2);
    assert_eq!(zfs.bookmarks(&dn(&pool.ds("b"))).unwrap().len(), 1);
}

#[test]
fn bookmark_from_bookmark_copies_it() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.fs("fs");
    fs.snap("s").bookmark("one", "s");
    zfs.destroy_snapshots(&[sn(&fs.at("s"))], false).unwrap();
    zfs.bookmark(&[(bn(&fs.mark("two")), src(&fs.mark("one")))])
        .unwrap();
    let list = zfs.bookmarks(&dn(fs.name())).unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].guid, list[1].guid);
    assert_eq!(list[0].createtxg, list[1].createtxg);
}

#[test]
fn bookmarks_listed_in_txg_order() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.fs("fs");
    for (i, n) in ["z", "m", "a"].iter().enumerate() {
        let s = format!("s{i}");
        zfs.bookmark(&[(bn(&fs.mark(n)), src(&fs.snap(&s).at(&s)))])
            .unwrap();
    }
    let list = zfs.bookmarks(&dn(fs.name())).unwrap();
    let names: Vec<&str> = list.iter().map(|b| b.name.short_name()).collect();
    assert_eq!(names, ["z", "m", "a"]);
    assert!(list.windows(2).all(|w| w[0].createtxg < w[1].createtxg));
}

#[test]
fn bookmarks_of_fs_without_any() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    assert!(zfs.bookmarks(&dn(&fs)).unwrap().is_empty());
}

#[test]
fn bookmark_of_another_filesystems_snapshot_fails() {
    let pool = TestPool::new();
    let zfs = lzc();
    let s = pool.fs("a").snap("s").at("s");
    pool.create("b");
    let b = pool.ds("b#x");
    let e = expect_kind(zfs.bookmark(&[(bn(&b), src(&s))]), ErrorKind::NotAnAncestor);
    assert!(e.to_string().contains(&b), "{e}");
    assert!(!bm_exists(&b));
}

#[test]
fn destroy_bookmarks() {
    let pool = TestPool::new();
    let zfs = lzc();
    let s = pool.fs("fs").snap("s").at("s");
    let b1 = pool.ds("fs#b1");
    let b2 = pool.ds("fs#b2");
    zfs.bookmark(&[(bn(&b1), src(&s)), (bn(&b2), src(&s))])
        .unwrap();
    zfs.destroy_bookmarks(&[bn(&b1), bn(&b2)]).unwrap();
    assert!(!bm_exists(&b1) && !bm_exists(&b2));
    assert!(zfs.bookmarks(&dn(&pool.ds("fs"))).unwrap().is_empty());
    assert!(zfs.exists(&s), "the snapshot stays");
}

#[test]
fn destroy_missing_bookmark_is_success() {
    let pool = TestPool::new();
    let zfs = lzc();
    pool.create("fs");
    zfs.destroy_bookmarks(&[bn(&pool.ds("fs#none"))]).unwrap();
    zfs.destroy_bookmarks(&[]).unwrap();
}

#[test]
fn destroy_bookmark_of_missing_fs() {
    let pool = TestPool::new();
    let zfs = lzc();
    // Like snapshots, a bookmark whose filesystem is gone counts as destroyed.
    let r = zfs.destroy_bookmarks(&[bn(&pool.ds("nofs#b"))]);
    if let Err(e) = r {
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e:?}");
    }
}

#[test]
fn bookmark_is_an_incremental_send_source() {
    let src_pool = TestPool::new();
    let dst_pool = TestPool::new();
    let zfs = lzc();
    let fs = src_pool.fs("fs");
    let s1 = fs.write("one", 200_000, 1).snap("s1").at("s1");
    let target = dst_pool.ds("copy");
    replicate(&zfs, &s1, None, &target, &ReceiveOptions::default());
    // Keep only a bookmark of s1 on the source.
    let b = fs.bookmark("s1", "s1").mark("s1");
    zfs.destroy_snapshots(&[sn(&s1)], false).unwrap();
    let s2 = fs.write("two", 300_000, 2).snap("s2").at("s2");
    let r = replicate(&zfs, &s2, Some(&b), &target, &ReceiveOptions::default());
    assert!(r.header.is_incremental());
    assert_eq!(
        r.header.fromguid.to_string(),
        zfs_get("guid", &format!("{target}@s1"))
    );
    mount(&target);
    assert_eq!(
        tree_digest(&src_pool.path("fs")),
        tree_digest(&dst_pool.path("copy"))
    );
}

#[test]
fn send_space_from_bookmark() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.fs("fs");
    fs.snap("s1")
        .bookmark("b", "s1")
        .write("d", 500_000, 2)
        .snap("s2");
    let (s1, s2, b) = (fs.at("s1"), fs.at("s2"), fs.mark("b"));
    let from_snap = zfs.send_space(&sn(&s2), Some(&src(&s1)), SendFlags::default());
    let from_book = zfs.send_space(&sn(&s2), Some(&src(&b)), SendFlags::default());
    // Estimating from a bookmark either works like from its snapshot or is refused.
    match from_book {
        Ok(n) => assert_eq!(n, from_snap.unwrap()),
        Err(e) => assert!(e.errno().is_some(), "{e:?}"),
    }
}

#[test]
fn cannot_send_a_bookmark_itself() {
    let pool = TestPool::new();
    let zfs = lzc();
    let s = pool.fs("fs").snap("s").at("s");
    zfs.bookmark(&[(bn(&pool.ds("fs#b")), src(&s))]).unwrap();
    // The library takes only snapshot names as the thing to send.
    assert!(libzfs::SnapshotName::new(pool.ds("fs#b")).is_err());
}

// ---------- calls that fail ----------

/// Each call fails with its exact kind, naming what it should, and changes nothing.
#[test]
fn failing_calls_have_their_kind() {
    let pool = TestPool::new();
    let zfs = lzc();
    let (held, long, marked) = (pool.fs("held"), pool.fs("long"), pool.fs("marked"));
    held.snap("s").hold("s", "t");
    long.snap("s");
    marked.snap("s").bookmark("b", "s");
    let e = expect_kinds([
        (
            "hold a tag again",
            zfs.hold(&[hold(&held.at("s"), "t")], None).map(drop),
            ErrorKind::AlreadyExists,
            &["tag already exists"],
        ),
        (
            "hold with a 256-byte tag",
            zfs.hold(&[hold(&long.at("s"), &"t".repeat(256))], None)
                .map(drop),
            ErrorKind::NameTooLong,
            &[],
        ),
        (
            "holds of a missing snapshot",
            zfs.holds(&sn(&held.at("none"))).map(drop),
            ErrorKind::NotFound,
            &[],
        ),
        (
            "bookmarks of a missing filesystem",
            zfs.bookmarks(&dn(&pool.ds("nope"))).map(drop),
            ErrorKind::NotFound,
            &[],
        ),
        (
            "bookmark again",
            zfs.bookmark(&[(bn(&marked.mark("b")), src(&marked.at("s")))]),
            ErrorKind::AlreadyExists,
            &[marked.mark("b").as_str()],
        ),
        (
            "bookmark a missing snapshot",
            zfs.bookmark(&[(bn(&held.mark("b")), src(&held.at("none")))]),
            ErrorKind::NotFound,
            &[],
        ),
    ]);
    assert_eq!(e.len(), 6);
    assert_eq!(tags(&zfs, &held.at("s")), ["t"]);
    assert!(tags(&zfs, &long.at("s")).is_empty());
    assert!(!bm_exists(&held.mark("b")));
}

/// Hold, release and bookmark batches across two pools fail and change nothing.
#[test]
fn batches_across_pools_fail() {
    let p1 = TestPool::new();
    let p2 = TestPool::new();
    let zfs = lzc();
    let a = p1.fs("fs").snap("s").at("s");
    let b = p2.fs("fs").snap("s").at("s");
    let e = zfs.hold(&[hold(&a, "t"), hold(&b, "t")], None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PoolsDiffer, "{e:?}");
    assert!(tags(&zfs, &a).is_empty() && tags(&zfs, &b).is_empty());
    let e = zfs
        .bookmark(&[(bn(&p1.ds("fs#b")), src(&a)), (bn(&p2.ds("fs#b")), src(&b))])
        .unwrap_err();
    // ZFS refuses a bookmark batch spanning pools with EINVAL.
    assert_eq!(e.errno().unwrap().raw(), libc::EINVAL, "{e:?}");
    assert!(!bm_exists(&p1.ds("fs#b")) && !bm_exists(&p2.ds("fs#b")));
    zfs.hold(&[hold(&a, "t")], None).unwrap();
    zfs.hold(&[hold(&b, "t")], None).unwrap();
    let e = zfs.release(&[hold(&a, "t"), hold(&b, "t")]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PoolsDiffer, "{e:?}");
}
