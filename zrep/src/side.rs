//! One end of a replication: this machine (libzfs directly) or a remote one (`ssh HOST
//! zrep serve`, spoken to with the framed protocol). Both carry out the same
//! [`Request`]s ([`Side::call`]); the typed methods below only build them.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use libzfs::{DatasetName, SendSource, SnapshotName, Zfs};

use crate::bwlimit::Limit;
use crate::compress::{self, Agreed, Compress};
use crate::error::{err, Error, Kind, Result};
use crate::link::{Link, Timed, ANSWER_TIMEOUTS, DEFAULT_TIMEOUT};
use crate::proto::{
    self, CursorMove, DatasetState, Flags, Listing, Property, ProtoError, Reading, Request,
    Response,
};

/// The first snapshot of a `Taken` answer that was not asked for, or is named twice.
fn stray_taken<'t>(asked: &[SnapshotName], taken: &'t [proto::Taken]) -> Option<&'t SnapshotName> {
    let asked: HashSet<&SnapshotName> = asked.iter().collect();
    let mut seen = HashSet::new();
    taken
        .iter()
        .map(|t| &t.snapshot)
        .find(|s| !asked.contains(s) || !seen.insert(*s))
}

/// How to reach a remote side.
#[derive(Debug, Clone)]
pub struct Ssh {
    /// The ssh command as argv (`["ssh", "-p", "2222"]`).
    pub argv: Vec<String>,
    /// zrep's path on the remote host.
    pub remote_zrep: String,
    /// The stall timeout: no byte from the peer for this long ends the session.
    pub timeout: Duration,
    /// Show the server's log lines (`-v`).
    pub verbose: bool,
    /// Stream compression on the wire (`--compress`).
    pub compress: Compress,
    /// The bandwidth limit of streams (`--bwlimit`, a schedule in a job).
    pub bwlimit: Limit,
}

impl Ssh {
    /// `ssh` is a command line, split like a shell would (no shell runs it).
    pub fn new(ssh: &str, remote_zrep: &str, timeout: Duration) -> Result<Ssh> {
        let argv = shlex::split(ssh)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| err(Kind::Usage, format!("cannot parse ssh command {ssh:?}")))?;
        if timeout.is_zero() {
            return Err(err(Kind::Usage, "the stall timeout must be at least 1 s"));
        }
        Ok(Ssh {
            argv,
            remote_zrep: remote_zrep.to_string(),
            timeout,
            verbose: false,
            compress: Compress::Auto,
            bwlimit: Limit::default(),
        })
    }
}

impl Default for Ssh {
    fn default() -> Ssh {
        Ssh {
            argv: vec!["ssh".into()],
            remote_zrep: "zrep".into(),
            timeout: DEFAULT_TIMEOUT,
            verbose: false,
            compress: Compress::Auto,
            bwlimit: Limit::default(),
        }
    }
}

/// A live connection to `zrep serve` on another host.
pub struct Remote {
    /// `[user@]host`, for messages.
    pub host: String,
    child: Child,
    /// Requests and stream frames go here; closed on drop.
    link: Option<Link>,
    /// Responses and stream frames come from here (read unbuffered).
    pub from: Timed<ChildStdout>,
    /// ssh's stderr, relayed to ours.
    relay: Option<JoinHandle<()>>,
    timeout: Duration,
    /// The connection failed or stalled: nothing more is said on drop.
    broken: bool,
    /// How long the request being answered may wait beyond the usual (a lock).
    extra_wait: Duration,
    /// What the hello agreed on stream compression.
    pub agreed: Agreed,
    /// The bandwidth limit of streams.
    pub bwlimit: Limit,
}

/// Where a dataset lives.
pub enum Side {
    /// This machine.
    Local(Zfs),
    /// Another one, over SSH.
    Remote(Box<Remote>),
}

/// Which end of a replication is on another host: at most one, so a route with two
/// remote ends cannot be written down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Both ends on this host.
    Local,
    /// The target is on this `[user@]host`.
    Push(String),
    /// The source is on this `[user@]host`.
    Pull(String),
}

impl Route {
    /// The route between `source_host` and `target_host` (`None`: this host).
    pub fn new(source_host: Option<&str>, target_host: Option<&str>) -> Result<Route> {
        match (source_host, target_host) {
            (None, None) => Ok(Route::Local),
            (None, Some(h)) => Ok(Route::Push(h.to_string())),
            (Some(h), None) => Ok(Route::Pull(h.to_string())),
            (Some(_), Some(_)) => Err(err(
                Kind::Usage,
                "source and target cannot both be remote; run zrep on one of them",
            )),
        }
    }

    /// The source's host, when remote.
    pub fn source_host(&self) -> Option<&str> {
        match self {
            Route::Pull(h) => Some(h),
            _ => None,
        }
    }

    /// The target's host, when remote.
    pub fn target_host(&self) -> Option<&str> {
        match self {
            Route::Push(h) => Some(h),
            _ => None,
        }
    }

    /// Refuses a target that is the source or inside it (both on one host).
    pub fn check_target(&self, source: &DatasetName, target: &DatasetName) -> Result<()> {
        if *self == Route::Local && (target == source || target.is_descendant_of(source)) {
            return Err(err(
                Kind::Usage,
                format!(
                    "target {target} is the source or inside it: choose a target outside {source}"
                ),
            ));
        }
        Ok(())
    }

    /// Opens both ends (the source first).
    pub fn open(&self, ssh: &Ssh) -> Result<(Side, Side)> {
        let src = Side::open(self.source_host(), ssh)?;
        let dst = Side::open(self.target_host(), ssh)?;
        Ok((src, dst))
    }
}

/// `[user@]host:dataset` → (host, dataset). A colon counts as a host separator only
/// when what precedes it has no `/` or `#` (dataset names may contain colons).
pub fn split_host(spec: &str) -> (Option<&str>, &str) {
    match spec.split_once(':') {
        Some((h, rest)) if !h.is_empty() && !h.contains(['/', '#']) && !rest.is_empty() => {
            (Some(h), rest)
        }
        _ => (None, spec),
    }
}

/// Refuses `[user@]host` unless both parts are plain names (letters, digits, `.`, `-`,
/// `_`; neither empty nor starting with `-`, which ssh would read as an option). An
/// IPv6 address or anything fancier goes in `~/.ssh/config` under a plain name.
pub fn check_host(spec: &str) -> Result<()> {
    let bad = |why: String| {
        Err(err(
            Kind::InvalidName,
            format!("invalid host {spec:?}: {why}"),
        ))
    };
    let (user, host) = match spec.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, spec),
    };
    for (what, part) in user
        .map(|u| ("user", u))
        .into_iter()
        .chain([("host", host)])
    {
        if part.is_empty() {
            return bad(format!("the {what} name is empty"));
        }
        if part.starts_with('-') {
            return bad(format!("the {what} name starts with '-'"));
        }
        if let Some(c) = part
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        {
            return bad(format!("{c:?} in the {what} name"));
        }
    }
    Ok(())
}

/// A protocol failure as an error naming the host and what we were doing.
pub fn conn_err(host: &str, doing: &str, e: ProtoError) -> Error {
    if let ProtoError::Io(io) = &e {
        if io.kind() == std::io::ErrorKind::TimedOut {
            return err(
                Kind::Timeout,
                format!("{host}: {io} while {doing}; the session was ended (an interrupted receive stays resumable)"),
            );
        }
    }
    {
        err(Kind::Connection, format!("{host}: {e} (while {doing})"))
    }
}

/// Lines the server writes to stderr that are its log, shown with `-v` only.
pub const LOG_PREFIX: &str = "zrep serve: log: ";

impl Side {
    /// This machine (`host` is `None`) or `host` through ssh.
    pub fn open(host: Option<&str>, ssh: &Ssh) -> Result<Side> {
        match host {
            None => Ok(Side::Local(Zfs::open()?)),
            Some(h) => Ok(Side::Remote(Box::new(Remote::connect(h, ssh)?))),
        }
    }
}

impl Remote {
    /// Runs `SSH... -- HOST REMOTE_ZREP serve` and exchanges versions. The host travels
    /// as one argv element after `--`; only the remote command is seen by the remote
    /// shell, and it is quoted.
    pub fn connect(host: &str, ssh: &Ssh) -> Result<Remote> {
        check_host(host)?;
        let remote_zrep = &ssh.remote_zrep;
        let quoted = shlex::try_quote(remote_zrep).map_err(|_| {
            err(
                Kind::InvalidName,
                format!("invalid remote zrep path {remote_zrep:?}"),
            )
        })?;
        let (prog, args) = ssh
            .argv
            .split_first()
            .ok_or_else(|| err(Kind::Usage, "empty --ssh command"))?;
        let mut child = Command::new(prog)
            .args(args)
            .arg("--")
            .arg(host)
            .arg(format!("{quoted} serve"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| err(Kind::Connection, format!("cannot run {prog}: {e}")))?;
        let (Some(to), Some(from), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(err(Kind::Connection, format!("{prog}: no pipes")));
        };
        let verbose = ssh.verbose;
        let relay = std::thread::Builder::new()
            .name("ssh stderr".into())
            .spawn(move || relay(stderr, verbose))
            .ok();
        let link = Timed::writer(to, ssh.timeout)
            .map(|w| Link::new(w, Link::interval(ssh.timeout, ssh.timeout)))
            .map_err(|e| err(Kind::Connection, format!("{host}: {e}")))?;
        let mut r = Remote {
            host: host.to_string(),
            child,
            link: Some(link),
            from: Timed::reader(from, ssh.timeout),
            relay,
            timeout: ssh.timeout,
            broken: false,
            extra_wait: Duration::ZERO,
            agreed: Agreed::default(),
            bwlimit: ssh.bwlimit.clone(),
        };
        r.hello(remote_zrep, ssh.compress)?;
        Ok(r)
    }

    fn hello(&mut self, remote_zrep: &str, compress: Compress) -> Result<()> {
        let host = self.host.clone();
        let offer = compress.offer();
        let hello = Request::Hello {
            version: proto::VERSION,
            zrep: env!("CARGO_PKG_VERSION").into(),
            timeout_secs: self.timeout.as_secs().max(1),
            compress: offer.clone(),
            compress_always: compress.always(),
            rate: self.bwlimit.now(),
        };
        match self.call(&hello) {
            Ok(Response::Hello {
                version,
                timeout_secs,
                compress: taken,
                ..
            }) if version == proto::VERSION => {
                let theirs = Duration::from_secs(timeout_secs.max(1));
                self.link()?
                    .set_keepalive(Link::interval(self.timeout, theirs));
                // Only a codec we offered: anything else is a broken peer.
                let codec = match taken {
                    None => None,
                    Some(name) if offer.contains(&name) => compress::Codec::from_name(&name),
                    Some(name) => {
                        let mut name = name;
                        name.truncate(40);
                        return Err(self.failed(err(
                            Kind::Connection,
                            format!("{host}: protocol error: the server chose codec {name:?}, which was not offered"),
                        )));
                    }
                };
                self.agreed = Agreed {
                    codec,
                    always: compress.always(),
                };
                Ok(())
            }
            Ok(Response::Hello { version, zrep, .. }) => Err(conn_err(
                &host,
                "saying hello",
                ProtoError::Version {
                    ours: proto::VERSION,
                    theirs: version,
                    peer_zrep: zrep,
                },
            )),
            Ok(other) => Err(unexpected(&host, &other)),
            Err(e) if e.kind == Kind::Connection => {
                // ssh's own exit status tells which end failed; its message (relayed
                // to our stderr) is above once the relay has ended.
                self.close();
                let code = self.exit_code();
                if code.is_some() {
                    // ssh has ended: its stderr is complete; print it before our words.
                    if let Some(t) = self.relay.take() {
                        let _ = t.join();
                    }
                }
                let why = match code {
                    Some(255) => format!("ssh could not reach {host} (ssh's message is above)"),
                    Some(127) => format!(
                        "{remote_zrep} is not installed on {host} (--remote-zrep PATH says where it is)"
                    ),
                    _ => format!(
                        "{} (is zrep installed on {host}? use --remote-zrep PATH; can you `ssh {host}`?)",
                        e.message
                    ),
                };
                Err(err(Kind::Connection, why))
            }
            Err(e) => Err(e),
        }
    }

    /// The exit code of ssh once it has ended (it has, or soon will, when the peer
    /// closed the connection); None if it is still running after two seconds.
    fn exit_code(&mut self) -> Option<i32> {
        for _ in 0..100 {
            match self.child.try_wait() {
                Ok(Some(st)) => return st.code(),
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => return None,
            }
        }
        None
    }

    /// The writing end of the session (open until the session is dropped).
    pub fn link(&self) -> Result<&Link> {
        self.link.as_ref().ok_or_else(|| {
            err(
                Kind::Connection,
                format!("{}: the session is closed", self.host),
            )
        })
    }

    /// Notes a failure of the connection itself (nothing more is said on it).
    pub fn failed(&mut self, e: Error) -> Error {
        if matches!(e.kind, Kind::Connection | Kind::Timeout) {
            self.broken = true;
        }
        e
    }

    /// Sends a request and reads its response; a remote error becomes `Err`. A listing
    /// arrives in parts, put back together here.
    pub fn call(&mut self, req: &Request) -> Result<Response> {
        let doing = format!("waiting for the answer to: {}", req.describe());
        self.extra_wait = match req {
            Request::Lock { wait_secs, .. } => Duration::from_secs(*wait_secs),
            // Reading a large snapshot back takes its time; keepalives say the server
            // lives, and a stall still ends the session after the stall timeout.
            Request::ReadBack { .. } => Duration::from_secs(7 * 86_400),
            _ => Duration::ZERO,
        };
        let sent = self.link()?.send(req);
        if let Err(e) = sent {
            let e = conn_err(&self.host, &doing, e);
            return Err(self.failed(e));
        }
        let mut listing: Option<Listing> = None;
        loop {
            match self.response(&doing)? {
                Response::State { datasets, more } => {
                    let l = listing.get_or_insert_with(Listing::default);
                    l.add(datasets)
                        .map_err(|e| conn_err(&self.host, &doing, e))?;
                    if !more {
                        let datasets = listing.take().unwrap_or_default().into_datasets();
                        return Ok(Response::State {
                            datasets,
                            more: false,
                        });
                    }
                }
                _ if listing.is_some() => {
                    return Err(err(
                        Kind::Connection,
                        format!("{}: a listing ended early", self.host),
                    ))
                }
                other => return Ok(other),
            }
        }
    }

    /// Reads one response: it must come within [`ANSWER_TIMEOUTS`] stall timeouts
    /// (and the lock wait a request asked for), whatever keepalives arrive meanwhile.
    pub fn response(&mut self, doing: &str) -> Result<Response> {
        self.from
            .answer_within(Some(self.timeout * ANSWER_TIMEOUTS + self.extra_wait));
        let answer = proto::recv_msg::<Response>(&mut self.from);
        self.from.answer_within(None);
        match answer {
            Ok(Response::Error(e)) => Err(e.context(&self.host)),
            Ok(r) => Ok(r),
            Err(e) => {
                let e = conn_err(&self.host, doing, e);
                Err(self.failed(e))
            }
        }
    }

    fn expect_ok(&mut self, req: &Request) -> Result<()> {
        match self.call(req)? {
            Response::Ok => Ok(()),
            other => Err(unexpected(&self.host, &other)),
        }
    }

    /// Says bye and closes our end: the server's loop ends, and with it ssh. On a
    /// broken connection, ssh is ended at once.
    fn close(&mut self) {
        if self.broken {
            let _ = self.child.kill();
        }
        if let Some(mut link) = self.link.take() {
            if !self.broken {
                let _ = link.send(&Request::Bye);
            }
            link.stop();
        }
    }
}

/// Copies ssh's stderr to ours, line by line; the server's log lines only with `-v`.
fn relay(stderr: std::process::ChildStderr, verbose: bool) {
    let mut r = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        // A line of at most 64 KiB at a time: a peer cannot make us hold more.
        match (&mut r).take(64 << 10).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        if verbose || !text.starts_with(LOG_PREFIX) {
            eprintln!("{text}");
        }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        // Closing the pipe tells a peer that ignores Bye that nothing more comes.
        // Then reap ssh, killing it after a grace period: a stuck or hostile peer
        // must not keep zrep from exiting.
        self.close();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.child.try_wait() {
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                Ok(Some(_)) | Err(_) => break,
            }
        }
        if let Some(t) = self.relay.take() {
            let _ = t.join();
        }
    }
}

/// An error for a response that does not fit the request.
pub fn unexpected(host: &str, r: &Response) -> Error {
    let mut what = format!("{r:?}");
    what.truncate(200);
    err(
        Kind::Connection,
        format!("{host}: unexpected response {what}"),
    )
}

/// Checks a listing from a peer: every dataset is the one asked for or (recursive)
/// below it, the first is the one asked for, none twice, and every snapshot and
/// bookmark name is valid for its dataset. Callers can then take names apart safely.
fn check_listing(
    host: &str,
    asked: &DatasetName,
    recursive: bool,
    datasets: &[DatasetState],
) -> Result<()> {
    let bad = |why: String| err(Kind::Connection, format!("{host}: protocol error: {why}"));
    let mut seen = HashSet::new();
    for (i, d) in datasets.iter().enumerate() {
        let inside = d.name == *asked || (recursive && d.name.is_descendant_of(asked));
        if !inside || (i == 0 && d.name != *asked) {
            return Err(bad(format!(
                "a listing of {asked} named {}, {}",
                d.name,
                if inside { "before it" } else { "outside it" }
            )));
        }
        if !seen.insert(d.name.as_str()) {
            return Err(bad(format!("a listing named {} twice", d.name)));
        }
        for s in &d.snapshots {
            d.name.snapshot(&s.name).map_err(|e| bad(e.to_string()))?;
        }
        for b in &d.bookmarks {
            d.name.bookmark(&b.name).map_err(|e| bad(e.to_string()))?;
        }
        if d.resume_token
            .as_ref()
            .is_some_and(|t| t.len() > proto::MAX_TOKEN)
        {
            return Err(bad(format!(
                "a resume token over {} bytes",
                proto::MAX_TOKEN
            )));
        }
    }
    Ok(())
}

impl Side {
    /// Describes the side for messages: `host:` or empty.
    pub fn prefix(&self) -> String {
        match self {
            Side::Local(_) => String::new(),
            Side::Remote(r) => format!("{}:", r.host),
        }
    }

    /// Carries out `req` here or on the peer (no streams, no locks: see
    /// [`crate::transfer`] and [`Side::lock`]).
    pub fn call(&mut self, req: &Request) -> Result<Response> {
        match self {
            Side::Local(z) => crate::local::execute(z, req),
            Side::Remote(r) => r.call(req),
        }
    }

    /// [`Side::call`] for a request answered by `Ok`.
    fn call_ok(&mut self, req: &Request) -> Result<()> {
        match self.call(req)? {
            Response::Ok => Ok(()),
            other => Err(self.unexpected(&other)),
        }
    }

    fn unexpected(&self, r: &Response) -> Error {
        unexpected(self.prefix().trim_end_matches(':'), r)
    }

    /// The dataset and (with `recursive`) its descendants, parents first; empty when
    /// it does not exist. A peer's answer is checked ([`check_listing`]).
    pub fn state(&mut self, dataset: &DatasetName, recursive: bool) -> Result<Vec<DatasetState>> {
        self.list(dataset, recursive, false, Reading::Full)
    }

    /// [`Side::state`] reading only what `reading` names (replication's listings).
    pub fn state_for(
        &mut self,
        dataset: &DatasetName,
        recursive: bool,
        reading: Reading,
    ) -> Result<Vec<DatasetState>> {
        self.list(dataset, recursive, false, reading)
    }

    /// [`Side::state_for`] without snapshots and bookmarks.
    pub fn datasets_for(
        &mut self,
        dataset: &DatasetName,
        recursive: bool,
        reading: Reading,
    ) -> Result<Vec<DatasetState>> {
        self.list(dataset, recursive, true, reading)
    }

    /// One dataset's own properties, without its snapshots and bookmarks, or `None`
    /// when it does not exist.
    pub fn dataset(&mut self, dataset: &DatasetName) -> Result<Option<DatasetState>> {
        Ok(self
            .list(dataset, false, true, Reading::Full)?
            .into_iter()
            .next())
    }

    /// `dataset`'s properties that are set locally or received (what
    /// `--send-properties` carries). A peer's answer is checked.
    pub fn properties(&mut self, dataset: &DatasetName) -> Result<Vec<Property>> {
        let req = Request::Properties {
            dataset: dataset.clone(),
        };
        match self.call(&req)? {
            Response::Properties { properties } => {
                if let Side::Remote(r) = self {
                    crate::props::check_list(&properties).map_err(|why| {
                        err(
                            Kind::Connection,
                            format!("{}: protocol error: {why}", r.host),
                        )
                    })?;
                }
                Ok(properties)
            }
            other => Err(self.unexpected(&other)),
        }
    }

    fn list(
        &mut self,
        dataset: &DatasetName,
        recursive: bool,
        datasets_only: bool,
        reading: Reading,
    ) -> Result<Vec<DatasetState>> {
        let req = Request::State {
            dataset: dataset.clone(),
            recursive,
            datasets_only,
            reading,
        };
        match self.call(&req)? {
            Response::State { datasets, .. } => {
                if let Side::Remote(r) = self {
                    check_listing(&r.host, dataset, recursive, &datasets)?;
                }
                Ok(datasets)
            }
            other => Err(self.unexpected(&other)),
        }
    }

    /// Waits until what was written to `dataset`'s pool is on disk: only then does a
    /// dataset's `written` count it.
    pub fn sync(&mut self, dataset: &DatasetName) -> Result<()> {
        self.call_ok(&Request::Sync {
            dataset: dataset.clone(),
        })
    }

    /// Estimated size of a stream.
    pub fn estimate(
        &mut self,
        snapshot: &SnapshotName,
        from: Option<&SendSource>,
        flags: Flags,
    ) -> Result<u64> {
        let req = Request::Estimate {
            snapshot: snapshot.clone(),
            from: from.cloned(),
            flags,
        };
        match self.call(&req)? {
            Response::Estimate { bytes } => Ok(bytes),
            other => Err(self.unexpected(&other)),
        }
    }

    /// Estimated size of what is left of an interrupted stream.
    pub fn estimate_resume(&mut self, token: &str) -> Result<u64> {
        let req = Request::EstimateResume {
            token: token.into(),
        };
        match self.call(&req)? {
            Response::Estimate { bytes } => Ok(bytes),
            other => Err(self.unexpected(&other)),
        }
    }

    /// Takes snapshots atomically.
    pub fn snapshot(&mut self, snapshots: &[SnapshotName]) -> Result<()> {
        if snapshots.is_empty() {
            return Ok(());
        }
        self.call_ok(&Request::Snapshot {
            snapshots: snapshots.to_vec(),
        })
    }

    /// Takes those of `snapshots` (at most [`proto::MAX_TAKEN`]) whose datasets were
    /// written to since their newest snapshot, or have none, in one transaction group
    /// and without a pool sync first; returns them and those that existed already. A
    /// peer's answer may name only snapshots asked for, each once.
    pub fn snapshot_written(&mut self, snapshots: &[SnapshotName]) -> Result<Vec<proto::Taken>> {
        if snapshots.is_empty() {
            return Ok(Vec::new());
        }
        let req = Request::SnapshotWritten {
            snapshots: snapshots.to_vec(),
        };
        let taken = match self.call(&req)? {
            Response::Taken { snapshots } => snapshots,
            other => return Err(self.unexpected(&other)),
        };
        match stray_taken(snapshots, &taken) {
            None => Ok(taken),
            Some(t) => Err(err(
                Kind::Connection,
                format!(
                    "{}: protocol error: took {t}, which was not asked for or is named twice",
                    self.prefix().trim_end_matches(':'),
                ),
            )),
        }
    }

    /// Moves zrep's cursor (see [`CursorMove`]).
    pub fn move_cursor(&mut self, m: &CursorMove) -> Result<()> {
        if m.is_empty() {
            return Ok(());
        }
        self.call_ok(&Request::Cursor(m.clone()))
    }

    /// Destroys snapshots.
    pub fn destroy_snapshots(&mut self, snapshots: &[SnapshotName]) -> Result<()> {
        if snapshots.is_empty() {
            return Ok(());
        }
        self.call_ok(&Request::DestroySnapshots {
            snapshots: snapshots.to_vec(),
        })
    }

    /// Rolls back to `snapshot`, destroying newer snapshots (releasing `tag` on them).
    pub fn rollback_to(&mut self, snapshot: &SnapshotName, tag: &str) -> Result<()> {
        self.call_ok(&Request::RollbackTo {
            snapshot: snapshot.clone(),
            tag: tag.into(),
        })
    }

    /// Sets `readonly` on `dataset` (and its descendants).
    pub fn set_readonly(&mut self, dataset: &DatasetName, recursive: bool, on: bool) -> Result<()> {
        self.call_ok(&Request::Readonly {
            dataset: dataset.clone(),
            recursive,
            on,
        })
    }

    /// The tags of `snapshot`'s holds.
    pub fn holds(&mut self, snapshot: &SnapshotName) -> Result<Vec<String>> {
        let req = Request::Holds {
            snapshot: snapshot.clone(),
        };
        match self.call(&req)? {
            Response::Holds { tags } => Ok(tags),
            other => Err(self.unexpected(&other)),
        }
    }

    /// Reads `snapshot` back in full into nothing (ZFS checks every block); the
    /// stream's bytes.
    pub fn read_back(&mut self, snapshot: &SnapshotName, raw: bool) -> Result<u64> {
        let req = Request::ReadBack {
            snapshot: snapshot.clone(),
            raw,
        };
        match self.call(&req)? {
            Response::Sent { bytes } => Ok(bytes),
            other => Err(self.unexpected(&other)),
        }
    }

    /// Discards the partial state of an interrupted receive into `dataset`.
    pub fn abort_resume(&mut self, dataset: &DatasetName) -> Result<()> {
        self.call_ok(&Request::AbortResume {
            dataset: dataset.clone(),
        })
    }

    /// Takes the per-target lock; held until the returned guard (local) or the
    /// session (remote) ends.
    pub fn lock(
        &mut self,
        dataset: &DatasetName,
        wait_secs: u64,
    ) -> Result<Option<crate::lock::Lock>> {
        match self {
            Side::Local(_) => crate::lock::Lock::acquire(dataset.as_str(), wait_secs).map(Some),
            Side::Remote(r) => r
                .expect_ok(&Request::Lock {
                    dataset: dataset.clone(),
                    wait_secs,
                })
                .map(|()| None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        for ok in ["nas", "backup@nas.example.org", "root@10.0.0.5", "a_b-c"] {
            assert!(check_host(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("", "host name is empty"),
            ("@nas", "user name is empty"),
            ("root@", "host name is empty"),
            ("a@b@nas", "'@' in the user name"),
            ("'h'", "'\\'' in the host name"),
            ("-oProxyCommand=x", "starts with '-'"),
            ("r t@nas", "' ' in the user name"),
            ("a\nb", "'\\n' in the host name"),
        ] {
            let e = check_host(bad).unwrap_err();
            assert!(e.message.contains(why), "{bad:?}: {}", e.message);
        }
    }

    fn listed(name: &str, snap: &str) -> DatasetState {
        let snapshots = vec![proto::SnapEntry {
            name: snap.into(),
            guid: 2,
            createtxg: 3,
            creation: 4,
            userrefs: 0,
            holds: None,
        }];
        DatasetState {
            guid: 1,
            ..DatasetState::filesystem(name, snapshots)
        }
    }

    /// A peer's `Taken` answer names only snapshots asked for, each once.
    #[test]
    fn taken_snapshots_must_have_been_asked_for() {
        let s = |n: &str| SnapshotName::new(n).unwrap();
        let t = |n: &str| proto::Taken {
            snapshot: s(n),
            guid: 1,
            createtxg: 2,
            creation: 3,
        };
        let asked = [s("back/a@n"), s("back/a/b@n")];
        assert_eq!(stray_taken(&asked, &[]), None);
        assert_eq!(stray_taken(&asked, &[t("back/a/b@n"), t("back/a@n")]), None);
        let other = [t("back/a@n"), t("back/c@n")];
        assert_eq!(stray_taken(&asked, &other), Some(&s("back/c@n")));
        let twice = [t("back/a@n"), t("back/a@n")];
        assert_eq!(stray_taken(&asked, &twice), Some(&s("back/a@n")));
    }

    /// A peer's listing names only what was asked for: `back/ab` is not in `back/a`'s
    /// tree, and a shorter name cannot slip in.
    #[test]
    fn listings_outside_the_tree_are_protocol_errors() {
        let asked = DatasetName::new("back/a").unwrap();
        let ok = [listed("back/a", "s"), listed("back/a/b", "s")];
        assert!(check_listing("h", &asked, true, &ok).is_ok());
        for (bad, recursive, why) in [
            (vec![listed("back/ab", "s")], true, "outside it"),
            (vec![listed("back", "s")], true, "outside it"),
            (
                vec![listed("back/a", "s"), listed("back/a/b", "s")],
                false,
                "outside it",
            ),
            (vec![listed("back/a/b", "s")], true, "before it"),
            (
                vec![listed("back/a", "s"), listed("back/a", "t")],
                true,
                "twice",
            ),
            (vec![listed("back/a", "s@t")], true, "protocol error"),
            (vec![listed("back/a", "")], true, "protocol error"),
        ] {
            let e = check_listing("h", &asked, recursive, &bad).unwrap_err();
            assert_eq!(e.kind, Kind::Connection);
            assert!(e.message.contains(why), "{bad:?}: {}", e.message);
        }
    }
}
