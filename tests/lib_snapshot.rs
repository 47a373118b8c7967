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
fn snapshot_duplicate_is_already_exists() {
    let pool = TestPool::new();
    let zfs = lzc();
    let s = format!("{}@dup", pool.create("fs"));
    snap(&zfs, &[&s]);
    let e = expect_kind(zfs.snapshot(&[sn(&s)], None), ErrorKind::AlreadyExists);
    assert!(e.to_string().contains(&s), "{e}");
}

#[test]
fn snapshot_duplicate_error_lists_the_item() {
    let pool = TestPool::new();
    let zfs = lzc();
    let s = format!("{}@dup", pool.create("fs"));
    snap(&zfs, &[&s]);
    let e = zfs.snapshot(&[sn(&s)], None).unwrap_err();
    let z = e.zfs().unwrap();
    assert!(
        z.items()
            .iter()
            .any(|i| i.name == s && i.errno.raw() == libc::EEXIST),
        "{z:?}"
    );
}

#[test]
fn snapshot_of_missing_fs_is_not_found() {
    let pool = TestPool::new();
    let zfs = lzc();
    let s = pool.ds("nope@s");
    let e = expect_kind(zfs.snapshot(&[sn(&s)], None), ErrorKind::NotFound);
    assert!(e.to_string().contains("nope"), "{e}");
}

#[test]
fn snapshot_of_missing_pool_is_not_found() {
    let _pool = TestPool::new();
    let zfs = lzc();
    let e = zfs
        .snapshot(&[sn("zrepnosuchpool/fs@s")], None)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e:?}");
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
    let dup = format!("{}@s", pool.create("a"));
    snap(&zfs, &[&dup]);
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
fn snapshot_batch_across_pools_is_pools_differ() {
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
    let fs = pool.create("fs");
    let a = format!("{fs}@a");
    let b = format!("{fs}@b");
    snap(&zfs, &[&a]);
    snap(&zfs, &[&b]);
    zfs.destroy_snapshots(&[sn(&a), sn(&b)], false).unwrap();
    assert!(!zfs.exists(&a) && !zfs.exists(&b));
    assert!(cli_snapshots(&fs).is_empty());
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
    let fs = pool.create("fs");
    let a = format!("{fs}@a");
    snap(&zfs, &[&a]);
    zfs.destroy_snapshots(&[sn(&a), sn(&format!("{fs}@gone"))], false)
        .unwrap();
    assert!(!zfs.exists(&a));
}

#[test]
fn destroy_held_snapshot_is_held() {
    let pool = TestPool::new();
    let zfs = lzc();
    let s = format!("{}@h", pool.create("fs"));
    snap(&zfs, &[&s]);
    zfs.hold(
        &[Hold {
            snapshot: sn(&s),
            tag: "keep".into(),
        }],
        None,
    )
    .unwrap();
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
    let s = format!("{}@h", pool.create("fs"));
    snap(&zfs, &[&s]);
    let hold = Hold {
        snapshot: sn(&s),
        tag: "keep".into(),
    };
    zfs.hold(std::slice::from_ref(&hold), None).unwrap();
    zfs.destroy_snapshots(&[sn(&s)], true).unwrap();
    assert!(zfs.exists(&s), "still held");
    assert_eq!(zfs_get("defer_destroy", &s), "on");
    zfs.release(&[hold]).unwrap();
    assert!(!zfs.exists(&s), "gone with its last hold");
}

#[test]
fn destroy_snapshot_with_clone_is_has_clones() {
    let pool = TestPool::new();
    let zfs = lzc();
    let s = format!("{}@o", pool.create("fs"));
    snap(&zfs, &[&s]);
    zfs.clone_snapshot(&dn(&pool.ds("clone")), &sn(&s), None)
        .unwrap();
    let e = expect_kind(
        zfs.destroy_snapshots(&[sn(&s)], false),
        ErrorKind::HasClones,
    );
    assert!(e.to_string().contains("clones"), "{e}");
    assert!(zfs.exists(&s));
}

#[test]
fn deferred_destroy_of_cloned_snapshot_waits_for_the_clone() {
    let pool = TestPool::new();
    let zfs = lzc();
    let s = format!("{}@o", pool.create("fs"));
    snap(&zfs, &[&s]);
    let clone = dn(&pool.ds("clone"));
    zfs.clone_snapshot(&clone, &sn(&s), None).unwrap();
    zfs.destroy_snapshots(&[sn(&s)], true).unwrap();
    assert!(zfs.exists(&s));
    assert_eq!(zfs_get("defer_destroy", &s), "on");
    zfs.destroy(&clone).unwrap();
    assert!(!zfs.exists(&s));
}

#[test]
fn destroy_snapshots_across_pools() {
    let p1 = TestPool::new();
    let p2 = TestPool::new();
    let zfs = lzc();
    let a = format!("{}@x", p1.name());
    let b = format!("{}@x", p2.name());
    snap(&zfs, &[&a]);
    snap(&zfs, &[&b]);
    let r = zfs.destroy_snapshots(&[sn(&a), sn(&b)], false);
    // lzc_destroy_snaps sends the batch to the first snapshot's pool: ZFS refuses
    // names of another pool (EXDEV), destroying nothing.
    let e = expect_kind(r, ErrorKind::PoolsDiffer);
    assert!(e.errno().is_some());
    assert!(zfs.exists(&a) && zfs.exists(&b));
}

#[test]
fn destroy_mounted_snapshot_unmounts_it() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    write_random(&pool.path("fs/f"), 4096, 3);
    let s = format!("{fs}@m");
    snap(&zfs, &[&s]);
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
fn create_volume_without_volsize_fails() {
    let pool = TestPool::new();
    let zfs = lzc();
    let vol = pool.ds("vol");
    let e = zfs
        .create(&dn(&vol), DatasetType::Volume, None)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e:?}");
    assert!(!zfs.exists(&vol));
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

#[test]
fn create_with_unknown_prop_fails() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.ds("p");
    let props = str_props(&[("nosuchprop", "x")]);
    let e = zfs
        .create(&dn(&fs), DatasetType::Filesystem, Some(&props))
        .unwrap_err();
    assert!(e.errno().is_some(), "{e:?}");
    assert!(!zfs.exists(&fs));
}

#[test]
fn create_with_wrongly_typed_prop_fails() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.ds("p");
    // quota is a number; a string value is refused.
    let props = str_props(&[("quota", "lots")]);
    let e = zfs
        .create(&dn(&fs), DatasetType::Filesystem, Some(&props))
        .unwrap_err();
    assert!(e.errno().is_some(), "{e:?}");
    assert!(!zfs.exists(&fs));
}

#[test]
fn create_existing_is_already_exists() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    let e = expect_kind(
        zfs.create(&dn(&fs), DatasetType::Filesystem, None),
        ErrorKind::AlreadyExists,
    );
    assert!(e.to_string().contains(&fs), "{e}");
    assert!(e.to_string().contains("cannot create"), "{e}");
}

#[test]
fn create_without_parent_is_not_found() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.ds("no/parent");
    expect_kind(
        zfs.create(&dn(&fs), DatasetType::Filesystem, None),
        ErrorKind::NotFound,
    );
    assert!(!zfs.exists(&pool.ds("no")));
}

#[test]
fn create_in_missing_pool_is_not_found() {
    let _pool = TestPool::new();
    let zfs = lzc();
    expect_kind(
        zfs.create(&dn("zrepnosuchpool/fs"), DatasetType::Filesystem, None),
        ErrorKind::NotFound,
    );
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
fn destroy_missing_is_not_found() {
    let pool = TestPool::new();
    let zfs = lzc();
    let e = expect_kind(zfs.destroy(&dn(&pool.ds("nope"))), ErrorKind::NotFound);
    assert!(e.to_string().contains("cannot destroy"), "{e}");
}

#[test]
fn destroy_with_children_fails_naming_the_dataset() {
    let pool = TestPool::new();
    let zfs = lzc();
    let parent = pool.ds("parent");
    lzc_create(&zfs, &parent);
    lzc_create(&zfs, &format!("{parent}/child"));
    let e = zfs.destroy(&dn(&parent)).unwrap_err();
    // ZFS returns EEXIST for a filesystem with children.
    assert_eq!(e.errno().unwrap().raw(), libc::EEXIST, "{e:?}");
    assert!(e.to_string().contains(&parent), "{e}");
    assert!(zfs.exists(&parent));
}

#[test]
fn destroy_with_children_kind_is_busy() {
    let pool = TestPool::new();
    let zfs = lzc();
    let parent = pool.ds("parent");
    lzc_create(&zfs, &parent);
    lzc_create(&zfs, &format!("{parent}/child"));
    expect_kind(zfs.destroy(&dn(&parent)), ErrorKind::Busy);
}

#[test]
fn destroy_with_snapshots_fails_naming_the_dataset() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.ds("fs");
    lzc_create(&zfs, &fs);
    snap(&zfs, &[&format!("{fs}@s")]);
    let e = zfs.destroy(&dn(&fs)).unwrap_err();
    // ZFS returns EBUSY for a filesystem that has snapshots.
    assert_eq!(e.errno().unwrap().raw(), libc::EBUSY, "{e:?}");
    assert!(e.to_string().contains(&fs), "{e}");
    assert!(zfs.exists(&fs));
}

#[test]
fn destroy_with_snapshots_kind_is_busy() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.ds("fs");
    lzc_create(&zfs, &fs);
    snap(&zfs, &[&format!("{fs}@s")]);
    let e = expect_kind(zfs.destroy(&dn(&fs)), ErrorKind::Busy);
    assert!(!e.to_string().contains("held"), "{e}");
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
    let fs = pool.create("fs");
    snap(&zfs, &[&format!("{fs}@a")]);
    snap(&zfs, &[&format!("{fs}@b")]);
    let got = zfs.rollback(&dn(&fs)).unwrap();
    assert_eq!(got.as_str(), format!("{fs}@b"));
}

#[test]
fn rollback_reverts_data() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    write_random(&pool.path("fs/keep"), 10_000, 1);
    snap(&zfs, &[&format!("{fs}@a")]);
    write_random(&pool.path("fs/new"), 10_000, 2);
    std::fs::remove_file(pool.path("fs/keep")).unwrap();
    zfs.rollback(&dn(&fs)).unwrap();
    assert!(!pool.path("fs/new").exists());
    assert_eq!(std::fs::read(pool.path("fs/keep")).unwrap().len(), 10_000);
}

#[test]
fn rollback_to_latest() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    snap(&zfs, &[&format!("{fs}@a")]);
    write_random(&pool.path("fs/x"), 1000, 1);
    zfs.rollback_to(&sn(&format!("{fs}@a"))).unwrap();
    assert!(!pool.path("fs/x").exists());
}

#[test]
fn rollback_to_older_is_not_latest() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    snap(&zfs, &[&format!("{fs}@a")]);
    snap(&zfs, &[&format!("{fs}@b")]);
    let e = zfs.rollback_to(&sn(&format!("{fs}@a"))).unwrap_err();
    // ZFS says EEXIST when the target is not the most recent snapshot.
    assert_eq!(e.errno().unwrap().raw(), libc::EEXIST, "{e:?}");
    assert!(e.to_string().contains(&format!("{fs}@a")), "{e}");
    assert!(zfs.exists(&format!("{fs}@b")));
}

#[test]
fn rollback_to_older_kind_is_not_latest() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    snap(&zfs, &[&format!("{fs}@a")]);
    snap(&zfs, &[&format!("{fs}@b")]);
    expect_kind(
        zfs.rollback_to(&sn(&format!("{fs}@a"))),
        ErrorKind::NotLatestSnapshot,
    );
}

#[test]
fn rollback_without_snapshots_fails() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    let e = zfs.rollback(&dn(&fs)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e:?}");
    assert!(e.to_string().contains("cannot roll back"), "{e}");
}

#[test]
fn rollback_to_missing_snapshot_fails() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    snap(&zfs, &[&format!("{fs}@a")]);
    let e = zfs.rollback_to(&sn(&format!("{fs}@zz"))).unwrap_err();
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
    let s = format!("{}@o", pool.create("fs"));
    snap(&zfs, &[&s]);
    let c = pool.ds("clone");
    zfs.clone_snapshot(&dn(&c), &sn(&s), None).unwrap();
    assert_eq!(zfs_get("origin", &c), s);
}

#[test]
fn clone_with_props() {
    let pool = TestPool::new();
    let zfs = lzc();
    let s = format!("{}@o", pool.create("fs"));
    snap(&zfs, &[&s]);
    let c = pool.ds("clone");
    let props = str_props(&[("zrep:c", "yes")]);
    zfs.clone_snapshot(&dn(&c), &sn(&s), Some(&props)).unwrap();
    assert_eq!(zfs_get("zrep:c", &c), "yes");
}

#[test]
fn clone_of_missing_snapshot_is_not_found() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    expect_kind(
        zfs.clone_snapshot(&dn(&pool.ds("c")), &sn(&format!("{fs}@nope")), None),
        ErrorKind::NotFound,
    );
}

#[test]
fn clone_onto_existing_is_already_exists() {
    let pool = TestPool::new();
    let zfs = lzc();
    let s = format!("{}@o", pool.create("fs"));
    snap(&zfs, &[&s]);
    let other = pool.create("other");
    expect_kind(
        zfs.clone_snapshot(&dn(&other), &sn(&s), None),
        ErrorKind::AlreadyExists,
    );
}

#[test]
fn clone_across_pools_fails() {
    let p1 = TestPool::new();
    let p2 = TestPool::new();
    let zfs = lzc();
    let s = format!("{}@o", p1.create("fs"));
    snap(&zfs, &[&s]);
    let e = zfs
        .clone_snapshot(&dn(&p2.ds("c")), &sn(&s), None)
        .unwrap_err();
    assert!(e.errno().is_some(), "{e:?}");
    assert!(!zfs.exists(&p2.ds("c")));
}

#[test]
fn promote_swaps_the_origin() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    let s = format!("{fs}@o");
    snap(&zfs, &[&s]);
    let c = pool.ds("clone");
    zfs.clone_snapshot(&dn(&c), &sn(&s), None).unwrap();
    zfs.promote(&dn(&c)).unwrap();
    assert_eq!(zfs_get("origin", &c), "-");
    assert_eq!(zfs_get("origin", &fs), format!("{c}@o"));
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
    let fs = pool.create("fs");
    let s = format!("{fs}@o");
    snap(&zfs, &[&s]);
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
    let a = pool.ds("a");
    lzc_create(&zfs, &a);
    snap(&zfs, &[&format!("{a}@s")]);
    zfs.rename(&dn(&a), &dn(&pool.ds("b"))).unwrap();
    assert!(!zfs.exists(&a));
    assert!(zfs.exists(&pool.ds("b")));
    assert!(zfs.exists(&pool.ds("b@s")));
}

#[test]
fn rename_missing_is_not_found() {
    let pool = TestPool::new();
    let zfs = lzc();
    expect_kind(
        zfs.rename(&dn(&pool.ds("nope")), &dn(&pool.ds("b"))),
        ErrorKind::NotFound,
    );
}

#[test]
fn rename_onto_existing_is_already_exists() {
    let pool = TestPool::new();
    let zfs = lzc();
    lzc_create(&zfs, &pool.ds("a"));
    lzc_create(&zfs, &pool.ds("b"));
    expect_kind(
        zfs.rename(&dn(&pool.ds("a")), &dn(&pool.ds("b"))),
        ErrorKind::AlreadyExists,
    );
}

#[test]
fn rename_into_missing_parent_is_not_found() {
    let pool = TestPool::new();
    let zfs = lzc();
    lzc_create(&zfs, &pool.ds("a"));
    expect_kind(
        zfs.rename(&dn(&pool.ds("a")), &dn(&pool.ds("x/y"))),
        ErrorKind::NotFound,
    );
    assert!(zfs.exists(&pool.ds("a")));
}

#[test]
fn rename_across_pools_fails() {
    let p1 = TestPool::new();
    let p2 = TestPool::new();
    let zfs = lzc();
    lzc_create(&zfs, &p1.ds("a"));
    let e = zfs.rename(&dn(&p1.ds("a")), &dn(&p2.ds("a"))).unwrap_err();
    assert!(e.errno().is_some(), "{e:?}");
    assert!(zfs.exists(&p1.ds("a")));
}

#[test]
fn exists_for_every_kind() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    let s = format!("{fs}@s");
    snap(&zfs, &[&s]);
    zfs.bookmark(&[(bn(&format!("{fs}#b")), src(&s))]).unwrap();
    assert!(zfs.exists(pool.name()));
    assert!(zfs.exists(&fs));
    assert!(zfs.exists(&s));
    assert!(!zfs.exists(&pool.ds("missing")));
    assert!(!zfs.exists(&format!("{fs}@missing")));
    assert!(!zfs.exists(&format!("{fs}#missing")));
    assert!(!zfs.exists("zrepnosuchpool"));
    assert!(!zfs.exists("bad\0name"));
}

#[test]
fn exists_for_bookmark() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    let s = format!("{fs}@s");
    snap(&zfs, &[&s]);
    zfs.bookmark(&[(bn(&format!("{fs}#b")), src(&s))]).unwrap();
    assert!(zfs.exists(&format!("{fs}#b")));
}
