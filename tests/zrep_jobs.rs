//! Scheduled jobs on real pools: `zrep run`, `prune`, `status`, `check-config`.
//!
//! The clock is the test's (`ZREP_NOW`): a month of runs takes minutes, and after
//! every run the snapshots on each side are compared with what the retention rules
//! say, computed here from the rules' wording rather than from zrep's code.
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use zrep::clock::{parse_stamp, utc_stamp, Civil};
use zrep_tests::cli::{kill_when, patience, zrep, zrep_cmd, zrep_env, Run};
use zrep_tests::{mount, test_dir, tree_digest, write_random, zfs, zfs_get, TestPool};

const DAY: u64 = 86_400;

fn start() -> u64 {
    parse_stamp("20260101T000000Z").unwrap()
}

/// A config file with its own state directory and Prometheus textfile.
struct Conf {
    dir: PathBuf,
    path: PathBuf,
}

impl Conf {
    fn new(pool: &TestPool, jobs: &str) -> Conf {
        let dir = test_dir().join(format!("jobs-{}", pool.name()));
        std::fs::create_dir_all(&dir).unwrap();
        let c = Conf {
            path: dir.join("zrep.toml"),
            dir,
        };
        c.write(jobs);
        c
    }

    fn write(&self, jobs: &str) {
        let head = format!(
            "state_dir = \"{0}/state\"\nprometheus = \"{0}/zrep.prom\"\n\n",
            self.dir.display()
        );
        std::fs::write(&self.path, head + jobs).unwrap();
    }

    fn path(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// `zrep CMD -c FILE ARGS...` at time `now`.
    fn at(&self, now: u64, cmd: &str, args: &[&str]) -> Run {
        let mut a = vec![cmd, "-c", self.path()];
        a.extend_from_slice(args);
        zrep_env(&a, &[("ZREP_NOW", &now.to_string())])
    }
}

/// Times of zrep's snapshots of `ds`, oldest first.
fn zrep_times(ds: &str) -> Vec<u64> {
    let mut v: Vec<u64> = zfs(&["list", "-H", "-t", "snapshot", "-o", "name", "-d", "1", ds])
        .lines()
        .filter_map(|l| l.split_once("@zrep-"))
        .filter_map(|(_, stamp)| parse_stamp(stamp))
        .collect();
    v.sort_unstable();
    v
}

fn stamps(v: &[u64]) -> Vec<String> {
    v.iter().map(|&t| utc_stamp(t)).collect()
}

/// Retention rules as the config spells them.
#[derive(Clone, Copy, Default)]
struct Keep {
    last: usize,
    daily: usize,
    weekly: usize,
    monthly: usize,
}

/// What `k` keeps of `times`, read off the rules' wording: the `last` newest, and for
/// each kind of period, the oldest snapshot of each of the N most recent periods
/// that have snapshots; plus what is protected.
fn model(times: &[u64], k: Keep, protected: &[u64]) -> Vec<u64> {
    let day = |t: u64| (t / DAY) as i64;
    let week = |t: u64| ((t / DAY) as i64 + 3).div_euclid(7);
    let month = |t: u64| {
        let c = Civil::from_secs(t);
        c.year * 12 + i64::from(c.month)
    };
    let periods: [(usize, &dyn Fn(u64) -> i64); 3] =
        [(k.daily, &day), (k.weekly, &week), (k.monthly, &month)];
    let kept_by = |t: u64, n: usize, key: &dyn Fn(u64) -> i64| {
        let oldest_of_its_period = times.iter().all(|&u| key(u) != key(t) || u >= t);
        let newer_periods: BTreeSet<i64> = times
            .iter()
            .map(|&u| key(u))
            .filter(|&p| p > key(t))
            .collect();
        oldest_of_its_period && newer_periods.len() < n
    };
    times
        .iter()
        .copied()
        .filter(|&t| {
            protected.contains(&t)
                || times.iter().filter(|&&u| u > t).count() < k.last
                || periods.iter().any(|&(n, key)| kept_by(t, n, key))
        })
        .collect()
}

#[test]
fn a_simulated_month_keeps_what_the_rules_say() {
    let p = TestPool::with_size(512 << 20);
    let src = p.create("src");
    p.create("src/child");
    let dst = p.ds("dst");
    let conf = Conf::new(
        &p,
        &format!(
            "[[job]]\nname = \"month\"\nsource = \"{src}\"\ntarget = \"{dst}\"\nrecursive = true\n\
             keep_source = {{ last = 3, daily = 4 }}\n\
             keep_target = {{ daily = 7, weekly = 3, monthly = 2 }}\nlag_limit = \"11h\"\n"
        ),
    );
    let (ks, kt) = (
        Keep {
            last: 3,
            daily: 4,
            ..Keep::default()
        },
        Keep {
            daily: 7,
            weekly: 3,
            monthly: 2,
            ..Keep::default()
        },
    );
    // A run every 16 hours for a month and a bit: 50 runs, January 1st to February 2nd.
    let (mut on_src, mut on_dst) = (Vec::new(), Vec::new());
    let mut last = 0;
    for i in 0..50u64 {
        let t = start() + i * 16 * 3600;
        last = t;
        // Both datasets change a little before every run (zrep does not snapshot a
        // dataset nothing was written to).
        write_random(&p.path(&format!("src/f{}", i % 6)), 16 << 10, i);
        write_random(&p.path(&format!("src/child/f{}", i % 12)), 64 << 10, i);
        let r = conf.at(t, "run", &["--json"]).ok();
        let j = &r.json()[0];
        assert_eq!(j["status"], "ok", "{}", r.stdout);
        for d in j["datasets"].as_array().unwrap() {
            let want = if i == 0 { "full" } else { "incremental" };
            assert_eq!(d["mode"], want, "run {i}: the chain must never break: {d}");
        }
        on_src.push(t);
        on_dst.push(t);
        on_src = model(&on_src, ks, &[t]);
        on_dst = model(&on_dst, kt, &[t]);
        for rel in ["", "/child"] {
            assert_eq!(
                stamps(&zrep_times(&format!("{src}{rel}"))),
                stamps(&on_src),
                "run {i} at {}: source{rel}",
                utc_stamp(t)
            );
            assert_eq!(
                stamps(&zrep_times(&format!("{dst}{rel}"))),
                stamps(&on_dst),
                "run {i} at {}: target{rel}",
                utc_stamp(t)
            );
        }
    }
    // Retention did prune, and what is left matches the rules' reading: January 1st
    // survives only as the monthly snapshot.
    assert_eq!(on_src.len(), 5, "{:?}", stamps(&on_src));
    assert!(
        on_dst.contains(&start()) && on_dst.len() < 16,
        "{:?}",
        stamps(&on_dst)
    );
    // The cursor: one zrep hold per side on the newest snapshot, one bookmark.
    let newest = format!("@zrep-{}", utc_stamp(last));
    for ds in [&src, &dst] {
        let holds = zfs(&["holds", "-H", "-r", &format!("{ds}{newest}")]);
        assert_eq!(holds.lines().count(), 2, "{holds}"); // the dataset and its child
    }
    let bms = zfs(&["list", "-H", "-t", "bookmark", "-o", "name", "-r", &src]);
    assert_eq!(bms.lines().count(), 2, "{bms}");
    assert!(bms.lines().all(|b| b.ends_with(&newest[1..])), "{bms}");

    // Status: lag 0 now; 12 h later, with something written meanwhile, over the
    // 11 h limit (exit 2). (Nothing written: still up to date, lag 0.)
    let s = conf.at(last, "status", &["--json"]).ok();
    let j = &s.json()[0];
    assert_eq!(j["lag_seconds"], 0, "{}", s.stdout);
    assert_eq!(j["datasets"][1]["snapshots_source"], 5);
    let quiet = conf.at(last + 12 * 3600, "status", &["--json"]).ok();
    assert_eq!(quiet.json()[0]["lag_seconds"], 0, "{}", quiet.stdout);
    write_random(&p.path("src/child/late"), 4 << 10, 99);
    let late = conf.at(last + 12 * 3600, "status", &[]);
    assert_eq!(late.code, 2, "{}{}", late.stdout, late.stderr);
    assert!(
        late.stdout.contains("LAG OVER LIMIT: 12h00m > 11h00m"),
        "{}",
        late.stdout
    );
    let prom = std::fs::read_to_string(conf.dir.join("zrep.prom")).unwrap();
    assert!(
        prom.contains(&format!(
            "zrep_lag_seconds{{job=\"month\",dataset=\"{src}/child\"}} 0\n"
        )),
        "{prom}"
    );
    assert!(
        prom.contains("zrep_failures_total{job=\"month\"} 0\n"),
        "{prom}"
    );
    // Last: reading the source updates atimes, which counts as written.
    conf.at(last + 13 * 3600, "run", &[]).ok();
    mount(&format!("{dst}/child"));
    assert_eq!(
        tree_digest(&p.path("src/child")),
        tree_digest(&p.path("dst/child"))
    );
}

/// Starts `zrep run` of every job in `conf` at time `now`, without waiting.
fn spawn_run(conf: &Conf, now: u64) -> std::process::Child {
    zrep_cmd(&["run", "-c", conf.path()])
        .env("ZREP_NOW", now.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn referenced(ds: &str) -> u64 {
    zfs(&["list", "-Hp", "-o", "referenced", ds])
        .trim()
        .parse()
        .unwrap_or(0)
}

fn exists(ds: &str) -> bool {
    std::process::Command::new("zfs")
        .args(["list", "-H", ds])
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn an_interrupted_run_resumes_on_the_next() {
    let p = TestPool::with_size(512 << 20);
    let src = p.create("src");
    write_random(&p.path("src/big"), 96 << 20, 3);
    let dst = p.ds("dst");
    let conf = Conf::new(
        &p,
        &format!(
            "[[job]]\nname = \"big\"\nsource = \"{src}\"\ntarget = \"{dst}\"\n\
             keep_source = {{ last = 1 }}\n"
        ),
    );
    let t0 = start();
    let mut child = spawn_run(&conf, t0);
    kill_when(&mut child, || exists(&dst) && referenced(&dst) > 8 << 20);
    write_random(&p.path("src/more"), 64 << 10, 4);
    let r = conf.at(t0 + 3600, "run", &["--json"]).ok();
    let d = &r.json()[0]["datasets"][0];
    assert_eq!(d["resumed"], true, "{d}");
    assert_eq!(d["snapshots"].as_array().unwrap().len(), 1, "{d}");
    // The interrupted snapshot was completed, then the new one sent on top of it;
    // the source keeps only the newest (last = 1), the target both.
    assert_eq!(zrep_times(&src), [t0 + 3600]);
    assert_eq!(zrep_times(&dst), [t0, t0 + 3600]);
    mount(&dst);
    assert_eq!(tree_digest(&p.path("src")), tree_digest(&p.path("dst")));
}

#[test]
fn an_unreachable_target_keeps_snapshots_until_it_is_back() {
    let p = TestPool::with_size(256 << 20);
    let src = p.create("src");
    let dst = p.ds("dst");
    let ssh = std::env::var("ZREP_TEST_SSH").expect("ZREP_TEST_SSH (the guest's sshd)");
    let zrep_path = zrep_tests::zrep_bin().display().to_string();
    let job = |ssh: &str| {
        format!(
            "[[job]]\nname = \"away\"\nsource = \"{src}\"\ntarget = \"localhost:{dst}\"\n\
             ssh = \"{ssh}\"\nremote_zrep = \"{zrep_path}\"\nkeep_source = {{ last = 1 }}\n\
             lag_limit = \"90m\"\n"
        )
    };
    let conf = Conf::new(&p, &job(&ssh));
    let t0 = start();
    conf.at(t0, "run", &[]).ok();
    // Port 1 refuses connections: the target is gone for three runs.
    conf.write(&job(&format!("{ssh} -p 1")));
    for h in 1..=3 {
        write_random(&p.path(&format!("src/f{h}")), 16 << 10, h);
        let r = conf.at(t0 + h * 3600, "run", &[]);
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(
            r.stderr.contains("[away]") && r.stderr.contains("localhost"),
            "{}",
            r.stderr
        );
    }
    // Each run still took its snapshot; none of them is pruned while unreplicated.
    let held_back: Vec<u64> = (0..=3).map(|h| t0 + h * 3600).collect();
    assert_eq!(zrep_times(&src), held_back);
    assert_eq!(zrep_times(&dst), [t0]);
    let s = conf.at(t0 + 3 * 3600, "status", &["--json"]);
    assert_eq!(s.code, 2, "lag 3h > 90m: {}{}", s.stdout, s.stderr);
    let j = &s.json()[0];
    assert!(j["unreachable"].is_string(), "{j}");
    assert!(
        j["last_error"].as_str().unwrap().contains("localhost"),
        "{j}"
    );
    assert_eq!(j["lag_seconds"], 3 * 3600);
    let prom = std::fs::read_to_string(conf.dir.join("zrep.prom")).unwrap();
    assert!(
        prom.contains("zrep_failures_total{job=\"away\"} 3\n"),
        "{prom}"
    );
    assert!(
        prom.contains("zrep_last_run_success{job=\"away\"} 0\n"),
        "{prom}"
    );

    // Back: every held-back snapshot is sent, then the source is pruned.
    conf.write(&job(&ssh));
    write_random(&p.path("src/f4"), 16 << 10, 4);
    let r = conf.at(t0 + 4 * 3600, "run", &["--json"]).ok();
    let d = &r.json()[0]["datasets"][0];
    assert_eq!(d["mode"], "incremental");
    assert_eq!(d["snapshots"].as_array().unwrap().len(), 4, "{d}");
    assert_eq!(zrep_times(&src), [t0 + 4 * 3600]);
    assert_eq!(zrep_times(&dst).len(), 5);
    assert_eq!(conf.at(t0 + 4 * 3600, "status", &[]).code, 0);
}

#[test]
fn overlapping_runs_skip_or_wait() {
    let p = TestPool::with_size(512 << 20);
    let src = p.create("src");
    write_random(&p.path("src/big"), 96 << 20, 5);
    let dst = p.ds("dst");
    let job = |overlap: &str| {
        format!(
            "[[job]]\nname = \"o\"\nsource = \"{src}\"\ntarget = \"{dst}\"\noverlap = \"{overlap}\"\n"
        )
    };
    let conf = Conf::new(&p, &job("skip"));
    let t0 = start();
    let mut first = spawn_run(&conf, t0);
    let t = Instant::now();
    while !exists(&dst) {
        assert!(t.elapsed() < patience(60));
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = conf.at(t0 + 60, "run", &[]).ok();
    assert!(
        second
            .stderr
            .contains("[o] skipped: job o is already running"),
        "{}",
        second.stderr
    );
    assert!(first.wait().unwrap().success());
    assert_eq!(zrep_times(&dst), [t0], "the skipped run took no snapshot");

    // With overlap = "wait", the second run starts when the first is done.
    conf.write(&job("wait"));
    write_random(&p.path("src/big2"), 64 << 20, 6);
    let mut first = spawn_run(&conf, t0 + 3600);
    let t = Instant::now();
    while zrep_times(&src).len() < 2 {
        assert!(t.elapsed() < patience(60));
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = conf.at(t0 + 7200, "run", &[]).ok();
    assert!(
        first.try_wait().unwrap().is_some(),
        "the second run did not wait"
    );
    assert!(!second.stderr.contains("skipped"), "{}", second.stderr);
    // Nothing was written in between: the second run found nothing to snapshot.
    assert!(second.stderr.contains("up to date"), "{}", second.stderr);
    assert_eq!(zrep_times(&dst), [t0, t0 + 3600]);
}

#[test]
fn prune_dry_run_says_what_and_why() {
    let p = TestPool::new();
    let src = p.create("src");
    let dst = p.ds("dst");
    let job = |keep: &str| {
        format!("[[job]]\nname = \"p\"\nsource = \"{src}\"\ntarget = \"{dst}\"\n{keep}")
    };
    let conf = Conf::new(&p, &job(""));
    let t0 = start();
    for h in 0..4 {
        write_random(&p.path(&format!("src/f{h}")), 16 << 10, h);
        conf.at(t0 + h * 3600, "run", &[]).ok();
    }
    let oldest = format!("{src}@zrep-{}", utc_stamp(t0));
    zfs(&["hold", "keepme", &oldest]);
    conf.write(&job(
        "keep_source = { last = 1 }\nkeep_target = { last = 2 }\n",
    ));
    let r = conf.at(t0 + 4 * 3600, "prune", &["--dry-run"]).ok();
    let out = &r.stderr;
    assert!(
        out.contains(&format!("[p] source keep {oldest}: held")),
        "{out}"
    );
    for h in [1, 2] {
        let s = format!(
            "{src}@zrep-{}: beyond the rules (last 1)",
            utc_stamp(t0 + h * 3600)
        );
        assert!(
            out.contains(&format!("[p] source would prune {s}")),
            "{out}"
        );
    }
    let newest = utc_stamp(t0 + 3 * 3600);
    assert!(
        out.contains(&format!(
            "[p] target keep {dst}@zrep-{newest}: the newest snapshot both sides have"
        )),
        "{out}"
    );
    assert_eq!(zrep_times(&src).len(), 4, "a dry run destroys nothing");
    conf.at(t0 + 4 * 3600, "prune", &[]).ok();
    assert_eq!(zrep_times(&src), [t0, t0 + 3 * 3600]);
    assert_eq!(zrep_times(&dst), [t0 + 2 * 3600, t0 + 3 * 3600]);
    zfs(&["release", "keepme", &oldest]);
}

#[test]
fn a_bad_config_changes_nothing() {
    let p = TestPool::new();
    let src = p.create("src");
    let dst = p.ds("dst");
    let conf = Conf::new(
        &p,
        &format!(
            "[[job]]\nname = \"b\"\nsource = \"{src}\"\ntarget = \"{dst}\"\n\
             keep_source = {{ hourly = 24, dayly = 7 }}\n"
        ),
    );
    let r = conf
        .at(start(), "run", &[])
        .fails_with("line 8: unknown field `dayly`, expected one of `last`, `hourly`, `daily`");
    assert!(r.stderr.contains(conf.path()), "{}", r.stderr);
    assert!(zrep_times(&src).is_empty() && !exists(&dst));
    zrep(&["check-config", "-c", conf.path()]).fails_with("line 8");
    // A good one is described.
    conf.write(&format!(
        "[[job]]\nname = \"b\"\nsource = \"{src}\"\ntarget = \"{dst}\"\nkeep_target = {{ daily = 7 }}\n"
    ));
    let ok = zrep(&["check-config", "-c", conf.path()]).ok();
    assert!(
        ok.stdout.contains(&format!("job b: {src} -> {dst}")),
        "{}",
        ok.stdout
    );
    assert!(ok.stdout.contains("target keeps 7 daily"), "{}", ok.stdout);
    assert_eq!(zfs_get("type", &src), "filesystem");
}

#[test]
fn two_jobs_on_one_source_run_together() {
    let p = TestPool::with_size(512 << 20);
    let src = p.create("src");
    p.create("src/child");
    let (a, b) = (p.ds("a"), p.ds("b"));
    let jobs = format!(
        "[[job]]\nname = \"a\"\nsource = \"{src}\"\ntarget = \"{a}\"\nrecursive = true\n\
         keep_source = {{ last = 1 }}\n\n\
         [[job]]\nname = \"b\"\nsource = \"{src}\"\ntarget = \"{b}\"\nrecursive = true\n\
         keep_source = {{ last = 1 }}\n"
    );
    let conf = Conf::new(&p, &jobs);
    let t0 = start();
    for round in 0..3u64 {
        write_random(&p.path("src/child/f"), 8 << 20, round);
        // Started in the same second: both want @zrep-<same time>.
        let now = t0 + round * 3600;
        let started: Vec<_> = ["a", "b"]
            .iter()
            .map(|j| {
                zrep_cmd(&["run", "-c", conf.path(), j])
                    .env("ZREP_NOW", now.to_string())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in started {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for t in [&a, &b] {
            assert_eq!(
                *zrep_times(&format!("{t}/child")).last().unwrap(),
                now,
                "{t}"
            );
        }
    }
    // Each job's cursor protects what the other still needs: both chains go on.
    write_random(&p.path("src/child/g"), 1 << 20, 9);
    for j in ["a", "b"] {
        let r = conf.at(t0 + 4 * 3600, "run", &["--json", j]).ok();
        assert_eq!(
            r.json()[0]["datasets"][1]["mode"],
            "incremental",
            "{}",
            r.stdout
        );
    }
}

/// `zrep-2099...` names: what a compromised source can plant among its snapshots.
fn planted(n: u64) -> Vec<String> {
    (1..=n)
        .map(|d| format!("zrep-209901{d:02}T000000Z"))
        .collect()
}

fn planted_times(n: u64) -> Vec<u64> {
    planted(n)
        .iter()
        .map(|s| parse_stamp(&s["zrep-".len()..]).unwrap())
        .collect()
}

#[test]
fn future_dated_snapshots_from_the_source_do_not_prune_real_backups() {
    let p = TestPool::with_size(512 << 20);
    let src = p.create("src");
    let dst = p.ds("dst");
    let keep = 7;
    let conf = Conf::new(
        &p,
        &format!(
            "[[job]]\nname = \"future\"\nsource = \"{src}\"\ntarget = \"{dst}\"\n\
             keep_source = {{ last = 2 }}\nkeep_target = {{ daily = {keep} }}\n"
        ),
    );
    let t0 = start();
    let days = 30;
    let mut guids: Vec<(u64, String)> = Vec::new();
    for d in 0..=days {
        let t = t0 + d * DAY;
        if d == 11 {
            // Ten days in (retention already pruning), the source plants five
            // snapshots dated 2099: the next run sends them like any other.
            for (i, name) in planted(5).iter().enumerate() {
                write_random(&p.path(&format!("src/planted{i}")), 4 << 10, 100 + d);
                zfs(&["snapshot", &format!("{src}@{name}")]);
            }
        }
        write_random(&p.path(&format!("src/f{}", d % 5)), 16 << 10, d);
        let r = conf.at(t, "run", &["--json"]).ok();
        let j = &r.json()[0];
        assert_eq!(j["status"], "ok", "day {d}: {}", r.stdout);
        let want = if d == 0 { "full" } else { "incremental" };
        assert_eq!(j["datasets"][0]["mode"], want, "day {d}: {}", r.stdout);
        let snap = format!("{src}@zrep-{}", utc_stamp(t));
        guids.push((t, zfs_get("guid", &snap)));
    }
    // The target keeps the `keep` newest real dailies (the very snapshots the source
    // took, by GUID) and every planted one; none of them counted among the days.
    let now = t0 + days * DAY;
    let real: Vec<u64> = ((days + 1 - keep)..=days).map(|d| t0 + d * DAY).collect();
    let with_planted = |v: &[u64]| [v, &planted_times(5)].concat();
    assert_eq!(
        stamps(&zrep_times(&dst)),
        stamps(&with_planted(&real)),
        "target"
    );
    for (t, guid) in guids.iter().filter(|(t, _)| real.contains(t)) {
        let snap = format!("{dst}@zrep-{}", utc_stamp(*t));
        assert_eq!(&zfs_get("guid", &snap), guid, "{snap}");
    }
    for name in planted(5) {
        let (s, d) = (format!("{src}@{name}"), format!("{dst}@{name}"));
        assert_eq!(zfs_get("guid", &s), zfs_get("guid", &d), "{name}");
    }
    // The source's `last = 2` counted only the real ones too.
    assert_eq!(
        stamps(&zrep_times(&src)),
        stamps(&with_planted(&[now - DAY, now])),
        "source"
    );
    // The dry run names them, on both sides, and changes nothing.
    let r = conf.at(now, "prune", &["--dry-run"]).ok();
    for (i, name) in planted(5).iter().enumerate() {
        for (side, ds) in [("source", &src), ("target", &dst)] {
            let line = format!(
                "[future] {side} keep {ds}@{name}: dated 2099-01-{:02}, more than a day \
                 after now: kept, not counted",
                i + 1
            );
            assert!(r.stderr.contains(&line), "{line}\n{}", r.stderr);
        }
    }
    assert_eq!(zrep_times(&dst).len(), real.len() + 5);
}

#[test]
fn a_job_without_a_source_prunes_the_backup_hosts_tree() {
    let p = TestPool::with_size(512 << 20);
    let src = p.create("src");
    p.create("src/child");
    let dst = p.ds("dst");
    // The pushing client does not prune the target (as when it receives through
    // `zrep serve --receive-only`); the backup host's own job does.
    let jobs = format!(
        "[[job]]\nname = \"push\"\nsource = \"{src}\"\ntarget = \"{dst}\"\nrecursive = true\n\n\
         [[job]]\nname = \"backups\"\ntarget = \"{dst}\"\nrecursive = true\n\
         keep_target = {{ daily = 3 }}\nlag_limit = \"2d\"\n"
    );
    let conf = Conf::new(&p, &jobs);
    let t0 = start();
    // Ten days of pushes every 12 hours; a snapshot named in 2099 planted on the
    // source after the first.
    let times: Vec<u64> = (0..20).map(|i| t0 + i * 12 * 3600).collect();
    for (i, &t) in times.iter().enumerate() {
        write_random(&p.path("src/f"), 16 << 10, i as u64);
        write_random(&p.path("src/child/f"), 16 << 10, 50 + i as u64);
        conf.at(t, "run", &["push"]).ok();
        if i == 0 {
            zfs(&["snapshot", &format!("{src}@{}", planted(1)[0])]);
        }
    }
    let (newest, now) = (*times.last().unwrap(), *times.last().unwrap() + 3600);
    // Someone holds day 1's snapshot on the backup host.
    let held = t0 + DAY;
    let held_snap = format!("{dst}@zrep-{}", utc_stamp(held));
    zfs(&["hold", "keepme", &held_snap]);
    assert_eq!(zrep_times(&dst).len(), 21);

    // The dry run says what and why, and changes nothing.
    let r = conf.at(now, "prune", &["--dry-run", "backups"]).ok();
    let newest_why = "the newest snapshot of the dataset (likely the newest both sides have)";
    for want in [
        format!("[backups] target keep {held_snap}: held"),
        format!(
            "[backups] target keep {dst}@zrep-{}: {newest_why}",
            utc_stamp(newest)
        ),
        format!(
            "[backups] target keep {dst}/child@zrep-{}: {newest_why}",
            utc_stamp(newest)
        ),
        format!(
            "[backups] target keep {dst}@{}: dated 2099-01-01, more than a day after now: \
             kept, not counted",
            planted(1)[0]
        ),
        format!(
            "[backups] target would prune {dst}/child@zrep-{}: beyond the rules (3 daily)",
            utc_stamp(t0)
        ),
    ] {
        assert!(r.stderr.contains(&want), "{want}\n{}", r.stderr);
    }
    assert_eq!(zrep_times(&dst).len(), 21, "a dry run destroys nothing");

    // The run prunes each dataset of the tree by the rules, keeping the held one,
    // the newest and the planted one; the source is untouched.
    let r = conf.at(now, "run", &["--json", "backups"]).ok();
    let j = &r.json()[0];
    assert_eq!(j["status"], "ok", "{}", r.stdout);
    let reported: Vec<&str> = j["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["target"].as_str().unwrap())
        .collect();
    assert_eq!(reported, [dst.clone(), format!("{dst}/child")]);
    assert_eq!(j["datasets"][0]["mode"], "prune");
    let k = Keep {
        daily: 3,
        ..Keep::default()
    };
    let parent = [model(&times, k, &[held, newest]), planted_times(1)].concat();
    assert_eq!(stamps(&zrep_times(&dst)), stamps(&parent));
    assert_eq!(
        stamps(&zrep_times(&format!("{dst}/child"))),
        stamps(&model(&times, k, &[newest]))
    );
    let pruned = j["datasets"][1]["pruned_target"].as_array().unwrap().len();
    assert_eq!(pruned, times.len() - model(&times, k, &[newest]).len());
    assert_eq!(zrep_times(&src).len(), 21);
    assert_eq!(zrep_times(&format!("{src}/child")).len(), 20);

    // The pushes go on from the snapshot kept as newest.
    write_random(&p.path("src/g"), 16 << 10, 98);
    write_random(&p.path("src/child/g"), 16 << 10, 99);
    let later = newest + DAY;
    let r = conf.at(later, "run", &["--json", "push"]).ok();
    for d in r.json()[0]["datasets"].as_array().unwrap() {
        assert_eq!(d["mode"], "incremental", "{d}");
    }
    // Status: the lag is the age of each dataset's newest snapshot.
    let s = conf.at(later + 3600, "status", &["--json", "backups"]).ok();
    let st = &s.json()[0];
    assert_eq!(st["lag_seconds"], 3600, "{}", s.stdout);
    assert_eq!(st["datasets"][1]["snapshots_target"], 5, "{}", s.stdout);
    let late = conf.at(later + 3 * DAY, "status", &["backups"]);
    assert_eq!(late.code, 2, "{}{}", late.stdout, late.stderr);
    assert!(
        late.stdout.contains("LAG OVER LIMIT: 3d0h > 2d0h"),
        "{}",
        late.stdout
    );
    zfs(&["release", "keepme", &held_snap]);
}

/// A job's hooks: `pre_snapshot` runs before the snapshot (what it writes is in it),
/// `post_snapshot` after (the snapshot is there), `post_run` after every run and
/// `on_failure` after a failed one, each with the run in `ZREP_*` variables. A failing
/// or overstaying `pre_snapshot` means no snapshot and a failed run; a failing
/// `post_run` is only logged.
/// The snapshot hooks of a job that pushes over SSH and of one that pulls: they run
/// where zrep runs, around the snapshot it takes on the source (here for the push,
/// on the remote host for the pull), and what pre_snapshot wrote reaches the target.
#[test]
fn hooks_run_for_jobs_that_push_and_pull_over_ssh() {
    let p = TestPool::with_size(256 << 20);
    let src = p.create("src");
    let (push, pull) = (p.ds("push"), p.ds("pull"));
    let ssh = std::env::var("ZREP_TEST_SSH").expect("ZREP_TEST_SSH (the guest's sshd)");
    let zrep_path = zrep_tests::zrep_bin().display().to_string();
    let dir = test_dir().join(format!("hooks-ssh-{}", p.name()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = p.path("src").display().to_string();
    let env_file = |name: &str| dir.join(format!("{name}.env"));
    let job = |name: &str, source: &str, target: &str| {
        format!(
            "[[job]]\nname = \"hooks-{name}\"\nsource = \"{source}\"\ntarget = \"{target}\"\n\
             ssh = \"{ssh}\"\nremote_zrep = \"{zrep_path}\"\n\
             pre_snapshot = [\"sh\", \"-c\", \"env | grep ^ZREP_ | sort > {}; echo {name} > {data}/flushed\"]\n\
             post_snapshot = [\"rm\", \"{data}/flushed\"]\n\n",
            env_file(name).display()
        )
    };
    let (push_target, pull_source) = (format!("localhost:{push}"), format!("localhost:{src}"));
    let conf = Conf::new(
        &p,
        &(job("push", &src, &push_target) + &job("pull", &pull_source, &pull)),
    );
    let t0 = start();
    write_random(&p.path("src/f"), 64 << 10, 1);
    // Job names are host-wide locks: these are not another test's ("push").
    let ran_push = conf.at(t0, "run", &["-v", "hooks-push"]).ok();
    write_random(&p.path("src/g"), 64 << 10, 2);
    let ran_pull = conf.at(t0 + 60, "run", &["-v", "hooks-pull"]).ok();
    for (name, dst, t, source, target, ran) in [
        ("push", &push, t0, &src, &push_target, &ran_push),
        ("pull", &pull, t0 + 60, &pull_source, &pull, &ran_pull),
    ] {
        let env = std::fs::read_to_string(env_file(name)).unwrap_or_else(|e| {
            panic!(
                "{name}: no hook environment ({e}); zrep said:\n{}",
                ran.stderr
            )
        });
        for want in [
            format!("ZREP_SOURCE={source}"),
            format!("ZREP_TARGET={target}"),
            format!("ZREP_SNAPSHOT=zrep-{}", utc_stamp(t)),
            format!("ZREP_DATASETS={src}"),
        ] {
            assert!(
                env.lines().any(|l| l == want),
                "{name}: {want} not in\n{env}"
            );
        }
        assert_eq!(zrep_times(dst).last(), Some(&t), "{name}");
        mount(dst);
        assert_eq!(
            std::fs::read_to_string(p.path(&format!("{name}/flushed"))).unwrap(),
            format!("{name}\n"),
            "{name}: what pre_snapshot wrote is not in the snapshot"
        );
    }
    assert!(!p.path("src/flushed").exists(), "post_snapshot did not run");
}

#[test]
fn hooks_run_around_the_snapshot_and_after_the_run() {
    let p = TestPool::with_size(256 << 20);
    let src = p.create("src");
    let dst = p.ds("dst");
    let dir = test_dir().join(format!("hooks-{}", p.name()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = p.path("src");
    let log = |name: &str| dir.join(name).display().to_string();
    // Each hook records its environment, and what the source's snapshot directory
    // holds at that moment; pre_snapshot also writes a "flushed" file into the
    // dataset, which post_snapshot removes (a database's freeze and thaw).
    let hook = |name: &str, extra: &str| {
        format!(
            "[\"sh\", \"-c\", \"env | grep ^ZREP_ | sort > {0}.env; ls {1}/.zfs/snapshot > {0}.snaps; {extra}\"]",
            log(name),
            data.display()
        )
    };
    let job = |pre: &str, post_run: &str, timeout: &str| {
        format!(
            "[[job]]\nname = \"hooked\"\nsource = \"{src}\"\ntarget = \"{dst}\"\n\
             hook_timeout = \"{timeout}\"\n\
             pre_snapshot = {pre}\npost_snapshot = {}\npost_run = {post_run}\n\
             on_failure = {}\n",
            hook("post_snapshot", &format!("rm {}/flushed", data.display())),
            hook("on_failure", "true"),
        )
    };
    let pre_ok = hook(
        "pre_snapshot",
        &format!("echo state > {}/flushed", data.display()),
    );
    let conf = Conf::new(&p, &job(&pre_ok, &hook("post_run", "true"), "30s"));
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    let t0 = start();
    write_random(&p.path("src/f"), 64 << 10, 1);
    conf.at(t0, "run", &[]).ok();
    let snap = format!("zrep-{}", utc_stamp(t0));
    assert!(
        !read("pre_snapshot.snaps").contains(&snap),
        "pre ran after the snapshot"
    );
    assert!(
        read("post_snapshot.snaps").contains(&snap),
        "post ran before the snapshot"
    );
    let pre_env = read("pre_snapshot.env");
    for want in [
        "ZREP_HOOK=pre_snapshot".to_string(),
        "ZREP_JOB=hooked".into(),
        format!("ZREP_SNAPSHOT={snap}"),
        format!("ZREP_SOURCE={src}"),
        format!("ZREP_TARGET={dst}"),
        format!("ZREP_DATASETS={src}"),
    ] {
        assert!(
            pre_env.lines().any(|l| l == want),
            "{want} not in\n{pre_env}"
        );
    }
    let run_env = read("post_run.env");
    assert!(run_env.contains("ZREP_OUTCOME=ok"), "{run_env}");
    assert!(
        run_env.contains(&format!("ZREP_SNAPSHOT={snap}")),
        "{run_env}"
    );
    let bytes: u64 = run_env
        .lines()
        .find_map(|l| l.strip_prefix("ZREP_BYTES="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(bytes > 64 << 10, "{run_env}");
    assert_eq!(
        read("on_failure.env"),
        "",
        "on_failure ran after a good run"
    );
    // What pre_snapshot wrote is in the snapshot that reached the target; the source
    // lost it again in post_snapshot.
    assert!(!data.join("flushed").exists());
    assert_eq!(zrep_times(&dst), [t0]);
    mount(&dst);
    assert_eq!(
        std::fs::read_to_string(p.path("dst/flushed")).unwrap(),
        "state\n"
    );

    // A failing pre_snapshot: no snapshot, a failed run, on_failure told why.
    write_random(&p.path("src/g"), 16 << 10, 2);
    let failing = hook("pre_snapshot", "exit 3");
    conf.write(&job(&failing, &hook("post_run", "true"), "30s"));
    conf.at(t0 + 3600, "run", &[])
        .fails_with("job hooked: pre_snapshot hook \"sh\" exited with status 3");
    assert_eq!(
        zrep_times(&src),
        [t0],
        "a snapshot was taken after pre_snapshot failed"
    );
    let fail_env = read("on_failure.env");
    assert!(fail_env.contains("ZREP_OUTCOME=failed"), "{fail_env}");
    assert!(
        fail_env.contains("ZREP_ERROR=job hooked: pre_snapshot hook"),
        "{fail_env}"
    );
    assert!(read("post_run.env").contains("ZREP_OUTCOME=failed"));

    // One that overstays its time limit is killed, with what it started.
    let slow = hook("pre_snapshot", "sleep 60 & sleep 60");
    conf.write(&job(&slow, &hook("post_run", "true"), "1s"));
    let t = Instant::now();
    conf.at(t0 + 7200, "run", &[])
        .fails_with("did not finish within 1 s and was killed");
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    assert_eq!(zrep_times(&src), [t0]);

    // A failing post_run is logged; the run stays good and its snapshot is sent.
    conf.write(&job(&pre_ok, &hook("post_run", "exit 1"), "30s"));
    let r = conf.at(t0 + 10_800, "run", &[]).ok();
    assert!(
        r.stderr
            .contains("post_run hook \"sh\" exited with status 1"),
        "{}",
        r.stderr
    );
    assert_eq!(zrep_times(&dst), [t0, t0 + 10_800]);
}
