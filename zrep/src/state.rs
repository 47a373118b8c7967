//! What the last runs of each job did (`<state_dir>/state.json`), for `zrep status`
//! and the Prometheus textfile.
//!
//! Several jobs may run at once (one process each): every update is a
//! read-modify-write under a lock, the Prometheus textfile is written under the same
//! lock (so an older textfile is never written last), and files are replaced by
//! rename after an fsync, so a reader or a crash never leaves half a file.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::error::{err, Kind, Result};

/// Every job's record.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// By job name.
    pub jobs: BTreeMap<String, JobRecord>,
}

/// One job's record.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct JobRecord {
    /// When the last run started.
    pub last_run: Option<u64>,
    /// When the last run without any failure ended.
    pub last_success: Option<u64>,
    /// The last run's error, if it failed.
    pub last_error: Option<String>,
    /// Runs that failed, ever.
    pub failures_total: u64,
    /// Stream bytes sent, ever.
    pub bytes_total: u64,
    /// By source dataset.
    pub datasets: BTreeMap<String, DatasetRecord>,
}

/// One dataset's record.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DatasetRecord {
    /// Its target (`host:` included when remote).
    pub target: String,
    /// When it was last replicated without error.
    pub last_success: Option<u64>,
    /// The last run's error for it.
    pub last_error: Option<String>,
    /// Bytes sent by the last run.
    pub bytes: u64,
    /// Seconds the last run took for it.
    pub seconds: f64,
    /// The newest snapshot both sides had after the last run, and its time.
    pub newest_common: Option<(String, u64)>,
    /// The target held everything written before this time (the start of the last
    /// run that succeeded for the dataset): the lag is measured from it.
    pub synced_at: Option<u64>,
}

fn file(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

impl State {
    /// Reads the state (empty when there is none yet).
    pub fn load(dir: &Path) -> Result<State> {
        match std::fs::read(file(dir)) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                err(
                    Kind::Io,
                    format!(
                        "{} is damaged ({e}); move it away to start afresh",
                        file(dir).display()
                    ),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(err(
                Kind::Io,
                format!("cannot read {}: {e}", file(dir).display()),
            )),
        }
    }

    /// Changes one job's record (`change`), writes the state back, then hands the
    /// new state to `publish` (the Prometheus textfile) while still holding the state
    /// lock; returns the new state.
    pub fn update(
        dir: &Path,
        job: &str,
        change: impl FnOnce(&mut JobRecord),
        publish: impl FnOnce(&State) -> Result<()>,
    ) -> Result<State> {
        std::fs::create_dir_all(dir)
            .map_err(|e| err(Kind::Io, format!("cannot create {}: {e}", dir.display())))?;
        let _lock = crate::lock::Lock::job(&format!("state {}", dir.display()), 60)?;
        let mut s = State::load(dir)?;
        change(s.jobs.entry(job.to_string()).or_default());
        let text = serde_json::to_vec_pretty(&s).map_err(|e| err(Kind::Io, e.to_string()))?;
        write_atomic(&file(dir), &text)?;
        publish(&s)?;
        Ok(s)
    }
}

/// Replaces `path` with `bytes`: a reader sees the old file or the new one, and after
/// a crash one of them is on disk. The bytes go to a new file beside `path` (a name
/// of its own, created exclusively and never through a symbolic link), which is
/// synced, renamed over `path`, and the directory synced.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let fail = |e: io::Error| err(Kind::Io, format!("cannot write {}: {e}", path.display()));
    let name = path
        .file_name()
        .ok_or_else(|| fail(io::Error::other("not a file name")))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // A name already taken (a leftover, or planted) is passed over for the next.
    let mut attempt = 0;
    loop {
        match write_via(path, &dir.join(temp_name(name)), bytes) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(e) => return Err(fail(e)),
            Ok(()) => return sync_dir(dir).map_err(fail),
        }
    }
}

/// `.NAME.<pid>.<count>.<nanoseconds>.tmp`: unique among live processes, hidden, and
/// not read by node_exporter (which reads `*.prom`).
fn temp_name(name: &OsStr) -> OsString {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut t = OsString::from(".");
    t.push(name);
    t.push(format!(
        ".{}.{}.{nanos:08x}.tmp",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    ));
    t
}

/// Writes `bytes` to `tmp` (which must not exist: `AlreadyExists` otherwise), syncs
/// it and renames it over `path`; `tmp` is removed when that fails.
fn write_via(path: &Path, tmp: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(tmp)?;
    let written = f
        .write_all(bytes)
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    written
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The node_exporter textfile for `state` at time `now`.
pub fn prometheus(state: &State, now: u64) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, rows: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, v) in rows {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    };
    let jobs = || {
        state
            .jobs
            .iter()
            .map(|(j, r)| (format!("job=\"{}\"", label(j)), r))
    };
    let datasets = || {
        state.jobs.iter().flat_map(|(j, r)| {
            r.datasets
                .iter()
                .map(move |(d, dr)| (format!("job=\"{}\",dataset=\"{}\"", label(j), label(d)), dr))
        })
    };
    metric(
        "zrep_lag_seconds",
        "gauge",
        "Seconds since the target last held everything written on the source.",
        datasets()
            .filter_map(|(l, d)| {
                d.newest_common
                    .as_ref()
                    .map(|c| (l, now.saturating_sub(c.1) as f64))
            })
            .collect(),
    );
    metric(
        "zrep_last_success_timestamp_seconds",
        "gauge",
        "When the dataset was last replicated without error.",
        datasets()
            .filter_map(|(l, d)| d.last_success.map(|t| (l, t as f64)))
            .collect(),
    );
    metric(
        "zrep_last_run_bytes",
        "gauge",
        "Stream bytes the last run sent for the dataset.",
        datasets().map(|(l, d)| (l, d.bytes as f64)).collect(),
    );
    metric(
        "zrep_last_run_success",
        "gauge",
        "1 when the job's last run had no failure.",
        jobs()
            .map(|(l, r)| (l, f64::from(u8::from(r.last_error.is_none()))))
            .collect(),
    );
    metric(
        "zrep_last_run_timestamp_seconds",
        "gauge",
        "When the job's last run started.",
        jobs()
            .filter_map(|(l, r)| r.last_run.map(|t| (l, t as f64)))
            .collect(),
    );
    metric(
        "zrep_failures_total",
        "counter",
        "Runs of the job that failed.",
        jobs().map(|(l, r)| (l, r.failures_total as f64)).collect(),
    );
    metric(
        "zrep_sent_bytes_total",
        "counter",
        "Stream bytes the job has sent.",
        jobs().map(|(l, r)| (l, r.bytes_total as f64)).collect(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text() {
        let mut s = State::default();
        let mut r = JobRecord {
            last_run: Some(100),
            failures_total: 2,
            last_error: Some("x".into()),
            ..JobRecord::default()
        };
        r.datasets.insert(
            "tank/a \"q\"".into(),
            DatasetRecord {
                newest_common: Some(("zrep-x".into(), 40)),
                synced_at: Some(40),
                bytes: 5,
                ..DatasetRecord::default()
            },
        );
        s.jobs.insert("j".into(), r);
        let t = prometheus(&s, 100);
        assert!(
            t.contains("zrep_lag_seconds{job=\"j\",dataset=\"tank/a \\\"q\\\"\"} 60\n"),
            "{t}"
        );
        assert!(t.contains("zrep_last_run_success{job=\"j\"} 0\n"), "{t}");
        assert!(
            t.contains("# TYPE zrep_failures_total counter\nzrep_failures_total{job=\"j\"} 2\n"),
            "{t}"
        );
    }

    /// A new empty directory of mode 0700 for one test.
    fn scratch(test: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("zrep-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        // Private: it is also the test's lock directory, which zrep checks.
        std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
            .create(&d)
            .unwrap();
        d
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn update_round_trips() {
        let dir = scratch("state");
        std::env::set_var("ZREP_LOCK_DIR", &dir);
        let prom = dir.join("zrep.prom");
        let publish = |s: &State| write_atomic(&prom, prometheus(s, 100).as_bytes());
        State::update(&dir, "a", |r| r.failures_total += 1, publish).unwrap();
        let s = State::update(&dir, "a", |r| r.failures_total += 1, publish).unwrap();
        assert_eq!(s.jobs["a"].failures_total, 2);
        let text = std::fs::read_to_string(&prom).unwrap();
        assert!(
            text.contains("zrep_failures_total{job=\"a\"} 2\n"),
            "{text}"
        );
        assert_eq!(State::load(&dir).unwrap().jobs["a"].failures_total, 2);
        std::fs::write(dir.join("state.json"), "{").unwrap();
        assert!(State::load(&dir)
            .unwrap_err()
            .message
            .contains("is damaged"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn atomic_writes_leave_the_whole_file_and_no_temporary() {
        let dir = scratch("atomic");
        let path = dir.join("state.json");
        let big: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 251) as u8).collect();
        for bytes in [&b"old"[..], &big] {
            write_atomic(&path, bytes).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), bytes);
            assert_eq!(entries(&dir), ["state.json"]);
        }
        // A path without a file name is refused.
        let e = write_atomic(Path::new("/"), b"x").unwrap_err();
        assert!(e.message.contains("cannot write /: not a file name"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn atomic_writes_follow_no_symbolic_link() {
        use std::os::unix::fs::symlink;
        let dir = scratch("symlink");
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let path = dir.join("zrep.prom");
        std::fs::write(&path, "old").unwrap();
        // Planted at the temporary name: refused, nothing written anywhere.
        let tmp = dir.join(".zrep.prom.planted.tmp");
        symlink(&victim, &tmp).unwrap();
        let e = write_via(&path, &tmp, b"new").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert!(std::fs::symlink_metadata(&tmp).unwrap().is_symlink());
        // A dangling one too (O_EXCL does not create through it).
        let dangling = dir.join(".zrep.prom.dangling.tmp");
        symlink(dir.join("created-through-the-link"), &dangling).unwrap();
        assert!(write_via(&path, &dangling, b"new").is_err());
        assert!(!dir.join("created-through-the-link").exists());
        // The file itself a link: replaced by the new file, its target untouched.
        std::fs::remove_file(&path).unwrap();
        symlink(&victim, &path).unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(!std::fs::symlink_metadata(&path).unwrap().is_symlink());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
