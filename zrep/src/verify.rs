//! `zrep verify [-r] [--read] SOURCE TARGET`: is the backup what it should be?
//!
//! Per dataset of the source (and its descendants with `-r`), against the dataset at
//! the same place under the target:
//! - every snapshot both sides have by name has the same GUID on both (a different
//!   GUID is another snapshot under the same name: the chain is broken there);
//! - the target's newest snapshot is on the source, as a snapshot or as zrep's
//!   bookmark (else the two have diverged, or the source lost it);
//! - zrep's cursor is in place for it: the bookmark `#zrep-<id>-<snapshot>` on the
//!   source, and the hold `zrep-<id>` on that snapshot on both sides (on the source
//!   while it still has it);
//! - with `--read`, the target's newest snapshot is read back in full, into nothing:
//!   ZFS reads every block and checks its checksum, so damage on the target's disks
//!   is found before a restore needs the data.
//!
//! Nothing is changed on either side. A remote side is read through the same
//! requests as a replication's (listings, `Holds`, `ReadBack`): a restricted `zrep
//! serve` answers them inside its roots, in every mode.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use libzfs::DatasetName;
use serde::Serialize;

use crate::error::Result;
use crate::filter::Filter;
use crate::names::PREFIX;
use crate::proto::DatasetState;
use crate::side::Side;
use crate::ui::bytes;

/// What to verify.
#[derive(Debug, Clone)]
pub struct Options {
    /// The source dataset (on its side).
    pub source: DatasetName,
    /// The target dataset (on its side).
    pub target: DatasetName,
    /// `[user@]host` of the target ("" when local): the cursor id's fallback.
    pub target_host: String,
    /// Descendants too.
    pub recursive: bool,
    /// Read the target's newest snapshot back.
    pub read: bool,
    /// A job's dataset filter (with `recursive`): datasets it leaves out are not
    /// checked.
    pub filter: Option<Filter>,
}

/// The verdict on one dataset.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Verdict {
    /// Source dataset.
    pub source: String,
    /// Target dataset.
    pub target: String,
    /// No problem found.
    pub ok: bool,
    /// Snapshots both sides have (same name, same GUID).
    pub shared: usize,
    /// The target's newest snapshot (short name): the cursor's place.
    pub newest: Option<String>,
    /// Bytes read back (`--read`).
    pub read_bytes: Option<u64>,
    /// Seconds the read back took.
    pub read_seconds: Option<f64>,
    /// What is wrong, one sentence each.
    pub problems: Vec<String>,
}

impl Verdict {
    /// One line: `ok  SOURCE -> TARGET: ...` or `MISMATCH  SOURCE -> TARGET: ...`.
    pub fn line(&self) -> String {
        let mut facts = vec![format!(
            "{} snapshot{} shared",
            self.shared,
            if self.shared == 1 { "" } else { "s" }
        )];
        if let Some(n) = &self.newest {
            facts.push(format!("newest @{n}"));
        }
        if let (Some(b), Some(s)) = (self.read_bytes, self.read_seconds) {
            facts.push(format!("read back {} in {s:.1} s", bytes(b)));
        }
        let head = if self.ok { "ok" } else { "MISMATCH" };
        let mut line = format!(
            "{head} {} -> {}: {}",
            self.source,
            self.target,
            facts.join(", ")
        );
        for p in &self.problems {
            line.push_str("; ");
            line.push_str(p);
        }
        line
    }
}

/// Verifies `opts.source` against `opts.target`: one verdict per source dataset,
/// parents first. An error is for what stops the whole check (a side unreachable,
/// the source missing).
pub fn verify(opts: &Options, src: &mut Side, dst: &mut Side) -> Result<Vec<Verdict>> {
    let id = crate::replicate::target_cursor_id(&opts.target, &opts.target_host, dst)?;
    let sources = src.state(&opts.source, opts.recursive)?;
    if sources.is_empty() {
        return Err(crate::replicate::no_source(src, &opts.source));
    }
    let travels: Option<HashSet<String>> = match &opts.filter {
        Some(f) if opts.recursive => Some(
            crate::replicate::covered(&opts.source, f, src)?
                .into_iter()
                .filter(|d| d.travels)
                .map(|d| d.name)
                .collect(),
        ),
        _ => None,
    };
    let targets = dst.state(&opts.target, opts.recursive)?;
    let targets: HashMap<&str, &DatasetState> =
        targets.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut out = Vec::with_capacity(sources.len());
    for d in &sources {
        if travels
            .as_ref()
            .is_some_and(|t| !t.contains(d.name.as_str()))
        {
            continue;
        }
        let rel = crate::policy::relative(d.name.as_str(), opts.source.as_str()).unwrap_or("");
        let target = DatasetName::new(format!("{}{rel}", opts.target))?;
        let mut v = Verdict {
            source: format!("{}{}", src.prefix(), d.name),
            target: format!("{}{target}", dst.prefix()),
            ok: false,
            shared: 0,
            newest: None,
            read_bytes: None,
            read_seconds: None,
            problems: Vec::new(),
        };
        match targets.get(target.as_str()) {
            None => v.problems.push("the target does not exist".into()),
            Some(t) => check(d, t, &id, opts.read, src, dst, &mut v),
        }
        v.ok = v.problems.is_empty();
        out.push(v);
    }
    Ok(out)
}

/// The checks of one dataset (see the module's documentation).
fn check(
    d: &DatasetState,
    t: &DatasetState,
    id: &str,
    read: bool,
    src: &mut Side,
    dst: &mut Side,
    v: &mut Verdict,
) {
    let by_name: HashMap<&str, u64> = d
        .snapshots
        .iter()
        .map(|s| (s.name.as_str(), s.guid))
        .collect();
    for s in &t.snapshots {
        match by_name.get(s.name.as_str()) {
            Some(&g) if g == s.guid => v.shared += 1,
            Some(&g) => v.problems.push(format!(
                "@{}: GUID {} on the source, {} on the target (another snapshot under the same name)",
                s.name, g, s.guid
            )),
            None => {}
        }
    }
    let Some(newest) = t.snapshots.iter().max_by_key(|s| s.createtxg) else {
        v.problems.push("the target has no snapshot".into());
        return;
    };
    v.newest = Some(newest.name.clone());
    let on_source = d.snapshots.iter().find(|s| s.guid == newest.guid);
    let mark = format!("{PREFIX}{id}-{}", newest.name);
    let bookmark = d.bookmarks.iter().find(|b| b.name == mark);
    match bookmark {
        Some(b) if b.guid == newest.guid => {}
        Some(b) => v.problems.push(format!(
            "cursor bookmark #{mark} has GUID {}, the target's @{} {}",
            b.guid, newest.name, newest.guid
        )),
        None => v
            .problems
            .push(format!("cursor bookmark #{mark} is missing on the source")),
    }
    if on_source.is_none() && !matches!(bookmark, Some(b) if b.guid == newest.guid) {
        v.problems.push(format!(
            "the target's newest snapshot @{} is not on the source (the two have diverged)",
            newest.name
        ));
    }
    let tag = format!("{PREFIX}{id}");
    let sides: [(&mut Side, &DatasetName, Option<&str>, &str); 2] = [
        (src, &d.name, on_source.map(|s| s.name.as_str()), "source"),
        (dst, &t.name, Some(newest.name.as_str()), "target"),
    ];
    for (side, ds, snap, which) in sides {
        let Some(snap) = snap else { continue };
        let held = ds
            .snapshot(snap)
            .map_err(crate::error::Error::from)
            .and_then(|s| side.holds(&s));
        match held {
            Ok(tags) if tags.contains(&tag) => {}
            Ok(_) => v.problems.push(format!(
                "cursor hold {tag} is missing on the {which}'s @{snap}"
            )),
            Err(e) => v.problems.push(format!(
                "cannot read the holds of the {which}'s @{snap}: {}",
                why(&e)
            )),
        }
    }
    if read {
        let t0 = Instant::now();
        let read = t
            .name
            .snapshot(&newest.name)
            .map_err(crate::error::Error::from)
            .and_then(|s| dst.read_back(&s, t.encrypted));
        match read {
            Ok(n) => {
                v.read_bytes = Some(n);
                v.read_seconds = Some(t0.elapsed().as_secs_f64());
            }
            Err(e) => v.problems.push(format!("read back failed: {}", why(&e))),
        }
    }
}

/// An error's message, shorter for a remote zrep that predates `verify` (serde's
/// refusal lists every request it knows).
fn why(e: &crate::error::Error) -> String {
    if e.message
        .contains("refused a malformed request: unknown variant")
    {
        let host = e.message.split(':').next().unwrap_or("the remote host");
        return format!("the zrep on {host} is older than verify (it does not know the request)");
    }
    e.message.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_the_verdict_and_every_problem() {
        let mut v = Verdict {
            source: "tank/a".into(),
            target: "nas:back/a".into(),
            ok: true,
            shared: 3,
            newest: Some("zrep-1".into()),
            read_bytes: Some(1 << 20),
            read_seconds: Some(0.5),
            problems: Vec::new(),
        };
        assert_eq!(
            v.line(),
            "ok tank/a -> nas:back/a: 3 snapshots shared, newest @zrep-1, read back 1.00M in 0.5 s"
        );
        v.ok = false;
        v.read_bytes = None;
        v.problems = vec!["a".into(), "b".into()];
        assert_eq!(
            v.line(),
            "MISMATCH tank/a -> nas:back/a: 3 snapshots shared, newest @zrep-1; a; b"
        );
    }
}
