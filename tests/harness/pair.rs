//! Fixtures for the replication tests (tests/zrep_*.rs): a source and a target on one
//! pool ([`Pair`]), run through the zrep binary locally or over the guest's loopback
//! SSH ([`Way`]), and checked by snapshots, GUIDs and file contents.
//!
//! `let pair = pool.pair(); pair.src.write("f", 4096, 1).snap("s1");
//! pair.replicate(&["--no-snapshot"]).ok(); pair.same_data();`
use crate::cli::{ssh_args, zrep, zrep_spawn, Run};
use crate::{cli_snapshots, mount, test_dir, tree_digest, zfs_get, Fs, TestPool};

/// Short names of a dataset's snapshots, oldest first (the `zfs` CLI).
pub fn short_snaps(ds: &str) -> Vec<String> {
    cli_snapshots(ds)
        .into_iter()
        .map(|s| s.split_once('@').unwrap().1.to_string())
        .collect()
}

/// The `guid` of a dataset, snapshot or bookmark (the `zfs` CLI).
pub fn guid(name: &str) -> String {
    zfs_get("guid", name)
}

/// Whether a receive into `ds` has started and holds more than `bytes` (for
/// interrupting a transfer mid-stream).
pub fn receiving(ds: &str, bytes: u64) -> bool {
    crate::cli_exists(ds) && zfs_get("referenced", ds).parse::<u64>().unwrap_or(0) > bytes
}

/// Runs zrep with `ssh` (its `--ssh`/`--remote-zrep` arguments) after `args`.
pub fn zrep_via(args: &[&str], ssh: &[String]) -> Run {
    let mut v = args.to_vec();
    v.extend(ssh.iter().map(String::as_str));
    zrep(&v)
}

/// Runs zrep with the guest sshd's `--ssh` and `--remote-zrep` after `args`.
pub fn zrep_ssh(args: &[&str]) -> Run {
    zrep_via(args, &ssh_args())
}

/// Asserts that zrep refused a run: exit code 1 and `says` in its stderr. `what`
/// names the case when it fails.
#[track_caller]
pub fn expect_refused(what: &str, r: Run, says: &str) -> Run {
    let refused = r.code == 1 && r.stderr.contains(says);
    let (code, out, err) = (r.code, &r.stdout, &r.stderr);
    assert!(
        refused,
        "{what}: not exit code 1 with {says:?} in stderr but {code}:\n{out}\n{err}"
    );
    r
}

/// Writes a zrep config with its own state directory (under the test directory,
/// named by `tag` and the pool) followed by `jobs`; returns the file's path.
pub fn job_config(pool: &TestPool, tag: &str, jobs: &str) -> String {
    let dir = test_dir().join(format!("{tag}-{}", pool.name()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("zrep.toml");
    let head = format!("state_dir = \"{}/state\"\n\n", dir.display());
    std::fs::write(&path, head + jobs).unwrap();
    path.to_str().unwrap().to_owned()
}

impl Fs<'_> {
    /// Short names of this dataset's snapshots, oldest first (the `zfs` CLI).
    pub fn short_snaps(&self) -> Vec<String> {
        short_snaps(self.name())
    }

    /// Where this filesystem is mounted (by the pool root's mountpoint).
    pub fn root(&self) -> std::path::PathBuf {
        self.pool.path(&self.rel)
    }
}

/// How a replication reaches its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Way {
    /// Both names local.
    Local,
    /// Over SSH to `localhost:TARGET`.
    Push,
    /// Over SSH from `localhost:SOURCE`.
    Pull,
}

impl Way {
    /// The two ways over SSH.
    pub const SSH: [Way; 2] = [Way::Push, Way::Pull];

    /// `push`, `pull` or `local`, for dataset names and failure messages.
    pub fn name(self) -> &'static str {
        match self {
            Way::Local => "local",
            Way::Push => "push",
            Way::Pull => "pull",
        }
    }
}

/// A source and a target for `zrep replicate`.
pub struct Pair<'p> {
    /// The source.
    pub src: Fs<'p>,
    /// The target (made by the first replication).
    pub dst: Fs<'p>,
}

impl TestPool {
    /// `src` (created, mounted) and `dst` (not created).
    pub fn pair(&self) -> Pair<'_> {
        Pair {
            src: self.fs("src"),
            dst: self.fs_at("dst"),
        }
    }

    /// The pair `src` -> `dst` of this pool, neither created.
    pub fn pair_at(&self, src: &str, dst: &str) -> Pair<'_> {
        Pair {
            src: self.fs_at(src),
            dst: self.fs_at(dst),
        }
    }
}

impl Pair<'_> {
    /// The source and target as zrep takes them for `way`.
    pub fn ends(&self, way: Way) -> [String; 2] {
        let (s, t) = (self.src.name(), self.dst.name());
        match way {
            Way::Local => [s.into(), t.into()],
            Way::Push => [s.into(), format!("localhost:{t}")],
            Way::Pull => [format!("localhost:{s}"), t.into()],
        }
    }

    /// `zrep replicate OPTS SOURCE TARGET` (with the SSH arguments unless local).
    pub fn args(&self, way: Way, opts: &[&str]) -> Vec<String> {
        let mut v = vec!["replicate".to_string()];
        v.extend(opts.iter().map(|o| o.to_string()));
        v.extend(self.ends(way));
        if way != Way::Local {
            v.extend(ssh_args());
        }
        v
    }

    /// Runs `zrep replicate OPTS SOURCE TARGET` the `way` given; not checked.
    pub fn replicate_via(&self, way: Way, opts: &[&str]) -> Run {
        let args = self.args(way, opts);
        zrep(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Starts `zrep replicate OPTS SOURCE TARGET` the `way` given, without waiting.
    pub fn spawn(&self, way: Way, opts: &[&str]) -> std::process::Child {
        let args = self.args(way, opts);
        zrep_spawn(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Runs `zrep replicate OPTS SOURCE TARGET` locally; not checked.
    pub fn replicate(&self, opts: &[&str]) -> Run {
        self.replicate_via(Way::Local, opts)
    }

    /// Runs `zrep replicate --json OPTS SOURCE TARGET` locally, which must succeed;
    /// returns its report.
    #[track_caller]
    pub fn replicate_json(&self, opts: &[&str]) -> serde_json::Value {
        let mut v = vec!["--json"];
        v.extend_from_slice(opts);
        self.replicate(&v).ok().json()
    }

    /// Asserts that `@snap` has the same GUID on both sides.
    #[track_caller]
    pub fn same_snapshot(&self, snap: &str) {
        assert_eq!(
            guid(&self.src.at(snap)),
            guid(&self.dst.at(snap)),
            "@{snap} differs"
        );
    }

    /// Asserts that the target (mounted first) holds the source's files.
    #[track_caller]
    pub fn same_data(&self) {
        mount(self.dst.name());
        assert_eq!(
            tree_digest(&self.src.root()),
            tree_digest(&self.dst.root()),
            "{} and {} hold different files",
            self.src.name(),
            self.dst.name()
        );
    }
}
