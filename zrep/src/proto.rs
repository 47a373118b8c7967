//! The framed protocol between `zrep` and `zrep serve` (over an SSH pipe).
//!
//! Every frame is `[kind: u8][len: u32 big-endian][payload]`:
//! - `J`: a control message, JSON ([`Request`] or [`Response`]), at most 1 MiB;
//! - `D`: a chunk of a ZFS send stream, at most 4 MiB;
//! - `Z`: a compressed chunk, when the hello agreed on a codec ([`crate::compress`]);
//! - `E`: end of the stream (empty payload);
//! - `A`: the sender aborted the stream; the payload is a JSON [`Error`];
//! - `K`: keepalive (empty), skipped wherever it arrives between frames.
//!
//! A session starts with `Hello` both ways (versions must match), then the client
//! sends requests, each answered by one response, but for `State`, whose answer comes
//! in as many `State` parts as its size needs (`more` on all but the last). `Send`
//! and `Receive` carry a stream as `D` frames ended by `E` or `A`, so both ends always
//! know where the stream stops and the session survives a failed transfer.
//!
//! Everything from the peer is untrusted: frames are bounded before anything is
//! allocated, names are validated as they are decoded (typed names), a listing is
//! bounded in entries, and nothing is read past the frame being parsed. Malformed
//! input is an error, never a panic. Both ends send keepalives while they work, so a
//! peer that sends no byte for the stall timeout is gone (see [`crate::link`]).

use std::io::{self, Read, Write};

use libzfs::{BookmarkName, DatasetName, SendSource, SnapshotName};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The protocol version; both ends must speak the same.
pub const VERSION: u32 = 5;
/// Bytes of a frame header (kind and length).
pub const HEAD_LEN: usize = 5;
/// Largest control message accepted (and sent: both ends enforce it).
pub const MAX_MESSAGE: usize = 1 << 20;
/// Largest stream chunk accepted.
pub const MAX_CHUNK: usize = 4 << 20;
/// Header bytes of a `Z` frame's payload (a compressed chunk, [`crate::compress`]):
/// codec and decompressed length.
pub const Z_HEAD: usize = 5;
/// Largest `Z` frame payload: a chunk that did not shrink is sent as `D`, so a
/// compressed one is below the chunk limit; the header comes on top.
pub const MAX_Z_FRAME: usize = MAX_CHUNK + Z_HEAD;
/// Most snapshots and bookmarks one listing may hold, on both ends (a host with
/// hundreds of datasets of thousands of snapshots each stays well inside).
pub const MAX_LISTING_ENTRIES: usize = 2_000_000;
/// Longest resume token accepted in a request or a listing.
pub const MAX_TOKEN: usize = 64 << 10;

/// A frame as read from the wire (keepalives are skipped, never returned).
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A control message (JSON bytes).
    Message(Vec<u8>),
    /// Stream data.
    Data(Vec<u8>),
    /// Compressed stream data (a `Z` frame's payload).
    Compressed(Vec<u8>),
    /// End of stream.
    End,
    /// Stream aborted by its sender.
    Abort(Error),
}

/// Protocol errors: everything a broken or hostile peer can cause.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    /// The pipe failed (or stalled: [`io::ErrorKind::TimedOut`]).
    #[error("connection to the peer failed: {0}")]
    Io(#[from] io::Error),
    /// The peer closed the connection.
    #[error("the peer closed the connection{0}")]
    Closed(&'static str),
    /// A frame kind we do not know.
    #[error("the peer sent an unknown frame kind 0x{0:02x} (is it zrep serve?)")]
    UnknownKind(u8),
    /// A length prefix over the limit.
    #[error("the peer sent a {kind} frame of {len} bytes, over the {max}-byte limit")]
    TooLarge {
        /// Frame kind.
        kind: char,
        /// Claimed length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A control message that is not valid JSON of the expected shape.
    #[error("the peer sent a malformed message: {0}")]
    BadMessage(String),
    /// Something arrived that does not fit the conversation.
    #[error("unexpected from the peer: {0}")]
    Unexpected(String),
    /// The versions differ.
    #[error("protocol version mismatch: we speak {ours}, the peer speaks {theirs} (peer zrep {peer_zrep}); install the same zrep on both ends")]
    Version {
        /// Our version.
        ours: u32,
        /// Theirs.
        theirs: u32,
        /// The peer's zrep version.
        peer_zrep: String,
    },
}

impl ProtoError {
    /// Whether the peer went silent for the stall timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, ProtoError::Io(e) if e.kind() == io::ErrorKind::TimedOut)
    }
}

pub(crate) fn read_exact_or_eof(r: &mut dyn Read, buf: &mut [u8]) -> Result<bool, ProtoError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(ProtoError::Closed(" in the middle of a frame")),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

/// A frame header: its kind byte (one of `J`, `D`, `Z`, `E`, `A`) and payload length,
/// checked against the kind's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// `J`, `D`, `Z`, `E` or `A`.
    pub kind: u8,
    /// Payload bytes that follow.
    pub len: usize,
}

/// Reads one frame header, skipping keepalives; `Ok(None)` on a clean end of input
/// (between frames).
pub fn read_head(r: &mut dyn Read) -> Result<Option<Head>, ProtoError> {
    loop {
        let mut head = [0u8; 5];
        if !read_exact_or_eof(r, &mut head)? {
            return Ok(None);
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let max = match head[0] {
            b'J' | b'A' => MAX_MESSAGE,
            b'D' => MAX_CHUNK,
            b'Z' => MAX_Z_FRAME,
            b'E' | b'K' => 0,
            other => return Err(ProtoError::UnknownKind(other)),
        };
        if len > max {
            return Err(ProtoError::TooLarge {
                kind: char::from(head[0]),
                len,
                max,
            });
        }
        if head[0] != b'K' {
            return Ok(Some(Head { kind: head[0], len }));
        }
    }
}

/// Reads the payload announced by `head` and makes it a frame.
pub fn read_body(r: &mut dyn Read, head: Head) -> Result<Frame, ProtoError> {
    let mut payload = vec![0u8; head.len];
    if !read_exact_or_eof(r, &mut payload)? && head.len > 0 {
        return Err(ProtoError::Closed(" in the middle of a frame"));
    }
    Ok(match head.kind {
        b'J' => Frame::Message(payload),
        b'D' => Frame::Data(payload),
        b'Z' => Frame::Compressed(payload),
        b'E' => Frame::End,
        _ => Frame::Abort(
            serde_json::from_slice(&payload).map_err(|e| ProtoError::BadMessage(e.to_string()))?,
        ),
    })
}

/// Makes `buf` `len` zero bytes for a payload a peer announced. It grows to exactly
/// `len` (not `Vec`'s doubling) and lets the old allocation go first, so that a
/// sequence of growing frames holds one frame's bytes, never two or three.
pub fn resize_for(buf: &mut Vec<u8>, len: usize) {
    if buf.capacity() < len {
        *buf = Vec::new();
        buf.reserve_exact(len);
    }
    buf.resize(len, 0);
}

/// Reads one frame; `Ok(None)` on a clean end of input (between frames).
pub fn read_frame(r: &mut dyn Read) -> Result<Option<Frame>, ProtoError> {
    match read_head(r)? {
        None => Ok(None),
        Some(head) => read_body(r, head).map(Some),
    }
}

/// Writes a frame header announcing `len` payload bytes.
pub fn write_head(w: &mut dyn Write, kind: u8, len: usize) -> io::Result<()> {
    let len = u32::try_from(len).map_err(|_| io::Error::other("frame too large"))?;
    let mut head = [kind, 0, 0, 0, 0];
    head[1..].copy_from_slice(&len.to_be_bytes());
    w.write_all(&head)
}

/// Writes a frame header and payload (one write of the header, one of the payload).
pub fn write_frame(w: &mut dyn Write, kind: u8, payload: &[u8]) -> io::Result<()> {
    write_head(w, kind, payload.len())?;
    w.write_all(payload)
}

/// A control message as a frame payload, refused when over [`MAX_MESSAGE`] (the peer
/// would refuse it).
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, ProtoError> {
    let body = serde_json::to_vec(msg).map_err(|e| ProtoError::BadMessage(e.to_string()))?;
    if body.len() > MAX_MESSAGE {
        return Err(ProtoError::TooLarge {
            kind: 'J',
            len: body.len(),
            max: MAX_MESSAGE,
        });
    }
    Ok(body)
}

/// Sends a control message.
pub fn send_msg<T: Serialize>(w: &mut dyn Write, msg: &T) -> Result<(), ProtoError> {
    write_frame(w, b'J', &encode(msg)?)?;
    w.flush()?;
    Ok(())
}

/// Reads a control message; end of input is [`ProtoError::Closed`].
pub fn recv_msg<T: for<'de> Deserialize<'de>>(r: &mut dyn Read) -> Result<T, ProtoError> {
    recv_msg_or_eof(r)?.ok_or(ProtoError::Closed(""))
}

/// Reads a control message, or `None` at a clean end of input.
pub fn recv_msg_or_eof<T: for<'de> Deserialize<'de>>(
    r: &mut dyn Read,
) -> Result<Option<T>, ProtoError> {
    match read_frame(r)? {
        None => Ok(None),
        Some(Frame::Message(body)) => serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| ProtoError::BadMessage(e.to_string())),
        Some(other) => Err(ProtoError::Unexpected(format!(
            "{} where a message was expected",
            frame_name(&other)
        ))),
    }
}

fn frame_name(f: &Frame) -> &'static str {
    match f {
        Frame::Message(_) => "a message",
        Frame::Data(_) | Frame::Compressed(_) => "stream data",
        Frame::End => "end of stream",
        Frame::Abort(_) => "a stream abort",
    }
}

/// Send-stream options carried in requests.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Flags {
    /// `-L`
    pub large_blocks: bool,
    /// `-e`
    pub embedded: bool,
    /// `-c`
    pub compressed: bool,
    /// `-w`
    pub raw: bool,
}

/// One snapshot or bookmark as listed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SnapEntry {
    /// Short name (after `@` or `#`); checked against its dataset by the client.
    pub name: String,
    /// GUID.
    pub guid: u64,
    /// Creation txg.
    pub createtxg: u64,
    /// Creation time (seconds).
    pub creation: u64,
    /// Number of holds (snapshots only).
    #[serde(default)]
    pub userrefs: u64,
    /// The tags of those holds, when the listing read them (`None`: unknown, as from
    /// a listing that did not read `userrefs`, or from an older zrep of the same
    /// protocol, which leaves the field out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holds: Option<Vec<String>>,
}

/// The properties a listing reads: each one costs the kernel a lookup of its dataset
/// (for an unmounted one, most of the listing's cost), so replication reads only
/// what it decides from.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Reading {
    /// Every field of [`DatasetState`].
    #[default]
    Full,
    /// What a replication source is planned from: no kind (`filesystem` is given),
    /// free space or resume token, no snapshot's `creation`.
    Source,
    /// What a replication target is planned from: no kind, size or encryption, no
    /// snapshot's `creation`, no bookmarks (a run's bookmarks are on its source).
    Target,
    /// What `zrep list` shows: a dataset's kind, a snapshot's or bookmark's GUID and
    /// creation txg.
    List,
    /// Names, and the opt-out property: what a recursive run chooses the datasets it
    /// locks from, before it lists them in full.
    Names,
}

impl Reading {
    fn is_full(&self) -> bool {
        *self == Reading::Full
    }

    /// Whether a listing with snapshots reads bookmarks too (one request per dataset).
    pub fn bookmarks(self) -> bool {
        self != Reading::Target
    }
}

/// What one side knows about one dataset.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DatasetState {
    /// Full name.
    pub name: DatasetName,
    /// `filesystem` or `volume`.
    pub kind: String,
    /// The dataset's own GUID (every dataset has its own, replicas too): tells that
    /// a target reached through SSH is the source itself.
    pub guid: u64,
    /// Snapshots, oldest first.
    pub snapshots: Vec<SnapEntry>,
    /// Bookmarks, oldest first.
    pub bookmarks: Vec<SnapEntry>,
    /// Bytes written since the newest snapshot.
    pub written: u64,
    /// Available bytes.
    pub available: u64,
    /// Referenced bytes.
    pub referenced: u64,
    /// `receive_resume_token`, if any.
    pub resume_token: Option<String>,
    /// The snapshot GUID the token resumes, decoded.
    pub resume_toguid: Option<u64>,
    /// The source GUID of an incremental resume, decoded.
    pub resume_fromguid: Option<u64>,
    /// `encryption` is not `off`.
    pub encrypted: bool,
    /// The value of zrep's opt-out property ([`crate::names::OPT_OUT`]) here, and
    /// whether it is set on this dataset rather than inherited (source listings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_out: Option<(String, bool)>,
}

impl DatasetState {
    /// What a restricted server tells of a dataset outside its roots that replication
    /// needs to know about (a pool's identity, a new target's parent's free space):
    /// no snapshots, no sizes but the free space.
    pub fn reduced(self) -> DatasetState {
        DatasetState {
            snapshots: Vec::new(),
            bookmarks: Vec::new(),
            written: 0,
            referenced: 0,
            resume_token: None,
            resume_toguid: None,
            resume_fromguid: None,
            opt_out: None,
            ..self
        }
    }

    /// A filesystem with these snapshots and nothing else known (unit tests).
    #[cfg(test)]
    pub(crate) fn filesystem(name: &str, snapshots: Vec<SnapEntry>) -> DatasetState {
        DatasetState {
            name: DatasetName::new(name).unwrap(),
            kind: "filesystem".into(),
            guid: 0,
            snapshots,
            bookmarks: Vec::new(),
            written: 0,
            available: 0,
            referenced: 0,
            resume_token: None,
            resume_toguid: None,
            resume_fromguid: None,
            encrypted: false,
            opt_out: None,
        }
    }
}

/// Where a stream lands and how: the `Receive` request, and a local receive.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Receive {
    /// Target dataset.
    pub dataset: DatasetName,
    /// Roll back first.
    pub force: bool,
    /// Keep partial state on interruption.
    pub resumable: bool,
    /// Keep the target `readonly=on` (set by every receive, unless `set` says
    /// otherwise).
    pub readonly: bool,
    /// The source's properties, received as `zfs send -p` would carry them; `None`
    /// leaves the target's received properties as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received: Option<Vec<Property>>,
    /// Set on the target over what is received (`zfs receive -o`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<Property>,
    /// Inherited on the target whatever is received (`zfs receive -x`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inherit: Vec<String>,
}

impl Receive {
    /// A resumable receive into `dataset` that keeps it `readonly=on`, without
    /// properties.
    pub fn new(dataset: DatasetName, force: bool) -> Receive {
        Receive {
            dataset,
            force,
            resumable: true,
            readonly: true,
            received: None,
            set: Vec::new(),
            inherit: Vec::new(),
        }
    }
}

/// A dataset property as it travels, in the form the kernel takes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Property {
    /// Its name: a system property or a user property (`module:name`).
    pub name: String,
    /// Its value.
    pub value: PropValue,
}

/// A property value: numbers and index properties (`compression`, by index) as
/// numbers, the others as strings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum PropValue {
    /// A number or an index.
    Number(u64),
    /// A string.
    String(String),
}

/// The most properties one dataset's list may carry (OpenZFS has about 80 settable
/// system properties; user properties are the rest).
pub const MAX_PROPERTIES: usize = 1024;

/// The most snapshots one `SnapshotWritten` may ask for: its answer, each name with
/// three numbers, then still fits in a message (a larger tree takes its snapshots with
/// a pool sync and `Snapshot`).
pub const MAX_TAKEN: usize = 2_500;

/// A snapshot `SnapshotWritten` took (or found taken).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Taken {
    /// Its name.
    pub snapshot: SnapshotName,
    /// `guid`.
    pub guid: u64,
    /// `createtxg`.
    pub createtxg: u64,
    /// `creation`, seconds since the epoch.
    pub creation: u64,
}

/// A hold: `tag` on `snapshot`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Hold {
    /// The held snapshot.
    pub snapshot: SnapshotName,
    /// The hold's tag.
    pub tag: String,
}

/// A bookmark to create from a snapshot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NewBookmark {
    /// The bookmark.
    pub bookmark: BookmarkName,
    /// The snapshot it marks.
    pub snapshot: SnapshotName,
}

/// zrep's cursor on one side, in one request: the new holds and bookmarks first, then
/// the old ones removed. A side places the first two together and removes the last two
/// together, so that each pair lands in one transaction group where ZFS allows.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CursorMove {
    /// Holds to place (those in place already are fine).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hold: Vec<Hold>,
    /// Bookmarks to create.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bookmark: Vec<NewBookmark>,
    /// Holds to release once the new ones are in place (missing ones are ignored).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub release: Vec<Hold>,
    /// Bookmarks to destroy once the new ones are in place.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destroy_bookmarks: Vec<BookmarkName>,
}

impl CursorMove {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.hold.is_empty()
            && self.bookmark.is_empty()
            && self.release.is_empty()
            && self.destroy_bookmarks.is_empty()
    }

    /// Its first half: the holds and bookmarks it places.
    pub fn placing(&self) -> CursorMove {
        CursorMove {
            hold: self.hold.clone(),
            bookmark: self.bookmark.clone(),
            ..CursorMove::default()
        }
    }

    /// Its second half: the holds and bookmarks it removes.
    pub fn removing(&self) -> CursorMove {
        CursorMove {
            release: self.release.clone(),
            destroy_bookmarks: self.destroy_bookmarks.clone(),
            ..CursorMove::default()
        }
    }

    /// Adds `other`'s operations to this one's.
    pub fn append(&mut self, other: CursorMove) {
        self.hold.extend(other.hold);
        self.bookmark.extend(other.bookmark);
        self.release.extend(other.release);
        self.destroy_bookmarks.extend(other.destroy_bookmarks);
    }
}

/// A request from the client to `zrep serve`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// First message: versions, and the client's stall timeout (the server sends
    /// keepalives often enough for it).
    Hello {
        /// Protocol version.
        version: u32,
        /// zrep version.
        zrep: String,
        /// The client's stall timeout, in seconds (0: unknown, the server's own).
        #[serde(default)]
        timeout_secs: u64,
        /// Codecs the client would have stream data compressed with, preferred first
        /// (none: no compression; an older client says nothing).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        compress: Vec<String>,
        /// Compress streams whose blocks are compressed already (`-c`, raw) too.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        compress_always: bool,
        /// The most bytes per second the server may send stream data at in this
        /// session (a pull's `--bwlimit`, at the time of the hello); the client also
        /// reads no faster.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rate: Option<u64>,
    },
    /// List a dataset (and descendants), with snapshots and bookmarks unless
    /// `datasets_only`.
    State {
        /// The dataset.
        dataset: DatasetName,
        /// With descendants.
        recursive: bool,
        /// Without snapshots and bookmarks: the dataset's own properties, at the cost
        /// of a dataset rather than of its snapshots.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        datasets_only: bool,
        /// The properties read.
        #[serde(default, skip_serializing_if = "Reading::is_full")]
        reading: Reading,
    },
    /// Estimate a stream size.
    Estimate {
        /// The snapshot.
        snapshot: SnapshotName,
        /// Incremental source.
        from: Option<SendSource>,
        /// Flags.
        flags: Flags,
    },
    /// Estimate what is left of a resumable stream.
    EstimateResume {
        /// The token.
        token: String,
    },
    /// Send a stream (answered by `Streaming`, the stream, then `Sent`).
    Send {
        /// The snapshot.
        snapshot: SnapshotName,
        /// Incremental source.
        from: Option<SendSource>,
        /// Flags.
        flags: Flags,
    },
    /// Send the rest of an interrupted stream.
    SendResume {
        /// The target's resume token.
        token: String,
    },
    /// Receive a stream that follows this request (answered by `Received`).
    Receive(Receive),
    /// A dataset's properties set locally or received: what `--send-properties`
    /// carries (answered by `Properties`).
    Properties {
        /// The dataset.
        dataset: DatasetName,
    },
    /// Take snapshots atomically.
    Snapshot {
        /// Full snapshot names.
        snapshots: Vec<SnapshotName>,
    },
    /// Take those of the snapshots whose datasets were written to since their newest
    /// snapshot (or have none), in one transaction group, all or none (answered by
    /// `Taken`).
    SnapshotWritten {
        /// Full snapshot names, at most [`MAX_TAKEN`].
        snapshots: Vec<SnapshotName>,
    },
    /// Move zrep's cursor: holds and bookmarks placed, then old ones removed.
    Cursor(CursorMove),
    /// Destroy snapshots.
    DestroySnapshots {
        /// Full names.
        snapshots: Vec<SnapshotName>,
    },
    /// Roll back to a snapshot (destroying newer snapshots first, `force` semantics).
    RollbackTo {
        /// The snapshot.
        snapshot: SnapshotName,
        /// zrep's hold tag: holds with it on destroyed snapshots are released.
        tag: String,
    },
    /// Wait for the pool of a dataset to write out what is pending (so that
    /// `written` tells whether anything changed).
    Sync {
        /// Any dataset of the pool.
        dataset: DatasetName,
    },
    /// Set `readonly` on a dataset (and its descendants): `zrep failover`.
    Readonly {
        /// The dataset.
        dataset: DatasetName,
        /// Its descendants too.
        recursive: bool,
        /// `on` or `off`.
        on: bool,
    },
    /// Abort a resumable receive (discard its partial state).
    AbortResume {
        /// The target dataset.
        dataset: DatasetName,
    },
    /// The tags of a snapshot's holds (answered by `Holds`): `zrep verify`.
    Holds {
        /// The snapshot.
        snapshot: SnapshotName,
    },
    /// Read a snapshot back in full, into nothing (answered by `Sent`): ZFS reads and
    /// checksums every block, so a damaged one is an error (`zrep verify --read`).
    ReadBack {
        /// The snapshot.
        snapshot: SnapshotName,
        /// Send raw (an encrypted dataset, whose key may not be loaded).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        raw: bool,
    },
    /// Lock the target dataset for this session (one replication per target).
    Lock {
        /// The dataset.
        dataset: DatasetName,
        /// Seconds to wait for another holder.
        wait_secs: u64,
    },
    /// End of session.
    Bye,
}

/// What a request does, for the server's policy and log: the one table every
/// operation is listed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Hello, Bye.
    Session,
    /// State, Properties, Sync, Lock, Holds, ReadBack: reads (a lock changes nothing
    /// on the pools; a read back sends nothing to the client).
    Read,
    /// Estimate, Send and their resume forms: data leaves the host.
    Send,
    /// Receive.
    Receive,
    /// Snapshot.
    Snapshot,
    /// Cursor: zrep's holds and bookmarks.
    Cursor,
    /// DestroySnapshots.
    DestroySnapshots,
    /// RollbackTo.
    Rollback,
    /// AbortResume.
    AbortResume,
    /// Readonly: failover.
    Readonly,
}

impl Request {
    /// Its class in the table of operations.
    pub fn op(&self) -> Op {
        match self {
            Request::Hello { .. } | Request::Bye => Op::Session,
            Request::State { .. }
            | Request::Properties { .. }
            | Request::Sync { .. }
            | Request::Lock { .. }
            | Request::Holds { .. }
            | Request::ReadBack { .. } => Op::Read,
            Request::Estimate { .. }
            | Request::EstimateResume { .. }
            | Request::Send { .. }
            | Request::SendResume { .. } => Op::Send,
            Request::Receive(_) => Op::Receive,
            Request::Snapshot { .. } | Request::SnapshotWritten { .. } => Op::Snapshot,
            Request::Cursor(_) => Op::Cursor,
            Request::DestroySnapshots { .. } => Op::DestroySnapshots,
            Request::RollbackTo { .. } => Op::Rollback,
            Request::AbortResume { .. } => Op::AbortResume,
            Request::Readonly { .. } => Op::Readonly,
        }
    }

    /// Whether it changes anything on the pools (the server logs those).
    pub fn changes(&self) -> bool {
        !matches!(self.op(), Op::Session | Op::Read | Op::Send)
    }

    /// One line for logs: the operation and the first name it touches.
    pub fn describe(&self) -> String {
        fn first<T: AsRef<str>>(what: &str, v: &[T]) -> String {
            match v {
                [] => format!("{what} (none)"),
                [one] => format!("{what} {}", one.as_ref()),
                [one, rest @ ..] => format!("{what} {} and {} more", one.as_ref(), rest.len()),
            }
        }
        match self {
            Request::Hello { zrep, .. } => format!("hello from zrep {zrep}"),
            Request::Bye => "bye".into(),
            Request::State {
                dataset, recursive, ..
            } => {
                format!("list {dataset}{}", if *recursive { " -r" } else { "" })
            }
            Request::Sync { dataset } => format!("sync the pool of {dataset}"),
            Request::Lock { dataset, .. } => format!("lock {dataset}"),
            Request::Holds { snapshot } => format!("holds of {snapshot}"),
            Request::ReadBack { snapshot, .. } => format!("read back {snapshot}"),
            Request::Estimate { snapshot, .. } => format!("estimate {snapshot}"),
            Request::Send { snapshot, from, .. } => match from {
                Some(f) => format!("send {f} -> {snapshot}"),
                None => format!("send {snapshot} (full)"),
            },
            Request::EstimateResume { .. } => "estimate a resumed send".into(),
            Request::SendResume { .. } => "resume a send".into(),
            Request::Receive(r) => {
                format!(
                    "receive into {}{}",
                    r.dataset,
                    if r.force { " (force)" } else { "" }
                )
            }
            Request::Properties { dataset } => format!("properties of {dataset}"),
            Request::Snapshot { snapshots } => first("snapshot", snapshots),
            Request::SnapshotWritten { snapshots } => first("snapshot what was written", snapshots),
            Request::Cursor(m) => {
                let names = (m.hold.iter().chain(&m.release))
                    .map(|h| h.snapshot.as_str())
                    .chain(m.bookmark.iter().map(|b| b.bookmark.as_str()))
                    .chain(m.destroy_bookmarks.iter().map(|b| b.as_str()))
                    .collect::<Vec<_>>();
                first(
                    &format!(
                        "cursor (hold {}, bookmark {}, release {}, destroy {})",
                        m.hold.len(),
                        m.bookmark.len(),
                        m.release.len(),
                        m.destroy_bookmarks.len()
                    ),
                    &names,
                )
            }
            Request::DestroySnapshots { snapshots } => first("destroy", snapshots),
            Request::RollbackTo { snapshot, .. } => format!("roll back to {snapshot}"),
            Request::Readonly {
                dataset,
                recursive,
                on,
            } => format!(
                "set readonly={} on {dataset}{}",
                if *on { "on" } else { "off" },
                if *recursive { " and descendants" } else { "" }
            ),
            Request::AbortResume { dataset } => {
                format!("discard the interrupted receive into {dataset}")
            }
        }
    }
}

/// A response from `zrep serve`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// Versions.
    Hello {
        /// Protocol version.
        version: u32,
        /// zrep version.
        zrep: String,
        /// OpenZFS version the server was built against.
        openzfs: String,
        /// The server's stall timeout, in seconds.
        timeout_secs: u64,
        /// The codec the server took from the client's offer (none: plain frames; an
        /// older server says nothing).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        compress: Option<String>,
    },
    /// Datasets (none when the dataset does not exist), parents before children; a
    /// part of the answer when `more` (the next part may continue its last dataset's
    /// snapshots and bookmarks: see [`Listing`]).
    State {
        /// Parents before children.
        datasets: Vec<DatasetState>,
        /// More parts follow.
        more: bool,
    },
    /// Size estimate.
    Estimate {
        /// Bytes.
        bytes: u64,
    },
    /// The stream follows.
    Streaming,
    /// The stream was sent completely.
    Sent {
        /// Stream bytes.
        bytes: u64,
    },
    /// A dataset's properties set locally or received.
    Properties {
        /// The properties.
        properties: Vec<Property>,
    },
    /// The stream was received.
    Received {
        /// The snapshot created.
        snapshot: SnapshotName,
        /// Stream bytes.
        bytes: u64,
    },
    /// The tags of a snapshot's holds.
    Holds {
        /// The tags.
        tags: Vec<String>,
    },
    /// The snapshots `SnapshotWritten` took or found taken, in the order asked.
    Taken {
        /// Each with its identity.
        snapshots: Vec<Taken>,
    },
    /// Done.
    Ok,
    /// The request failed or was refused.
    Error(Error),
}

/// Splits a listing into `State` answers that each fit in a message: a dataset whose
/// snapshots do not fit in one goes on in the next part, under the same name.
pub fn listing_parts(datasets: Vec<DatasetState>) -> Vec<Response> {
    // Room for the envelope and one dataset's fixed fields (a name of at most 255
    // bytes, a resume token of at most MAX_TOKEN): whatever is left is for entries.
    const BUDGET: usize = MAX_MESSAGE - MAX_TOKEN - 4096;
    let size = |e: &SnapEntry| serde_json::to_vec(e).map_or(MAX_MESSAGE, |v| v.len() + 1);
    let mut parts: Vec<Vec<DatasetState>> = vec![Vec::new()];
    let mut used = 0;
    for mut d in datasets {
        let mut snapshots = std::mem::take(&mut d.snapshots).into_iter().peekable();
        let mut bookmarks = std::mem::take(&mut d.bookmarks).into_iter().peekable();
        loop {
            used += 512 + d.resume_token.as_ref().map_or(0, String::len);
            let mut piece = DatasetState {
                snapshots: Vec::new(),
                bookmarks: Vec::new(),
                ..d.clone()
            };
            while let Some(s) = snapshots.next_if(|s| used + size(s) <= BUDGET) {
                used += size(&s);
                piece.snapshots.push(s);
            }
            while let Some(b) = bookmarks.next_if(|b| used + size(b) <= BUDGET) {
                used += size(&b);
                piece.bookmarks.push(b);
            }
            parts.last_mut().expect("one part at least").push(piece);
            if snapshots.peek().is_none() && bookmarks.peek().is_none() {
                break;
            }
            parts.push(Vec::new());
            used = 0;
        }
    }
    let n = parts.len();
    parts
        .into_iter()
        .enumerate()
        .map(|(i, datasets)| Response::State {
            datasets,
            more: i + 1 < n,
        })
        .collect()
}

/// A listing put back together from its parts, bounded in entries.
#[derive(Debug, Default)]
pub struct Listing {
    datasets: Vec<DatasetState>,
    entries: usize,
}

impl Listing {
    /// Adds one part; a dataset named like the last one so far continues it.
    pub fn add(&mut self, part: Vec<DatasetState>) -> Result<(), ProtoError> {
        for d in part {
            // Each part of a dataset counts too: a peer repeating empty parts of one
            // dataset runs into the limit like one sending entries.
            self.entries += 1 + d.snapshots.len() + d.bookmarks.len();
            if self.entries > MAX_LISTING_ENTRIES {
                return Err(ProtoError::Unexpected(format!(
                    "a listing of over {MAX_LISTING_ENTRIES} snapshots and bookmarks"
                )));
            }
            match self.datasets.last_mut() {
                Some(last) if last.name == d.name => {
                    last.snapshots.extend(d.snapshots);
                    last.bookmarks.extend(d.bookmarks);
                }
                _ => self.datasets.push(d),
            }
        }
        Ok(())
    }

    /// The datasets.
    pub fn into_datasets(self) -> Vec<DatasetState> {
        self.datasets
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{err, Kind};

    fn frames(bytes: &[u8]) -> Vec<Result<Option<Frame>, String>> {
        let mut r = bytes;
        let mut out = Vec::new();
        loop {
            let f = read_frame(&mut r).map_err(|e| e.to_string());
            let stop = !matches!(f, Ok(Some(_)));
            out.push(f);
            if stop {
                return out;
            }
        }
    }

    fn hello() -> Request {
        Request::Hello {
            version: VERSION,
            zrep: "x".into(),
            timeout_secs: 600,
            compress: Vec::new(),
            compress_always: false,
            rate: None,
        }
    }

    #[test]
    fn round_trips_messages_and_data_and_skips_keepalives() {
        let mut w = Vec::new();
        write_frame(&mut w, b'K', b"").unwrap();
        send_msg(&mut w, &hello()).unwrap();
        write_frame(&mut w, b'D', b"abc").unwrap();
        write_frame(&mut w, b'K', b"").unwrap();
        write_frame(&mut w, b'E', b"").unwrap();
        write_frame(&mut w, b'K', b"").unwrap();
        let mut r = &w[..];
        assert_eq!(recv_msg::<Request>(&mut r).unwrap(), hello());
        assert_eq!(
            read_frame(&mut r).unwrap(),
            Some(Frame::Data(b"abc".to_vec()))
        );
        assert_eq!(read_frame(&mut r).unwrap(), Some(Frame::End));
        assert_eq!(read_frame(&mut r).unwrap(), None);
    }

    #[test]
    fn huge_length_is_refused_without_allocating() {
        let f = frames(&[b'J', 0xff, 0xff, 0xff, 0xff]);
        assert!(f[0].as_ref().unwrap_err().contains("over the"), "{f:?}");
        let f = frames(&[b'K', 0, 0, 0, 1, 0]);
        assert!(
            f[0].as_ref().unwrap_err().contains("over the 0-byte"),
            "{f:?}"
        );
    }

    #[test]
    fn truncated_frames_and_unknown_kinds_are_errors() {
        assert!(frames(&[b'J', 0, 0, 0, 9, b'{'])[0].is_err());
        assert!(frames(&[b'J', 0, 0])[0].is_err());
        let f = frames(b"SSH-2.0-OpenSSH");
        assert!(f[0].as_ref().unwrap_err().contains("unknown frame kind"));
    }

    #[test]
    fn bad_json_and_bad_names_are_clear_errors() {
        let mut w = Vec::new();
        write_frame(&mut w, b'J', b"{\"nope\":1}").unwrap();
        let e = recv_msg::<Request>(&mut &w[..]).unwrap_err();
        assert!(e.to_string().contains("malformed"), "{e}");
        for bad in [
            r#"{"state":{"dataset":"tank/../x","recursive":false}}"#,
            r#"{"state":{"dataset":"tank/a\u0000b","recursive":false}}"#,
            r#"{"destroy_snapshots":{"snapshots":["tank/a"]}}"#,
            r#"{"hold":{"holds":[{"snapshot":"tank@s@t","tag":"x"}]}}"#,
        ] {
            let mut w = Vec::new();
            write_frame(&mut w, b'J', bad.as_bytes()).unwrap();
            let e = recv_msg::<Request>(&mut &w[..]).unwrap_err();
            assert!(e.to_string().contains("malformed"), "{bad}: {e}");
        }
    }

    /// A listing request names only what differs from the full reading of
    /// everything: an older peer reads it as the full listing.
    #[test]
    fn listing_requests_say_only_what_they_narrow() {
        let ds = DatasetName::new("tank/a").unwrap();
        let full = Request::State {
            dataset: ds.clone(),
            recursive: true,
            datasets_only: false,
            reading: Reading::Full,
        };
        let text = serde_json::to_string(&full).unwrap();
        assert!(
            !text.contains("reading") && !text.contains("datasets_only"),
            "{text}"
        );
        let narrow = Request::State {
            dataset: ds,
            recursive: false,
            datasets_only: true,
            reading: Reading::Target,
        };
        let text = serde_json::to_string(&narrow).unwrap();
        assert!(text.contains("\"reading\":\"target\""), "{text}");
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), narrow);
    }

    #[test]
    fn a_message_over_the_limit_is_not_sent() {
        let big = Request::Snapshot {
            snapshots: (0..20_000)
                .map(|i| SnapshotName::new(format!("tank/{:0>60}@s", i)).unwrap())
                .collect(),
        };
        let mut w = Vec::new();
        assert!(matches!(
            send_msg(&mut w, &big),
            Err(ProtoError::TooLarge { .. })
        ));
        assert!(w.is_empty());
    }

    #[test]
    fn abort_carries_the_remote_error() {
        let e = err(Kind::Io, "boom");
        let mut w = Vec::new();
        write_frame(&mut w, b'A', &serde_json::to_vec(&e).unwrap()).unwrap();
        assert_eq!(read_frame(&mut &w[..]).unwrap(), Some(Frame::Abort(e)));
    }

    fn dataset(name: &str, snapshots: usize) -> DatasetState {
        let snapshots = (0..snapshots)
            .map(|i| SnapEntry {
                name: format!("zrep-{i:0>40}"),
                guid: i as u64 + (1 << 62),
                createtxg: i as u64,
                creation: 1_700_000_000 + i as u64,
                userrefs: 0,
                holds: None,
            })
            .collect();
        DatasetState {
            guid: 1,
            available: 1 << 40,
            referenced: 1 << 30,
            ..DatasetState::filesystem(name, snapshots)
        }
    }

    /// 100,000 snapshots (one dataset of 60,000 and 400 of 100) cross the protocol in
    /// parts that each fit in a message, and come back whole and in order.
    #[test]
    fn a_listing_of_100000_snapshots_crosses_in_parts() {
        let mut all = vec![dataset("tank/big", 60_000)];
        all.extend((0..400).map(|i| dataset(&format!("tank/big/c{i}"), 100)));
        let mut wire = Vec::new();
        let parts = listing_parts(all.clone());
        assert!(parts.len() > 5, "{} parts", parts.len());
        for p in &parts {
            send_msg(&mut wire, p).unwrap();
        }
        let mut r = &wire[..];
        let mut listing = Listing::default();
        loop {
            match recv_msg::<Response>(&mut r).unwrap() {
                Response::State { datasets, more } => {
                    listing.add(datasets).unwrap();
                    if !more {
                        break;
                    }
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(listing.into_datasets(), all);
    }

    #[test]
    fn a_listing_over_the_entry_limit_is_refused() {
        let mut l = Listing::default();
        let mut d = dataset("tank/x", 0);
        d.snapshots = vec![dataset("tank/y", 1).snapshots[0].clone(); MAX_LISTING_ENTRIES - 1];
        l.add(vec![d.clone()]).unwrap();
        // Even a part without entries counts.
        d.snapshots.clear();
        assert!(l.add(vec![d]).is_err());
    }

    #[test]
    fn every_request_has_a_class_and_a_description() {
        let snap = SnapshotName::new("tank/a@zrep-1").unwrap();
        let ds = DatasetName::new("tank/a").unwrap();
        let hold = Hold {
            snapshot: snap.clone(),
            tag: "zrep-1".into(),
        };
        for (req, op) in [
            (hello(), Op::Session),
            (
                Request::Receive(Receive::new(ds.clone(), true)),
                Op::Receive,
            ),
            (
                Request::Cursor(CursorMove {
                    hold: vec![hold.clone()],
                    release: vec![hold],
                    ..CursorMove::default()
                }),
                Op::Cursor,
            ),
            (
                Request::DestroySnapshots {
                    snapshots: vec![snap.clone()],
                },
                Op::DestroySnapshots,
            ),
            (
                Request::Readonly {
                    dataset: ds.clone(),
                    recursive: false,
                    on: true,
                },
                Op::Readonly,
            ),
            (
                Request::RollbackTo {
                    snapshot: snap,
                    tag: "t".into(),
                },
                Op::Rollback,
            ),
        ] {
            assert_eq!(req.op(), op);
            assert!(!req.describe().is_empty());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic fuzz: every prefix of a mixed buffer, and noise.
        let mut w = Vec::new();
        send_msg(&mut w, &Response::Estimate { bytes: 5 }).unwrap();
        write_frame(&mut w, b'D', &[7; 100]).unwrap();
        for i in 0..w.len() {
            let _ = frames(&w[..i]);
        }
        let mut x: u32 = 12345;
        for _ in 0..2000 {
            let buf: Vec<u8> = (0..64)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            let _ = frames(&buf);
            let _ = recv_msg::<Request>(&mut &buf[..]);
        }
    }
}
