//! `zrep replicate`: plan from both sides' snapshots, check, send, keep the cursor.
//!
//! Names zrep makes live in a namespace of their own, apart from bolthole's zrep
//! (`zrep_` + hex snapshots, `zrep:` properties):
//! - snapshots `@zrep-YYYYMMDDTHHMMSSZ` (UTC, so names sort by time);
//! - hold tag `zrep-<id>` on the newest replicated snapshot on both sides, where `<id>`
//!   is 8 hex digits naming the target dataset (its name and its pool, not the route
//!   to it: pushing to a target and pulling into it keep one cursor);
//! - bookmark `#zrep-<id>-<snapshot>` on the source: the incremental base when that
//!   snapshot is pruned on the source.

use std::collections::{HashMap, HashSet};
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
    /// Snapshot datasets that nothing was written to since their newest snapshot.
    pub allow_empty: bool,
    /// Datasets sent at once (each with its own connection to a remote side).
    pub jobs: usize,
}

/// Whether the run's snapshot includes `d`: something was written since its newest
/// snapshot, or it has none, or the user wants empty snapshots too.
pub fn needs_snapshot(d: &DatasetState, allow_empty: bool) -> bool {
    allow_empty || d.written > 0 || d.snapshots.is_empty()
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

/// The target id used in hold tags and bookmark names: the target dataset's name
/// within its pool, known by the GUID of the pool's root dataset (`place`), so that
/// one target keeps one cursor however it is reached (pushed to over SSH, pulled into
/// locally, under another host name). `place` is the host as written when the peer
/// does not report GUIDs.
pub fn target_id(place: &str, dataset: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in place.bytes().chain([b':']).chain(dataset.bytes()) {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

/// The target dataset of source dataset `source` (the run's source or under it).
fn target_of(opts: &Options, source: &str) -> String {
    format!("{}{}", opts.target, &source[opts.source.len()..])
}

/// A new snapshot name for now (UTC; `ZREP_NOW` sets the clock).
pub fn new_snapshot_name() -> String {
    format!(
        "{SNAPSHOT_PREFIX}{}",
        crate::clock::utc_stamp(crate::clock::now())
    )
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
///
/// `more` opens another pair of sides (a new connection where one is remote) for
/// datasets sent in parallel, up to `opts.jobs` pairs in all.
pub fn replicate(
    opts: &Options,
    src: &mut Side,
    dst: &mut Side,
    more: &dyn Fn() -> OpResult<(Side, Side)>,
    ui: &Ui,
) -> OpResult<Vec<Outcome>> {
    let _lock = if opts.dry_run {
        None
    } else {
        dst.lock(&opts.target, opts.lock_wait)?
    };
    let name = (opts.up_to.is_none() && !opts.no_snapshot).then(new_snapshot_name);
    if name.is_some() && !opts.allow_empty && !opts.dry_run {
        // `written`, which decides who gets a snapshot, counts only what is on disk.
        src.sync(&opts.source)?;
    }
    let mut states = src.state(&opts.source, opts.recursive)?;
    if states.is_empty() {
        return Err(err(
            "NotFound",
            format!("source {}{} does not exist", src.prefix(), opts.source),
        ));
    }
    // Every child target is locked too, before anything is planned: a run aimed at a
    // child itself (which locks only the child) must not receive into it meanwhile.
    // Locks are taken in one order (the tree's), so runs on overlapping trees wait
    // for each other rather than deadlock. A run that held one may have taken and
    // sent newer snapshots: the source is listed again once they are ours (when the
    // run's snapshot does it anyway, or the targets show that it is needed).
    let mut _child_locks = Vec::new();
    let mut busy: HashMap<String, String> = HashMap::new();
    // The datasets locked, when children were; a child created since waits for the
    // next run.
    let mut locked: Option<HashSet<String>> = None;
    if !opts.dry_run && states.len() > 1 {
        let mut children: Vec<&DatasetState> = states[1..].iter().collect();
        children.sort_by(|a, b| a.name.split('/').cmp(b.name.split('/')));
        for d in children {
            let target = target_of(opts, &d.name);
            match dst.lock(&target, opts.lock_wait) {
                Ok(lock) => _child_locks.push(lock),
                Err(e) => {
                    busy.insert(d.name.clone(), e.message);
                }
            }
        }
        locked = Some(states.iter().map(|d| d.name.clone()).collect());
    }
    let mut listed_since_locking = false;
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
    // The run's snapshot, of the datasets written to since their newest snapshot
    // (all of them with --allow-empty): one atomic call. An unchanged dataset's
    // newest snapshot already holds what a new one would.
    let mut fresh: HashSet<String> = HashSet::new();
    if let Some(name) = &name {
        fresh = states
            .iter()
            .filter(|d| needs_snapshot(d, opts.allow_empty))
            .map(|d| d.name.clone())
            .collect();
        if fresh.is_empty() {
            ui.verbose(&format!(
                "{}: nothing written since the newest snapshot, none taken",
                opts.source
            ));
        } else if opts.dry_run {
            // Plan as if the snapshot existed; its size is estimated from the
            // dataset's own numbers below.
            ui.info(&format!("would snapshot {}@{name}", opts.source));
            for (i, d) in states.iter_mut().enumerate() {
                if fresh.contains(&d.name) {
                    d.snapshots.push(crate::proto::SnapEntry {
                        name: name.clone(),
                        guid: u64::MAX - i as u64,
                        createtxg: u64::MAX,
                        creation: 0,
                        userrefs: 0,
                    });
                }
            }
        } else {
            states = snapshot_tree(src, &opts.source, opts.recursive, &states, name, &|d| {
                fresh.contains(&d.name)
            })?;
            listed_since_locking = true;
            ui.verbose(&format!("snapshot {}@{name}", opts.source));
        }
    }
    let pool = opts.target.split('/').next().unwrap_or_default();
    let root = dst.state(pool, false)?.into_iter().next().ok_or_else(|| {
        err(
            "NotFound",
            format!("target pool {}{pool} does not exist", dst.prefix()),
        )
    })?;
    let place = match root.guid {
        0 => opts.target_host.clone(),
        guid => format!("{guid:016x}"),
    };
    let id = target_id(&place, &opts.target);
    // The whole target tree in one listing.
    let targets: HashMap<String, DatasetState> = dst
        .state(&opts.target, opts.recursive)?
        .into_iter()
        .map(|t| (t.name.clone(), t))
        .collect();
    if let Some(locked) = &locked {
        // A target whose newest snapshot our listing of its source lacks: diverged,
        // or sent by a run that held its lock while we listed. Look again.
        let stale = || {
            states.iter().any(|d| {
                let t = targets.get(&target_of(opts, &d.name));
                t.and_then(|t| t.snapshots.last())
                    .is_some_and(|n| !d.snapshots.iter().any(|s| s.guid == n.guid))
            })
        };
        if !listed_since_locking && stale() {
            states = src.state(&opts.source, opts.recursive)?;
        }
        states.retain(|d| locked.contains(&d.name));
        if states.first().map(|d| &d.name) != Some(&opts.source) {
            return Err(err(
                "NotFound",
                format!("source {}{} no longer exists", src.prefix(), opts.source),
            ));
        }
    }
    let work = Work {
        opts,
        states: &states,
        targets: &targets,
        name: name.as_deref(),
        fresh: &fresh,
        id: &id,
        busy: &busy,
    };
    // Datasets that have something to send can go in parallel (receives then share
    // transaction groups), each worker with its own pair of sides.
    let busy = states.iter().filter(|d| work.has_work(d)).count();
    let mut extra = Vec::new();
    if !opts.dry_run {
        for _ in 1..opts.jobs.min(busy) {
            match more() {
                Ok(pair) => extra.push(pair),
                Err(e) => {
                    ui.verbose(&format!("one connection fewer in parallel: {}", e.message));
                    break;
                }
            }
        }
    }
    let (mut out, mut moves) = if extra.is_empty() {
        let mut out = Vec::new();
        let mut moves = Vec::new();
        for i in 0..states.len() {
            let (o, c) = work.one(i, src, dst, ui);
            if let Some(c) = c {
                moves.push((i, c));
            }
            out.push(o);
        }
        (out, moves)
    } else {
        work.parallel(src, dst, extra, &ui.without_progress())
    };
    moves.sort_by_key(|m| m.0);
    move_cursors(moves, src, dst, &mut out, ui);
    Ok(out)
}

/// Takes `@name` of the datasets `which` selects in one atomic call and lists the
/// tree again. A dataset that has it already is left alone: another job on the same
/// source took it in the same second, for the same moment.
pub fn snapshot_tree(
    src: &mut Side,
    root: &str,
    recursive: bool,
    states: &[DatasetState],
    name: &str,
    which: &dyn Fn(&DatasetState) -> bool,
) -> OpResult<Vec<DatasetState>> {
    let missing = |states: &[DatasetState]| -> Vec<String> {
        states
            .iter()
            .filter(|d| which(d) && !d.snapshots.iter().any(|s| s.name == name))
            .map(|d| format!("{}@{name}", d.name))
            .collect()
    };
    if let Err(e) = src.snapshot(&missing(states), &[]) {
        if e.kind != "AlreadyExists" {
            return Err(e);
        }
        let rest = missing(&src.state(root, recursive)?);
        if !rest.is_empty() {
            src.snapshot(&rest, &[])?;
        }
    }
    src.state(root, recursive)
}

/// What every dataset of a run shares.
struct Work<'a> {
    opts: &'a Options,
    states: &'a [DatasetState],
    targets: &'a HashMap<String, DatasetState>,
    /// The run's new snapshot, and the datasets that got it.
    name: Option<&'a str>,
    fresh: &'a HashSet<String>,
    id: &'a str,
    /// Children whose target lock another run holds, with the message.
    busy: &'a HashMap<String, String>,
}

impl Work<'_> {
    fn target(&self, d: &DatasetState) -> String {
        target_of(self.opts, &d.name)
    }

    /// Whether `d` will (probably) send something: its newest snapshot is not on the
    /// target, or a receive is pending there.
    fn has_work(&self, d: &DatasetState) -> bool {
        match (self.targets.get(&self.target(d)), d.snapshots.last()) {
            (None, _) => true,
            (Some(t), Some(newest)) => {
                t.resume_token.is_some() || !t.snapshots.iter().any(|s| s.guid == newest.guid)
            }
            (Some(t), None) => t.resume_token.is_some(),
        }
    }

    /// Replicates dataset `i`; its outcome and, on success, its cursor move.
    fn one(&self, i: usize, src: &mut Side, dst: &mut Side, ui: &Ui) -> (Outcome, Option<Cursor>) {
        let d = &self.states[i];
        let target = self.target(d);
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
            dry_run: self.opts.dry_run,
            error: None,
        };
        let taken = self.name.filter(|_| self.fresh.contains(&d.name));
        let names = Names {
            up_to: self.opts.up_to.as_deref().or(taken),
            would_snapshot: taken.filter(|_| self.opts.dry_run),
            id: self.id,
        };
        let t = self.targets.get(&target);
        let result = match self.busy.get(&d.name) {
            Some(message) => Err(err("Busy", message.clone())),
            None => one(self.opts, src, dst, d, &target, &names, t, ui, &mut o),
        };
        let cursor = match result {
            Ok(c) => c,
            Err(e) => {
                o.error = Some(e.message.clone());
                ui.error(&e.message);
                None
            }
        };
        o.seconds = t0.elapsed().as_secs_f64();
        ui.summary(&o);
        (o, cursor)
    }

    /// Runs the datasets on `1 + extra.len()` workers. A dataset starts once its
    /// parent (when the run includes it) is done: a child's first receive needs it.
    fn parallel(
        &self,
        src: &mut Side,
        dst: &mut Side,
        extra: Vec<(Side, Side)>,
        ui: &Ui,
    ) -> (Vec<Outcome>, Vec<(usize, Cursor)>) {
        use std::sync::{Condvar, Mutex};
        let n = self.states.len();
        let parent: Vec<Option<usize>> = self
            .states
            .iter()
            .map(|d| {
                let (p, _) = d.name.rsplit_once('/')?;
                self.states.iter().position(|x| x.name == p)
            })
            .collect();
        struct Board {
            started: Vec<bool>,
            done: Vec<bool>,
            results: Vec<Option<(Outcome, Option<Cursor>)>>,
        }
        let board = Mutex::new(Board {
            started: vec![false; n],
            done: vec![false; n],
            results: (0..n).map(|_| None).collect(),
        });
        let changed = Condvar::new();
        let worker = |src: &mut Side, dst: &mut Side| loop {
            let mut b = board.lock().unwrap_or_else(|e| e.into_inner());
            let next = loop {
                let ready =
                    (0..n).find(|&i| !b.started[i] && parent[i].map_or(true, |p| b.done[p]));
                match ready {
                    Some(i) => break Some(i),
                    None if b.started.iter().all(|&s| s) => break None,
                    None => b = changed.wait(b).unwrap_or_else(|e| e.into_inner()),
                }
            };
            let Some(i) = next else { return };
            b.started[i] = true;
            drop(b);
            let r = self.one(i, src, dst, ui);
            let mut b = board.lock().unwrap_or_else(|e| e.into_inner());
            b.done[i] = true;
            b.results[i] = Some(r);
            changed.notify_all();
        };
        std::thread::scope(|scope| {
            for (mut s, mut d) in extra {
                let worker = &worker;
                scope.spawn(move || worker(&mut s, &mut d));
            }
            worker(src, dst);
        });
        let board = board.into_inner().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::with_capacity(n);
        let mut moves = Vec::new();
        for (i, r) in board.results.into_iter().enumerate() {
            let (o, c) = r.expect("every dataset ran");
            if let Some(c) = c {
                moves.push((i, c));
            }
            out.push(o);
        }
        (out, moves)
    }
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
    tstate: Option<&DatasetState>,
    ui: &Ui,
    o: &mut Outcome,
) -> OpResult<Option<Cursor>> {
    let (up_to, would_snapshot, id) = (names.up_to, names.would_snapshot, names.id);
    let tag = format!("zrep-{id}");
    let source = source_state(d);
    let tgt = tstate.map_or(TargetState::Absent, target_state);
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
    let available = match tstate {
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
        return Ok(None);
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
    // Keep the common snapshot on both sides while we work. One that is held already
    // (by the cursor, usually) cannot be destroyed either: a hold costs a transaction
    // group, so none is added then.
    let held = |st: &DatasetState, snap: &str| {
        st.snapshots
            .iter()
            .any(|s| s.name == snap && s.userrefs > 0)
    };
    if let Some(c) = &plan.common {
        if !held(d, c) {
            let _ = src.hold(&[(format!("{}@{c}", d.name), tag.clone())]);
        }
        if let Some(tc) = plan.rollback_to.as_ref().or(Some(c)) {
            if !tstate.is_some_and(|t| held(t, tc)) {
                let _ = dst.hold(&[(format!("{target}@{tc}"), tag.clone())]);
            }
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
    // The newest snapshot this run received (short name): the new cursor.
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
                ui.shows_progress(),
            )?;
            got(&t);
        }
        for step in &plan.steps {
            let stream = Stream::Snapshot {
                snapshot: format!("{}@{}", d.name, step.to),
                from: base_name(&d.name, step.from.as_ref()),
                flags,
            };
            let t = transfer::transfer(src, dst, &stream, &tgt_spec, &tick, ui.shows_progress())?;
            got(&t);
            ui.verbose(&format!("received {}", t.snapshot));
        }
        Ok(())
    })();
    bar.finish();
    o.bytes_sent = sent_bytes.max(counter.get());
    result?;

    // Move the cursor to the newest snapshot received (a resumed transfer's too).
    let newest = received.or_else(|| plan.common.clone());
    Ok(newest.map(|newest| Cursor::new(d, tstate, target, &plan, &newest, &tag, id)))
}

fn base_name(ds: &str, b: Option<&Base>) -> Option<String> {
    b.map(|b| match b {
        Base::Snapshot(s) => format!("{ds}@{s}"),
        Base::Bookmark(s) => format!("{ds}#{s}"),
    })
}

/// Where a dataset's cursor moves after a successful transfer: `newest` held on both
/// sides and bookmarked on the source; this target's older holds released and older
/// bookmarks destroyed. A run collects every dataset's move and applies them together
/// (one call per kind and side, so one transaction group instead of one per dataset).
#[derive(Debug, Default, Clone)]
struct Cursor {
    src_hold: Vec<(String, String)>,
    dst_hold: Vec<(String, String)>,
    bookmark: Vec<(String, String)>,
    src_release: Vec<(String, String)>,
    dst_release: Vec<(String, String)>,
    destroy_bookmarks: Vec<String>,
}

impl Cursor {
    fn new(
        d: &DatasetState,
        t: Option<&DatasetState>,
        target: &str,
        plan: &Plan,
        newest: &str,
        tag: &str,
        id: &str,
    ) -> Cursor {
        let held = |ds: &str, s: &crate::proto::SnapEntry| {
            (s.userrefs > 0 && s.name != newest).then(|| (format!("{ds}@{}", s.name), tag.into()))
        };
        let bm = format!("zrep-{id}-{newest}");
        let prefix = format!("zrep-{id}-");
        let mut c = Cursor {
            src_hold: vec![(format!("{}@{newest}", d.name), tag.into())],
            dst_hold: vec![(format!("{target}@{newest}"), tag.into())],
            src_release: d
                .snapshots
                .iter()
                .filter_map(|s| held(&d.name, s))
                .collect(),
            // Snapshots held before the transfer; a rollback may have destroyed some,
            // which release skips.
            dst_release: t
                .map(|t| {
                    t.snapshots
                        .iter()
                        .filter(|s| !plan.destroy_on_target.contains(&s.name))
                        .filter_map(|s| held(target, s))
                        .collect()
                })
                .unwrap_or_default(),
            destroy_bookmarks: d
                .bookmarks
                .iter()
                .filter(|b| b.name.starts_with(&prefix) && b.name != bm)
                .map(|b| format!("{}#{}", d.name, b.name))
                .collect(),
            ..Cursor::default()
        };
        // The hold this run placed on the common snapshot while sending (the listing
        // above predates it); release skips it when it is not there.
        if let Some(common) = plan.common.as_ref().filter(|c| *c != newest) {
            let hold = |ds: &str| (format!("{ds}@{common}"), tag.to_string());
            if !c.src_release.contains(&hold(&d.name)) {
                c.src_release.push(hold(&d.name));
            }
            if !c.dst_release.contains(&hold(target)) {
                c.dst_release.push(hold(target));
            }
        }
        if !d.bookmarks.iter().any(|b| b.name == bm) && bm.len() + d.name.len() < 255 {
            c.bookmark
                .push((format!("{}#{bm}", d.name), format!("{}@{newest}", d.name)));
        }
        c
    }

    fn append(&mut self, o: Cursor) {
        self.src_hold.extend(o.src_hold);
        self.dst_hold.extend(o.dst_hold);
        self.bookmark.extend(o.bookmark);
        self.src_release.extend(o.src_release);
        self.dst_release.extend(o.dst_release);
        self.destroy_bookmarks.extend(o.destroy_bookmarks);
    }

    /// New holds and the bookmark first, so that a failure part way leaves the
    /// newest snapshot protected; then, once both sides have them, the old ones go.
    /// Each step runs on both sides at once: every call waits for its pool's
    /// transaction group, and the two sides' pools sync independently.
    fn apply(&self, src: &mut Side, dst: &mut Side) -> OpResult<()> {
        both(
            src,
            dst,
            |s| {
                s.hold(&self.src_hold)?;
                s.bookmark(&self.bookmark)
            },
            |d| d.hold(&self.dst_hold),
        )?;
        both(
            src,
            dst,
            |s| {
                s.release(&self.src_release)?;
                s.destroy_bookmarks(&self.destroy_bookmarks)
            },
            |d| d.release(&self.dst_release),
        )
    }
}

/// Runs `on_src` and `on_dst` at the same time; the first error, the source's first.
fn both(
    src: &mut Side,
    dst: &mut Side,
    on_src: impl FnOnce(&mut Side) -> OpResult<()> + Send,
    on_dst: impl FnOnce(&mut Side) -> OpResult<()> + Send,
) -> OpResult<()> {
    std::thread::scope(|s| {
        let t = s.spawn(|| on_dst(dst));
        let a = on_src(src);
        let b = t.join().expect("cursor thread panicked");
        a.and(b)
    })
}

/// Moves every dataset's cursor in one batch; when the batch fails, dataset by
/// dataset, so that each failure lands on its own outcome.
fn move_cursors(
    moves: Vec<(usize, Cursor)>,
    src: &mut Side,
    dst: &mut Side,
    out: &mut [Outcome],
    ui: &Ui,
) {
    if moves.is_empty() {
        return;
    }
    let mut all = Cursor::default();
    if moves.len() > 1 {
        for (_, c) in &moves {
            all.append(c.clone());
        }
        if all.apply(src, dst).is_ok() {
            return;
        }
    }
    for (i, c) in moves {
        if let Err(e) = c.apply(src, dst) {
            let o = &mut out[i];
            ui.error(&format!(
                "{}: cannot move the replication cursor: {}",
                o.source, e.message
            ));
            o.error = Some(e.message);
        }
    }
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
