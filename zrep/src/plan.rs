//! Replication planner: decides what to send next from the snapshot lists of
//! both sides.
//!
//! The planner is a pure function ([`plan`]); it never performs I/O. Like
//! zrepl, it matches snapshots by GUID rather than by name, and orders them by
//! `createtxg`:
//!
//! * The *base* of an incremental replication is the newest source snapshot
//!   (or source bookmark) whose GUID is also the GUID of a target snapshot.
//!   "Newest" is measured by the source's `createtxg`. When a snapshot and a
//!   bookmark share a GUID, the snapshot is preferred; a bookmark is only used
//!   when it is strictly newer than every common snapshot (typically because
//!   the snapshot was pruned on the source and only its bookmark remains).
//! * Every target snapshot after the base (in the target's `createtxg` order)
//!   means the two sides have diverged; only `force` resolves that, by rolling
//!   the target back to the base.
//! * Streams are planned as a list of single-increment [`Step`]s, which is the
//!   `zfs send -I` behaviour spelled out one snapshot at a time (with a
//!   selection, one selected snapshot at a time: see below).
//!
//! # Resumable receives
//!
//! A target that holds a `receive_resume_token` is handled as follows:
//!
//! * An incremental token is *valid* when its `toguid` is the GUID of the first
//!   snapshot the plan would send and its `fromguid` is the GUID of that step's
//!   base. The plan then resumes the token ([`Plan::resume`]) and does not
//!   repeat that step in [`Plan::steps`].
//! * A full-stream token (no `fromguid`) is only meaningful on a target without
//!   snapshots (the dataset exists because a resumable full receive was
//!   interrupted). It is valid when its `toguid` is a candidate source snapshot
//!   (not newer than [`Request::up_to`]); the remaining steps are incrementals
//!   from that snapshot.
//! * Any other token is stale and reported in [`Plan::discard_resume`] so the
//!   caller can abort it. Aborting a partial *full* receive removes the
//!   partially received dataset, so a target that had no snapshots is then
//!   planned as if it were absent (a full send).
//!
//! # Snapshot selection
//!
//! [`Request::select`] names the source snapshots that travel, by glob patterns
//! over short names ([`Selection`]); `None` sends every snapshot, as above. A
//! snapshot is *selected* when a pattern matches it, when it is
//! [`Request::always`] (the run's own new snapshot) or when it is
//! [`Request::up_to`]. Only snapshots not newer than `up_to` are candidates.
//!
//! * The base is found as above, among **all** source snapshots and bookmarks:
//!   the common snapshot may be one the selection would not send (a
//!   `syncoid_*` snapshot on an adopted target, say).
//! * After the base the steps go through the selected candidates only: from the
//!   base straight to the first selected one (an incremental from an
//!   unselected base is fine), then from each to the next. [`Step::skipped`]
//!   counts the source snapshots a step passes over.
//! * When no candidate after the base is selected, the plan has no steps (up to
//!   date).
//! * A full plan (target absent, or empty after discarding a partial full
//!   receive) starts from the oldest selected candidate; with nothing selected
//!   it is [`PlanError::NothingSelected`].
//! * [`Request::newest_only`] makes that full plan one full stream of the newest
//!   selected candidate instead of the whole history ([`Plan::newest_only`]).
//!   It has no effect when the target has a common snapshot, nor on a target
//!   holding a valid partial full receive (resuming it is the first run).
//! * Resume tokens follow the rules above with the selected steps: an
//!   incremental token is valid when its `toguid` is the first *selected* step.
//!   A full token on an empty target stays valid for any candidate, selected or
//!   not (an earlier run chose it, and a full stream is the costly one); the
//!   steps after it go through the selected candidates.

use std::collections::HashMap;
use std::fmt;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// Glob patterns over short snapshot names (the part after `@`), e.g.
/// `zrep-*` or `daily-*`: which source snapshots travel
/// ([`Request::select`]), or which target snapshots of other tools a run may
/// destroy ([`crate::retention::foreign_to_prune`]).
///
/// Patterns use [`globset`]'s syntax (`*`, `?`, `[a-z]`, `{a,b}`, `\` escapes),
/// matched case-sensitively against the whole short name. A selection without
/// patterns matches nothing. Two selections are equal when their patterns are.
#[derive(Debug, Clone)]
pub struct Selection {
    patterns: Vec<String>,
    set: GlobSet,
}

impl Selection {
    /// Compiles `patterns`.
    ///
    /// # Errors
    ///
    /// A message naming the first bad pattern and why: empty, containing `@`,
    /// `#` or `/` (a short name has none of them, so the pattern could never
    /// match), or not a valid glob.
    pub fn new(patterns: &[String]) -> Result<Selection, String> {
        let mut set = GlobSetBuilder::new();
        for p in patterns {
            let bad = |why: &str| format!("bad snapshot pattern {p:?}: {why}");
            if p.is_empty() {
                return Err(bad("empty"));
            }
            if let Some(c) = p.chars().find(|c| matches!(c, '@' | '#' | '/')) {
                return Err(bad(&format!(
                    "contains {c:?}; patterns match short snapshot names, the part after @"
                )));
            }
            let glob = GlobBuilder::new(p)
                .literal_separator(true)
                .build()
                .map_err(|e| bad(&e.kind().to_string()))?;
            set.add(glob);
        }
        let set = set
            .build()
            .map_err(|e| format!("bad snapshot patterns: {}", e.kind()))?;
        Ok(Selection {
            patterns: patterns.to_vec(),
            set,
        })
    }

    /// Whether some pattern matches the short snapshot name `short`.
    #[must_use]
    pub fn matches(&self, short: &str) -> bool {
        self.set.is_match(short)
    }

    /// The first pattern (in the order given) that matches `short`.
    #[must_use]
    pub fn matching(&self, short: &str) -> Option<&str> {
        let first = self.set.matches(short).into_iter().min()?;
        Some(self.patterns[first].as_str())
    }

    /// The patterns, as given.
    #[must_use]
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// The patterns for messages: `zrep-*, daily-*`, or `no pattern`.
    #[must_use]
    pub fn describe(&self) -> String {
        if self.patterns.is_empty() {
            "no pattern".into()
        } else {
            self.patterns.join(", ")
        }
    }
}

impl PartialEq for Selection {
    fn eq(&self, other: &Self) -> bool {
        self.patterns == other.patterns
    }
}

impl Eq for Selection {}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// A snapshot as listed on either side.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Snap {
    /// Short name, i.e. the part after `@`.
    pub name: String,
    /// The snapshot's GUID (identical on both sides of a replication).
    pub guid: u64,
    /// Transaction group in which the snapshot was created.
    pub createtxg: u64,
}

/// A bookmark on the source side.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bookmark {
    /// Short name, i.e. the part after `#`.
    pub name: String,
    /// GUID of the snapshot the bookmark was created from.
    pub guid: u64,
    /// Transaction group of the snapshot the bookmark was created from.
    pub createtxg: u64,
}

/// Everything the planner needs to know about the source dataset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceState {
    /// Source snapshots, in any order.
    pub snapshots: Vec<Snap>,
    /// Source bookmarks, in any order.
    pub bookmarks: Vec<Bookmark>,
}

/// Partial-receive state found on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeInfo {
    /// The opaque `receive_resume_token`.
    pub token: String,
    /// GUID of the snapshot being received.
    pub toguid: u64,
    /// GUID of the incremental base, `None` for a full stream.
    pub fromguid: Option<u64>,
}

/// Everything the planner needs to know about the target dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetState {
    /// The target dataset does not exist.
    Absent,
    /// The target dataset exists.
    Present {
        /// Target snapshots, in any order.
        snapshots: Vec<Snap>,
        /// Whether data was written since the newest target snapshot.
        modified: bool,
        /// The pending resumable receive, if any.
        resume: Option<ResumeInfo>,
    },
}

/// What the user asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// Short name of the source snapshot to replicate up to; `None` means the
    /// newest source snapshot.
    pub up_to: Option<String>,
    /// Allow destructive actions on the target (rollback, destroying
    /// diverged snapshots).
    pub force: bool,
    /// Which source snapshots travel; `None` sends every one. See the module
    /// documentation's *Snapshot selection*.
    pub select: Option<Selection>,
    /// Short name of a source snapshot that travels even when `select` does
    /// not match it: the run's own new snapshot. Like `up_to`, it must exist
    /// on the source; when it is newer than `up_to` it is not sent.
    pub always: Option<String>,
    /// On a first run (target absent, or empty after discarding a partial full
    /// receive), send one full stream of the newest selected snapshot instead
    /// of the whole history. No effect when the target has a common snapshot.
    pub newest_only: bool,
}

/// The incremental source of a send, on the source side.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Base {
    /// A source snapshot, by short name.
    Snapshot(String),
    /// A source bookmark, by short name.
    Bookmark(String),
}

/// One stream to send: from `from` (or a full stream) to the snapshot `to`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Step {
    /// Incremental base; `None` for a full stream.
    pub from: Option<Base>,
    /// Short name of the source snapshot to send.
    pub to: String,
    /// GUID of the snapshot `to`.
    pub to_guid: u64,
    /// Source snapshots this step passes over and does not send: those between
    /// `from` and `to` for an incremental, those older than `to` for a full
    /// stream. Always 0 without [`Request::select`] and
    /// [`Request::newest_only`].
    pub skipped: usize,
}

/// Coarse classification of a [`Plan`] (what the first transfer is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The first transfer is a full stream.
    Full,
    /// The first transfer is an incremental stream.
    Incremental,
    /// The first transfer resumes an interrupted receive.
    Resume,
    /// Nothing has to be transferred.
    Noop,
}

/// The planner's decision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// A valid resume token to finish first. The step it completes is not
    /// repeated in [`Plan::steps`].
    pub resume: Option<String>,
    /// A stale resume token to abort before anything else (its snapshot is
    /// gone from the source, or it does not fit the plan).
    pub discard_resume: Option<String>,
    /// Target snapshot (short target name) to roll back to; set only with
    /// `force`. Every newer target snapshot is destroyed by the rollback.
    pub rollback_to: Option<String>,
    /// Target snapshots (short target names) newer than the common one that
    /// the rollback destroys; set only with `force`, for logs and dry runs.
    pub destroy_on_target: Vec<String>,
    /// Newest common snapshot, as named on the source. `None` for a full
    /// send, for a resumed full receive, and when the base is a bookmark (see
    /// the first step's [`Step::from`]).
    pub common: Option<String>,
    /// Streams to send, in order.
    pub steps: Vec<Step>,
    /// The full stream is the newest selected snapshot alone
    /// ([`Request::newest_only`] on a first run); its [`Step::skipped`] counts
    /// the older history left behind.
    pub newest_only: bool,
}

impl Plan {
    /// True when the plan does nothing at all: no transfer, no resume, no
    /// rollback and no stale token to abort.
    #[must_use]
    pub fn is_noop(&self) -> bool {
        self.steps.is_empty()
            && self.resume.is_none()
            && self.discard_resume.is_none()
            && self.rollback_to.is_none()
    }

    /// The plan in a few words, for `--dry-run` and `-v`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.discard_resume.is_some() {
            parts.push("discard stale resume state".to_string());
        }
        if let Some(r) = &self.rollback_to {
            parts.push(format!("roll target back to @{r}"));
        }
        if self.resume.is_some() {
            parts.push("resume interrupted transfer".to_string());
        }
        for s in &self.steps {
            let mut part = match &s.from {
                None => format!("full @{}", s.to),
                Some(Base::Snapshot(f)) => format!("@{f} -> @{}", s.to),
                Some(Base::Bookmark(f)) => format!("#{f} -> @{}", s.to),
            };
            if s.skipped > 0 {
                let n = s.skipped;
                part.push_str(&match (&s.from, self.newest_only) {
                    (None, true) => {
                        format!(" (newest only; {n} older snapshot{} not sent)", plural(n))
                    }
                    (None, false) => format!(" ({n} older unselected not sent)"),
                    (Some(_), _) => format!(" ({n} unselected skipped)"),
                });
            }
            parts.push(part);
        }
        if parts.is_empty() {
            "up to date".into()
        } else {
            parts.join(", ")
        }
    }

    /// Classifies the first transfer of the plan. Housekeeping (rollback,
    /// discarding a stale token) does not count as a transfer.
    #[must_use]
    pub fn mode(&self) -> Mode {
        if self.resume.is_some() {
            Mode::Resume
        } else {
            match self.steps.first() {
                None => Mode::Noop,
                Some(Step { from: None, .. }) => Mode::Full,
                Some(_) => Mode::Incremental,
            }
        }
    }
}

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// The source dataset has no snapshots.
    NoSourceSnapshots,
    /// The requested `up_to` snapshot does not exist on the source.
    UnknownSnapshot(String),
    /// The target exists but has no snapshots (and no usable partial receive).
    TargetExistsWithoutSnapshots,
    /// Source and target share no snapshot or bookmark GUID.
    NoCommonSnapshot {
        /// Newest target snapshot (short target name).
        target_newest: String,
    },
    /// The target has snapshots newer than the newest common one.
    Diverged {
        /// The newest common snapshot or bookmark (short target name).
        common: String,
        /// Target snapshots after it (short target names), oldest first.
        target_extra: Vec<String>,
    },
    /// The target was written to since its newest snapshot.
    TargetModified {
        /// Newest target snapshot (short target name).
        newest: String,
    },
    /// A first run (nothing on the target to build on) found no source
    /// snapshot that [`Request::select`] selects.
    NothingSelected {
        /// The selection's patterns ([`Selection::describe`]).
        selection: String,
        /// How many source snapshots were considered.
        candidates: usize,
    },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::NoSourceSnapshots => {
                write!(f, "source has no snapshots; take a snapshot first")
            }
            PlanError::UnknownSnapshot(name) => {
                write!(f, "snapshot @{name} does not exist on the source")
            }
            PlanError::TargetExistsWithoutSnapshots => write!(
                f,
                "target exists and has no snapshots; choose a new dataset under it"
            ),
            PlanError::NoCommonSnapshot { target_newest } => write!(
                f,
                "source and target have no common snapshot (newest target snapshot is \
                 @{target_newest}); replicate to a new dataset or destroy the target"
            ),
            PlanError::Diverged {
                common,
                target_extra,
            } => {
                write!(
                    f,
                    "target has diverged: {} snapshot(s) after the common snapshot {common}: ",
                    target_extra.len()
                )?;
                for (i, name) in target_extra.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "@{name}")?;
                }
                write!(f, "; use force to roll back and destroy them")
            }
            PlanError::TargetModified { newest } => write!(
                f,
                "target was modified since its newest snapshot @{newest}; \
                 use force to roll back"
            ),
            PlanError::NothingSelected {
                selection,
                candidates,
            } => write!(
                f,
                "no source snapshot to send: none of the {candidates} source snapshot{} \
                 matches the selection ({selection}); take a matching snapshot or widen \
                 the selection",
                plural(*candidates)
            ),
        }
    }
}

impl std::error::Error for PlanError {}

/// The base found on the target, in terms of the source.
enum Found {
    /// Index into the sorted source snapshots.
    Snapshot(usize),
    /// Index into the sorted source bookmarks.
    Bookmark(usize),
}

/// Sorts by `createtxg`, then name, for a deterministic order.
fn sorted_snaps(list: &[Snap]) -> Vec<&Snap> {
    let mut v: Vec<&Snap> = list.iter().collect();
    v.sort_by(|a, b| (a.createtxg, &a.name).cmp(&(b.createtxg, &b.name)));
    v
}

/// "s" for counts other than one.
fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Steps through `chain` (ascending indices into `src`), the first one from
/// `from`, whose first successor in `src` is at index `start` (0 for a full
/// stream). Each step counts the source snapshots it passes over.
fn chain_steps(src: &[&Snap], from: Option<Base>, start: usize, chain: &[usize]) -> Vec<Step> {
    let mut steps = Vec::with_capacity(chain.len());
    let mut from = from;
    let mut next = start;
    for &i in chain {
        let s = src[i];
        steps.push(Step {
            from: from.take(),
            to: s.name.clone(),
            to_guid: s.guid,
            skipped: i - next,
        });
        from = Some(Base::Snapshot(s.name.clone()));
        next = i + 1;
    }
    steps
}

/// The indices in `chosen` that are `start` or more.
fn from_index(chosen: &[usize], start: usize) -> &[usize] {
    &chosen[chosen.partition_point(|&i| i < start)..]
}

/// The candidates that travel (ascending indices into `src`): every source
/// snapshot up to `up_to` that the selection matches, plus `up_to` (when
/// requested) and [`Request::always`].
fn choose(src: &[&Snap], up_to: usize, req: &Request) -> Result<Vec<usize>, PlanError> {
    if let Some(name) = &req.always {
        if !src.iter().any(|s| &s.name == name) {
            return Err(PlanError::UnknownSnapshot(name.clone()));
        }
    }
    Ok((0..=up_to)
        .filter(|&i| {
            let name = &src[i].name;
            (i == up_to && req.up_to.is_some())
                || req.always.as_ref() == Some(name)
                || req.select.as_ref().map_or(true, |sel| sel.matches(name))
        })
        .collect())
}

/// A first run: a full stream of the oldest selected candidate, then
/// incrementals; or, with [`Request::newest_only`], the newest one alone.
fn full_plan(
    src: &[&Snap],
    chosen: &[usize],
    up_to: usize,
    req: &Request,
) -> Result<Plan, PlanError> {
    let Some(&newest) = chosen.last() else {
        return Err(PlanError::NothingSelected {
            selection: req
                .select
                .as_ref()
                .map_or_else(|| "every snapshot".into(), Selection::describe),
            candidates: up_to + 1,
        });
    };
    Ok(if req.newest_only {
        Plan {
            steps: chain_steps(src, None, 0, &[newest]),
            newest_only: true,
            ..Plan::default()
        }
    } else {
        Plan {
            steps: chain_steps(src, None, 0, chosen),
            ..Plan::default()
        }
    })
}

/// The incremental base: the match with the greatest source createtxg (snapshots win
/// ties against bookmarks); among duplicate target GUIDs, the newest target position.
/// Returns the target position and what matched on the source.
fn find_base(src: &[&Snap], bms: &[&Bookmark], tgt: &[&Snap]) -> Option<(usize, Found)> {
    // GUID lookups on the source. Later (newer) entries win on duplicates.
    let snap_by_guid: HashMap<u64, usize> =
        src.iter().enumerate().map(|(i, s)| (s.guid, i)).collect();
    let bm_by_guid: HashMap<u64, usize> =
        bms.iter().enumerate().map(|(i, b)| (b.guid, i)).collect();
    // Key: (source createtxg, snapshot-preferred flag, target position).
    let mut best: Option<((u64, bool, usize), Found)> = None;
    for (pos, t) in tgt.iter().enumerate() {
        let mut consider = |key: (u64, bool, usize), found: Found| {
            if best.as_ref().map_or(true, |(k, _)| key > *k) {
                best = Some((key, found));
            }
        };
        if let Some(&i) = snap_by_guid.get(&t.guid) {
            consider((src[i].createtxg, true, pos), Found::Snapshot(i));
        }
        if let Some(&i) = bm_by_guid.get(&t.guid) {
            consider((bms[i].createtxg, false, pos), Found::Bookmark(i));
        }
    }
    best.map(|((_, _, pos), found)| (pos, found))
}

/// Decides what to send next. See the module documentation for the rules.
///
/// # Errors
///
/// Returns a [`PlanError`] when the source has no snapshots, `up_to` or
/// `always` is not a source snapshot, the target exists without snapshots, the
/// two sides share no snapshot or bookmark, a first run has no selected
/// snapshot to send, or (without `force`) the target has diverged or was
/// modified since its newest snapshot.
pub fn plan(source: &SourceState, target: &TargetState, req: &Request) -> Result<Plan, PlanError> {
    let src = sorted_snaps(&source.snapshots);
    if src.is_empty() {
        return Err(PlanError::NoSourceSnapshots);
    }
    let up_to = match &req.up_to {
        None => src.len() - 1,
        Some(name) => src
            .iter()
            .position(|s| &s.name == name)
            .ok_or_else(|| PlanError::UnknownSnapshot(name.clone()))?,
    };
    let chosen = choose(&src, up_to, req)?;

    let (tgt_list, modified, resume) = match target {
        TargetState::Absent => return full_plan(&src, &chosen, up_to, req),
        TargetState::Present {
            snapshots,
            modified,
            resume,
        } => (snapshots, *modified, resume.as_ref()),
    };

    let tgt = sorted_snaps(tgt_list);
    if tgt.is_empty() {
        return plan_empty_target(&src, &chosen, up_to, resume, req);
    }

    let mut bms: Vec<&Bookmark> = source.bookmarks.iter().collect();
    bms.sort_by(|a, b| (a.createtxg, &a.name).cmp(&(b.createtxg, &b.name)));
    let Some((tpos, found)) = find_base(&src, &bms, &tgt) else {
        return Err(PlanError::NoCommonSnapshot {
            target_newest: tgt[tgt.len() - 1].name.clone(),
        });
    };

    let common_target = tgt[tpos].name.clone();
    let extra: Vec<String> = tgt[tpos + 1..].iter().map(|s| s.name.clone()).collect();
    let mut plan = Plan::default();
    if !extra.is_empty() {
        if !req.force {
            return Err(PlanError::Diverged {
                common: common_target,
                target_extra: extra,
            });
        }
        plan.rollback_to = Some(common_target.clone());
        plan.destroy_on_target = extra;
    }
    if modified {
        if !req.force {
            return Err(PlanError::TargetModified {
                newest: tgt[tgt.len() - 1].name.clone(),
            });
        }
        plan.rollback_to = Some(common_target);
    }

    // The base may be unselected; the steps go through selected candidates
    // only (none when the base is at or after up_to).
    let base_guid = match found {
        Found::Snapshot(i) => {
            let base = src[i];
            plan.common = Some(base.name.clone());
            let from = Some(Base::Snapshot(base.name.clone()));
            plan.steps = chain_steps(&src, from, i + 1, from_index(&chosen, i + 1));
            base.guid
        }
        Found::Bookmark(b) => {
            let bm = bms[b];
            let first = src.partition_point(|s| s.createtxg <= bm.createtxg);
            let from = Some(Base::Bookmark(bm.name.clone()));
            plan.steps = chain_steps(&src, from, first, from_index(&chosen, first));
            bm.guid
        }
    };

    if let Some(info) = resume {
        let fits = plan.destroy_on_target.is_empty()
            && info.fromguid == Some(base_guid)
            && plan.steps.first().is_some_and(|s| s.to_guid == info.toguid);
        if fits {
            plan.steps.remove(0);
            plan.resume = Some(info.token.clone());
        } else {
            plan.discard_resume = Some(info.token.clone());
        }
    }
    Ok(plan)
}

/// Plans for a target dataset that exists but has no snapshots.
fn plan_empty_target(
    src: &[&Snap],
    chosen: &[usize],
    up_to: usize,
    resume: Option<&ResumeInfo>,
    req: &Request,
) -> Result<Plan, PlanError> {
    let Some(info) = resume else {
        return Err(PlanError::TargetExistsWithoutSnapshots);
    };
    if info.fromguid.is_some() {
        // An incremental receive cannot be pending on a dataset without
        // snapshots; aborting it would leave the dataset in place.
        return Err(PlanError::TargetExistsWithoutSnapshots);
    }
    // Any candidate, selected or not: an earlier run chose it, and the full
    // stream is the costly one to repeat.
    match src[..=up_to].iter().position(|s| s.guid == info.toguid) {
        Some(i) => Ok(Plan {
            resume: Some(info.token.clone()),
            steps: chain_steps(
                src,
                Some(Base::Snapshot(src[i].name.clone())),
                i + 1,
                from_index(chosen, i + 1),
            ),
            ..Plan::default()
        }),
        // Aborting the partial full receive removes the dataset: send a full
        // stream as if the target were absent.
        None => Ok(Plan {
            discard_resume: Some(info.token.clone()),
            ..full_plan(src, chosen, up_to, req)?
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snaps(list: &[(&str, u64, u64)]) -> Vec<Snap> {
        list.iter()
            .map(|&(name, guid, createtxg)| Snap {
                name: name.to_string(),
                guid,
                createtxg,
            })
            .collect()
    }

    fn bookmarks(list: &[(&str, u64, u64)]) -> Vec<Bookmark> {
        list.iter()
            .map(|&(name, guid, createtxg)| Bookmark {
                name: name.to_string(),
                guid,
                createtxg,
            })
            .collect()
    }

    fn src(list: &[(&str, u64, u64)]) -> SourceState {
        SourceState {
            snapshots: snaps(list),
            bookmarks: Vec::new(),
        }
    }

    fn src_bm(list: &[(&str, u64, u64)], bms: &[(&str, u64, u64)]) -> SourceState {
        SourceState {
            snapshots: snaps(list),
            bookmarks: bookmarks(bms),
        }
    }

    fn tgt(list: &[(&str, u64, u64)]) -> TargetState {
        TargetState::Present {
            snapshots: snaps(list),
            modified: false,
            resume: None,
        }
    }

    fn tgt_modified(list: &[(&str, u64, u64)]) -> TargetState {
        TargetState::Present {
            snapshots: snaps(list),
            modified: true,
            resume: None,
        }
    }

    fn tgt_resume(list: &[(&str, u64, u64)], toguid: u64, fromguid: Option<u64>) -> TargetState {
        TargetState::Present {
            snapshots: snaps(list),
            modified: false,
            resume: Some(ResumeInfo {
                token: "TOKEN".to_string(),
                toguid,
                fromguid,
            }),
        }
    }

    fn newest() -> Request {
        Request::default()
    }

    fn forced() -> Request {
        Request {
            up_to: None,
            force: true,
            ..Request::default()
        }
    }

    fn up_to(name: &str) -> Request {
        Request {
            up_to: Some(name.to_string()),
            force: false,
            ..Request::default()
        }
    }

    fn full(to: &str, guid: u64) -> Step {
        Step {
            from: None,
            to: to.to_string(),
            to_guid: guid,
            skipped: 0,
        }
    }

    fn inc(from: &str, to: &str, guid: u64) -> Step {
        Step {
            from: Some(Base::Snapshot(from.to_string())),
            to: to.to_string(),
            to_guid: guid,
            skipped: 0,
        }
    }

    fn inc_bm(from: &str, to: &str, guid: u64) -> Step {
        Step {
            from: Some(Base::Bookmark(from.to_string())),
            to: to.to_string(),
            to_guid: guid,
            skipped: 0,
        }
    }

    const ABC: &[(&str, u64, u64)] = &[("a", 1, 10), ("b", 2, 20), ("c", 3, 30)];

    // ---- absent target -------------------------------------------------

    #[test]
    fn absent_single_snapshot() {
        let p = plan(&src(&[("a", 1, 10)]), &TargetState::Absent, &newest()).unwrap();
        assert_eq!(p.steps, vec![full("a", 1)]);
        assert_eq!(p.common, None);
        assert_eq!(p.mode(), Mode::Full);
        assert!(!p.is_noop());
    }

    #[test]
    fn absent_many_snapshots() {
        let p = plan(&src(ABC), &TargetState::Absent, &newest()).unwrap();
        assert_eq!(
            p.steps,
            vec![full("a", 1), inc("a", "b", 2), inc("b", "c", 3)]
        );
        assert_eq!(p.resume, None);
        assert_eq!(p.discard_resume, None);
        assert_eq!(p.rollback_to, None);
        assert!(p.destroy_on_target.is_empty());
    }

    #[test]
    fn absent_up_to_middle() {
        let p = plan(&src(ABC), &TargetState::Absent, &up_to("b")).unwrap();
        assert_eq!(p.steps, vec![full("a", 1), inc("a", "b", 2)]);
    }

    #[test]
    fn absent_up_to_oldest() {
        let p = plan(&src(ABC), &TargetState::Absent, &up_to("a")).unwrap();
        assert_eq!(p.steps, vec![full("a", 1)]);
    }

    #[test]
    fn absent_unsorted_source() {
        let s = src(&[("c", 3, 30), ("a", 1, 10), ("b", 2, 20)]);
        let p = plan(&s, &TargetState::Absent, &newest()).unwrap();
        assert_eq!(
            p.steps,
            vec![full("a", 1), inc("a", "b", 2), inc("b", "c", 3)]
        );
    }

    #[test]
    fn absent_ignores_bookmarks() {
        let s = src_bm(&[("b", 2, 20)], &[("a", 1, 10)]);
        let p = plan(&s, &TargetState::Absent, &newest()).unwrap();
        assert_eq!(p.steps, vec![full("b", 2)]);
    }

    // ---- source errors -------------------------------------------------

    #[test]
    fn empty_source_is_error() {
        let e = plan(&src(&[]), &TargetState::Absent, &newest()).unwrap_err();
        assert_eq!(e, PlanError::NoSourceSnapshots);
        assert!(e.to_string().contains("no snapshots"));
    }

    #[test]
    fn empty_source_with_bookmarks_is_error() {
        let s = src_bm(&[], &[("a", 1, 10)]);
        let e = plan(&s, &tgt(&[("a", 1, 10)]), &newest()).unwrap_err();
        assert_eq!(e, PlanError::NoSourceSnapshots);
    }

    #[test]
    fn unknown_up_to_is_error() {
        let e = plan(&src(ABC), &TargetState::Absent, &up_to("zz")).unwrap_err();
        assert_eq!(e, PlanError::UnknownSnapshot("zz".to_string()));
        assert!(e.to_string().contains("@zz"));
    }

    #[test]
    fn up_to_bookmark_name_is_unknown() {
        let s = src_bm(&[("a", 1, 10)], &[("b", 2, 20)]);
        let e = plan(&s, &TargetState::Absent, &up_to("b")).unwrap_err();
        assert_eq!(e, PlanError::UnknownSnapshot("b".to_string()));
    }

    // ---- incremental ---------------------------------------------------

    #[test]
    fn common_newest_is_noop() {
        let p = plan(&src(ABC), &tgt(ABC), &newest()).unwrap();
        assert!(p.is_noop());
        assert_eq!(p.mode(), Mode::Noop);
        assert_eq!(p.common.as_deref(), Some("c"));
    }

    #[test]
    fn common_is_up_to_is_noop() {
        let p = plan(&src(ABC), &tgt(&ABC[..2]), &up_to("b")).unwrap();
        assert!(p.is_noop());
        assert_eq!(p.common.as_deref(), Some("b"));
    }

    #[test]
    fn incremental_one_step() {
        let p = plan(&src(ABC), &tgt(&ABC[..2]), &newest()).unwrap();
        assert_eq!(p.steps, vec![inc("b", "c", 3)]);
        assert_eq!(p.common.as_deref(), Some("b"));
        assert_eq!(p.mode(), Mode::Incremental);
    }

    #[test]
    fn incremental_with_intermediates() {
        let p = plan(&src(ABC), &tgt(&ABC[..1]), &newest()).unwrap();
        assert_eq!(p.steps, vec![inc("a", "b", 2), inc("b", "c", 3)]);
        assert_eq!(p.common.as_deref(), Some("a"));
    }

    #[test]
    fn incremental_up_to_middle() {
        let s = src(&[("a", 1, 10), ("b", 2, 20), ("c", 3, 30), ("d", 4, 40)]);
        let p = plan(&s, &tgt(&[("a", 1, 10)]), &up_to("c")).unwrap();
        assert_eq!(p.steps, vec![inc("a", "b", 2), inc("b", "c", 3)]);
    }

    #[test]
    fn target_with_pruned_old_snapshots() {
        // The target keeps only c; source still has all.
        let p = plan(&src(ABC), &tgt(&[("b", 2, 20)]), &newest()).unwrap();
        assert_eq!(p.steps, vec![inc("b", "c", 3)]);
    }

    #[test]
    fn source_pruned_old_snapshots() {
        // Target has a, b; source pruned a.
        let s = src(&[("b", 2, 20), ("c", 3, 30)]);
        let p = plan(&s, &tgt(&ABC[..2]), &newest()).unwrap();
        assert_eq!(p.steps, vec![inc("b", "c", 3)]);
    }

    #[test]
    fn common_by_guid_when_renamed() {
        // Target's copy of b was renamed to "b-renamed"; GUID matches.
        let t = tgt(&[("a", 1, 10), ("b-renamed", 2, 20)]);
        let p = plan(&src(ABC), &t, &newest()).unwrap();
        assert_eq!(p.common.as_deref(), Some("b"));
        assert_eq!(p.steps, vec![inc("b", "c", 3)]);
    }

    #[test]
    fn renamed_common_rollback_uses_target_name() {
        let t = tgt_modified(&[("a", 1, 10), ("b-renamed", 2, 20)]);
        let p = plan(&src(ABC), &t, &forced()).unwrap();
        assert_eq!(p.rollback_to.as_deref(), Some("b-renamed"));
        assert_eq!(p.common.as_deref(), Some("b"));
    }

    #[test]
    fn same_name_different_guid_is_not_common() {
        let t = tgt(&[("a", 1, 10), ("b", 99, 20)]);
        let e = plan(&src(ABC), &t, &newest()).unwrap_err();
        assert_eq!(
            e,
            PlanError::Diverged {
                common: "a".to_string(),
                target_extra: vec!["b".to_string()],
            }
        );
    }

    #[test]
    fn same_names_all_different_guids_is_no_common() {
        let t = tgt(&[("a", 11, 10), ("b", 12, 20)]);
        let e = plan(&src(ABC), &t, &newest()).unwrap_err();
        assert_eq!(
            e,
            PlanError::NoCommonSnapshot {
                target_newest: "b".to_string()
            }
        );
        assert!(e.to_string().contains("@b"));
    }

    #[test]
    fn unsorted_inputs() {
        let s = src(&[("d", 4, 40), ("b", 2, 20), ("a", 1, 10), ("c", 3, 30)]);
        let t = tgt(&[("b", 2, 20), ("a", 1, 10)]);
        let p = plan(&s, &t, &newest()).unwrap();
        assert_eq!(p.common.as_deref(), Some("b"));
        assert_eq!(p.steps, vec![inc("b", "c", 3), inc("c", "d", 4)]);
    }

    #[test]
    fn target_createtxg_differs_from_source() {
        // Target txgs are the target pool's own; only the order matters.
        let t = tgt(&[("a", 1, 500), ("b", 2, 900)]);
        let p = plan(&src(ABC), &t, &newest()).unwrap();
        assert_eq!(p.steps, vec![inc("b", "c", 3)]);
    }

    #[test]
    fn duplicated_guids_on_target() {
        // Two target entries carry the same GUID (e.g. a clone's origin
        // listed alongside); the newest position wins, nothing diverges.
        let t = tgt(&[("a", 1, 10), ("b", 2, 20), ("b-clone", 2, 25)]);
        let p = plan(&src(ABC), &t, &newest()).unwrap();
        assert_eq!(p.common.as_deref(), Some("b"));
        assert_eq!(p.steps, vec![inc("b", "c", 3)]);
    }

    #[test]
    fn duplicated_older_guid_after_common_diverges() {
        // A target entry with an older GUID placed after the common one.
        let t = tgt(&[("a", 1, 10), ("b", 2, 20), ("a-again", 1, 25)]);
        let e = plan(&src(ABC), &t, &newest()).unwrap_err();
        assert_eq!(
            e,
            PlanError::Diverged {
                common: "b".to_string(),
                target_extra: vec!["a-again".to_string()],
            }
        );
    }

    // ---- bookmarks -----------------------------------------------------

    #[test]
    fn bookmark_bridges_pruned_common() {
        // Source pruned b but kept #b; target's newest is b.
        let s = src_bm(&[("c", 3, 30), ("d", 4, 40)], &[("b", 2, 20)]);
        let t = tgt(&[("a", 1, 10), ("b", 2, 20)]);
        let p = plan(&s, &t, &newest()).unwrap();
        assert_eq!(p.common, None);
        assert_eq!(p.steps, vec![inc_bm("b", "c", 3), inc("c", "d", 4)]);
        assert_eq!(p.mode(), Mode::Incremental);
    }

    #[test]
    fn bookmark_newer_than_common_snapshot_wins() {
        // a is on both; b was pruned on source but bookmarked.
        let s = src_bm(&[("a", 1, 10), ("c", 3, 30)], &[("b", 2, 20)]);
        let t = tgt(&[("a", 1, 10), ("b", 2, 20)]);
        let p = plan(&s, &t, &newest()).unwrap();
        assert_eq!(p.steps, vec![inc_bm("b", "c", 3)]);
    }

    #[test]
    fn bookmark_older_than_common_ignored() {
        let s = src_bm(ABC, &[("a-bm", 1, 10)]);
        let t = tgt(&ABC[..2]);
        let p = plan(&s, &t, &newest()).unwrap();
        assert_eq!(p.common.as_deref(), Some("b"));
        assert_eq!(p.steps, vec![inc("b", "c", 3)]);
    }

    #[test]
    fn snapshot_preferred_over_bookmark_of_same_guid() {
        let s = src_bm(ABC, &[("b", 2, 20)]);
        let p = plan(&s, &tgt(&ABC[..2]), &newest()).unwrap();
        assert_eq!(p.steps, vec![inc("b", "c", 3)]);
    }

    #[test]
    fn bookmark_with_renamed_name() {
        let s = src_bm(&[("c", 3, 30)], &[("repl-b", 2, 20)]);
        let p = plan(&s, &tgt(&[("b", 2, 20)]), &newest()).unwrap();
        assert_eq!(p.steps, vec![inc_bm("repl-b", "c", 3)]);
    }

    #[test]
    fn bookmark_newer_than_up_to_is_noop() {
        let s = src_bm(&[("a", 1, 10), ("c", 3, 30)], &[("b", 2, 20)]);
        let p = plan(&s, &tgt(&[("b", 2, 20)]), &up_to("a")).unwrap();
        assert!(p.is_noop());
    }

    #[test]
    fn bookmark_divergence_needs_force() {
        let s = src_bm(&[("c", 3, 30)], &[("b", 2, 20)]);
        let t = tgt(&[("b", 2, 20), ("x", 77, 25)]);
        let e = plan(&s, &t, &newest()).unwrap_err();
        assert_eq!(
            e,
            PlanError::Diverged {
                common: "b".to_string(),
                target_extra: vec!["x".to_string()],
            }
        );
        let p = plan(&s, &t, &forced()).unwrap();
        assert_eq!(p.rollback_to.as_deref(), Some("b"));
        assert_eq!(p.destroy_on_target, vec!["x".to_string()]);
        assert_eq!(p.steps, vec![inc_bm("b", "c", 3)]);
    }

    #[test]
    fn bookmark_with_unknown_guid_does_not_help() {
        let s = src_bm(&[("c", 3, 30)], &[("b", 2, 20)]);
        let e = plan(&s, &tgt(&[("a", 1, 10)]), &newest()).unwrap_err();
        assert_eq!(
            e,
            PlanError::NoCommonSnapshot {
                target_newest: "a".to_string()
            }
        );
    }

    // ---- target errors, divergence, modification -----------------------

    #[test]
    fn target_without_snapshots_is_error() {
        let e = plan(&src(ABC), &tgt(&[]), &newest()).unwrap_err();
        assert_eq!(e, PlanError::TargetExistsWithoutSnapshots);
        assert!(e.to_string().contains("new dataset under it"));
    }

    #[test]
    fn target_without_snapshots_force_is_still_error() {
        let e = plan(&src(ABC), &tgt(&[]), &forced()).unwrap_err();
        assert_eq!(e, PlanError::TargetExistsWithoutSnapshots);
    }

    #[test]
    fn no_common_with_force_is_still_error() {
        let e = plan(&src(ABC), &tgt(&[("x", 9, 5)]), &forced()).unwrap_err();
        assert_eq!(
            e,
            PlanError::NoCommonSnapshot {
                target_newest: "x".to_string()
            }
        );
    }

    #[test]
    fn divergence_without_force() {
        let t = tgt(&[("a", 1, 10), ("x", 50, 15), ("y", 51, 16)]);
        let e = plan(&src(ABC), &t, &newest()).unwrap_err();
        assert_eq!(
            e,
            PlanError::Diverged {
                common: "a".to_string(),
                target_extra: vec!["x".to_string(), "y".to_string()],
            }
        );
        let msg = e.to_string();
        assert!(msg.contains("@x, @y"), "{msg}");
    }

    #[test]
    fn divergence_with_force() {
        let t = tgt(&[("a", 1, 10), ("x", 50, 15), ("y", 51, 16)]);
        let p = plan(&src(ABC), &t, &forced()).unwrap();
        assert_eq!(p.rollback_to.as_deref(), Some("a"));
        assert_eq!(p.destroy_on_target, vec!["x".to_string(), "y".to_string()]);
        assert_eq!(p.common.as_deref(), Some("a"));
        assert_eq!(p.steps, vec![inc("a", "b", 2), inc("b", "c", 3)]);
        assert!(!p.is_noop());
    }

    #[test]
    fn divergence_at_newest_with_force_only_rolls_back() {
        let t = tgt(&[("a", 1, 10), ("b", 2, 20), ("c", 3, 30), ("x", 8, 35)]);
        let p = plan(&src(ABC), &t, &forced()).unwrap();
        assert_eq!(p.rollback_to.as_deref(), Some("c"));
        assert_eq!(p.destroy_on_target, vec!["x".to_string()]);
        assert!(p.steps.is_empty());
        assert_eq!(p.mode(), Mode::Noop);
        assert!(!p.is_noop());
    }

    #[test]
    fn target_modified_without_force() {
        let e = plan(&src(ABC), &tgt_modified(&ABC[..2]), &newest()).unwrap_err();
        assert_eq!(
            e,
            PlanError::TargetModified {
                newest: "b".to_string()
            }
        );
        assert!(e.to_string().contains("@b"));
    }

    #[test]
    fn target_modified_with_force() {
        let p = plan(&src(ABC), &tgt_modified(&ABC[..2]), &forced()).unwrap();
        assert_eq!(p.rollback_to.as_deref(), Some("b"));
        assert!(p.destroy_on_target.is_empty());
        assert_eq!(p.steps, vec![inc("b", "c", 3)]);
    }

    #[test]
    fn target_modified_and_up_to_date_with_force() {
        let p = plan(&src(ABC), &tgt_modified(ABC), &forced()).unwrap();
        assert_eq!(p.rollback_to.as_deref(), Some("c"));
        assert!(p.steps.is_empty());
        assert!(!p.is_noop());
    }

    #[test]
    fn divergence_reported_before_modification() {
        let t = TargetState::Present {
            snapshots: snaps(&[("a", 1, 10), ("x", 9, 12)]),
            modified: true,
            resume: None,
        };
        let e = plan(&src(ABC), &t, &newest()).unwrap_err();
        assert!(matches!(e, PlanError::Diverged { .. }));
        let p = plan(&src(ABC), &t, &forced()).unwrap();
        assert_eq!(p.rollback_to.as_deref(), Some("a"));
        assert_eq!(p.destroy_on_target, vec!["x".to_string()]);
    }

    // ---- target ahead ------------------------------------------------------

    #[test]
    fn target_ahead_of_up_to_is_noop() {
        let p = plan(&src(ABC), &tgt(ABC), &up_to("a")).unwrap();
        assert!(p.is_noop());
        assert_eq!(p.common.as_deref(), Some("c"));
    }

    #[test]
    fn target_ahead_with_only_newer_snapshot() {
        let p = plan(&src(ABC), &tgt(&[("c", 3, 30)]), &up_to("b")).unwrap();
        assert!(p.is_noop());
        assert_eq!(p.common.as_deref(), Some("c"));
    }

    // ---- resume ------------------------------------------------------------

    #[test]
    fn resume_valid_incremental() {
        let t = tgt_resume(&ABC[..1], 2, Some(1));
        let p = plan(&src(ABC), &t, &newest()).unwrap();
        assert_eq!(p.resume.as_deref(), Some("TOKEN"));
        assert_eq!(p.discard_resume, None);
        assert_eq!(p.steps, vec![inc("b", "c", 3)]);
        assert_eq!(p.mode(), Mode::Resume);
    }

    #[test]
    fn resume_valid_incremental_last_step() {
        let t = tgt_resume(&ABC[..2], 3, Some(2));
        let p = plan(&src(ABC), &t, &newest()).unwrap();
        assert_eq!(p.resume.as_deref(), Some("TOKEN"));
        assert!(p.steps.is_empty());
        assert_eq!(p.mode(), Mode::Resume);
        assert!(!p.is_noop());
    }

    #[test]
    fn resume_valid_from_bookmark() {
        let s = src_bm(&[("c", 3, 30), ("d", 4, 40)], &[("b", 2, 20)]);
        let t = tgt_resume(&[("b", 2, 20)], 3, Some(2));
        let p = plan(&s, &t, &newest()).unwrap();
        assert_eq!(p.resume.as_deref(), Some("TOKEN"));
        assert_eq!(p.steps, vec![inc("c", "d", 4)]);
    }

    #[test]
    fn resume_valid_full() {
        let t = tgt_resume(&[], 1, None);
        let p = plan(&src(ABC), &t, &newest()).unwrap();
        assert_eq!(p.resume.as_deref(), Some("TOKEN"));
        assert_eq!(p.steps, vec![inc("a", "b", 2), inc("b", "c", 3)]);
        assert_eq!(p.common, None);
        assert_eq!(p.mode(), Mode::Resume);
    }

    #[test]
    fn resume_valid_full_of_later_snapshot() {
        let t = tgt_resume(&[], 2, None);
        let p = plan(&src(ABC), &t, &newest()).unwrap();
        assert_eq!(p.resume.as_deref(), Some("TOKEN"));
        assert_eq!(p.steps, vec![inc("b", "c", 3)]);
    }

    #[test]
    fn resume_stale_full_toguid_gone() {
        let t = tgt_resume(&[], 42, None);
        let p = plan(&src(ABC), &t, &newest()).unwrap();
        assert_eq!(p.resume, None);
        assert_eq!(p.discard_resume.as_deref(), Some("TOKEN"));
        assert_eq!(
            p.steps,
            vec![full("a", 1), inc("a", "b", 2), inc("b", "c", 3)]
        );
        assert_eq!(p.mode(), Mode::Full);
    }

    #[test]
    fn resume_full_beyond_up_to_is_discarded() {
        let t = tgt_resume(&[], 3, None);
        let p = plan(&src(ABC), &t, &up_to("b")).unwrap();
        assert_eq!(p.discard_resume.as_deref(), Some("TOKEN"));
        assert_eq!(p.steps, vec![full("a", 1), inc("a", "b", 2)]);
    }

    #[test]
    fn resume_incremental_token_on_empty_target_is_error() {
        let t = tgt_resume(&[], 2, Some(1));
        let e = plan(&src(ABC), &t, &newest()).unwrap_err();
        assert_eq!(e, PlanError::TargetExistsWithoutSnapshots);
    }

    #[test]
    fn resume_stale_toguid_gone() {
        let t = tgt_resume(&ABC[..1], 42, Some(1));
        let p = plan(&src(ABC), &t, &newest()).unwrap();
        assert_eq!(p.resume, None);
        assert_eq!(p.discard_resume.as_deref(), Some("TOKEN"));
        assert_eq!(p.steps, vec![inc("a", "b", 2), inc("b", "c", 3)]);
        assert_eq!(p.mode(), Mode::Incremental);
    }

    #[test]
    fn resume_stale_fromguid_mismatch() {
        let t = tgt_resume(&ABC[..2], 3, Some(1));
        let p = plan(&src(ABC), &t, &newest()).unwrap();
        assert_eq!(p.resume, None);
        assert_eq!(p.discard_resume.as_deref(), Some("TOKEN"));
        assert_eq!(p.steps, vec![inc("b", "c", 3)]);
    }

    #[test]
    fn resume_stale_skipping_intermediate() {
        // Token goes a -> c, but the plan sends a -> b first.
        let t = tgt_resume(&ABC[..1], 3, Some(1));
        let p = plan(&src(ABC), &t, &newest()).unwrap();
        assert_eq!(p.discard_resume.as_deref(), Some("TOKEN"));
        assert_eq!(p.steps, vec![inc("a", "b", 2), inc("b", "c", 3)]);
    }

    #[test]
    fn resume_full_token_on_target_with_snapshots_is_stale() {
        let t = tgt_resume(&ABC[..1], 2, None);
        let p = plan(&src(ABC), &t, &newest()).unwrap();
        assert_eq!(p.discard_resume.as_deref(), Some("TOKEN"));
        assert_eq!(p.steps.len(), 2);
    }

    #[test]
    fn resume_beyond_up_to_is_stale() {
        let t = tgt_resume(&ABC[..1], 3, Some(1));
        let p = plan(&src(ABC), &t, &up_to("a")).unwrap();
        assert_eq!(p.discard_resume.as_deref(), Some("TOKEN"));
        assert!(p.steps.is_empty());
        assert!(!p.is_noop());
        assert_eq!(p.mode(), Mode::Noop);
    }

    #[test]
    fn resume_discarded_on_forced_divergence() {
        let t = TargetState::Present {
            snapshots: snaps(&[("a", 1, 10), ("x", 9, 15)]),
            modified: false,
            resume: Some(ResumeInfo {
                token: "TOKEN".to_string(),
                toguid: 2,
                fromguid: Some(9),
            }),
        };
        let p = plan(&src(ABC), &t, &forced()).unwrap();
        assert_eq!(p.discard_resume.as_deref(), Some("TOKEN"));
        assert_eq!(p.rollback_to.as_deref(), Some("a"));
        assert_eq!(p.steps, vec![inc("a", "b", 2), inc("b", "c", 3)]);
    }

    #[test]
    fn resume_with_modified_target_needs_force() {
        let t = TargetState::Present {
            snapshots: snaps(&ABC[..1]),
            modified: true,
            resume: Some(ResumeInfo {
                token: "TOKEN".to_string(),
                toguid: 2,
                fromguid: Some(1),
            }),
        };
        let e = plan(&src(ABC), &t, &newest()).unwrap_err();
        assert!(matches!(e, PlanError::TargetModified { .. }));
        let p = plan(&src(ABC), &t, &forced()).unwrap();
        assert_eq!(p.rollback_to.as_deref(), Some("a"));
        assert_eq!(p.resume.as_deref(), Some("TOKEN"));
    }

    // ---- selection ---------------------------------------------------------

    fn sel(patterns: &[&str]) -> Selection {
        let v: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        Selection::new(&v).unwrap()
    }

    fn select(patterns: &[&str]) -> Request {
        Request {
            select: Some(sel(patterns)),
            ..Request::default()
        }
    }

    fn skipping(mut step: Step, skipped: usize) -> Step {
        step.skipped = skipped;
        step
    }

    /// zrep's own snapshots with another tool's in between.
    const MIXED: &[(&str, u64, u64)] = &[
        ("zrep-1", 1, 10),
        ("hourly-2", 2, 20),
        ("hourly-3", 3, 30),
        ("zrep-4", 4, 40),
        ("zrep-5", 5, 50),
    ];

    #[test]
    fn selection_patterns() {
        let s = sel(&["zrep-*", "daily-{a,b}", "x?"]);
        assert!(s.matches("zrep-20260101T000000Z"));
        assert!(s.matches("daily-b"));
        assert!(s.matches("xy"));
        assert!(!s.matches("xyz"));
        assert!(!s.matches("hourly-1"));
        assert!(!s.matches("ZREP-1"));
        assert_eq!(s.matching("daily-a"), Some("daily-{a,b}"));
        assert_eq!(s.matching("hourly"), None);
        assert_eq!(s.describe(), "zrep-*, daily-{a,b}, x?");
        assert_eq!(s.to_string(), s.describe());
        assert_eq!(s.patterns().len(), 3);
        assert_eq!(s, sel(&["zrep-*", "daily-{a,b}", "x?"]));
        assert_ne!(s, sel(&["zrep-*"]));
        let none = sel(&[]);
        assert!(!none.matches("a"));
        assert_eq!(none.describe(), "no pattern");
    }

    #[test]
    fn selection_first_matching_pattern_wins() {
        let s = sel(&["*", "zrep-*"]);
        assert_eq!(s.matching("zrep-1"), Some("*"));
    }

    #[test]
    fn bad_selection_patterns() {
        for (pattern, why) in [
            (
                "a[",
                "bad snapshot pattern \"a[\": unclosed character class",
            ),
            (
                "{a,b",
                "bad snapshot pattern \"{a,b\": unclosed alternate group",
            ),
            ("", "bad snapshot pattern \"\": empty"),
            (
                "tank/ds@zrep-*",
                "bad snapshot pattern \"tank/ds@zrep-*\": contains '/'",
            ),
            (
                "@zrep-*",
                "contains '@'; patterns match short snapshot names",
            ),
            ("#b", "contains '#'"),
        ] {
            let e = Selection::new(&["ok-*".to_string(), pattern.to_string()]).unwrap_err();
            assert!(e.contains(why), "{pattern}: {e}");
        }
    }

    #[test]
    fn selection_skips_intermediates() {
        let p = plan(&src(MIXED), &tgt(&MIXED[..1]), &select(&["zrep-*"])).unwrap();
        assert_eq!(p.common.as_deref(), Some("zrep-1"));
        assert_eq!(
            p.steps,
            vec![
                skipping(inc("zrep-1", "zrep-4", 4), 2),
                inc("zrep-4", "zrep-5", 5)
            ]
        );
        assert_eq!(
            p.describe(),
            "@zrep-1 -> @zrep-4 (2 unselected skipped), @zrep-4 -> @zrep-5"
        );
        assert_eq!(p.mode(), Mode::Incremental);
    }

    #[test]
    fn selection_everything_is_the_plain_plan() {
        let all = select(&["*"]);
        let p = plan(&src(MIXED), &tgt(&MIXED[..1]), &all).unwrap();
        assert_eq!(p, plan(&src(MIXED), &tgt(&MIXED[..1]), &newest()).unwrap());
        assert_eq!(p.steps.len(), 4);
    }

    #[test]
    fn selection_base_unselected() {
        // An adopted target: its newest is another tool's snapshot.
        let s = src(&[
            ("syncoid_x", 1, 10),
            ("zrep-a", 2, 20),
            ("syncoid_y", 3, 30),
            ("zrep-b", 4, 40),
        ]);
        let t = tgt(&[("syncoid_x", 1, 10)]);
        let p = plan(&s, &t, &select(&["zrep-*"])).unwrap();
        assert_eq!(p.common.as_deref(), Some("syncoid_x"));
        assert_eq!(
            p.steps,
            vec![
                inc("syncoid_x", "zrep-a", 2),
                skipping(inc("zrep-a", "zrep-b", 4), 1)
            ]
        );
        assert_eq!(
            p.describe(),
            "@syncoid_x -> @zrep-a, @zrep-a -> @zrep-b (1 unselected skipped)"
        );
    }

    #[test]
    fn selection_base_unselected_and_straight_to_the_next() {
        let s = src(&[
            ("syncoid_x", 1, 10),
            ("syncoid_y", 2, 20),
            ("zrep-a", 3, 30),
        ]);
        let p = plan(&s, &tgt(&[("syncoid_x", 1, 10)]), &select(&["zrep-*"])).unwrap();
        assert_eq!(p.steps, vec![skipping(inc("syncoid_x", "zrep-a", 3), 1)]);
    }

    #[test]
    fn selection_nothing_after_base_is_up_to_date() {
        let s = src(&[
            ("zrep-a", 1, 10),
            ("syncoid_x", 2, 20),
            ("syncoid_y", 3, 30),
        ]);
        let p = plan(&s, &tgt(&[("zrep-a", 1, 10)]), &select(&["zrep-*"])).unwrap();
        assert!(p.is_noop());
        assert_eq!(p.common.as_deref(), Some("zrep-a"));
        assert_eq!(p.describe(), "up to date");
    }

    #[test]
    fn selection_common_found_among_unselected() {
        // The common snapshot is the newest unselected one, not the older
        // selected one the target also has.
        let s = src(&[("zrep-a", 1, 10), ("syncoid_x", 2, 20), ("zrep-b", 3, 30)]);
        let t = tgt(&[("zrep-a", 1, 10), ("syncoid_x", 2, 20)]);
        let p = plan(&s, &t, &select(&["zrep-*"])).unwrap();
        assert_eq!(p.common.as_deref(), Some("syncoid_x"));
        assert_eq!(p.steps, vec![inc("syncoid_x", "zrep-b", 3)]);
    }

    #[test]
    fn selection_bookmark_base() {
        // Source pruned b, kept #b; hourly-c is not selected.
        let s = src_bm(&[("hourly-c", 3, 30), ("zrep-d", 4, 40)], &[("b", 2, 20)]);
        let t = tgt(&[("a", 1, 10), ("b", 2, 20)]);
        let p = plan(&s, &t, &select(&["zrep-*"])).unwrap();
        assert_eq!(p.common, None);
        assert_eq!(p.steps, vec![skipping(inc_bm("b", "zrep-d", 4), 1)]);
        assert_eq!(p.describe(), "#b -> @zrep-d (1 unselected skipped)");
    }

    #[test]
    fn selection_bookmark_base_nothing_selected_after() {
        let s = src_bm(&[("hourly-c", 3, 30)], &[("b", 2, 20)]);
        let p = plan(&s, &tgt(&[("b", 2, 20)]), &select(&["zrep-*"])).unwrap();
        assert!(p.is_noop());
    }

    #[test]
    fn selection_up_to_unselected_still_travels() {
        let req = Request {
            up_to: Some("hourly-3".to_string()),
            ..select(&["zrep-*"])
        };
        let p = plan(&src(MIXED), &tgt(&MIXED[..1]), &req).unwrap();
        assert_eq!(p.steps, vec![skipping(inc("zrep-1", "hourly-3", 3), 1)]);
        let p = plan(&src(MIXED), &TargetState::Absent, &req).unwrap();
        assert_eq!(
            p.steps,
            vec![full("zrep-1", 1), skipping(inc("zrep-1", "hourly-3", 3), 1)]
        );
    }

    #[test]
    fn selection_always_travels() {
        let s = src(&[("zrep-a", 1, 10), ("hourly-b", 2, 20), ("manual", 3, 30)]);
        let req = Request {
            always: Some("manual".to_string()),
            ..select(&["zrep-*"])
        };
        let p = plan(&s, &tgt(&[("zrep-a", 1, 10)]), &req).unwrap();
        assert_eq!(p.steps, vec![skipping(inc("zrep-a", "manual", 3), 1)]);
        // Newer than up_to: not sent.
        let req = Request {
            up_to: Some("zrep-a".to_string()),
            ..req
        };
        let p = plan(&s, &TargetState::Absent, &req).unwrap();
        assert_eq!(p.steps, vec![full("zrep-a", 1)]);
    }

    #[test]
    fn selection_always_unknown_is_error() {
        let req = Request {
            always: Some("gone".to_string()),
            ..select(&["zrep-*"])
        };
        let e = plan(&src(MIXED), &TargetState::Absent, &req).unwrap_err();
        assert_eq!(e, PlanError::UnknownSnapshot("gone".to_string()));
    }

    #[test]
    fn selection_full_starts_at_oldest_selected() {
        let s = src(&[
            ("hourly-0", 9, 5),
            ("zrep-1", 1, 10),
            ("hourly-2", 2, 20),
            ("zrep-4", 4, 40),
        ]);
        let p = plan(&s, &TargetState::Absent, &select(&["zrep-*"])).unwrap();
        assert_eq!(
            p.steps,
            vec![
                skipping(full("zrep-1", 1), 1),
                skipping(inc("zrep-1", "zrep-4", 4), 1)
            ]
        );
        assert!(!p.newest_only);
        assert_eq!(
            p.describe(),
            "full @zrep-1 (1 older unselected not sent), @zrep-1 -> @zrep-4 (1 unselected skipped)"
        );
    }

    #[test]
    fn nothing_selected_on_first_run() {
        let e = plan(&src(MIXED), &TargetState::Absent, &select(&["daily-*"])).unwrap_err();
        assert_eq!(
            e,
            PlanError::NothingSelected {
                selection: "daily-*".to_string(),
                candidates: 5,
            }
        );
        assert_eq!(
            e.to_string(),
            "no source snapshot to send: none of the 5 source snapshots matches the \
             selection (daily-*); take a matching snapshot or widen the selection"
        );
        // Likewise after discarding a partial full receive.
        let t = tgt_resume(&[], 42, None);
        let e = plan(&src(MIXED), &t, &select(&["daily-*"])).unwrap_err();
        assert!(matches!(e, PlanError::NothingSelected { .. }));
        // With a target to build on, nothing selected is merely up to date.
        let p = plan(&src(MIXED), &tgt(&MIXED[..1]), &select(&["daily-*"])).unwrap();
        assert!(p.is_noop());
    }

    #[test]
    fn nothing_selected_singular() {
        let e = plan(
            &src(&MIXED[..1]),
            &TargetState::Absent,
            &select(&["daily-*"]),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("none of the 1 source snapshot matches"),
            "{e}"
        );
    }

    #[test]
    fn newest_only_on_absent_target_with_2000_snapshots() {
        let all = many(2000);
        let mut s = src(&as_refs(&all));
        s.snapshots.reverse();
        let req = Request {
            newest_only: true,
            ..Request::default()
        };
        let p = plan(&s, &TargetState::Absent, &req).unwrap();
        assert_eq!(p.steps, vec![skipping(full("s1999", 2999), 1999)]);
        assert!(p.newest_only);
        assert_eq!(p.mode(), Mode::Full);
        assert_eq!(
            p.describe(),
            "full @s1999 (newest only; 1999 older snapshots not sent)"
        );
    }

    #[test]
    fn newest_only_takes_newest_selected_or_up_to() {
        let req = Request {
            newest_only: true,
            ..select(&["hourly-*"])
        };
        let p = plan(&src(MIXED), &TargetState::Absent, &req).unwrap();
        assert_eq!(p.steps, vec![skipping(full("hourly-3", 3), 2)]);
        let req = Request {
            up_to: Some("zrep-4".to_string()),
            ..req
        };
        let p = plan(&src(MIXED), &TargetState::Absent, &req).unwrap();
        assert_eq!(p.steps, vec![skipping(full("zrep-4", 4), 3)]);
    }

    #[test]
    fn newest_only_single_snapshot_says_nothing_more() {
        let req = Request {
            newest_only: true,
            ..Request::default()
        };
        let p = plan(&src(&ABC[..1]), &TargetState::Absent, &req).unwrap();
        assert_eq!(p.steps, vec![full("a", 1)]);
        assert_eq!(p.describe(), "full @a");
        let p = plan(&src(&ABC[..2]), &TargetState::Absent, &req).unwrap();
        assert_eq!(
            p.describe(),
            "full @b (newest only; 1 older snapshot not sent)"
        );
    }

    #[test]
    fn newest_only_ignored_when_target_has_common() {
        let req = Request {
            newest_only: true,
            ..Request::default()
        };
        let p = plan(&src(ABC), &tgt(&ABC[..1]), &req).unwrap();
        assert_eq!(p.steps, vec![inc("a", "b", 2), inc("b", "c", 3)]);
        assert!(!p.newest_only);
        assert_eq!(p.describe(), "@a -> @b, @b -> @c");
    }

    #[test]
    fn newest_only_after_discarded_partial_full() {
        let req = Request {
            newest_only: true,
            ..Request::default()
        };
        let p = plan(&src(ABC), &tgt_resume(&[], 42, None), &req).unwrap();
        assert_eq!(p.discard_resume.as_deref(), Some("TOKEN"));
        assert_eq!(p.steps, vec![skipping(full("c", 3), 2)]);
        assert_eq!(
            p.describe(),
            "discard stale resume state, full @c (newest only; 2 older snapshots not sent)"
        );
    }

    #[test]
    fn newest_only_keeps_a_valid_partial_full() {
        let req = Request {
            newest_only: true,
            ..Request::default()
        };
        let p = plan(&src(ABC), &tgt_resume(&[], 1, None), &req).unwrap();
        assert_eq!(p.resume.as_deref(), Some("TOKEN"));
        assert_eq!(p.steps, vec![inc("a", "b", 2), inc("b", "c", 3)]);
    }

    #[test]
    fn resume_with_selection() {
        // The token is the first selected step, zrep-1 -> zrep-4.
        let t = tgt_resume(&MIXED[..1], 4, Some(1));
        let p = plan(&src(MIXED), &t, &select(&["zrep-*"])).unwrap();
        assert_eq!(p.resume.as_deref(), Some("TOKEN"));
        assert_eq!(p.discard_resume, None);
        assert_eq!(p.steps, vec![inc("zrep-4", "zrep-5", 5)]);
        assert_eq!(
            p.describe(),
            "resume interrupted transfer, @zrep-4 -> @zrep-5"
        );
    }

    #[test]
    fn resume_of_unselected_snapshot_is_stale() {
        // zrep-1 -> hourly-2 was under way before hourly-* left the selection.
        let t = tgt_resume(&MIXED[..1], 2, Some(1));
        let p = plan(&src(MIXED), &t, &select(&["zrep-*"])).unwrap();
        assert_eq!(p.resume, None);
        assert_eq!(p.discard_resume.as_deref(), Some("TOKEN"));
        assert_eq!(p.steps[0], skipping(inc("zrep-1", "zrep-4", 4), 2));
    }

    #[test]
    fn resume_full_with_selection() {
        // A partial full receive of an unselected candidate is still worth
        // finishing; the rest goes through the selected ones.
        let t = tgt_resume(&[], 2, None);
        let p = plan(&src(MIXED), &t, &select(&["zrep-*"])).unwrap();
        assert_eq!(p.resume.as_deref(), Some("TOKEN"));
        assert_eq!(
            p.steps,
            vec![
                skipping(inc("hourly-2", "zrep-4", 4), 1),
                inc("zrep-4", "zrep-5", 5)
            ]
        );
    }

    #[test]
    fn describe_without_selection_unchanged() {
        let p = plan(&src(ABC), &TargetState::Absent, &newest()).unwrap();
        assert_eq!(p.describe(), "full @a, @a -> @b, @b -> @c");
        let s = src_bm(&[("c", 3, 30)], &[("b", 2, 20)]);
        let p = plan(&s, &tgt(&[("b", 2, 20)]), &newest()).unwrap();
        assert_eq!(p.describe(), "#b -> @c");
    }

    // ---- Plan helpers ----------------------------------------------------

    #[test]
    fn default_plan_is_noop() {
        let p = Plan::default();
        assert!(p.is_noop());
        assert_eq!(p.mode(), Mode::Noop);
    }

    #[test]
    fn errors_implement_std_error() {
        let e: Box<dyn std::error::Error> = Box::new(PlanError::NoSourceSnapshots);
        assert!(!e.to_string().is_empty());
    }

    // ---- large lists -------------------------------------------------------

    fn many(n: u64) -> Vec<(String, u64, u64)> {
        (0..n)
            .map(|i| (format!("s{i:04}"), 1_000 + i, 10 * (i + 1)))
            .collect()
    }

    fn as_refs(v: &[(String, u64, u64)]) -> Vec<(&str, u64, u64)> {
        v.iter().map(|(n, g, t)| (n.as_str(), *g, *t)).collect()
    }

    #[test]
    fn large_absent() {
        let all = many(1000);
        let mut s = src(&as_refs(&all));
        s.snapshots.reverse();
        let p = plan(&s, &TargetState::Absent, &newest()).unwrap();
        assert_eq!(p.steps.len(), 1000);
        assert_eq!(p.steps[0], full("s0000", 1000));
        for (i, step) in p.steps.iter().enumerate().skip(1) {
            assert_eq!(step.to, all[i].0);
            assert_eq!(step.to_guid, all[i].1);
            assert_eq!(step.from, Some(Base::Snapshot(all[i - 1].0.clone())));
        }
    }

    #[test]
    fn large_incremental_and_up_to() {
        let all = many(1000);
        let refs = as_refs(&all);
        let s = src(&refs);
        let t = tgt(&refs[..600]);
        let p = plan(&s, &t, &newest()).unwrap();
        assert_eq!(p.common.as_deref(), Some("s0599"));
        assert_eq!(p.steps.len(), 400);
        assert_eq!(p.steps[0], inc("s0599", "s0600", 1600));
        assert_eq!(p.steps[399].to, "s0999");

        let p = plan(&s, &t, &up_to("s0700")).unwrap();
        assert_eq!(p.steps.len(), 101);
        assert_eq!(p.steps[100].to, "s0700");

        let p = plan(&s, &t, &up_to("s0100")).unwrap();
        assert!(p.is_noop());
        assert_eq!(p.common.as_deref(), Some("s0599"));
    }

    #[test]
    fn large_sparse_target() {
        // Target keeps every 10th snapshot up to 500; source keeps all.
        let all = many(1000);
        let refs = as_refs(&all);
        let kept: Vec<(&str, u64, u64)> = refs[..=500].iter().copied().step_by(10).collect();
        let p = plan(&src(&refs), &tgt(&kept), &newest()).unwrap();
        assert_eq!(p.common.as_deref(), Some("s0500"));
        assert_eq!(p.steps.len(), 499);
    }
}
