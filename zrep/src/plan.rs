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
//!   `zfs send -I` behaviour spelled out one snapshot at a time.
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

use std::collections::HashMap;
use std::fmt;

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

/// Single-increment steps through `chain`, the first one from `from`.
fn chain_steps(from: Option<Base>, chain: &[&Snap]) -> Vec<Step> {
    let mut steps = Vec::with_capacity(chain.len());
    let mut from = from;
    for s in chain {
        steps.push(Step {
            from: from.take(),
            to: s.name.clone(),
            to_guid: s.guid,
        });
        from = Some(Base::Snapshot(s.name.clone()));
    }
    steps
}

/// Full stream of the oldest candidate, then incrementals.
fn full_plan(candidates: &[&Snap]) -> Plan {
    Plan {
        steps: chain_steps(None, candidates),
        ..Plan::default()
    }
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
/// Returns a [`PlanError`] when the source has no snapshots, `up_to` is not a
/// source snapshot, the target exists without snapshots, the two sides share
/// no snapshot or bookmark, or (without `force`) the target has diverged or
/// was modified since its newest snapshot.
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
    let candidates = &src[..=up_to];

    let (tgt_list, modified, resume) = match target {
        TargetState::Absent => return Ok(full_plan(candidates)),
        TargetState::Present {
            snapshots,
            modified,
            resume,
        } => (snapshots, *modified, resume.as_ref()),
    };

    let tgt = sorted_snaps(tgt_list);
    if tgt.is_empty() {
        return plan_empty_target(candidates, resume);
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

    let base_guid = match found {
        Found::Snapshot(i) => {
            plan.common = Some(src[i].name.clone());
            if i < up_to {
                plan.steps = chain_steps(
                    Some(Base::Snapshot(src[i].name.clone())),
                    &candidates[i + 1..],
                );
            }
            src[i].guid
        }
        Found::Bookmark(b) => {
            let bm = bms[b];
            let first = candidates.partition_point(|s| s.createtxg <= bm.createtxg);
            plan.steps = chain_steps(Some(Base::Bookmark(bm.name.clone())), &candidates[first..]);
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
fn plan_empty_target(candidates: &[&Snap], resume: Option<&ResumeInfo>) -> Result<Plan, PlanError> {
    let Some(info) = resume else {
        return Err(PlanError::TargetExistsWithoutSnapshots);
    };
    if info.fromguid.is_some() {
        // An incremental receive cannot be pending on a dataset without
        // snapshots; aborting it would leave the dataset in place.
        return Err(PlanError::TargetExistsWithoutSnapshots);
    }
    match candidates.iter().position(|s| s.guid == info.toguid) {
        Some(i) => Ok(Plan {
            resume: Some(info.token.clone()),
            steps: chain_steps(
                Some(Base::Snapshot(candidates[i].name.clone())),
                &candidates[i + 1..],
            ),
            ..Plan::default()
        }),
        // Aborting the partial full receive removes the dataset: send a full
        // stream as if the target were absent.
        None => Ok(Plan {
            discard_resume: Some(info.token.clone()),
            ..full_plan(candidates)
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
        }
    }

    fn up_to(name: &str) -> Request {
        Request {
            up_to: Some(name.to_string()),
            force: false,
        }
    }

    fn full(to: &str, guid: u64) -> Step {
        Step {
            from: None,
            to: to.to_string(),
            to_guid: guid,
        }
    }

    fn inc(from: &str, to: &str, guid: u64) -> Step {
        Step {
            from: Some(Base::Snapshot(from.to_string())),
            to: to.to_string(),
            to_guid: guid,
        }
    }

    fn inc_bm(from: &str, to: &str, guid: u64) -> Step {
        Step {
            from: Some(Base::Bookmark(from.to_string())),
            to: to.to_string(),
            to_guid: guid,
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
