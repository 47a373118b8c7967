//! The job file (`/etc/zrep/zrep.toml`): what `zrep run`, `prune` and `status` do.
//!
//! ```toml
//! state_dir = "/var/lib/zrep"          # last results, for `zrep status`
//! prometheus = "/var/lib/node_exporter/textfile_collector/zrep.prom"
//!
//! [[job]]
//! name = "home"
//! source = "tank/home"
//! target = "backup@nas:pool/backups/home"
//! recursive = true
//! send = { compressed = true }
//! ssh = "ssh -i /root/.ssh/zrep"
//! keep_source = { hourly = 24, daily = 7 }
//! keep_target = { daily = 30, weekly = 8, monthly = 12 }
//! lag_limit = "2h"
//! ```
//!
//! Unknown keys are errors, and every error names the key, its line and what is
//! allowed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::proto::Flags;
use crate::retention::Rules;

/// Where the config lives unless `--config` says otherwise.
pub const DEFAULT_PATH: &str = "/etc/zrep/zrep.toml";

/// A parsed and checked config.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// Where `state.json` is kept.
    pub state_dir: PathBuf,
    /// node_exporter textfile to rewrite after each run.
    pub prometheus: Option<PathBuf>,
    /// Jobs in file order.
    pub jobs: Vec<Job>,
}

/// What a second run of a job does while the first is still going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Overlap {
    /// Exit at once, with a log line.
    Skip,
    /// Wait for the first run to finish.
    Wait,
}

/// One replication job.
#[derive(Debug, Clone)]
pub struct Job {
    /// Unique name (letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// `[user@]host:` of the source, if remote.
    pub source_host: Option<String>,
    /// Source dataset.
    pub source: String,
    /// `[user@]host:` of the target, if remote.
    pub target_host: Option<String>,
    /// Target dataset.
    pub target: String,
    /// Descendants too.
    pub recursive: bool,
    /// Take a snapshot on each run (else replicate the newest existing one).
    pub snapshot: bool,
    /// Snapshot datasets nothing was written to since their newest snapshot.
    pub allow_empty: bool,
    /// Datasets sent at once.
    pub parallel: usize,
    /// Stream flags.
    pub flags: Flags,
    /// SSH command for the remote side.
    pub ssh: String,
    /// zrep's path on the remote side.
    pub remote_zrep: String,
    /// Retention on the source (`None`: never prune).
    pub keep_source: Option<Rules>,
    /// Retention on the target (`None`: never prune).
    pub keep_target: Option<Rules>,
    /// Let source retention remove snapshots that are not on the target yet.
    pub prune_unreplicated: bool,
    /// `zrep status` fails when the newest replicated snapshot is older.
    pub lag_limit: Option<Duration>,
    /// A second run of this job while one is going.
    pub overlap: Overlap,
    /// Create targets writable (default `readonly=on`).
    pub writable: bool,
    /// Seconds to wait for another zrep replicating into the same target.
    pub lock_wait: u64,
}

impl Job {
    /// `host:dataset` or `dataset`.
    pub fn source_spec(&self) -> String {
        spec(self.source_host.as_deref(), &self.source)
    }

    /// `host:dataset` or `dataset`.
    pub fn target_spec(&self) -> String {
        spec(self.target_host.as_deref(), &self.target)
    }
}

fn spec(host: Option<&str>, ds: &str) -> String {
    match host {
        Some(h) => format!("{h}:{ds}"),
        None => ds.to_string(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    state_dir: Option<PathBuf>,
    prometheus: Option<PathBuf>,
    ssh: Option<String>,
    remote_zrep: Option<String>,
    #[serde(default)]
    job: Vec<RawJob>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SendFlags {
    #[serde(default)]
    compressed: bool,
    #[serde(default)]
    large_blocks: bool,
    #[serde(default)]
    embedded: bool,
    #[serde(default)]
    raw: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    name: Spanned<String>,
    source: Spanned<String>,
    target: Spanned<String>,
    #[serde(default)]
    recursive: bool,
    #[serde(default = "yes")]
    snapshot: bool,
    #[serde(default)]
    allow_empty: bool,
    parallel: Option<Spanned<usize>>,
    #[serde(default)]
    send: SendFlags,
    ssh: Option<Spanned<String>>,
    remote_zrep: Option<String>,
    keep_source: Option<Spanned<Rules>>,
    keep_target: Option<Spanned<Rules>>,
    #[serde(default)]
    prune_unreplicated: bool,
    lag_limit: Option<Spanned<String>>,
    overlap: Option<Overlap>,
    #[serde(default)]
    writable: bool,
    lock_wait: Option<u64>,
}

fn yes() -> bool {
    true
}

/// A config error: the file, the line and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    /// The file.
    pub path: String,
    /// What is wrong (with its line).
    pub message: String,
}

impl Config {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.display().to_string(),
            message: format!("cannot read: {e}"),
        })?;
        Config::parse(path, &text)
    }

    /// Parses and checks `text` (which came from `path`).
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let fail = |message: String| ConfigError {
            path: path.display().to_string(),
            message,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            // toml's message already names the line, column and the allowed keys.
            let line = e.span().map(|s| line_of(text, s.start));
            fail(match line {
                Some(l) => format!("line {l}: {}", e.message()),
                None => e.message().to_string(),
            })
        })?;
        let at = |span: std::ops::Range<usize>, msg: String| {
            fail(format!("line {}: {msg}", line_of(text, span.start)))
        };
        let ssh = raw.ssh.unwrap_or_else(|| "ssh".into());
        let remote_zrep = raw.remote_zrep.unwrap_or_else(|| "zrep".into());
        let mut jobs: Vec<Job> = Vec::new();
        for j in raw.job {
            let name = j.name.get_ref();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                return Err(at(
                    j.name.span(),
                    format!("job name {name:?}: use letters, digits, '-', '_' and '.'"),
                ));
            }
            if jobs.iter().any(|o| &o.name == name) {
                return Err(at(
                    j.name.span(),
                    format!("job name {name:?} is used twice"),
                ));
            }
            let (source_host, source) = endpoint(&j.source)
                .map_err(|m| at(j.source.span(), format!("job {name}: source: {m}")))?;
            let (target_host, target) = endpoint(&j.target)
                .map_err(|m| at(j.target.span(), format!("job {name}: target: {m}")))?;
            if source_host.is_some() && target_host.is_some() {
                return Err(at(
                    j.target.span(),
                    format!("job {name}: source and target cannot both be remote"),
                ));
            }
            let inside = libzfs::DatasetName::new(target.as_str())
                .ok()
                .zip(libzfs::DatasetName::new(source.as_str()).ok())
                .is_some_and(|(t, s)| t == s || t.is_descendant_of(&s));
            if source_host == target_host && inside {
                return Err(at(
                    j.target.span(),
                    format!("job {name}: target {target} is the source or inside it"),
                ));
            }
            for rules in [&j.keep_source, &j.keep_target].into_iter().flatten() {
                if rules.get_ref().is_empty() {
                    return Err(at(
                        rules.span(),
                        format!(
                            "job {name}: retention keeps nothing; set at least one of \
                             last, hourly, daily, weekly, monthly, yearly (or remove it to keep everything)"
                        ),
                    ));
                }
            }
            let lag_limit = match &j.lag_limit {
                None => None,
                Some(s) => Some(humantime::parse_duration(s.get_ref()).map_err(|e| {
                    at(
                        s.span(),
                        format!(
                            "job {name}: lag_limit {:?}: {e} (write e.g. \"90m\", \"2h\", \"1d 12h\")",
                            s.get_ref()
                        ),
                    )
                })?),
            };
            let job_ssh = match &j.ssh {
                Some(s) if !shlex::split(s.get_ref()).is_some_and(|v| !v.is_empty()) => {
                    return Err(at(
                        s.span(),
                        format!(
                            "job {name}: ssh {:?} cannot be split into words",
                            s.get_ref()
                        ),
                    ))
                }
                Some(s) => s.get_ref().clone(),
                None => ssh.clone(),
            };
            jobs.push(Job {
                name: name.clone(),
                source_host,
                source,
                target_host,
                target,
                recursive: j.recursive,
                snapshot: j.snapshot,
                allow_empty: j.allow_empty,
                parallel: match &j.parallel {
                    None => 4,
                    Some(p) if (1..=64).contains(p.get_ref()) => *p.get_ref(),
                    Some(p) => {
                        return Err(at(
                            p.span(),
                            format!(
                                "job {name}: parallel = {}: allowed are 1 to 64",
                                p.get_ref()
                            ),
                        ))
                    }
                },
                flags: Flags {
                    compressed: j.send.compressed,
                    large_blocks: j.send.large_blocks,
                    embedded: j.send.embedded,
                    raw: j.send.raw,
                },
                ssh: job_ssh,
                remote_zrep: j.remote_zrep.unwrap_or_else(|| remote_zrep.clone()),
                keep_source: j.keep_source.map(Spanned::into_inner),
                keep_target: j.keep_target.map(Spanned::into_inner),
                prune_unreplicated: j.prune_unreplicated,
                lag_limit,
                overlap: j.overlap.unwrap_or(Overlap::Skip),
                writable: j.writable,
                lock_wait: j.lock_wait.unwrap_or(30),
            });
        }
        Ok(Config {
            path: path.to_path_buf(),
            state_dir: raw
                .state_dir
                .unwrap_or_else(|| PathBuf::from("/var/lib/zrep")),
            prometheus: raw.prometheus,
            jobs,
        })
    }

    /// The jobs named (all when `names` is empty); an unknown name is an error.
    pub fn select(&self, names: &[String]) -> Result<Vec<&Job>, ConfigError> {
        if names.is_empty() {
            return Ok(self.jobs.iter().collect());
        }
        names
            .iter()
            .map(|n| {
                self.jobs
                    .iter()
                    .find(|j| &j.name == n)
                    .ok_or_else(|| ConfigError {
                        path: self.path.display().to_string(),
                        message: format!(
                            "no job named {n:?} (jobs: {})",
                            self.jobs
                                .iter()
                                .map(|j| j.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    })
            })
            .collect()
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

/// `[user@]host:pool/fs` → (host, dataset), with the dataset name checked.
fn endpoint(s: &Spanned<String>) -> Result<(Option<String>, String), String> {
    let v = s.get_ref();
    let (host, ds) = crate::side::split_host(v);
    if let Some(h) = host {
        crate::side::check_host(h).map_err(|e| e.message)?;
    }
    if ds.contains(['@', '#']) {
        return Err(format!(
            "{ds:?} must be a dataset, not a snapshot or bookmark"
        ));
    }
    libzfs::DatasetName::new(ds).map_err(|e| e.to_string())?;
    Ok((host.map(str::to_string), ds.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(Path::new("zrep.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_full_job() {
        let c = parse(
            r#"
state_dir = "/tmp/state"
ssh = "ssh -p 2222"

[[job]]
name = "home"
source = "tank/home"
target = "backup@nas:pool/backups/home"
recursive = true
send = { compressed = true, large_blocks = true }
keep_source = { hourly = 24, daily = 7 }
keep_target = { daily = 30, monthly = 12 }
lag_limit = "2h 30m"
overlap = "wait"

[[job]]
name = "pull.db"
source = "db1:tank/db"
target = "backup/db"
ssh = "ssh -i /root/key"
"#,
        )
        .unwrap();
        let j = &c.jobs[0];
        assert_eq!(j.target_host.as_deref(), Some("backup@nas"));
        assert_eq!(j.target, "pool/backups/home");
        assert!(j.recursive && j.snapshot && j.flags.compressed && j.flags.large_blocks);
        assert_eq!(j.keep_source.unwrap().hourly, 24);
        assert_eq!(j.lag_limit, Some(Duration::from_secs(9000)));
        assert_eq!(j.overlap, Overlap::Wait);
        assert_eq!(j.ssh, "ssh -p 2222");
        let k = &c.jobs[1];
        assert_eq!(k.source_host.as_deref(), Some("db1"));
        assert_eq!(
            (k.ssh.as_str(), k.overlap),
            ("ssh -i /root/key", Overlap::Skip)
        );
        assert_eq!(k.keep_source, None);
        assert_eq!(c.state_dir, PathBuf::from("/tmp/state"));
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let base = "[[job]]\nname = \"a\"\nsource = \"tank/a\"\ntarget = \"backup/a\"\n";
        for (extra, want) in [
            (
                "keep_source = { dayly = 3 }\n",
                "line 5: unknown field `dayly`, expected one of `last`, `hourly`",
            ),
            (
                "lag_limit = \"soon\"\n",
                "line 5: job a: lag_limit \"soon\"",
            ),
            (
                "overlap = \"queue\"\n",
                "line 5: unknown variant `queue`, expected `skip` or `wait`",
            ),
            (
                "keep_target = {}\n",
                "line 5: job a: retention keeps nothing",
            ),
            ("colour = 1\n", "line 5: unknown field `colour`"),
            (
                "recursive = \"yes\"\n",
                "line 5: invalid type: string \"yes\", expected a boolean",
            ),
        ] {
            let e = parse(&format!("{base}{extra}")).unwrap_err();
            assert!(e.contains(want), "{extra}: {e}");
            assert!(e.starts_with("zrep.toml: "), "{e}");
        }
    }

    #[test]
    fn bad_endpoints_and_names() {
        for (job, want) in [
            (
                "name = \"a b\"\nsource = \"t/a\"\ntarget = \"b/a\"",
                "line 3: job name \"a b\"",
            ),
            (
                "name = \"a\"\nsource = \"t/a@s\"\ntarget = \"b/a\"",
                "line 4: job a: source: \"t/a@s\" must be a dataset",
            ),
            (
                "name = \"a\"\nsource = \"t/a\"\ntarget = \"t/a/b\"",
                "line 5: job a: target t/a/b is the source or inside it",
            ),
            (
                "name = \"a\"\nsource = \"h:t/a\"\ntarget = \"g:b/a\"",
                "cannot both be remote",
            ),
            (
                "name = \"a\"\nsource = \"t/a\"\ntarget = \"-oProxyCommand=x:b/a\"",
                "line 5: job a: target:",
            ),
            (
                "name = \"a\"\nsource = \"t//a\"\ntarget = \"b/a\"",
                "line 4: job a: source:",
            ),
            ("source = \"t/a\"\ntarget = \"b/a\"", "missing field `name`"),
        ] {
            let e = parse(&format!("\n[[job]]\n{job}\n")).unwrap_err();
            assert!(e.contains(want), "{job}: {e}");
        }
        let dup = "[[job]]\nname = \"a\"\nsource = \"t/a\"\ntarget = \"b/a\"\n";
        let e = parse(&format!("{dup}{dup}")).unwrap_err();
        assert!(e.contains("line 6: job name \"a\" is used twice"), "{e}");
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let ex = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/zrep.toml");
        let c = Config::load(&ex).unwrap();
        assert_eq!(c.jobs.len(), 2);
        assert_eq!(c.jobs[0].name, "home");
    }

    #[test]
    fn select_jobs() {
        let c = parse("[[job]]\nname = \"a\"\nsource = \"t/a\"\ntarget = \"b/a\"\n").unwrap();
        assert_eq!(c.select(&[]).unwrap().len(), 1);
        let e = c.select(&["x".into()]).unwrap_err().to_string();
        assert!(e.contains("no job named \"x\" (jobs: a)"), "{e}");
    }
}
