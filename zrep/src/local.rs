//! Operations on this machine's pools, through libzfs: the implementation of every
//! request of the protocol ([`execute`]) but the streams. `zrep serve` answers
//! requests with it, and a local side calls it directly.

use std::os::fd::AsFd;

use libzfs::{DatasetName, ReceiveOptions, SendFlags, SendSource, SnapshotName, Zfs};

use crate::error::{err, Kind, Result};
use crate::proto::{
    self, CursorMove, DatasetState, Flags, Hold, NewBookmark, PropValue, Property, Reading,
    Request, Response, SnapEntry,
};

/// Carries out a request that has no stream (streams: [`send`], [`receive`]) and
/// no lock (the caller keeps those).
pub fn execute(zfs: &Zfs, req: &Request) -> Result<Response> {
    let ok = |r: Result<()>| r.map(|()| Response::Ok);
    match req {
        Request::State {
            dataset,
            recursive,
            datasets_only,
            reading,
        } => {
            let datasets = listing(zfs, dataset, *recursive, !datasets_only, *reading)?;
            Ok(Response::State {
                datasets,
                more: false,
            })
        }
        Request::Estimate {
            snapshot,
            from,
            flags,
        } => {
            estimate(zfs, snapshot, from.as_ref(), *flags).map(|bytes| Response::Estimate { bytes })
        }
        Request::EstimateResume { token } => {
            estimate_resume(zfs, token).map(|bytes| Response::Estimate { bytes })
        }
        Request::Snapshot { snapshots } => ok(Ok(zfs.snapshot(snapshots, None)?)),
        Request::SnapshotWritten { snapshots } => {
            snapshot_written(zfs, snapshots).map(|snapshots| Response::Taken { snapshots })
        }
        Request::Cursor(m) => ok(move_cursor(zfs, m)),
        Request::DestroySnapshots { snapshots } => ok(Ok(zfs.destroy_snapshots(snapshots, false)?)),
        Request::RollbackTo { snapshot, tag } => ok(rollback_to(zfs, snapshot, tag)),
        Request::Sync { dataset } => ok(Ok(zfs.sync(dataset.pool(), false)?)),
        Request::Properties { dataset } => {
            properties(zfs, dataset).map(|properties| Response::Properties { properties })
        }
        Request::Readonly {
            dataset,
            recursive,
            on,
        } => ok(readonly(zfs, dataset, *recursive, *on)),
        Request::AbortResume { dataset } => ok(zfs
            .abort_resumable_receive(dataset)
            .map(|_| ())
            .map_err(Into::into)),
        Request::Holds { snapshot } => Ok(Response::Holds {
            tags: zfs.holds(snapshot)?.into_iter().map(|(t, _)| t).collect(),
        }),
        Request::ReadBack { snapshot, raw } => {
            read_back(zfs, snapshot, *raw).map(|bytes| Response::Sent { bytes })
        }
        Request::Hello { .. }
        | Request::Bye
        | Request::Lock { .. }
        | Request::Send { .. }
        | Request::SendResume { .. }
        | Request::Receive(_) => Err(err(
            Kind::InvalidArgument,
            format!("{} is not a plain operation", req.describe()),
        )),
    }
}

/// `SnapshotWritten`: at most [`proto::MAX_TAKEN`] snapshots.
fn snapshot_written(zfs: &Zfs, snapshots: &[SnapshotName]) -> Result<Vec<proto::Taken>> {
    if snapshots.len() > proto::MAX_TAKEN {
        return Err(err(
            Kind::InvalidArgument,
            format!(
                "{} snapshots asked for in one call (at most {})",
                snapshots.len(),
                proto::MAX_TAKEN
            ),
        ));
    }
    let taken = zfs.snapshot_written(snapshots)?;
    Ok(taken
        .into_iter()
        .map(|s| proto::Taken {
            snapshot: s.name,
            guid: s.guid,
            createtxg: s.createtxg,
            creation: s.creation,
        })
        .collect())
}

/// Converts protocol flags to libzfs's.
pub fn send_flags(f: Flags) -> SendFlags {
    SendFlags {
        large_blocks: f.large_blocks,
        embedded: f.embedded,
        compressed: f.compressed,
        raw: f.raw,
        saved: false,
    }
}

fn entry(name: &str, guid: u64, createtxg: u64, creation: u64) -> SnapEntry {
    SnapEntry {
        name: name.to_string(),
        guid,
        createtxg,
        creation,
        userrefs: 0,
        holds: None,
    }
}

/// The dataset and its descendants (with `recursive`), with their snapshots and
/// bookmarks when `snapshots`; empty when it does not exist.
pub fn state(
    zfs: &Zfs,
    dataset: &DatasetName,
    recursive: bool,
    snapshots: bool,
) -> Result<Vec<DatasetState>> {
    listing(zfs, dataset, recursive, snapshots, Reading::Full)
}

/// [`state`] reading only the properties `reading` names.
pub fn listing(
    zfs: &Zfs,
    dataset: &DatasetName,
    recursive: bool,
    snapshots: bool,
    reading: Reading,
) -> Result<Vec<DatasetState>> {
    let fields = match reading {
        Reading::Full => libzfs::Fields::REPLICATION,
        Reading::Source => libzfs::Fields::SOURCE.with_user(crate::names::OPT_OUT),
        Reading::Target => libzfs::Fields::TARGET,
        Reading::List => libzfs::Fields::LISTING,
        Reading::Names => libzfs::Fields::NAMES.with_user(crate::names::OPT_OUT),
    };
    let Some(listed) = zfs.list_fields(dataset, recursive, snapshots, fields)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(listed.len());
    for l in listed {
        let d = l.dataset;
        let bookmarks = if snapshots && reading.bookmarks() {
            zfs.bookmarks(&d.name)?
        } else {
            Vec::new()
        }
        .into_iter()
        .map(|b| entry(b.name.short_name(), b.guid, b.createtxg, b.creation))
        .collect();
        let token = d
            .receive_resume_token
            .as_deref()
            .and_then(|t| crate::policy::parse_token(t).ok());
        out.push(DatasetState {
            kind: format!("{:?}", d.kind).to_lowercase(),
            guid: d.guid,
            snapshots: l
                .snapshots
                .into_iter()
                .map(|s| SnapEntry {
                    userrefs: s.userrefs,
                    holds: s.holds,
                    ..entry(s.name.short_name(), s.guid, s.createtxg, s.creation)
                })
                .collect(),
            bookmarks,
            written: d.written,
            available: d.available,
            referenced: d.referenced,
            resume_toguid: token.as_ref().map(|t| t.toguid),
            resume_fromguid: token
                .as_ref()
                .and_then(|t| (t.fromguid != 0).then_some(t.fromguid)),
            resume_token: d.receive_resume_token,
            encrypted: d.encryption != "off",
            opt_out: d
                .user
                .iter()
                .find(|u| u.name == crate::names::OPT_OUT)
                .map(|u| (u.value.clone(), u.setpoint == d.name.as_str())),
            name: d.name,
        });
    }
    Ok(out)
}

/// Estimated stream size.
pub fn estimate(
    zfs: &Zfs,
    snapshot: &SnapshotName,
    from: Option<&SendSource>,
    flags: Flags,
) -> Result<u64> {
    Ok(zfs.send_space(snapshot, from, send_flags(flags))?)
}

/// Estimated size of what is left of an interrupted stream.
pub fn estimate_resume(zfs: &Zfs, token: &str) -> Result<u64> {
    let t = crate::policy::parse_token(token)?;
    Ok(zfs.send_space_from_token(&t)?)
}

/// Writes a stream to `out`.
pub fn send(
    zfs: &Zfs,
    snapshot: &SnapshotName,
    from: Option<&SendSource>,
    flags: Flags,
    out: impl AsFd,
) -> Result<()> {
    Ok(zfs.send(snapshot, from, out, send_flags(flags))?)
}

/// Sends `snapshot` in full into nothing, counting the bytes: ZFS reads every block
/// and checks its checksum, so a damaged block fails the send. Blocks travel as
/// stored (`-L -e -c`, and raw when `raw`): nothing is decompressed or decrypted for
/// nobody. Blocks the kernel has cached (ARC) are read from memory.
pub fn read_back(zfs: &Zfs, snapshot: &SnapshotName, raw: bool) -> Result<u64> {
    let flags = Flags {
        large_blocks: true,
        embedded: true,
        compressed: true,
        raw,
    };
    let (r, w) = crate::pump::pipe().map_err(|e| err(Kind::Io, format!("pipe: {e}")))?;
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .map_err(|e| err(Kind::Io, format!("/dev/null: {e}")))?;
    std::thread::scope(|s| {
        let sender = s.spawn(move || send(zfs, snapshot, None, flags, &w));
        let copied = crate::pump::copy(&r, &null, &|_| {});
        drop(r);
        let sent = sender
            .join()
            .unwrap_or_else(|_| Err(err(Kind::Other, "the send thread panicked")));
        sent.map_err(|e| err(e.kind, format!("reading {snapshot} back: {}", e.message)))?;
        copied.map_err(|e| err(Kind::Io, format!("reading {snapshot} back: {e}")))
    })
}

/// Writes the rest of an interrupted stream to `out`.
pub fn send_resume(zfs: &Zfs, token: &str, out: impl AsFd) -> Result<()> {
    let t = crate::policy::parse_token(token)?;
    if !zfs.exists(t.to.as_str()) {
        return Err(err(
            Kind::NotFound,
            format!("cannot resume: {} no longer exists on the source", t.to),
        ));
    }
    Ok(zfs.send_from_token(&t, out)?)
}

/// Where a stream lands, and with which properties.
pub use crate::proto::Receive as Target;

/// Receives one stream from `input` into `target`; the snapshot made and the bytes.
/// The target keeps `readonly=on` (a backup that nobody modifies by accident, not
/// even through atime, keeps accepting incrementals) unless `set` or `readonly`
/// say otherwise; received properties and overrides go with the stream (see
/// [`crate::props`]). A full stream is never received over an existing dataset
/// unless forced (but to finish an interrupted one).
pub fn receive(zfs: &Zfs, target: &Target, input: impl AsFd) -> Result<(SnapshotName, u64)> {
    let (header, raw) = libzfs::StreamHeader::read_from(&input)?;
    let dataset = &target.dataset;
    if !header.is_incremental() && !target.force {
        if let Some(d) = zfs.dataset(dataset)? {
            if d.receive_resume_token.is_none() {
                return Err(err(
                    Kind::AlreadyExists,
                    format!("cannot receive a full stream into {dataset}: it exists"),
                ));
            }
        }
    }
    let mut set = target.set.clone();
    if target.readonly && !set.iter().any(|p| p.name == "readonly") {
        set.push(Property {
            name: "readonly".into(),
            value: PropValue::Number(1),
        });
    }
    let opts = ReceiveOptions {
        force: target.force,
        resumable: target.resumable,
        props: (!set.is_empty()).then(|| nvlist(&set)).transpose()?,
        received: target.received.as_deref().map(nvlist).transpose()?,
        exclude: target.inherit.clone(),
        ..Default::default()
    };
    let r = zfs.receive_with_header(dataset.as_str(), input, &opts, header, &raw)?;
    Ok((r.snapshot, r.bytes))
}

/// A property list as the kernel takes it.
fn nvlist(props: &[Property]) -> Result<libzfs::NvList> {
    let mut l = libzfs::NvList::new();
    for p in props {
        match &p.value {
            PropValue::Number(n) => l.insert(&p.name, n),
            PropValue::String(s) => l.insert(&p.name, s.as_str()),
        }
        .map_err(libzfs::Error::from)?;
    }
    Ok(l)
}

/// `dataset`'s properties that are set locally or received (what
/// `--send-properties` carries).
pub fn properties(zfs: &Zfs, dataset: &DatasetName) -> Result<Vec<Property>> {
    let listed = zfs.local_properties(dataset, false)?;
    let props = listed
        .into_iter()
        .find(|(name, _)| name == dataset)
        .map(|(_, p)| p)
        .unwrap_or_default();
    Ok(props
        .into_iter()
        .map(|(name, value)| Property {
            name,
            value: crate::props::from_libzfs(value),
        })
        .collect())
}

fn to_libzfs(h: &Hold) -> libzfs::Hold {
    libzfs::Hold {
        snapshot: h.snapshot.clone(),
        tag: h.tag.clone(),
    }
}

/// Sets `readonly` on `dataset` and, with `recursive`, on each of its descendants
/// (each its own value: zrep's receives set it on every dataset they create).
pub fn readonly(zfs: &Zfs, dataset: &DatasetName, recursive: bool, on: bool) -> Result<()> {
    let tree = listing(zfs, dataset, recursive, false, Reading::List)?;
    if tree.is_empty() {
        return Err(err(Kind::NotFound, format!("{dataset} does not exist")));
    }
    let value = if on { "on" } else { "off" };
    for d in &tree {
        zfs.set_property(&d.name, "readonly", value)?;
    }
    Ok(())
}

/// Moves zrep's cursor: places the holds and bookmarks, then releases and destroys the
/// old ones. Each pair is issued at once, from two threads: ZFS syncs tasks that arrive
/// together in one transaction group, where one after the other costs two.
pub fn move_cursor(zfs: &Zfs, m: &CursorMove) -> Result<()> {
    together(|| hold(zfs, &m.hold), || bookmark(zfs, &m.bookmark))?;
    together(
        || release(zfs, &m.release),
        || Ok(zfs.destroy_bookmarks(&m.destroy_bookmarks)?),
    )
}

/// Runs `a` and `b` at the same time (`b` on a thread of its own); the first error,
/// `a`'s first.
pub fn together(
    a: impl FnOnce() -> Result<()>,
    b: impl FnOnce() -> Result<()> + Send,
) -> Result<()> {
    std::thread::scope(|s| {
        let t = s.spawn(b);
        let first = a();
        let second = t
            .join()
            .unwrap_or_else(|_| Err(err(Kind::Other, "a thread of a paired operation panicked")));
        first.and(second)
    })
}

/// Places holds (one pool per call); holds that exist already are fine. All at once
/// first: a hold that exists fails the whole call, and only then are the snapshots'
/// holds read to leave those out (one request per snapshot).
fn hold(zfs: &Zfs, holds: &[Hold]) -> Result<()> {
    let all: Vec<_> = holds.iter().map(to_libzfs).collect();
    let missing = match zfs.hold(&all, None) {
        Err(e) if e.kind() == libzfs::ErrorKind::AlreadyExists => {
            let mut todo = Vec::new();
            for one in holds {
                if !zfs.holds(&one.snapshot)?.iter().any(|(t, _)| *t == one.tag) {
                    todo.push(to_libzfs(one));
                }
            }
            zfs.hold(&todo, None)?
        }
        other => other?,
    };
    if let Some(m) = missing.first() {
        return Err(err(
            Kind::NotFound,
            format!("cannot hold {m}: it does not exist"),
        ));
    }
    Ok(())
}

/// Releases holds; holds or snapshots that are gone are ignored. All at once first
/// (the kernel skips a tag that is not there); when that fails for a snapshot that is
/// gone, the others one by one as they are.
fn release(zfs: &Zfs, holds: &[Hold]) -> Result<()> {
    let all: Vec<_> = holds.iter().map(to_libzfs).collect();
    match zfs.release(&all) {
        Err(e) if e.kind() == libzfs::ErrorKind::NotFound => {}
        other => return other.map(drop).map_err(Into::into),
    }
    let mut todo = Vec::new();
    for one in holds {
        if !zfs.exists(one.snapshot.as_str()) {
            continue;
        }
        if zfs.holds(&one.snapshot)?.iter().any(|(t, _)| *t == one.tag) {
            todo.push(to_libzfs(one));
        }
    }
    zfs.release(&todo)?;
    Ok(())
}

/// Creates bookmarks from snapshots.
fn bookmark(zfs: &Zfs, bookmarks: &[NewBookmark]) -> Result<()> {
    let pairs: Vec<_> = bookmarks
        .iter()
        .map(|b| (b.bookmark.clone(), SendSource::from(b.snapshot.clone())))
        .collect();
    Ok(zfs.bookmark(&pairs)?)
}

/// Rolls `snap`'s dataset back to it: snapshots newer than it are destroyed first
/// (releasing zrep's own holds on them), then changes since it are discarded.
pub fn rollback_to(zfs: &Zfs, snap: &SnapshotName, our_tag: &str) -> Result<()> {
    let ds = snap.dataset();
    let snaps = zfs
        .snapshots(&ds)?
        .ok_or_else(|| err(Kind::NotFound, format!("{ds} does not exist")))?;
    let pos = snaps
        .iter()
        .position(|s| s.name == *snap)
        .ok_or_else(|| err(Kind::NotFound, format!("{snap} does not exist")))?;
    let newer: Vec<SnapshotName> = snaps[pos + 1..].iter().map(|s| s.name.clone()).collect();
    let ours: Vec<libzfs::Hold> = newer
        .iter()
        .filter(|s| {
            zfs.holds(s)
                .map(|h| h.iter().any(|(t, _)| t == our_tag))
                .unwrap_or(false)
        })
        .map(|s| libzfs::Hold {
            snapshot: s.clone(),
            tag: our_tag.to_string(),
        })
        .collect();
    zfs.release(&ours)?;
    zfs.destroy_snapshots(&newer, false)?;
    Ok(zfs.rollback_to(snap)?)
}
