//! `zrep serve`: the remote end. Reads requests on stdin, answers on stdout, logs to
//! stderr (which ssh carries back to the client's terminal).

use std::fs::File;
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};

use libzfs::Zfs;

use crate::local::{self, err, OpResult};
use crate::proto::{self, ProtoError, Request, Response};
use crate::pump::{self, StreamEnd};
use crate::transfer::{local_send, Stream};

/// Serves one session; returns the process exit code.
pub fn serve() -> i32 {
    // Take fds 0 and 1 for the protocol and point fd 1 at stderr, so nothing printed
    // by accident can corrupt the frames.
    // SAFETY: dup of the process's own standard descriptors, owned by the Files below.
    let (mut input, mut output) = unsafe {
        let i = libc::dup(0);
        let o = libc::dup(1);
        if i < 0 || o < 0 {
            eprintln!("zrep serve: cannot duplicate stdin/stdout");
            return 1;
        }
        libc::dup2(2, 1);
        (
            File::from(OwnedFd::from_raw_fd(i)),
            File::from(OwnedFd::from_raw_fd(o)),
        )
    };
    match session(&mut input, &mut output) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("zrep serve: {e}");
            1
        }
    }
}

fn session(input: &mut File, output: &mut File) -> Result<(), ProtoError> {
    let zfs = Zfs::open();
    let mut _locks = Vec::new();
    match proto::recv_msg_or_eof::<Request>(input)? {
        Some(Request::Hello { version, .. }) => {
            let hello = Response::Hello {
                version: proto::VERSION,
                zrep: env!("CARGO_PKG_VERSION").into(),
                openzfs: libzfs::OPENZFS_VERSION.into(),
            };
            proto::send_msg(output, &hello)?;
            if version != proto::VERSION {
                return Ok(());
            }
        }
        Some(other) => {
            return Err(ProtoError::Unexpected(format!("{other:?} before hello")));
        }
        None => return Ok(()),
    }
    let zfs = match zfs {
        Ok(z) => z,
        Err(e) => {
            // Answer every request with the reason until the client gives up.
            let e: proto::RemoteError = e.into();
            while let Some(req) = proto::recv_msg_or_eof::<Request>(input)? {
                if req == Request::Bye {
                    break;
                }
                proto::send_msg(output, &Response::Error(e.clone()))?;
            }
            return Ok(());
        }
    };
    while let Some(req) = proto::recv_msg_or_eof::<Request>(input)? {
        let reply: OpResult<Response> = match req {
            Request::Bye => return Ok(()),
            Request::Hello { .. } => Err(err("Protocol", "hello twice")),
            Request::State { dataset, recursive } => {
                local::state(&zfs, &dataset, recursive).map(|datasets| Response::State { datasets })
            }
            Request::Estimate {
                snapshot,
                from,
                flags,
            } => local::estimate(&zfs, &snapshot, from.as_deref(), flags)
                .map(|bytes| Response::Estimate { bytes }),
            Request::EstimateResume { token } => {
                local::estimate_resume(&zfs, &token).map(|bytes| Response::Estimate { bytes })
            }
            Request::Send {
                snapshot,
                from,
                flags,
            } => {
                send_stream(
                    &zfs,
                    &Stream::Snapshot {
                        snapshot,
                        from,
                        flags,
                    },
                    output,
                )?;
                continue;
            }
            Request::SendResume { token } => {
                send_stream(&zfs, &Stream::Resume { token }, output)?;
                continue;
            }
            Request::Receive {
                dataset,
                force,
                resumable,
                readonly,
            } => {
                let r =
                    receive_stream(&zfs, &dataset, (force, resumable, readonly), input, output)?;
                proto::send_msg(output, &into_response(r))?;
                continue;
            }
            Request::Snapshot { snapshots, props } => {
                local::snapshot(&zfs, &snapshots, &props).map(|_| Response::Ok)
            }
            Request::Hold { holds } => local::hold(&zfs, &holds).map(|_| Response::Ok),
            Request::Sync { dataset } => local::sync(&zfs, &dataset).map(|_| Response::Ok),
            Request::Release { holds } => local::release(&zfs, &holds).map(|_| Response::Ok),
            Request::Bookmark { pairs } => local::bookmark(&zfs, &pairs).map(|_| Response::Ok),
            Request::DestroySnapshots { snapshots } => {
                local::destroy_snapshots(&zfs, &snapshots).map(|_| Response::Ok)
            }
            Request::DestroyBookmarks { bookmarks } => {
                local::destroy_bookmarks(&zfs, &bookmarks).map(|_| Response::Ok)
            }
            Request::RollbackTo { snapshot, tag } => {
                local::rollback_to(&zfs, &snapshot, &tag).map(|_| Response::Ok)
            }
            Request::AbortResume { dataset } => {
                local::abort_resume(&zfs, &dataset).map(|_| Response::Ok)
            }
            Request::Lock { dataset, wait_secs } => crate::lock::Lock::acquire(&dataset, wait_secs)
                .map(|l| {
                    _locks.push(l);
                    Response::Ok
                }),
        };
        proto::send_msg(output, &into_response(reply))?;
    }
    Ok(())
}

fn into_response(r: OpResult<Response>) -> Response {
    r.unwrap_or_else(Response::Error)
}

/// Answers `Streaming`, sends the stream as frames, closes it with `E` or `A`, then
/// answers `Sent` or the error.
fn send_stream(zfs: &Zfs, stream: &Stream, output: &mut File) -> Result<(), ProtoError> {
    let (rd, wr) = match pump::pipe() {
        Ok(p) => p,
        Err(e) => {
            let e = err("Io", format!("pipe: {e}"));
            return proto::send_msg(output, &Response::Error(e));
        }
    };
    proto::send_msg(output, &Response::Streaming)?;
    let (sent, pumped) = std::thread::scope(|s| {
        let sender = s.spawn(move || local_send(zfs, stream, wr));
        let pumped = pump::frames_out(&rd, output, &|_| {});
        drop(rd);
        (sender.join().expect("send thread panicked"), pumped)
    });
    // A client that went away: nothing more to say.
    let bytes = pumped?;
    match sent {
        Ok(()) => {
            proto::write_frame(output, b'E', b"")?;
            proto::send_msg(output, &Response::Sent { bytes })
        }
        Err(e) => {
            proto::write_frame(output, b'A', &serde_json::to_vec(&e).unwrap_or_default())?;
            proto::send_msg(output, &Response::Error(e))
        }
    }
}

/// Answers `Streaming`, receives the framed stream that follows into `dataset`. A
/// name that cannot be a dataset is refused before any stream is asked for.
fn receive_stream(
    zfs: &Zfs,
    dataset: &str,
    (force, resumable, readonly): (bool, bool, bool),
    input: &mut File,
    output: &mut File,
) -> Result<OpResult<Response>, ProtoError> {
    if let Err(e) = libzfs::DatasetName::new(dataset) {
        return Ok(Err(e.into()));
    }
    let (rd, wr) = match pump::pipe() {
        Ok(p) => p,
        Err(e) => return Ok(Err(err("Io", format!("pipe: {e}")))),
    };
    proto::send_msg(output, &Response::Streaming)?;
    output.flush()?;
    let (received, ended) = std::thread::scope(|s| {
        let reader = s.spawn(move || pump::frames_in(input, wr, &|_| {}));
        let received = local::receive(zfs, dataset, force, resumable, readonly, &rd);
        drop(rd);
        (received, reader.join().expect("stream reader panicked"))
    });
    match ended? {
        StreamEnd::Aborted(e) => Ok(Err(err(
            &e.kind,
            format!("the sender aborted the stream: {}", e.message),
        ))),
        StreamEnd::Complete => {
            Ok(received.map(|(snapshot, bytes)| Response::Received { snapshot, bytes }))
        }
    }
}
