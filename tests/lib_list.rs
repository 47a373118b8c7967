//! libzfs against real pools: listing through channel programs, get_props, channel
//! programs themselves, sync, wait and snaprange_space.
use libzfs::{Errno, ErrorKind, Kind, NvList, ProgramLimits, WaitActivity};
use zrep_tests::*;

#[test]
fn list_recursive_parents_first() {
    let pool = TestPool::new();
    let zfs = lzc();
    for r in ["b", "a/x", "a/x/deep", "a/y", "c"] {
        pool.create(r);
    }
    let l = zfs.list(&dn(pool.name()), true, false).unwrap().unwrap();
    let names: Vec<&str> = l.iter().map(|d| d.dataset.name.as_str()).collect();
    assert_eq!(names.len(), 7, "{names:?}");
    assert_eq!(names[0], pool.name());
    for (i, n) in names.iter().enumerate() {
        if let Some((parent, _)) = n.rsplit_once('/') {
            let p = names.iter().position(|m| *m == parent).unwrap();
            assert!(p < i, "{parent} after {n}: {names:?}");
        }
    }
}

#[test]
fn list_non_recursive_is_just_the_root() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    pool.create("fs/child");
    let l = zfs.list(&dn(&fs), false, false).unwrap().unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].dataset.name.as_str(), fs);
    assert!(l[0].snapshots.is_empty());
}

#[test]
fn list_values_match_zfs_get() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    write_random(&pool.path("fs/d"), 100_000, 1);
    snap(&zfs, &[&format!("{fs}@s")]);
    let d = zfs.dataset(&dn(&fs)).unwrap().unwrap();
    assert_eq!(d.guid.to_string(), zfs_get("guid", &fs));
    assert_eq!(d.createtxg.to_string(), zfs_get("createtxg", &fs));
    assert_eq!(d.creation.to_string(), zfs_get("creation", &fs));
    assert_eq!(d.referenced.to_string(), zfs_get("referenced", &fs));
    assert_eq!(d.kind, Kind::Filesystem);
    assert_eq!(d.encryption, "off");
    assert!(d.encryption_root.is_none() && d.key_status.is_none());
    assert!(d.origin.is_none());
}

/// `Fields::REPLICATION` reads what replication needs, right, and nothing else.
#[test]
fn list_replication_fields() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    write_random(&pool.path("fs/d"), 100_000, 1);
    let s = format!("{fs}@s");
    snap(&zfs, &[&s]);
    let l = zfs
        .list_fields(&dn(&fs), false, true, libzfs::Fields::REPLICATION)
        .unwrap()
        .unwrap();
    let d = &l[0].dataset;
    assert_eq!(d.guid.to_string(), zfs_get("guid", &fs));
    assert_eq!(d.referenced.to_string(), zfs_get("referenced", &fs));
    assert_eq!(d.available.to_string(), zfs_get("available", &fs));
    assert_eq!(d.written.to_string(), zfs_get("written", &fs));
    assert_eq!((d.kind, d.encryption.as_str()), (Kind::Filesystem, "off"));
    assert_eq!((d.createtxg, d.used), (0, 0), "not read");
    let i = &l[0].snapshots[0];
    assert_eq!(i.guid.to_string(), zfs_get("guid", &s));
    assert_eq!(i.createtxg.to_string(), zfs_get("createtxg", &s));
    assert_eq!(i.creation.to_string(), zfs_get("creation", &s));
    assert_eq!((i.userrefs, i.used, i.written), (0, 0, 0));
}

#[test]
fn list_snapshot_values_match_zfs_get() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    write_random(&pool.path("fs/d"), 100_000, 1);
    let s = format!("{fs}@s");
    snap(&zfs, &[&s]);
    zfs.hold(
        &[libzfs::Hold {
            snapshot: sn(&s),
            tag: "t".into(),
        }],
        None,
    )
    .unwrap();
    let snaps = zfs.snapshots(&dn(&fs)).unwrap().unwrap();
    assert_eq!(snaps.len(), 1);
    let i = &snaps[0];
    assert_eq!(i.name.as_str(), s);
    assert_eq!(i.guid.to_string(), zfs_get("guid", &s));
    assert_eq!(i.createtxg.to_string(), zfs_get("createtxg", &s));
    assert_eq!(i.creation.to_string(), zfs_get("creation", &s));
    assert_eq!(i.referenced.to_string(), zfs_get("referenced", &s));
    assert_eq!(i.written.to_string(), zfs_get("written", &s));
    assert_eq!(i.userrefs, 1);
}

#[test]
fn list_guids_of_every_dataset_match() {
    let pool = TestPool::new();
    let zfs = lzc();
    for r in ["a", "a/b", "c"] {
        pool.create(r);
    }
    for l in zfs.list(&dn(pool.name()), true, false).unwrap().unwrap() {
        let n = l.dataset.name.as_str();
        assert_eq!(l.dataset.guid.to_string(), zfs_get("guid", n), "{n}");
        assert_eq!(
            l.dataset.createtxg.to_string(),
            zfs_get("createtxg", n),
            "{n}"
        );
    }
}

#[test]
fn list_snapshots_in_creation_order() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    for n in ["zz", "aa", "mm", "bb"] {
        snap(&zfs, &[&format!("{fs}@{n}")]);
    }
    let l = zfs.list(&dn(&fs), false, true).unwrap().unwrap();
    let names: Vec<String> = l[0].snapshots.iter().map(|s| s.name.to_string()).collect();
    assert_eq!(names, cli_snapshots(&fs));
    let shorts: Vec<&str> = l[0].snapshots.iter().map(|s| s.name.short_name()).collect();
    assert_eq!(shorts, ["zz", "aa", "mm", "bb"]);
}

#[test]
fn list_recursive_with_snapshots() {
    let pool = TestPool::new();
    let zfs = lzc();
    let a = pool.create("a");
    let b = pool.create("a/b");
    snap(&zfs, &[&format!("{a}@x"), &format!("{b}@x")]);
    snap(&zfs, &[&format!("{b}@y")]);
    let l = zfs.list(&dn(&a), true, true).unwrap().unwrap();
    assert_eq!(l.len(), 2);
    assert_eq!(l[0].snapshots.len(), 1);
    assert_eq!(l[1].snapshots.len(), 2);
    assert_eq!(l[1].snapshots[1].name.as_str(), format!("{b}@y"));
}

#[test]
fn list_missing_root_is_none() {
    let pool = TestPool::new();
    let zfs = lzc();
    assert!(zfs
        .list(&dn(&pool.ds("nope")), true, true)
        .unwrap()
        .is_none());
    assert!(zfs.dataset(&dn(&pool.ds("nope"))).unwrap().is_none());
    assert!(zfs.snapshots(&dn(&pool.ds("nope"))).unwrap().is_none());
}

#[test]
fn list_written_after_writes() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    snap(&zfs, &[&format!("{fs}@s")]);
    let before = zfs.dataset(&dn(&fs)).unwrap().unwrap().written;
    write_random(&pool.path("fs/d"), 500_000, 1);
    zfs.sync(pool.name(), true).unwrap();
    let d = zfs.dataset(&dn(&fs)).unwrap().unwrap();
    assert!(
        d.written > before && d.written >= 400_000,
        "{before} -> {}",
        d.written
    );
    assert!(d.used >= d.written);
}

#[test]
fn list_available_and_no_token() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    let d = zfs.dataset(&dn(&fs)).unwrap().unwrap();
    assert!(d.available > 0);
    assert!(d.available <= 256 << 20);
    assert!(d.receive_resume_token.is_none());
}

#[test]
fn list_reports_volumes_and_clones() {
    let pool = TestPool::new();
    let zfs = lzc();
    let vol = pool.ds("vol");
    let mut p = NvList::new();
    p.insert("volsize", &(1u64 << 20)).unwrap();
    zfs.create(&dn(&vol), libzfs::DatasetType::Volume, Some(&p))
        .unwrap();
    let fs = pool.create("fs");
    let s = format!("{fs}@o");
    snap(&zfs, &[&s]);
    zfs.clone_snapshot(&dn(&pool.ds("clone")), &sn(&s), None)
        .unwrap();
    let v = zfs.dataset(&dn(&vol)).unwrap().unwrap();
    assert_eq!(v.kind, Kind::Volume);
    let c = zfs.dataset(&dn(&pool.ds("clone"))).unwrap().unwrap();
    assert_eq!(c.origin.as_deref(), Some(s.as_str()));
}

#[test]
fn list_200_snapshots() {
    let pool = TestPool::new();
    let zfs = lzc();
    // One snapshot per filesystem per transaction group: 10 batches of 20.
    snapshot_grid(&zfs, &pool, 20, 10);
    let l = zfs.list(&dn(pool.name()), true, true).unwrap().unwrap();
    let total: usize = l.iter().map(|d| d.snapshots.len()).sum();
    assert_eq!(total, 200);
    for d in &l[1..] {
        let shorts: Vec<&str> = d.snapshots.iter().map(|s| s.name.short_name()).collect();
        assert_eq!(shorts, (0..10).map(|r| format!("r{r}")).collect::<Vec<_>>());
        assert!(d.snapshots.iter().all(|s| s.guid != 0));
    }
}

#[test]
fn channel_program_one_snapshot_per_fs_per_txg() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    let prog = format!(
        "local a = zfs.sync.snapshot('{fs}@one')\nlocal b = zfs.sync.snapshot('{fs}@two')\nreturn {{a = a, b = b}}"
    );
    let out = zfs
        .channel_program(
            pool.name(),
            &prog,
            &NvList::new(),
            ProgramLimits::default(),
            true,
        )
        .unwrap();
    let ret = out.get_nvlist("return").unwrap();
    assert_eq!(ret.get("a").and_then(|v| v.as_i64()), Some(0));
    // ZFS refuses a second snapshot of one filesystem in the same txg (EAGAIN).
    assert_eq!(
        ret.get("b").and_then(|v| v.as_i64()),
        Some(libc::EAGAIN as i64)
    );
    assert!(zfs.exists(&format!("{fs}@one")));
    assert!(!zfs.exists(&format!("{fs}@two")));
}

#[test]
fn list_many_datasets() {
    let pool = TestPool::new();
    let zfs = lzc();
    for i in 0..30 {
        lzc_create(&zfs, &pool.ds(&format!("d{i:02}")));
    }
    let l = zfs.list(&dn(pool.name()), true, true).unwrap().unwrap();
    assert_eq!(l.len(), 31);
}

// ---------- get_props ----------

// lzc_get_props (2.3) reads POOL properties (ZFS_IOC_POOL_GET_PROPS). Before 2.3
// pool_props is Unsupported (lib_errors.rs).

#[cfg(openzfs_2_3)]
#[test]
fn get_props_of_pool_matches_zpool_get() {
    let pool = TestPool::new();
    let zfs = lzc();
    let p = zfs.pool_props(pool.name()).unwrap();
    assert!(!p.is_empty());
    let guid = p
        .get_nvlist("guid")
        .and_then(|g| g.get_u64("value"))
        .unwrap_or_else(|| panic!("{p:?}"));
    let cli = run(std::process::Command::new("zpool").args([
        "get",
        "-Hp",
        "-o",
        "value",
        "guid",
        pool.name(),
    ]));
    assert_eq!(
        guid.to_string(),
        String::from_utf8_lossy(&cli.stdout).trim()
    );
}

#[cfg(openzfs_2_3)]
#[test]
fn get_props_of_missing_pool_fails() {
    let _pool = TestPool::new();
    let zfs = lzc();
    let e = zfs.pool_props("zrepnosuchpool").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e:?}");
    assert!(e.to_string().contains("zrepnosuchpool"), "{e}");
}

#[cfg(openzfs_2_3)]
#[test]
fn get_props_of_a_dataset_is_refused() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    // The ioctl takes a pool name: a dataset name is invalid.
    let e = zfs.pool_props(&fs).unwrap_err();
    assert_eq!(e.errno().unwrap().raw(), libc::EINVAL, "{e:?}");
}

// ---------- channel programs ----------

#[test]
fn channel_program_sync_snapshot() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    let s = format!("{fs}@cp");
    let mut args = NvList::new();
    args.insert("snap", s.as_str()).unwrap();
    let out = zfs
        .channel_program(
            pool.name(),
            "local a = ...\nreturn zfs.sync.snapshot(a['snap'])",
            &args,
            ProgramLimits::default(),
            true,
        )
        .unwrap();
    assert!(out.contains("return"), "{out:?}");
    assert!(zfs.exists(&s));
}

#[test]
fn channel_program_nosync_returns_a_table() {
    let pool = TestPool::new();
    let zfs = lzc();
    let out = zfs
        .channel_program(
            pool.name(),
            "return {answer = 42, word = 'hi', nested = {x = 'y'}}",
            &NvList::new(),
            ProgramLimits::default(),
            false,
        )
        .unwrap();
    let ret = out.get_nvlist("return").expect("a table");
    assert_eq!(ret.get_str("word"), Some("hi"));
    let answer = ret.get("answer").unwrap();
    assert_eq!(
        answer.as_i64().or(answer.as_u64().map(|v| v as i64)),
        Some(42)
    );
    assert_eq!(ret.get_nvlist("nested").unwrap().get_str("x"), Some("y"));
}

#[test]
fn channel_program_nosync_cannot_change_anything() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    let r = zfs.channel_program(
        pool.name(),
        &format!("return zfs.sync.snapshot('{fs}@x')"),
        &NvList::new(),
        ProgramLimits::default(),
        false,
    );
    assert!(r.is_err(), "{r:?}");
    assert!(!zfs.exists(&format!("{fs}@x")));
}

#[test]
fn channel_program_lua_error_carries_its_text() {
    let pool = TestPool::new();
    let zfs = lzc();
    let e = zfs
        .channel_program(
            pool.name(),
            "error('zrep says no')",
            &NvList::new(),
            ProgramLimits::default(),
            true,
        )
        .unwrap_err();
    assert!(e.to_string().contains("zrep says no"), "{e}");
    assert!(e.to_string().contains(pool.name()), "{e}");
}

#[test]
fn channel_program_instruction_limit() {
    let pool = TestPool::new();
    let zfs = lzc();
    let e = zfs
        .channel_program(
            pool.name(),
            "local i = 0\nwhile true do i = i + 1 end",
            &NvList::new(),
            ProgramLimits {
                instructions: 10_000,
                memory: 10 << 20,
            },
            false,
        )
        .unwrap_err();
    assert_eq!(e.errno(), Some(Errno::ETIME), "{e:?}");
}

#[test]
fn channel_program_memory_limit() {
    let pool = TestPool::new();
    let zfs = lzc();
    let e = zfs
        .channel_program(
            pool.name(),
            "local t = {}\nfor i = 1, 1000000 do t[i] = 'xxxxxxxxxxxxxxxx' .. i end",
            &NvList::new(),
            ProgramLimits {
                instructions: 100_000_000,
                memory: 64 << 10,
            },
            false,
        )
        .unwrap_err();
    assert_eq!(e.errno().unwrap().raw(), libc::ENOSPC, "{e:?}");
}

#[test]
fn channel_program_gets_its_arguments() {
    let pool = TestPool::new();
    let zfs = lzc();
    let mut args = NvList::new();
    // Channel programs take Lua numbers as int64 (a uint64 is refused).
    args.insert("n", &7i64).unwrap();
    args.insert("s", "abc").unwrap();
    let out = zfs
        .channel_program(
            pool.name(),
            "local a = ...\nreturn a['s'] .. tostring(a['n'] * 6)",
            &args,
            ProgramLimits::default(),
            false,
        )
        .unwrap();
    assert_eq!(out.get_str("return"), Some("abc42"));
}

// ---------- sync / wait / snaprange_space ----------

#[test]
fn sync_pool() {
    let pool = TestPool::new();
    let zfs = lzc();
    zfs.sync(pool.name(), false).unwrap();
    zfs.sync(pool.name(), true).unwrap();
}

#[test]
fn wait_for_scrub_on_idle_pool() {
    let pool = TestPool::new();
    let zfs = lzc();
    assert!(!zfs.wait(pool.name(), WaitActivity::Scrub).unwrap());
    assert!(!zfs.wait(pool.name(), WaitActivity::Free).unwrap());
}

#[test]
fn wait_for_a_scrub() {
    let pool = TestPool::new();
    let zfs = lzc();
    write_random(&pool.path("d"), 1 << 20, 1);
    run(std::process::Command::new("zpool").args(["scrub", pool.name()]));
    // Whether it still had to wait depends on timing; afterwards it is idle.
    zfs.wait(pool.name(), WaitActivity::Scrub).unwrap();
    assert!(!zfs.wait(pool.name(), WaitActivity::Scrub).unwrap());
}

#[test]
fn wait_fs_deleteq() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    zfs.wait_fs_deleteq(&dn(&fs)).unwrap();
}

#[test]
fn snaprange_space_counts_unique_data() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    snap(&zfs, &[&format!("{fs}@a")]);
    write_random(&pool.path("fs/d"), 1 << 20, 1);
    snap(&zfs, &[&format!("{fs}@b")]);
    std::fs::remove_file(pool.path("fs/d")).unwrap();
    snap(&zfs, &[&format!("{fs}@c")]);
    let b_only = zfs
        .snaprange_space(&sn(&format!("{fs}@b")), &sn(&format!("{fs}@b")))
        .unwrap();
    assert!(b_only >= 1 << 20, "{b_only}");
    let all = zfs
        .snaprange_space(&sn(&format!("{fs}@a")), &sn(&format!("{fs}@c")))
        .unwrap();
    assert!(all >= b_only);
    let a_only = zfs
        .snaprange_space(&sn(&format!("{fs}@a")), &sn(&format!("{fs}@a")))
        .unwrap();
    assert!(a_only < 1 << 20, "{a_only}");
}

#[test]
fn snaprange_space_wrong_order_fails() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("fs");
    snap(&zfs, &[&format!("{fs}@a")]);
    snap(&zfs, &[&format!("{fs}@b")]);
    let e = zfs
        .snaprange_space(&sn(&format!("{fs}@b")), &sn(&format!("{fs}@a")))
        .unwrap_err();
    assert!(e.errno().is_some(), "{e:?}");
}

#[test]
fn snaprange_space_unrelated_fails() {
    let pool = TestPool::new();
    let zfs = lzc();
    let a = pool.create("a");
    let b = pool.create("b");
    snap(&zfs, &[&format!("{a}@x")]);
    snap(&zfs, &[&format!("{b}@y")]);
    let e = zfs
        .snaprange_space(&sn(&format!("{a}@x")), &sn(&format!("{b}@y")))
        .unwrap_err();
    assert!(e.errno().is_some(), "{e:?}");
}

/// A tree whose snapshots are too many for one channel program is listed in two
/// steps (its datasets, then each one's snapshots), with the same result. A small
/// memory limit stands in for the ~200,000 snapshots that exhaust the kernel's
/// largest one.
#[test]
fn list_too_large_for_one_program_lists_in_steps() {
    let pool = TestPool::new();
    let zfs = lzc();
    let root = pool.create("tree");
    for i in 0..40 {
        lzc_create(&zfs, &format!("{root}/d{i:02}"));
    }
    for s in 0..10 {
        zrep_tests::zfs(&[
            "snapshot",
            "-r",
            &format!("{root}@s{s}-{}", "x".repeat(200)),
        ]);
    }
    let fields = libzfs::Fields::REPLICATION;
    let whole = zfs
        .list_fields(&dn(&root), true, true, fields)
        .unwrap()
        .unwrap();
    // The largest memory limit (halving from 1 MiB) that stops one program.
    let mut small = libzfs::Scope {
        recursive: true,
        snapshots: true,
        fields,
        limits: ProgramLimits {
            instructions: 10_000_000,
            memory: 1 << 20,
        },
    };
    while zfs.list_program(&dn(&root), small).is_ok() {
        small.limits.memory /= 2;
        assert!(
            small.limits.memory >= 32 << 10,
            "no memory limit stops one program: the test tests nothing"
        );
    }
    let steps = zfs.list_within(&dn(&root), small).unwrap().unwrap();
    type Flat = Vec<(String, Vec<(String, u64, u64)>)>;
    let flat = |l: &[libzfs::Listed]| -> Flat {
        l.iter()
            .map(|d| {
                let s = d.snapshots.iter();
                let s = s
                    .map(|s| (s.name.to_string(), s.guid, s.createtxg))
                    .collect();
                (d.dataset.name.to_string(), s)
            })
            .collect()
    };
    assert_eq!(whole.len(), 41);
    assert_eq!(whole.iter().map(|d| d.snapshots.len()).sum::<usize>(), 410);
    assert_eq!(flat(&steps), flat(&whole));
}

// ---------- calls that fail ----------

/// Each call fails with its exact kind, naming what it should.
#[test]
fn failing_calls_have_their_kind() {
    let pool = TestPool::new();
    let zfs = lzc();
    let x = pool.fs("a").snap("x").at("x");
    let mut uint64 = NvList::new();
    uint64.insert("n", &7u64).unwrap();
    let program = |pool: &str, text: &str, args: &NvList, limits| {
        zfs.channel_program(pool, text, args, limits, false)
            .map(drop)
    };
    let empty = NvList::new();
    let endless = ProgramLimits {
        instructions: u64::MAX,
        memory: 10 << 20,
    };
    expect_kinds([
        (
            "list in a missing pool",
            zfs.list(&dn("zrepnosuchpool/x"), false, false).map(drop),
            ErrorKind::NotFound,
            &["cannot list zrepnosuchpool/x"],
        ),
        (
            "channel program with a uint64 argument",
            program(pool.name(), "return 1", &uint64, ProgramLimits::default()),
            ErrorKind::InvalidArgument,
            &["nvpair type"],
        ),
        (
            "channel program with a syntax error",
            program(
                pool.name(),
                "this is not lua(",
                &empty,
                ProgramLimits::default(),
            ),
            ErrorKind::InvalidArgument,
            &[],
        ),
        (
            "channel program with invalid limits",
            program(pool.name(), "return 1", &empty, endless),
            ErrorKind::InvalidArgument,
            &[],
        ),
        (
            "channel program in a missing pool",
            program(
                "zrepnosuchpool",
                "return 1",
                &empty,
                ProgramLimits::default(),
            ),
            ErrorKind::NotFound,
            &[],
        ),
        (
            "sync a missing pool",
            zfs.sync("zrepnosuchpool", true),
            ErrorKind::NotFound,
            &["cannot sync pool zrepnosuchpool"],
        ),
        (
            "wait on a missing pool",
            zfs.wait("zrepnosuchpool", WaitActivity::Scrub).map(drop),
            ErrorKind::NotFound,
            &[],
        ),
        (
            "snaprange_space to a missing snapshot",
            zfs.snaprange_space(&sn(&x), &sn(&pool.ds("a@none")))
                .map(drop),
            ErrorKind::NotFound,
            &[],
        ),
    ]);
}
