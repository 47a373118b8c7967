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

/// `dataset`, `list_fields` with `Fields::REPLICATION` (what replication needs, right,
/// and nothing else) and `snapshots` read what `zfs get` reads.
#[test]
fn list_values_match_zfs_get() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.fs("fs");
    let (name, s) = (fs.name(), fs.at("s"));
    fs.write("d", 100_000, 1).snap("s");
    let d = zfs.dataset(&dn(name)).unwrap().unwrap();
    assert_eq!(d.guid.to_string(), zfs_get("guid", name));
    assert_eq!(d.createtxg.to_string(), zfs_get("createtxg", name));
    assert_eq!(d.creation.to_string(), zfs_get("creation", name));
    assert_eq!(d.referenced.to_string(), zfs_get("referenced", name));
    assert_eq!(d.kind, Kind::Filesystem);
    assert_eq!(d.encryption, "off");
    assert!(d.encryption_root.is_none() && d.key_status.is_none());
    assert!(d.origin.is_none());

    let l = zfs
        .list_fields(&dn(name), false, true, libzfs::Fields::REPLICATION)
        .unwrap()
        .unwrap();
    let d = &l[0].dataset;
    assert_eq!(d.guid.to_string(), zfs_get("guid", name));
    assert_eq!(d.referenced.to_string(), zfs_get("referenced", name));
    assert_eq!(d.available.to_string(), zfs_get("available", name));
    assert_eq!(d.written.to_string(), zfs_get("written", name));
    assert_eq!((d.kind, d.encryption.as_str()), (Kind::Filesystem, "off"));
    assert_eq!((d.createtxg, d.used), (0, 0), "not read");
    let i = &l[0].snapshots[0];
    assert_eq!(i.guid.to_string(), zfs_get("guid", &s));
    assert_eq!(i.createtxg.to_string(), zfs_get("createtxg", &s));
    assert_eq!(i.creation.to_string(), zfs_get("creation", &s));
    assert_eq!((i.userrefs, i.used, i.written), (0, 0, 0));

    // userrefs is counted from the holds (zfs.list.holds), not read: two tags, two.
    fs.hold("s", "t");
    fs.hold("s", "u");
    let snaps = zfs.snapshots(&dn(name)).unwrap().unwrap();
    assert_eq!(snaps.len(), 1);
    let i = &snaps[0];
    assert_eq!(i.name.as_str(), s);
    assert_eq!(i.guid.to_string(), zfs_get("guid", &s));
    assert_eq!(i.createtxg.to_string(), zfs_get("createtxg", &s));
    assert_eq!(i.creation.to_string(), zfs_get("creation", &s));
    assert_eq!(i.referenced.to_string(), zfs_get("referenced", &s));
    assert_eq!(i.written.to_string(), zfs_get("written", &s));
    assert_eq!(i.userrefs.to_string(), zfs_get("userrefs", &s));
    assert_eq!(i.userrefs, 2);
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
    let fs = pool.fs("fs");
    fs.snaps(&["zz", "aa", "mm", "bb"]);
    let l = zfs.list(&dn(fs.name()), false, true).unwrap().unwrap();
    let names: Vec<String> = l[0].snapshots.iter().map(|s| s.name.to_string()).collect();
    assert_eq!(names, cli_snapshots(fs.name()));
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
fn list_written_available_and_no_token() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.fs("fs");
    let d = zfs.dataset(&dn(fs.name())).unwrap().unwrap();
    assert!(d.available > 0);
    assert!(d.available <= 256 << 20);
    assert!(d.receive_resume_token.is_none());
    fs.snap("s");
    let before = zfs.dataset(&dn(fs.name())).unwrap().unwrap().written;
    fs.write("d", 500_000, 1);
    zfs.sync(pool.name(), true).unwrap();
    let d = zfs.dataset(&dn(fs.name())).unwrap().unwrap();
    assert!(
        d.written > before && d.written >= 400_000,
        "{before} -> {}",
        d.written
    );
    assert!(d.used >= d.written);
}

#[test]
fn list_reports_volumes_and_clones() {
    let pool = TestPool::new();
    let zfs = lzc();
    let vol = pool.volume("vol", 1 << 20);
    let s = pool.fs("fs").snap("o").at("o");
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

/// Channel programs on one pool: synced and not, with arguments, results, errors
/// and limits.
#[test]
fn channel_programs_run_with_their_arguments_and_limits() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.fs("fs");
    let at = |s| fs.at(s);
    let program = |text: &str, args: &NvList, limits, sync| {
        zfs.channel_program(pool.name(), text, args, limits, sync)
    };
    let none = NvList::new();
    let default = ProgramLimits::default();

    // Synced: the snapshot is taken, and the call returns.
    let mut args = NvList::new();
    args.insert("snap", at("cp").as_str()).unwrap();
    let text = "local a = ...\nreturn zfs.sync.snapshot(a['snap'])";
    let out = program(text, &args, default, true).unwrap();
    assert!(out.contains("return"), "{out:?}");
    assert!(zfs.exists(&at("cp")));

    // One snapshot per filesystem per transaction group.
    let text = format!(
        "local a = zfs.sync.snapshot('{}')\nlocal b = zfs.sync.snapshot('{}')\nreturn {{a = a, b = b}}",
        at("one"),
        at("two")
    );
    let out = program(&text, &none, default, true).unwrap();
    let ret = out.get_nvlist("return").unwrap();
    assert_eq!(ret.get("a").and_then(|v| v.as_i64()), Some(0));
    // ZFS refuses a second snapshot of one filesystem in the same txg (EAGAIN).
    assert_eq!(
        ret.get("b").and_then(|v| v.as_i64()),
        Some(libc::EAGAIN as i64)
    );
    assert!(zfs.exists(&at("one")));
    assert!(!zfs.exists(&at("two")));

    // Not synced: a table comes back, and nothing can change.
    let text = "return {answer = 42, word = 'hi', nested = {x = 'y'}}";
    let out = program(text, &none, default, false).unwrap();
    let ret = out.get_nvlist("return").expect("a table");
    assert_eq!(ret.get_str("word"), Some("hi"));
    let answer = ret.get("answer").unwrap();
    assert_eq!(
        answer.as_i64().or(answer.as_u64().map(|v| v as i64)),
        Some(42)
    );
    assert_eq!(ret.get_nvlist("nested").unwrap().get_str("x"), Some("y"));
    let text = format!("return zfs.sync.snapshot('{}')", at("x"));
    let r = program(&text, &none, default, false);
    assert!(r.is_err(), "{r:?}");
    assert!(!zfs.exists(&at("x")));

    // Arguments: Lua numbers are int64 (a uint64 is refused: failing_calls_have_their_kind).
    let mut args = NvList::new();
    args.insert("n", &7i64).unwrap();
    args.insert("s", "abc").unwrap();
    let text = "local a = ...\nreturn a['s'] .. tostring(a['n'] * 6)";
    let out = program(text, &args, default, false).unwrap();
    assert_eq!(out.get_str("return"), Some("abc42"));

    // A Lua error carries its text; the limits stop a program.
    let e = program("error('zrep says no')", &none, default, true).unwrap_err();
    assert!(e.to_string().contains("zrep says no"), "{e}");
    assert!(e.to_string().contains(pool.name()), "{e}");
    let few = ProgramLimits {
        instructions: 10_000,
        memory: 10 << 20,
    };
    let e = program(
        "local i = 0\nwhile true do i = i + 1 end",
        &none,
        few,
        false,
    )
    .unwrap_err();
    assert_eq!(e.errno(), Some(Errno::ETIME), "{e:?}");
    let small = ProgramLimits {
        instructions: 100_000_000,
        memory: 64 << 10,
    };
    let text = "local t = {}\nfor i = 1, 1000000 do t[i] = 'xxxxxxxxxxxxxxxx' .. i end";
    let e = program(text, &none, small, false).unwrap_err();
    assert_eq!(e.errno().unwrap().raw(), libc::ENOSPC, "{e:?}");
}

// ---------- sync / wait / snaprange_space ----------

#[test]
fn sync_and_wait() {
    let pool = TestPool::new();
    let zfs = lzc();
    zfs.sync(pool.name(), false).unwrap();
    zfs.sync(pool.name(), true).unwrap();
    assert!(!zfs.wait(pool.name(), WaitActivity::Scrub).unwrap());
    assert!(!zfs.wait(pool.name(), WaitActivity::Free).unwrap());
    let fs = pool.fs("fs");
    zfs.wait_fs_deleteq(&dn(fs.name())).unwrap();
    fs.write("d", 1 << 20, 1);
    run(std::process::Command::new("zpool").args(["scrub", pool.name()]));
    // Whether it still had to wait depends on timing; afterwards it is idle.
    zfs.wait(pool.name(), WaitActivity::Scrub).unwrap();
    assert!(!zfs.wait(pool.name(), WaitActivity::Scrub).unwrap());
}

#[test]
fn snaprange_space_counts_unique_data() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.fs("fs");
    fs.snap("a").write("d", 1 << 20, 1).snap("b");
    std::fs::remove_file(fs.path("d")).unwrap();
    fs.snap("c");
    let space = |first, last| {
        zfs.snaprange_space(&sn(&fs.at(first)), &sn(&fs.at(last)))
            .unwrap()
    };
    let b_only = space("b", "b");
    assert!(b_only >= 1 << 20, "{b_only}");
    assert!(space("a", "c") >= b_only);
    let a_only = space("a", "a");
    assert!(a_only < 1 << 20, "{a_only}");
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
        parallel: 1,
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

    // Listed by two programs at once, a child's subtree at a time: one too large for
    // its program goes in two steps too.
    let split = pool.create("split");
    for c in ["a", "b"] {
        lzc_create(&zfs, &format!("{split}/{c}"));
        for i in 0..20 {
            lzc_create(&zfs, &format!("{split}/{c}/d{i:02}"));
        }
    }
    for s in 0..10 {
        let name = format!("{split}@s{s}-{}", "x".repeat(200));
        zrep_tests::zfs(&["snapshot", "-r", &name]);
    }
    let whole = zfs
        .list_fields(&dn(&split), true, true, fields)
        .unwrap()
        .unwrap();
    small.limits.memory = 1 << 20;
    while zfs.list_program(&dn(&format!("{split}/a")), small).is_ok() {
        small.limits.memory /= 2;
        assert!(
            small.limits.memory >= 32 << 10,
            "no limit stops a child's program"
        );
    }
    let two = libzfs::Scope {
        parallel: 2,
        ..small
    };
    let parts = zfs.list_within(&dn(&split), two).unwrap().unwrap();
    assert_eq!(whole.len(), 43);
    assert_eq!(flat(&parts), flat(&whole));
}

// ---------- calls that fail ----------

/// Each call fails with its exact kind, naming what it should.
#[test]
fn failing_calls_have_their_kind() {
    let pool = TestPool::new();
    let zfs = lzc();
    let a = pool.fs("a");
    let x = a.snaps(&["x", "y"]).at("x");
    let b = pool.fs("b");
    b.snap("z");
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
    let e = expect_kinds([
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
        (
            "snaprange_space in the wrong order",
            zfs.snaprange_space(&sn(&a.at("y")), &sn(&x)).map(drop),
            ErrorKind::InvalidArgument,
            &[x.as_str()],
        ),
        (
            "snaprange_space across filesystems",
            zfs.snaprange_space(&sn(&x), &sn(&b.at("z"))).map(drop),
            ErrorKind::InvalidArgument,
            &[b.at("z").as_str()],
        ),
    ]);
    // ZFS says EINVAL for both snaprange_space cases.
    for what in [
        "snaprange_space in the wrong order",
        "snaprange_space across filesystems",
    ] {
        assert_eq!(
            e[what].errno().map(|e| e.raw()),
            Some(libc::EINVAL),
            "{what}"
        );
    }
}
