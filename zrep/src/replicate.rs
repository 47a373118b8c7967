//! `zrep replicate`: plan from both sides' snapshots, check, send, keep the cursor.
//!
//! Names zrep makes live in a namespace of their own, apart from bolthole's zrep
//! (`zrep_` + hex snapshots, `zrep:` properties):
//! - snapshots `@zrep-YYYYMMDDTHHMMSSZ` (UTC, so names sort by time);
//! - hold tag `zrep-<id>` on the newest replicated snapshot on both sides, where `<id>`
//!   is 8 hex digits naming the target (host and dataset);
//! - bookmark `#zrep-<id>-<snapshot>` on the source: the incremental base when that
//!   snapshot is pruned on the source.

use std::time::Instant;

use serde::Serialize;

use crate::local::{err, OpResult};
use crate::plan::{
    self, Base, Bookmark, Plan, Request as PlanRequest, ResumeInfo, Snap, SourceState, TargetState,
};
use crate::proto::{DatasetState, Flags, RemoteError};
use crate::side::Side;
use crate::transfer::{self, Counter, Stream, Target};
use crate::ui::Ui;

/// Prefix of snapshots zrep takes.
pub const SNAPSHOT_PREFIX: &str = "zrep-";

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Source dataset (on its side).
    pub source: String,
    /// Replicate up to this snapshot (short name) instead of taking a new one.
    pub up_to: Option<String>,
    /// Target dataset (on its side).
    pub target: String,
    /// `host:` of the target, for the cursor id ("" when local).
    pub target_host: String,
    /// Replicate descendants too.
    pub recursive: bool,
    /// Roll the target back to the newest common snapshot when needed.
    pub force: bool,
    /// Only print the plan.
    pub dry_run: bool,
    /// Do not take a new snapshot.
    pub no_snapshot: bool,
    /// Stream flags.
    pub flags: Flags,
    /// Seconds to wait for another run on the same target.
    pub lock_wait: u64,
    /// Leave new targets writable (default: created `readonly=on`).
    pub writable: bool,
}

/// The result for one dataset (printed with `--json`).
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Source dataset.
    pub source: String,
    /// Target dataset.
    pub target: String,
    /// `full`, `incremental`, `resume` or `noop` (`error` when planning failed).
    pub mode: String,
    /// Snapshots sent (short names).
    pub snapshots: Vec<String>,
    /// Stream bytes sent.
    pub bytes_sent: u64,
    /// The estimate made before sending.
    pub estimated_bytes: u64,
    /// Wall time.
    pub seconds: f64,
    /// Whether an interrupted transfer was resumed.
    pub resumed: bool,
    /// Whether the run only planned.
    pub dry_run: bool,
    /// The error, if this dataset failed.
    pub error: Option<String>,
}

/// The target id used in hold tags and bookmark names.
pub fn target_id(host: &str, dataset: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in host.bytes().chain([b':']).chain(dataset.bytes()) {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

/// A new snapshot name for now (UTC).
pub fn new_snapshot_name() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{SNAPSHOT_PREFIX}{}", crate::ui::utc_stamp(secs))
}

fn snaps(v: &[crate::proto::SnapEntry]) -> Vec<Snap> {
    v.iter()
        .map(|s| Snap {
            name: s.name.clone(),
            guid: s.guid,
            createtxg: s.createtxg,
        })
        .collect()
}

/// What the planner needs of a source dataset.
fn source_state(d: &DatasetState) -> SourceState {
    SourceState {
        snapshots: snaps(&d.snapshots),
        bookmarks: d
            .bookmarks
            .iter()
            .map(|b| Bookmark {
                name: b.name.clone(),
                guid: b.guid,
                createtxg: b.createtxg,
            })
            .collect(),
    }
}

/// What the planner needs of an existing target dataset.
fn target_state(t: &DatasetState) -> TargetState {
    TargetState::Present {
        snapshots: snaps(&t.snapshots),
        modified: t.written > 0,
        resume: t.resume_token.as_ref().and_then(|token| {
            Some(ResumeInfo {
                token: token.clone(),
                toguid: t.resume_toguid?,
                fromguid: t.resume_fromguid,
            })
        }),
    }
}

/// Runs a replication; returns one outcome per dataset (parents first).
pub fn replicate(
    opts: &Options,
    src: &mut Side,
    dst: &mut Side,
    ui: &Ui,
) -> OpResult<Vec<Outcome>> {
    let _lock = if opts.dry_run {
        None
    } else {
        dst.lock(&opts.target, opts.lock_wait)?
    };
    let mut states = src.state(&opts.source, opts.recursive)?;
    if states.is_empty() {
        return Err(err(
            "NotFound",
            format!("source {}{} does not exist", src.prefix(), opts.source),
        ));
    }
    // The same dataset on both ends (a target on this host reached through SSH).
    if let Some(t) = dst.state(&opts.target, false)?.first() {
        if t.guid != 0 && t.guid == states[0].guid {
            return Err(err(
                "Usage",
                format!(
                    "target {}{} is the source dataset itself: choose another target",
                    dst.prefix(),
                    opts.target
                ),
            ));
        }
    }
    if opts.up_to.is_none() && !opts.no_snapshot {
        preflight(opts, dst, &states[0])?;
    }
    let up_to = match (&opts.up_to, opts.no_snapshot) {
        (Some(s), _) => Some(s.clone()),
        (None, true) => None,
        (None, false) => {
            let name = new_snapshot_name();
            if opts.dry_run {
                // Plan as if the snapshot existed; its size is estimated from the
                // dataset's own numbers below.
                ui.info(&format!("would snapshot {}@{name}", opts.source));
                for (i, d) in states.iter_mut().enumerate() {
                    d.snapshots.push(crate::proto::SnapEntry {
                        name: name.clone(),
                        guid: u64::MAX - i as u64,
                        createtxg: u64::MAX,
                        creation: 0,
                        written: d.written,
                        userrefs: 0,
                    });
                }
                Some(name)
            } else {
                let name = take_snapshot(src, &states, name)?;
                ui.verbose(&format!("snapshot {}@{name}", opts.source));
                states = src.state(&opts.source, opts.recursive)?;
                Some(name)
            }
        }
    };
    let would_snapshot = match (&opts.up_to, opts.no_snapshot, opts.dry_run) {
        (None, false, true) => up_to.clone(),
        _ => None,
    };
    let id = target_id(&opts.target_host, &opts.target);
    let mut out = Vec::new();
    for d in &states {
        let rel = &d.name[opts.source.len()..];
        let target = format!("{}{rel}", opts.target);
        let t0 = Instant::now();
        let mut o = Outcome {
            source: d.name.clone(),
            target: target.clone(),
            mode: "error".into(),
            snapshots: Vec::new(),
            bytes_sent: 0,
            estimated_bytes: 0,
            seconds: 0.0,
            resumed: false,
            dry_run: opts.dry_run,
            error: None,
        };
        let names = Names {
            up_to: up_to.as_deref(),
            would_snapshot: would_snapshot.as_deref(),
            id: &id,
        };
        if let Err(e) = one(opts, src, dst, d, &target, &names, ui, &mut o) {
            o.error = Some(e.message.clone());
            ui.error(&e.message);
        }
        o.seconds = t0.elapsed().as_secs_f64();
        ui.summary(&o);
        out.push(o);
    }
    Ok(out)
}

/// Snapshots every dataset of `states` as `@name`. Names have a one-second
/// resolution: when another run (into another target) took the same name in the same
/// second, wait for the next second and take a name of our own.
fn take_snapshot(src: &mut Side, states: &[DatasetState], mut name: String) -> OpResult<String> {
    for attempt in 0.. {
        let all: Vec<String> = states
            .iter()
            .map(|d| format!("{}@{name}", d.name))
            .collect();
        match src.snapshot(&all, &[]) {
            Err(e) if e.kind == "AlreadyExists" && attempt < 3 => {
                std::thread::sleep(std::time::Duration::from_millis(1000));
                name = new_snapshot_name();
            }
            other => return other.map(|()| name),
        }
    }
    unreachable!("the loop returns")
}

/// Names shared by every dataset of a run.
struct Names<'a> {
    /// Replicate up to this snapshot (None: the newest).
    up_to: Option<&'a str>,
    /// A dry run's would-be snapshot, which does not exist.
    would_snapshot: Option<&'a str>,
    /// The target id of hold tags and bookmarks.
    id: &'a str,
}

#[allow(clippy::too_many_arguments)]
fn one(
    opts: &Options,
    src: &mut Side,
    dst: &mut Side,
    d: &DatasetState,
    target: &str,
    names: &Names<'_>,
    ui: &Ui,
    o: &mut Outcome,
) -> OpResult<()> {
    let (up_to, would_snapshot, id) = (names.up_to, names.would_snapshot, names.id);
    // A child of a recursive run is locked too: a run aimed at the child itself
    // (which locks only the child) must not receive into it at the same time.
    let child = !opts.dry_run && target != opts.target;
    let _child_lock = if child {
        dst.lock(target, opts.lock_wait)?
    } else {
        None
    };
    // Once the child is ours, list it again: a run that held it may have taken and
    // sent newer snapshots, which put the target ahead of us, not diverged.
    let fresh;
    let d = if child {
        fresh = src
            .state(&d.name, false)?
            .into_iter()
            .next()
            .ok_or_else(|| err("NotFound", format!("{} no longer exists", d.name)))?;
        &fresh
    } else {
        d
    };
    let tag = format!("zrep-{id}");
    let tstate = dst.state(target, false)?.into_iter().next();
    let source = source_state(d);
    let tgt = tstate.as_ref().map_or(TargetState::Absent, target_state);
    let req = PlanRequest {
        up_to: up_to.map(str::to_owned),
        force: opts.force,
    };
    let plan = plan::plan(&source, &tgt, &req).map_err(|e| explain(e, d, target, dst))?;
    let mut flags = opts.flags;
    if d.encrypted && !flags.raw {
        flags.raw = true;
        ui.verbose(&format!("{}: encrypted, sending raw", d.name));
    }
    o.mode = format!("{:?}", plan.mode()).to_lowercase();
    o.snapshots = plan.steps.iter().map(|s| s.to.clone()).collect();
    o.resumed = plan.resume.is_some();

    // Where the data will land, and how much room there is.
    let available = match &tstate {
        Some(t) => t.available,
        None => {
            let parent = target.rsplit_once('/').map(|(p, _)| p).ok_or_else(|| {
                err(
                    "InvalidArgument",
                    format!("target {target} is a pool; replicate into a dataset under it"),
                )
            })?;
            match dst.state(parent, false)?.into_iter().next() {
                Some(p) => p.available,
                None => {
                    return Err(err(
                        "NotFound",
                        format!(
                            "cannot replicate into {}{target}: its parent {parent} does not exist (create it first)",
                            dst.prefix()
                        ),
                    ))
                }
            }
        }
    };

    let mut estimate = 0u64;
    if let Some(token) = &plan.resume {
        estimate += src.estimate_resume(token).unwrap_or(0);
    }
    for step in &plan.steps {
        let from = base_name(&d.name, step.from.as_ref());
        let planned_only = opts.dry_run && would_snapshot == Some(step.to.as_str());
        let e = if planned_only {
            // The dry run's would-be snapshot: all data for a full stream, what was
            // written since the newest snapshot for an incremental one.
            if from.is_none() {
                d.referenced
            } else {
                d.written
            }
        } else {
            src.estimate(&format!("{}@{}", d.name, step.to), from.as_deref(), flags)?
        };
        ui.verbose(&format!(
            "{} {}@{} estimated size is {}",
            match &from {
                Some(f) => format!("send from {f} to"),
                None => "full send of".into(),
            },
            d.name,
            step.to,
            crate::ui::bytes(e)
        ));
        estimate += e;
    }
    o.estimated_bytes = estimate;
    ui.plan(&plan, &d.name, target, estimate);
    if estimate > available {
        return Err(err(
            "NoSpace",
            format!(
                "{}{target} has {} available but the stream is estimated at {}: free space or choose another target",
                dst.prefix(),
                crate::ui::bytes(available),
                crate::ui::bytes(estimate)
            ),
        ));
    }
    if opts.dry_run {
        return Ok(());
    }

    if let Some(token) = &plan.discard_resume {
        let _ = token;
        ui.info(&format!(
            "{target}: discarding an interrupted receive whose snapshot is gone from the source"
        ));
        dst.abort_resume(target)?;
    }
    if let Some(rb) = &plan.rollback_to {
        ui.info(&format!(
            "{target}: rolling back to @{rb} (--force){}",
            if plan.destroy_on_target.is_empty() {
                String::new()
            } else {
                format!(", destroying @{}", plan.destroy_on_target.join(", @"))
            }
        ));
        dst.rollback_to(&format!("{target}@{rb}"), &tag)?;
    }
    // Keep the common snapshot on both sides while we work.
    if let Some(c) = &plan.common {
        let _ = src.hold(&[(format!("{}@{c}", d.name), tag.clone())]);
        if let Some(tc) = plan.rollback_to.as_ref().or(Some(c)) {
            let _ = dst.hold(&[(format!("{target}@{tc}"), tag.clone())]);
        }
    }

    let counter = Counter::default();
    let bar = ui.bar(&d.name, estimate);
    let tick = |n: u64| {
        counter.add(n);
        bar.inc(n);
    };
    let tgt_spec = Target {
        dataset: target.to_string(),
        force: false,
        resumable: true,
        readonly: !opts.writable,
    };
    let mut sent_bytes = 0u64;
    // The newest snapshot received by this run (short name): the new cursor.
    let mut received: Option<String> = None;
    let mut got = |t: &transfer::Transferred| {
        sent_bytes += t.bytes;
        received = t.snapshot.split_once('@').map(|(_, s)| s.to_string());
    };
    let result = (|| -> OpResult<()> {
        if let Some(token) = &plan.resume {
            ui.verbose(&format!("{target}: resuming an interrupted transfer"));
            let t = transfer::transfer(
                src,
                dst,
                &Stream::Resume {
                    token: token.clone(),
                },
                &tgt_spec,
                &tick,
            )?;
            got(&t);
        }
        for step in &plan.steps {
            let stream = Stream::Snapshot {
                snapshot: format!("{}@{}", d.name, step.to),
                from: base_name(&d.name, step.from.as_ref()),
                flags,
            };
            let t = transfer::transfer(src, dst, &stream, &tgt_spec, &tick)?;
            got(&t);
            ui.verbose(&format!("received {}", t.snapshot));
        }
        Ok(())
    })();
    bar.finish();
    o.bytes_sent = sent_bytes.max(counter.get());
    result?;

    // Move the cursor: hold and bookmark the newest replicated snapshot (a resumed
    // transfer's too), drop the old.
    let newest = received.or_else(|| plan.common.clone());
    if let Some(newest) = newest {
        cursor(src, dst, d, target, &newest, &tag, id)?;
    }
    Ok(())
}

fn base_name(ds: &str, b: Option<&Base>) -> Option<String> {
    b.map(|b| match b {
        Base::Snapshot(s) => format!("{ds}@{s}"),
        Base::Bookmark(s) => format!("{ds}#{s}"),
    })
}

/// After success: `newest` is held on both sides and bookmarked on the source; older
/// holds and bookmarks of this target are released and destroyed.
fn cursor(
    src: &mut Side,
    dst: &mut Side,
    d: &DatasetState,
    target: &str,
    newest: &str,
    tag: &str,
    id: &str,
) -> OpResult<()> {
    src.hold(&[(format!("{}@{newest}", d.name), tag.to_string())])?;
    dst.hold(&[(format!("{target}@{newest}"), tag.to_string())])?;
    let bm = format!("zrep-{id}-{newest}");
    let have_bm = d.bookmarks.iter().any(|b| b.name == bm);
    if !have_bm && bm.len() + d.name.len() < 255 {
        src.bookmark(&[(format!("{}#{bm}", d.name), format!("{}@{newest}", d.name))])?;
    }
    // Older holds, on both sides listed again: this run placed holds of its own (on
    // the common snapshot while sending). userrefs tells which snapshots have any.
    for (side, ds) in [(&mut *src, d.name.as_str()), (&mut *dst, target)] {
        let Some(st) = side.state(ds, false)?.into_iter().next() else {
            continue;
        };
        let stale: Vec<(String, String)> = st
            .snapshots
            .iter()
            .filter(|s| s.userrefs > 0 && s.name != newest)
            .map(|s| (format!("{ds}@{}", s.name), tag.to_string()))
            .collect();
        side.release(&stale)?;
    }
    let prefix = format!("zrep-{id}-");
    let old_bms: Vec<String> = d
        .bookmarks
        .iter()
        .filter(|b| b.name.starts_with(&prefix) && b.name != bm)
        .map(|b| format!("{}#{}", d.name, b.name))
        .collect();
    src.destroy_bookmarks(&old_bms)?;
    Ok(())
}

/// Refuses before taking a snapshot when the target could not take it anyway (no
/// common snapshot, diverged or modified without --force, missing parent), so a
/// refused run leaves the source as it was.
fn preflight(opts: &Options, dst: &mut Side, root: &DatasetState) -> OpResult<()> {
    match dst.state(&opts.target, false)?.into_iter().next() {
        Some(t) => {
            let target = target_state(&t);
            let source = source_state(root);
            let req = PlanRequest {
                up_to: None,
                force: opts.force,
            };
            match plan::plan(&source, &target, &req) {
                // A source without snapshots cannot share one with an existing target.
                Err(plan::PlanError::NoSourceSnapshots) if t.resume_token.is_none() => {
                    Err(explain(plan::PlanError::TargetExistsWithoutSnapshots, root, &opts.target, dst))
                }
                Err(plan::PlanError::NoSourceSnapshots) | Ok(_) => Ok(()),
                Err(e) => Err(explain(e, root, &opts.target, dst)),
            }
        }
        None => match opts.target.rsplit_once('/') {
            Some((parent, _)) if dst.state(parent, false)?.is_empty() => Err(err(
                "NotFound",
                format!(
                    "cannot replicate into {}{}: its parent {parent} does not exist (create it first)",
                    dst.prefix(),
                    opts.target
                ),
            )),
            _ => Ok(()),
        },
    }
}

/// Turns a planning error into words about these datasets, with a hint.
fn explain(e: plan::PlanError, d: &DatasetState, target: &str, dst: &Side) -> RemoteError {
    use plan::PlanError as P;
    let where_ = format!("{}{target}", dst.prefix());
    let base = d.name.rsplit('/').next().unwrap_or(&d.name);
    match e {
        P::TargetExistsWithoutSnapshots | P::NoCommonSnapshot { .. } => err(
            "NoCommonSnapshot",
            format!(
                "{where_} exists and shares no snapshot with {}: refusing to overwrite it; \
                 replicate into a new dataset under it, e.g. {where_}/{base}",
                d.name
            ),
        ),
        P::Diverged { common, target_extra } => err(
            "Diverged",
            format!(
                "{where_} has snapshots the source lacks after the newest common snapshot @{common}: @{}; \
                 nothing was changed (use --force to roll {target} back to @{common}, destroying them)",
                target_extra.join(", @")
            ),
        ),
        P::TargetModified { newest } => err(
            "DestinationModified",
            format!(
                "{where_} has been modified since its most recent snapshot @{newest}; nothing was \
                 changed (use --force to roll it back, discarding those changes)"
            ),
        ),
        P::NoSourceSnapshots => err(
            "NotFound",
            format!("{} has no snapshots to send (drop --no-snapshot to take one)", d.name),
        ),
        P::UnknownSnapshot(s) => err("NotFound", format!("{}@{s} does not exist", d.name)),
    }
}

/// Keeps the planner's types reachable for `--dry-run` printing.
pub fn describe(plan: &Plan) -> String {
    if plan.is_noop() {
        return "up to date".into();
    }
    let mut parts = Vec::new();
    if plan.discard_resume.is_some() {
        parts.push("discard stale resume state".to_string());
    }
    if let Some(r) = &plan.rollback_to {
        parts.push(format!("roll target back to @{r}"));
    }
    if plan.resume.is_some() {
        parts.push("resume interrupted transfer".to_string());
    }
    for s in &plan.steps {
        parts.push(match &s.from {
            None => format!("full @{}", s.to),
            Some(Base::Snapshot(f)) => format!("@{f} -> @{}", s.to),
            Some(Base::Bookmark(f)) => format!("#{f} -> @{}", s.to),
        });
    }
    if parts.is_empty() {
        "up to date".into()
    } else {
        parts.join(", ")
    }
}
