//! libzfs against real pools: snapshots, destroying them, creating and destroying
//! datasets, rollback, clone, promote, rename and exists.
use libzfs::{DatasetType, ErrorKind, Hold, NvList};
use zrep_tests::*;

// ---------- snapshot ----------

#[test]
fn snapshot_single() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    zfs.snapshot(&[sn(&format!("{fs}@s1"))], None).unwrap();
    assert!(zfs.exists(&format!("{fs}@s1")));
    assert_eq!(cli_snapshots(&fs), [format!("{fs}@s1")]);
}

#[test]
fn snapshot_of_pool_root() {
    let pool = TestPool::new();
    let zfs = lzc();
    let s = format!("{}@root", pool.name());
    zfs.snapshot(&[sn(&s)], None).unwrap();
    assert!(cli_exists(&s));
}

#[test]
fn snapshot_empty_list_is_ok() {
    let _pool = TestPool::new();
    let zfs = lzc();
    zfs.snapshot(&[], None).unwrap();
}

#[test]
fn snapshot_batch_in_one_pool_shares_a_txg() {
    let pool = TestPool::new();
    let zfs = lzc();
    let names: Vec<String> = ["a", "b", "c", "d"]
        .iter()
        .map(|r| format!("{}@batch", pool.create(r)))
        .collect();
    let snaps: Vec<_> = names.iter().map(|n| sn(n)).collect();
    zfs.snapshot(&snaps, None).unwrap();
    let txgs: Vec<String> = names.iter().map(|n| zfs_get("createtxg", n)).collect();
    assert!(txgs.iter().all(|t| *t == txgs[0]), "atomic: {txgs:?}");
}

#[test]
fn snapshot_with_user_props() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    let other = pool.create("other");
    let props = str_props(&[("zrep:a", "one"), ("zrep:b", "two words")]);
    let s1 = format!("{fs}@p");
    let s2 = format!("{other}@p");
    zfs.snapshot(&[sn(&s1), sn(&s2)], Some(&props)).unwrap();
    for s in [&s1, &s2] {
        assert_eq!(zfs_get("zrep:a", s), "one");
        assert_eq!(zfs_get("zrep:b", s), "two words");
    }
}

#[test]
fn snapshot_with_system_prop_is_rejected() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    // Only user properties may be set on new snapshots.
    let props = str_props(&[("compression", "lz4")]);
    let e = zfs
        .snapshot(&[sn(&format!("{fs}@p"))], Some(&props))
        .unwrap_err();
    assert!(e.errno().is_some(), "{e:?}");
    assert!(!cli_exists(&format!("{fs}@p")));
}

#[test]
fn snapshot_batch_with_missing_fs_is_atomic() {
    let pool = TestPool::new();
    let zfs = lzc();
    let good = format!("{}@s", pool.create("good"));
    let bad = pool.ds("missing@s");
    let e = zfs.snapshot(&[sn(&good), sn(&bad)], None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e:?}");
    assert!(!cli_exists(&good), "nothing may be created");
}

#[test]
fn snapshot_batch_lists_every_failed_item() {
    let pool = TestPool::new();
    let zfs = lzc();
    let dup = pool.fs("a").snap("s").at("s");
    let fine = format!("{}@s", pool.create("b"));
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
}

#[test]
fn snapshot_two_of_the_same_fs_in_one_batch_fails() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    let a = format!("{fs}@a");
    let b = format!("{fs}@b");
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

#[test]
fn snapshot_many_filesystems_in_one_call() {
    let pool = TestPool::new();
    let zfs = lzc();
    let names: Vec<String> = (0..20)
        .map(|i| format!("{}@m", pool.create(&format!("d/fs{i}"))))
        .collect();
    let snaps: Vec<_> = names.iter().map(|n| sn(n)).collect();
    zfs.snapshot(&snaps, None).unwrap();
    assert!(names.iter().all(|n| zfs.exists(n)));
}

// ---------- destroy_snapshots ----------

#[test]
fn destroy_snapshots_plain() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.fs("fs");
    let (a, b) = (fs.at("a"), fs.at("b"));
    fs.snaps(&["a", "b"]);
    zfs.destroy_snapshots(&[sn(&a), sn(&b)], false).unwrap();
    assert!(!zfs.exists(&a) && !zfs.exists(&b));
    assert!(cli_snapshots(fs.name()).is_empty());
}

#[test]
fn destroy_missing_snapshot_is_success() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    // ZFS treats a missing snapshot as already destroyed.
    zfs.destroy_snapshots(&[sn(&format!("{fs}@never"))], false)
        .unwrap();
    zfs.destroy_snapshots(&[sn(&pool.ds("nofs@never"))], false)
        .unwrap();
}

#[test]
fn destroy_snapshots_mixed_existing_and_missing() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.fs("fs");
    let a = fs.snap("a").at("a");
    zfs.destroy_snapshots(&[sn(&a), sn(&fs.at("gone"))], false)
        .unwrap();
    assert!(!zfs.exists(&a));
}

#[test]
fn destroy_held_snapshot_is_held() {
    let pool = TestPool::new();
    let zfs = lzc();
    let s = pool.fs("fs").snap("h").hold("h", "keep").at("h");
    let e = expect_kind(zfs.destroy_snapshots(&[sn(&s)], false), ErrorKind::Held);
    assert!(e.to_string().contains(&s), "{e}");
    assert!(zfs.exists(&s));
    zfs.release(&[Hold {
        snapshot: sn(&s),
        tag: "keep".into(),
    }])
    .unwrap();
    zfs.destroy_snapshots(&[sn(&s)], false).unwrap();
    assert!(!zfs.exists(&s));
}

#[test]
fn deferred_destroy_of_held_snapshot_waits_for_release() {
    let pool = TestPool::new();
    let zfs = lzc();
    let s = pool.fs("fs").snap("h").hold("h", "keep").at("h");
    let hold = Hold {
        snapshot: sn(&s),
        tag: "keep".into(),
    };
    zfs.destroy_snapshots(&[sn(&s)], true).unwrap();
    assert!(zfs.exists(&s), "still held");
    assert_eq!(zfs_get("defer_destroy", &s), "on");
    zfs.release(&[hold]).unwrap();
    assert!(!zfs.exists(&s), "gone with its last hold");
}

#[test]
fn deferred_destroy_of_cloned_snapshot_waits_for_the_clone() {
    let pool = TestPool::new();
    let zfs = lzc();
    let s = pool.fs("fs").snap("o").at("o");
    let clone = dn(&pool.ds("clone"));
    zfs.clone_snapshot(&clone, &sn(&s), None).unwrap();
    zfs.destroy_snapshots(&[sn(&s)], true).unwrap();
    assert!(zfs.exists(&s));
    assert_eq!(zfs_get("defer_destroy", &s), "on");
    zfs.destroy(&clone).unwrap();
    assert!(!zfs.exists(&s));
}

#[test]
fn destroy_mounted_snapshot_unmounts_it() {
    let pool = TestPool::new();
    let zfs = lzc();
    let s = pool.fs("fs").write("f", 4096, 3).snap("m").at("m");
    // Visiting .zfs/snapshot/m automounts the snapshot.
    let seen = std::fs::read_dir(pool.path("fs/.zfs/snapshot/m")).map(|d| d.count());
    assert_eq!(seen.ok(), Some(1));
    zfs.destroy_snapshots(&[sn(&s)], false).unwrap();
    assert!(!zfs.exists(&s));
}

// ---------- create / destroy ----------

#[test]
fn create_filesystem() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.ds("new");
    zfs.create(&dn(&fs), DatasetType::Filesystem, None).unwrap();
    assert!(zfs.exists(&fs));
    assert_eq!(zfs_get("type", &fs), "filesystem");
}

#[test]
fn create_volume() {
    let pool = TestPool::new();
    let zfs = lzc();
    let vol = pool.ds("vol");
    let mut props = NvList::new();
    props.insert("volsize", &(4u64 << 20)).unwrap();
    zfs.create(&dn(&vol), DatasetType::Volume, Some(&props))
        .unwrap();
    assert_eq!(zfs_get("type", &vol), "volume");
    assert_eq!(zfs_get("volsize", &vol), (4u64 << 20).to_string());
}

#[test]
fn create_with_props() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.ds("p");
    let mut props = str_props(&[("zrep:note", "hello")]);
    props.insert("quota", &(64u64 << 20)).unwrap();
    props.insert("recordsize", &(32u64 << 10)).unwrap();
    zfs.create(&dn(&fs), DatasetType::Filesystem, Some(&props))
        .unwrap();
    assert_eq!(zfs_get("zrep:note", &fs), "hello");
    assert_eq!(zfs_get("quota", &fs), (64u64 << 20).to_string());
    assert_eq!(zfs_get("recordsize", &fs), "32768");
}

/// An unknown property, or a number property given a string, is refused.
#[test]
fn create_with_unknown_or_wrongly_typed_prop_fails() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.ds("p");
    // quota is a number; a string value is refused.
    for bad in [("nosuchprop", "x"), ("quota", "lots")] {
        let props = str_props(&[bad]);
        let e = zfs
            .create(&dn(&fs), DatasetType::Filesystem, Some(&props))
            .unwrap_err();
        assert!(e.errno().is_some(), "{bad:?}: {e:?}");
        assert!(!zfs.exists(&fs), "{bad:?}");
    }
}

#[test]
fn create_below_a_volume_fails() {
    let pool = TestPool::new();
    let zfs = lzc();
    let vol = pool.ds("vol");
    let mut props = NvList::new();
    props.insert("volsize", &(1u64 << 20)).unwrap();
    zfs.create(&dn(&vol), DatasetType::Volume, Some(&props))
        .unwrap();
    let e = zfs
        .create(&dn(&format!("{vol}/fs")), DatasetType::Filesystem, None)
        .unwrap_err();
    assert!(e.errno().is_some(), "{e:?}");
    assert!(!zfs.exists(&format!("{vol}/fs")));
}

#[test]
fn create_names_with_every_legal_character() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.ds("a-b_c.d:e f");
    zfs.create(&dn(&fs), DatasetType::Filesystem, None).unwrap();
    assert!(cli_exists(&fs));
}

#[test]
fn destroy_filesystem() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.ds("gone");
    lzc_create(&zfs, &fs);
    zfs.destroy(&dn(&fs)).unwrap();
    assert!(!zfs.exists(&fs));
}

#[test]
fn destroy_volume() {
    let pool = TestPool::new();
    let zfs = lzc();
    let vol = pool.ds("vol");
    let mut props = NvList::new();
    props.insert("volsize", &(1u64 << 20)).unwrap();
    // volmode=none (3): no device node, whose creation would keep the volume busy.
    props.insert("volmode", &3u64).unwrap();
    zfs.create(&dn(&vol), DatasetType::Volume, Some(&props))
        .unwrap();
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

#[test]
fn destroy_mounted_filesystem_is_refused() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("mounted");
    let e = zfs.destroy(&dn(&fs)).unwrap_err();
    assert_eq!(e.errno().unwrap().raw(), libc::EBUSY, "{e:?}");
    assert!(zfs.exists(&fs));
}

// ---------- rollback ----------

#[test]
fn rollback_returns_the_latest_snapshot() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.fs("fs");
    fs.snaps(&["a", "b"]);
    let got = zfs.rollback(&dn(fs.name())).unwrap();
    assert_eq!(got.as_str(), fs.at("b"));
}

#[test]
fn rollback_reverts_data() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.fs("fs");
    fs.write("keep", 10_000, 1)
        .snap("a")
        .write("new", 10_000, 2);
    std::fs::remove_file(pool.path("fs/keep")).unwrap();
    zfs.rollback(&dn(fs.name())).unwrap();
    assert!(!pool.path("fs/new").exists());
    assert_eq!(std::fs::read(pool.path("fs/keep")).unwrap().len(), 10_000);
}

#[test]
fn rollback_to_latest() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.fs("fs");
    fs.snap("a").write("x", 1000, 1);
    zfs.rollback_to(&sn(&fs.at("a"))).unwrap();
    assert!(!pool.path("fs/x").exists());
}

#[test]
fn rollback_to_missing_snapshot_fails() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.fs("fs");
    fs.snap("a");
    let e = zfs.rollback_to(&sn(&fs.at("zz"))).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotLatestSnapshot),
        "{e:?}"
    );
}

// ---------- clone / promote / rename / exists ----------

#[test]
fn clone_snapshot_creates_a_clone() {
    let pool = TestPool::new();
    let zfs = lzc();
    let s = pool.fs("fs").snap("o").at("o");
    let c = pool.ds("clone");
    zfs.clone_snapshot(&dn(&c), &sn(&s), None).unwrap();
    assert_eq!(zfs_get("origin", &c), s);
}

#[test]
fn clone_with_props() {
    let pool = TestPool::new();
    let zfs = lzc();
    let s = pool.fs("fs").snap("o").at("o");
    let c = pool.ds("clone");
    let props = str_props(&[("zrep:c", "yes")]);
    zfs.clone_snapshot(&dn(&c), &sn(&s), Some(&props)).unwrap();
    assert_eq!(zfs_get("zrep:c", &c), "yes");
}

#[test]
fn promote_swaps_the_origin() {
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
}

#[test]
fn promote_not_a_clone_fails() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    let e = zfs.promote(&dn(&fs)).unwrap_err();
    assert!(e.errno().is_some(), "{e:?}");
    assert!(e.to_string().contains("cannot promote"), "{e}");
}

#[test]
fn promote_with_conflicting_snapshot_name_names_it() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.fs("fs");
    let s = fs.snap("o").at("o");
    let c = pool.ds("clone");
    zfs.clone_snapshot(&dn(&c), &sn(&s), None).unwrap();
    // The clone has a snapshot named like one promote would move to it.
    snap(&zfs, &[&format!("{c}@o")]);
    let e = zfs.promote(&dn(&c)).unwrap_err();
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
    let e = zfs
        .clone_snapshot(&dn(&p2.ds("c")), &sn(&s), None)
        .unwrap_err();
    assert!(e.errno().is_some(), "{e:?}");
    assert!(!zfs.exists(&p2.ds("c")));
    p1.lzc_fs("a");
    let e = zfs.rename(&dn(&p1.ds("a")), &dn(&p2.ds("a"))).unwrap_err();
    assert!(e.errno().is_some(), "{e:?}");
    assert!(zfs.exists(&p1.ds("a")));
}

// ---------- snapshot_written ----------

/// Only datasets written to since their newest snapshot, or without one, get it, in
/// one transaction group; what was written a moment ago counts (no sync first), and
/// a snapshot that exists is left alone.
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
    assert_eq!(names, [written.at("n"), never.at("n")]);
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
    // Only `again` had been written to since its @n (which was left alone).
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
