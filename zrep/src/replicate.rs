//! `zrep replicate`: plan from both sides' snapshots, check, send, keep the cursor.
//!
//! A run goes through four phases, each a function below:
//! 1. [`prepare`]: lock the targets, list the source, take the run's snapshot, list
//!    the targets;
//! 2. [`Work::plan`], per dataset: the pure planner's decision, the estimate and the
//!    space check (all a dry run does);
//! 3. [`Work::execute`], per dataset (several at once with `-j`): discard stale
//!    resume state, roll back (`--force`), hold the common snapshot, transfer;
//! 4. [`move_cursors`]: the new holds and bookmark, then the old ones go.
//!
//! The names it gives are in [`crate::names`].

use std::collections::{HashMap, HashSet};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use libzfs::{DatasetName, SendSource, SnapshotName};

use crate::error::{err, Error, Kind, Result};
use crate::filter::{Candidate, Decision, Filter};
use crate::hooks::{self, Hooks};
use crate::local::{self, Target};
use crate::plan::{
    self, Base, Bookmark, Plan, Request as PlanRequest, ResumeInfo, Snap, SourceState, TargetState,
};
use crate::proto::{
    CursorMove, DatasetState, Flags, Hold, NewBookmark, Reading, SnapEntry, MAX_TAKEN,
};
use crate::report::Outcome;
use crate::side::Side;
use crate::transfer::{self, Counter, Stream};
use crate::travel::Travel;
use crate::ui::{bytes, Ui};

use crate::names;

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Source dataset (on its side).
    pub source: DatasetName,
    /// Replicate up to this snapshot (short name) instead of taking a new one.
    pub up_to: Option<String>,
    /// Target dataset (on its side).
    pub target: DatasetName,
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
    pub jobs: Jobs,
    /// What travels and how it lands.
    pub travel: Travel,
    /// A job's commands around the snapshot (none for `zrep replicate`).
    pub hooks: Hooks,
}

/// How many datasets a `-r` run sends at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jobs {
    /// At most this many, whatever their size (`-j N`, a job's `parallel`).
    Exactly(usize),
    /// [`Jobs::DEFAULT`] at once; between two local pools, up to [`Jobs::SMALL`] when
    /// the others send small streams. A small stream's cost is its receive's wait for
    /// a transaction group, not data: receives that run together share their groups,
    /// and a local worker costs no connection.
    Auto,
}

impl Jobs {
    /// Transfers at once by default.
    pub const DEFAULT: usize = 4;
    /// Local transfers at once by default when the streams beyond [`Jobs::DEFAULT`]
    /// are small.
    pub const SMALL: usize = 16;
    /// A stream estimated below this is small.
    pub const SMALL_STREAM: u64 = 16 << 20;

    /// Workers, and how many of them may send a stream that is not small at once.
    fn limits(self, local: bool) -> (usize, usize) {
        match self {
            Jobs::Exactly(n) => (n, n),
            Jobs::Auto if local => (Jobs::SMALL, Jobs::DEFAULT),
            Jobs::Auto => (Jobs::DEFAULT, Jobs::DEFAULT),
        }
    }
}

impl Options {
    /// `host:target` or `target`.
    fn target_spec(&self) -> String {
        match self.target_host.as_str() {
            "" => self.target.to_string(),
            host => format!("{host}:{}", self.target),
        }
    }

    /// Whether the run takes a snapshot of its own.
    fn takes_snapshot(&self) -> bool {
        self.up_to.is_none() && !self.no_snapshot
    }

    /// The target dataset of source dataset `source` (the run's source or under it).
    pub fn target_of(&self, source: &DatasetName) -> Result<DatasetName> {
        let rel =
            crate::policy::relative(source.as_str(), self.source.as_str()).ok_or_else(|| {
                err(
                    Kind::Connection,
                    format!("{source} is not in the tree of {}", self.source),
                )
            })?;
        Ok(DatasetName::new(format!("{}{rel}", self.target))?)
    }
}

/// Whether the run's snapshot includes `d`: something was written since its newest
/// snapshot, or it has none, or the user wants empty snapshots too.
pub fn needs_snapshot(d: &DatasetState, allow_empty: bool) -> bool {
    allow_empty || d.written > 0 || d.snapshots.is_empty()
}

fn snaps(v: &[SnapEntry]) -> Vec<Snap> {
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

/// What the planner needs of a target dataset.
fn target_state(t: Option<&DatasetState>) -> TargetState {
    let Some(t) = t else {
        return TargetState::Absent;
    };
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
    more: &dyn Fn() -> Result<(Side, Side)>,
    ui: &Ui,
) -> Result<Vec<Outcome>> {
    let run = prepare(opts, src, dst, ui)?;
    let work = Work { opts, run: &run };
    let (mut out, mut moves) = work.run_all(src, dst, more, ui);
    moves.sort_by_key(|m| m.0);
    move_cursors(moves, src, dst, &mut out, ui);
    Ok(out)
}

/// What phase 1 found and holds for the rest of the run.
struct Prepared {
    /// Locks of the targets, held to the end of the run.
    _locks: Vec<crate::lock::Lock>,
    /// The source datasets, parents first.
    states: Vec<DatasetState>,
    /// The target tree, by name.
    targets: HashMap<DatasetName, DatasetState>,
    /// The parent of the run's target, when the target does not exist yet.
    above: Option<DatasetState>,
    /// The run's snapshot (short name) and the datasets that got it.
    taken: Option<String>,
    fresh: HashSet<DatasetName>,
    /// The target id of hold tags and bookmarks.
    id: String,
    /// Children whose target lock another run holds, with the message.
    busy: HashMap<DatasetName, String>,
}

/// Phase 1: locks, listings and the run's snapshot.
///
/// The source and target trees are listed at the same time (they are different pools,
/// often different hosts), and the target only once its children are locked, so that
/// no run aimed at a child changes it between the listing and the plan. The children
/// to lock come from a first listing of the source tree's names, which costs a small
/// part of a full one.
fn prepare(opts: &Options, src: &mut Side, dst: &mut Side, ui: &Ui) -> Result<Prepared> {
    let mut locks = Vec::new();
    if !opts.dry_run {
        locks.extend(dst.lock(&opts.target, opts.lock_wait)?);
    }
    let name = opts.takes_snapshot().then(names::new_snapshot);
    let chosen = choose_children(opts, src, ui)?;
    let (listed, locked_and_listed) = std::thread::scope(|s| {
        let source = s.spawn(|| list_source(opts, src, name.is_some()));
        let target = (|| {
            let names = chosen.as_ref().map_or(&[][..], |c| &c.names[..]);
            let children = lock_children(opts, dst, names)?;
            let targets = dst.state_for(&opts.target, opts.recursive, Reading::Target)?;
            Ok::<_, Error>((children, targets))
        })();
        let source = (source.join()).unwrap_or_else(|_| Err(err(Kind::Other, "listing panicked")));
        (source, target)
    });
    let (mut states, in_sync) = listed?;
    let ((child_locks, busy, locked), targets) = locked_and_listed?;
    locks.extend(child_locks);
    let travels = match chosen {
        Some(c) => {
            keep_selected(&mut states, c.travels.as_ref());
            c.travels
        }
        None => select_datasets(opts, &mut states, ui)?,
    };
    // The target tree, listed once: every target of the run was locked before it was
    // listed, so it stays as listed (the run's snapshot on the source does not touch it).
    let targets: HashMap<DatasetName, DatasetState> =
        targets.into_iter().map(|t| (t.name.clone(), t)).collect();
    let target = targets.get(&opts.target);
    // A new target tree lands in its parent: asked once, not once per dataset.
    let above = match (target, opts.target.parent()) {
        (None, Some(parent)) => dst.dataset(&parent)?,
        _ => None,
    };
    check_not_self(opts, dst, target, &states[0])?;
    if opts.takes_snapshot() {
        preflight(opts, dst, target, above.as_ref(), &states[0])?;
    }
    let (fresh, relisted) = match &name {
        Some(name) => take_snapshot(opts, src, &mut states, name, in_sync, ui)?,
        None => (HashSet::new(), false),
    };
    if relisted {
        keep_selected(&mut states, travels.as_ref());
    }
    let id = cursor_id(opts, dst)?;
    if let Some(locked) = &locked {
        // A target whose newest snapshot our listing of its source lacks: diverged,
        // or sent by a run that held its lock while we listed. Look again.
        let stale = states.iter().any(|d| {
            let t = opts.target_of(&d.name).ok().and_then(|t| targets.get(&t));
            t.and_then(|t| t.snapshots.last())
                .is_some_and(|n| !d.snapshots.iter().any(|s| s.guid == n.guid))
        });
        if !relisted && stale {
            states = src.state_for(&opts.source, opts.recursive, Reading::Source)?;
            keep_selected(&mut states, travels.as_ref());
        }
        states.retain(|d| locked.contains(&d.name));
        if states.first().map(|d| &d.name) != Some(&opts.source) {
            return Err(err(
                Kind::NotFound,
                format!("source {}{} no longer exists", src.prefix(), opts.source),
            ));
        }
    }
    Ok(Prepared {
        _locks: locks,
        states,
        targets,
        above,
        taken: name,
        fresh,
        id,
        busy,
    })
}

/// The source tree, and whether the run's snapshot (`snapshot`: one is taken) will
/// decide in syncing context who gets it.
///
/// `written`, which decides that, counts only what is on disk. The snapshot reads it
/// itself where what was written a moment ago is on disk (one transaction group),
/// unless the datasets must be known first: a dry run, snapshot hooks (they are told
/// them), a tree past one answer's size. Those sync the pool first (a dry run too:
/// recent data is what it would send).
///
/// A tree (`-r`) is synced first in every case: when its listing then shows nothing
/// written anywhere, as on most scheduled runs, no dataset gets the snapshot and its
/// program is not run (it would look every dataset up again, in syncing context). The
/// sync runs beside the target's listing, which takes longer.
fn list_source(
    opts: &Options,
    src: &mut Side,
    snapshot: bool,
) -> Result<(Vec<DatasetState>, bool)> {
    let hooked = [hooks::Hook::PreSnapshot, hooks::Hook::PostSnapshot]
        .into_iter()
        .any(|h| opts.hooks.command(h).is_some());
    let mut in_sync = snapshot && !opts.allow_empty && !opts.dry_run && !hooked;
    let synced = snapshot && !opts.allow_empty && (!in_sync || opts.recursive);
    if synced {
        src.sync(&opts.source)?;
    }
    let states = src.state_for(&opts.source, opts.recursive, Reading::Source)?;
    if states.is_empty() {
        return Err(no_source(src, &opts.source));
    }
    // Past one answer's size, and when nothing needs it, this (synced) listing decides.
    if states.len() > MAX_TAKEN || (synced && !states.iter().any(|d| needs_snapshot(d, false))) {
        in_sync = false;
    }
    Ok((states, in_sync))
}

/// The datasets of a recursive run whose targets it locks.
struct Chosen {
    /// Their names (and opt-out property), the tree's root first.
    names: Vec<DatasetState>,
    /// The filter's choice (`None`: every dataset).
    travels: Option<HashSet<DatasetName>>,
}

/// The datasets of a recursive run's source tree whose targets it locks, chosen by
/// the filter from a listing of names (and the opt-out property); `None` when nothing
/// is locked (one dataset, a dry run).
fn choose_children(opts: &Options, src: &mut Side, ui: &Ui) -> Result<Option<Chosen>> {
    if opts.dry_run || !opts.recursive {
        return Ok(None);
    }
    let mut names = src.datasets_for(&opts.source, true, Reading::Names)?;
    if names.is_empty() {
        return Err(no_source(src, &opts.source));
    }
    let travels = select_datasets(opts, &mut names, ui)?;
    Ok(Some(Chosen { names, travels }))
}

/// Takes the run's snapshot `@name` of the datasets that changed (a dry run only
/// plans as if): in syncing context (`in_sync`, see [`list_source`]) or between the
/// snapshot hooks. Returns the datasets that got it, and whether `states` was listed
/// again (then the caller applies its filter again).
fn take_snapshot(
    opts: &Options,
    src: &mut Side,
    states: &mut Vec<DatasetState>,
    name: &str,
    in_sync: bool,
    ui: &Ui,
) -> Result<(HashSet<DatasetName>, bool)> {
    let fresh = match in_sync {
        true => take_written(src, states, name)?,
        false => (states.iter())
            .filter(|d| needs_snapshot(d, opts.allow_empty))
            .map(|d| d.name.clone())
            .collect(),
    };
    let mut relisted = false;
    if fresh.is_empty() {
        ui.verbose(&format!(
            "{}: nothing written since the newest snapshot, none taken",
            opts.source
        ));
        return Ok((fresh, relisted));
    }
    if opts.dry_run {
        ui.info(&format!("would snapshot {}@{name}", opts.source));
        plan_as_if_taken(states, name, &fresh);
        return Ok((fresh, relisted));
    }
    if !in_sync {
        *states = snapshot_with_hooks(opts, src, states, name, &fresh, ui)?;
        relisted = true;
    }
    ui.verbose(&format!("snapshot {}@{name}", opts.source));
    Ok((fresh, relisted))
}

/// Takes `@name` of those of `states` written to since their newest snapshot (or
/// without one) in one transaction group, and adds it to their listings: the
/// datasets that have it (another run on the same source may have taken the same
/// name in the same second; then it is sent as the run's own).
fn take_written(
    src: &mut Side,
    states: &mut [DatasetState],
    name: &str,
) -> Result<HashSet<DatasetName>> {
    let wanted = (states.iter())
        .map(|d| d.name.snapshot(name))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let at: HashMap<DatasetName, usize> = (states.iter().enumerate())
        .map(|(i, d)| (d.name.clone(), i))
        .collect();
    let mut fresh = HashSet::new();
    for t in src.snapshot_written(&wanted)? {
        let dataset = t.snapshot.dataset();
        let Some(&i) = at.get(&dataset) else {
            continue; // not asked for: Side::snapshot_written refuses such answers
        };
        let d = &mut states[i];
        fresh.insert(dataset);
        if d.snapshots.iter().any(|s| s.name == name) {
            continue;
        }
        d.snapshots.push(SnapEntry {
            name: name.to_string(),
            guid: t.guid,
            createtxg: t.createtxg,
            creation: t.creation,
            userrefs: 0,
            holds: None,
        });
        d.written = 0;
    }
    Ok(fresh)
}

/// Takes the run's snapshot of the `fresh` datasets between the job's `pre_snapshot`
/// and `post_snapshot` hooks ([`crate::hooks`]).
fn snapshot_with_hooks(
    opts: &Options,
    src: &mut Side,
    states: &[DatasetState],
    name: &str,
    fresh: &HashSet<DatasetName>,
    ui: &Ui,
) -> Result<Vec<DatasetState>> {
    let taken = states.iter().filter(|d| fresh.contains(&d.name));
    let env = hooks::snapshot_env(
        format!("{}{}", src.prefix(), opts.source),
        opts.target_spec(),
        name,
        taken.map(|d| d.name.as_str()),
    );
    opts.hooks.around_snapshot(
        &env,
        |m| ui.error(m),
        || {
            snapshot_tree(src, &opts.source, opts.recursive, states, name, &|d| {
                fresh.contains(&d.name)
            })
        },
    )
}

/// Applies the dataset filter (`--include`, `--exclude`, the opt-out property) to a
/// recursive run's source tree: says what is left out and why (every dataset with
/// `--dry-run`, the count otherwise), and returns the datasets that travel (`None`
/// without a filter).
fn select_datasets(
    opts: &Options,
    states: &mut Vec<DatasetState>,
    ui: &Ui,
) -> Result<Option<HashSet<DatasetName>>> {
    let filter = &opts.travel.filter;
    let opted_out = states.iter().any(|d| d.opt_out.is_some());
    if !opts.recursive || (filter.is_empty() && !opted_out) {
        return Ok(None);
    }
    let decisions = decide(&opts.source, filter, states)?;
    let mut left_out = 0;
    for d in &decisions {
        let line = format!("{}: {}", d.name, d.reason);
        if !d.travels {
            left_out += 1;
        }
        if opts.dry_run {
            ui.info(&if d.travels {
                line
            } else {
                format!("{line}: not replicated")
            });
        } else if !d.travels {
            ui.verbose(&format!("{line}: not replicated"));
        }
    }
    if left_out > 0 && !opts.dry_run {
        ui.info(&format!(
            "{}: {left_out} of {} datasets left out by the filter (-v names them)",
            opts.source,
            decisions.len()
        ));
    }
    let travels: HashSet<DatasetName> = decisions
        .iter()
        .filter(|d| d.travels)
        .filter_map(|d| DatasetName::new(d.name.as_str()).ok())
        .collect();
    if !travels.contains(&opts.source) {
        return Err(err(
            Kind::Usage,
            format!("{}: the filter leaves out every dataset", opts.source),
        ));
    }
    keep_selected(states, Some(&travels));
    Ok(Some(travels))
}

/// The filter's decision on every dataset of the tree of `source` listed in `states`.
fn decide(source: &DatasetName, filter: &Filter, states: &[DatasetState]) -> Result<Vec<Decision>> {
    let candidates: Vec<Candidate<'_>> = states
        .iter()
        .map(|d| Candidate {
            name: d.name.as_str(),
            opt_out: d.opt_out.as_ref().map(|(v, _)| v.as_str()),
            local: d.opt_out.as_ref().is_some_and(|(_, local)| *local),
        })
        .collect();
    Ok(filter.decide(source.as_str(), &candidates)?)
}

/// Which datasets of `source`'s tree a recursive run with `filter` covers, and why
/// (`zrep check-config --datasets`).
pub fn covered(source: &DatasetName, filter: &Filter, src: &mut Side) -> Result<Vec<Decision>> {
    let states = src.datasets_for(source, true, Reading::Source)?;
    if states.is_empty() {
        return Err(no_source(src, source));
    }
    decide(source, filter, &states)
}

/// The error of a run whose source is missing.
pub fn no_source(src: &Side, source: &DatasetName) -> Error {
    err(
        Kind::NotFound,
        format!("source {}{source} does not exist", src.prefix()),
    )
}

/// Keeps the datasets the filter selected (a dataset created since it decided waits
/// for the next run).
fn keep_selected(states: &mut Vec<DatasetState>, travels: Option<&HashSet<DatasetName>>) {
    if let Some(t) = travels {
        states.retain(|d| t.contains(&d.name));
    }
}

type ChildLocks = (
    Vec<crate::lock::Lock>,
    HashMap<DatasetName, String>,
    Option<HashSet<DatasetName>>,
);

/// Locks every child target too, before anything is planned: a run aimed at a child
/// itself (which locks only the child) must not receive into it meanwhile. Locks are
/// taken in one order (the tree's), so runs on overlapping trees wait for each other
/// rather than deadlock. Returns the locks, the children another run holds, and the
/// datasets locked (a child created since waits for the next run).
fn lock_children(opts: &Options, dst: &mut Side, states: &[DatasetState]) -> Result<ChildLocks> {
    if states.len() < 2 {
        return Ok((Vec::new(), HashMap::new(), None));
    }
    let mut locks = Vec::new();
    let mut busy = HashMap::new();
    let mut children: Vec<&DatasetState> = states[1..].iter().collect();
    children.sort_by(|a, b| a.name.components().cmp(b.name.components()));
    for d in children {
        match dst.lock(&opts.target_of(&d.name)?, opts.lock_wait) {
            Ok(lock) => locks.extend(lock),
            Err(e) => {
                busy.insert(d.name.clone(), e.message);
            }
        }
    }
    let locked = states.iter().map(|d| d.name.clone()).collect();
    Ok((locks, busy, Some(locked)))
}

/// Refuses a target that is the source itself, reached through SSH.
fn check_not_self(
    opts: &Options,
    dst: &Side,
    target: Option<&DatasetState>,
    source: &DatasetState,
) -> Result<()> {
    match target {
        Some(t) if t.guid != 0 && t.guid == source.guid => Err(err(
            Kind::Usage,
            format!(
                "target {}{} is the source dataset itself: choose another target",
                dst.prefix(),
                opts.target
            ),
        )),
        _ => Ok(()),
    }
}

/// A dry run plans as if the run's snapshot existed: the newest of each dataset that
/// would get it (its size is estimated from the dataset's own numbers).
fn plan_as_if_taken(states: &mut [DatasetState], name: &str, fresh: &HashSet<DatasetName>) {
    for (i, d) in states.iter_mut().enumerate() {
        if fresh.contains(&d.name) {
            d.snapshots.push(SnapEntry {
                name: name.to_string(),
                guid: u64::MAX - i as u64,
                createtxg: u64::MAX,
                creation: 0,
                userrefs: 0,
                holds: None,
            });
        }
    }
}

/// The target id (see [`target_id`]) from the target pool's identity.
fn cursor_id(opts: &Options, dst: &mut Side) -> Result<String> {
    target_cursor_id(&opts.target, &opts.target_host, dst)
}

/// The id in the hold tag and bookmarks of a run into `target` (the run's own
/// target, for every dataset of a recursive run), reached through `target_host`
/// ("" when local): named by its pool's identity ([`names::target_id`]).
pub fn target_cursor_id(target: &DatasetName, target_host: &str, dst: &mut Side) -> Result<String> {
    let pool = DatasetName::new(target.pool())?;
    let root = dst.dataset(&pool)?.ok_or_else(|| {
        err(
            Kind::NotFound,
            format!("target pool {}{pool} does not exist", dst.prefix()),
        )
    })?;
    let place = match root.guid {
        0 => target_host.to_string(),
        guid => format!("{guid:016x}"),
    };
    Ok(names::target_id(&place, target.as_str()))
}

/// Takes `@name` of the datasets `which` selects in one atomic call and lists the
/// tree again. A dataset that has it already is left alone: another job on the same
/// source took it in the same second, for the same moment.
pub fn snapshot_tree(
    src: &mut Side,
    root: &DatasetName,
    recursive: bool,
    states: &[DatasetState],
    name: &str,
    which: &dyn Fn(&DatasetState) -> bool,
) -> Result<Vec<DatasetState>> {
    let missing = |states: &[DatasetState]| -> Result<Vec<SnapshotName>> {
        states
            .iter()
            .filter(|d| which(d) && !d.snapshots.iter().any(|s| s.name == name))
            .map(|d| Ok(d.name.snapshot(name)?))
            .collect()
    };
    if let Err(e) = src.snapshot(&missing(states)?) {
        if e.kind != Kind::AlreadyExists {
            return Err(e);
        }
        let rest = missing(&src.state_for(root, recursive, Reading::Source)?)?;
        src.snapshot(&rest)?;
    }
    src.state_for(root, recursive, Reading::Source)
}

/// What every dataset of a run shares.
struct Work<'a> {
    opts: &'a Options,
    run: &'a Prepared,
}

/// Phase 2's decision for one dataset.
struct Planned<'a> {
    d: &'a DatasetState,
    target: DatasetName,
    t: Option<&'a DatasetState>,
    plan: Plan,
    flags: Flags,
    estimate: u64,
    tag: String,
}

impl Work<'_> {
    /// Whether `d` will (probably) send something: its newest snapshot is not on the
    /// target, or a receive is pending there.
    fn has_work(&self, d: &DatasetState) -> bool {
        let t = self.opts.target_of(&d.name).ok();
        match (t.and_then(|t| self.run.targets.get(&t)), d.snapshots.last()) {
            (None, _) => true,
            (Some(t), Some(newest)) => {
                t.resume_token.is_some() || !t.snapshots.iter().any(|s| s.guid == newest.guid)
            }
            (Some(t), None) => t.resume_token.is_some(),
        }
    }

    /// Phases 2 and 3 for every dataset: one after the other, or on `opts.jobs`
    /// workers (each with its own pair of sides) when several have work.
    fn run_all(
        &self,
        src: &mut Side,
        dst: &mut Side,
        more: &dyn Fn() -> Result<(Side, Side)>,
        ui: &Ui,
    ) -> (Vec<Outcome>, Vec<(usize, Cursor)>) {
        let states = &self.run.states;
        let busy = states.iter().filter(|d| self.has_work(d)).count();
        let local = matches!((&*src, &*dst), (Side::Local(_), Side::Local(_)));
        let (workers, heavy) = self.opts.jobs.limits(local);
        let mut extra = Vec::new();
        if !self.opts.dry_run {
            for _ in 1..workers.min(busy) {
                match more() {
                    Ok(pair) => extra.push(pair),
                    Err(e) => {
                        ui.verbose(&format!("one connection fewer in parallel: {}", e.message));
                        break;
                    }
                }
            }
        }
        if !extra.is_empty() {
            let heavy = (heavy <= extra.len()).then(|| Permits::new(heavy));
            return self.parallel(src, dst, extra, heavy.as_ref(), &ui.without_progress());
        }
        let mut out = Vec::new();
        let mut moves = Vec::new();
        for i in 0..states.len() {
            let (o, c) = self.one(i, src, dst, None, ui);
            moves.extend(c.map(|c| (i, c)));
            out.push(o);
        }
        (out, moves)
    }

    /// Replicates dataset `i`; its outcome and, on success, its cursor move. A
    /// stream that is not small waits for one of the `heavy` permits, if any.
    fn one(
        &self,
        i: usize,
        src: &mut Side,
        dst: &mut Side,
        heavy: Option<&Permits>,
        ui: &Ui,
    ) -> (Outcome, Option<Cursor>) {
        let d = &self.run.states[i];
        let target = self.opts.target_of(&d.name);
        let shown = target
            .as_ref()
            .map_or_else(|_| "?".into(), |t| t.to_string());
        let t0 = Instant::now();
        let mut o = Outcome::new(d.name.as_str(), &shown, self.opts.dry_run);
        let result = match (self.run.busy.get(&d.name), target) {
            (Some(message), _) => Err(err(Kind::Busy, message.clone())),
            (None, Err(e)) => Err(e),
            (None, Ok(target)) => {
                let planned = self.plan(d, target, src, dst, ui, &mut o);
                match planned {
                    Ok(_) if self.opts.dry_run => Ok(None),
                    Ok(p) => {
                        let _permit = heavy
                            .filter(|_| p.estimate >= Jobs::SMALL_STREAM)
                            .map(Permits::take);
                        self.execute(&p, src, dst, ui, &mut o)
                    }
                    Err(e) => Err(e),
                }
            }
        };
        let cursor = result.unwrap_or_else(|e| {
            ui.error(&e.message);
            o.error = Some(e.message);
            None
        });
        o.seconds = t0.elapsed().as_secs_f64();
        ui.summary(&o);
        (o, cursor)
    }

    /// Phase 2: what to send, its estimated size, and whether it fits.
    fn plan<'s>(
        &'s self,
        d: &'s DatasetState,
        target: DatasetName,
        src: &mut Side,
        dst: &mut Side,
        ui: &Ui,
        o: &mut Outcome,
    ) -> Result<Planned<'s>> {
        let taken = self
            .run
            .taken
            .as_deref()
            .filter(|_| self.run.fresh.contains(&d.name));
        let t = self.run.targets.get(&target);
        let travel = &self.opts.travel;
        let req = PlanRequest {
            up_to: self.opts.up_to.clone().or(taken.map(str::to_owned)),
            force: self.opts.force,
            select: travel.select.clone(),
            always: taken.map(str::to_owned),
            newest_only: travel.newest_only,
        };
        let plan = plan::plan(&source_state(d), &target_state(t), &req)
            .map_err(|e| explain(e, d, &target, dst))?;
        let mut flags = self.opts.flags;
        if d.encrypted && !flags.raw {
            flags.raw = true;
            ui.verbose(&format!("{}: encrypted, sending raw", d.name));
        }
        o.mode = plan.mode().into();
        o.snapshots = plan.steps.iter().map(|s| s.to.clone()).collect();
        o.resumed = plan.resume.is_some();
        let available = self.available(t, &target, dst)?;
        let would_snapshot = taken.filter(|_| self.opts.dry_run);
        let estimate = estimate(d, &plan, flags, would_snapshot, src, ui)?;
        o.estimated_bytes = estimate;
        ui.plan(&plan, d.name.as_str(), target.as_str(), estimate);
        let selected = plan.newest_only || plan.steps.iter().any(|s| s.skipped > 0);
        if self.opts.dry_run && selected && !ui.verbose {
            // What the selection leaves behind is the point of a dry run with one.
            ui.info(&format!("{} -> {target}: {}", d.name, plan.describe()));
        }
        if estimate > available {
            return Err(err(
                Kind::NoSpace,
                format!(
                    "{}{target} has {} available but the stream is estimated at {}: free space or choose another target",
                    dst.prefix(),
                    bytes(available),
                    bytes(estimate)
                ),
            ));
        }
        Ok(Planned {
            d,
            target,
            t,
            plan,
            flags,
            estimate,
            tag: format!("zrep-{}", self.run.id),
        })
    }

    /// Where the data will land, and how much room there is: the target's own free
    /// space, or for a new target its nearest existing ancestor's: one listed at the
    /// start, one this run made before it (a dry run makes none), or the parent of the
    /// run's target.
    fn available(
        &self,
        t: Option<&DatasetState>,
        target: &DatasetName,
        dst: &mut Side,
    ) -> Result<u64> {
        if let Some(t) = t {
            return Ok(t.available);
        }
        let root = &self.opts.target;
        let mut parent = target.parent();
        while let Some(p) = parent {
            if let Some(d) = self.run.targets.get(&p) {
                return Ok(d.available);
            }
            if p != *root && !p.is_descendant_of(root) {
                return match self.run.above.as_ref().filter(|a| a.name == p) {
                    Some(above) => Ok(above.available),
                    None => Err(no_parent(dst, target, &p)),
                };
            }
            if !self.opts.dry_run {
                if let Some(d) = dst.dataset(&p)? {
                    return Ok(d.available);
                }
            }
            parent = p.parent();
        }
        Err(err(
            Kind::Usage,
            format!("target {target} is a pool; replicate into a dataset under it"),
        ))
    }

    /// Phase 3: stale resume state, rollback, the common snapshot's holds, transfers.
    fn execute(
        &self,
        p: &Planned<'_>,
        src: &mut Side,
        dst: &mut Side,
        ui: &Ui,
        o: &mut Outcome,
    ) -> Result<Option<Cursor>> {
        let (d, target, plan) = (p.d, &p.target, &p.plan);
        if plan.discard_resume.is_some() {
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
            dst.rollback_to(&target.snapshot(rb)?, &p.tag)?;
        }
        let common_holds = hold_common(p, src, dst);
        let counter = Counter::default();
        let bar = ui.bar(d.name.as_str(), p.estimate);
        let tick = |n: u64| {
            counter.add(n);
            bar.inc(n);
        };
        let choice = &self.opts.travel.props;
        let received = match choice.send {
            true => choice.received(src.properties(&d.name)?),
            false => None,
        };
        let spec = Target {
            set: choice.overrides(received.as_deref(), self.opts.writable),
            inherit: choice.inherit.clone(),
            received,
            readonly: false,
            ..Target::new(target.clone(), false)
        };
        let mut streams = Vec::new();
        if let Some(token) = &plan.resume {
            streams.push(Stream::Resume {
                token: token.clone(),
            });
        }
        for step in &plan.steps {
            streams.push(Stream::Snapshot {
                snapshot: d.name.snapshot(&step.to)?,
                from: base_name(&d.name, step.from.as_ref())?,
                flags: p.flags,
            });
        }
        // The newest snapshot this run received (short name): the new cursor.
        let mut received: Option<String> = None;
        let mut sent = 0u64;
        let result = streams.iter().try_for_each(|stream| {
            if let Stream::Resume { .. } = stream {
                ui.verbose(&format!("{target}: resuming an interrupted transfer"));
            }
            let t = transfer::transfer(src, dst, stream, &spec, &tick, ui.shows_progress())?;
            ui.verbose(&format!("received {}", t.snapshot));
            sent += t.bytes;
            o.wire_bytes += t.wire;
            if let Some(c) = t.codec {
                o.compress = Some(c.name().to_string());
            }
            received = Some(t.snapshot.short_name().to_string());
            Ok::<_, Error>(())
        });
        bar.finish();
        o.bytes_sent = sent.max(counter.get());
        result?;
        let newest = received.or_else(|| plan.common.clone());
        newest
            .map(|newest| Cursor::new(p, &newest, &self.run.id, common_holds))
            .transpose()
    }

    /// Runs the datasets on `1 + extra.len()` workers. A dataset starts once its
    /// parent (when the run includes it) is done: a child's first receive needs it.
    fn parallel(
        &self,
        src: &mut Side,
        dst: &mut Side,
        extra: Vec<(Side, Side)>,
        heavy: Option<&Permits>,
        ui: &Ui,
    ) -> (Vec<Outcome>, Vec<(usize, Cursor)>) {
        let states = &self.run.states;
        let n = states.len();
        let parent: Vec<Option<usize>> = states
            .iter()
            .map(|d| {
                let p = d.name.parent()?;
                states.iter().position(|x| x.name == p)
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
            let r = self.one(i, src, dst, heavy, ui);
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
            let (o, c) = r.unwrap_or_else(|| {
                let d = &states[i];
                let mut o = Outcome::new(d.name.as_str(), "?", self.opts.dry_run);
                o.error = Some("not run: its worker stopped".into());
                (o, None)
            });
            moves.extend(c.map(|c| (i, c)));
            out.push(o);
        }
        (out, moves)
    }
}

/// At most so many holders at once (a counting semaphore).
struct Permits {
    free: Mutex<usize>,
    freed: Condvar,
}

/// One of the [`Permits`], given back when dropped.
struct Permit<'a>(&'a Permits);

impl Permits {
    fn new(n: usize) -> Permits {
        Permits {
            free: Mutex::new(n),
            freed: Condvar::new(),
        }
    }

    /// Waits for a permit.
    fn take(&self) -> Permit<'_> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        Permit(self)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.0.freed.notify_one();
    }
}

/// The estimated size of everything the plan sends. A dry run's would-be snapshot
/// counts all data for a full stream, what was written since the newest snapshot for
/// an incremental one.
fn estimate(
    d: &DatasetState,
    plan: &Plan,
    flags: Flags,
    would_snapshot: Option<&str>,
    src: &mut Side,
    ui: &Ui,
) -> Result<u64> {
    let mut total = 0u64;
    if let Some(token) = &plan.resume {
        total += src.estimate_resume(token).unwrap_or(0);
    }
    for step in &plan.steps {
        let from = base_name(&d.name, step.from.as_ref())?;
        let e = match (would_snapshot == Some(step.to.as_str()), &from) {
            (true, None) => d.referenced,
            (true, Some(_)) => d.written,
            (false, _) => src.estimate(&d.name.snapshot(&step.to)?, from.as_ref(), flags)?,
        };
        ui.verbose(&format!(
            "{} {}@{} estimated size is {}",
            match &from {
                Some(f) => format!("send from {f} to"),
                None => "full send of".into(),
            },
            d.name,
            step.to,
            bytes(e)
        ));
        total += e;
    }
    Ok(total)
}

/// Keeps the common snapshot on both sides while we work. One that is held already
/// (by the cursor, usually) cannot be destroyed either: a hold costs a transaction
/// group, so none is added then. A failure only loses that protection. Returns the
/// holds placed, each side's, for the cursor's move to release.
fn hold_common(p: &Planned<'_>, src: &mut Side, dst: &mut Side) -> (Vec<Hold>, Vec<Hold>) {
    let Some(c) = &p.plan.common else {
        return Default::default();
    };
    let held = |st: &DatasetState, snap: &str| {
        st.snapshots
            .iter()
            .any(|s| s.name == snap && s.userrefs > 0)
    };
    let place = |side: &mut Side, ds: &DatasetName, snap: &str| {
        let Ok(snapshot) = ds.snapshot(snap) else {
            return Vec::new();
        };
        let m = CursorMove {
            hold: vec![Hold {
                snapshot,
                tag: p.tag.clone(),
            }],
            ..CursorMove::default()
        };
        match side.move_cursor(&m) {
            Ok(()) => m.hold,
            Err(_) => Vec::new(),
        }
    };
    let mut placed = (Vec::new(), Vec::new());
    if !held(p.d, c) {
        placed.0 = place(src, &p.d.name, c);
    }
    let tc = p.plan.rollback_to.as_ref().unwrap_or(c);
    if !p.t.is_some_and(|t| held(t, tc)) {
        placed.1 = place(dst, &p.target, tc);
    }
    placed
}

fn base_name(ds: &DatasetName, b: Option<&Base>) -> Result<Option<SendSource>> {
    Ok(match b {
        None => None,
        Some(Base::Snapshot(s)) => Some(ds.snapshot(s)?.into()),
        Some(Base::Bookmark(s)) => Some(ds.bookmark(s)?.into()),
    })
}

/// Where a dataset's cursor moves after a successful transfer: `newest` held on both
/// sides and bookmarked on the source; this target's older holds released and older
/// bookmarks destroyed. A run collects every dataset's move and applies them together
/// (one request per side and half, so one transaction group instead of one per dataset).
#[derive(Debug, Default, Clone)]
struct Cursor {
    src: CursorMove,
    dst: CursorMove,
}

impl Cursor {
    fn new(
        p: &Planned<'_>,
        newest: &str,
        id: &str,
        common_holds: (Vec<Hold>, Vec<Hold>),
    ) -> Result<Cursor> {
        let (d, target, tag) = (p.d, &p.target, &p.tag);
        let hold = |ds: &DatasetName, snap: &str| -> Result<Hold> {
            Ok(Hold {
                snapshot: ds.snapshot(snap)?,
                tag: tag.clone(),
            })
        };
        // Whether the listing names our hold on `s`; `None` where it only counts
        // holds (an older peer).
        let listed_ours = |s: &SnapEntry| s.holds.as_ref().map(|tags| tags.contains(tag));
        // Released: ours, and where unknown, any hold.
        let release = |ds: &DatasetName, s: &SnapEntry| {
            let ours = listed_ours(s).unwrap_or(s.userrefs > 0);
            (ours && s.name != newest).then(|| hold(ds, &s.name))
        };
        // A newest snapshot listed with our hold keeps it: no request, no transaction
        // group (a dataset with nothing new).
        let place = |ds: &DatasetName, snaps: &[SnapEntry]| -> Result<Vec<Hold>> {
            let kept = snaps
                .iter()
                .any(|s| s.name == newest && listed_ours(s) == Some(true));
            Ok(if kept {
                Vec::new()
            } else {
                vec![hold(ds, newest)?]
            })
        };
        let bm = format!("zrep-{id}-{newest}");
        let prefix = format!("zrep-{id}-");
        let mut src = CursorMove {
            hold: place(&d.name, &d.snapshots)?,
            release: d
                .snapshots
                .iter()
                .filter_map(|s| release(&d.name, s))
                .collect::<Result<_>>()?,
            destroy_bookmarks: d
                .bookmarks
                .iter()
                .filter(|b| b.name.starts_with(&prefix) && b.name != bm)
                .map(|b| d.name.bookmark(&b.name))
                .collect::<Result<_, _>>()?,
            ..CursorMove::default()
        };
        let no_snapshots = Vec::new();
        let t_snaps = p.t.map_or(&no_snapshots, |t| &t.snapshots);
        let mut dst = CursorMove {
            hold: place(target, t_snaps)?,
            // Snapshots held before the transfer; a rollback may have destroyed some,
            // which release skips.
            release: t_snaps
                .iter()
                .filter(|s| !p.plan.destroy_on_target.contains(&s.name))
                .filter_map(|s| release(target, s))
                .collect::<Result<_>>()?,
            ..CursorMove::default()
        };
        // The holds [`hold_common`] placed while sending (the listing above predates
        // them), unless one is the new cursor's.
        for (placed, list) in [
            (common_holds.0, &mut src.release),
            (common_holds.1, &mut dst.release),
        ] {
            for h in placed {
                if h.snapshot.short_name() != newest && !list.contains(&h) {
                    list.push(h);
                }
            }
        }
        if !d.bookmarks.iter().any(|b| b.name == bm) {
            // A name too long for a bookmark: the hold alone keeps the cursor.
            if let Ok(bookmark) = d.name.bookmark(&bm) {
                src.bookmark.push(NewBookmark {
                    bookmark,
                    snapshot: d.name.snapshot(newest)?,
                });
            }
        }
        Ok(Cursor { src, dst })
    }

    fn append(&mut self, o: Cursor) {
        self.src.append(o.src);
        self.dst.append(o.dst);
    }

    /// New holds and the bookmark first, so that a failure part way leaves the
    /// newest snapshot protected; then, once both sides have them, the old ones go.
    /// Each half runs on both sides at once: every request waits for its pool's
    /// transaction group, and the two sides' pools sync independently.
    fn apply(&self, src: &mut Side, dst: &mut Side) -> Result<()> {
        for half in [CursorMove::placing, CursorMove::removing] {
            let (s, d) = (half(&self.src), half(&self.dst));
            local::together(|| src.move_cursor(&s), || dst.move_cursor(&d))?;
        }
        Ok(())
    }
}

/// Phase 4: every dataset's cursor in one batch; when the batch fails, dataset by
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
    if moves.len() > 1 {
        let mut all = Cursor::default();
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
fn preflight(
    opts: &Options,
    dst: &Side,
    target: Option<&DatasetState>,
    above: Option<&DatasetState>,
    root: &DatasetState,
) -> Result<()> {
    match target {
        Some(t) => {
            let target = target_state(Some(t));
            let req = PlanRequest {
                up_to: None,
                force: opts.force,
                ..PlanRequest::default()
            };
            match plan::plan(&source_state(root), &target, &req) {
                // A source without snapshots cannot share one with an existing target.
                Err(plan::PlanError::NoSourceSnapshots) if t.resume_token.is_none() => {
                    Err(explain(
                        plan::PlanError::TargetExistsWithoutSnapshots,
                        root,
                        &opts.target,
                        dst,
                    ))
                }
                Err(plan::PlanError::NoSourceSnapshots) | Ok(_) => Ok(()),
                Err(e) => Err(explain(e, root, &opts.target, dst)),
            }
        }
        None => match opts.target.parent() {
            Some(parent) if above.is_none() => Err(no_parent(dst, &opts.target, &parent)),
            _ => Ok(()),
        },
    }
}

/// A new target whose parent does not exist (zrep never creates above the target).
fn no_parent(dst: &Side, target: &DatasetName, parent: &DatasetName) -> Error {
    err(
        Kind::NotFound,
        format!(
            "cannot replicate into {}{target}: its parent {parent} does not exist (create it first)",
            dst.prefix()
        ),
    )
}

/// Turns a planning error into words about these datasets, with a hint.
fn explain(e: plan::PlanError, d: &DatasetState, target: &DatasetName, dst: &Side) -> Error {
    use plan::PlanError as P;
    let where_ = format!("{}{target}", dst.prefix());
    let base = d.name.last_component();
    match e {
        P::TargetExistsWithoutSnapshots | P::NoCommonSnapshot { .. } => err(
            Kind::NoCommonSnapshot,
            format!(
                "{where_} exists and shares no snapshot with {}: refusing to overwrite it; \
                 replicate into a new dataset under it, e.g. {where_}/{base}",
                d.name
            ),
        ),
        P::Diverged { common, target_extra } => err(
            Kind::Diverged,
            format!(
                "{where_} has snapshots the source lacks after the newest common snapshot @{common}: @{}; \
                 nothing was changed (use --force to roll {target} back to @{common}, destroying them)",
                target_extra.join(", @")
            ),
        ),
        P::TargetModified { newest } => err(
            Kind::DestinationModified,
            format!(
                "{where_} has been modified since its most recent snapshot @{newest}; nothing was \
                 changed (use --force to roll it back, discarding those changes)"
            ),
        ),
        P::NoSourceSnapshots => err(
            Kind::NotFound,
            format!("{} has no snapshots to send (drop --no-snapshot to take one)", d.name),
        ),
        P::UnknownSnapshot(s) => err(Kind::NotFound, format!("{}@{s} does not exist", d.name)),
        e @ P::NothingSelected { .. } => err(Kind::NotFound, format!("{}: {e}", d.name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(source: &str, target: &str) -> Options {
        Options {
            source: DatasetName::new(source).unwrap(),
            up_to: None,
            target: DatasetName::new(target).unwrap(),
            target_host: String::new(),
            recursive: true,
            force: false,
            dry_run: false,
            no_snapshot: false,
            flags: Flags::default(),
            lock_wait: 0,
            writable: false,
            allow_empty: false,
            jobs: Jobs::Exactly(1),
            travel: Travel::default(),
            hooks: Hooks::default(),
        }
    }

    /// A source dataset's target lies in the target's tree; a name from outside the
    /// source's tree (a peer's lie) is an error, never a slice.
    #[test]
    fn targets_of_sources() {
        let o = opts("tank/a", "back/x");
        let t = |s: &str| {
            o.target_of(&DatasetName::new(s).unwrap())
                .map(|d| d.to_string())
        };
        assert_eq!(t("tank/a").unwrap(), "back/x");
        assert_eq!(t("tank/a/b/c").unwrap(), "back/x/b/c");
        assert!(t("tank/ab").is_err());
        assert!(t("tank").is_err());
        assert!(t("other/a").is_err());
    }

    fn snap(name: &str, holds: Option<&[&str]>, userrefs: u64) -> SnapEntry {
        SnapEntry {
            name: name.into(),
            guid: name.len() as u64,
            createtxg: name.len() as u64,
            creation: 0,
            userrefs,
            holds: holds.map(|h| h.iter().map(|t| t.to_string()).collect()),
        }
    }

    fn cursor(src: &DatasetState, dst: &DatasetState, common: &str, newest: &str) -> Cursor {
        cursor_after(src, dst, common, newest, Default::default())
    }

    /// [`cursor`] after [`hold_common`] placed `common_holds`.
    fn cursor_after(
        src: &DatasetState,
        dst: &DatasetState,
        common: &str,
        newest: &str,
        common_holds: (Vec<Hold>, Vec<Hold>),
    ) -> Cursor {
        let planned = Planned {
            d: src,
            target: dst.name.clone(),
            t: Some(dst),
            plan: Plan {
                common: Some(common.into()),
                ..Plan::default()
            },
            flags: Flags::default(),
            estimate: 0,
            tag: "zrep-r1".into(),
        };
        Cursor::new(&planned, newest, "r1", common_holds).unwrap()
    }

    fn names(holds: &[Hold]) -> Vec<String> {
        holds.iter().map(|h| h.snapshot.to_string()).collect()
    }

    /// Where the listing names the holds, a dataset with nothing new whose cursor
    /// snapshot has our hold on both sides moves nothing (no request); a side whose
    /// hold is someone else's gets ours; and only our holds are released.
    #[test]
    fn the_cursor_moves_only_what_the_listed_holds_need() {
        let ours = Some(&["zrep-r1"][..]);
        let src = DatasetState::filesystem("tank/a", vec![snap("s1", ours, 1)]);
        let dst = DatasetState::filesystem("back/a", vec![snap("s1", ours, 1)]);
        let c = cursor(&src, &dst, "s1", "s1");
        assert!(c.src.hold.is_empty() && c.src.release.is_empty(), "{c:?}");
        assert!(c.dst.hold.is_empty() && c.dst.release.is_empty(), "{c:?}");

        let theirs = DatasetState::filesystem("back/a", vec![snap("s1", Some(&["keep"]), 1)]);
        let c = cursor(&src, &theirs, "s1", "s1");
        assert!(c.src.hold.is_empty(), "{c:?}");
        assert_eq!(names(&c.dst.hold), ["back/a@s1"]);
        assert!(c.dst.release.is_empty(), "{c:?}");

        // A transfer from s1 to s2: s2 held, s1 released where ours; an older
        // snapshot held by someone else is left alone.
        let src = DatasetState::filesystem(
            "tank/a",
            vec![
                snap("s0", Some(&["keep"]), 1),
                snap("s1", ours, 1),
                snap("s2", Some(&[]), 0),
            ],
        );
        let c = cursor(&src, &theirs, "s1", "s2");
        assert_eq!(names(&c.src.hold), ["tank/a@s2"]);
        assert_eq!(names(&c.src.release), ["tank/a@s1"]);
        assert_eq!(names(&c.dst.hold), ["back/a@s2"]);
        assert!(c.dst.release.is_empty(), "{c:?}");
    }

    /// A listing that only counts holds (an older peer) leaves every held snapshot
    /// possibly ours: the cursor is placed again and the held ones released, as
    /// before holds were listed; the hold the run placed on the common snapshot
    /// while sending is released too, but not when it is the new cursor's.
    #[test]
    fn holds_only_counted_are_treated_as_possibly_ours() {
        let src =
            DatasetState::filesystem("tank/a", vec![snap("s1", None, 0), snap("s2", None, 0)]);
        let dst = DatasetState::filesystem("back/a", vec![snap("s1", None, 1)]);
        let common_hold = || Hold {
            snapshot: SnapshotName::new("tank/a@s1").unwrap(),
            tag: "zrep-r1".into(),
        };
        let c = cursor_after(&src, &dst, "s1", "s1", (vec![common_hold()], Vec::new()));
        assert_eq!(names(&c.dst.hold), ["back/a@s1"]);
        assert!(c.src.release.is_empty(), "{c:?}");
        let c = cursor_after(&src, &dst, "s1", "s2", (vec![common_hold()], Vec::new()));
        assert_eq!(names(&c.src.hold), ["tank/a@s2"]);
        assert_eq!(names(&c.src.release), ["tank/a@s1"]);
        assert_eq!(names(&c.dst.release), ["back/a@s1"]);
    }
}
