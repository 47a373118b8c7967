//! What the last runs of each job did (`<state_dir>/state.json`), for `zrep status`
//! and the Prometheus textfile.
//!
//! Several jobs may run at once (one process each): every update is a
//! read-modify-write under a lock, and files are replaced by rename, so a reader
//! never sees half a file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

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

    /// Changes one job's record and writes the state back; returns the new state.
    pub fn update(dir: &Path, job: &str, f: impl FnOnce(&mut JobRecord)) -> Result<State> {
        std::fs::create_dir_all(dir)
            .map_err(|e| err(Kind::Io, format!("cannot create {}: {e}", dir.display())))?;
        let _lock = crate::lock::Lock::job(&format!("state {}", dir.display()), 60)?;
        let mut s = State::load(dir)?;
        f(s.jobs.entry(job.to_string()).or_default());
        let text = serde_json::to_vec_pretty(&s).map_err(|e| err(Kind::Io, e.to_string()))?;
        write_atomic(&file(dir), &text)?;
        Ok(s)
    }
}

/// Replaces `path` with `bytes` by writing a temporary file beside it and renaming it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            err(Kind::Io, format!("cannot write {}: {e}", path.display()))
        })
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

    #[test]
    fn update_round_trips() {
        let dir = std::env::temp_dir().join(format!("zrep-state-{}", std::process::id()));
        std::env::set_var("ZREP_LOCK_DIR", &dir);
        State::update(&dir, "a", |r| r.failures_total += 1).unwrap();
        let s = State::update(&dir, "a", |r| r.failures_total += 1).unwrap();
        assert_eq!(s.jobs["a"].failures_total, 2);
        assert_eq!(State::load(&dir).unwrap().jobs["a"].failures_total, 2);
        std::fs::write(dir.join("state.json"), "{").unwrap();
        assert!(State::load(&dir)
            .unwrap_err()
            .message
            .contains("is damaged"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
