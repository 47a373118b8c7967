//! Moving stream bytes between descriptors and protocol frames, counting them.
//!
//! Local to local, bytes move pipe to pipe with `splice(2)` (no copy through user
//! space) on Linux. Over SSH they travel as `D` frames of up to 1 MiB from one reused
//! buffer: memory stays bounded whatever the stream size.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
#[cfg(target_os = "linux")]
use std::os::fd::AsRawFd;

use crate::proto::{self, Frame, ProtoError, RemoteError};

/// Chunk size for reads, writes and frames.
pub const CHUNK: usize = 1 << 20;

/// Makes a pipe for a stream that is framed on one end: with a buffer of one frame
/// (1 MiB, on Linux where the size can be set).
pub fn pipe() -> io::Result<(os_pipe::PipeReader, os_pipe::PipeWriter)> {
    sized_pipe(CHUNK)
}

/// Makes a pipe from `lzc_send` straight into `lzc_receive`: the kernel's default
/// size, as in `zfs send | zfs receive` (a 1 MiB pipe only cost page churn there).
pub fn direct_pipe() -> io::Result<(os_pipe::PipeReader, os_pipe::PipeWriter)> {
    sized_pipe(0)
}

/// `ZREP_PIPE_BYTES` overrides `size` for measurements; 0 keeps the kernel's default.
fn sized_pipe(size: usize) -> io::Result<(os_pipe::PipeReader, os_pipe::PipeWriter)> {
    let (r, w) = os_pipe::pipe()?;
    #[cfg(not(target_os = "linux"))]
    let _ = size; // only Linux can size a pipe
    #[cfg(target_os = "linux")]
    {
        let size = std::env::var("ZREP_PIPE_BYTES")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(size);
        if size > 0 {
            // SAFETY: F_SETPIPE_SZ on a pipe we own; failure (e.g. over
            // /proc/sys/fs/pipe-max-size) only leaves the default size.
            unsafe {
                libc::fcntl(
                    w.as_raw_fd(),
                    libc::F_SETPIPE_SZ,
                    size.min(1 << 30) as libc::c_int,
                );
            }
        }
    }
    Ok((r, w))
}

/// Copies everything from `from` to `to` until end of input, calling `tick` with each
/// amount moved. Uses `splice(2)` when both ends allow it.
pub fn copy(from: &impl AsFd, to: &impl AsFd, tick: &dyn Fn(u64)) -> io::Result<u64> {
    let mut total = 0u64;
    #[cfg(target_os = "linux")]
    loop {
        // SAFETY: both descriptors are borrowed and open for the call; NULL offsets
        // are required for pipes.
        let n = unsafe {
            libc::splice(
                from.as_fd().as_raw_fd(),
                std::ptr::null_mut(),
                to.as_fd().as_raw_fd(),
                std::ptr::null_mut(),
                CHUNK,
                libc::SPLICE_F_MOVE,
            )
        };
        match n {
            0 => return Ok(total),
            n if n > 0 => {
                total += n as u64;
                tick(n as u64);
            }
            _ => {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    // Not splice-able (neither end a pipe): copy through memory.
                    Some(libc::EINVAL) if total == 0 => break,
                    _ => return Err(e),
                }
            }
        }
    }
    let mut r = File::from(from.as_fd().try_clone_to_owned()?);
    let mut w = File::from(to.as_fd().try_clone_to_owned()?);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..n])?;
        total += n as u64;
        tick(n as u64);
    }
}

/// Reads `from` until end of input and writes it as `D` frames to `to`. Does not
/// write the closing `E`/`A` frame: the caller knows whether the stream succeeded.
pub fn frames_out(from: impl Read, to: &mut dyn Write, tick: &dyn Fn(u64)) -> io::Result<u64> {
    let mut from = from;
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        // Fill the buffer as far as the pipe gives: fewer, larger frames.
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        proto::write_frame(to, b'D', &buf[..n])?;
        total += n as u64;
        tick(n as u64);
    }
}

/// How a framed stream ended.
#[derive(Debug)]
pub enum StreamEnd {
    /// `E`: the sender finished.
    Complete,
    /// `A`: the sender failed.
    Aborted(RemoteError),
}

/// Reads `D` frames from `from` and writes their payload to `to` until `E` or `A`.
/// When `to` stops accepting (the local receive failed), the rest of the stream is
/// read and dropped so the session stays in step.
pub fn frames_in(
    from: &mut dyn Read,
    to: impl Write,
    tick: &dyn Fn(u64),
) -> Result<StreamEnd, ProtoError> {
    let mut to = Some(to);
    loop {
        match proto::read_frame(from)? {
            None => return Err(ProtoError::Closed(" in the middle of a stream")),
            Some(Frame::Data(d)) => {
                tick(d.len() as u64);
                if let Some(w) = to.as_mut() {
                    if w.write_all(&d).is_err() {
                        to = None;
                    }
                }
            }
            Some(Frame::End) => return Ok(StreamEnd::Complete),
            Some(Frame::Abort(e)) => return Ok(StreamEnd::Aborted(e)),
            Some(Frame::Message(_)) => {
                return Err(ProtoError::Unexpected("a message inside a stream".into()))
            }
        }
    }
}
