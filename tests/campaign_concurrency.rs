//! Campaign 6, concurrency (issue #5): runs that overlap on one target, on one
//! source, on a tree and its child, locally and over SSH. Every run ends in success
//! or in the documented message ("another zrep is replicating into ..."), a run that
//! gave up changed nothing, and the target ends identical to the source with only
//! zrep's cursor on it.
use std::process::Output;
use std::time::{Duration, Instant};

use zrep_tests::campaign::{assert_cursor_only, Report};
use zrep_tests::cli::{ssh_args, zrep, zrep_cmd};
use zrep_tests::{cli_snapshots, mount, tree_digest, write_random, TestPool};

/// Starts all command lines at once; returns (output, seconds) of each.
fn together(runs: &[Vec<String>], env_lock_dir: &[bool]) -> Vec<(Output, f64)> {
    let t0 = Instant::now();
    let children: Vec<_> = runs
        .iter()
        .zip(env_lock_dir)
        .map(|(a, test_lock_dir)| {
            let mut c = zrep_cmd(&a.iter().map(String::as_str).collect::<Vec<_>>());
            if !test_lock_dir {
                // The default lock directory, as zrep serve on the same host uses.
                c.env_remove("ZREP_LOCK_DIR");
            }
            c.stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn zrep")
        })
        .collect();
    children
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            (o, t0.elapsed().as_secs_f64())
        })
        .collect()
}

fn describe(o: &Output, secs: Option<f64>) -> String {
    let after = secs.map(|s| format!(" after {s:.1} s")).unwrap_or_default();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    if o.status.success() {
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        let mode = if j.is_array() {
            "tree".to_string()
        } else {
            j["mode"].as_str().unwrap_or("?").to_string()
        };
        format!("ok ({mode}){after}")
    } else {
        let l = err.lines().find(|l| l.starts_with("zrep:")).unwrap_or("?");
        format!(
            "exit {}: {}",
            o.status.code().unwrap_or(-1),
            l.chars().take(70).collect::<String>()
        )
    }
}

/// The table row of runs that must all have succeeded.
fn all_ok(what: &str, out: &[(Output, f64)]) -> Vec<String> {
    for (o, _) in out {
        assert!(
            o.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let rest: Vec<String> = out[1..]
        .iter()
        .map(|(o, s)| describe(o, Some(*s)))
        .collect();
    vec![
        what.into(),
        describe(&out[0].0, Some(out[0].1)),
        rest.join("; "),
    ]
}

fn same(p: &TestPool, s: &str, t: &str) {
    mount(&p.ds(t));
    assert_eq!(
        tree_digest(&p.path(s)),
        tree_digest(&p.path(t)),
        "{s} vs {t}"
    );
}

/// Waits until some zrep holds the lock of target `ds` (zrep/src/lock.rs: an flock on
/// `<lock dir>/<name, / as _>-<hash>.lock`).
fn wait_locked(ds: &str) {
    use std::os::fd::AsRawFd;
    // The harness points every zrep it starts there (tests/harness/cli.rs).
    let dir = zrep_tests::test_dir().join("locks");
    let prefix = format!(
        "{}-",
        ds.replace(
            |c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_',
            "_"
        )
    );
    let t0 = Instant::now();
    loop {
        assert!(t0.elapsed() < Duration::from_secs(60), "nobody locked {ds}");
        let files = std::fs::read_dir(&dir).into_iter().flatten().flatten();
        for f in files.filter(|f| f.file_name().to_string_lossy().starts_with(&prefix)) {
            let Ok(file) = std::fs::File::open(f.path()) else {
                continue;
            };
            // SAFETY: flock on a descriptor we own; a lock we get goes with `file`.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc != 0 {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn args(v: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = vec!["replicate".into(), "--json".into()];
    a.extend(v.iter().map(|s| s.to_string()));
    a
}

/// The newest snapshot of a dataset (short name).
fn newest(ds: &str) -> String {
    let s = cli_snapshots(ds).pop().expect("a snapshot");
    s.split_once('@').unwrap().1.to_string()
}

#[test]
fn campaign_concurrency() {
    let mut report = Report::new("concurrency");
    let mut rows: Vec<Vec<String>> = Vec::new();
    let p = TestPool::with_size(1 << 30);
    let src = p.create("src");
    write_random(&p.path("src/big"), 48 << 20, 1);

    // 1. Two runs into one target, started together (default --lock-wait 30).
    let dst = p.ds("one");
    let out = together(&[args(&[&src, &dst]), args(&[&src, &dst])], &[true, true]);
    rows.push(all_ok("two runs into one target at once", &out));
    same(&p, "src", "one");
    assert_cursor_only(&src, &dst, &newest(&src));

    // 2. and 3. A run that will not wait, and a scheduled run with a short wait,
    // while a long transfer goes on: both give up with the message, having changed
    // nothing (no snapshot taken).
    write_random(&p.path("src/big2"), 96 << 20, 2);
    for (what, wait) in [
        ("a second run, --lock-wait 0, during a long one", "0"),
        ("a scheduled run, --lock-wait 2, during a long one", "2"),
    ] {
        let dst = p.ds(&format!("long{wait}"));
        let before = cli_snapshots(&src);
        let first = zrep_cmd(&["replicate", "--json", &src, &dst])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Start the second run as soon as the first holds the target's lock, and
        // keep the first from finishing while the second waits: a fast guest once
        // sent the whole 144 MB within the 2 s wait.
        wait_locked(&dst);
        let pid = libc::pid_t::try_from(first.id()).unwrap();
        // SAFETY: kill sends a signal to our own child, which has not been reaped.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
        let t1 = Instant::now();
        let second = zrep(&["replicate", "--lock-wait", wait, &src, &dst]);
        let waited = t1.elapsed().as_secs_f64();
        // SAFETY: as above.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
        let o = first.wait_with_output().unwrap();
        assert!(o.status.success());
        let new: Vec<String> = cli_snapshots(&src)
            .into_iter()
            .filter(|s| !before.contains(s))
            .collect();
        assert!(
            new.len() <= 1,
            "{what}: the waiting run took a snapshot: {new:?}"
        );
        second.fails_with("another zrep is replicating into");
        same(&p, "src", &format!("long{wait}"));
        rows.push(vec![
            what.into(),
            describe(&o, None),
            format!("exit 1 after {waited:.1} s: another zrep is replicating into ..."),
        ]);
    }

    // 4. One source, two targets, at once: both take a snapshot in the same second.
    let small = p.create("small");
    write_random(&p.path("small/f"), 64 << 10, 3);
    let (t1, t2) = (p.ds("s1"), p.ds("s2"));
    let out = together(&[args(&[&small, &t1]), args(&[&small, &t2])], &[true, true]);
    rows.push(all_ok("one source into two targets at once", &out));
    same(&p, "small", "s1");
    same(&p, "small", "s2");

    // 5. A local run and a push over SSH into one target (one lock directory, as on
    // a real host).
    let both = p.ds("both");
    let mut remote = args(&[]);
    remote.extend(ssh_args());
    remote.extend([small.clone(), format!("localhost:{both}")]);
    let out = together(&[args(&[&small, &both]), remote], &[false, false]);
    rows.push(all_ok("a local run and one over SSH into one target", &out));
    same(&p, "small", "both");

    // 6. A tree (-r) and one of its children at once.
    let tree = p.create("tree");
    p.create("tree/a");
    write_random(&p.path("tree/a/f"), 16 << 20, 4);
    let ttgt = p.ds("ttgt");
    zrep(&["replicate", "-r", &tree, &ttgt]).ok();
    write_random(&p.path("tree/a/g"), 16 << 20, 5);
    let out = together(
        &[
            args(&["-r", &tree, &ttgt]),
            args(&[&format!("{tree}/a"), &format!("{ttgt}/a")]),
        ],
        &[true, true],
    );
    rows.push(all_ok("a tree (-r) and its child at once", &out));
    same(&p, "tree/a", "ttgt/a");

    // 7. Five runs into one target at once.
    let fsrc = p.create("fsrc");
    write_random(&p.path("fsrc/g"), 64 << 10, 6);
    let five = p.ds("five");
    let runs: Vec<Vec<String>> = (0..5).map(|_| args(&[&fsrc, &five])).collect();
    let out = together(&runs, &[true; 5]);
    rows.push(all_ok("five runs into one target at once", &out));
    same(&p, "fsrc", "five");
    assert_cursor_only(&fsrc, &five, &newest(&fsrc));

    report.table(&["case", "first run", "second run(s)"], &rows);
    report.finish(&format!(
        "{} cases: no corruption, every run succeeded or gave up with the documented message",
        rows.len()
    ));
}
