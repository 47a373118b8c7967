//! Moving stream bytes between descriptors and protocol frames, counting them.
//!
//! Local to local, bytes move pipe to pipe with `splice(2)` (no copy through user
//! space) on Linux. Over SSH they travel as `D` frames of up to 1 MiB through one
//! reused buffer on each end: memory stays bounded whatever the stream size.
//! (Splicing frame bodies too, header from memory and body pipe to pipe, measured
//! no faster in the guest, where ssh's cipher sets the pace: not worth its code.)

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
#[cfg(target_os = "linux")]
use std::os::fd::AsRawFd;

use crate::error::Error;
use crate::link::Link;
use crate::proto::{self, Frame, ProtoError};

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

/// Reads `from` until end of input and writes it as `D` frames to `to`, one frame
/// at a time (keepalives may go between them while `from` is slow). Does not write
/// the closing `E`/`A` frame: the caller knows whether the stream succeeded.
pub fn frames_out(mut from: impl Read, to: &Link, tick: &dyn Fn(u64)) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        // Take what the pipe holds (up to a chunk): fewer, larger frames.
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.frame(b'D', &buf[..n])?;
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
    Aborted(Error),
}

/// Reads `D` frames from `from` and writes their payload to `to` until `E` or `A`,
/// through one buffer reused from frame to frame. When `to` stops accepting (the local
/// receive failed), the rest of the stream is read and dropped so the session stays
/// in step.
pub fn frames_in(
    from: &mut dyn Read,
    to: impl Write,
    tick: &dyn Fn(u64),
) -> Result<StreamEnd, ProtoError> {
    let mut to = Some(to);
    let mut buf = Vec::new();
    loop {
        let head = match proto::read_head(from)? {
            None => return Err(ProtoError::Closed(" in the middle of a stream")),
            Some(head) => head,
        };
        if head.kind != b'D' {
            return match proto::read_body(from, head)? {
                Frame::End => Ok(StreamEnd::Complete),
                Frame::Abort(e) => Ok(StreamEnd::Aborted(e)),
                _ => Err(ProtoError::Unexpected("a message inside a stream".into())),
            };
        }
        buf.resize(head.len, 0);
        if !proto::read_exact_or_eof(from, &mut buf)? && head.len > 0 {
            return Err(ProtoError::Closed(" in the middle of a frame"));
        }
        tick(head.len as u64);
        if let Some(w) = to.as_mut() {
            if w.write_all(&buf).is_err() {
                to = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 4099) as u8).collect()
    }

    /// A stream written into a pipe comes out of `frames_out` and back through
    /// `frames_in` unchanged, over a pipe and over a socket.
    #[test]
    fn frames_round_trip_over_pipes_and_sockets() {
        let data = pattern(3 * CHUNK + 12345);
        for over_socket in [false, true] {
            let (src_r, mut src_w) = pipe().unwrap();
            let (dst_r, dst_w) = pipe().unwrap();
            let (mut wire_in, wire_out): (Box<dyn ReadFd>, Box<dyn WriteFd>) = if over_socket {
                let (a, b) = UnixStream::pair().unwrap();
                (Box::new(b), Box::new(a))
            } else {
                let (r, w) = os_pipe::pipe().unwrap();
                (Box::new(r), Box::new(w))
            };
            std::thread::scope(|s| {
                s.spawn(|| {
                    src_w.write_all(&data).unwrap();
                    drop(src_w);
                });
                let sender = s.spawn(move || {
                    let link = Link::new(wire_out, std::time::Duration::from_millis(10));
                    let n = frames_out(&src_r, &link, &|_| {}).unwrap();
                    link.frame(b'E', b"").unwrap();
                    n
                });
                let reader = s.spawn(move || {
                    let mut got = Vec::new();
                    let mut dst_r = dst_r;
                    dst_r.read_to_end(&mut got).unwrap();
                    got
                });
                let counted = std::sync::atomic::AtomicU64::new(0);
                let end = frames_in(&mut wire_in, dst_w, &|n| {
                    counted.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                })
                .unwrap();
                assert!(matches!(end, StreamEnd::Complete));
                assert_eq!(sender.join().unwrap(), data.len() as u64);
                assert_eq!(counted.into_inner(), data.len() as u64);
                assert!(reader.join().unwrap() == data, "socket: {over_socket}");
            });
        }
    }

    /// When the receive stops reading, the rest of the stream is read and dropped:
    /// the session stays in step and sees the closing frame.
    #[test]
    fn a_receive_that_stops_does_not_desync_the_session() {
        let (mut wire_in, mut wire_out) = os_pipe::pipe().unwrap();
        let (dst_r, dst_w) = pipe().unwrap();
        drop(dst_r);
        std::thread::spawn(move || {
            for _ in 0..5 {
                proto::write_frame(&mut wire_out, b'D', &pattern(CHUNK)).unwrap();
            }
            proto::write_frame(&mut wire_out, b'E', b"").unwrap();
            proto::write_frame(&mut wire_out, b'J', b"{}").unwrap();
        });
        let end = frames_in(&mut wire_in, dst_w, &|_| {}).unwrap();
        assert!(matches!(end, StreamEnd::Complete));
        assert_eq!(
            proto::read_frame(&mut wire_in).unwrap(),
            Some(Frame::Message(b"{}".to_vec()))
        );
    }

    /// A connection that ends inside a frame body is an error, not a short stream.
    #[test]
    fn a_connection_cut_inside_a_body_is_an_error() {
        let (mut wire_in, mut wire_out) = os_pipe::pipe().unwrap();
        let (_dst_r, dst_w) = pipe().unwrap();
        proto::write_head(&mut wire_out, b'D', 1000).unwrap();
        wire_out.write_all(&[1; 10]).unwrap();
        drop(wire_out);
        let e = frames_in(&mut wire_in, dst_w, &|_| {}).unwrap_err();
        assert!(e.to_string().contains("middle of a frame"), "{e}");
    }

    trait ReadFd: Read + AsFd + Send {}
    impl<T: Read + AsFd + Send> ReadFd for T {}
    trait WriteFd: Write + AsFd + Send {}
    impl<T: Write + AsFd + Send> WriteFd for T {}
}
