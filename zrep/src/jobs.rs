//! Configured jobs: `zrep run` (snapshot, replicate, prune), `zrep prune` and
//! `zrep status`. No daemon: the system's scheduler starts `zrep run`.
//!
//! A job with a target and no source runs on the host that receives the backups and
//! only prunes them there (`jobs/target_only.rs`; see [`Job::target_only`]).

use std::collections::HashMap;
use std::time::Instant;

use serde::Serialize;

use crate::clock;
use crate::config::{Config, Job, Overlap};
use crate::error::{err, Error, Kind, Result};
use crate::hooks::Hook;
use crate::proto::{DatasetState, SnapEntry};
use crate::replicate;
use crate::report::Outcome;
use crate::retention::{self, Candidate, ForeignVerdict, Rules, TargetSnap, Verdict};
use crate::side::{Route, Side, Ssh};
use libzfs::{DatasetName, SnapshotName};

use crate::state::{self, JobRecord, State};
use crate::ui::{bytes, Ui};

mod target_only;

/// One dataset of a job's run.
#[derive(Debug, Serialize)]
pub struct DatasetReport {
    /// What replication did (for a job without a source: `mode` is `prune`, the
    /// source empty, nothing sent).
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Snapshots retention destroyed on the source.
    pub pruned_source: Vec<String>,
    /// Snapshots retention destroyed on the target.
    pub pruned_target: Vec<String>,
    /// For a job without a source, the dataset's newest snapshot and its time (what
    /// its lag is measured from).
    #[serde(skip)]
    pub newest: Option<(String, u64)>,
}

/// One job's run.
#[derive(Debug, Serialize)]
pub struct JobReport {
    /// The job.
    pub job: String,
    /// `ok`, `failed` or `skipped`.
    pub status: &'static str,
    /// Why the job as a whole failed or was skipped.
    pub error: Option<String>,
    /// Wall time.
    pub seconds: f64,
    /// Per dataset, parents first.
    pub datasets: Vec<DatasetReport>,
}

/// How the job reaches a remote side.
pub fn ssh(job: &Job) -> Result<Ssh> {
    let mut ssh = Ssh::new(&job.ssh, &job.remote_zrep, job.timeout)?;
    ssh.compress = job.compress;
    ssh.bwlimit = job.bwlimit.clone();
    Ok(ssh)
}

fn open(job: &Job) -> Result<(Side, Side)> {
    Route::new(job.source_host.as_deref(), job.target_host.as_deref())?.open(&ssh(job)?)
}

/// Which datasets of a recursive job's source tree its runs cover, and why (the
/// source is listed: over SSH for a pull).
pub fn covered(job: &Job) -> Result<Vec<crate::filter::Decision>> {
    let source = job
        .source
        .as_deref()
        .ok_or_else(|| err(Kind::Usage, format!("job {} has no source", job.name)))?;
    let mut src = Side::open(job.source_host.as_deref(), &ssh(job)?)?;
    replicate::covered(&name(source)?, &job.travel.filter, &mut src)
}

/// A dataset name from the configuration (checked when it was loaded).
pub(crate) fn name(ds: &str) -> Result<DatasetName> {
    Ok(DatasetName::new(ds)?)
}

/// Runs one job: snapshot, replicate, prune (a job without a source: prune its
/// target); records the result in the state file.
pub fn run(cfg: &Config, job: &Job, ui: &Ui) -> JobReport {
    let t0 = Instant::now();
    let started = clock::now();
    let mut report = JobReport {
        job: job.name.clone(),
        status: "ok",
        error: None,
        seconds: 0.0,
        datasets: Vec::new(),
    };
    let wait = match job.overlap {
        Overlap::Skip => 0,
        Overlap::Wait => u64::MAX,
    };
    let _lock = match crate::lock::Lock::job(&job.name, wait) {
        Ok(l) => l,
        Err(e) if e.kind != Kind::Busy => {
            report.status = "failed";
            report.error = Some(e.message.clone());
            ui.error(&format!("[{}] {}", job.name, e.message));
            return report;
        }
        Err(e) => {
            report.status = "skipped";
            report.error = Some(format!("{} (overlap = skip)", e.message));
            ui.info(&format!("[{}] skipped: {}", job.name, e.message));
            return report;
        }
    };
    let done = match job.source.as_deref() {
        Some(source) => run_locked(job, source, ui, &mut report),
        None => target_only::run(job, ui, &mut report),
    };
    if let Err(e) = done {
        report.status = "failed";
        report.error = Some(e.message.clone());
        ui.error(&format!("[{}] {}", job.name, e.message));
    }
    if report.datasets.iter().any(|d| d.outcome.error.is_some()) {
        report.status = "failed";
    }
    report.seconds = t0.elapsed().as_secs_f64();
    after_run(job, &report, ui);
    if let Err(e) = record(cfg, job, &report, started) {
        ui.error(&format!("[{}] {}", job.name, e.message));
    }
    report
}

fn run_locked(job: &Job, source: &str, ui: &Ui, report: &mut JobReport) -> Result<()> {
    let ssh = ssh(job)?;
    let mut src = Side::open(job.source_host.as_deref(), &ssh)?;
    let mut dst = match Side::open(job.target_host.as_deref(), &ssh) {
        Ok(d) => d,
        // The schedule's snapshot is still taken: it is history on the source, and
        // the next run that reaches the target sends it (retention keeps it until).
        Err(e) if job.snapshot => {
            let name = snapshot_only(job, source, &mut src, ui)?;
            return Err(err(
                e.kind,
                format!(
                    "{}; took @{name} on the source, to be sent when the target is back",
                    e.message
                ),
            ));
        }
        Err(e) => return Err(e),
    };
    let opts = replicate::Options {
        source: name(source)?,
        up_to: None,
        target: name(&job.target)?,
        target_host: job.target_host.clone().unwrap_or_default(),
        recursive: job.recursive,
        force: false,
        dry_run: false,
        no_snapshot: !job.snapshot,
        flags: job.flags,
        lock_wait: job.lock_wait,
        writable: job.writable,
        allow_empty: job.allow_empty,
        jobs: job
            .parallel
            .map_or(replicate::Jobs::Auto, replicate::Jobs::Exactly),
        travel: job.travel.clone(),
        hooks: job.hooks.clone(),
    };
    // The summary lines below replace replicate's own.
    let quiet_ui = Ui::new(ui.verbose, true, ui.quiet);
    let outcomes = replicate::replicate(&opts, &mut src, &mut dst, &|| open(job), &quiet_ui)?;
    let mut pruned: HashMap<String, (Vec<String>, Vec<String>)> = HashMap::new();
    if job.keep_source.is_some() || job.keep_target.is_some() || job.prune_foreign.is_some() {
        let plans = plan_prune(job, source, &mut src, &mut dst)?;
        for (side, p) in apply_prune(&job.name, &plans, &mut src, &mut dst, ui) {
            let e = pruned.entry(p.source.clone()).or_default();
            match side {
                Which::Source => e.0 = p.destroy(),
                Which::Target => e.1 = p.destroy(),
            }
        }
    }
    for o in outcomes {
        let (ps, pt) = pruned.remove(&o.source).unwrap_or_default();
        ui.info(&line(&job.name, &o, &ps, &pt));
        report.datasets.push(DatasetReport {
            outcome: o,
            pruned_source: ps,
            pruned_target: pt,
            newest: None,
        });
    }
    Ok(())
}

/// The job's `post_run` hook, then on failure its `on_failure` hook, with the run's
/// outcome in the environment: `ZREP_OUTCOME` (`ok` or `failed`), `ZREP_SOURCE`,
/// `ZREP_TARGET`, `ZREP_SNAPSHOT` (the newest sent, if any), `ZREP_BYTES` (sent in
/// all), `ZREP_DATASETS` and `ZREP_FAILED` (source datasets, one per line),
/// `ZREP_ERROR` (the first error) and `ZREP_SECONDS`. A failing hook is logged.
fn after_run(job: &Job, report: &JobReport, ui: &Ui) {
    let outcomes = || report.datasets.iter().map(|d| &d.outcome);
    let lines = |v: Vec<&str>| v.join("\n");
    let first_error = report
        .error
        .as_deref()
        .or_else(|| outcomes().find_map(|o| o.error.as_deref()));
    let env = [
        ("ZREP_OUTCOME", report.status.to_string()),
        ("ZREP_SOURCE", job.source_spec()),
        ("ZREP_TARGET", job.target_spec()),
        (
            "ZREP_SNAPSHOT",
            outcomes()
                .find_map(|o| o.snapshots.last())
                .cloned()
                .unwrap_or_default(),
        ),
        (
            "ZREP_BYTES",
            outcomes().map(|o| o.bytes_sent).sum::<u64>().to_string(),
        ),
        (
            "ZREP_DATASETS",
            lines(outcomes().map(|o| o.source.as_str()).collect()),
        ),
        (
            "ZREP_FAILED",
            lines(
                outcomes()
                    .filter(|o| o.error.is_some())
                    .map(|o| o.source.as_str())
                    .collect(),
            ),
        ),
        ("ZREP_ERROR", first_error.unwrap_or_default().to_string()),
        ("ZREP_SECONDS", format!("{:.1}", report.seconds)),
    ];
    let run = |hook| {
        if let Err(e) = job.hooks.run(hook, &env) {
            ui.error(&format!("[{}] {}", job.name, e.message));
        }
    };
    run(Hook::PostRun);
    if report.status == "failed" {
        run(Hook::OnFailure);
    }
}

/// Takes the run's snapshot of the job's datasets (one atomic call) and names it.
fn snapshot_only(job: &Job, source: &str, src: &mut Side, ui: &Ui) -> Result<String> {
    let snap = crate::names::new_snapshot();
    let source = name(source)?;
    if !job.allow_empty {
        src.sync(&source)?;
    }
    let states = src.state(&source, job.recursive)?;
    let fresh = |d: &DatasetState| replicate::needs_snapshot(d, job.allow_empty);
    let env = crate::hooks::snapshot_env(
        job.source_spec(),
        job.target_spec(),
        &snap,
        states.iter().filter(|d| fresh(d)).map(|d| d.name.as_str()),
    );
    job.hooks.around_snapshot(
        &env,
        |m| ui.error(m),
        || replicate::snapshot_tree(src, &source, job.recursive, &states, &snap, &fresh),
    )?;
    Ok(snap)
}

/// The log line of one dataset: outcome, bytes, seconds, what retention removed.
fn line(job: &str, o: &Outcome, ps: &[String], pt: &[String]) -> String {
    let what = o.what();
    let mut s = format!(
        "[{job}] {} -> {}: {what}, {} in {:.1} s",
        o.source,
        o.target,
        bytes(o.bytes_sent),
        o.seconds
    );
    if !ps.is_empty() || !pt.is_empty() {
        s += &format!("; pruned {} on source, {} on target", ps.len(), pt.len());
    }
    s
}

/// Records the run in the state file and, under the same lock, rewrites the
/// Prometheus textfile (so that two jobs ending together cannot leave the older
/// textfile last).
fn record(cfg: &Config, job: &Job, report: &JobReport, started: u64) -> Result<()> {
    let now = clock::now();
    let publish = |s: &State| match &cfg.prometheus {
        Some(p) => state::write_atomic(p, state::prometheus(s, clock::now()).as_bytes()),
        None => Ok(()),
    };
    State::update(
        &cfg.state_dir,
        &job.name,
        |r| record_run(r, job, report, started, now),
        publish,
    )?;
    Ok(())
}

/// The run's results in its job's record. Datasets are known by their source, or
/// by their target in a job without a source.
fn record_run(r: &mut JobRecord, job: &Job, report: &JobReport, started: u64, now: u64) {
    let target_prefix = job
        .target_host
        .as_ref()
        .map(|h| format!("{h}:"))
        .unwrap_or_default();
    r.last_run = Some(started);
    if report.status == "ok" {
        r.last_success = Some(now);
        r.last_error = None;
    } else if report.status == "failed" {
        r.failures_total += 1;
        r.last_error = report.error.clone().or_else(|| {
            let n = report
                .datasets
                .iter()
                .filter(|d| d.outcome.error.is_some())
                .count();
            Some(format!("{n} of {} datasets failed", report.datasets.len()))
        });
    }
    for d in &report.datasets {
        let o = &d.outcome;
        let key = if job.target_only() {
            &o.target
        } else {
            &o.source
        };
        r.bytes_total += o.bytes_sent;
        let rec = r.datasets.entry(key.clone()).or_default();
        rec.target = format!("{target_prefix}{}", o.target);
        rec.bytes = o.bytes_sent;
        rec.seconds = o.seconds;
        rec.last_error = o.error.clone();
        if o.error.is_none() {
            rec.last_success = Some(now);
            // A name dated ahead would make the lag 0 for ever: the newest snapshot
            // sent that has a believable date.
            rec.newest_common = d
                .newest
                .clone()
                .or_else(|| {
                    o.snapshots
                        .iter()
                        .rev()
                        .find_map(|s| named_time(s, now).map(|t| (s.clone(), t)))
                })
                .or(rec.newest_common.take());
            rec.synced_at = match &d.newest {
                Some((_, t)) => Some(*t),
                None => Some(started),
            };
        }
    }
}

/// Which side a prune plan is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Which {
    /// The source.
    Source,
    /// The target.
    Target,
}

/// Retention's verdicts for one dataset on one side.
#[derive(Debug, Serialize)]
pub struct PrunePlan {
    /// The dataset pruned.
    pub dataset: String,
    /// Its source dataset (the key of reports); the dataset itself in a job without
    /// a source.
    #[serde(skip)]
    pub source: String,
    /// (short snapshot name, verdict), oldest first.
    pub verdicts: Vec<(String, Verdict)>,
}

impl PrunePlan {
    fn destroy(&self) -> Vec<String> {
        self.verdicts
            .iter()
            .filter(|(_, v)| v.prune())
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Full names of the snapshots to destroy.
    fn destroy_full(&self) -> Vec<SnapshotName> {
        self.destroy()
            .iter()
            .filter_map(|n| SnapshotName::new(format!("{}@{n}", self.dataset)).ok())
            .collect()
    }
}

/// The newest source snapshot whose GUID the target has.
fn newest_common<'a>(d: &'a DatasetState, t: Option<&DatasetState>) -> Option<&'a SnapEntry> {
    let t = t?;
    d.snapshots
        .iter()
        .filter(|s| t.snapshots.iter().any(|x| x.guid == s.guid))
        .max_by_key(|s| s.createtxg)
}

/// How far behind the target is: 0 when it has the source's newest snapshot and
/// nothing was written since, else the age of the newest snapshot both have.
fn lag(d: &DatasetState, common: &SnapEntry, now: u64) -> u64 {
    let newest = d.snapshots.iter().max_by_key(|s| s.createtxg);
    if d.written == 0 && newest.is_some_and(|n| n.guid == common.guid) {
        0
    } else {
        now.saturating_sub(snapshot_time(common, now))
    }
}

/// When a snapshot was taken: from a zrep name, else its `creation`; also its
/// `creation` when the name is dated more than a day after `now` (such a name would
/// make the lag 0 for ever).
pub fn snapshot_time(s: &SnapEntry, now: u64) -> u64 {
    named_time(&s.name, now).unwrap_or(s.creation)
}

/// The time a zrep snapshot's name carries, unless it lies more than a day ahead.
fn named_time(short_name: &str, now: u64) -> Option<u64> {
    retention::snapshot_time(short_name).filter(|&t| !retention::is_future(t, now))
}

fn judge(
    snaps: &[SnapEntry],
    rules: &Rules,
    now: u64,
    protect: impl Fn(&SnapEntry) -> Option<String>,
) -> Vec<(String, Verdict)> {
    let cands: Vec<(Candidate, &SnapEntry)> = snaps
        .iter()
        .filter_map(|s| {
            let time = retention::snapshot_time(&s.name)?;
            let protected = protect(s).or_else(|| (s.userrefs > 0).then(|| "held".to_string()));
            Some((
                Candidate {
                    name: s.name.clone(),
                    time,
                    protected,
                },
                s,
            ))
        })
        .collect();
    let list: Vec<Candidate> = cands.iter().map(|(c, _)| c.clone()).collect();
    retention::decide(&list, rules, now)
        .into_iter()
        .zip(cands)
        .map(|(v, (c, _))| (c.name, v))
        .collect()
}

/// Retention's verdicts for every dataset of a job with a source, on both sides.
pub fn plan_prune(
    job: &Job,
    source: &str,
    src: &mut Side,
    dst: &mut Side,
) -> Result<Vec<(Which, PrunePlan)>> {
    let sources = src.state(&name(source)?, job.recursive)?;
    let targets = dst.state(&name(&job.target)?, job.recursive)?;
    Ok(prune_plans(job, source, &sources, &targets, clock::now()))
}

/// The target dataset of `dataset`, the job's `source` or under it (the listing it
/// comes from was checked to lie in the source's tree).
fn target_of(job: &Job, source: &str, dataset: &str) -> String {
    let rel = crate::policy::relative(dataset, source).unwrap_or_default();
    format!("{}{rel}", job.target)
}

/// [`plan_prune`] on listings already made, at time `now`.
fn prune_plans(
    job: &Job,
    source: &str,
    sources: &[DatasetState],
    targets: &[DatasetState],
    now: u64,
) -> Vec<(Which, PrunePlan)> {
    let targets: HashMap<&str, &DatasetState> =
        targets.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut plans = Vec::new();
    for d in sources {
        let target = target_of(job, source, d.name.as_str());
        let t = targets.get(target.as_str()).copied();
        let common = newest_common(d, t);
        if let Some(rules) = &job.keep_source {
            let verdicts = judge(&d.snapshots, rules, now, |s| match common {
                Some(c) if c.guid == s.guid => Some("the newest snapshot both sides have".into()),
                Some(c) if s.createtxg > c.createtxg && !job.prune_unreplicated => {
                    Some("not on the target yet".into())
                }
                None if !job.prune_unreplicated => Some("not on the target yet".into()),
                _ => None,
            });
            plans.push((
                Which::Source,
                PrunePlan {
                    dataset: d.name.to_string(),
                    source: d.name.to_string(),
                    verdicts,
                },
            ));
        }
        let target_rules = job.keep_target.is_some() || job.prune_foreign.is_some();
        if let (true, Some(t)) = (target_rules, t) {
            let tc = common.and_then(|c| t.snapshots.iter().find(|s| s.guid == c.guid));
            let mut verdicts = match &job.keep_target {
                Some(rules) => judge(&t.snapshots, rules, now, |s| match tc {
                    Some(c) if c.guid == s.guid => {
                        Some("the newest snapshot both sides have".into())
                    }
                    Some(c) if s.createtxg > c.createtxg => {
                        Some("newer than the newest snapshot both sides have".into())
                    }
                    None => Some("the target shares no snapshot with the source".into()),
                    _ => None,
                }),
                None => Vec::new(),
            };
            if let Some(patterns) = &job.prune_foreign {
                verdicts.extend(foreign(t, patterns, tc));
                let txg: HashMap<&str, u64> = t
                    .snapshots
                    .iter()
                    .map(|s| (s.name.as_str(), s.createtxg))
                    .collect();
                verdicts.sort_by_key(|(n, _)| txg.get(n.as_str()).copied().unwrap_or(0));
            }
            plans.push((
                Which::Target,
                PrunePlan {
                    dataset: target,
                    source: d.name.to_string(),
                    verdicts,
                },
            ));
        }
    }
    plans
}

/// `prune_foreign`'s verdicts on other tools' snapshots of target `t` that match a
/// pattern (zrep's own are retention's; the others are not named).
fn foreign(
    t: &DatasetState,
    patterns: &crate::plan::Selection,
    common: Option<&SnapEntry>,
) -> Vec<(String, Verdict)> {
    let snaps: Vec<TargetSnap> = t
        .snapshots
        .iter()
        .map(|s| TargetSnap {
            name: s.name.clone(),
            createtxg: s.createtxg,
            held: s.userrefs > 0,
        })
        .collect();
    retention::foreign_to_prune(&snaps, patterns, common.map(|c| c.name.as_str()))
        .iter()
        .zip(&t.snapshots)
        .filter(|(v, _)| !matches!(v, ForeignVerdict::Own | ForeignVerdict::Unmatched))
        .map(|(v, s)| (s.name.clone(), Verdict::from(v)))
        .collect()
}

/// Whether the peer refused a request by its policy (`zrep serve --receive-only`
/// refuses destroys) rather than failing it. The one place that knows how a
/// refusal is spelled.
fn is_refusal(e: &Error) -> bool {
    e.kind == Kind::Refused
}

/// The plans for one side that destroy something.
fn of_side(plans: &[(Which, PrunePlan)], which: Which) -> Vec<&PrunePlan> {
    plans
        .iter()
        .filter(|(w, p)| *w == which && !p.destroy().is_empty())
        .map(|(_, p)| p)
        .collect()
}

/// Destroys what `plans` prune on one side: one call, or dataset by dataset when
/// that fails (a clone, a new hold), so that one stuck snapshot does not stop the
/// others. A refusal of the one call is every plan's answer (not asked again).
fn destroy_on<'a>(side: &mut Side, plans: Vec<&'a PrunePlan>) -> Vec<(&'a PrunePlan, Result<()>)> {
    let all: Vec<SnapshotName> = plans.iter().flat_map(|p| p.destroy_full()).collect();
    if all.is_empty() {
        return Vec::new();
    }
    match side.destroy_snapshots(&all) {
        Ok(()) => plans.into_iter().map(|p| (p, Ok(()))).collect(),
        Err(e) if is_refusal(&e) => plans.into_iter().map(|p| (p, Err(e.clone()))).collect(),
        Err(_) => plans
            .into_iter()
            .map(|p| (p, side.destroy_snapshots(&p.destroy_full())))
            .collect(),
    }
}

/// Destroys what the plans prune on both sides; returns the plans whose snapshots
/// were destroyed. Failures are logged, not fatal; a side that refuses pruning is
/// said once.
pub fn apply_prune<'a>(
    job: &str,
    plans: &'a [(Which, PrunePlan)],
    src: &mut Side,
    dst: &mut Side,
    ui: &Ui,
) -> Vec<(Which, &'a PrunePlan)> {
    let mut done = Vec::new();
    for (which, side) in [(Which::Source, &mut *src), (Which::Target, &mut *dst)] {
        let results = destroy_on(side, of_side(plans, which));
        if let Some(e) = refusal(&results) {
            ui.error(&refusal_line(job, which, e));
            continue;
        }
        for (p, r) in results {
            match r {
                Ok(()) => done.push((which, p)),
                Err(e) => ui.error(&format!("cannot prune {}: {}", p.dataset, e.message)),
            }
        }
    }
    done
}

/// The refusal that answered a side's destroys, if that is what happened.
fn refusal<'a>(results: &'a [(&PrunePlan, Result<()>)]) -> Option<&'a Error> {
    match results.first() {
        Some((_, Err(e))) if is_refusal(e) => Some(e),
        _ => None,
    }
}

/// What to say, once a run, when a side refuses pruning. Said as an error (`-q`
/// shows it): the job's rules for that side do nothing, and the fix is in the config.
fn refusal_line(job: &str, which: Which, e: &Error) -> String {
    match which {
        Which::Target => format!(
            "[{job}] the target refuses pruning (zrep serve --receive-only): prune it on \
             the backup host with a job that has a target and no source, and remove \
             keep_target from this job ({})",
            e.message
        ),
        Which::Source => format!("[{job}] the source refuses pruning: {}", e.message),
    }
}

/// `zrep prune [--dry-run]`: retention alone, no snapshot and no replication.
pub fn prune(job: &Job, dry_run: bool, ui: &Ui) -> Result<Vec<(Which, PrunePlan)>> {
    if job.keep_source.is_none() && job.keep_target.is_none() && job.prune_foreign.is_none() {
        ui.info(&format!(
            "[{}] no retention rules: nothing is pruned",
            job.name
        ));
        return Ok(Vec::new());
    }
    // A dry run only reads; a real prune does not race a run of the same job.
    let _lock = match dry_run {
        true => None,
        false => Some(crate::lock::Lock::job(&job.name, job.lock_wait)?),
    };
    let Some(source) = job.source.as_deref() else {
        return target_only::prune(job, dry_run, ui);
    };
    let (mut src, mut dst) = open(job)?;
    let plans = plan_prune(job, source, &mut src, &mut dst)?;
    print_verdicts(&job.name, &plans, dry_run, ui);
    if !dry_run {
        apply_prune(&job.name, &plans, &mut src, &mut dst, ui);
    }
    Ok(plans)
}

/// `zrep prune`'s lines: what goes and why (with `--dry-run` or `-v`, what stays too).
fn print_verdicts(job: &str, plans: &[(Which, PrunePlan)], dry_run: bool, ui: &Ui) {
    for (which, p) in plans {
        for (name, v) in &p.verdicts {
            let (word, why) = match v {
                Verdict::Keep(w) => ("keep", w),
                Verdict::Prune(w) if dry_run => ("would prune", w),
                Verdict::Prune(w) => ("prune", w),
            };
            if v.prune() || dry_run || ui.verbose {
                let side = format!("{which:?}").to_lowercase();
                ui.info(&format!(
                    "[{job}] {side} {word} {}@{name}: {why}",
                    p.dataset
                ));
            }
        }
    }
}

/// One dataset in `zrep status`.
#[derive(Debug, Serialize)]
pub struct DatasetStatus {
    /// Source dataset (empty in a job without a source).
    pub source: String,
    /// Target dataset.
    pub target: String,
    /// The newest snapshot both sides have (in a job without a source: the target's
    /// newest snapshot).
    pub newest_common: Option<String>,
    /// Its age.
    pub lag_seconds: Option<u64>,
    /// Snapshots on the source.
    pub snapshots_source: usize,
    /// Snapshots on the target.
    pub snapshots_target: usize,
    /// When it was last replicated (or pruned) without error (from the state file).
    pub last_success: Option<u64>,
    /// The last run's error for it.
    pub last_error: Option<String>,
}

/// One job in `zrep status`.
#[derive(Debug, Serialize)]
pub struct JobStatus {
    /// The job.
    pub job: String,
    /// When its last run started.
    pub last_run: Option<u64>,
    /// When its last run without failure ended.
    pub last_success: Option<u64>,
    /// Its last run's error.
    pub last_error: Option<String>,
    /// Why the sides could not be listed now (the lag then comes from the state file).
    pub unreachable: Option<String>,
    /// The configured limit.
    pub lag_limit_seconds: Option<u64>,
    /// The largest lag of its datasets (`None`: some dataset was never replicated).
    pub lag_seconds: Option<u64>,
    /// The lag exceeds the limit (or nothing was replicated yet).
    pub over_limit: bool,
    /// Per dataset.
    pub datasets: Vec<DatasetStatus>,
}

/// Where a job stands: both sides listed now, with the state file's history. For a
/// job without a source: its target's datasets, each with the age of its newest
/// snapshot as the lag (how long since a backup last arrived).
pub fn status(job: &Job, state: &State) -> JobStatus {
    let now = clock::now();
    let rec = state.jobs.get(&job.name).cloned().unwrap_or_default();
    let mut st = JobStatus {
        job: job.name.clone(),
        last_run: rec.last_run,
        last_success: rec.last_success,
        last_error: rec.last_error.clone(),
        unreachable: None,
        lag_limit_seconds: job.lag_limit.map(|d| d.as_secs()),
        lag_seconds: None,
        over_limit: false,
        datasets: Vec::new(),
    };
    let listed = match job.source.as_deref() {
        Some(source) => replicated_status(job, source, &rec, now),
        None => target_only::status(job, &rec, now),
    };
    match listed {
        Ok(datasets) => st.datasets = datasets,
        Err(e) => {
            st.unreachable = Some(e.message);
            st.datasets = recorded_status(job, &rec, now);
        }
    }
    let lags: Option<Vec<u64>> = st.datasets.iter().map(|d| d.lag_seconds).collect();
    st.lag_seconds = lags.and_then(|l| l.into_iter().max());
    st.over_limit = match st.lag_limit_seconds {
        Some(limit) => !st.lag_seconds.is_some_and(|l| l <= limit),
        None => false,
    };
    st
}

/// Both sides of a job with a source, listed now.
fn replicated_status(
    job: &Job,
    source: &str,
    rec: &JobRecord,
    now: u64,
) -> Result<Vec<DatasetStatus>> {
    let (mut src, mut dst) = open(job)?;
    let source_ds = name(source)?;
    src.sync(&source_ds)?; // `written` counts only what is on disk
    let sources = src.state(&source_ds, job.recursive)?;
    let targets = dst.state(&name(&job.target)?, job.recursive)?;
    Ok(sources
        .iter()
        .map(|d| {
            let target = target_of(job, source, d.name.as_str());
            let t = targets.iter().find(|t| t.name.as_str() == target);
            let common = newest_common(d, t);
            let r = rec.datasets.get(d.name.as_str());
            DatasetStatus {
                source: d.name.to_string(),
                target,
                newest_common: common.map(|c| c.name.clone()),
                lag_seconds: common.map(|c| lag(d, c, now)),
                snapshots_source: d.snapshots.len(),
                snapshots_target: t.map_or(0, |t| t.snapshots.len()),
                last_success: r.and_then(|r| r.last_success),
                last_error: r.and_then(|r| r.last_error.clone()),
            }
        })
        .collect())
}

/// The datasets as the state file last saw them (when they cannot be listed now).
fn recorded_status(job: &Job, rec: &JobRecord, now: u64) -> Vec<DatasetStatus> {
    rec.datasets
        .iter()
        .map(|(key, r)| DatasetStatus {
            source: if job.target_only() {
                String::new()
            } else {
                key.clone()
            },
            target: r.target.clone(),
            newest_common: r.newest_common.as_ref().map(|c| c.0.clone()),
            lag_seconds: r.synced_at.map(|t| now.saturating_sub(t)),
            snapshots_source: 0,
            snapshots_target: 0,
            last_success: r.last_success,
            last_error: r.last_error.clone(),
        })
        .collect()
}

/// `zrep status` for people, line by line.
pub fn status_lines(s: &JobStatus) -> Vec<String> {
    let when = |t: Option<u64>| t.map_or("never".to_string(), clock::utc_stamp);
    let mut lines = vec![format!(
        "job {}: last run {}, last success {}{}",
        s.job,
        when(s.last_run),
        when(s.last_success),
        s.last_error
            .as_ref()
            .map(|e| format!(", last error: {e}"))
            .unwrap_or_default()
    )];
    if let Some(u) = &s.unreachable {
        lines.push(format!(
            "  cannot list the datasets now ({u}); lag from the last run"
        ));
    }
    for d in &s.datasets {
        lines.push(format!("  {}", dataset_status_line(d)));
    }
    if s.over_limit {
        lines.push(format!(
            "  LAG OVER LIMIT: {} > {}",
            s.lag_seconds.map_or("never replicated".into(), clock::age),
            clock::age(s.lag_limit_seconds.unwrap_or(0))
        ));
    }
    lines
}

/// One dataset's line in `zrep status`.
fn dataset_status_line(d: &DatasetStatus) -> String {
    let lag = d.lag_seconds.map_or("-".into(), clock::age);
    let newest = d.newest_common.as_deref().unwrap_or("-");
    let error = d
        .last_error
        .as_ref()
        .map(|e| format!(", last error: {e}"))
        .unwrap_or_default();
    if d.source.is_empty() {
        return format!(
            "{}: lag {lag} (age of the newest snapshot @{newest}), snapshots {}{error}",
            d.target, d.snapshots_target
        );
    }
    format!(
        "{} -> {}: lag {lag}, newest common @{newest}, snapshots {} source / {} target{error}",
        d.source, d.target, d.snapshots_source, d.snapshots_target
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn job(keep: &str) -> Job {
        let text = format!("[[job]]\nname = \"t\"\nsource = \"p/s\"\ntarget = \"q/t\"\n{keep}\n");
        Config::parse(std::path::Path::new("t.toml"), &text)
            .unwrap()
            .jobs
            .remove(0)
    }

    /// [`prune_plans`] for a job with a source.
    fn plans_of(
        job: &Job,
        sources: &[DatasetState],
        targets: &[DatasetState],
        now: u64,
    ) -> Vec<(Which, PrunePlan)> {
        let source = job.source.as_deref().expect("a job with a source");
        prune_plans(job, source, sources, targets, now)
    }

    /// The tests' clock: a year after their snapshots.
    const NOW: u64 = 1_798_761_600;

    fn snap(hour: u64, guid: u64, userrefs: u64) -> SnapEntry {
        SnapEntry {
            name: format!("zrep-{}", clock::utc_stamp(1_767_225_600 + hour * 3600)),
            guid,
            createtxg: guid,
            creation: 0,
            userrefs,
            holds: None,
        }
    }

    /// A listed dataset (shared with the tests of jobs without a source).
    pub(super) fn ds(name: &str, snapshots: Vec<SnapEntry>) -> DatasetState {
        DatasetState::filesystem(name, snapshots)
    }

    fn verdicts(p: &PrunePlan) -> Vec<(usize, bool)> {
        p.verdicts
            .iter()
            .enumerate()
            .map(|(i, (_, v))| (i, v.prune()))
            .collect()
    }

    #[test]
    fn the_newest_common_held_and_unreplicated_stay() {
        // Source: 0..5, 1 held by someone, the target has 0..2.
        let src = ds(
            "p/s",
            (0..6)
                .map(|h| snap(h, h + 1, u64::from(h == 1 || h == 2)))
                .collect(),
        );
        let dst = ds(
            "q/t",
            (0..3).map(|h| snap(h, h + 1, u64::from(h == 2))).collect(),
        );
        let plans = plans_of(
            &job("keep_source = { last = 1 }\nkeep_target = { last = 1 }"),
            &[src],
            &[dst],
            NOW,
        );
        let (w, s) = &plans[0];
        assert_eq!(*w, Which::Source);
        // 0 goes; 1 held; 2 newest common; 3, 4 not replicated; 5 the newest.
        assert_eq!(
            verdicts(s),
            [
                (0, true),
                (1, false),
                (2, false),
                (3, false),
                (4, false),
                (5, false)
            ]
        );
        assert_eq!(
            s.verdicts[3].1,
            Verdict::Keep("not on the target yet".into())
        );
        let (w, t) = &plans[1];
        assert_eq!((*w, t.dataset.as_str()), (Which::Target, "q/t"));
        assert_eq!(verdicts(t), [(0, true), (1, true), (2, false)]);
    }

    #[test]
    fn prune_unreplicated_lets_them_go() {
        let src = ds("p/s", (0..4).map(|h| snap(h, h + 1, 0)).collect());
        let dst = ds("q/t", vec![snap(0, 1, 0)]);
        let plans = plans_of(
            &job("keep_source = { last = 1 }\nprune_unreplicated = true"),
            &[src],
            &[dst],
            NOW,
        );
        assert_eq!(
            verdicts(&plans[0].1),
            [(0, false), (1, true), (2, true), (3, false)]
        );
    }

    #[test]
    fn a_target_without_a_common_snapshot_is_left_alone() {
        let src = ds("p/s", vec![snap(5, 50, 0)]);
        let dst = ds("q/t", (0..3).map(|h| snap(h, h + 100, 0)).collect());
        let plans = plans_of(
            &job("keep_target = { last = 1 }"),
            std::slice::from_ref(&src),
            &[dst],
            NOW,
        );
        assert!(plans[0].1.verdicts.iter().all(|(_, v)| !v.prune()));
        // No target at all: nothing to judge there, and the source keeps everything
        // that is not replicated.
        let plans = plans_of(
            &job("keep_source = { last = 1 }\nkeep_target = { last = 1 }"),
            &[src],
            &[],
            NOW,
        );
        assert_eq!(plans.len(), 1);
        assert!(!plans[0].1.verdicts[0].1.prune());
    }

    #[test]
    fn only_zrep_snapshots_are_candidates() {
        let mut mine = snap(0, 1, 0);
        mine.name = "before-upgrade".into();
        let src = ds("p/s", vec![mine, snap(1, 2, 0), snap(2, 3, 0)]);
        let dst = ds("q/t", vec![snap(2, 3, 0)]);
        let plans = plans_of(&job("keep_source = { last = 1 }"), &[src], &[dst], NOW);
        let names: Vec<&str> = plans[0]
            .1
            .verdicts
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert!(!names.contains(&"before-upgrade"));
        assert_eq!(plans[0].1.destroy().len(), 1);
    }

    #[test]
    fn future_dated_snapshots_from_the_source_do_not_prune_real_ones() {
        // 40 daily runs, then 20 snapshots named in 2099 made on the source, then
        // one more run: all of them replicated (same GUIDs on both sides).
        let day0 = 1_767_225_600; // 2026-01-01
        let daily = |d: u64| SnapEntry {
            name: format!("zrep-{}", clock::utc_stamp(day0 + d * 86_400)),
            guid: d + 1,
            createtxg: d + 1,
            creation: 0,
            userrefs: 0,
            holds: None,
        };
        let mut snaps: Vec<SnapEntry> = (0..40).map(daily).collect();
        for f in 0..20 {
            let mut s = daily(f);
            s.name = format!("zrep-209901{:02}T000000Z", f + 1);
            (s.guid, s.createtxg) = (1000 + f, 100 + f);
            snaps.push(s);
        }
        let mut last = daily(40);
        last.createtxg = 200;
        snaps.push(last);
        let now = day0 + 40 * 86_400 + 60;
        let plans = plans_of(
            &job("keep_source = { last = 3 }\nkeep_target = { daily = 30 }"),
            &[ds("p/s", snaps.clone())],
            &[ds("q/t", snaps)],
            now,
        );
        let kept = |p: &PrunePlan| -> Vec<String> {
            p.verdicts
                .iter()
                .filter(|(_, v)| !v.prune())
                .map(|(n, _)| n.clone())
                .collect()
        };
        let names = |r: std::ops::Range<u64>| -> Vec<String> { r.map(|d| daily(d).name).collect() };
        let future: Vec<String> = (1..=20)
            .map(|f| format!("zrep-209901{f:02}T000000Z"))
            .collect();
        let (source, target) = (&plans[0].1, &plans[1].1);
        // Listing order (creation): the 2099 ones came before the last run's.
        assert_eq!(
            kept(source),
            [names(38..40), future.clone(), names(40..41)].concat()
        );
        assert_eq!(
            kept(target),
            [names(11..40), future, names(40..41)].concat()
        );
        let (name, v) = &target.verdicts[40];
        assert_eq!(
            (name.as_str(), v),
            (
                "zrep-20990101T000000Z",
                &Verdict::Keep(
                    "dated 2099-01-01, more than a day after now: kept, not counted".into()
                )
            )
        );
    }

    #[test]
    fn lag_ignores_names_dated_ahead() {
        let mut s = snap(0, 1, 0);
        s.creation = 500;
        assert_eq!(snapshot_time(&s, NOW), 1_767_225_600);
        s.name = "zrep-20990101T000000Z".into();
        assert_eq!(snapshot_time(&s, NOW), 500);
    }

    fn outcome(source: &str, target: &str, snapshots: &[&str]) -> Outcome {
        Outcome {
            mode: crate::report::Mode::Incremental,
            snapshots: snapshots.iter().map(|s| s.to_string()).collect(),
            bytes_sent: 10,
            estimated_bytes: 10,
            seconds: 1.0,
            ..Outcome::new(source, target, false)
        }
    }

    fn report(datasets: Vec<DatasetReport>) -> JobReport {
        JobReport {
            job: "t".into(),
            status: "ok",
            error: None,
            seconds: 1.0,
            datasets,
        }
    }

    #[test]
    fn records_skip_names_dated_ahead() {
        let mut r = JobRecord::default();
        let sent = ["zrep-20260101T000000Z", "zrep-20990101T000000Z"];
        let rep = report(vec![DatasetReport {
            outcome: outcome("p/s", "q/t", &sent),
            pruned_source: Vec::new(),
            pruned_target: Vec::new(),
            newest: None,
        }]);
        record_run(&mut r, &job(""), &rep, NOW - 5, NOW);
        let d = &r.datasets["p/s"];
        assert_eq!(d.newest_common, Some((sent[0].to_string(), 1_767_225_600)));
        assert_eq!((d.synced_at, r.bytes_total), (Some(NOW - 5), 10));
    }

    #[test]
    fn a_job_without_a_source_records_its_targets_and_their_newest() {
        let cfg = "[[job]]\nname = \"b\"\ntarget = \"q/t\"\nkeep_target = { daily = 3 }\n";
        let j = Config::parse(std::path::Path::new("t.toml"), cfg)
            .unwrap()
            .jobs
            .remove(0);
        let mut o = outcome("", "q/t", &[]);
        o.mode = crate::report::Mode::Prune;
        let rep = report(vec![DatasetReport {
            outcome: o,
            pruned_source: Vec::new(),
            pruned_target: vec!["zrep-old".into()],
            newest: Some(("zrep-new".into(), NOW - 3600)),
        }]);
        let mut r = JobRecord::default();
        record_run(&mut r, &j, &rep, NOW - 5, NOW);
        let d = &r.datasets["q/t"];
        assert_eq!(d.newest_common, Some(("zrep-new".into(), NOW - 3600)));
        assert_eq!(d.synced_at, Some(NOW - 3600));
        let st = recorded_status(&j, &r, NOW);
        assert_eq!((st[0].source.as_str(), st[0].target.as_str()), ("", "q/t"));
        assert_eq!(st[0].lag_seconds, Some(3600));
        assert_eq!(
            dataset_status_line(&st[0]),
            "q/t: lag 1h00m (age of the newest snapshot @zrep-new), snapshots 0"
        );
    }

    #[test]
    fn a_refusal_is_told_once_per_side() {
        let plan = |d: &str| PrunePlan {
            dataset: d.into(),
            source: d.into(),
            verdicts: Vec::new(),
        };
        let (a, b) = (plan("q/a"), plan("q/b"));
        let no = err(Kind::Refused, "this server only receives");
        let refused = [(&a, Err(no.clone())), (&b, Err(no.clone()))];
        assert_eq!(refusal(&refused), Some(&no));
        let failed = [(&a, Err(err(Kind::Io, "busy"))), (&b, Ok(()))];
        assert_eq!(refusal(&failed), None);
        assert_eq!(refusal(&[]), None);
        assert_eq!(
            refusal_line("home", Which::Target, &no),
            "[home] the target refuses pruning (zrep serve --receive-only): prune it on the \
             backup host with a job that has a target and no source, and remove keep_target \
             from this job (this server only receives)"
        );
    }
}
