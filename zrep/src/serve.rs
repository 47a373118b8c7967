//! `zrep serve`: the remote end. Reads requests on stdin, answers on stdout, logs to
//! stderr (which ssh carries back to the client) and to syslog.
//!
//! Every request passes the server's [`Policy`] before any work starts; what changes
//! something, and every refusal, is logged. Both pipes have the stall timeout, and
//! keepalives go out while a request is worked on (see [`crate::link`]).

use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Duration;

use libzfs::Zfs;

use crate::bwlimit::Limit;
use crate::compress::Agreed;
use crate::error::{err, Error, Kind, Result};
use crate::link::{Link, Timed};
use crate::local::{self, Target};
use crate::policy::{Access, Policy};
use crate::proto::{self, ProtoError, Request, Response};
use crate::pump::{self, Shaping, StreamEnd};
use crate::side::LOG_PREFIX;
use crate::transfer::{local_send, Stream};

/// How the server was started.
#[derive(Debug, Clone)]
pub struct Options {
    /// What clients may do.
    pub policy: Policy,
    /// The stall timeout.
    pub timeout: Duration,
}

/// Serves one session; returns the process exit code.
pub fn serve(opts: &Options) -> i32 {
    // Take fds 0 and 1 for the protocol and point fd 1 at stderr, so nothing printed
    // by accident can corrupt the frames.
    // SAFETY: dup of the process's own standard descriptors, owned by the Files below;
    // dup2 only replaces fd 1, which nothing else owns.
    let (input, output) = unsafe {
        let i = libc::dup(0);
        let o = libc::dup(1);
        if i < 0 || o < 0 || libc::dup2(2, 1) < 0 {
            eprintln!("zrep serve: cannot duplicate stdin/stdout");
            return 1;
        }
        (
            File::from(OwnedFd::from_raw_fd(i)),
            File::from(OwnedFd::from_raw_fd(o)),
        )
    };
    let log = Log::open();
    if opts.policy.is_restricted() {
        log.note(&format!("session started: {}", opts.policy.describe()));
    }
    let output = match Timed::writer(output, opts.timeout) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("zrep serve: stdout: {e}");
            return 1;
        }
    };
    let mut s = Session {
        opts,
        input: Timed::reader(input, opts.timeout),
        output: Link::new(output, Link::interval(opts.timeout, opts.timeout)),
        log,
        locks: Vec::new(),
        agreed: Agreed::default(),
        rate: None,
    };
    match s.run() {
        Ok(()) => 0,
        Err(e) => {
            let what = if e.is_timeout() {
                format!(
                    "{e} from the client; session ended (an interrupted receive stays resumable)"
                )
            } else {
                e.to_string()
            };
            s.log.note(&what);
            eprintln!("zrep serve: {what}");
            1
        }
    }
}

/// Whether this server takes `codec`: all it knows, unless `ZREP_SERVE_CODECS` names
/// some (comma-separated; empty: none, as a server from before compression answers).
/// For tests and measurements.
fn codec_allowed(codec: crate::compress::Codec) -> bool {
    match std::env::var("ZREP_SERVE_CODECS") {
        Err(_) => true,
        Ok(list) => list.split(',').any(|n| n.trim() == codec.name()),
    }
}

/// The refusal of a request that did not decode: a name that is not one (its
/// message from [`libzfs::NameError`]), or no request zrep knows.
fn malformed(why: &str) -> Error {
    let kind = if why.contains("bytes long; the maximum is") {
        Kind::NameTooLong
    } else if why.contains("invalid name: ") {
        Kind::InvalidName
    } else {
        Kind::InvalidArgument
    };
    err(kind, format!("refused a malformed request: {why}"))
}

/// The server's log: stderr (as [`LOG_PREFIX`] lines) and syslog, when there is one.
struct Log {
    syslog: bool,
    client: String,
}

impl Log {
    fn open() -> Log {
        let syslog = std::path::Path::new("/dev/log").exists()
            || std::path::Path::new("/var/run/log").exists();
        if syslog {
            // SAFETY: a static NUL-terminated ident, kept for the life of the process.
            unsafe { libc::openlog(c"zrep-serve".as_ptr(), libc::LOG_PID, libc::LOG_AUTH) };
        }
        let client = std::env::var("SSH_CLIENT")
            .ok()
            .and_then(|c| c.split_whitespace().next().map(str::to_string))
            .unwrap_or_else(|| "local".into());
        Log { syslog, client }
    }

    fn note(&self, what: &str) {
        eprintln!("{LOG_PREFIX}{what}");
        if self.syslog {
            let line = format!("client {}: {what}", self.client).replace('\0', " ");
            if let Ok(c) = std::ffi::CString::new(line) {
                // SAFETY: a constant format taking one C string, and that string.
                unsafe { libc::syslog(libc::LOG_NOTICE, c"%s".as_ptr(), c.as_ptr()) };
            }
        }
    }
}

struct Session<'a> {
    opts: &'a Options,
    input: Timed<File>,
    output: Link,
    log: Log,
    /// Target locks this session holds, by dataset (a second request for one is
    /// answered from here: a failover runs two replications in one session).
    locks: Vec<(libzfs::DatasetName, crate::lock::Lock)>,
    /// What the hello agreed on stream compression.
    agreed: Agreed,
    /// The client's limit on the streams this server sends (bytes per second).
    rate: Option<u64>,
}

impl Session<'_> {
    fn run(&mut self) -> Result<(), ProtoError> {
        let zfs = Zfs::open();
        match proto::recv_msg_or_eof::<Request>(&mut self.input)? {
            Some(Request::Hello {
                version,
                timeout_secs,
                compress,
                compress_always,
                rate,
                ..
            }) => {
                // A client may only slow its own streams down (and not to a crawl).
                self.rate = rate.filter(|r| *r >= 1024);
                let codec = crate::compress::pick(&compress).filter(|c| codec_allowed(*c));
                self.agreed = Agreed {
                    codec,
                    always: compress_always,
                };
                self.output.send(&Response::Hello {
                    version: proto::VERSION,
                    zrep: env!("CARGO_PKG_VERSION").into(),
                    openzfs: libzfs::OPENZFS_VERSION.into(),
                    timeout_secs: self.opts.timeout.as_secs().max(1),
                    compress: codec.map(|c| c.name().to_string()),
                })?;
                if version != proto::VERSION {
                    return Ok(());
                }
                let theirs = match timeout_secs {
                    0 => self.opts.timeout,
                    t => Duration::from_secs(t),
                };
                self.output
                    .set_keepalive(Link::interval(self.opts.timeout, theirs));
            }
            Some(other) => {
                return Err(ProtoError::Unexpected(format!(
                    "{} before hello",
                    other.describe()
                )));
            }
            None => return Ok(()),
        }
        let zfs = match zfs {
            Ok(z) => z,
            Err(e) => {
                // Answer every request with the reason until the client gives up.
                let e: Error = e.into();
                while let Some(req) = proto::recv_msg_or_eof::<Request>(&mut self.input)? {
                    if req == Request::Bye {
                        break;
                    }
                    self.output.send(&Response::Error(e.clone()))?;
                }
                return Ok(());
            }
        };
        // A client that keeps the session alive but sends no request for many
        // timeouts is dropped too.
        let idle = self.opts.timeout * crate::link::ANSWER_TIMEOUTS;
        loop {
            self.input.answer_within(Some(idle));
            let next = proto::recv_msg_or_eof::<Request>(&mut self.input);
            self.input.answer_within(None);
            match next {
                Ok(None | Some(Request::Bye)) => return Ok(()),
                Ok(Some(req)) => self.request(&zfs, req)?,
                // A whole frame whose request is malformed (a bad name, an unknown
                // operation): refused, and the session goes on.
                Err(ProtoError::BadMessage(m)) => {
                    let e = malformed(&m);
                    self.log.note(&e.message);
                    self.output.send(&Response::Error(e))?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Checks one request against the policy, logs it, and answers it.
    fn request(&mut self, zfs: &Zfs, req: Request) -> Result<(), ProtoError> {
        let access = match self.opts.policy.check(&req) {
            Ok(a) => a,
            Err(e) => {
                self.log
                    .note(&format!("{} ({})", e.message, req.describe()));
                // A refused receive has no stream coming: the client sends it only
                // once it hears `Streaming`.
                return self.output.send(&Response::Error(e));
            }
        };
        if req.changes() {
            self.log.note(&req.describe());
        }
        if let Some(stream) = Stream::asked_by(&req) {
            return self.send_stream(zfs, &stream);
        }
        let reply = match req {
            Request::Hello { .. } => Err(err(Kind::Connection, "hello twice")),
            Request::Receive(target) => {
                let r = self.receive_stream(zfs, &target)?;
                return self.output.send(&r.unwrap_or_else(Response::Error));
            }
            Request::Lock { dataset, .. } if self.locks.iter().any(|(d, _)| *d == dataset) => {
                Ok(Response::Ok)
            }
            Request::Lock { dataset, wait_secs } => {
                crate::lock::Lock::acquire(dataset.as_str(), wait_secs).map(|l| {
                    self.locks.push((dataset, l));
                    Response::Ok
                })
            }
            Request::State { dataset, .. } if access == Access::Reduced => {
                local::state(zfs, &dataset, false, false).map(|d| Response::State {
                    datasets: d.into_iter().map(|d| d.reduced()).collect(),
                    more: false,
                })
            }
            other => local::execute(zfs, &other),
        };
        match reply {
            Ok(Response::State { datasets, .. }) => {
                let entries: usize = datasets
                    .iter()
                    .map(|d| d.snapshots.len() + d.bookmarks.len())
                    .sum();
                if entries > proto::MAX_LISTING_ENTRIES {
                    let e = err(
                        Kind::InvalidArgument,
                        format!(
                            "the listing has {entries} snapshots and bookmarks, over the {} the protocol carries",
                            proto::MAX_LISTING_ENTRIES
                        ),
                    );
                    return self.output.send(&Response::Error(e));
                }
                for part in proto::listing_parts(datasets) {
                    self.output.send(&part)?;
                }
                Ok(())
            }
            Ok(r) => self.output.send(&r),
            Err(e) => self.output.send(&Response::Error(e)),
        }
    }

    /// Answers `Streaming`, sends the stream as frames, closes it with `E` or `A`, then
    /// answers `Sent` or the error.
    fn send_stream(&mut self, zfs: &Zfs, stream: &Stream) -> Result<(), ProtoError> {
        let (rd, wr) = match pump::pipe() {
            Ok(p) => p,
            Err(e) => {
                let e = err(Kind::Io, format!("pipe: {e}"));
                return self.output.send(&Response::Error(e));
            }
        };
        self.output.send(&Response::Streaming)?;
        let out = &self.output;
        // A pull's limit, as the client asked (it also reads no faster).
        let shaping = stream.shaping(self.agreed, &Limit::rate(self.rate));
        let (sent, pumped) = std::thread::scope(|s| {
            let sender = s.spawn(move || local_send(zfs, stream, wr));
            let pumped = pump::frames_out(&rd, out, &|_| {}, &shaping);
            drop(rd);
            let sent = sender
                .join()
                .unwrap_or_else(|_| Err(err(Kind::Other, "the send thread panicked")));
            (sent, pumped)
        });
        // A client that went away: nothing more to say.
        let bytes = pumped?.stream;
        match sent {
            Ok(()) => {
                self.output.frame(b'E', b"")?;
                self.output.send(&Response::Sent { bytes })
            }
            Err(e) => {
                self.output
                    .frame(b'A', &serde_json::to_vec(&e).unwrap_or_default())?;
                self.output.send(&Response::Error(e))
            }
        }
    }

    /// Answers `Streaming`, receives the framed stream that follows into the target.
    fn receive_stream(
        &mut self,
        zfs: &Zfs,
        target: &Target,
    ) -> Result<Result<Response>, ProtoError> {
        let (rd, wr) = match pump::pipe() {
            Ok(p) => p,
            Err(e) => return Ok(Err(err(Kind::Io, format!("pipe: {e}")))),
        };
        self.output.send(&Response::Streaming)?;
        let input = &mut self.input;
        let shaping = Shaping {
            codec: self.agreed.codec,
            limit: Limit::default(),
        };
        let (received, ended) = std::thread::scope(|s| {
            let shaping = &shaping;
            let reader = s.spawn(move || pump::frames_in(input, wr, &|_| {}, shaping));
            let received = local::receive(zfs, target, &rd);
            drop(rd);
            let ended = reader.join().unwrap_or_else(|_| {
                Err(ProtoError::Unexpected("the stream reader panicked".into()))
            });
            (received, ended)
        });
        match ended?.0 {
            StreamEnd::Aborted(e) => Ok(Err(err(
                e.kind,
                format!("the sender aborted the stream: {}", e.message),
            ))),
            StreamEnd::Complete => Ok(received.map(|(snapshot, bytes)| {
                self.log
                    .note(&format!("received {snapshot} ({bytes} bytes)"));
                Response::Received { snapshot, bytes }
            })),
        }
    }
}
