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
//!
//! # On the backup host, whose `zrep serve --receive-only` refuses the pushing
//! # client's prunes: a job with a target and no source prunes it there.
//! [[job]]
//! name = "laptop-backups"
//! target = "backup/laptop"
//! recursive = true
//! keep_target = { daily = 30, weekly = 8 }
//! lag_limit = "1d"
//! ```
//!
//! Unknown keys are errors, and every error names the key, its line and what is
//! allowed.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::bwlimit::{Limit, Window};
use crate::compress::Compress;
use crate::hooks::{self, Hooks};
use crate::plan::Selection;
use crate::proto::Flags;
use crate::retention::Rules;
use crate::travel::{Travel, Words};

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

/// One job: a replication (it has a source), or the pruning of a dataset tree on
/// this host that others replicate into (a target and no source: see
/// [`Job::target_only`]).
#[derive(Debug, Clone)]
pub struct Job {
    /// Unique name (letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// `[user@]host:` of the source, if remote.
    pub source_host: Option<String>,
    /// Source dataset; `None` for a job that only prunes its target.
    pub source: Option<String>,
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
    /// Datasets sent at once: the default's rule when unset (see `zrep replicate -j`).
    pub parallel: Option<usize>,
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
    /// The stall timeout of SSH sessions: no byte from the peer for this long ends
    /// the session (`timeout = "10m"`, default 10 minutes).
    pub timeout: Duration,
    /// What travels and how it lands (`include`, `exclude`, `snapshots`,
    /// `newest_only`, `send_properties`, `exclude_properties`, `set`, `inherit`).
    pub travel: Travel,
    /// Other tools' snapshots the target's pruning removes (`prune_foreign`).
    pub prune_foreign: Option<Selection>,
    /// Stream compression on the wire (`compress = "zstd"`, `"lz4"`, `"none"`).
    pub compress: Compress,
    /// The bandwidth limit (`bwlimit = "10M"`, with `bwlimit_schedule` windows).
    pub bwlimit: Limit,
    /// Commands around the snapshot and after the run (`pre_snapshot`,
    /// `post_snapshot`, `post_run`, `on_failure`, `hook_timeout`).
    pub hooks: Hooks,
}

impl Job {
    /// `host:dataset`, `dataset`, or `-` for a job without a source.
    pub fn source_spec(&self) -> String {
        match &self.source {
            Some(s) => spec(self.source_host.as_deref(), s),
            None => "-".into(),
        }
    }

    /// `host:dataset` or `dataset`.
    pub fn target_spec(&self) -> String {
        spec(self.target_host.as_deref(), &self.target)
    }

    /// A job with a target and no source: on the host that receives the backups
    /// (whose `zrep serve --receive-only` refuses the pushing client's prunes), it
    /// prunes the local target tree by `keep_target`; it neither snapshots nor
    /// replicates.
    pub fn target_only(&self) -> bool {
        self.source.is_none()
    }

    /// What the job does, in lines for `zrep check-config` (the first names the job,
    /// the others are indented).
    pub fn describe(&self) -> Vec<String> {
        if self.target_only() {
            return self.describe_target_only();
        }
        let mut lines = vec![
            format!(
                "job {}: {}{} -> {}",
                self.name,
                self.source_spec(),
                if self.recursive {
                    " and descendants"
                } else {
                    ""
                },
                self.target_spec()
            ),
            format!(
                "  each run: {}replicate{}{}",
                if self.snapshot {
                    "snapshot @zrep-<UTC time>, "
                } else {
                    ""
                },
                self.flag_words(),
                if self.keep_source.is_some() || self.keep_target.is_some() {
                    ", prune"
                } else {
                    ""
                }
            ),
            format!(
                "  source {}",
                keeps(
                    &self.keep_source,
                    "the newest common snapshot, held ones",
                    !self.prune_unreplicated
                )
            ),
            format!(
                "  target {}",
                keeps(
                    &self.keep_target,
                    "the newest common snapshot, held ones",
                    false
                )
            ),
            format!(
                "  targets {}; {}",
                if self.writable {
                    "writable"
                } else {
                    "readonly=on"
                },
                self.schedule_words("lag")
            ),
        ];
        lines.extend(self.travel.describe().into_iter().map(|l| format!("  {l}")));
        if let Some(p) = &self.prune_foreign {
            lines.push(format!(
                "  target: other tools' snapshots {} pruned (never the newest common or a held one)",
                p.describe()
            ));
        }
        if self.source_host.is_some() || self.target_host.is_some() {
            lines.push(format!(
                "  ssh: {} (remote zrep: {}); compress {}; bwlimit {}",
                self.ssh,
                self.remote_zrep,
                self.compress.describe(),
                self.bwlimit.describe()
            ));
        }
        lines.extend(self.hooks.describe().into_iter().map(|l| format!("  {l}")));
        lines
    }

    fn describe_target_only(&self) -> Vec<String> {
        vec![
            format!(
                "job {}: prunes {}{} on this host (no source: others replicate into it)",
                self.name,
                self.target,
                if self.recursive {
                    " and descendants"
                } else {
                    ""
                }
            ),
            "  each run: prune (no snapshot, no replication)".into(),
            format!(
                "  target {}",
                keeps(
                    &self.keep_target,
                    "the newest snapshot of each dataset, held ones",
                    false
                )
            ),
            format!(
                "  {}",
                self.schedule_words("the age of the newest snapshot")
            ),
        ]
    }

    /// ` (compressed, raw)` or nothing.
    fn flag_words(&self) -> String {
        let f = self.flags;
        let on: Vec<&str> = [
            (f.compressed, "compressed"),
            (f.large_blocks, "large blocks"),
            (f.embedded, "embedded"),
            (f.raw, "raw"),
        ]
        .into_iter()
        .filter_map(|(on, n)| on.then_some(n))
        .collect();
        match on.is_empty() {
            true => String::new(),
            false => format!(" ({})", on.join(", ")),
        }
    }

    /// What an overlapping run does, and the lag limit (`lag` names what is measured).
    fn schedule_words(&self, lag: &str) -> String {
        format!(
            "a run that finds the previous one going {}{}",
            match self.overlap {
                Overlap::Skip => "skips",
                Overlap::Wait => "waits",
            },
            self.lag_limit
                .map(|l| format!(
                    "; status fails when {lag} > {}",
                    crate::clock::age(l.as_secs())
                ))
                .unwrap_or_default()
        )
    }
}

/// `keeps ...` of one side's retention: `always` names what is protected there.
fn keeps(rules: &Option<Rules>, always: &str, unreplicated: bool) -> String {
    match rules {
        Some(r) => format!(
            "keeps {r} of zrep's snapshots, and always {always}{}, and those named more \
             than a day ahead (never counted)",
            if unreplicated {
                ", those not replicated yet"
            } else {
                ""
            }
        ),
        None => "keeps every snapshot".into(),
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
    timeout: Option<Spanned<String>>,
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

/// A job as written. Keys a job without a source cannot use are kept with their
/// place, to name their line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    name: Spanned<String>,
    source: Option<Spanned<String>>,
    target: Spanned<String>,
    #[serde(default)]
    recursive: bool,
    snapshot: Option<Spanned<bool>>,
    allow_empty: Option<Spanned<bool>>,
    parallel: Option<Spanned<usize>>,
    send: Option<Spanned<SendFlags>>,
    ssh: Option<Spanned<String>>,
    remote_zrep: Option<Spanned<String>>,
    keep_source: Option<Spanned<Rules>>,
    keep_target: Option<Spanned<Rules>>,
    prune_unreplicated: Option<Spanned<bool>>,
    lag_limit: Option<Spanned<String>>,
    overlap: Option<Overlap>,
    writable: Option<Spanned<bool>>,
    lock_wait: Option<u64>,
    timeout: Option<Spanned<String>>,
    include: Option<Spanned<Vec<String>>>,
    exclude: Option<Spanned<Vec<String>>>,
    snapshots: Option<Spanned<Vec<String>>>,
    newest_only: Option<Spanned<bool>>,
    send_properties: Option<Spanned<bool>>,
    exclude_properties: Option<Spanned<Vec<String>>>,
    set: Option<Spanned<BTreeMap<String, toml::Value>>>,
    inherit: Option<Spanned<Vec<String>>>,
    prune_foreign: Option<Spanned<Vec<String>>>,
    compress: Option<Spanned<String>>,
    bwlimit: Option<Spanned<String>>,
    bwlimit_schedule: Option<Spanned<Vec<RawWindow>>>,
    pre_snapshot: Option<Spanned<HookCommand>>,
    post_snapshot: Option<Spanned<HookCommand>>,
    post_run: Option<Spanned<HookCommand>>,
    on_failure: Option<Spanned<HookCommand>>,
    hook_timeout: Option<Spanned<String>>,
}

/// One window of `bwlimit_schedule`: `{ hours = "08:00-18:00", rate = "1M" }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    hours: String,
    rate: String,
}

/// A hook as written: an argv array, or a string, which is refused with the array
/// it could have been (no shell splits it).
#[derive(Deserialize)]
#[serde(untagged)]
enum HookCommand {
    Argv(Vec<String>),
    Line(String),
}

impl RawJob {
    /// The keys present that only a job with a source can use, with their places.
    fn replication_keys(&self) -> Vec<(&'static str, Range<usize>)> {
        fn at<T>(
            key: &'static str,
            v: &Option<Spanned<T>>,
        ) -> Option<(&'static str, Range<usize>)> {
            v.as_ref().map(|v| (key, v.span()))
        }
        let mut keys: Vec<_> = [
            at("keep_source", &self.keep_source),
            at("prune_unreplicated", &self.prune_unreplicated),
            at("snapshot", &self.snapshot),
            at("allow_empty", &self.allow_empty),
            at("parallel", &self.parallel),
            at("send", &self.send),
            at("writable", &self.writable),
            at("ssh", &self.ssh),
            at("remote_zrep", &self.remote_zrep),
            at("timeout", &self.timeout),
            at("include", &self.include),
            at("exclude", &self.exclude),
            at("snapshots", &self.snapshots),
            at("newest_only", &self.newest_only),
            at("send_properties", &self.send_properties),
            at("exclude_properties", &self.exclude_properties),
            at("set", &self.set),
            at("inherit", &self.inherit),
            at("prune_foreign", &self.prune_foreign),
            at("compress", &self.compress),
            at("bwlimit", &self.bwlimit),
            at("bwlimit_schedule", &self.bwlimit_schedule),
            at("pre_snapshot", &self.pre_snapshot),
            at("post_snapshot", &self.post_snapshot),
        ]
        .into_iter()
        .flatten()
        .collect();
        keys.sort_by_key(|(_, span)| span.start);
        keys
    }
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

/// The text being parsed, to turn places into lines in errors.
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Source<'_> {
    fn fail(&self, message: String) -> ConfigError {
        ConfigError {
            path: self.path.display().to_string(),
            message,
        }
    }

    /// An error at the line of `span`.
    fn at(&self, span: Range<usize>, msg: String) -> ConfigError {
        self.fail(format!("line {}: {msg}", line_of(self.text, span.start)))
    }
}

/// The global defaults jobs inherit.
struct Defaults {
    ssh: String,
    remote_zrep: String,
    timeout: Option<Duration>,
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
        let src = Source { path, text };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            // toml's message already names the line, column and the allowed keys.
            let line = e.span().map(|s| line_of(text, s.start));
            src.fail(match line {
                Some(l) => format!("line {l}: {}", e.message()),
                None => e.message().to_string(),
            })
        })?;
        let defaults = Defaults {
            ssh: raw.ssh.unwrap_or_else(|| "ssh".into()),
            remote_zrep: raw.remote_zrep.unwrap_or_else(|| "zrep".into()),
            timeout: duration(&src, "(global)", "timeout", &raw.timeout)?,
        };
        let mut jobs: Vec<Job> = Vec::new();
        for j in raw.job {
            let name = j.name.get_ref();
            if jobs.iter().any(|o| &o.name == name) {
                return Err(src.at(j.name.span(), format!("job name {name:?} is used twice")));
            }
            jobs.push(job(&src, &defaults, j)?);
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

/// One checked job.
fn job(src: &Source, defaults: &Defaults, j: RawJob) -> Result<Job, ConfigError> {
    let name = j.name.get_ref();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(src.at(
            j.name.span(),
            format!("job name {name:?}: use letters, digits, '-', '_' and '.'"),
        ));
    }
    let (target_host, target) = endpoint(&j.target)
        .map_err(|m| src.at(j.target.span(), format!("job {name}: target: {m}")))?;
    let (source_host, source) = match &j.source {
        Some(s) => {
            let (h, ds) =
                endpoint(s).map_err(|m| src.at(s.span(), format!("job {name}: source: {m}")))?;
            check_sides(src, name, &j.target, (&h, &ds), (&target_host, &target))?;
            (h, Some(ds))
        }
        None => {
            check_target_only(src, &j, target_host.as_deref(), &target)?;
            (None, None)
        }
    };
    for rules in [&j.keep_source, &j.keep_target].into_iter().flatten() {
        if rules.get_ref().is_empty() {
            return Err(src.at(
                rules.span(),
                format!(
                    "job {name}: retention keeps nothing; set at least one of \
                     last, hourly, daily, weekly, monthly, yearly (or remove it to keep everything)"
                ),
            ));
        }
    }
    let travel = travel(src, name, &j)?;
    let bwlimit = bwlimit(src, name, &j)?;
    let hooks = hooks(src, name, &j)?;
    let send = j.send.map(Spanned::into_inner).unwrap_or_default();
    let prune_foreign = match &j.prune_foreign {
        None => None,
        Some(p) => Some(
            Selection::new(p.get_ref())
                .map_err(|m| src.at(p.span(), format!("job {name}: prune_foreign: {m}")))?,
        ),
    };
    Ok(Job {
        name: name.clone(),
        source_host,
        source,
        target_host,
        target,
        recursive: j.recursive,
        snapshot: j.snapshot.map_or(true, Spanned::into_inner),
        allow_empty: j.allow_empty.is_some_and(Spanned::into_inner),
        parallel: parallel(src, name, &j.parallel)?,
        flags: Flags {
            compressed: send.compressed,
            large_blocks: send.large_blocks,
            embedded: send.embedded,
            raw: send.raw,
        },
        ssh: ssh(src, name, &j.ssh, &defaults.ssh)?,
        remote_zrep: j
            .remote_zrep
            .map_or_else(|| defaults.remote_zrep.clone(), Spanned::into_inner),
        keep_source: j.keep_source.map(Spanned::into_inner),
        keep_target: j.keep_target.map(Spanned::into_inner),
        prune_unreplicated: j.prune_unreplicated.is_some_and(Spanned::into_inner),
        lag_limit: lag_limit(src, name, &j.lag_limit)?,
        overlap: j.overlap.unwrap_or(Overlap::Skip),
        writable: j.writable.is_some_and(Spanned::into_inner),
        lock_wait: j.lock_wait.unwrap_or(30),
        timeout: duration(src, name, "timeout", &j.timeout)?
            .or(defaults.timeout)
            .unwrap_or(crate::link::DEFAULT_TIMEOUT),
        travel,
        prune_foreign,
        compress: match &j.compress {
            None => Compress::Auto,
            Some(c) => Compress::parse(c.get_ref())
                .map_err(|m| src.at(c.span(), format!("job {name}: {m}")))?,
        },
        bwlimit,
        hooks,
    })
}

/// The job's hooks, each command checked; a `pre_snapshot` or `post_snapshot` in a
/// job that takes no snapshot is an error (it would never run).
fn hooks(src: &Source, name: &str, j: &RawJob) -> Result<Hooks, ConfigError> {
    let takes_snapshot = j.snapshot.as_ref().map_or(true, |s| *s.get_ref());
    let command = |key: &str, v: &Option<Spanned<HookCommand>>| {
        let Some(c) = v else { return Ok(None) };
        let fail = |m: String| src.at(c.span(), format!("job {name}: {key}: {m}"));
        if !takes_snapshot && key.ends_with("_snapshot") {
            return Err(fail(
                "never runs: the job takes no snapshot (snapshot = false)".into(),
            ));
        }
        match c.get_ref() {
            HookCommand::Line(line) => Err(fail(format!(
                "write the program and its arguments as an array, e.g. {:?} \
                 (no shell runs it; [\"sh\", \"-c\", \"...\"] if you want one)",
                line.split_whitespace().collect::<Vec<_>>()
            ))),
            HookCommand::Argv(argv) => hooks::check_command(argv)
                .map(|()| Some(argv.clone()))
                .map_err(fail),
        }
    };
    Ok(Hooks {
        job: name.to_string(),
        pre_snapshot: command("pre_snapshot", &j.pre_snapshot)?,
        post_snapshot: command("post_snapshot", &j.post_snapshot)?,
        post_run: command("post_run", &j.post_run)?,
        on_failure: command("on_failure", &j.on_failure)?,
        timeout: duration(src, name, "hook_timeout", &j.hook_timeout)?
            .unwrap_or(hooks::DEFAULT_TIMEOUT),
    })
}

/// `bwlimit` and `bwlimit_schedule`, checked.
fn bwlimit(src: &Source, name: &str, j: &RawJob) -> Result<Limit, ConfigError> {
    let rate = match &j.bwlimit {
        None => None,
        Some(r) => crate::bwlimit::parse_rate(r.get_ref())
            .map_err(|m| src.at(r.span(), format!("job {name}: bwlimit: {m}")))?,
    };
    let mut schedule = Vec::new();
    if let Some(windows) = &j.bwlimit_schedule {
        for w in windows.get_ref() {
            schedule.push(Window::parse(&w.hours, &w.rate).map_err(|m| {
                src.at(windows.span(), format!("job {name}: bwlimit_schedule: {m}"))
            })?);
        }
    }
    Ok(Limit { rate, schedule })
}

/// The keys of what travels, checked; an error names the line of the first of them.
fn travel(src: &Source, name: &str, j: &RawJob) -> Result<Travel, ConfigError> {
    fn list(v: &Option<Spanned<Vec<String>>>) -> Vec<String> {
        v.as_ref().map(|v| v.get_ref().clone()).unwrap_or_default()
    }
    let flag = |v: &Option<Spanned<bool>>| v.as_ref().is_some_and(|v| *v.get_ref());
    let mut set = Vec::new();
    if let Some(table) = &j.set {
        for (k, v) in table.get_ref() {
            let v = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => (if *b { "on" } else { "off" }).to_string(),
                other => {
                    return Err(src.at(
                        table.span(),
                        format!("job {name}: set.{k}: {other} is not a property value"),
                    ))
                }
            };
            set.push(format!("{k}={v}"));
        }
    }
    let words = Words {
        include: list(&j.include),
        exclude: list(&j.exclude),
        snapshots: list(&j.snapshots),
        newest_only: flag(&j.newest_only),
        send_properties: flag(&j.send_properties),
        exclude_properties: j.exclude_properties.as_ref().map(|v| v.get_ref().clone()),
        set,
        inherit: list(&j.inherit),
    };
    let first = [
        j.include.as_ref().map(Spanned::span),
        j.exclude.as_ref().map(Spanned::span),
        j.snapshots.as_ref().map(Spanned::span),
        j.exclude_properties.as_ref().map(Spanned::span),
        j.set.as_ref().map(Spanned::span),
        j.inherit.as_ref().map(Spanned::span),
    ]
    .into_iter()
    .flatten()
    .min_by_key(|s| s.start);
    Travel::new(&words).map_err(|e| {
        let m = format!("job {name}: {}", e.message);
        match first {
            Some(span) => src.at(span, m),
            None => src.fail(m),
        }
    })
}

/// A replication's two sides: not both remote, the target not inside the source.
fn check_sides(
    src: &Source,
    name: &str,
    target_span: &Spanned<String>,
    (source_host, source): (&Option<String>, &str),
    (target_host, target): (&Option<String>, &str),
) -> Result<(), ConfigError> {
    let route = crate::side::Route::new(source_host.as_deref(), target_host.as_deref())
        .map_err(|e| src.at(target_span.span(), format!("job {name}: {}", e.message)))?;
    let names = libzfs::DatasetName::new(source)
        .ok()
        .zip(libzfs::DatasetName::new(target).ok());
    if let Some((s, t)) = names {
        route
            .check_target(&s, &t)
            .map_err(|e| src.at(target_span.span(), format!("job {name}: {}", e.message)))?;
    }
    Ok(())
}

/// A job without a source prunes a local tree: no host, `keep_target` set, and no
/// key that only a replication uses.
fn check_target_only(
    src: &Source,
    j: &RawJob,
    target_host: Option<&str>,
    target: &str,
) -> Result<(), ConfigError> {
    let name = j.name.get_ref();
    if let Some(h) = target_host {
        return Err(src.at(
            j.target.span(),
            format!(
                "job {name}: target: a job without a source prunes a dataset tree on this \
                 host, so its target names no host: run it on {h} with target = {target:?} \
                 (or give the job a source)"
            ),
        ));
    }
    if let Some((key, span)) = j.replication_keys().into_iter().next() {
        return Err(src.at(
            span,
            format!(
                "job {name}: {key} does not apply to a job without a source (it only \
                 prunes {target} on this host): remove {key}, or give the job a source"
            ),
        ));
    }
    if j.keep_target.is_none() {
        return Err(src.at(
            j.target.span(),
            format!(
                "job {name} has no source: such a job only prunes its target on this host, \
                 by keep_target, which is missing (e.g. keep_target = {{ daily = 30 }}); a \
                 replication needs a source"
            ),
        ));
    }
    Ok(())
}

fn parallel(
    src: &Source,
    name: &str,
    p: &Option<Spanned<usize>>,
) -> Result<Option<usize>, ConfigError> {
    match p {
        None => Ok(None),
        Some(p) if (1..=64).contains(p.get_ref()) => Ok(Some(*p.get_ref())),
        Some(p) => Err(src.at(
            p.span(),
            format!(
                "job {name}: parallel = {}: allowed are 1 to 64",
                p.get_ref()
            ),
        )),
    }
}

fn ssh(
    src: &Source,
    name: &str,
    s: &Option<Spanned<String>>,
    default: &str,
) -> Result<String, ConfigError> {
    match s {
        Some(s) if !shlex::split(s.get_ref()).is_some_and(|v| !v.is_empty()) => Err(src.at(
            s.span(),
            format!(
                "job {name}: ssh {:?} cannot be split into words",
                s.get_ref()
            ),
        )),
        Some(s) => Ok(s.get_ref().clone()),
        None => Ok(default.to_string()),
    }
}

fn lag_limit(
    src: &Source,
    name: &str,
    s: &Option<Spanned<String>>,
) -> Result<Option<Duration>, ConfigError> {
    duration(src, name, "lag_limit", s)
}

/// A duration key (`"90m"`, `"2h"`, `"1d 12h"`), not zero.
fn duration(
    src: &Source,
    name: &str,
    key: &str,
    s: &Option<Spanned<String>>,
) -> Result<Option<Duration>, ConfigError> {
    let Some(s) = s else { return Ok(None) };
    match humantime::parse_duration(s.get_ref()) {
        Ok(d) if !d.is_zero() => Ok(Some(d)),
        Ok(_) => Err(src.at(s.span(), format!("job {name}: {key} cannot be zero"))),
        Err(e) => Err(src.at(
            s.span(),
            format!(
                "job {name}: {key} {:?}: {e} (write e.g. \"90m\", \"2h\", \"1d 12h\")",
                s.get_ref()
            ),
        )),
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
    fn what_travels_is_checked_and_described() {
        let job = |extra: &str| {
            parse(&format!(
                "[[job]]\nname = \"t\"\nsource = \"p/s\"\ntarget = \"q/t\"\nrecursive = true\n{extra}"
            ))
        };
        let c = job(
            "exclude = [\"**/tmp\"]\nsend_properties = true\nset = { compression = \"zstd-9\", quota = 1073741824 }\n\
             inherit = [\"atime\"]\nsnapshots = [\"zrep-*\"]\nnewest_only = true\nprune_foreign = [\"syncoid_*\"]\n",
        )
        .unwrap();
        let t = &c.jobs[0].travel;
        assert_eq!(t.props.set.len(), 2);
        assert!(t.newest_only && t.props.send);
        let text = c.jobs[0].describe().join("\n");
        for needle in [
            "datasets: exclude **/tmp",
            "snapshots: zrep-*",
            "first run: the newest snapshot only",
            "set compression=zstd-9, quota=1073741824",
            "inherit atime",
            "other tools' snapshots syncoid_* pruned",
        ] {
            assert!(text.contains(needle), "{needle:?} not in:\n{text}");
        }
        let e = job("set = { compression = \"fast\" }\n").unwrap_err();
        assert!(e.contains("line 6: job t: --set compression=fast"), "{e}");
        let e = job("exclude = [\"/abs\"]\n").unwrap_err();
        assert!(e.contains("line 6") && e.contains("/abs"), "{e}");
        let e = job("prune_foreign = [\"a/b\"]\n").unwrap_err();
        assert!(e.contains("prune_foreign"), "{e}");
    }

    #[test]
    fn hooks_are_checked_and_described() {
        let job = |extra: &str| {
            parse(&format!(
                "[[job]]\nname = \"h\"\nsource = \"p/s\"\ntarget = \"q/t\"\n{extra}"
            ))
        };
        let c = job(
            "pre_snapshot = [\"/usr/local/bin/freeze\", \"db\"]\non_failure = [\"mail\"]\n\
             hook_timeout = \"5m\"\n",
        )
        .unwrap();
        let h = &c.jobs[0].hooks;
        assert_eq!(h.job, "h");
        assert_eq!(h.timeout, Duration::from_secs(300));
        assert_eq!(h.on_failure.as_deref(), Some(&["mail".to_string()][..]));
        let text = c.jobs[0].describe().join("\n");
        assert!(
            text.contains("pre_snapshot: [\"/usr/local/bin/freeze\", \"db\"] (killed after 300 s)"),
            "{text}"
        );
        let e = job("post_run = []\n").unwrap_err();
        assert!(
            e.contains("line 5: job h: post_run: an empty command"),
            "{e}"
        );
        let e = job("snapshot = false\npost_snapshot = [\"thaw\"]\n").unwrap_err();
        assert!(
            e.contains("line 6: job h: post_snapshot: never runs"),
            "{e}"
        );
        let e = job("post_run = \"mail -s x\"\n").unwrap_err();
        assert!(
            e.contains("line 5: job h: post_run: write the program and its arguments as an array, e.g. [\"mail\", \"-s\", \"x\"]"),
            "{e}"
        );
        // Jobs without a source prune; they run post_run and on_failure too.
        let c = parse(
            "[[job]]\nname = \"p\"\ntarget = \"q/t\"\nkeep_target = { last = 1 }\n\
             post_run = [\"true\"]\n",
        )
        .unwrap();
        assert!(c.jobs[0].hooks.post_run.is_some());
        let e = parse(
            "[[job]]\nname = \"p\"\ntarget = \"q/t\"\nkeep_target = { last = 1 }\n\
             pre_snapshot = [\"true\"]\n",
        )
        .unwrap_err();
        assert!(e.contains("pre_snapshot"), "{e}");
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
                "compress = \"gzip\"\n",
                "line 5: job a: compress \"gzip\": use zstd, lz4 or none",
            ),
            (
                "bwlimit = \"fast\"\n",
                "line 5: job a: bwlimit: rate \"fast\"",
            ),
            (
                "bwlimit_schedule = [{ hours = \"8-18\", rate = \"1M\" }]\n",
                "line 5: job a: bwlimit_schedule: window \"8-18\": write it as HH:MM-HH:MM",
            ),
            (
                "bwlimit_schedule = [{ hours = \"08:00-18:00\" }]\n",
                "line 5: missing field `rate`",
            ),
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
        // The commented job without a source, uncommented.
        let text = std::fs::read_to_string(&ex).unwrap();
        let block: String = text
            .lines()
            .skip_while(|l| *l != "# [[job]]")
            .map_while(|l| l.strip_prefix("# "))
            .map(|l| format!("{l}\n"))
            .collect();
        let j = &parse(&block).unwrap().jobs[0];
        assert_eq!((j.name.as_str(), j.target_only()), ("laptop-backups", true));
    }

    fn target_only(extra: &str) -> Result<Config, String> {
        parse(&format!(
            "[[job]]\nname = \"b\"\ntarget = \"backup/laptop\"\nkeep_target = {{ daily = 30 }}\n{extra}"
        ))
    }

    #[test]
    fn a_job_without_a_source_prunes_its_target() {
        let c = target_only(
            "recursive = true\nlag_limit = \"1d\"\noverlap = \"wait\"\nlock_wait = 5\n",
        )
        .unwrap();
        let j = &c.jobs[0];
        assert!(j.target_only() && j.recursive);
        assert_eq!(
            (j.source.as_deref(), j.source_host.as_deref()),
            (None, None)
        );
        assert_eq!((j.target.as_str(), j.lock_wait), ("backup/laptop", 5));
        assert_eq!(j.source_spec(), "-");
        assert_eq!(
            j.describe(),
            [
                "job b: prunes backup/laptop and descendants on this host (no source: others replicate into it)",
                "  each run: prune (no snapshot, no replication)",
                "  target keeps 30 daily of zrep's snapshots, and always the newest snapshot of each \
                 dataset, held ones, and those named more than a day ahead (never counted)",
                "  a run that finds the previous one going waits; status fails when the age of the \
                 newest snapshot > 1d0h",
            ]
        );
    }

    #[test]
    fn a_job_without_a_source_refuses_replication_keys() {
        for (extra, key) in [
            ("keep_source = { daily = 7 }\n", "keep_source"),
            ("prune_unreplicated = false\n", "prune_unreplicated"),
            ("snapshot = true\n", "snapshot"),
            ("allow_empty = true\n", "allow_empty"),
            ("parallel = 2\n", "parallel"),
            ("send = { raw = true }\n", "send"),
            ("writable = false\n", "writable"),
            ("ssh = \"ssh -p 22\"\n", "ssh"),
            ("remote_zrep = \"/usr/bin/zrep\"\n", "remote_zrep"),
        ] {
            let e = target_only(extra).unwrap_err();
            let want = format!(
                "line 5: job b: {key} does not apply to a job without a source (it only prunes \
                 backup/laptop on this host): remove {key}, or give the job a source"
            );
            assert!(e.contains(&want), "{extra}: {e}");
        }
        // The first such key in the file is named.
        let e = target_only("writable = true\nkeep_source = { last = 1 }\n").unwrap_err();
        assert!(e.contains("line 5: job b: writable does not apply"), "{e}");
    }

    #[test]
    fn a_job_without_a_source_is_local_and_has_rules() {
        let e = parse(
            "[[job]]\nname = \"b\"\ntarget = \"nas:backup/laptop\"\nkeep_target = { daily = 3 }\n",
        )
        .unwrap_err();
        assert!(
            e.contains(
                "line 3: job b: target: a job without a source prunes a dataset tree on this \
                 host, so its target names no host: run it on nas with target = \"backup/laptop\" \
                 (or give the job a source)"
            ),
            "{e}"
        );
        let e = parse("[[job]]\nname = \"b\"\ntarget = \"backup/laptop\"\n").unwrap_err();
        assert!(
            e.contains(
                "line 3: job b has no source: such a job only prunes its target on this host, \
                 by keep_target, which is missing"
            ),
            "{e}"
        );
        let e = target_only("keep_target = { daily = 1 }\n").unwrap_err();
        assert!(e.contains("duplicate key `keep_target`"), "{e}");
    }

    #[test]
    fn a_replication_is_described() {
        let c = parse(
            "ssh = \"ssh -p 2\"\n[[job]]\nname = \"a\"\nsource = \"t/a\"\ntarget = \"nas:b/a\"\n\
             recursive = true\nsend = { compressed = true, raw = true }\n\
             keep_source = { last = 2 }\nlag_limit = \"3h\"\ncompress = \"lz4\"\nbwlimit = \"10M\"\n\
             bwlimit_schedule = [{ hours = \"08:00-18:30\", rate = \"500K\" }]\n",
        )
        .unwrap();
        assert_eq!(
            c.jobs[0].describe(),
            [
                "job a: t/a and descendants -> nas:b/a",
                "  each run: snapshot @zrep-<UTC time>, replicate (compressed, raw), prune",
                "  source keeps last 2 of zrep's snapshots, and always the newest common snapshot, \
                 held ones, those not replicated yet, and those named more than a day ahead (never counted)",
                "  target keeps every snapshot",
                "  targets readonly=on; a run that finds the previous one going skips; status \
                 fails when lag > 3h00m",
                "  ssh: ssh -p 2 (remote zrep: zrep); compress lz4; bwlimit 10M/s, 500K/s 08:00-18:30",
            ]
        );
    }

    #[test]
    fn select_jobs() {
        let c = parse("[[job]]\nname = \"a\"\nsource = \"t/a\"\ntarget = \"b/a\"\n").unwrap();
        assert_eq!(c.select(&[]).unwrap().len(), 1);
        let e = c.select(&["x".into()]).unwrap_err().to_string();
        assert!(e.contains("no job named \"x\" (jobs: a)"), "{e}");
    }
}
