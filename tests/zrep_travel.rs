//! What travels and how it lands, on real pools: dataset filters, received
//! properties and overrides, snapshot selection, `--newest-only`, adopting a
//! syncoid-made target, and a restore. Each option is checked locally and over SSH
//! (push and pull), on the command line and in a job.
//!
//! Properties are read with libzfs and cross-checked with `zfs get` (here only).
use std::collections::BTreeSet;

use libzfs::{DatasetName, Zfs};
use zrep_tests::cli::{forced_key, zrep};
use zrep_tests::pair::{job_config, short_snaps, zrep_via, Way};
use zrep_tests::{mount, test_dir, tree_digest, write_random, zfs, TestPool};

/// The datasets of a tree, relative to its root ("" for the root).
fn tree(root: &str) -> BTreeSet<String> {
    zfs(&["list", "-H", "-r", "-o", "name", root])
        .lines()
        .map(|l| {
            l.strip_prefix(root)
                .unwrap()
                .trim_start_matches('/')
                .to_string()
        })
        .collect()
}

/// `zfs get -H -o value,source PROP DS`, as (value, source).
fn prop(ds: &str, name: &str) -> (String, String) {
    let out = zfs(&["get", "-H", "-o", "value,source", name, ds]);
    let (v, s) = out.trim_end().split_once('\t').unwrap();
    (v.to_string(), s.to_string())
}

/// Properties set locally or received, as libzfs lists them.
fn local_props(ds: &str) -> Vec<(String, libzfs::PropValue)> {
    let zfs = Zfs::open().unwrap();
    let ds = DatasetName::new(ds).unwrap();
    let mut all = zfs.local_properties(&ds, false).unwrap();
    all.pop().map(|(_, p)| p).unwrap_or_default()
}

/// The tree of the filter tests: 24 datasets, with things to leave out at several
/// depths.
const TREE: &[&str] = &[
    "home",
    "home/dru",
    "home/dru/cache",
    "home/dru/cache/big",
    "home/dru/docs",
    "home/dru/tmp",
    "home/ann",
    "home/ann/cache",
    "home/ann/music",
    "var",
    "var/tmp",
    "var/log",
    "var/log/old",
    "srv",
    "srv/www",
    "srv/db",
    "srv/db/tmp",
    "srv/db/wal",
    "scratch",
    "scratch/a",
    "scratch/b",
    "tmp",
    "vm",
];

fn make_tree(p: &TestPool) -> String {
    let src = p.create("src");
    for d in TREE {
        p.create(&format!("src/{d}"));
    }
    // Opted out with the property; a child that sets it off stays out with its parent.
    zfs(&["set", "zrep-rs:exclude=on", &p.ds("src/scratch")]);
    zfs(&["set", "zrep-rs:exclude=off", &p.ds("src/scratch/b")]);
    src
}

/// What the filter tests expect to travel.
fn expected_filtered() -> BTreeSet<String> {
    let out = [
        "home/dru/cache",
        "home/dru/cache/big",
        "home/ann/cache",
        "home/dru/tmp",
        "var/tmp",
        "srv/db/tmp",
        "tmp",
        "scratch",
        "scratch/a",
        "scratch/b",
    ];
    let mut all: BTreeSet<String> = TREE.iter().map(|s| s.to_string()).collect();
    all.insert(String::new());
    for o in out {
        all.remove(o);
    }
    all
}

const EXCLUDES: &[&str] = &["--exclude", "**/tmp", "--exclude", "home/*/cache"];

#[test]
fn filters_leave_out_datasets_by_pattern_and_property() {
    let p = TestPool::new();
    let src = make_tree(&p);
    let dst = p.ds("dst");

    // The dry run names every dataset and why.
    let r = zrep(&[&["replicate", "-r", "-n"], EXCLUDES, &[&src, &dst]].concat()).ok();
    let said = r.stderr.clone() + &r.stdout;
    for needle in [
        &format!("{src}/home/dru/cache: excluded by \"home/*/cache\""),
        &format!("{src}/var/tmp: excluded by \"**/tmp\""),
        &format!("{src}/scratch: "),
        &format!("{src}/scratch/b: "),
    ] {
        assert!(said.contains(needle.as_str()), "no {needle:?} in:\n{said}");
    }
    assert!(said.contains("zrep-rs:exclude"), "{said}");
    assert!(
        !tree(&p.ds("")).contains("dst"),
        "a dry run made the target"
    );

    // The real run sends exactly what the filter keeps.
    let a = [&["replicate", "-r"], EXCLUDES, &[&src, &dst]].concat();
    zrep(&a).ok();
    assert_eq!(tree(&dst), expected_filtered());
    // The run's snapshot was not taken of datasets left out.
    assert!(short_snaps(&p.ds("src/var/tmp")).is_empty());
    assert!(short_snaps(&p.ds("src/scratch/a")).is_empty());

    // Next run: incremental, still the same tree.
    write_random(&p.path("src/home/dru/docs/f"), 64 << 10, 3);
    zrep(&a).ok();
    assert_eq!(tree(&dst), expected_filtered());
    assert_eq!(short_snaps(&p.ds("dst/home/dru/docs")).len(), 2);

    // Include: only srv's tree, and the parents a receive needs.
    let only = p.ds("only");
    let r = zrep(&[
        "replicate",
        "-r",
        "--include",
        "srv/**",
        "--exclude",
        "**/tmp",
        &src,
        &only,
    ])
    .ok();
    let want: BTreeSet<String> = ["", "srv", "srv/www", "srv/db", "srv/db/wal"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(tree(&only), want, "{}", r.stderr);

    // Bad patterns are refused before anything runs.
    zrep(&["replicate", "-r", "--exclude", "[", &src, &p.ds("bad")]).fails_with("[");
}

#[test]
fn filters_apply_over_ssh_and_in_jobs() {
    let p = TestPool::new();
    let src = make_tree(&p);
    // Push and pull over SSH.
    for way in Way::SSH {
        let pair = p.pair_at("src", way.name());
        pair.replicate_via(way, &[&["-r"], EXCLUDES].concat()).ok();
        assert_eq!(tree(pair.dst.name()), expected_filtered(), "{way:?}");
    }
    // A job.
    let job_dst = p.ds("job");
    let conf = job_config(
        &p,
        "travel",
        &format!(
            "[[job]]\nname = \"t\"\nsource = \"{src}\"\n\
             target = \"{job_dst}\"\nrecursive = true\nexclude = [\"**/tmp\", \"home/*/cache\"]\n\
             send_properties = true\nset = {{ \"com.example:backup\" = \"yes\" }}\n\
             inherit = [\"atime\"]\nsnapshots = [\"zrep-*\"]\n"
        ),
    );
    let c = conf.as_str();
    let r = zrep(&["check-config", "-c", c]).ok();
    assert!(
        r.stdout.contains("exclude **/tmp, home/*/cache"),
        "{}",
        r.stdout
    );
    let r = zrep(&["check-config", "--datasets", "-c", c]).ok();
    for needle in [
        format!("{src}/home/dru/cache: left out: excluded by \"home/*/cache\""),
        format!("{src}/scratch/b: left out: "),
        format!("{src}/srv/db/wal: replicated: "),
    ] {
        assert!(
            r.stdout.contains(&needle),
            "no {needle:?} in:\n{}",
            r.stdout
        );
    }
    zfs(&["set", "com.example:owner=dru", &p.ds("src/home/dru")]);
    zfs(&["set", "atime=off", &p.ds("src/home/dru")]);
    zfs(&["snapshot", &p.ds("src/home/dru@other-tool")]);
    zrep(&["run", "-c", c, "t"]).ok();
    assert_eq!(tree(&job_dst), expected_filtered());
    // The job's property keys: received, set and inherited as it says; and only
    // zrep's snapshots travel.
    let dru = format!("{job_dst}/home/dru");
    assert_eq!(
        prop(&dru, "com.example:owner"),
        ("dru".into(), "received".into())
    );
    assert_eq!(
        prop(&dru, "com.example:backup"),
        ("yes".into(), "local".into())
    );
    assert_ne!(prop(&dru, "atime").1, "received");
    assert!(
        short_snaps(&dru).iter().all(|s| s.starts_with("zrep-")),
        "{:?}",
        short_snaps(&dru)
    );
    // `verify --job` checks what the job replicates, and only that; the same pair
    // verified without the job's filter names each dataset left out.
    let r = zrep(&["verify", "--job", "t", "--read", "-c", c]).ok();
    assert_eq!(
        r.stdout.lines().count(),
        expected_filtered().len(),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.lines().all(|l| l.starts_with("ok ")),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("read back"), "{}", r.stdout);
    let r = zrep(&["verify", "-r", &src, &job_dst]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains(&format!(
            "MISMATCH {src}/home/dru/cache -> {job_dst}/home/dru/cache: 0 snapshots shared; the target does not exist"
        )),
        "{}",
        r.stdout
    );
    // An unknown job is named.
    zrep(&["verify", "--job", "nosuch", "-c", c]).fails_with("nosuch");
}

/// A source with properties of every kind set locally.
fn propertied_source(p: &TestPool) -> String {
    let src = p.create("src");
    let mnt = test_dir().join(format!("elsewhere-{}", p.name()));
    for (k, v) in [
        ("compression", "zstd"),
        ("recordsize", "1M"),
        ("atime", "off"),
        ("com.example:owner", "dru"),
        ("mountpoint", mnt.to_str().unwrap()),
    ] {
        zfs(&["set", &format!("{k}={v}"), &src]);
    }
    write_random(&mnt.join("f"), 256 << 10, 7);
    src
}

fn assert_landed_with_properties(dst: &str) {
    assert_eq!(prop(dst, "compression"), ("zstd".into(), "received".into()));
    assert_eq!(prop(dst, "recordsize"), ("1M".into(), "received".into()));
    assert_eq!(prop(dst, "atime"), ("off".into(), "received".into()));
    assert_eq!(
        prop(dst, "com.example:owner"),
        ("dru".into(), "received".into())
    );
    // The mount point is not sent by default: the backup mounts under its own tree.
    assert!(
        prop(dst, "mountpoint").1.starts_with("inherited"),
        "{:?}",
        prop(dst, "mountpoint")
    );
    assert_eq!(prop(dst, "readonly"), ("on".into(), "local".into()));
    // libzfs agrees with the CLI.
    let names: Vec<String> = local_props(dst).into_iter().map(|(n, _)| n).collect();
    for n in [
        "compression",
        "recordsize",
        "atime",
        "com.example:owner",
        "readonly",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} not in {names:?}");
    }
}

#[test]
fn properties_travel_locally_and_over_ssh() {
    let p = TestPool::new();
    let src = propertied_source(&p);
    // Without --send-properties nothing travels.
    let plain = p.ds("plain");
    zrep(&["replicate", &src, &plain]).ok();
    assert_eq!(
        prop(&plain, "compression").1,
        "inherited from ".to_string() + p.name()
    );
    assert_eq!(prop(&plain, "com.example:owner").0, "-");
    assert_eq!(prop(&plain, "readonly"), ("on".into(), "local".into()));

    let local = p.ds("local");
    zrep(&["replicate", "--send-properties", &src, &local]).ok();
    assert_landed_with_properties(&local);

    for way in Way::SSH {
        let pair = p.pair_at("src", way.name());
        pair.replicate_via(way, &["--send-properties"]).ok();
        assert_landed_with_properties(pair.dst.name());
    }

    // A changed property follows with the next incremental.
    zfs(&["set", "com.example:owner=ann", &src]);
    zfs(&["inherit", "atime", &src]);
    write_random(
        &test_dir().join(format!("elsewhere-{}", p.name())).join("g"),
        4096,
        8,
    );
    zrep(&["replicate", "--send-properties", &src, &local]).ok();
    assert_eq!(
        prop(&local, "com.example:owner"),
        ("ann".into(), "received".into())
    );
    assert_ne!(prop(&local, "atime").1, "received");
}

#[test]
fn overrides_set_and_inherit_on_receive() {
    let p = TestPool::new();
    let src = propertied_source(&p);
    let dst = p.ds("over");
    zrep(&[
        "replicate",
        "--send-properties",
        "--set",
        "compression=zstd-9",
        "-o",
        "canmount=noauto",
        "--inherit",
        "atime",
        "-x",
        "com.example:owner",
        &src,
        &dst,
    ])
    .ok();
    assert_eq!(prop(&dst, "compression"), ("zstd-9".into(), "local".into()));
    assert_eq!(prop(&dst, "canmount"), ("noauto".into(), "local".into()));
    assert!(prop(&dst, "atime").1.starts_with("inherited") || prop(&dst, "atime").1 == "default");
    assert_eq!(prop(&dst, "com.example:owner").0, "-");
    assert_eq!(prop(&dst, "recordsize"), ("1M".into(), "received".into()));

    // The same over SSH: pushed, and pulled.
    for way in Way::SSH {
        let pair = p.pair_at("src", &format!("o{}", way.name()));
        let opts = [
            "--send-properties",
            "--set",
            "compression=zstd-9",
            "--inherit",
            "atime",
        ];
        pair.replicate_via(way, &opts).ok();
        let t = pair.dst.name();
        assert_eq!(prop(t, "compression"), ("zstd-9".into(), "local".into()));
        assert_ne!(prop(t, "atime").1, "received");
        assert_eq!(prop(t, "recordsize"), ("1M".into(), "received".into()));
    }

    // Sending the mount point (an explicit, empty exclude list): canmount=noauto
    // keeps the backup from mounting over the source's path.
    let mp = p.ds("mp");
    zrep(&[
        "replicate",
        "--send-properties",
        "--exclude-property",
        "sharenfs",
        &src,
        &mp,
    ])
    .ok();
    assert_eq!(prop(&mp, "mountpoint").1, "received");
    assert_eq!(prop(&mp, "canmount"), ("noauto".into(), "local".into()));

    // Bad overrides are refused up front, naming the property.
    zrep(&["replicate", "--set", "compression=fast", &src, &p.ds("bad")]).fails_with("compression");
    zrep(&["replicate", "--set", "nosuchprop=1", &src, &p.ds("bad")]).fails_with("nosuchprop");
    assert!(!tree(&p.ds("")).contains("bad"));
}

#[test]
fn a_restricted_server_refuses_properties_that_reach_outside_the_backup() {
    let p = TestPool::new();
    let src = propertied_source(&p);
    let back = p.create("back");
    let serve = format!("--receive-only --root {back}");
    let x = format!("localhost:{back}/x");
    let (ssh, _) = forced_key(&serve);
    let a = [
        "replicate",
        "--send-properties",
        "--exclude-property",
        "sharenfs",
    ];
    zrep_via(&[&a[..], &[&src, &x]].concat(), &ssh).fails_with("mountpoint");
    assert!(!tree(&back).contains("x"));
    // With the default list the same push is accepted.
    let (ssh, _) = forced_key(&serve);
    zrep_via(&["replicate", "--send-properties", &src, &x], &ssh).ok();
    assert_landed_with_properties(&format!("{back}/x"));
}

#[test]
fn snapshot_selection_skips_other_snapshots() {
    let p = TestPool::new();
    let pair = p.pair();
    for (i, s) in [
        "hourly-1", "daily-1", "hourly-2", "hourly-3", "daily-2", "hourly-4",
    ]
    .iter()
    .enumerate()
    {
        pair.src.write(&format!("f{i}"), 32 << 10, i as u64).snap(s);
    }
    let daily = ["--snapshots", "daily-*"];
    let r = pair
        .replicate(&[&["--json", "--no-snapshot"], &daily[..]].concat())
        .ok();
    assert_eq!(
        pair.dst.short_snaps(),
        ["daily-1", "daily-2"],
        "{}",
        r.stdout
    );
    // A new daily goes straight from daily-2 (hourly-5 stays behind); the run's own
    // snapshot always travels.
    pair.src
        .write("g", 32 << 10, 9)
        .snaps(&["hourly-5", "daily-3"]);
    pair.src.write("h", 32 << 10, 10);
    pair.replicate(&daily).ok();
    let got = pair.dst.short_snaps();
    assert_eq!(&got[..3], ["daily-1", "daily-2", "daily-3"]);
    assert_eq!(got.len(), 4);
    assert!(got[3].starts_with("zrep-"), "{got:?}");
    mount(pair.dst.name());

    // Pulled over SSH with --newest-only: one full stream of the newest daily.
    let pulled = p.pair_at("src", "pulled");
    let opts = ["--no-snapshot", "--newest-only", "--snapshots", "daily-*"];
    pulled.replicate_via(Way::Pull, &opts).ok();
    assert_eq!(pulled.dst.short_snaps(), ["daily-3"]);
}

/// `--newest-only` on a long history: one full stream. `ZREP_TRAVEL_HISTORY` sets
/// the number of snapshots (default 2,000).
#[test]
fn newest_only_sends_one_stream_of_a_long_history() {
    let history = std::env::var("ZREP_TRAVEL_HISTORY");
    let n: usize = history.ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let p = TestPool::with_size(512 << 20);
    let src = p.create("src");
    let zfs_lib = Zfs::open().unwrap();
    let ds = DatasetName::new(&src).unwrap();
    let t0 = std::time::Instant::now();
    for i in 0..n {
        zfs_lib
            .snapshot(&[ds.snapshot(&format!("h{i:05}")).unwrap()], None)
            .unwrap();
    }
    eprintln!("{n} snapshots made in {:.1} s", t0.elapsed().as_secs_f64());
    write_random(&p.path("src/f"), 1 << 20, 4);
    let dst = p.ds("dst");
    let r = zrep(&["replicate", "-n", "--newest-only", &src, &dst]).ok();
    assert!(
        r.stderr.contains("newest only") || r.stdout.contains("newest only"),
        "{}",
        r.stderr
    );
    let j = zrep(&["replicate", "--json", "--newest-only", &src, &dst])
        .ok()
        .json();
    assert_eq!(j["mode"], "full");
    assert_eq!(j["snapshots"].as_array().unwrap().len(), 1, "{j}");
    let got = short_snaps(&dst);
    assert_eq!(got.len(), 1);
    assert!(got[0].starts_with("zrep-"));
    // The next run is an incremental from there.
    write_random(&p.path("src/g"), 1 << 20, 5);
    let j = zrep(&["replicate", "--json", "--newest-only", &src, &dst])
        .ok()
        .json();
    assert_eq!(j["mode"], "incremental");
    assert_eq!(short_snaps(&dst).len(), 2);
}

/// A target that syncoid made is adopted: the next zrep run is incremental, makes
/// it readonly, and a job's `prune_foreign` removes syncoid's snapshots from it.
#[test]
fn a_syncoid_target_is_adopted_made_readonly_and_cleaned() {
    let p = TestPool::new();
    let src = p.create("src");
    write_random(&p.path("src/f"), 256 << 10, 1);
    let dst = p.ds("dst");
    let out = std::process::Command::new("syncoid")
        .args(["--no-privilege-elevation", "--quiet", &src, &dst])
        .output()
        .expect("syncoid runs");
    assert!(
        out.status.success(),
        "syncoid: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    write_random(&p.path("src/g"), 64 << 10, 2);
    let out = std::process::Command::new("syncoid")
        .args(["--no-privilege-elevation", "--quiet", &src, &dst])
        .output()
        .unwrap();
    assert!(out.status.success());
    let before = short_snaps(&dst);
    assert!(
        before.iter().all(|s| s.starts_with("syncoid_")),
        "{before:?}"
    );
    assert_eq!(prop(&dst, "readonly").0, "off");

    let conf = job_config(
        &p,
        "adopt",
        &format!(
            "[[job]]\nname = \"a\"\nsource = \"{src}\"\n\
             target = \"{dst}\"\nprune_foreign = [\"syncoid_*\"]\n"
        ),
    );
    let c = conf.as_str();
    let dry = zrep(&["prune", "-c", c, "--dry-run", "-v"]).ok();
    let said = dry.stdout + &dry.stderr;
    for s in &before {
        assert!(said.contains(s.as_str()), "{s} not named in:\n{said}");
    }
    write_random(&p.path("src/h"), 64 << 10, 3);
    zrep(&["run", "-c", c, "a"]).ok();
    assert_eq!(prop(&dst, "readonly"), ("on".into(), "local".into()));
    let after = short_snaps(&dst);
    assert!(after.iter().all(|s| s.starts_with("zrep-")), "{after:?}");
    assert_eq!(after.len(), 1);
    // And it continues.
    write_random(&p.path("src/i"), 64 << 10, 4);
    zrep(&["run", "-c", c, "a"]).ok();
    assert_eq!(short_snaps(&dst).len(), 2);
    mount(&dst);
    assert_eq!(tree_digest(&p.path("src")), tree_digest(&p.path("dst")));
}

/// A restore: the backup replicated back to a new dataset brings back the data and
/// the properties; `--set` puts the mount point back.
#[test]
fn a_restore_brings_back_data_and_properties() {
    let p = TestPool::new();
    let src = propertied_source(&p);
    let mnt = test_dir().join(format!("elsewhere-{}", p.name()));
    let digest = tree_digest(&mnt);
    let back = p.ds("back");
    zrep(&["replicate", "--send-properties", &src, &back]).ok();
    // The dataset is lost (zrep's hold on its newest snapshot released first).
    for s in short_snaps(&src) {
        let snap = format!("{src}@{s}");
        for line in zfs(&["holds", "-H", &snap]).lines() {
            let tag = line.split('\t').nth(1).unwrap();
            zfs(&["release", tag, &snap]);
        }
    }
    zfs(&["destroy", "-r", &src]);

    let restored = p.ds("restored");
    zrep(&[
        "replicate",
        "--send-properties",
        "--writable",
        "--set",
        &format!("mountpoint={}", mnt.display()),
        "--no-snapshot",
        &back,
        &restored,
    ])
    .ok();
    assert_eq!(prop(&restored, "compression").0, "zstd");
    assert_eq!(prop(&restored, "recordsize").0, "1M");
    assert_eq!(prop(&restored, "com.example:owner").0, "dru");
    assert_eq!(prop(&restored, "readonly").0, "off");
    mount(&restored);
    assert_eq!(tree_digest(&mnt), digest);
}
