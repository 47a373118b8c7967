//! A job with a target and no source, run on the host that receives the backups
//! (whose `zrep serve --receive-only` refuses the pushing client's prunes): it prunes
//! the local target tree by `keep_target`, with the protections of a replication's
//! target prune that hold without knowing the source. Only zrep's own snapshots are
//! candidates; held snapshots stay (the pushing zrep holds its cursor, the newest
//! snapshot both sides have, with `zrep-<id>`); the newest snapshot of each dataset
//! stays (the likely newest common one, held or not); snapshots named more than a day
//! ahead stay and never count. A dataset another zrep of the same user is receiving
//! into (its target lock is held) is left for the next run.
//!
//! Its lag in `zrep status` is the age of each dataset's newest snapshot: how long
//! since a backup last arrived.

use std::time::Instant;

use super::{
    destroy_on, judge, print_verdicts, snapshot_time, DatasetReport, DatasetStatus, JobReport,
    PrunePlan, Which,
};
use crate::clock;
use crate::config::Job;
use crate::error::{err, Kind, Result};
use crate::proto::DatasetState;
use crate::report::Outcome;
use crate::retention::Rules;
use crate::side::Side;
use crate::state::JobRecord;
use crate::ui::Ui;

/// This host, and the job's target tree listed on it (an error when it is missing).
fn list(job: &Job) -> Result<(Side, Vec<DatasetState>)> {
    let mut dst = Side::open(None, &super::ssh(job)?)?;
    let targets = dst.state(&super::name(&job.target)?, job.recursive)?;
    if targets.is_empty() {
        return Err(err(
            Kind::NotFound,
            format!("{} does not exist on this host", job.target),
        ));
    }
    Ok((dst, targets))
}

/// Retention's verdicts for every dataset of the tree at time `now`.
pub(super) fn plans(rules: &Rules, targets: &[DatasetState], now: u64) -> Vec<(Which, PrunePlan)> {
    targets
        .iter()
        .map(|t| {
            let newest = t.snapshots.iter().max_by_key(|s| s.createtxg);
            let verdicts = judge(&t.snapshots, rules, now, |s| {
                newest.filter(|n| n.guid == s.guid).map(|_| {
                    "the newest snapshot of the dataset (likely the newest both sides have)"
                        .to_string()
                })
            });
            let plan = PrunePlan {
                dataset: t.name.to_string(),
                source: t.name.to_string(),
                verdicts,
            };
            (Which::Target, plan)
        })
        .collect()
}

/// A dataset's newest snapshot and the time its lag is measured from.
fn newest(t: &DatasetState, now: u64) -> Option<(String, u64)> {
    t.snapshots
        .iter()
        .max_by_key(|s| s.createtxg)
        .map(|s| (s.name.clone(), snapshot_time(s, now)))
}

/// Destroys what the plans prune, each dataset under its target lock; a dataset
/// another zrep is replicating into is left for the next run (after one such wait,
/// the others are not waited for).
fn destroy<'a>(
    job: &Job,
    plans: &'a [(Which, PrunePlan)],
    dst: &mut Side,
    ui: &Ui,
) -> Result<Vec<(&'a PrunePlan, Result<()>)>> {
    let mut wait = job.lock_wait;
    let mut locks = Vec::new();
    let mut mine = Vec::new();
    for (_, p) in plans.iter().filter(|(_, p)| !p.destroy().is_empty()) {
        match crate::lock::Lock::acquire(&p.dataset, wait) {
            Ok(l) => {
                locks.push(l);
                mine.push(p);
            }
            Err(e) if e.kind == Kind::Busy => {
                wait = 0;
                ui.info(&format!(
                    "[{}] {}: not pruned this run: {}",
                    job.name, p.dataset, e.message
                ));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(destroy_on(dst, mine))
}

/// `zrep run` of a job without a source: prunes the tree, one report per dataset.
pub(super) fn run(job: &Job, ui: &Ui, report: &mut JobReport) -> Result<()> {
    let Some(rules) = &job.keep_target else {
        return Ok(()); // the config requires it
    };
    let t0 = Instant::now();
    let now = clock::now();
    let (mut dst, targets) = list(job)?;
    let plans = plans(rules, &targets, now);
    let results = destroy(job, &plans, &mut dst, ui)?;
    let seconds = t0.elapsed().as_secs_f64();
    for ((_, p), t) in plans.iter().zip(&targets) {
        let result = results.iter().find(|(q, _)| std::ptr::eq(*q, p));
        let (pruned, error) = match result {
            Some((_, Ok(()))) => (p.destroy(), None),
            Some((_, Err(e))) => (Vec::new(), Some(e.message.clone())),
            None => (Vec::new(), None),
        };
        let outcome = Outcome {
            mode: crate::report::Mode::Prune,
            seconds,
            error,
            ..Outcome::new("", &p.dataset, false)
        };
        let newest = newest(t, now);
        ui.info(&line(&job.name, &outcome, &pruned, newest.as_ref(), now));
        report.datasets.push(DatasetReport {
            outcome,
            pruned_source: Vec::new(),
            pruned_target: pruned,
            newest,
        });
    }
    Ok(())
}

/// The log line of one dataset: what was pruned, and the newest snapshot's age.
fn line(
    job: &str,
    o: &Outcome,
    pruned: &[String],
    newest: Option<&(String, u64)>,
    now: u64,
) -> String {
    let what = match &o.error {
        Some(e) => format!("FAILED: {e}"),
        None => format!("pruned {}", pruned.len()),
    };
    let newest = match newest {
        Some((name, t)) => format!("newest @{name}, {} old", clock::age(now.saturating_sub(*t))),
        None => "no snapshot".into(),
    };
    format!("[{job}] {}: {what}; {newest}", o.target)
}

/// `zrep prune [--dry-run]` of a job without a source.
pub(super) fn prune(job: &Job, dry_run: bool, ui: &Ui) -> Result<Vec<(Which, PrunePlan)>> {
    let Some(rules) = &job.keep_target else {
        return Ok(Vec::new()); // the config requires it
    };
    let (mut dst, targets) = list(job)?;
    let plans = plans(rules, &targets, clock::now());
    print_verdicts(&job.name, &plans, dry_run, ui);
    if !dry_run {
        for (p, r) in destroy(job, &plans, &mut dst, ui)? {
            if let Err(e) = r {
                ui.error(&format!("cannot prune {}: {}", p.dataset, e.message));
            }
        }
    }
    Ok(plans)
}

/// `zrep status` of a job without a source: the tree listed now, each dataset's lag
/// the age of its newest snapshot.
pub(super) fn status(job: &Job, rec: &JobRecord, now: u64) -> Result<Vec<DatasetStatus>> {
    let (_, targets) = list(job)?;
    Ok(targets
        .iter()
        .map(|t| {
            let newest = newest(t, now);
            let r = rec.datasets.get(t.name.as_str());
            DatasetStatus {
                source: String::new(),
                target: t.name.to_string(),
                lag_seconds: newest.as_ref().map(|n| now.saturating_sub(n.1)),
                newest_common: newest.map(|n| n.0),
                snapshots_source: 0,
                snapshots_target: t.snapshots.len(),
                last_success: r.and_then(|r| r.last_success),
                last_error: r.and_then(|r| r.last_error.clone()),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::tests::ds;
    use crate::proto::SnapEntry;
    use crate::retention::Verdict;

    const DAY0: u64 = 1_767_225_600; // 2026-01-01

    fn snap(name: &str, txg: u64, userrefs: u64) -> SnapEntry {
        SnapEntry {
            name: name.into(),
            guid: txg + 100,
            createtxg: txg,
            creation: DAY0 + txg,
            userrefs,
            holds: None,
        }
    }

    fn daily(day: u64, txg: u64, userrefs: u64) -> SnapEntry {
        snap(
            &format!("zrep-{}", clock::utc_stamp(DAY0 + day * 86_400)),
            txg,
            userrefs,
        )
    }

    fn rules(daily: u32) -> Rules {
        Rules {
            daily,
            ..Rules::default()
        }
    }

    #[test]
    fn the_newest_held_and_future_dated_stay_and_others_are_not_candidates() {
        // Days 0..10; day 2 held (the pusher's cursor, say); a snapshot zrep did not
        // name; one named in 2099; the newest (by creation) is day 5's, received
        // last (an older name can arrive last: a pull from a lagging source).
        let mut snaps: Vec<SnapEntry> = (0..10)
            .filter(|&d| d != 5)
            .map(|d| daily(d, d + 1, u64::from(d == 2)))
            .collect();
        snaps.push(snap("before-upgrade", 20, 0));
        snaps.push(snap("zrep-20990101T000000Z", 21, 0));
        snaps.push(daily(5, 22, 0));
        let now = DAY0 + 10 * 86_400;
        let plans = plans(
            &rules(3),
            &[
                ds("backup/laptop", snaps),
                ds("backup/laptop/empty", Vec::new()),
            ],
            now,
        );
        assert_eq!(plans.len(), 2);
        let (which, p) = &plans[0];
        assert_eq!(
            (*which, p.dataset.as_str()),
            (Which::Target, "backup/laptop")
        );
        let verdict = |n: &str| &p.verdicts.iter().find(|(m, _)| m == n).unwrap().1;
        let day = |d: u64| format!("zrep-{}", clock::utc_stamp(DAY0 + d * 86_400));
        assert!(p.verdicts.iter().all(|(n, _)| n != "before-upgrade"));
        assert_eq!(*verdict(&day(2)), Verdict::Keep("held".into()));
        assert_eq!(
            *verdict(&day(5)),
            Verdict::Keep(
                "the newest snapshot of the dataset (likely the newest both sides have)".into()
            )
        );
        assert_eq!(
            *verdict("zrep-20990101T000000Z"),
            Verdict::Keep("dated 2099-01-01, more than a day after now: kept, not counted".into())
        );
        let day7 = Verdict::Keep("oldest of its day 2026-01-08 (3 daily)".into());
        assert_eq!(*verdict(&day(7)), day7);
        let destroyed: Vec<String> = [0, 1, 3, 4, 6].iter().map(|&d| day(d)).collect();
        assert_eq!(p.destroy(), destroyed);
        assert!(plans[1].1.verdicts.is_empty());
    }

    #[test]
    fn the_newest_and_its_age() {
        let now = DAY0 + 86_400;
        let t = ds("b/l", vec![daily(0, 1, 0), daily(1, 2, 0)]);
        let n = newest(&t, now).unwrap();
        assert_eq!(n, (format!("zrep-{}", clock::utc_stamp(now)), now));
        // Named in 2099: its age comes from its creation, not its name.
        let t = ds(
            "b/l",
            vec![daily(0, 1, 0), snap("zrep-20990101T000000Z", 7, 0)],
        );
        assert_eq!(newest(&t, now).unwrap().1, DAY0 + 7);
        assert_eq!(newest(&ds("b/l", Vec::new()), now), None);
        let o = Outcome {
            mode: crate::report::Mode::Prune,
            ..Outcome::new("", "b/l", false)
        };
        let n = ("zrep-x".to_string(), now - 7200);
        assert_eq!(
            line("j", &o, &["a".into(), "b".into()], Some(&n), now),
            "[j] b/l: pruned 2; newest @zrep-x, 2h00m old"
        );
        assert_eq!(
            line("j", &o, &[], None, now),
            "[j] b/l: pruned 0; no snapshot"
        );
    }
}
