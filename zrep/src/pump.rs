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

use crate::bwlimit::{Bucket, Limit};
use crate::compress::{Codec, Decoder, Encoder};
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

/// What happens to a stream's bytes on the wire: compressed with `codec` (a reader:
/// `Z` frames of that codec accepted), sent or read at most at `limit`'s rate.
#[derive(Debug, Clone, Default)]
pub struct Shaping {
    /// The codec (none: plain `D` frames only).
    pub codec: Option<Codec>,
    /// The bandwidth limit.
    pub limit: Limit,
}

impl Shaping {
    fn bucket(&self) -> Option<Bucket> {
        (!self.limit.is_none()).then(|| Bucket::new(self.limit.clone()))
    }
}

/// Bytes a framed stream moved: the stream's own, and on the wire (frames, after
/// compression).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pumped {
    /// Stream bytes.
    pub stream: u64,
    /// Frame bytes, headers included.
    pub wire: u64,
}

/// Reads `from` until end of input and writes it as `D` (or `Z`) frames to `to`, one
/// frame at a time (keepalives may go between them while `from` is slow). Does not
/// write the closing `E`/`A` frame: the caller knows whether the stream succeeded.
pub fn frames_out(
    mut from: impl Read,
    to: &Link,
    tick: &dyn Fn(u64),
    shaping: &Shaping,
) -> io::Result<Pumped> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = Pumped::default();
    let mut encoder = shaping.codec.map(Encoder::new).transpose()?;
    let mut bucket = shaping.bucket();
    loop {
        // Take what the pipe holds (up to a chunk, less under a rate limit, so that
        // frames go out evenly): fewer, larger frames.
        let want = bucket.as_ref().map_or(CHUNK, |b| b.chunk(CHUNK));
        let n = match from.read(&mut buf[..want]) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let (kind, payload) = match encoder.as_mut().and_then(|e| e.encode(&buf[..n])) {
            Some(z) => (b'Z', z),
            None => (b'D', &buf[..n]),
        };
        let wire = (proto::HEAD_LEN + payload.len()) as u64;
        if let Some(b) = bucket.as_mut() {
            b.take(wire);
        }
        to.frame(kind, payload)?;
        total.stream += n as u64;
        total.wire += wire;
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

/// Reads `D` (and `Z`) frames from `from` and writes their payload to `to` until `E`
/// or `A`, through one buffer reused from frame to frame. When `to` stops accepting
/// (the local receive failed), the rest of the stream is read and dropped so the
/// session stays in step. A `Z` frame of a codec `shaping` does not name, or whose
/// data does not decompress to what it announced, ends the stream with an error.
pub fn frames_in(
    from: &mut dyn Read,
    to: impl Write,
    tick: &dyn Fn(u64),
    shaping: &Shaping,
) -> Result<(StreamEnd, Pumped), ProtoError> {
    let mut to = Some(to);
    let mut buf = Vec::new();
    let mut decoder = Decoder::new(shaping.codec);
    let mut bucket = shaping.bucket();
    let mut total = Pumped::default();
    loop {
        let head = match proto::read_head(from)? {
            None => return Err(ProtoError::Closed(" in the middle of a stream")),
            Some(head) => head,
        };
        if head.kind != b'D' && head.kind != b'Z' {
            return match proto::read_body(from, head)? {
                Frame::End => Ok((StreamEnd::Complete, total)),
                Frame::Abort(e) => Ok((StreamEnd::Aborted(e), total)),
                _ => Err(ProtoError::Unexpected("a message inside a stream".into())),
            };
        }
        proto::resize_for(&mut buf, head.len);
        if !proto::read_exact_or_eof(from, &mut buf)? && head.len > 0 {
            return Err(ProtoError::Closed(" in the middle of a frame"));
        }
        let wire = (proto::HEAD_LEN + head.len) as u64;
        if let Some(b) = bucket.as_mut() {
            b.take(wire);
        }
        let data = match head.kind {
            b'Z' => decoder.decode(&buf)?,
            _ => &buf[..],
        };
        total.stream += data.len() as u64;
        total.wire += wire;
        tick(data.len() as u64);
        if let Some(w) = to.as_mut() {
            if w.write_all(data).is_err() {
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
    /// `frames_in` unchanged, over a pipe and over a socket, plain and compressed with
    /// each codec (the pattern compresses: fewer bytes on the wire).
    #[test]
    fn frames_round_trip_over_pipes_and_sockets() {
        let data = pattern(3 * CHUNK + 12345);
        let codecs = [None, Some(Codec::Zstd), Some(Codec::Lz4)];
        for (over_socket, codec) in [false, true]
            .into_iter()
            .flat_map(|s| codecs.map(|c| (s, c)))
        {
            let shaping = Shaping {
                codec,
                limit: Limit::default(),
            };
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
                let shaping = &shaping;
                let sender = s.spawn(move || {
                    let link = Link::new(wire_out, std::time::Duration::from_millis(10));
                    let n = frames_out(&src_r, &link, &|_| {}, shaping).unwrap();
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
                let (end, got) = frames_in(
                    &mut wire_in,
                    dst_w,
                    &|n| {
                        counted.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                    },
                    shaping,
                )
                .unwrap();
                assert!(matches!(end, StreamEnd::Complete));
                let sent = sender.join().unwrap();
                assert_eq!(sent, got);
                assert_eq!(sent.stream, data.len() as u64);
                if codec.is_some() {
                    assert!(sent.wire < sent.stream / 2, "{codec:?}: {sent:?}");
                } else {
                    assert!(sent.wire > sent.stream, "{sent:?}");
                }
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
        let (end, _) = frames_in(&mut wire_in, dst_w, &|_| {}, &Shaping::default()).unwrap();
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
        let e = frames_in(&mut wire_in, dst_w, &|_| {}, &Shaping::default()).unwrap_err();
        assert!(e.to_string().contains("middle of a frame"), "{e}");
    }

    /// A `Z` frame the session did not agree on, or that does not decompress, ends
    /// the stream with an error naming it.
    #[test]
    fn compressed_frames_not_agreed_or_broken_are_errors() {
        let z = Encoder::new(Codec::Zstd)
            .unwrap()
            .encode(&pattern(CHUNK))
            .unwrap()
            .to_vec();
        for (agreed, payload, why) in [
            (None, z.clone(), "not agreed"),
            (Some(Codec::Lz4), z.clone(), "not agreed"),
            (
                Some(Codec::Zstd),
                z[..z.len() / 2].to_vec(),
                "does not decompress",
            ),
        ] {
            let (mut wire_in, mut wire_out) = os_pipe::pipe().unwrap();
            let (_dst_r, dst_w) = pipe().unwrap();
            std::thread::spawn(move || {
                let _ = proto::write_frame(&mut wire_out, b'Z', &payload);
                let _ = proto::write_frame(&mut wire_out, b'E', b"");
            });
            let shaping = Shaping {
                codec: agreed,
                limit: Limit::default(),
            };
            let e = frames_in(&mut wire_in, dst_w, &|_| {}, &shaping).unwrap_err();
            assert!(e.to_string().contains(why), "{agreed:?}: {e}");
        }
    }

    /// Under a limit, frames go out at the rate: 3 MiB at 2M/s take about 1.5 s
    /// (the first 100 ms of burst aside), and each frame is a sixteenth of a
    /// second's worth.
    #[test]
    fn a_limited_pump_keeps_the_rate() {
        let data = pattern(3 << 20);
        let (src_r, mut src_w) = pipe().unwrap();
        let (mut wire_in, wire_out) = os_pipe::pipe().unwrap();
        let shaping = Shaping {
            codec: None,
            limit: Limit::rate(Some(2 << 20)),
        };
        let t0 = std::time::Instant::now();
        std::thread::scope(|s| {
            s.spawn(|| {
                src_w.write_all(&data).unwrap();
                drop(src_w);
            });
            let shaping = &shaping;
            s.spawn(move || {
                let link = Link::new(wire_out, std::time::Duration::from_secs(10));
                frames_out(&src_r, &link, &|_| {}, shaping).unwrap();
                link.frame(b'E', b"").unwrap();
            });
            let mut biggest = 0;
            while let Some(f) = proto::read_frame(&mut wire_in).unwrap() {
                match f {
                    Frame::Data(d) => biggest = biggest.max(d.len()),
                    _ => break,
                }
            }
            assert_eq!(biggest, (2 << 20) / 16);
        });
        let secs = t0.elapsed().as_secs_f64();
        assert!((1.3..2.0).contains(&secs), "{secs}");
    }

    /// A pull's limit: the reader takes frames no faster than the rate (3 MiB in
    /// 256 KiB frames at 2M/s: about 1.4 s, the 100 ms allowance aside).
    #[test]
    fn a_limited_reader_keeps_the_rate() {
        let (mut wire_in, mut wire_out) = os_pipe::pipe().unwrap();
        std::thread::spawn(move || {
            for _ in 0..12 {
                proto::write_frame(&mut wire_out, b'D', &pattern(256 << 10)).unwrap();
            }
            proto::write_frame(&mut wire_out, b'E', b"").unwrap();
        });
        let shaping = Shaping {
            codec: None,
            limit: Limit::rate(Some(2 << 20)),
        };
        let t0 = std::time::Instant::now();
        let (end, got) = frames_in(&mut wire_in, io::sink(), &|_| {}, &shaping).unwrap();
        assert!(matches!(end, StreamEnd::Complete));
        assert_eq!(got.stream, 3 << 20);
        let secs = t0.elapsed().as_secs_f64();
        assert!((1.2..2.0).contains(&secs), "{secs}");
    }

    trait ReadFd: Read + AsFd + Send {}
    impl<T: Read + AsFd + Send> ReadFd for T {}
    trait WriteFd: Write + AsFd + Send {}
    impl<T: Write + AsFd + Send> WriteFd for T {}
}
