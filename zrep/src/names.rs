//! The names zrep gives, in a namespace of their own, apart from bolthole's zrep
//! (`zrep_` + hex snapshots, `zrep:` properties):
//! - snapshots `@zrep-YYYYMMDDTHHMMSSZ` (UTC, so names sort by time);
//! - hold tag `zrep-<id>` on the newest replicated snapshot on both sides, where `<id>`
//!   is 8 hex digits naming the target dataset ([`target_id`]);
//! - bookmark `#zrep-<id>-<snapshot>` on the source: the incremental base when that
//!   snapshot is pruned on the source;
//! - user property `zrep-rs:exclude` ([`OPT_OUT`]).

use crate::clock;

/// The user property that leaves a dataset (and its descendants) out of recursive
/// replication: `zfs set zrep-rs:exclude=on tank/scratch`.
pub const OPT_OUT: &str = "zrep-rs:exclude";

/// Prefix of every name zrep gives: snapshots, hold tags, bookmarks.
pub const PREFIX: &str = "zrep-";

/// A new snapshot name for now (UTC; `ZREP_NOW` sets the clock).
pub fn new_snapshot() -> String {
    format!("{PREFIX}{}", clock::utc_stamp(clock::now()))
}

/// The time a zrep snapshot name carries, `None` for other snapshots.
pub fn snapshot_time(short_name: &str) -> Option<u64> {
    clock::parse_stamp(short_name.strip_prefix(PREFIX)?)
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
