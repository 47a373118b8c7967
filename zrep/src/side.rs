//! One end of a replication: this machine (libzfs directly) or a remote one (`ssh HOST
//! zrep serve`, spoken to with the framed protocol).

use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use libzfs::Zfs;

use crate::local::{self, err, OpResult};
use crate::proto::{self, DatasetState, Flags, ProtoError, RemoteError, Request, Response};

/// A live connection to `zrep serve` on another host.
pub struct Remote {
    /// `[user@]host`, for messages.
    pub host: String,
    child: Child,
    /// Requests and stream frames go here ([`Remote::to_peer`]); closed on drop.
    to: Option<ChildStdin>,
    /// Responses and stream frames come from here (read unbuffered).
    pub from: ChildStdout,
}

/// Where a dataset lives.
pub enum Side {
    /// This machine.
    Local(Zfs),
    /// Another one, over SSH.
    Remote(Box<Remote>),
}

/// Turns a protocol failure into an error naming the host.
pub fn conn_err(host: &str, e: ProtoError) -> RemoteError {
    err("Connection", format!("{host}: {e}"))
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
pub fn check_host(spec: &str) -> OpResult<()> {
    let bad = |why: String| Err(err("InvalidName", format!("invalid host {spec:?}: {why}")));
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

impl Side {
    /// This machine (`host` is `None`) or `host` through `ssh` (a command line, split
    /// like a shell would, but no shell runs it).
    pub fn open(host: Option<&str>, ssh: &str, remote_zrep: &str) -> OpResult<Side> {
        match host {
            None => Ok(Side::Local(Zfs::open()?)),
            Some(h) => {
                let argv = shlex::split(ssh).filter(|v| !v.is_empty()).ok_or_else(|| {
                    err(
                        "InvalidArgument",
                        format!("cannot parse ssh command {ssh:?}"),
                    )
                })?;
                Ok(Side::Remote(Box::new(Remote::connect(
                    h,
                    &argv,
                    remote_zrep,
                )?)))
            }
        }
    }
}

impl Remote {
    /// Runs `SSH... HOST REMOTE_ZREP serve` and exchanges versions. `ssh` is the
    /// command as argv (e.g. `["ssh", "-p", "2222"]`). The host travels as one argv
    /// element after `--`; only the remote command is seen by the remote shell, and
    /// it is quoted.
    pub fn connect(host: &str, ssh: &[String], remote_zrep: &str) -> OpResult<Remote> {
        check_host(host)?;
        let quoted = shlex::try_quote(remote_zrep).map_err(|_| {
            err(
                "InvalidName",
                format!("invalid remote zrep path {remote_zrep:?}"),
            )
        })?;
        let (prog, args) = ssh
            .split_first()
            .ok_or_else(|| err("InvalidArgument", "empty --ssh command"))?;
        let mut child = Command::new(prog)
            .args(args)
            .arg("--")
            .arg(host)
            .arg(format!("{quoted} serve"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| err("Connection", format!("cannot run {prog}: {e}")))?;
        let to = child.stdin.take().expect("piped stdin");
        let from = child.stdout.take().expect("piped stdout");
        let mut r = Remote {
            host: host.to_string(),
            child,
            to: Some(to),
            from,
        };
        let hello = Request::Hello {
            version: proto::VERSION,
            zrep: env!("CARGO_PKG_VERSION").into(),
        };
        match r.call(&hello) {
            Ok(Response::Hello { version, zrep, .. }) if version == proto::VERSION => {
                let _ = zrep;
                Ok(r)
            }
            Ok(Response::Hello { version, zrep, .. }) => Err(conn_err(
                host,
                ProtoError::Version {
                    ours: proto::VERSION,
                    theirs: version,
                    peer_zrep: zrep,
                },
            )),
            Ok(other) => Err(err(
                "Connection",
                format!("{host}: unexpected hello {other:?}"),
            )),
            Err(e) if e.kind == "Connection" => {
                // ssh's own exit status tells which end failed; its message (on our
                // stderr) is already above.
                r.to = None;
                let why = match r.exit_code() {
                    Some(255) => format!("ssh could not reach {host} (ssh's message is above)"),
                    Some(127) => format!(
                        "{remote_zrep} is not installed on {host} (--remote-zrep PATH says where it is)"
                    ),
                    _ => format!(
                        "{} (is zrep installed on {host}? use --remote-zrep PATH; can you `ssh {host}`?)",
                        e.message
                    ),
                };
                Err(err("Connection", why))
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
                Ok(None) => std::thread::sleep(std::time::Duration::from_millis(20)),
                Err(_) => return None,
            }
        }
        None
    }

    /// The pipe to the peer (open until the session is dropped).
    pub fn to_peer(&mut self) -> &mut ChildStdin {
        self.to
            .as_mut()
            .expect("the pipe to the peer is open until drop")
    }

    /// Sends a request and reads its response; a remote error becomes `Err`.
    pub fn call(&mut self, req: &Request) -> OpResult<Response> {
        proto::send_msg(self.to_peer(), req).map_err(|e| conn_err(&self.host, e))?;
        self.response()
    }

    /// Reads one response.
    pub fn response(&mut self) -> OpResult<Response> {
        match proto::recv_msg::<Response>(&mut self.from) {
            Ok(Response::Error(e)) => Err(RemoteError {
                kind: e.kind,
                message: format!("{}: {}", self.host, e.message),
            }),
            Ok(r) => Ok(r),
            Err(e) => Err(conn_err(&self.host, e)),
        }
    }

    fn expect_ok(&mut self, req: &Request) -> OpResult<()> {
        match self.call(req)? {
            Response::Ok => Ok(()),
            other => Err(unexpected(&self.host, &other)),
        }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        // Bye ends the server's loop, and with it ssh; closing the pipe tells a peer
        // that ignores Bye that nothing more comes. Then reap ssh, killing it after a
        // grace period: a stuck or hostile peer must not keep zrep from exiting.
        if let Some(mut to) = self.to.take() {
            let _ = proto::send_msg(&mut to, &Request::Bye);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.child.try_wait() {
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return;
                }
                Ok(Some(_)) | Err(_) => return,
            }
        }
    }
}

/// An error for a response that does not fit the request.
pub fn unexpected(host: &str, r: &Response) -> RemoteError {
    err("Connection", format!("{host}: unexpected response {r:?}"))
}

impl Side {
    /// Describes the side for messages: `host:` or empty.
    pub fn prefix(&self) -> String {
        match self {
            Side::Local(_) => String::new(),
            Side::Remote(r) => format!("{}:", r.host),
        }
    }

    /// See [`local::state`].
    pub fn state(&mut self, dataset: &str, recursive: bool) -> OpResult<Vec<DatasetState>> {
        match self {
            Side::Local(z) => local::state(z, dataset, recursive),
            Side::Remote(r) => match r.call(&Request::State {
                dataset: dataset.into(),
                recursive,
            })? {
                Response::State { datasets } => Ok(datasets),
                other => Err(unexpected(&r.host, &other)),
            },
        }
    }

    /// See [`local::sync`].
    pub fn sync(&mut self, dataset: &str) -> OpResult<()> {
        match self {
            Side::Local(z) => local::sync(z, dataset),
            Side::Remote(r) => r.expect_ok(&Request::Sync {
                dataset: dataset.into(),
            }),
        }
    }

    /// See [`local::estimate`].
    pub fn estimate(&mut self, snapshot: &str, from: Option<&str>, flags: Flags) -> OpResult<u64> {
        match self {
            Side::Local(z) => local::estimate(z, snapshot, from, flags),
            Side::Remote(r) => match r.call(&Request::Estimate {
                snapshot: snapshot.into(),
                from: from.map(Into::into),
                flags,
            })? {
                Response::Estimate { bytes } => Ok(bytes),
                other => Err(unexpected(&r.host, &other)),
            },
        }
    }

    /// See [`local::estimate_resume`].
    pub fn estimate_resume(&mut self, token: &str) -> OpResult<u64> {
        match self {
            Side::Local(z) => local::estimate_resume(z, token),
            Side::Remote(r) => match r.call(&Request::EstimateResume {
                token: token.into(),
            })? {
                Response::Estimate { bytes } => Ok(bytes),
                other => Err(unexpected(&r.host, &other)),
            },
        }
    }

    /// See [`local::snapshot`].
    pub fn snapshot(&mut self, snapshots: &[String], props: &[(String, String)]) -> OpResult<()> {
        match self {
            Side::Local(z) => local::snapshot(z, snapshots, props),
            Side::Remote(r) => r.expect_ok(&Request::Snapshot {
                snapshots: snapshots.to_vec(),
                props: props.to_vec(),
            }),
        }
    }

    /// See [`local::hold`].
    pub fn hold(&mut self, holds: &[(String, String)]) -> OpResult<()> {
        if holds.is_empty() {
            return Ok(());
        }
        match self {
            Side::Local(z) => local::hold(z, holds),
            Side::Remote(r) => r.expect_ok(&Request::Hold {
                holds: holds.to_vec(),
            }),
        }
    }

    /// See [`local::release`].
    pub fn release(&mut self, holds: &[(String, String)]) -> OpResult<()> {
        if holds.is_empty() {
            return Ok(());
        }
        match self {
            Side::Local(z) => local::release(z, holds),
            Side::Remote(r) => r.expect_ok(&Request::Release {
                holds: holds.to_vec(),
            }),
        }
    }

    /// See [`local::bookmark`].
    pub fn bookmark(&mut self, pairs: &[(String, String)]) -> OpResult<()> {
        if pairs.is_empty() {
            return Ok(());
        }
        match self {
            Side::Local(z) => local::bookmark(z, pairs),
            Side::Remote(r) => r.expect_ok(&Request::Bookmark {
                pairs: pairs.to_vec(),
            }),
        }
    }

    /// See [`local::destroy_snapshots`].
    pub fn destroy_snapshots(&mut self, snapshots: &[String]) -> OpResult<()> {
        if snapshots.is_empty() {
            return Ok(());
        }
        match self {
            Side::Local(z) => local::destroy_snapshots(z, snapshots),
            Side::Remote(r) => r.expect_ok(&Request::DestroySnapshots {
                snapshots: snapshots.to_vec(),
            }),
        }
    }

    /// See [`local::destroy_bookmarks`].
    pub fn destroy_bookmarks(&mut self, bookmarks: &[String]) -> OpResult<()> {
        if bookmarks.is_empty() {
            return Ok(());
        }
        match self {
            Side::Local(z) => local::destroy_bookmarks(z, bookmarks),
            Side::Remote(r) => r.expect_ok(&Request::DestroyBookmarks {
                bookmarks: bookmarks.to_vec(),
            }),
        }
    }

    /// See [`local::rollback_to`].
    pub fn rollback_to(&mut self, snapshot: &str, tag: &str) -> OpResult<()> {
        match self {
            Side::Local(z) => local::rollback_to(z, snapshot, tag),
            Side::Remote(r) => r.expect_ok(&Request::RollbackTo {
                snapshot: snapshot.into(),
                tag: tag.into(),
            }),
        }
    }

    /// See [`local::abort_resume`].
    pub fn abort_resume(&mut self, dataset: &str) -> OpResult<()> {
        match self {
            Side::Local(z) => local::abort_resume(z, dataset),
            Side::Remote(r) => r.expect_ok(&Request::AbortResume {
                dataset: dataset.into(),
            }),
        }
    }

    /// Takes the per-target lock; held until the returned guard (local) or the
    /// session (remote) ends.
    pub fn lock(&mut self, dataset: &str, wait_secs: u64) -> OpResult<Option<crate::lock::Lock>> {
        match self {
            Side::Local(_) => crate::lock::Lock::acquire(dataset, wait_secs).map(Some),
            Side::Remote(r) => r
                .expect_ok(&Request::Lock {
                    dataset: dataset.into(),
                    wait_secs,
                })
                .map(|_| None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check_host;

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
}
