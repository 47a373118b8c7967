//! Campaign 2, divergence and deletion (issue #5): a replicated pair (snapshots @s1,
//! @s2, cursor on @s2) is disturbed one way per case, the source takes @s3, and zrep
//! runs without --force, then (when refused) with it. A refusal must leave the target
//! exactly as it was (snapshots, GUIDs, data); a success must leave identical trees and
//! the cursor alone. Prints the table of cases and outcomes.
use std::process::Command;

use zrep_tests::campaign::{assert_cursor_only, zrep_marks, Report};
use zrep_tests::cli::{zrep, Run};
use zrep_tests::{cli_snapshots, mount, tree_digest, write_random, zfs, zfs_get, TestPool};

/// What must not change on a target that zrep refused: snapshots with GUIDs, and the
/// files. (Not `written`: reading the files of a writable target updates atimes.)
type View = (Vec<(String, String)>, Vec<(std::path::PathBuf, u64, u64)>);

/// One pair under test.
struct Pair<'a> {
    p: &'a TestPool,
    rel: String,
    src: String,
    dst: String,
}

impl Pair<'_> {
    fn write(&self, file: &str, seed: u64) {
        write_random(
            &self.p.path(&format!("{}/src/{file}", self.rel)),
            256 << 10,
            seed,
        );
    }
    fn snap(&self, ds: &str, name: &str) {
        zfs(&["snapshot", &format!("{ds}@{name}")]);
    }
    fn replicate(&self, force: bool) -> Run {
        let mut a = vec!["replicate", "--json", "--no-snapshot"];
        if force {
            a.push("--force");
        }
        a.extend([self.src.as_str(), self.dst.as_str()]);
        zrep(&a)
    }
    /// The first zrep hold tag on `ds` (the cursor's).
    fn tag(&self, ds: &str) -> String {
        zrep_marks(ds).0[0].1.clone()
    }
    fn release(&self, ds: &str, snap: &str) {
        let tag = self.tag(ds);
        zfs(&["release", &tag, &format!("{ds}@{snap}")]);
    }
    /// What must not change on the target when zrep refuses.
    fn target_view(&self) -> View {
        let snaps = cli_snapshots(&self.dst)
            .into_iter()
            .map(|s| {
                let g = zfs_get("guid", &s);
                (s, g)
            })
            .collect();
        mount(&self.dst);
        let dir = self.p.path(&format!("{}/dst", self.rel));
        (snaps, tree_digest(&dir))
    }
}

#[derive(Clone, Copy)]
enum Expect {
    /// Succeeds (any mode).
    Ok,
    /// Exit 1 with this in stderr.
    Refused(&'static str),
}

type Mutation = fn(&Pair<'_>);

fn cases() -> Vec<(&'static str, Mutation, Expect, Option<Expect>)> {
    vec![
        (
            "target: a file written",
            |c| {
                zfs(&["set", "readonly=off", &c.dst]);
                mount(&c.dst);
                write_random(&c.p.path(&format!("{}/dst/local", c.rel)), 4096, 1);
            },
            Expect::Refused("has been modified"),
            Some(Expect::Ok),
        ),
        (
            "target: an extra snapshot",
            |c| c.snap(&c.dst, "mine"),
            Expect::Refused("snapshots the source lacks"),
            Some(Expect::Ok),
        ),
        (
            "target: modified and an extra snapshot",
            |c| {
                c.snap(&c.dst, "mine");
                zfs(&["set", "readonly=off", &c.dst]);
                mount(&c.dst);
                write_random(&c.p.path(&format!("{}/dst/local", c.rel)), 4096, 2);
            },
            Expect::Refused("snapshots the source lacks"),
            Some(Expect::Ok),
        ),
        (
            "source: intermediate snapshots destroyed",
            |c| {
                c.write("x", 3);
                c.snap(&c.src, "x1");
                c.write("y", 4);
                c.snap(&c.src, "x2");
                zfs(&["destroy", &format!("{}@x1", c.src)]);
            },
            Expect::Ok,
            None,
        ),
        (
            "source: common snapshot destroyed (hold released by hand)",
            |c| {
                c.release(&c.src, "s2");
                zfs(&["destroy", &format!("{}@s2", c.src)]);
            },
            Expect::Ok,
            None,
        ),
        (
            "source: cursor bookmark destroyed",
            |c| {
                let bm = zrep_marks(&c.src).1[0].clone();
                zfs(&["destroy", &format!("{}#{bm}", c.src)]);
            },
            Expect::Ok,
            None,
        ),
        (
            "source: common snapshot and its bookmark destroyed",
            |c| {
                let bm = zrep_marks(&c.src).1[0].clone();
                zfs(&["destroy", &format!("{}#{bm}", c.src)]);
                c.release(&c.src, "s2");
                zfs(&["destroy", &format!("{}@s2", c.src)]);
            },
            Expect::Refused("snapshots the source lacks"),
            Some(Expect::Ok),
        ),
        (
            "source: every snapshot and bookmark destroyed",
            |c| {
                let bm = zrep_marks(&c.src).1[0].clone();
                zfs(&["destroy", &format!("{}#{bm}", c.src)]);
                c.release(&c.src, "s2");
                zfs(&["destroy", &format!("{}@s1%s2", c.src)]);
            },
            Expect::Refused("shares no snapshot"),
            Some(Expect::Refused("shares no snapshot")),
        ),
        (
            "source: rolled back past the cursor (hold released)",
            |c| {
                c.release(&c.src, "s2");
                zfs(&["rollback", "-r", &format!("{}@s1", c.src)]);
            },
            Expect::Refused("snapshots the source lacks"),
            Some(Expect::Ok),
        ),
        (
            "source: cursor hold released by hand",
            |c| c.release(&c.src, "s2"),
            Expect::Ok,
            None,
        ),
        (
            "target: cursor hold released by hand",
            |c| c.release(&c.dst, "s2"),
            Expect::Ok,
            None,
        ),
        (
            "target: newest common snapshot destroyed",
            |c| {
                c.release(&c.dst, "s2");
                zfs(&["destroy", &format!("{}@s2", c.dst)]);
            },
            // What @s2 held is now a change since @s1 on the target.
            Expect::Refused("has been modified"),
            Some(Expect::Ok),
        ),
        (
            "target: every snapshot destroyed",
            |c| {
                c.release(&c.dst, "s2");
                zfs(&["destroy", &format!("{}@s1%s2", c.dst)]);
            },
            Expect::Refused("shares no snapshot"),
            Some(Expect::Refused("shares no snapshot")),
        ),
        (
            "target: stale resume state (its snapshot gone from the source)",
            |c| {
                write_random(&c.p.path(&format!("{}/src/big", c.rel)), 8 << 20, 5);
                c.snap(&c.src, "tmp");
                let st = Command::new("sh")
                    .arg("-c")
                    .arg(format!(
                        "zfs send -i @s2 {0}@tmp | head -c 2M | zfs receive -s {1}",
                        c.src, c.dst
                    ))
                    .status()
                    .unwrap();
                assert!(!st.success());
                zfs(&["destroy", &format!("{}@tmp", c.src)]);
            },
            Expect::Ok,
            None,
        ),
    ]
}

fn outcome(r: &Run) -> String {
    if r.code == 0 {
        format!("ok, {}", r.json()["mode"].as_str().unwrap_or("?"))
    } else {
        let l = r
            .stderr
            .lines()
            .find(|l| l.starts_with("zrep:"))
            .unwrap_or("?");
        let short: String = l.trim_start_matches("zrep: ").chars().take(60).collect();
        format!("refused: {short}")
    }
}

/// Checks a run against what was expected; a refusal must change nothing.
fn check(c: &Pair<'_>, case: &str, r: &Run, want: Expect, before: &View) {
    assert!(!r.stderr.contains("panicked"), "{case}: {}", r.stderr);
    match want {
        Expect::Ok => {
            assert_eq!(r.code, 0, "{case}: expected success: {}", r.stderr);
            mount(&c.dst);
            assert_eq!(
                tree_digest(&c.p.path(&format!("{}/src", c.rel))),
                tree_digest(&c.p.path(&format!("{}/dst", c.rel))),
                "{case}: trees differ after success"
            );
            assert_cursor_only(&c.src, &c.dst, "s3");
        }
        Expect::Refused(needle) => {
            assert_eq!(r.code, 1, "{case}: expected a refusal: {r:?}");
            assert!(r.stderr.contains(needle), "{case}: {}", r.stderr);
            assert_eq!(
                &c.target_view(),
                before,
                "{case}: a refusal changed the target"
            );
        }
    }
}

#[test]
fn campaign_divergence() {
    let mut report = Report::new("divergence");
    let p = TestPool::with_size(512 << 20);
    let mut rows = Vec::new();
    let all = cases();
    for (i, (case, mutate, without, with_force)) in all.iter().enumerate() {
        let rel = format!("c{i}");
        let c = Pair {
            p: &p,
            src: p.create(&format!("{rel}/src")),
            dst: p.ds(&format!("{rel}/dst")),
            rel,
        };
        c.write("a", 10);
        c.snap(&c.src, "s1");
        c.replicate(false).ok();
        c.write("b", 11);
        c.snap(&c.src, "s2");
        c.replicate(false).ok();
        mutate(&c);
        c.write("c", 12);
        c.snap(&c.src, "s3");
        let before = c.target_view();
        let r = c.replicate(false);
        let first = outcome(&r);
        check(&c, case, &r, *without, &before);
        let forced = match with_force {
            Some(want) => {
                let r = c.replicate(true);
                check(&c, case, &r, *want, &before);
                outcome(&r)
            }
            None => "-".into(),
        };
        let kept = if matches!(without, Expect::Refused(_)) {
            "unchanged"
        } else {
            "= source"
        };
        rows.push(vec![case.to_string(), first, kept.into(), forced]);
    }
    report.table(
        &["case", "zrep replicate", "target", "zrep replicate --force"],
        &rows,
    );
    report.finish(&format!(
        "{} cases: every refusal left the target unchanged, every success left identical trees and only the cursor",
        all.len()
    ));
}
