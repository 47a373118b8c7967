//! Retention: which of zrep's snapshots to keep, as a grid of calendar periods.
//!
//! Rules read like sanoid's: `last = 3, hourly = 24, daily = 30, monthly = 12` keeps
//! the three newest snapshots, plus, for each of the 24 most recent hours that have
//! a snapshot, the oldest snapshot of that hour; likewise for days and months. The
//! oldest of a period is kept (not the newest) so that what a period keeps does not
//! change as more snapshots arrive in it. Periods are counted among those that have
//! snapshots, so a machine that was off for a week does not lose its history on the
//! first run after.
//!
//! A snapshot any rule keeps is kept; so is every snapshot the caller protects (the
//! newest common snapshot, anything held, what is not replicated yet). Only
//! snapshots zrep named (`zrep-<UTC time>`) are ever candidates.
//!
//! The time comes from the name, and names come from the source, which may be
//! compromised: a snapshot named more than a day after now is never a candidate and
//! never counts (not among the last N, not as the snapshot of any period), so that
//! snapshots named `zrep-2099...` cannot push the real ones out of the rules.
//!
//! # Other tools' snapshots on the target
//!
//! A job's `prune_foreign = ["syncoid_*", "autosnap_*"]` lets a run destroy target
//! snapshots that other tools made (a target adopted from syncoid keeps them
//! otherwise for ever). [`foreign_to_prune`] judges each target snapshot; the first
//! of these rules that applies decides:
//!
//! 1. zrep's own (`zrep-...`) stay: retention's rules above decide about them;
//! 2. a snapshot no pattern matches stays;
//! 3. the newest snapshot both sides have stays: it is the next incremental base;
//! 4. the newest snapshot of the target stays (every one of its `createtxg`): it is
//!    the base to build on should the source lose the common one;
//! 5. a held snapshot (user holds) stays;
//! 6. any other goes, naming the pattern that matched.

use std::collections::BTreeMap;
use std::fmt;

use crate::clock::{self, Period};
use crate::names::PREFIX;
use crate::plan::Selection;

/// How many snapshots to keep, per kind of period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// The newest N snapshots.
    #[serde(default)]
    pub last: u32,
    /// The oldest snapshot of each of the N most recent hours.
    #[serde(default)]
    pub hourly: u32,
    /// Days.
    #[serde(default)]
    pub daily: u32,
    /// Weeks (Monday to Sunday, UTC).
    #[serde(default)]
    pub weekly: u32,
    /// Calendar months.
    #[serde(default)]
    pub monthly: u32,
    /// Calendar years.
    #[serde(default)]
    pub yearly: u32,
}

impl Rules {
    fn periods(&self) -> [(Period, u32, &'static str); 5] {
        [
            (Period::Hour, self.hourly, "hourly"),
            (Period::Day, self.daily, "daily"),
            (Period::Week, self.weekly, "weekly"),
            (Period::Month, self.monthly, "monthly"),
            (Period::Year, self.yearly, "yearly"),
        ]
    }

    /// Whether the rules keep anything at all.
    pub fn is_empty(&self) -> bool {
        self.last == 0 && self.periods().iter().all(|p| p.1 == 0)
    }
}

impl std::fmt::Display for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if self.last > 0 {
            parts.push(format!("last {}", self.last));
        }
        for (_, n, name) in self.periods() {
            if n > 0 {
                parts.push(format!("{n} {name}"));
            }
        }
        f.write_str(&parts.join(", "))
    }
}

pub use crate::names::snapshot_time;

/// How far ahead of now a snapshot's name may be dated and still count: a day, for
/// clocks that disagree.
pub const FUTURE_SLACK: u64 = 86_400;

/// Whether a snapshot dated `time` lies more than [`FUTURE_SLACK`] after `now`.
pub fn is_future(time: u64, now: u64) -> bool {
    time > now.saturating_add(FUTURE_SLACK)
}

/// One snapshot to judge.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Short name.
    pub name: String,
    /// Time from its name.
    pub time: u64,
    /// Why it must stay whatever the rules say.
    pub protected: Option<String>,
}

/// The fate of a candidate, with the reason (for `prune --dry-run`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Stays.
    Keep(String),
    /// Goes.
    Prune(String),
}

impl Verdict {
    /// Whether it goes.
    pub fn prune(&self) -> bool {
        matches!(self, Verdict::Prune(_))
    }
}

/// Judges every candidate at time `now` (the result is parallel to `snaps`).
pub fn decide(snaps: &[Candidate], rules: &Rules, now: u64) -> Vec<Verdict> {
    let mut keep: Vec<Option<String>> = snaps
        .iter()
        .map(|s| future_dated(s, now).or_else(|| s.protected.clone()))
        .collect();
    // What counts, newest first; equal times by name, for a stable answer.
    let mut order: Vec<usize> = (0..snaps.len())
        .filter(|&i| !is_future(snaps[i].time, now))
        .collect();
    order.sort_by(|&a, &b| (snaps[b].time, &snaps[b].name).cmp(&(snaps[a].time, &snaps[a].name)));
    for &i in order.iter().take(rules.last as usize) {
        keep[i].get_or_insert_with(|| format!("one of the last {}", rules.last));
    }
    for (period, n, name) in rules.periods() {
        if n == 0 {
            continue;
        }
        // Period key -> its oldest snapshot.
        let mut oldest: BTreeMap<i64, usize> = BTreeMap::new();
        for &i in order.iter().rev() {
            oldest.entry(period.key(snaps[i].time)).or_insert(i);
        }
        for (_, &i) in oldest.iter().rev().take(n as usize) {
            keep[i].get_or_insert_with(|| {
                format!("oldest of its {} ({n} {name})", period.label(snaps[i].time))
            });
        }
    }
    keep.into_iter()
        .map(|k| match k {
            Some(why) => Verdict::Keep(why),
            None => Verdict::Prune(format!("beyond the rules ({rules})")),
        })
        .collect()
}

/// A target snapshot for [`foreign_to_prune`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSnap {
    /// Short name (after `@`).
    pub name: String,
    /// Transaction group it was created in (on the target): finds the newest.
    pub createtxg: u64,
    /// Whether it has user holds (`userrefs` > 0).
    pub held: bool,
}

/// What `prune_foreign` does with one target snapshot, and why. `Display` gives
/// the reason for `zrep prune --dry-run` lines; [`Verdict::from`] turns it into
/// the keep/prune verdict those lines print.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase", tag = "verdict", content = "pattern")]
pub enum ForeignVerdict {
    /// Goes: another tool's snapshot that this pattern matches.
    Prune(String),
    /// Stays: zrep's own snapshot, left to the retention rules.
    Own,
    /// Stays: no `prune_foreign` pattern matches it.
    Unmatched,
    /// Stays: the newest snapshot both sides have (the incremental base).
    Common,
    /// Stays: the newest snapshot of the target.
    Newest,
    /// Stays: it has user holds.
    Held,
}

impl ForeignVerdict {
    /// Whether it goes.
    pub fn prune(&self) -> bool {
        matches!(self, ForeignVerdict::Prune(_))
    }
}

impl fmt::Display for ForeignVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForeignVerdict::Prune(pattern) => write!(f, "matches {pattern}"),
            ForeignVerdict::Own => f.write_str("zrep's own: the retention rules decide"),
            ForeignVerdict::Unmatched => f.write_str("matches no prune_foreign pattern"),
            ForeignVerdict::Common => f.write_str(
                "the newest snapshot both sides have (the next incremental base)",
            ),
            ForeignVerdict::Newest => f.write_str(
                "the newest snapshot on the target (the base should the source lose the common one)",
            ),
            ForeignVerdict::Held => f.write_str("held"),
        }
    }
}

impl From<&ForeignVerdict> for Verdict {
    fn from(v: &ForeignVerdict) -> Verdict {
        if v.prune() {
            Verdict::Prune(v.to_string())
        } else {
            Verdict::Keep(v.to_string())
        }
    }
}

/// Judges every target snapshot for `prune_foreign` (the result is parallel to
/// `snaps`, which may come in any order). `patterns` are the job's
/// `prune_foreign` patterns; `newest_common` is the short *target* name of the
/// newest snapshot the target shares with the source, if any. The rules are in
/// the module documentation.
pub fn foreign_to_prune(
    snaps: &[TargetSnap],
    patterns: &Selection,
    newest_common: Option<&str>,
) -> Vec<ForeignVerdict> {
    let newest_txg = snaps.iter().map(|s| s.createtxg).max();
    snaps
        .iter()
        .map(|s| {
            if s.name.starts_with(PREFIX) {
                return ForeignVerdict::Own;
            }
            let Some(pattern) = patterns.matching(&s.name) else {
                return ForeignVerdict::Unmatched;
            };
            if newest_common == Some(s.name.as_str()) {
                ForeignVerdict::Common
            } else if Some(s.createtxg) == newest_txg {
                ForeignVerdict::Newest
            } else if s.held {
                ForeignVerdict::Held
            } else {
                ForeignVerdict::Prune(pattern.to_string())
            }
        })
        .collect()
}

/// The reason a snapshot dated more than a day ahead is kept, `None` for others.
fn future_dated(s: &Candidate, now: u64) -> Option<String> {
    if !is_future(s.time, now) {
        return None;
    }
    let c = clock::Civil::from_secs(s.time);
    let also = s
        .protected
        .as_ref()
        .map(|p| format!("; also {p}"))
        .unwrap_or_default();
    Some(format!(
        "dated {:04}-{:02}-{:02}, more than a day after now: kept, not counted{also}",
        c.year, c.month, c.day
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tests' clock: after every snapshot they make.
    const NOW: u64 = 1_798_761_600; // 2027-01-01

    fn at(stamp: &str) -> u64 {
        clock::parse_stamp(stamp).unwrap()
    }

    fn cands(times: &[u64]) -> Vec<Candidate> {
        times
            .iter()
            .map(|&t| Candidate {
                name: format!("zrep-{}", clock::utc_stamp(t)),
                time: t,
                protected: None,
            })
            .collect()
    }

    fn kept(c: &[Candidate], rules: &Rules) -> Vec<String> {
        decide(c, rules, NOW)
            .iter()
            .zip(c)
            .filter(|(v, _)| !v.prune())
            .map(|(_, c)| c.name[5..].to_string())
            .collect()
    }

    fn target(list: &[(&str, u64, bool)]) -> Vec<TargetSnap> {
        list.iter()
            .map(|&(name, createtxg, held)| TargetSnap {
                name: name.to_string(),
                createtxg,
                held,
            })
            .collect()
    }

    fn foreign(patterns: &[&str]) -> Selection {
        let v: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        Selection::new(&v).unwrap()
    }

    #[test]
    fn foreign_verdicts() {
        use ForeignVerdict as F;
        let snaps = target(&[
            ("syncoid_host_2026-01-01", 10, false),
            ("autosnap_2026-01-01_hourly", 11, false),
            ("syncoid_host_2026-01-02", 12, true),
            ("zrep-20260103T000000Z", 13, false),
            ("manual-before-upgrade", 14, false),
            ("syncoid_host_2026-01-04", 15, false),
            ("autosnap_2026-01-05_hourly", 16, false),
        ]);
        let v = foreign_to_prune(
            &snaps,
            &foreign(&["syncoid_*", "autosnap_*"]),
            Some("syncoid_host_2026-01-04"),
        );
        assert_eq!(
            v,
            [
                F::Prune("syncoid_*".into()),
                F::Prune("autosnap_*".into()),
                F::Held,
                F::Own,
                F::Unmatched,
                F::Common,
                F::Newest,
            ]
        );
        let lines: Vec<String> = v.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "matches syncoid_*",
                "matches autosnap_*",
                "held",
                "zrep's own: the retention rules decide",
                "matches no prune_foreign pattern",
                "the newest snapshot both sides have (the next incremental base)",
                "the newest snapshot on the target (the base should the source lose the common one)",
            ]
        );
        assert_eq!(
            Verdict::from(&v[0]),
            Verdict::Prune("matches syncoid_*".into())
        );
        assert_eq!(Verdict::from(&v[2]), Verdict::Keep("held".into()));
        assert_eq!(v.iter().filter(|v| v.prune()).count(), 2);
    }

    #[test]
    fn foreign_never_touches_zrep_snapshots() {
        // Even a pattern that matches everything, the common one, the newest.
        let snaps = target(&[
            ("zrep-20260101T000000Z", 1, false),
            ("zrep-20260102T000000Z", 2, false),
            ("zrep-20260103T000000Z", 3, false),
        ]);
        let v = foreign_to_prune(&snaps, &foreign(&["*"]), Some("zrep-20260102T000000Z"));
        assert!(v.iter().all(|v| *v == ForeignVerdict::Own));
    }

    #[test]
    fn foreign_keeps_the_newest_without_a_common_one() {
        // The source lost the common snapshot: the newest is the base to resume from.
        let snaps = target(&[("syncoid_b", 20, false), ("syncoid_a", 10, false)]);
        let v = foreign_to_prune(&snaps, &foreign(&["syncoid_*"]), None);
        assert_eq!(
            v,
            [
                ForeignVerdict::Newest,
                ForeignVerdict::Prune("syncoid_*".into())
            ]
        );
    }

    #[test]
    fn foreign_keeps_every_snapshot_of_the_newest_txg() {
        let snaps = target(&[
            ("syncoid_a", 10, false),
            ("syncoid_b", 20, false),
            ("autosnap_b", 20, false),
        ]);
        let v = foreign_to_prune(&snaps, &foreign(&["syncoid_*", "autosnap_*"]), None);
        assert_eq!(
            v,
            [
                ForeignVerdict::Prune("syncoid_*".into()),
                ForeignVerdict::Newest,
                ForeignVerdict::Newest
            ]
        );
    }

    #[test]
    fn foreign_without_patterns_or_snapshots() {
        let snaps = target(&[("syncoid_a", 10, false), ("syncoid_b", 20, false)]);
        let v = foreign_to_prune(&snaps, &foreign(&[]), None);
        assert!(v.iter().all(|v| *v == ForeignVerdict::Unmatched));
        assert!(foreign_to_prune(&[], &foreign(&["*"]), Some("x")).is_empty());
    }

    #[test]
    fn foreign_common_held_reports_common_and_the_pattern_named_first() {
        let snaps = target(&[
            ("syncoid_a", 10, true),
            ("syncoid_b", 20, false),
            ("syncoid_c", 30, false),
        ]);
        let v = foreign_to_prune(&snaps, &foreign(&["*_b", "syncoid_*"]), Some("syncoid_a"));
        assert_eq!(
            v,
            [
                ForeignVerdict::Common,
                ForeignVerdict::Prune("*_b".into()),
                ForeignVerdict::Newest
            ]
        );
    }

    #[test]
    fn foreign_verdict_serializes() {
        let j = serde_json::to_string(&ForeignVerdict::Prune("syncoid_*".into())).unwrap();
        assert_eq!(j, r#"{"verdict":"prune","pattern":"syncoid_*"}"#);
        let j = serde_json::to_string(&ForeignVerdict::Held).unwrap();
        assert_eq!(j, r#"{"verdict":"held"}"#);
    }

    #[test]
    fn names_carry_times() {
        assert_eq!(
            snapshot_time("zrep-20261126T091242Z"),
            Some(at("20261126T091242Z"))
        );
        assert_eq!(snapshot_time("daily-20261126T091242Z"), None);
        assert_eq!(snapshot_time("zrep-2026"), None);
    }

    #[test]
    fn last_keeps_the_newest() {
        let t0 = at("20260101T000000Z");
        let c = cands(&[t0, t0 + 60, t0 + 120, t0 + 180]);
        let r = Rules {
            last: 2,
            ..Rules::default()
        };
        assert_eq!(kept(&c, &r), ["20260101T000200Z", "20260101T000300Z"]);
    }

    #[test]
    fn hourly_keeps_the_oldest_of_each_recent_hour() {
        let t0 = at("20260101T000000Z");
        // Every 20 minutes for 5 hours.
        let c = cands(&(0..15).map(|i| t0 + i * 1200).collect::<Vec<_>>());
        let r = Rules {
            hourly: 3,
            ..Rules::default()
        };
        assert_eq!(
            kept(&c, &r),
            ["20260101T020000Z", "20260101T030000Z", "20260101T040000Z"]
        );
    }

    #[test]
    fn periods_without_snapshots_do_not_count() {
        // Two snapshots a week apart: daily = 2 keeps both.
        let t0 = at("20260101T120000Z");
        let c = cands(&[t0, t0 + 7 * 86_400]);
        let r = Rules {
            daily: 2,
            ..Rules::default()
        };
        assert_eq!(kept(&c, &r).len(), 2);
    }

    #[test]
    fn rules_combine_and_protection_wins() {
        let t0 = at("20260101T000000Z");
        // Every 6 hours for 60 days.
        let mut c = cands(&(0..240).map(|i| t0 + i * 6 * 3600).collect::<Vec<_>>());
        c[5].protected = Some("held by backup".into());
        let r = Rules {
            last: 1,
            daily: 7,
            monthly: 2,
            ..Rules::default()
        };
        let v = decide(&c, &r, NOW);
        // The last snapshot is 2026-03-01T18:00: February and March's first, the
        // first of the 7 newest days (one of them March 1st again), the newest, and
        // the protected one.
        assert_eq!(
            kept(&c, &r),
            [
                "20260102T060000Z",
                "20260201T000000Z",
                "20260223T000000Z",
                "20260224T000000Z",
                "20260225T000000Z",
                "20260226T000000Z",
                "20260227T000000Z",
                "20260228T000000Z",
                "20260301T000000Z",
                "20260301T180000Z",
            ]
        );
        assert_eq!(v[5], Verdict::Keep("held by backup".into()));
        assert_eq!(
            v[0],
            Verdict::Prune("beyond the rules (last 1, 7 daily, 2 monthly)".into())
        );
        assert_eq!(
            v[124],
            Verdict::Keep("oldest of its month 2026-02 (2 monthly)".into())
        );
    }

    #[test]
    fn empty_rules_keep_only_protected() {
        let t0 = at("20260101T000000Z");
        let c = cands(&[t0, t0 + 1]);
        assert!(Rules::default().is_empty());
        assert!(kept(&c, &Rules::default()).is_empty());
    }

    /// 40 daily snapshots up to now, then 20 named in 2099 (a compromised source's).
    fn forty_days_and_twenty_from_2099() -> (Vec<Candidate>, u64) {
        let t0 = at("20261101T031500Z");
        let real = (0..40).map(|d| t0 + d * 86_400);
        let future = (0..20).map(|d| at("20990101T000000Z") + d * 86_400);
        let c = cands(&real.chain(future).collect::<Vec<_>>());
        (c, t0 + 39 * 86_400)
    }

    #[test]
    fn future_dated_snapshots_do_not_displace_daily_ones() {
        let (c, now) = forty_days_and_twenty_from_2099();
        let r = Rules {
            daily: 30,
            ..Rules::default()
        };
        let v = decide(&c, &r, now);
        // The 30 newest real ones stay, the 10 oldest go, every 2099 one stays.
        let kept_real: Vec<usize> = (0..40).filter(|&i| !v[i].prune()).collect();
        assert_eq!(kept_real, (10..40).collect::<Vec<_>>());
        for (i, v) in v.iter().enumerate().skip(40) {
            let day = 1 + i - 40;
            assert_eq!(
                *v,
                Verdict::Keep(format!(
                    "dated 2099-01-{day:02}, more than a day after now: kept, not counted"
                ))
            );
        }
        assert_eq!(
            v[39],
            Verdict::Keep("oldest of its day 2026-12-10 (30 daily)".into())
        );
    }

    #[test]
    fn future_dated_snapshots_do_not_count_among_the_last_or_any_period() {
        let (c, now) = forty_days_and_twenty_from_2099();
        let last5 = Rules {
            last: 5,
            ..Rules::default()
        };
        let mixed = Rules {
            last: 1,
            weekly: 2,
            monthly: 2,
            yearly: 1,
            ..Rules::default()
        };
        // Real ones: November 1st to December 10th 2026. The mixed rules keep Nov 1st
        // (its month and year), Nov 30th and Dec 7th (Mondays: their weeks), Dec 1st
        // (its month) and Dec 10th (the last).
        for (rules, want) in [
            (last5, vec![35, 36, 37, 38, 39]),
            (mixed, vec![0, 29, 30, 36, 39]),
        ] {
            let v = decide(&c, &rules, now);
            let kept: Vec<usize> = (0..40).filter(|&i| !v[i].prune()).collect();
            assert_eq!(kept, want, "{rules}");
            assert!(v[40..].iter().all(|v| !v.prune()), "{rules}");
        }
    }

    #[test]
    fn a_day_ahead_still_counts_and_protection_is_named_too() {
        let now = at("20260601T000000Z");
        let mut c = cands(&[now - 3600, now + 86_400, now + 86_401]);
        c[2].protected = Some("held".into());
        let r = Rules {
            last: 1,
            ..Rules::default()
        };
        let v = decide(&c, &r, now);
        assert!(v[0].prune(), "a day ahead is the newest that counts");
        assert_eq!(v[1], Verdict::Keep("one of the last 1".into()));
        assert_eq!(
            v[2],
            Verdict::Keep(
                "dated 2026-06-02, more than a day after now: kept, not counted; also held".into()
            )
        );
        assert!(!is_future(u64::MAX, u64::MAX - 1));
    }
}
