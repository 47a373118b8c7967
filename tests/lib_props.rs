//! libzfs against real pools: a dataset's own properties read by a channel program
//! (`Zfs::local_properties`), carried by a receive as `zfs send -p` carries them
//! (`ReceiveOptions::received`), overridden (`props`, `-o`) and excluded
//! (`exclude`, `-x`), and the property table checked against the kernel.
use libzfs::props::{self, from_listing, parse_property, PropKind, PROPERTIES};
use libzfs::{ErrorKind, NvList, PropValue, ReceiveOptions, SendFlags};
use zrep_tests::*;

type Props = Vec<(String, PropValue)>;

/// A mountpoint under /tmp of this pool's own (nothing mounts there: the source is
/// `canmount=noauto` and lzc_receive never mounts).
fn somewhere(pool: &TestPool) -> String {
    format!("/tmp/zrep-props-{}/somewhere", pool.name())
}

/// `pool/src` with six local properties, one of each kind and the two `zfs send -p`
/// makes special (a mountpoint, canmount), and its snapshot `@s1`.
fn source(pool: &TestPool, zfs: &libzfs::Zfs) -> String {
    let fs = pool.ds("src");
    let mp = format!("mountpoint={}", somewhere(pool));
    zrep_tests::zfs(&[
        "create",
        "-o",
        "compression=zstd",
        "-o",
        "recordsize=1M",
        "-o",
        "atime=off",
        "-o",
        "com.example:owner=dru",
        "-o",
        &mp,
        "-o",
        "canmount=noauto",
        &fs,
    ]);
    snap(zfs, &[&format!("{fs}@s1")]);
    fs
}

/// What `source` set, as the kernel takes it, sorted by name.
fn expected(pool: &TestPool) -> Props {
    vec![
        ("atime".into(), PropValue::Number(0)),
        ("canmount".into(), PropValue::Number(2)),
        ("com.example:owner".into(), PropValue::String("dru".into())),
        ("compression".into(), PropValue::Number(16)),
        ("mountpoint".into(), PropValue::String(somewhere(pool))),
        ("recordsize".into(), PropValue::Number(1 << 20)),
    ]
}

/// One dataset's own properties, read by the library.
fn props_of(zfs: &libzfs::Zfs, ds: &str) -> Props {
    let mut all = zfs.local_properties(&dn(ds), false).unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    let (name, props) = all.pop().unwrap();
    assert_eq!(name.as_str(), ds);
    props
}

fn nvlist(props: &Props) -> NvList {
    props::to_nvlist(props.iter().map(|(n, v)| (n.as_str(), v))).unwrap()
}

/// `zfs get -H -o value,source PROP DS`.
fn cli(prop: &str, ds: &str) -> (String, String) {
    let out = zrep_tests::zfs(&["get", "-H", "-o", "value,source", prop, ds]);
    let (v, s) = out.trim_end_matches('\n').split_once('\t').unwrap();
    (v.to_string(), s.to_string())
}

/// The CLI's view of `ds`'s local and received properties, converted as a listing
/// is (`zfs get -p`: numbers as numbers, index properties by name).
fn cli_own(ds: &str) -> Props {
    let out = zrep_tests::zfs(&[
        "get",
        "-Hp",
        "-o",
        "property,value",
        "-s",
        "local,received",
        "all",
        ds,
    ]);
    let mut v: Props = out
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(name, _)| props::is_receivable(name))
        .map(|(name, value)| {
            let p = from_listing(name, PropValue::String(value.into()))
                .unwrap_or_else(|e| panic!("{name}={value}: {e}"));
            (name.to_string(), p)
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn receive(zfs: &libzfs::Zfs, snap: &str, from: Option<&str>, dst: &str, o: &ReceiveOptions) {
    let r = replicate(zfs, snap, from, dst, o);
    assert!(r.property_errors.is_empty(), "{:?}", r.property_errors);
}

// ---------- reading ----------

#[test]
fn local_properties_are_what_send_p_sends() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs);
    assert_eq!(props_of(&zfs, &fs), expected(&pool));
    assert_eq!(cli_own(&fs), expected(&pool));
    // Inherited values are not the child's own; its own user property is.
    let child = pool.ds("src/child");
    zrep_tests::zfs(&["create", "-u", "-o", "com.example:role=leaf", &child]);
    let leaf = vec![(
        "com.example:role".to_string(),
        PropValue::String("leaf".into()),
    )];
    assert_eq!(props_of(&zfs, &child), leaf);
    // A volume's own: its size (source local) and the refreservation zfs create set.
    let vol = pool.ds("src/vol");
    zrep_tests::zfs(&["create", "-V", "16M", &vol]);
    let vol_props = props_of(&zfs, &vol);
    assert!(
        vol_props.contains(&("volsize".into(), PropValue::Number(16 << 20))),
        "{vol_props:?}"
    );
    assert_eq!(vol_props, cli_own(&vol));
    // Recursive: parents first, snapshots left out; the pool root has its own too.
    let all = zfs.local_properties(&dn(pool.name()), true).unwrap();
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, [pool.name(), &fs, &child, &vol]);
    assert_eq!(all[0].1, cli_own(pool.name()));
    assert!(all[0]
        .1
        .contains(&("compression".into(), PropValue::Number(2))));
    assert_eq!(all[1].1, expected(&pool));
    assert_eq!(all[2].1, leaf);
}

#[test]
fn local_properties_of_a_missing_dataset_is_not_found() {
    let pool = TestPool::new();
    let zfs = lzc();
    let e = expect_kind(
        zfs.local_properties(&dn(&pool.ds("nosuch")), true),
        ErrorKind::NotFound,
    );
    assert!(e.to_string().contains(&pool.ds("nosuch")), "{e}");
}

// ---------- receiving ----------

#[test]
fn a_receive_carries_the_properties_as_received() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs);
    let dst = pool.ds("dst");
    let o = ReceiveOptions {
        received: Some(nvlist(&props_of(&zfs, &fs))),
        ..Default::default()
    };
    receive(&zfs, &format!("{fs}@s1"), None, &dst, &o);
    assert_eq!(props_of(&zfs, &dst), expected(&pool));
    assert_eq!(cli_own(&dst), expected(&pool));
    let mp = somewhere(&pool);
    for (prop, value) in [
        ("compression", "zstd"),
        ("recordsize", "1M"),
        ("atime", "off"),
        ("com.example:owner", "dru"),
        ("mountpoint", mp.as_str()),
        ("canmount", "noauto"),
    ] {
        assert_eq!(cli(prop, &dst), (value.into(), "received".into()), "{prop}");
    }
}

#[test]
fn overrides_and_exclusions_win_over_received_values() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs);
    let dst = pool.ds("dst");
    let mut received = props_of(&zfs, &fs);
    for (name, value) in &mut received {
        if name == "canmount" {
            *value = PropValue::Number(1); // on
        }
    }
    let mut local = NvList::new();
    local
        .insert("canmount", &parse_property("canmount", "noauto").unwrap())
        .unwrap();
    let o = ReceiveOptions {
        received: Some(nvlist(&received)),
        props: Some(local),
        exclude: vec!["mountpoint".into()],
        ..Default::default()
    };
    receive(&zfs, &format!("{fs}@s1"), None, &dst, &o);
    assert_eq!(cli("canmount", &dst), ("noauto".into(), "local".into()));
    let (mp, source) = cli("mountpoint", &dst);
    assert_eq!(mp, pool.path("dst").display().to_string());
    assert_eq!(source, format!("inherited from {}", pool.name()));
    // The received values stay beneath: `zfs get -o received`.
    let below = |prop: &str| {
        zrep_tests::zfs(&["get", "-H", "-o", "received", prop, &dst])
            .trim()
            .to_string()
    };
    assert_eq!(below("mountpoint"), somewhere(&pool));
    assert_eq!(below("canmount"), "on");
    assert_eq!(cli("compression", &dst), ("zstd".into(), "received".into()));
    // Ours: canmount is now local (noauto), mountpoint is inherited, so not ours.
    let mut want = expected(&pool);
    want.retain(|(n, _)| n != "mountpoint");
    assert_eq!(props_of(&zfs, &dst), want);

    // canmount is never inherited: excluding it leaves it out of the received ones
    // (as zfs receive -x does), rather than masking it.
    let dst2 = pool.ds("dst2");
    let o = ReceiveOptions {
        received: Some(nvlist(&props_of(&zfs, &fs))),
        exclude: vec!["canmount".into(), "com.example:owner".into()],
        ..Default::default()
    };
    receive(&zfs, &format!("{fs}@s1"), None, &dst2, &o);
    assert_eq!(cli("canmount", &dst2), ("on".into(), "default".into()));
    let below2 = |prop: &str| {
        zrep_tests::zfs(&["get", "-H", "-o", "received", prop, &dst2])
            .trim()
            .to_string()
    };
    assert_eq!(below2("canmount"), "-");
    // A user property is masked like any inheritable one.
    assert_eq!(cli("com.example:owner", &dst2), ("-".into(), "-".into()));
    assert_eq!(below2("com.example:owner"), "dru");
    let mut want = expected(&pool);
    want.retain(|(n, _)| n != "canmount" && n != "com.example:owner");
    assert_eq!(props_of(&zfs, &dst2), want);
}

#[test]
fn an_incremental_receive_replaces_the_received_properties() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = source(&pool, &zfs);
    let dst = pool.ds("dst");
    let first = ReceiveOptions {
        received: Some(nvlist(&props_of(&zfs, &fs))),
        ..Default::default()
    };
    receive(&zfs, &format!("{fs}@s1"), None, &dst, &first);
    // Changed, removed and added on the source.
    zrep_tests::zfs(&["set", "compression=lz4", "com.example:owner=kim", &fs]);
    zrep_tests::zfs(&["set", "com.example:team=ops", &fs]);
    zrep_tests::zfs(&["inherit", "atime", &fs]);
    snap(&zfs, &[&format!("{fs}@s2")]);
    let now = props_of(&zfs, &fs);
    assert!(now.iter().all(|(n, _)| n != "atime"), "{now:?}");
    let next = ReceiveOptions {
        received: Some(nvlist(&now)),
        ..Default::default()
    };
    receive(
        &zfs,
        &format!("{fs}@s2"),
        Some(&format!("{fs}@s1")),
        &dst,
        &next,
    );
    assert_eq!(props_of(&zfs, &dst), now);
    assert_eq!(cli_own(&dst), now);
    assert_eq!(cli("compression", &dst), ("lz4".into(), "received".into()));
    assert_eq!(
        cli("com.example:owner", &dst),
        ("kim".into(), "received".into())
    );
    assert_eq!(
        cli("com.example:team", &dst),
        ("ops".into(), "received".into())
    );
    // No longer received: back to the default.
    assert_eq!(cli("atime", &dst), ("on".into(), "default".into()));
    // None leaves them as they are.
    zrep_tests::zfs(&["set", "compression=gzip", &fs]);
    snap(&zfs, &[&format!("{fs}@s3")]);
    receive(
        &zfs,
        &format!("{fs}@s3"),
        Some(&format!("{fs}@s2")),
        &dst,
        &ReceiveOptions::default(),
    );
    assert_eq!(props_of(&zfs, &dst), now);
}

/// User input through `parse_property`: one property of each kind, received and
/// set locally.
#[test]
fn parsed_properties_of_each_kind_are_received() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("src");
    snap(&zfs, &[&format!("{fs}@s1")]);
    let mp = somewhere(&pool);
    let parsed = |pairs: &[(&str, &str)]| -> NvList {
        let mut nv = NvList::new();
        for (name, value) in pairs {
            let v = parse_property(name, value).unwrap_or_else(|e| panic!("{e}"));
            nv.insert(name, &v).unwrap();
        }
        nv
    };
    let o = ReceiveOptions {
        received: Some(parsed(&[
            ("compression", "gzip-3"),
            ("quota", "64M"),
            ("mountpoint", &mp),
            ("com.example:note", "hello world"),
        ])),
        props: Some(parsed(&[
            ("checksum", "sha256"),
            ("reservation", "1.5M"),
            ("sharenfs", "off"),
            ("com.example:by", "zrep"),
        ])),
        ..Default::default()
    };
    let dst = pool.ds("dst");
    receive(&zfs, &format!("{fs}@s1"), None, &dst, &o);
    let r = |v: &str| (v.to_string(), "received".to_string());
    let l = |v: &str| (v.to_string(), "local".to_string());
    assert_eq!(cli("compression", &dst), r("gzip-3"));
    assert_eq!(cli("quota", &dst), r("64M"));
    assert_eq!(cli("mountpoint", &dst), r(&mp));
    assert_eq!(cli("com.example:note", &dst), r("hello world"));
    assert_eq!(cli("checksum", &dst), l("sha256"));
    assert_eq!(cli("reservation", &dst), l("1.50M"));
    assert_eq!(cli("sharenfs", &dst), l("off"));
    assert_eq!(cli("com.example:by", &dst), l("zrep"));
    assert_eq!(zfs_get("reservation", &dst), (3u64 << 19).to_string());
}

// ---------- the table against the kernel ----------

/// Every value of every receivable index property that filesystems have, received
/// as its number: the kernel shows it under a name of ours for the same number. A
/// round receives the r-th value of each property into a dataset of its own.
#[test]
fn every_index_value_reaches_the_kernel_as_named() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.create("src");
    snap(&zfs, &[&format!("{fs}@s1")]);
    let stream = send_bytes(&zfs, &format!("{fs}@s1"), None, SendFlags::default()).unwrap();
    // Not filesystem properties, or not this OS's name for zoned.
    let skip = [
        "volthreading",
        if cfg!(target_os = "linux") {
            "jailed"
        } else {
            "zoned"
        },
    ];
    let tables: Vec<(&str, &[(&str, u64)])> = PROPERTIES
        .iter()
        .filter(|p| p.receivable && !skip.contains(&p.name))
        .filter_map(|p| match p.kind {
            PropKind::Index(t) => Some((p.name, t)),
            _ => None,
        })
        .collect();
    let rounds = tables.iter().map(|(_, t)| t.len()).max().unwrap();
    let mut sent = Vec::new();
    let mut refused = Vec::new();
    for round in 0..rounds {
        let dst = pool.ds(&format!("t{round}"));
        let mut nv = NvList::new();
        for (name, table) in &tables {
            if let Some(&(value_name, n)) = table.get(round) {
                nv.insert(name, &n).unwrap();
                sent.push((dst.clone(), *name, value_name, n));
            }
        }
        let o = ReceiveOptions {
            received: Some(nv),
            ..Default::default()
        };
        let r = recv_bytes(&zfs, &dst, &stream, &o).unwrap();
        for (name, errno) in r.property_errors {
            refused.push((dst.clone(), name, errno));
        }
    }
    // One CLI call reads them all back.
    let out = zrep_tests::zfs(&[
        "get",
        "-H",
        "-r",
        "-o",
        "name,property,value,source",
        "-s",
        "received",
        "all",
        pool.name(),
    ]);
    let shown: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    let mut checked = 0;
    let mut refused_values = Vec::new();
    for (dst, name, value_name, n) in &sent {
        if refused.iter().any(|(d, p, _)| d == dst && p == name) {
            refused_values.push(format!("{name}={value_name}"));
            continue;
        }
        let row = shown
            .iter()
            .find(|r| r[0] == dst && r[1] == *name)
            .unwrap_or_else(|| panic!("{dst}: {name}={value_name} was not received"));
        let prop = props::property(name).unwrap();
        // xattr=on is dir before OpenZFS 2.3, sa from 2.3 (our "on" is sa).
        let same =
            prop.index_value(row[2]) == Some(*n) || (*name == "xattr" && row[2] == "on" && *n == 1);
        assert!(same, "{name}={value_name} ({n}) shows as {}", row[2]);
        checked += 1;
    }
    println!("{checked} index values checked; refused by this kernel: {refused_values:?}");
    // Only values newer than the running OpenZFS may be refused (none on 2.3).
    let newer = |v: &str| {
        let (name, value) = v.split_once('=').unwrap();
        ["prefetch", "direct", "longname"].contains(&name)
            || value.starts_with("blake3")
            || matches!(
                v,
                "snapdir=disabled" | "redundant_metadata=some" | "redundant_metadata=none"
            )
    };
    let unexpected: Vec<&String> = refused_values.iter().filter(|v| !newer(v)).collect();
    assert!(unexpected.is_empty(), "refused: {unexpected:?}");
    assert!(checked > 140, "{checked}");
}
