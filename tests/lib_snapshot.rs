//! libzfs against real pools: snapshots, destroying them, creating and destroying
//! datasets, rollback, clone, promote, rename and exists.
use libzfs::{DatasetType, ErrorKind, Hold};
use zrep_tests::*;

// ---------- snapshot ----------

/// One snapshot, one of the pool's root, and none (an empty list is no call).
#[test]
fn snapshot_one_the_pool_root_and_none() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.fs("fs");
    zfs.snapshot(&[sn(&fs.at("s1"))], None).unwrap();
    assert!(zfs.exists(&fs.at("s1")));
    assert_eq!(cli_snapshots(fs.name()), [fs.at("s1")]);
    let root = format!("{}@root", pool.name());
    zfs.snapshot(&[sn(&root)], None).unwrap();
    assert!(cli_exists(&root));
    zfs.snapshot(&[], None).unwrap();
}

/// A batch in one pool is atomic: one transaction group, however many filesystems.
#[test]
fn snapshot_batches_share_a_txg() {
    let pool = TestPool::new();
    let zfs = lzc();
    let names: Vec<String> = ["a", "b", "c", "d"]
        .iter()
        .map(|r| pool.fs(r).at("batch"))
        .collect();
    let snaps: Vec<_> = names.iter().map(|n| sn(n)).collect();
    zfs.snapshot(&snaps, None).unwrap();
    let txgs: Vec<String> = names.iter().map(|n| zfs_get("createtxg", n)).collect();
    assert!(txgs.iter().all(|t| *t == txgs[0]), "atomic: {txgs:?}");

    let many: Vec<String> = (0..20)
        .map(|i| pool.fs(&format!("d/fs{i}")).at("m"))
        .collect();
    let snaps: Vec<_> = many.iter().map(|n| sn(n)).collect();
    zfs.snapshot(&snaps, None).unwrap();
    assert!(many.iter().all(|n| zfs.exists(n)));
}

#[test]
fn snapshot_with_user_props() {
    let pool = TestPool::new();
    let zfs = lzc();
    let props = str_props(&[("zrep:a", "one"), ("zrep:b", "two words")]);
    let s1 = pool.fs("fs").at("p");
    let s2 = pool.fs("other").at("p");
    zfs.snapshot(&[sn(&s1), sn(&s2)], Some(&props)).unwrap();
    for s in [&s1, &s2] {
        assert_eq!(zfs_get("zrep:a", s), "one");
        assert_eq!(zfs_get("zrep:b", s), "two words");
    }
}

/// Batches that fail create nothing, and the error lists every failed item.
#[test]
fn failing_snapshot_batches_create_nothing() {
    let pool = TestPool::new();
    let zfs = lzc();
    // A missing filesystem in the batch.
    let good = pool.fs("good").at("s");
    let bad = pool.ds("missing@s");
    let e = zfs.snapshot(&[sn(&good), sn(&bad)], None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e:?}");
    assert!(!cli_exists(&good), "nothing may be created");

    // Several failures: each listed.
    let dup = pool.fs("a").snap("s").at("s");
    let fine = pool.fs("b").at("s");
    let miss1 = pool.ds("m1@s");
    let miss2 = pool.ds("m2@s");
    let e = zfs
        .snapshot(&[sn(&dup), sn(&fine), sn(&miss1), sn(&miss2)], None)
        .unwrap_err();
    let z = e.zfs().expect("a zfs error");
    let names: Vec<&str> = z.items().iter().map(|i| i.name.as_str()).collect();
    // The kernel lists every failed item; the one that would have worked is absent.
    assert!(names.contains(&miss1.as_str()), "{z:?}");
    assert!(names.contains(&miss2.as_str()), "{z:?}");
    assert!(!names.contains(&fine.as_str()), "{z:?}");
    for i in z.items() {
        assert!(
            [libc::ENOENT, libc::EEXIST].contains(&i.errno.raw()),
            "{i:?}"
        );
    }
    assert!(!cli_exists(&fine));
    let msg = e.to_string();
    assert!(msg.contains(&miss1) && msg.contains(&miss2), "{msg}");

    // Two snapshots of one filesystem.
    let fs = pool.fs("fs");
    let (a, b) = (fs.at("a"), fs.at("b"));
    let e = zfs.snapshot(&[sn(&a), sn(&b)], None).unwrap_err();
    // The kernel refuses two snapshots of one filesystem in a batch (EXDEV).
    assert_eq!(e.errno().map(|e| e.raw()), Some(libc::EXDEV), "{e:?}");
    assert!(!cli_exists(&a) && !cli_exists(&b));
}

#[test]
fn snapshot_name_too_long_is_rejected_before_the_call() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    let long = format!("{fs}@{}", "s".repeat(300 - fs.len()));
    let e = libzfs::SnapshotName::new(long.clone()).unwrap_err();
    assert!(matches!(e, libzfs::NameError::TooLong { .. }), "{e:?}");
    let err: libzfs::Error = e.into();
    assert_eq!(err.kind(), ErrorKind::NameTooLong);
    // The longest legal name (255 bytes) works for real.
    let max = format!("{fs}@{}", "m".repeat(255 - fs.len() - 1));
    assert_eq!(max.len(), 255);
    zfs.snapshot(&[sn(&max)], None).unwrap();
    assert!(zfs.exists(&max));
}

// ---------- destroy_snapshots ----------

/// Existing snapshots go; missing ones (even of a missing filesystem) count as
/// already destroyed, alone or in a batch with existing ones; a mounted one is
/// unmounted first.
#[test]
fn destroy_snapshots_existing_missing_and_mounted() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.fs("fs");
    let (a, b) = (fs.at("a"), fs.at("b"));
    fs.snaps(&["a", "b"]);
    zfs.destroy_snapshots(&[sn(&a), sn(&b)], false).unwrap();
    assert!(!zfs.exists(&a) && !zfs.exists(&b));
    assert!(cli_snapshots(fs.name()).is_empty());

    // ZFS treats a missing snapshot as already destroyed.
    zfs.destroy_snapshots(&[sn(&fs.at("never"))], false)
        .unwrap();
    zfs.destroy_snapshots(&[sn(&pool.ds("nofs@never"))], false)
        .unwrap();
    let c = fs.snap("c").at("c");
    zfs.destroy_snapshots(&[sn(&c), sn(&fs.at("gone"))], false)
        .unwrap();
    assert!(!zfs.exists(&c));

    let s = fs.write("f", 4096, 3).snap("m").at("m");
    // Visiting .zfs/snapshot/m automounts the snapshot.
    let seen = std::fs::read_dir(fs.path(".zfs/snapshot/m")).map(|d| d.count());
    assert_eq!(seen.ok(), Some(1));
    zfs.destroy_snapshots(&[sn(&s)], false).unwrap();
    assert!(!zfs.exists(&s));
}

/// A held snapshot: refused until released; deferred, it goes with its last hold. A
/// cloned one, deferred, goes with its clone.
#[test]
fn destroy_of_held_and_cloned_snapshots() {
    let pool = TestPool::new();
    let zfs = lzc();
    let keep = |s: &str| Hold {
        snapshot: sn(s),
        tag: "keep".into(),
    };
    let s = pool.fs("held").snap("h").hold("h", "keep").at("h");
    let e = expect_kind(zfs.destroy_snapshots(&[sn(&s)], false), ErrorKind::Held);
    assert!(e.to_string().contains(&s), "{e}");
    assert!(zfs.exists(&s));
    zfs.release(&[keep(&s)]).unwrap();
    zfs.destroy_snapshots(&[sn(&s)], false).unwrap();
    assert!(!zfs.exists(&s));

    let s = pool.fs("deferred").snap("h").hold("h", "keep").at("h");
    zfs.destroy_snapshots(&[sn(&s)], true).unwrap();
    assert!(zfs.exists(&s), "still held");
    assert_eq!(zfs_get("defer_destroy", &s), "on");
    zfs.release(&[keep(&s)]).unwrap();
    assert!(!zfs.exists(&s), "gone with its last hold");

    let s = pool.fs("cloned").snap("o").at("o");
    let clone = dn(&pool.ds("clone"));
    zfs.clone_snapshot(&clone, &sn(&s), None).unwrap();
    zfs.destroy_snapshots(&[sn(&s)], true).unwrap();
    assert!(zfs.exists(&s));
    assert_eq!(zfs_get("defer_destroy", &s), "on");
    zfs.destroy(&clone).unwrap();
    assert!(!zfs.exists(&s));
}

// ---------- create / destroy ----------

/// Filesystems (any legal name, with properties) and volumes.
#[test]
fn create_filesystems_and_volumes() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.ds("new");
    zfs.create(&dn(&fs), DatasetType::Filesystem, None).unwrap();
    assert!(zfs.exists(&fs));
    assert_eq!(zfs_get("type", &fs), "filesystem");
    let odd = pool.ds("a-b_c.d:e f");
    zfs.create(&dn(&odd), DatasetType::Filesystem, None)
        .unwrap();
    assert!(cli_exists(&odd));

    let p = pool.ds("p");
    let mut props = str_props(&[("zrep:note", "hello")]);
    props.insert("quota", &(64u64 << 20)).unwrap();
    props.insert("recordsize", &(32u64 << 10)).unwrap();
    zfs.create(&dn(&p), DatasetType::Filesystem, Some(&props))
        .unwrap();
    assert_eq!(zfs_get("zrep:note", &p), "hello");
    assert_eq!(zfs_get("quota", &p), (64u64 << 20).to_string());
    assert_eq!(zfs_get("recordsize", &p), "32768");

    let vol = pool.volume("vol", 4 << 20);
    assert_eq!(zfs_get("type", &vol), "volume");
    assert_eq!(zfs_get("volsize", &vol), (4u64 << 20).to_string());
}

/// An unknown property, a number property given a string, or a parent that is a
/// volume: refused, nothing created.
#[test]
fn create_refusals_create_nothing() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.ds("p");
    // quota is a number; a string value is refused.
    for bad in [("nosuchprop", "x"), ("quota", "lots")] {
        let props = str_props(&[bad]);
        let r = zfs.create(&dn(&fs), DatasetType::Filesystem, Some(&props));
        expect_kind(r, ErrorKind::InvalidArgument);
        assert!(!zfs.exists(&fs), "{bad:?}");
    }
    let below = format!("{}/fs", pool.volume("vol", 1 << 20));
    let r = zfs.create(&dn(&below), DatasetType::Filesystem, None);
    expect_kind(r, ErrorKind::InvalidArgument);
    assert!(!zfs.exists(&below));
}

/// A filesystem and a volume are destroyed; a mounted filesystem is busy.
#[test]
fn destroy_filesystems_and_volumes() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.lzc_fs("gone");
    zfs.destroy(&dn(fs.name())).unwrap();
    assert!(!zfs.exists(fs.name()));

    let mounted = pool.create("mounted");
    let e = zfs.destroy(&dn(&mounted)).unwrap_err();
    assert_eq!(e.errno().unwrap().raw(), libc::EBUSY, "{e:?}");
    assert!(zfs.exists(&mounted));

    let vol = pool.volume("vol", 1 << 20);
    // The kernel's zvol setup keeps a new volume busy for a while: lzc_destroy
    // gives EBUSY then (the CLI waits for udev). Either way the outcome is exact.
    match zfs.destroy(&dn(&vol)) {
        Ok(()) => assert!(!zfs.exists(&vol)),
        Err(e) => {
            assert_eq!(e.errno().unwrap().raw(), libc::EBUSY, "{e:?}");
            assert!(e.to_string().contains(&vol), "{e}");
            assert!(zfs.exists(&vol));
        }
    }
}

// ---------- rollback ----------

/// `rollback` returns the latest snapshot and reverts the data to it; `rollback_to`
/// the latest snapshot reverts too, and refuses a missing one.
#[test]
fn rollback_and_rollback_to() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.fs("fs");
    fs.snaps(&["a", "b"]);
    let got = zfs.rollback(&dn(fs.name())).unwrap();
    assert_eq!(got.as_str(), fs.at("b"));

    let data = pool.fs("data");
    data.write("keep", 10_000, 1)
        .snap("a")
        .write("new", 10_000, 2);
    std::fs::remove_file(data.path("keep")).unwrap();
    zfs.rollback(&dn(data.name())).unwrap();
    assert!(!data.path("new").exists());
    assert_eq!(std::fs::read(data.path("keep")).unwrap().len(), 10_000);

    let to = pool.fs("to");
    to.snap("a").write("x", 1000, 1);
    zfs.rollback_to(&sn(&to.at("a"))).unwrap();
    assert!(!to.path("x").exists());
    let e = zfs.rollback_to(&sn(&to.at("zz"))).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotLatestSnapshot),
        "{e:?}"
    );
}

// ---------- clone / promote / rename / exists ----------

#[test]
fn clone_snapshot_with_and_without_props() {
    let pool = TestPool::new();
    let zfs = lzc();
    let s = pool.fs("fs").snap("o").at("o");
    let c = pool.ds("clone");
    zfs.clone_snapshot(&dn(&c), &sn(&s), None).unwrap();
    assert_eq!(zfs_get("origin", &c), s);
    let c = pool.ds("clone2");
    let props = str_props(&[("zrep:c", "yes")]);
    zfs.clone_snapshot(&dn(&c), &sn(&s), Some(&props)).unwrap();
    assert_eq!(zfs_get("zrep:c", &c), "yes");
}

/// Promote swaps a clone and its origin; it refuses a filesystem that is no clone,
/// and names a snapshot it cannot move.
#[test]
fn promote_swaps_the_origin_or_says_why_not() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.fs("fs");
    let s = fs.snap("o").at("o");
    let c = pool.ds("clone");
    zfs.clone_snapshot(&dn(&c), &sn(&s), None).unwrap();
    zfs.promote(&dn(&c)).unwrap();
    assert_eq!(zfs_get("origin", &c), "-");
    assert_eq!(zfs_get("origin", fs.name()), format!("{c}@o"));
    assert!(zfs.exists(&format!("{c}@o")));
    assert!(!zfs.exists(&s));

    let plain = pool.create("plain");
    let e = expect_kind(zfs.promote(&dn(&plain)), ErrorKind::InvalidArgument);
    assert!(e.to_string().contains("cannot promote"), "{e}");

    let s = pool.fs("fs2").snap("o").at("o");
    let c = pool.fs_at("clone2");
    zfs.clone_snapshot(&dn(c.name()), &sn(&s), None).unwrap();
    // The clone has a snapshot named like one promote would move to it.
    c.snap("o");
    let e = zfs.promote(&dn(c.name())).unwrap_err();
    assert_eq!(e.errno().unwrap().raw(), libc::EEXIST, "{e:?}");
    let z = e.zfs().unwrap();
    assert!(z.items().iter().any(|i| i.name.contains('o')), "{z:?}");
}

#[test]
fn rename_filesystem() {
    let pool = TestPool::new();
    let zfs = lzc();
    let a = pool.lzc_fs("a").snap("s").name().to_owned();
    zfs.rename(&dn(&a), &dn(&pool.ds("b"))).unwrap();
    assert!(!zfs.exists(&a));
    assert!(zfs.exists(&pool.ds("b")));
    assert!(zfs.exists(&pool.ds("b@s")));
}

#[test]
fn exists_for_every_kind() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.fs("fs");
    fs.snap("s").bookmark("b", "s");
    assert!(zfs.exists(pool.name()));
    assert!(zfs.exists(fs.name()));
    assert!(zfs.exists(&fs.at("s")));
    assert!(zfs.exists(&fs.mark("b")));
    assert!(!zfs.exists(&pool.ds("missing")));
    assert!(!zfs.exists(&fs.at("missing")));
    assert!(!zfs.exists(&fs.mark("missing")));
    assert!(!zfs.exists("zrepnosuchpool"));
    assert!(!zfs.exists("bad\0name"));
}

// ---------- calls that fail, on one pool ----------

/// Each call fails with its exact kind, naming what it should, and changes nothing.
#[test]
fn failing_calls_have_their_kind() {
    let pool = TestPool::new();
    let zfs = lzc();
    let dup = pool.fs("dup");
    dup.snap("dup");
    let existing = pool.fs("existing");
    let parent = pool.lzc_fs("parent");
    pool.lzc_fs("parent/child");
    let snapped = pool.lzc_fs("snapped");
    snapped.snap("s");
    let ab = pool.fs("ab");
    ab.snaps(&["a", "b"]);
    let bare = pool.fs("bare");
    let cloned = pool.fs("cloned");
    cloned.snap("o");
    zfs.clone_snapshot(&dn(&pool.ds("clone")), &sn(&cloned.at("o")), None)
        .unwrap();
    let a = pool.lzc_fs("a");
    let b = pool.lzc_fs("b");
    let (vol, nope) = (pool.ds("vol"), pool.ds("nope"));
    let e = expect_kinds([
        (
            "snapshot again",
            zfs.snapshot(&[sn(&dup.at("dup"))], None),
            ErrorKind::AlreadyExists,
            &[dup.at("dup").as_str()],
        ),
        (
            "snapshot of a missing filesystem",
            zfs.snapshot(&[sn(&pool.ds("nope@s"))], None),
            ErrorKind::NotFound,
            &["nope"],
        ),
        (
            "snapshot in a missing pool",
            zfs.snapshot(&[sn("zrepnosuchpool/fs@s")], None),
            ErrorKind::NotFound,
            &[],
        ),
        (
            "create an existing filesystem",
            zfs.create(&dn(existing.name()), DatasetType::Filesystem, None),
            ErrorKind::AlreadyExists,
            &[existing.name(), "cannot create"],
        ),
        (
            "create without parent",
            zfs.create(&dn(&pool.ds("no/parent")), DatasetType::Filesystem, None),
            ErrorKind::NotFound,
            &[],
        ),
        (
            "create in a missing pool",
            zfs.create(&dn("zrepnosuchpool/fs"), DatasetType::Filesystem, None),
            ErrorKind::NotFound,
            &[],
        ),
        (
            "create a volume without volsize",
            zfs.create(&dn(&vol), DatasetType::Volume, None),
            ErrorKind::InvalidArgument,
            &[],
        ),
        (
            "destroy a missing filesystem",
            zfs.destroy(&dn(&nope)),
            ErrorKind::NotFound,
            &["cannot destroy"],
        ),
        (
            "destroy a filesystem with children",
            zfs.destroy(&dn(parent.name())),
            ErrorKind::Busy,
            &[parent.name()],
        ),
        (
            "destroy a filesystem with snapshots",
            zfs.destroy(&dn(snapped.name())),
            ErrorKind::Busy,
            &[snapped.name()],
        ),
        (
            "roll back to an older snapshot",
            zfs.rollback_to(&sn(&ab.at("a"))).map(drop),
            ErrorKind::NotLatestSnapshot,
            &[ab.at("a").as_str()],
        ),
        (
            "roll back without snapshots",
            zfs.rollback(&dn(bare.name())).map(drop),
            ErrorKind::NotFound,
            &["cannot roll back"],
        ),
        (
            "clone a missing snapshot",
            zfs.clone_snapshot(&dn(&pool.ds("c")), &sn(&bare.at("nope")), None),
            ErrorKind::NotFound,
            &[],
        ),
        (
            "clone onto an existing filesystem",
            zfs.clone_snapshot(&dn(existing.name()), &sn(&cloned.at("o")), None),
            ErrorKind::AlreadyExists,
            &[],
        ),
        (
            "destroy a snapshot with a clone",
            zfs.destroy_snapshots(&[sn(&cloned.at("o"))], false),
            ErrorKind::HasClones,
            &["clones"],
        ),
        (
            "rename a missing filesystem",
            zfs.rename(&dn(&nope), &dn(&pool.ds("renamed"))),
            ErrorKind::NotFound,
            &[],
        ),
        (
            "rename onto an existing filesystem",
            zfs.rename(&dn(a.name()), &dn(b.name())),
            ErrorKind::AlreadyExists,
            &[],
        ),
        (
            "rename into a missing parent",
            zfs.rename(&dn(a.name()), &dn(&pool.ds("x/y"))),
            ErrorKind::NotFound,
            &[],
        ),
    ]);
    // The kernel's per-item list names the snapshot that exists already.
    let z = e["snapshot again"].zfs().unwrap();
    assert!(
        z.items()
            .iter()
            .any(|i| i.name == dup.at("dup") && i.errno.raw() == libc::EEXIST),
        "{z:?}"
    );
    // ZFS returns EEXIST for a filesystem with children, EBUSY for one with
    // snapshots, EEXIST when the rollback target is not the most recent snapshot.
    let errno = |what| e[what].errno().map(|e| e.raw());
    assert_eq!(
        errno("destroy a filesystem with children"),
        Some(libc::EEXIST)
    );
    assert_eq!(
        errno("destroy a filesystem with snapshots"),
        Some(libc::EBUSY)
    );
    assert_eq!(errno("roll back to an older snapshot"), Some(libc::EEXIST));
    let held = e["destroy a filesystem with snapshots"].to_string();
    assert!(!held.contains("held"), "{held}");
    // Nothing changed.
    assert!(!zfs.exists(&pool.ds("no")) && !zfs.exists(&vol));
    for kept in [parent.name(), snapped.name(), &ab.at("b"), &cloned.at("o")] {
        assert!(zfs.exists(kept), "{kept}");
    }
    assert!(zfs.exists(a.name()));
}

/// Batches and clones, renames across two pools fail and change nothing.
#[test]
fn calls_across_pools_fail() {
    let p1 = TestPool::new();
    let p2 = TestPool::new();
    let zfs = lzc();
    let a = format!("{}@x", p1.name());
    let b = format!("{}@x", p2.name());
    let e = expect_kind(
        zfs.snapshot(&[sn(&a), sn(&b)], None),
        ErrorKind::PoolsDiffer,
    );
    assert_eq!(e.errno().unwrap().raw(), libc::EXDEV);
    assert!(!cli_exists(&a) && !cli_exists(&b));
    snap(&zfs, &[&a]);
    snap(&zfs, &[&b]);
    let r = zfs.destroy_snapshots(&[sn(&a), sn(&b)], false);
    // lzc_destroy_snaps sends the batch to the first snapshot's pool: ZFS refuses
    // names of another pool (EXDEV), destroying nothing.
    let e = expect_kind(r, ErrorKind::PoolsDiffer);
    assert!(e.errno().is_some());
    assert!(zfs.exists(&a) && zfs.exists(&b));
    let s = p1.fs("fs").snap("o").at("o");
    let r = zfs.clone_snapshot(&dn(&p2.ds("c")), &sn(&s), None);
    expect_kind(r, ErrorKind::PoolsDiffer);
    assert!(!zfs.exists(&p2.ds("c")));
    p1.lzc_fs("a");
    let r = zfs.rename(&dn(&p1.ds("a")), &dn(&p2.ds("a")));
    expect_kind(r, ErrorKind::PoolsDiffer);
    assert!(zfs.exists(&p1.ds("a")));
}

// ---------- snapshot_written ----------

/// Only datasets written to since their newest snapshot, or without one, get it, in
/// one transaction group; what was written a moment ago counts (no sync first), and
/// a snapshot that exists is left alone and returned with them.
#[test]
fn snapshot_written_takes_what_changed_in_one_txg() {
    let pool = TestPool::new();
    let zfs = lzc();
    let written = pool.fs("written");
    written.snap("s0");
    let idle = pool.fs("idle");
    idle.snap("s0");
    let never = pool.fs("never");
    let again = pool.fs("again");
    again.write("f", 1 << 20, 3).snap("n").write("g", 4096, 4);
    let again_guid = zfs_get("guid", &again.at("n"));
    written.write("f", 4 << 20, 1);
    let asked = |snap: &str| -> Vec<libzfs::SnapshotName> {
        [&written, &idle, &never, &again]
            .iter()
            .map(|f| sn(&f.at(snap)))
            .collect()
    };
    let taken = zfs.snapshot_written(&asked("n")).unwrap();
    let names: Vec<String> = taken.iter().map(|t| t.name.to_string()).collect();
    // `again` had its @n already: it comes back, left alone.
    assert_eq!(names, [written.at("n"), never.at("n"), again.at("n")]);
    assert_eq!(taken[2].guid.to_string(), again_guid, "left alone");
    for t in &taken {
        let name = t.name.as_str();
        assert_eq!(t.guid.to_string(), zfs_get("guid", name), "{name}");
        assert_eq!(
            t.createtxg.to_string(),
            zfs_get("createtxg", name),
            "{name}"
        );
        assert_eq!(t.creation.to_string(), zfs_get("creation", name), "{name}");
    }
    assert_eq!(
        taken[0].createtxg, taken[1].createtxg,
        "one transaction group"
    );
    assert!(!cli_exists(&idle.at("n")));
    assert_eq!(zfs_get("guid", &again.at("n")), again_guid, "left alone");
    let referenced: u64 = zfs_get("referenced", &written.at("n")).parse().unwrap();
    assert!(referenced > 4 << 20, "the 4 MiB are in it: {referenced}");
    // Only `again` had been written to since its @n.
    let taken = zfs.snapshot_written(&asked("m")).unwrap();
    assert_eq!(taken.len(), 1, "{taken:?}");
    assert_eq!(taken[0].name.as_str(), again.at("m"));
    // Nothing written since: nothing taken.
    assert_eq!(zfs.snapshot_written(&asked("o")).unwrap(), []);
    assert_eq!(zfs.snapshot_written(&[]).unwrap(), []);
}

/// A missing dataset or another pool: an error naming it, and nothing taken.
#[test]
fn snapshot_written_refusals_take_nothing() {
    let pool = TestPool::new();
    let other = TestPool::new();
    let zfs = lzc();
    let a = pool.fs("a");
    let missing = format!("{}/missing@n", pool.name());
    let e = expect_kind(
        zfs.snapshot_written(&[sn(&a.at("n")), sn(&missing)]),
        ErrorKind::NotFound,
    );
    assert!(e.to_string().contains("missing"), "{e}");
    let elsewhere = format!("{}@n", other.name());
    let e = expect_kind(
        zfs.snapshot_written(&[sn(&a.at("n")), sn(&elsewhere)]),
        ErrorKind::PoolsDiffer,
    );
    assert!(e.to_string().contains(other.name()), "{e}");
    assert!(!cli_exists(&a.at("n")), "all or none");
}
