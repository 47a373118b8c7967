//! The framed protocol between `zrep` and `zrep serve` (over an SSH pipe).
//!
//! Every frame is `[kind: u8][len: u32 big-endian][payload]`:
//! - `J`: a control message, JSON ([`Request`] or [`Response`]), at most 1 MiB;
//! - `D`: a chunk of a ZFS send stream, at most 4 MiB;
//! - `E`: end of the stream (empty payload);
//! - `A`: the sender aborted the stream; the payload is a JSON [`RemoteError`].
//!
//! A session starts with `Hello` both ways (versions must match), then the client
//! sends requests, each answered by one response. `Send` and `Receive` carry a stream
//! as `D` frames ended by `E` or `A`, so both ends always know where the stream stops
//! and the session survives a failed transfer. Frames are read unbuffered: nothing is
//! read past the frame being parsed, and nothing is buffered without bound.
//! Malformed input is an error, never a panic.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

/// The protocol version; both ends must speak the same.
pub const VERSION: u32 = 1;
/// Largest control message accepted.
pub const MAX_MESSAGE: usize = 1 << 20;
/// Largest stream chunk accepted (and the size we write).
pub const MAX_CHUNK: usize = 4 << 20;

/// A frame as read from the wire.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A control message (JSON bytes).
    Message(Vec<u8>),
    /// Stream data.
    Data(Vec<u8>),
    /// End of stream.
    End,
    /// Stream aborted by its sender.
    Abort(RemoteError),
}

/// Protocol errors: everything a broken or hostile peer can cause.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    /// The pipe failed.
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

/// A frame header: its kind byte (one of `J`, `D`, `E`, `A`) and payload length,
/// checked against the kind's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// `J`, `D`, `E` or `A`.
    pub kind: u8,
    /// Payload bytes that follow.
    pub len: usize,
}

/// Reads one frame header; `Ok(None)` on a clean end of input (between frames).
pub fn read_head(r: &mut dyn Read) -> Result<Option<Head>, ProtoError> {
    let mut head = [0u8; 5];
    if !read_exact_or_eof(r, &mut head)? {
        return Ok(None);
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let max = match head[0] {
        b'J' | b'A' => MAX_MESSAGE,
        b'D' => MAX_CHUNK,
        b'E' => 0,
        other => return Err(ProtoError::UnknownKind(other)),
    };
    if len > max {
        return Err(ProtoError::TooLarge {
            kind: char::from(head[0]),
            len,
            max,
        });
    }
    Ok(Some(Head { kind: head[0], len }))
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
        b'E' => Frame::End,
        _ => Frame::Abort(
            serde_json::from_slice(&payload).map_err(|e| ProtoError::BadMessage(e.to_string()))?,
        ),
    })
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

/// Sends a control message.
pub fn send_msg<T: Serialize>(w: &mut dyn Write, msg: &T) -> Result<(), ProtoError> {
    let body = serde_json::to_vec(msg).map_err(|e| ProtoError::BadMessage(e.to_string()))?;
    write_frame(w, b'J', &body)?;
    w.flush()?;
    Ok(())
}

/// Reads a control message; end of input is [`ProtoError::Closed`].
pub fn recv_msg<T: for<'de> Deserialize<'de>>(r: &mut dyn Read) -> Result<T, ProtoError> {
    match read_frame(r)? {
        None => Err(ProtoError::Closed("")),
        Some(Frame::Message(body)) => {
            serde_json::from_slice(&body).map_err(|e| ProtoError::BadMessage(e.to_string()))
        }
        Some(other) => Err(ProtoError::Unexpected(format!(
            "{} where a message was expected",
            frame_name(&other)
        ))),
    }
}

/// Recv a control message, or `None` at a clean end of input.
pub fn recv_msg_or_eof<T: for<'de> Deserialize<'de>>(
    r: &mut dyn Read,
) -> Result<Option<T>, ProtoError> {
    match read_frame(r)? {
        None => Ok(None),
        Some(Frame::Message(body)) => serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| ProtoError::BadMessage(e.to_string())),
        Some(other) => Err(ProtoError::Unexpected(format!(
            "{} where a request was expected",
            frame_name(&other)
        ))),
    }
}

fn frame_name(f: &Frame) -> &'static str {
    match f {
        Frame::Message(_) => "a message",
        Frame::Data(_) => "stream data",
        Frame::End => "end of stream",
        Frame::Abort(_) => "a stream abort",
    }
}

/// An error reported by the peer, with its words kept.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RemoteError {
    /// A stable name of the error kind (`NotFound`, `DestinationModified`...).
    pub kind: String,
    /// The peer's message, one line.
    pub message: String,
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
    /// Short name (after `@` or `#`).
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
}

/// What one side knows about one dataset.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DatasetState {
    /// Full name.
    pub name: String,
    /// `filesystem` or `volume`.
    pub kind: String,
    /// The dataset's own GUID (every dataset has its own, replicas too): tells that
    /// a target reached through SSH is the source itself. 0 from older peers.
    #[serde(default)]
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
}

/// A request from the client to `zrep serve`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// First message: versions.
    Hello {
        /// Protocol version.
        version: u32,
        /// zrep version.
        zrep: String,
    },
    /// List a dataset (and descendants) with snapshots and bookmarks.
    State {
        /// The dataset.
        dataset: String,
        /// With descendants.
        recursive: bool,
    },
    /// Estimate a stream size.
    Estimate {
        /// The snapshot.
        snapshot: String,
        /// Incremental source (snapshot or bookmark full name).
        from: Option<String>,
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
        snapshot: String,
        /// Incremental source.
        from: Option<String>,
        /// Flags.
        flags: Flags,
    },
    /// Send the rest of an interrupted stream.
    SendResume {
        /// The target's resume token.
        token: String,
    },
    /// Receive a stream that follows this request (answered by `Received`).
    Receive {
        /// Target dataset.
        dataset: String,
        /// Roll back first.
        force: bool,
        /// Keep partial state on interruption.
        resumable: bool,
        /// Create the dataset `readonly=on` (full streams).
        #[serde(default)]
        readonly: bool,
    },
    /// Take snapshots atomically.
    Snapshot {
        /// Full snapshot names.
        snapshots: Vec<String>,
        /// User properties.
        props: Vec<(String, String)>,
    },
    /// Place holds.
    Hold {
        /// (snapshot, tag) pairs.
        holds: Vec<(String, String)>,
    },
    /// Release holds (missing ones are ignored).
    Release {
        /// (snapshot, tag) pairs.
        holds: Vec<(String, String)>,
    },
    /// Create bookmarks: (bookmark, snapshot).
    Bookmark {
        /// Pairs.
        pairs: Vec<(String, String)>,
    },
    /// Destroy snapshots.
    DestroySnapshots {
        /// Full names.
        snapshots: Vec<String>,
    },
    /// Destroy bookmarks.
    DestroyBookmarks {
        /// Full names.
        bookmarks: Vec<String>,
    },
    /// Roll back to a snapshot (destroying newer snapshots first, `force` semantics).
    RollbackTo {
        /// Full snapshot name.
        snapshot: String,
        /// zrep's hold tag: holds with it on destroyed snapshots are released.
        tag: String,
    },
    /// Wait for the pool of a dataset to write out what is pending (so that
    /// `written` tells whether anything changed).
    Sync {
        /// Any dataset of the pool.
        dataset: String,
    },
    /// Abort a resumable receive (discard its partial state).
    AbortResume {
        /// The target dataset.
        dataset: String,
    },
    /// Lock the target dataset for this session (one replication per target).
    Lock {
        /// The dataset.
        dataset: String,
        /// Seconds to wait for another holder.
        wait_secs: u64,
    },
    /// End of session.
    Bye,
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
    },
    /// Datasets (empty when the dataset does not exist).
    State {
        /// Parents before children.
        datasets: Vec<DatasetState>,
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
    /// The stream was received.
    Received {
        /// The snapshot created.
        snapshot: String,
        /// Stream bytes.
        bytes: u64,
    },
    /// Done.
    Ok,
    /// The request failed.
    Error(RemoteError),
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn round_trips_messages_and_data() {
        let mut w = Vec::new();
        send_msg(
            &mut w,
            &Request::Hello {
                version: 1,
                zrep: "x".into(),
            },
        )
        .unwrap();
        write_frame(&mut w, b'D', b"abc").unwrap();
        write_frame(&mut w, b'E', b"").unwrap();
        let mut r = &w[..];
        let req: Request = recv_msg(&mut r).unwrap();
        assert_eq!(
            req,
            Request::Hello {
                version: 1,
                zrep: "x".into()
            }
        );
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
    }

    #[test]
    fn truncated_frames_and_unknown_kinds_are_errors() {
        assert!(frames(&[b'J', 0, 0, 0, 9, b'{'])[0].is_err());
        assert!(frames(&[b'J', 0, 0])[0].is_err());
        let f = frames(b"SSH-2.0-OpenSSH");
        assert!(f[0].as_ref().unwrap_err().contains("unknown frame kind"));
    }

    #[test]
    fn bad_json_is_a_clear_error() {
        let mut w = Vec::new();
        write_frame(&mut w, b'J', b"{\"nope\":1}").unwrap();
        let e = recv_msg::<Request>(&mut &w[..]).unwrap_err();
        assert!(e.to_string().contains("malformed"), "{e}");
    }

    #[test]
    fn abort_carries_the_remote_error() {
        let err = RemoteError {
            kind: "Io".into(),
            message: "boom".into(),
        };
        let mut w = Vec::new();
        write_frame(&mut w, b'A', &serde_json::to_vec(&err).unwrap()).unwrap();
        assert_eq!(read_frame(&mut &w[..]).unwrap(), Some(Frame::Abort(err)));
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
