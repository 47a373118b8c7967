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

use crate::local::{self, err, OpResult};
use crate::proto::{self, Flags, RemoteError, Request, Response};
use crate::pump::{self, StreamEnd};
use crate::side::{conn_err, unexpected, Side};

/// What to send.
#[derive(Debug, Clone)]
pub enum Stream {
    /// A full or incremental stream.
    Snapshot {
        /// Full snapshot name on the source.
        snapshot: String,
        /// Full name of the incremental source (snapshot or bookmark).
        from: Option<String>,
        /// Flags.
        flags: Flags,
    },
    /// The rest of an interrupted stream.
    Resume {
        /// The target's resume token.
        token: String,
    },
}

/// Where to receive it.
#[derive(Debug, Clone)]
pub struct Target {
    /// The target dataset.
    pub dataset: String,
    /// Roll back the target first.
    pub force: bool,
    /// Keep partial state when interrupted.
    pub resumable: bool,
    /// Create the dataset `readonly=on` (full streams only).
    pub readonly: bool,
}

impl Target {
    /// Receives one stream from `input` into this target on the local pools.
    fn receive_here(
        &self,
        zfs: &libzfs::Zfs,
        input: impl std::os::fd::AsFd,
    ) -> OpResult<(String, u64)> {
        local::receive(
            zfs,
            &self.dataset,
            self.force,
            self.resumable,
            self.readonly,
            input,
        )
    }
}

/// Result of a transfer.
#[derive(Debug, Clone)]
pub struct Transferred {
    /// The snapshot created on the target.
    pub snapshot: String,
    /// Stream bytes.
    pub bytes: u64,
}

/// The result of a local transfer from its two halves' results: the error that caused
/// the other one when both failed.
fn outcome(sent: OpResult<()>, received: OpResult<(String, u64)>) -> OpResult<Transferred> {
    match (sent, received) {
        // The receive refused for a reason of its own (a name too long, a modified
        // target...) and closed the pipe: that made the send fail ("interrupted",
        // "broken pipe"), so the receive's error is the cause.
        (Err(_), Err(r)) if !matches!(r.kind.as_str(), "BadStream" | "StreamTruncated") => Err(r),
        (Err(s), _) => Err(s),
        (Ok(()), r) => r.map(|(snapshot, bytes)| Transferred { snapshot, bytes }),
    }
}

fn io_err(what: &str, e: std::io::Error) -> RemoteError {
    err("Io", format!("{what}: {e}"))
}

/// Sends `stream` from `src` into `tgt`, calling `tick` as bytes move. With `watch`
/// false nobody looks at the progress: local to local, the stream then goes through
/// one pipe, without a thread counting in between, and `tick` hears the total once.
pub fn transfer(
    src: &mut Side,
    dst: &mut Side,
    stream: &Stream,
    target: &Target,
    tick: &(dyn Fn(u64) + Sync),
    watch: bool,
) -> OpResult<Transferred> {
    match (src, dst) {
        (Side::Local(sz), Side::Local(dz)) if !watch => {
            let (r, w) = pump::direct_pipe().map_err(|e| io_err("pipe", e))?;
            let (sz, dz) = (*sz, *dz);
            std::thread::scope(|s| {
                let sender = s.spawn(move || local_send(&sz, stream, w));
                let received = target.receive_here(&dz, &r);
                drop(r);
                let sent = sender.join().expect("send thread panicked");
                let done = outcome(sent, received)?;
                tick(done.bytes);
                Ok(done)
            })
        }
        (Side::Local(sz), Side::Local(dz)) => {
            let (r1, w1) = pump::pipe().map_err(|e| io_err("pipe", e))?;
            let (r2, w2) = pump::pipe().map_err(|e| io_err("pipe", e))?;
            let sz = *sz;
            let dz = *dz;
            std::thread::scope(|s| {
                let sender = s.spawn(move || local_send(&sz, stream, w1));
                let copier = s.spawn(move || {
                    let n = pump::copy(&r1, &w2, tick);
                    drop(w2);
                    drop(r1);
                    n
                });
                let received = target.receive_here(&dz, &r2);
                drop(r2);
                let sent = sender.join().expect("send thread panicked");
                let _ = copier.join().expect("copy thread panicked");
                outcome(sent, received)
            })
        }
        (Side::Local(sz), Side::Remote(r)) => {
            let sz = *sz;
            r.call(&Request::Receive {
                dataset: target.dataset.clone(),
                force: target.force,
                resumable: target.resumable,
                readonly: target.readonly,
            })
            .and_then(|resp| match resp {
                Response::Streaming => Ok(()),
                other => Err(unexpected(&r.host, &other)),
            })?;
            let (rd, wr) = pump::pipe().map_err(|e| io_err("pipe", e))?;
            let host = r.host.clone();
            let (sent, pumped) = std::thread::scope(|s| {
                let sender = s.spawn(move || local_send(&sz, stream, wr));
                let pumped = pump::frames_out(&rd, r.to_peer(), tick);
                drop(rd);
                (sender.join().expect("send thread panicked"), pumped)
            });
            // Close the stream: E when everything was sent, A with the cause if not.
            let closing = match (&sent, &pumped) {
                (Ok(()), Ok(_)) => proto::write_frame(r.to_peer(), b'E', b""),
                (Err(e), _) => proto::write_frame(
                    r.to_peer(),
                    b'A',
                    &serde_json::to_vec(e).unwrap_or_default(),
                ),
                (Ok(()), Err(e)) => proto::write_frame(
                    r.to_peer(),
                    b'A',
                    &serde_json::to_vec(&io_err(
                        "stream",
                        std::io::Error::new(e.kind(), e.to_string()),
                    ))
                    .unwrap_or_default(),
                ),
            };
            let answer = r.response();
            match answer {
                Ok(Response::Received { snapshot, bytes }) => {
                    sent?;
                    Ok(Transferred { snapshot, bytes })
                }
                Ok(other) => Err(unexpected(&host, &other)),
                Err(remote) => {
                    // The connection went (ssh killed, network lost): that broke the
                    // send too, which then reads as "interrupted". Say what happened.
                    if remote.kind == "Connection" {
                        if let Err(e) = closing.and(pumped.map(|_| ())) {
                            return Err(conn_err(&host, e.into()));
                        }
                        return Err(remote);
                    }
                    // The sender's own failure explains a receive that failed after it.
                    sent?;
                    Err(remote)
                }
            }
        }
        (Side::Remote(r), Side::Local(dz)) => {
            let dz = *dz;
            let req = match stream {
                Stream::Snapshot {
                    snapshot,
                    from,
                    flags,
                } => Request::Send {
                    snapshot: snapshot.clone(),
                    from: from.clone(),
                    flags: *flags,
                },
                Stream::Resume { token } => Request::SendResume {
                    token: token.clone(),
                },
            };
            match r.call(&req)? {
                Response::Streaming => {}
                other => return Err(unexpected(&r.host, &other)),
            }
            let (rd, wr) = pump::pipe().map_err(|e| io_err("pipe", e))?;
            let host = r.host.clone();
            let (received, ended) = std::thread::scope(|s| {
                let from = &mut r.from;
                let reader = s.spawn(move || pump::frames_in(from, wr, tick));
                let received = target.receive_here(&dz, &rd);
                drop(rd);
                (received, reader.join().expect("stream reader panicked"))
            });
            let ended = ended.map_err(|e| conn_err(&host, e))?;
            let final_answer = r.response();
            if let StreamEnd::Aborted(e) = ended {
                return Err(RemoteError {
                    kind: e.kind,
                    message: format!("{host}: {}", e.message),
                });
            }
            final_answer?;
            let (snapshot, bytes) = received?;
            Ok(Transferred { snapshot, bytes })
        }
        (Side::Remote(_), Side::Remote(_)) => Err(err(
            "InvalidArgument",
            "source and target cannot both be remote; run zrep on one of them",
        )),
    }
}

/// Writes `stream` from the local pools into `out` (then closes it).
pub fn local_send(zfs: &libzfs::Zfs, stream: &Stream, out: os_pipe::PipeWriter) -> OpResult<()> {
    match stream {
        Stream::Snapshot {
            snapshot,
            from,
            flags,
        } => local::send(zfs, snapshot, from.as_deref(), *flags, &out),
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
