//! One stream from a source side to a target side, with threads and pipes.
//!
//! - local → local: `lzc_send` → pipe → splice (counting) → pipe → `lzc_receive`;
//! - local → remote (push): `lzc_send` → pipe → `D` frames → ssh → `zrep serve`;
//! - remote → local (pull): `zrep serve` → ssh → `D` frames → pipe → `lzc_receive`.
//!
//! Whichever end fails, the other sees a closed pipe and stops; the error reported is
//! the one that caused it (a send error before the truncated stream it provoked, a
//! receive's own refusal before the broken pipe it provoked).

use std::sync::atomic::{AtomicU64, Ordering};

use libzfs::{SendSource, SnapshotName};

use crate::bwlimit::Limit;
use crate::compress::{Agreed, Codec};
use crate::error::{err, Error, Kind, Result};
use crate::link::Link;
use crate::local::{self, Target};
use crate::proto::{Flags, Request, Response};
use crate::pump::{self, Shaping, StreamEnd};
use crate::side::{conn_err, unexpected, Remote, Side};

/// What to send.
#[derive(Debug, Clone)]
pub enum Stream {
    /// A full or incremental stream.
    Snapshot {
        /// The snapshot.
        snapshot: SnapshotName,
        /// The incremental source (snapshot or bookmark).
        from: Option<SendSource>,
        /// Flags.
        flags: Flags,
    },
    /// The rest of an interrupted stream.
    Resume {
        /// The target's resume token.
        token: String,
    },
}

impl Stream {
    /// The stream a `Send` or `SendResume` request asks for.
    pub fn asked_by(req: &Request) -> Option<Stream> {
        match req {
            Request::Send {
                snapshot,
                from,
                flags,
            } => Some(Stream::Snapshot {
                snapshot: snapshot.clone(),
                from: from.clone(),
                flags: *flags,
            }),
            Request::SendResume { token } => Some(Stream::Resume {
                token: token.clone(),
            }),
            _ => None,
        }
    }

    /// Whether its blocks travel compressed already (`-c`) or encrypted (raw): wire
    /// compression gains little there. A resumed stream has its flags in its token
    /// (one that does not decode counts as plain: the send will say what is wrong).
    pub fn blocks_compressed(&self) -> bool {
        match self {
            Stream::Snapshot { flags, .. } => flags.compressed || flags.raw,
            Stream::Resume { token } => {
                crate::policy::parse_token(token).is_ok_and(|t| t.flags.compressed || t.flags.raw)
            }
        }
    }

    /// How a sender with `agreed` shapes this stream's bytes: its codec, if any.
    pub fn shaping(&self, agreed: Agreed, limit: &Limit) -> Shaping {
        let c = self.blocks_compressed();
        Shaping {
            codec: agreed.for_stream(c, c),
            limit: limit.clone(),
        }
    }

    /// The request that asks a server for this stream.
    fn request(&self) -> Request {
        match self.clone() {
            Stream::Snapshot {
                snapshot,
                from,
                flags,
            } => Request::Send {
                snapshot,
                from,
                flags,
            },
            Stream::Resume { token } => Request::SendResume { token },
        }
    }
}

/// Result of a transfer.
#[derive(Debug, Clone)]
pub struct Transferred {
    /// The snapshot created on the target.
    pub snapshot: SnapshotName,
    /// Stream bytes.
    pub bytes: u64,
    /// Bytes on the wire (frames, after compression); 0 local to local.
    pub wire: u64,
    /// The codec the stream travelled with.
    pub codec: Option<Codec>,
}

/// The result of a local transfer from its two halves' results: the error that caused
/// the other one when both failed.
fn outcome(sent: Result<()>, received: Result<(SnapshotName, u64)>) -> Result<Transferred> {
    match (sent, received) {
        // The receive refused for a reason of its own (a name too long, a modified
        // target...) and closed the pipe: that made the send fail ("interrupted",
        // "broken pipe"), so the receive's error is the cause.
        (Err(_), Err(r)) if !matches!(r.kind, Kind::BadStream | Kind::StreamTruncated) => Err(r),
        (Err(s), _) => Err(s),
        (Ok(()), r) => r.map(|(snapshot, bytes)| Transferred {
            snapshot,
            bytes,
            wire: 0,
            codec: None,
        }),
    }
}

fn io_err(what: &str, e: std::io::Error) -> Error {
    err(Kind::Io, format!("{what}: {e}"))
}

/// Sends `stream` from `src` into `target` on `dst`, calling `tick` as bytes move.
/// With `watch` false nobody looks at the progress: local to local, the stream then
/// goes through one pipe, without a thread counting in between, and `tick` hears the
/// total once.
pub fn transfer(
    src: &mut Side,
    dst: &mut Side,
    stream: &Stream,
    target: &Target,
    tick: &(dyn Fn(u64) + Sync),
    watch: bool,
) -> Result<Transferred> {
    match (src, dst) {
        (Side::Local(sz), Side::Local(dz)) if !watch => {
            let (r, w) = pump::direct_pipe().map_err(|e| io_err("pipe", e))?;
            let (sz, dz) = (&*sz, &*dz);
            std::thread::scope(|s| {
                let sender = s.spawn(move || local_send(sz, stream, w));
                let received = local::receive(dz, target, &r);
                drop(r);
                let sent = sender.join().unwrap_or_else(|_| Err(panicked("send")));
                let done = outcome(sent, received)?;
                tick(done.bytes);
                Ok(done)
            })
        }
        (Side::Local(sz), Side::Local(dz)) => {
            let (r1, w1) = pump::pipe().map_err(|e| io_err("pipe", e))?;
            let (r2, w2) = pump::pipe().map_err(|e| io_err("pipe", e))?;
            let (sz, dz) = (&*sz, &*dz);
            std::thread::scope(|s| {
                let sender = s.spawn(move || local_send(sz, stream, w1));
                let copier = s.spawn(move || {
                    let n = pump::copy(&r1, &w2, tick);
                    drop(w2);
                    drop(r1);
                    n
                });
                let received = local::receive(dz, target, &r2);
                drop(r2);
                let sent = sender.join().unwrap_or_else(|_| Err(panicked("send")));
                let _ = copier.join();
                outcome(sent, received)
            })
        }
        (Side::Local(sz), Side::Remote(r)) => push(sz, r, stream, target, tick),
        (Side::Remote(r), Side::Local(dz)) => pull(r, dz, stream, target, tick),
        (Side::Remote(_), Side::Remote(_)) => Err(err(
            Kind::Usage,
            "source and target cannot both be remote; run zrep on one of them",
        )),
    }
}

fn panicked(what: &str) -> Error {
    err(Kind::Other, format!("the {what} thread panicked"))
}

/// Local → remote: the stream as `D` frames after a `Receive` request.
fn push(
    sz: &libzfs::Zfs,
    r: &mut Remote,
    stream: &Stream,
    target: &Target,
    tick: &(dyn Fn(u64) + Sync),
) -> Result<Transferred> {
    let host = r.host.clone();
    let req = Request::Receive(target.clone());
    match r.call(&req)? {
        Response::Streaming => {}
        other => return Err(unexpected(&host, &other)),
    }
    let (rd, wr) = pump::pipe().map_err(|e| io_err("pipe", e))?;
    let shaping = stream.shaping(r.agreed, &r.bwlimit);
    let link: &Link = r.link()?;
    let (sent, pumped) = std::thread::scope(|s| {
        let sender = s.spawn(move || local_send(sz, stream, wr));
        let pumped = pump::frames_out(&rd, link, tick, &shaping);
        drop(rd);
        let sent = sender.join().unwrap_or_else(|_| Err(panicked("send")));
        (sent, pumped)
    });
    if let Err(e) = &pumped {
        if e.kind() == std::io::ErrorKind::TimedOut {
            let e = conn_err(
                &host,
                "sending the stream",
                std::io::Error::new(e.kind(), e.to_string()).into(),
            );
            return Err(r.failed(e));
        }
    }
    // Close the stream: E when everything was sent, A with the cause if not.
    let abort = |e: &Error| link.frame(b'A', &serde_json::to_vec(e).unwrap_or_default());
    let closing = match (&sent, &pumped) {
        (Ok(()), Ok(_)) => link.frame(b'E', b""),
        (Err(e), _) => abort(e),
        (Ok(()), Err(e)) => abort(&io_err(
            "stream",
            std::io::Error::new(e.kind(), e.to_string()),
        )),
    };
    match r.response("waiting for the result of the receive") {
        Ok(Response::Received { snapshot, bytes }) => {
            sent?;
            Ok(Transferred {
                snapshot,
                bytes,
                wire: pumped.map_or(0, |p| p.wire),
                codec: shaping.codec,
            })
        }
        Ok(other) => Err(unexpected(&host, &other)),
        Err(remote) if matches!(remote.kind, Kind::Connection | Kind::Timeout) => {
            // The connection went (ssh killed, network lost): that broke the send
            // too, which then reads as "interrupted". Say what happened.
            match closing.and(pumped.map(|_| ())) {
                Err(e) => Err(r.failed(conn_err(&host, "sending the stream", e.into()))),
                Ok(()) => Err(remote),
            }
        }
        Err(remote) => {
            // The sender's own failure explains a receive that failed after it.
            sent?;
            Err(remote)
        }
    }
}

/// Remote → local: a `Send` request, then the `D` frames into a local receive.
fn pull(
    r: &mut Remote,
    dz: &libzfs::Zfs,
    stream: &Stream,
    target: &Target,
    tick: &(dyn Fn(u64) + Sync),
) -> Result<Transferred> {
    let host = r.host.clone();
    match r.call(&stream.request())? {
        Response::Streaming => {}
        other => return Err(unexpected(&host, &other)),
    }
    let (rd, wr) = pump::pipe().map_err(|e| io_err("pipe", e))?;
    // The server compresses with the agreed codec (or not: the frames say).
    let shaping = Shaping {
        codec: r.agreed.codec,
        limit: r.bwlimit.clone(),
    };
    let (received, ended) = std::thread::scope(|s| {
        let from = &mut r.from;
        let shaping = &shaping;
        let reader = s.spawn(move || pump::frames_in(from, wr, tick, shaping));
        let received = local::receive(dz, target, &rd);
        drop(rd);
        let ended = reader.join().unwrap_or_else(|_| {
            Err(crate::proto::ProtoError::Unexpected(
                "the reader thread panicked".into(),
            ))
        });
        (received, ended)
    });
    let (ended, pumped) = match ended {
        Ok(end) => end,
        Err(e) => return Err(r.failed(conn_err(&host, "reading the stream", e))),
    };
    let final_answer = r.response("waiting for the end of the send");
    if let StreamEnd::Aborted(e) = ended {
        return Err(e.context(&host));
    }
    final_answer?;
    let (snapshot, bytes) = received?;
    Ok(Transferred {
        snapshot,
        bytes,
        wire: pumped.wire,
        // The codec, if the server used it (a chunk that did not shrink goes plain).
        codec: r.agreed.codec.filter(|_| pumped.wire < pumped.stream),
    })
}

/// Writes `stream` from the local pools into `out` (then closes it).
pub fn local_send(zfs: &libzfs::Zfs, stream: &Stream, out: os_pipe::PipeWriter) -> Result<()> {
    match stream {
        Stream::Snapshot {
            snapshot,
            from,
            flags,
        } => local::send(zfs, snapshot, from.as_ref(), *flags, &out),
        Stream::Resume { token } => local::send_resume(zfs, token, &out),
    }
}

/// A byte counter shared with pump threads.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The total.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}
