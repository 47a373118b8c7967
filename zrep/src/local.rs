//! Operations on this machine's pools, through libzfs. `zrep serve` answers requests
//! with these, and local replication calls them directly.

use std::os::fd::AsFd;

use libzfs::{
    BookmarkName, DatasetName, Hold, ReceiveOptions, ResumeToken, SendFlags, SendSource,
    SnapshotName, Zfs,
};

use crate::proto::{DatasetState, Flags, RemoteError, SnapEntry};

/// Result of an operation; the error travels over the protocol unchanged.
pub type OpResult<T> = Result<T, RemoteError>;

impl From<libzfs::Error> for RemoteError {
    fn from(e: libzfs::Error) -> Self {
        RemoteError {
            kind: format!("{:?}", e.kind()),
            message: e.to_string(),
        }
    }
}

impl From<libzfs::NameError> for RemoteError {
    fn from(e: libzfs::NameError) -> Self {
        libzfs::Error::from(e).into()
    }
}

/// An error of our own making.
pub fn err(kind: &str, message: impl Into<String>) -> RemoteError {
    RemoteError {
        kind: kind.into(),
        message: message.into(),
    }
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

/// The dataset and its descendants (with `recursive`) with snapshots and bookmarks;
/// empty when it does not exist.
pub fn state(zfs: &Zfs, dataset: &str, recursive: bool) -> OpResult<Vec<DatasetState>> {
    let ds = DatasetName::new(dataset)?;
    let Some(listed) = zfs.list_fields(&ds, recursive, true, libzfs::Fields::REPLICATION)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(listed.len());
    for l in listed {
        let d = l.dataset;
        let bookmarks = zfs
            .bookmarks(&d.name)?
            .into_iter()
            .map(|b| SnapEntry {
                name: b.name.short_name().to_string(),
                guid: b.guid,
                createtxg: b.createtxg,
                creation: b.creation,
                userrefs: 0,
            })
            .collect();
        let token = d
            .receive_resume_token
            .as_deref()
            .and_then(|t| ResumeToken::parse(t).ok());
        out.push(DatasetState {
            kind: format!("{:?}", d.kind).to_lowercase(),
            guid: d.guid,
            snapshots: l
                .snapshots
                .into_iter()
                .map(|s| SnapEntry {
                    name: s.name.short_name().to_string(),
                    guid: s.guid,
                    createtxg: s.createtxg,
                    creation: s.creation,
                    userrefs: s.userrefs,
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
            name: d.name.to_string(),
        });
    }
    Ok(out)
}

fn source(from: Option<&str>) -> OpResult<Option<SendSource>> {
    Ok(match from {
        Some(f) => Some(SendSource::new(f)?),
        None => None,
    })
}

/// Waits until what was written to `dataset`'s pool is on disk: only then does a
/// dataset's `written` count it.
pub fn sync(zfs: &Zfs, dataset: &str) -> OpResult<()> {
    let ds = DatasetName::new(dataset)?;
    Ok(zfs.sync(ds.pool(), false)?)
}

/// Estimated stream size.
pub fn estimate(zfs: &Zfs, snapshot: &str, from: Option<&str>, flags: Flags) -> OpResult<u64> {
    let snap = SnapshotName::new(snapshot)?;
    Ok(zfs.send_space(&snap, source(from)?.as_ref(), send_flags(flags))?)
}

/// Estimated size of what is left of an interrupted stream.
pub fn estimate_resume(zfs: &Zfs, token: &str) -> OpResult<u64> {
    let t = ResumeToken::parse(token)?;
    Ok(zfs.send_space_from_token(&t)?)
}

/// Writes a stream to `out`.
pub fn send(
    zfs: &Zfs,
    snapshot: &str,
    from: Option<&str>,
    flags: Flags,
    out: impl AsFd,
) -> OpResult<()> {
    let snap = SnapshotName::new(snapshot)?;
    Ok(zfs.send(&snap, source(from)?.as_ref(), out, send_flags(flags))?)
}

/// Writes the rest of an interrupted stream to `out`.
pub fn send_resume(zfs: &Zfs, token: &str, out: impl AsFd) -> OpResult<()> {
    let t = ResumeToken::parse(token)?;
    if !zfs.exists(t.to.as_str()) {
        return Err(err(
            "NotFound",
            format!("cannot resume: {} no longer exists on the source", t.to),
        ));
    }
    Ok(zfs.send_from_token(&t, out)?)
}

/// Receives one stream from `input` into `dataset`. With `readonly`, a full stream
/// creates the dataset with `readonly=on` (a backup that nobody modifies by accident,
/// not even through atime, keeps accepting incrementals).
pub fn receive(
    zfs: &Zfs,
    dataset: &str,
    force: bool,
    resumable: bool,
    readonly: bool,
    input: impl AsFd,
) -> OpResult<(String, u64)> {
    let (header, raw) = libzfs::StreamHeader::read_from(&input)?;
    let mut opts = ReceiveOptions {
        force,
        resumable,
        ..Default::default()
    };
    if readonly && !header.is_incremental() {
        let mut p = libzfs::NvList::new();
        p.insert("readonly", &1u64).map_err(libzfs::Error::from)?;
        opts.props = Some(p);
    }
    let r = zfs.receive_with_header(dataset, input, &opts, header, &raw)?;
    Ok((r.snapshot.to_string(), r.bytes))
}

/// Takes snapshots atomically with user properties.
pub fn snapshot(zfs: &Zfs, snapshots: &[String], props: &[(String, String)]) -> OpResult<()> {
    let snaps = snapshots
        .iter()
        .map(SnapshotName::new)
        .collect::<Result<Vec<_>, _>>()?;
    let mut list = libzfs::NvList::new();
    for (k, v) in props {
        list.insert(k, v.as_str()).map_err(libzfs::Error::from)?;
    }
    let props = (!props.is_empty()).then_some(&*list);
    Ok(zfs.snapshot(&snaps, props)?)
}

fn holds(pairs: &[(String, String)]) -> OpResult<Vec<Hold>> {
    pairs
        .iter()
        .map(|(s, t)| {
            Ok(Hold {
                snapshot: SnapshotName::new(s.as_str())?,
                tag: t.clone(),
            })
        })
        .collect()
}

/// Places holds (one pool per call).
pub fn hold(zfs: &Zfs, pairs: &[(String, String)]) -> OpResult<()> {
    let h = holds(pairs)?;
    // Existing holds with the same tag are fine: drop them from the batch.
    let mut todo = Vec::new();
    for one in h {
        let have = zfs.holds(&one.snapshot)?;
        if !have.iter().any(|(t, _)| *t == one.tag) {
            todo.push(one);
        }
    }
    let missing = zfs.hold(&todo, None)?;
    if let Some(m) = missing.first() {
        return Err(err(
            "NotFound",
            format!("cannot hold {m}: it does not exist"),
        ));
    }
    Ok(())
}

/// Releases holds; holds or snapshots that are gone are ignored.
pub fn release(zfs: &Zfs, pairs: &[(String, String)]) -> OpResult<()> {
    let mut todo = Vec::new();
    for one in holds(pairs)? {
        if !zfs.exists(one.snapshot.as_str()) {
            continue;
        }
        if zfs.holds(&one.snapshot)?.iter().any(|(t, _)| *t == one.tag) {
            todo.push(one);
        }
    }
    zfs.release(&todo)?;
    Ok(())
}

/// Creates bookmarks from snapshots.
pub fn bookmark(zfs: &Zfs, pairs: &[(String, String)]) -> OpResult<()> {
    let p = pairs
        .iter()
        .map(|(b, s)| Ok((BookmarkName::new(b.as_str())?, SendSource::new(s)?)))
        .collect::<OpResult<Vec<_>>>()?;
    Ok(zfs.bookmark(&p)?)
}

/// Destroys snapshots.
pub fn destroy_snapshots(zfs: &Zfs, snapshots: &[String]) -> OpResult<()> {
    let s = snapshots
        .iter()
        .map(SnapshotName::new)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(zfs.destroy_snapshots(&s, false)?)
}

/// Destroys bookmarks.
pub fn destroy_bookmarks(zfs: &Zfs, bookmarks: &[String]) -> OpResult<()> {
    let b = bookmarks
        .iter()
        .map(BookmarkName::new)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(zfs.destroy_bookmarks(&b)?)
}

/// Rolls `snapshot`'s dataset back to it: snapshots newer than it are destroyed first
/// (releasing zrep's own holds on them), then changes since it are discarded.
pub fn rollback_to(zfs: &Zfs, snapshot: &str, our_tag: &str) -> OpResult<()> {
    let snap = SnapshotName::new(snapshot)?;
    let ds = snap.dataset();
    let snaps = zfs
        .snapshots(&ds)?
        .ok_or_else(|| err("NotFound", format!("{ds} does not exist")))?;
    let pos = snaps
        .iter()
        .position(|s| s.name == snap)
        .ok_or_else(|| err("NotFound", format!("{snap} does not exist")))?;
    let newer: Vec<SnapshotName> = snaps[pos + 1..].iter().map(|s| s.name.clone()).collect();
    let ours: Vec<Hold> = newer
        .iter()
        .filter(|s| {
            zfs.holds(s)
                .map(|h| h.iter().any(|(t, _)| t == our_tag))
                .unwrap_or(false)
        })
        .map(|s| Hold {
            snapshot: s.clone(),
            tag: our_tag.to_string(),
        })
        .collect();
    zfs.release(&ours)?;
    zfs.destroy_snapshots(&newer, false)?;
    Ok(zfs.rollback_to(&snap)?)
}

/// Discards the partial state of an interrupted resumable receive into `dataset`.
pub fn abort_resume(zfs: &Zfs, dataset: &str) -> OpResult<()> {
    zfs.abort_resumable_receive(&DatasetName::new(dataset)?)?;
    Ok(())
}
