//! The two pipes of a session, with a stall timeout and keepalives.
//!
//! A peer may stop sending in the middle of a frame, or stop reading, without closing
//! anything (a hung host, a stopped process, a hostile server). So every read and
//! write on a session's pipes waits at most the stall timeout ([`Timed`]), and each
//! end sends a keepalive frame (`K`) every quarter of the shorter of both ends'
//! timeouts while it has nothing else to say ([`Link`]): a peer that is alive but busy
//! (listing ten thousand snapshots, waiting for a transaction group) is never taken
//! for a dead one, and one that sends no byte for the timeout is.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::proto::{self, ProtoError};

/// The stall timeout when none is given: long enough for a slow pool, short enough
/// that a dead peer does not hold a target's lock for long.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// How many stall timeouts one answer (or one request, on the server) may take while
/// the peer only sends keepalives.
pub const ANSWER_TIMEOUTS: u32 = 10;

/// A pipe end whose reads and writes give up after `timeout` without progress
/// ([`io::ErrorKind::TimedOut`]).
#[derive(Debug)]
pub struct Timed<F> {
    f: F,
    timeout: Duration,
    /// Reads fail past this instant whatever arrives: keepalives prove a peer alive,
    /// not that it will ever answer.
    deadline: Option<Instant>,
}

impl<F: AsFd> Timed<F> {
    /// Wraps a descriptor to read from.
    pub fn reader(f: F, timeout: Duration) -> Timed<F> {
        Timed {
            f,
            timeout,
            deadline: None,
        }
    }

    /// Makes reads fail once `within` has passed (None: no such limit), for a peer
    /// that keeps the connection alive but never answers.
    pub fn answer_within(&mut self, within: Option<Duration>) {
        self.deadline = within.map(|d| Instant::now() + d);
    }

    /// Wraps a descriptor to write to; makes it non-blocking (a blocking write into a
    /// full pipe could wait forever, whatever `poll` said before).
    pub fn writer(f: F, timeout: Duration) -> io::Result<Timed<F>> {
        let fd = f.as_fd().as_raw_fd();
        // SAFETY: F_GETFL/F_SETFL on a descriptor borrowed from `f`, which is open.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(Timed {
            f,
            timeout,
            deadline: None,
        })
    }

    /// Waits until the descriptor is ready for `events`, at most the timeout.
    fn wait(&self, events: libc::c_short, what: &str) -> io::Result<()> {
        let stall = Instant::now() + self.timeout;
        if let Some(d) = self.deadline.filter(|d| *d < stall) {
            if Instant::now() >= d {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no answer in the time allowed (the peer only kept the connection alive)",
                ));
            }
        }
        let deadline = self.deadline.map_or(stall, |d| d.min(stall));
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut p = libc::pollfd {
                fd: self.f.as_fd().as_raw_fd(),
                events,
                revents: 0,
            };
            let ms = libc::c_int::try_from(left.as_millis()).unwrap_or(libc::c_int::MAX);
            // SAFETY: one valid pollfd for the duration of the call.
            match unsafe { libc::poll(&mut p, 1, ms) } {
                n if n > 0 => return Ok(()),
                0 if left.is_zero() => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no {what} for {} s", self.timeout.as_secs()),
                    ))
                }
                0 => {}
                _ => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// The wrapped descriptor.
    pub fn get_mut(&mut self) -> &mut F {
        &mut self.f
    }
}

impl<F: AsFd + Read> Read for Timed<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            self.wait(libc::POLLIN, "byte from the peer")?;
            match self.f.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return r,
            }
        }
    }
}

impl<F: AsFd + Write> Write for Timed<F> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match self.f.write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.wait(libc::POLLOUT, "room to write to the peer")?;
                }
                r => return r,
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.f.flush()
    }
}

/// The writing end of a session, shared with the thread that sends keepalives. Frames
/// are written whole under its lock, so a keepalive never lands inside one.
pub struct Link {
    shared: Arc<Shared>,
    keepalive: Option<JoinHandle<()>>,
}

struct Shared {
    out: Mutex<Box<dyn Write + Send>>,
    /// Milliseconds between keepalives.
    every_ms: AtomicU64,
    stop: Mutex<bool>,
    wake: Condvar,
}

impl Link {
    /// Starts writing to `out`, with a keepalive every `every`.
    pub fn new(out: impl Write + Send + 'static, every: Duration) -> Link {
        let shared = Arc::new(Shared {
            out: Mutex::new(Box::new(out)),
            every_ms: AtomicU64::new(every.as_millis().max(1) as u64),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        let s = Arc::clone(&shared);
        let keepalive = std::thread::Builder::new()
            .name("keepalive".into())
            .spawn(move || s.keep_alive())
            .ok();
        Link { shared, keepalive }
    }

    /// The interval between keepalives for a session where the ends time out after
    /// `ours` and `theirs`: a quarter of the shorter.
    pub fn interval(ours: Duration, theirs: Duration) -> Duration {
        (ours.min(theirs) / 4).max(Duration::from_millis(100))
    }

    /// Changes the interval between keepalives (once the peer said its timeout).
    pub fn set_keepalive(&self, every: Duration) {
        let ms = every.as_millis().max(1) as u64;
        self.shared.every_ms.store(ms, Ordering::Relaxed);
        self.shared.wake.notify_all();
    }

    fn out(&self) -> MutexGuard<'_, Box<dyn Write + Send>> {
        self.shared.out.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes one frame.
    pub fn frame(&self, kind: u8, payload: &[u8]) -> io::Result<()> {
        let mut out = self.out();
        proto::write_frame(&mut **out, kind, payload)?;
        out.flush()
    }

    /// Sends a control message.
    pub fn send<T: Serialize>(&self, msg: &T) -> Result<(), ProtoError> {
        let body = proto::encode(msg)?;
        Ok(self.frame(b'J', &body)?)
    }

    /// Stops the keepalives (before the pipe is closed, so that the peer sees its end).
    pub fn stop(&mut self) {
        *self.shared.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.keepalive.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Shared {
    fn keep_alive(&self) {
        let mut stop = self.stop.lock().unwrap_or_else(|e| e.into_inner());
        let mut last = Instant::now();
        loop {
            let every = Duration::from_millis(self.every_ms.load(Ordering::Relaxed));
            let left = every.saturating_sub(last.elapsed());
            if !left.is_zero() {
                // Woken early (a new interval, a spurious wakeup): wait the rest.
                stop = match self.wake.wait_timeout(stop, left) {
                    Ok((s, _)) => s,
                    Err(e) => e.into_inner().0,
                };
                if *stop {
                    return;
                }
                continue;
            }
            last = Instant::now();
            // Someone writing now (a frame, a stream) says the same; a write that
            // fails or times out is reported by the next frame of the session.
            if let Ok(mut out) = self.out.try_lock() {
                if proto::write_frame(&mut **out, b'K', b"")
                    .and_then(|()| out.flush())
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_peer_times_out_and_a_busy_one_does_not() {
        // Silent: nothing is written.
        let (r, _w) = os_pipe::pipe().unwrap();
        let mut r = Timed::reader(r, Duration::from_millis(300));
        let t0 = Instant::now();
        let e = proto::read_frame(&mut r).unwrap_err();
        assert!(e.is_timeout(), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(3));

        // Busy: keepalives only, for three timeouts, then a message.
        let (r, w) = os_pipe::pipe().unwrap();
        let link = Link::new(w, Duration::from_millis(50));
        let mut r = Timed::reader(r, Duration::from_millis(300));
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(900));
                link.send(&crate::proto::Response::Ok).unwrap();
            });
            let got: crate::proto::Response = proto::recv_msg(&mut r).unwrap();
            assert_eq!(got, crate::proto::Response::Ok);
        });
    }

    #[test]
    fn a_peer_that_stops_reading_times_the_writer_out() {
        let (_r, w) = os_pipe::pipe().unwrap();
        let mut w = Timed::writer(w, Duration::from_millis(300)).unwrap();
        let t0 = Instant::now();
        let e = w.write_all(&vec![0u8; 8 << 20]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(t0.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn a_peer_stalled_mid_frame_times_out() {
        let (r, mut w) = os_pipe::pipe().unwrap();
        proto::write_head(&mut w, b'J', 100).unwrap();
        w.write_all(b"{\"ok").unwrap();
        let mut r = Timed::reader(r, Duration::from_millis(300));
        let e = proto::read_frame(&mut r).unwrap_err();
        assert!(e.is_timeout(), "{e}");
    }
}
