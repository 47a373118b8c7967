//! What a `zrep serve` lets its client do: one check per request, before any work.
//!
//! A server started as an SSH forced command is the backup's last line of defence:
//! the host on the other end may be compromised. Its roots (`--root DATASET`,
//! repeatable) bound every name a request carries, compared component by component;
//! its mode bounds what may be done there:
//!
//! | mode | allowed |
//! |---|---|
//! | full (default) | everything, inside the roots |
//! | `--receive-only` (a push target) | listing, receive (never forced; a full stream only into a new dataset), zrep's own holds and bookmarks, discarding an interrupted receive |
//! | `--send-only` (a pull source) | listing, send, estimate, snapshot, zrep's own holds and bookmarks; destroying zrep's own snapshots with `--allow-prune` |
//!
//! Outside the roots, the two reads replication needs (a pool's identity, a new
//! target's parent's free space) are answered for the roots' ancestors in reduced
//! form ([`crate::proto::DatasetState::reduced`]); anything else is refused.

use libzfs::{DatasetName, ResumeToken};

use crate::error::{err, Error, Kind, Result};
use crate::names::PREFIX as OURS;
use crate::proto::{Hold, Op, PropValue, Receive, Request, MAX_TOKEN};

/// What the client may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Anything (inside the roots).
    Full,
    /// Append-only target of pushes.
    ReceiveOnly,
    /// Source of pulls; `allow_prune` lets it destroy zrep's own snapshots.
    SendOnly {
        /// `--allow-prune`.
        allow_prune: bool,
    },
}

/// The server's rules.
#[derive(Debug, Clone)]
pub struct Policy {
    roots: Vec<DatasetName>,
    mode: Mode,
}

/// How a permitted request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// In full.
    Full,
    /// A listing of an ancestor of the roots: that dataset alone, reduced.
    Reduced,
}

impl Policy {
    /// `roots` empty: the whole host.
    pub fn new(roots: Vec<DatasetName>, mode: Mode) -> Policy {
        Policy { roots, mode }
    }

    /// No roots, every operation: `zrep serve` without options.
    pub fn unrestricted() -> Policy {
        Policy::new(Vec::new(), Mode::Full)
    }

    /// Whether any option narrows what clients may do.
    pub fn is_restricted(&self) -> bool {
        !self.roots.is_empty() || self.mode != Mode::Full
    }

    /// One line saying what the server allows.
    pub fn describe(&self) -> String {
        let mode = match self.mode {
            Mode::Full => "all operations",
            Mode::ReceiveOnly => "receive only",
            Mode::SendOnly { allow_prune: false } => "send only",
            Mode::SendOnly { allow_prune: true } => "send only, pruning zrep's snapshots",
        };
        if self.roots.is_empty() {
            format!("{mode}, on every dataset")
        } else {
            let roots: Vec<&str> = self.roots.iter().map(DatasetName::as_str).collect();
            format!("{mode}, under {}", roots.join(", "))
        }
    }

    /// Whether `name` is one of the roots or below one.
    fn inside(&self, name: &str) -> bool {
        self.roots.is_empty()
            || self
                .roots
                .iter()
                .any(|r| name == r.as_str() || below(name, r.as_str()))
    }

    /// Whether `name` is above one of the roots.
    fn above(&self, name: &str) -> bool {
        self.roots.iter().any(|r| below(r.as_str(), name))
    }

    fn refuse(&self, why: impl std::fmt::Display) -> Error {
        err(Kind::Refused, format!("refused by the server: {why}"))
    }

    /// Every name must be inside the roots.
    fn names<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Result<()> {
        for name in names {
            let dataset = name.split(['@', '#']).next().unwrap_or(name);
            if !self.inside(dataset) {
                let roots: Vec<&str> = self.roots.iter().map(DatasetName::as_str).collect();
                return Err(self.refuse(format!(
                    "{name} is outside {} ({})",
                    if roots.len() == 1 {
                        "its root"
                    } else {
                        "its roots"
                    },
                    roots.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// The operation is allowed in this mode, or the refusal says which mode forbids it.
    fn allowed(&self, ok: bool, what: &str) -> Result<()> {
        match (ok, self.mode) {
            (true, _) => Ok(()),
            (false, Mode::ReceiveOnly) => {
                Err(self.refuse(format!("{what} is not allowed (zrep serve --receive-only)")))
            }
            (false, Mode::SendOnly { allow_prune }) => Err(self.refuse(format!(
                "{what} is not allowed (zrep serve --send-only{})",
                if allow_prune { " --allow-prune" } else { "" }
            ))),
            (false, Mode::Full) => Err(self.refuse(format!("{what} is not allowed"))),
        }
    }

    /// A receive's properties: well formed from any client; from the client of a
    /// restricted server, none that reaches outside the backup
    /// ([`crate::props::HOST_REACHING`]) and `canmount` only `off` or `noauto`.
    fn properties(&self, r: &Receive) -> Result<()> {
        let lists = [r.received.as_deref().unwrap_or_default(), &r.set[..]];
        for list in lists {
            crate::props::check_list(list)
                .map_err(|why| err(Kind::InvalidArgument, format!("protocol error: {why}")))?;
        }
        for n in &r.inherit {
            crate::props::check_name(n)
                .map_err(|why| err(Kind::InvalidArgument, format!("protocol error: {why}")))?;
        }
        if r.inherit.len() > crate::proto::MAX_PROPERTIES {
            return Err(err(
                Kind::InvalidArgument,
                "protocol error: too many properties to inherit",
            ));
        }
        if !self.is_restricted() {
            return Ok(());
        }
        for p in lists.into_iter().flatten() {
            if crate::props::HOST_REACHING.contains(&p.name.as_str()) {
                return Err(self.refuse(format!(
                    "property {} reaches outside the backup; a restricted server does not take it",
                    p.name
                )));
            }
            // canmount: off (0) or noauto (2); on (1) would mount at the host's boot.
            if p.name == "canmount" && !matches!(p.value, PropValue::Number(0 | 2)) {
                return Err(self.refuse(
                    "canmount other than off or noauto: a restricted server does not take it",
                ));
            }
        }
        Ok(())
    }

    /// Holds and bookmarks: only zrep's own, when restricted to a mode.
    fn ours<'a>(&self, what: &str, short: impl IntoIterator<Item = &'a str>) -> Result<()> {
        if self.mode == Mode::Full {
            return Ok(());
        }
        match short.into_iter().find(|s| !s.starts_with(OURS)) {
            None => Ok(()),
            Some(s) => Err(self.refuse(format!(
                "{what} {s:?} is not zrep's (only {OURS}* may be touched here)"
            ))),
        }
    }

    /// Decides on `req`: how it is answered, or the refusal.
    pub fn check(&self, req: &Request) -> Result<Access> {
        let receive_only = self.mode == Mode::ReceiveOnly;
        let send_only = matches!(self.mode, Mode::SendOnly { .. });
        let tags = |h: &[Hold]| -> Result<()> {
            self.names(h.iter().map(|h| h.snapshot.as_str()))?;
            self.ours("hold tag", h.iter().map(|h| h.tag.as_str()))
        };
        match req {
            Request::Hello { .. } | Request::Bye => {}
            Request::State { dataset, .. } | Request::Sync { dataset } => {
                if !self.inside(dataset.as_str()) && self.above(dataset.as_str()) {
                    return Ok(Access::Reduced);
                }
                self.names([dataset.as_str()])?;
            }
            Request::Lock { dataset, .. } => self.names([dataset.as_str()])?,
            // Reads of what lies inside the roots, in every mode: a backup host may
            // have its copies checked and read back (nothing leaves the host).
            Request::Holds { snapshot } | Request::ReadBack { snapshot, .. } => {
                self.names([snapshot.as_str()])?
            }
            Request::Estimate { snapshot, from, .. } | Request::Send { snapshot, from, .. } => {
                self.allowed(!receive_only, "sending")?;
                self.names([snapshot.as_str()])?;
                self.names(from.as_ref().map(|f| f.as_str()))?;
            }
            Request::EstimateResume { token } | Request::SendResume { token } => {
                self.allowed(!receive_only, "sending")?;
                if self.roots.is_empty() {
                    return Ok(Access::Full);
                }
                let t = parse_token(token)?;
                self.names([t.to.as_str()])?;
                self.names(t.from.as_ref().map(|f| f.as_str()))?;
            }
            Request::Receive(r) => {
                self.allowed(!send_only, "receiving")?;
                self.allowed(!(receive_only && r.force), "a forced receive (rollback)")?;
                self.names([r.dataset.as_str()])?;
                self.properties(r)?;
            }
            Request::Properties { dataset } => {
                self.allowed(!receive_only, "sending")?;
                self.names([dataset.as_str()])?;
            }
            Request::Snapshot { snapshots } | Request::SnapshotWritten { snapshots } => {
                self.allowed(!receive_only, "taking snapshots")?;
                self.names(snapshots.iter().map(|s| s.as_str()))?;
            }
            Request::Cursor(m) => {
                tags(&m.hold)?;
                tags(&m.release)?;
                let made = m.bookmark.iter().map(|b| &b.bookmark);
                let bookmarks = made.chain(&m.destroy_bookmarks);
                self.names(bookmarks.clone().map(|b| b.as_str()))?;
                self.ours("bookmark", bookmarks.map(|b| b.short_name()))?;
                let destroys = !m.destroy_bookmarks.is_empty();
                self.allowed(!(receive_only && destroys), "destroying bookmarks")?;
            }
            Request::DestroySnapshots { snapshots } => {
                let may = match self.mode {
                    Mode::Full => true,
                    Mode::ReceiveOnly => false,
                    Mode::SendOnly { allow_prune } => allow_prune,
                };
                self.allowed(may, "destroying snapshots")?;
                self.names(snapshots.iter().map(|s| s.as_str()))?;
                if let Some(s) = snapshots.iter().find(|s| {
                    self.mode != Mode::Full && crate::names::snapshot_time(s.short_name()).is_none()
                }) {
                    return Err(self.refuse(format!(
                        "{s} is not a snapshot zrep took (only {OURS}<UTC time> may be pruned)"
                    )));
                }
            }
            Request::RollbackTo { snapshot, .. } => {
                self.allowed(self.mode == Mode::Full, "rollback")?;
                self.names([snapshot.as_str()])?;
            }
            Request::Readonly { dataset, .. } => {
                self.allowed(self.mode == Mode::Full, "changing readonly (failover)")?;
                self.names([dataset.as_str()])?;
            }
            Request::AbortResume { dataset } => {
                self.allowed(!send_only, "discarding a receive")?;
                self.names([dataset.as_str()])?;
            }
        }
        debug_assert!(req.op() != Op::Rollback || self.mode == Mode::Full);
        Ok(Access::Full)
    }
}

/// Whether dataset `name` lies strictly below `root`, component by component
/// (`back/ab` is not below `back/a`).
pub fn below(name: &str, root: &str) -> bool {
    name.strip_prefix(root)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// The part of `name` below `root` (`""` for the root itself, `"/a/b"` below it), or
/// `None` when `name` is not in `root`'s tree.
pub fn relative<'a>(name: &'a str, root: &str) -> Option<&'a str> {
    let rest = name.strip_prefix(root)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// A resume token from a peer: bounded before it is decoded.
pub fn parse_token(token: &str) -> Result<ResumeToken> {
    if token.len() > MAX_TOKEN {
        return Err(err(
            Kind::InvalidArgument,
            format!(
                "a resume token of {} bytes, over the {MAX_TOKEN}-byte limit",
                token.len()
            ),
        ));
    }
    Ok(ResumeToken::parse(token)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{CursorMove, Flags, NewBookmark};
    use libzfs::{BookmarkName, SnapshotName};

    fn ds(s: &str) -> DatasetName {
        DatasetName::new(s).unwrap()
    }
    fn snap(s: &str) -> SnapshotName {
        SnapshotName::new(s).unwrap()
    }
    fn policy(mode: Mode) -> Policy {
        Policy::new(vec![ds("back/a")], mode)
    }
    fn hold(s: &str, tag: &str) -> Hold {
        Hold {
            snapshot: snap(s),
            tag: tag.into(),
        }
    }

    #[test]
    fn names_are_compared_by_component() {
        assert!(below("back/a/b", "back/a"));
        assert!(!below("back/ab", "back/a"));
        assert!(!below("back/a", "back/a"));
        assert_eq!(relative("back/a/b", "back/a"), Some("/b"));
        assert_eq!(relative("back/a", "back/a"), Some(""));
        assert_eq!(relative("back/ab", "back/a"), None);
        assert_eq!(relative("back", "back/a"), None);
        let p = policy(Mode::Full);
        let state = |d: &str| {
            p.check(&Request::State {
                dataset: ds(d),
                recursive: true,
                datasets_only: false,
                reading: Default::default(),
            })
        };
        assert_eq!(state("back/a").unwrap(), Access::Full);
        assert_eq!(state("back/a/x").unwrap(), Access::Full);
        assert_eq!(state("back").unwrap(), Access::Reduced);
        let e = state("back/ab").unwrap_err();
        assert_eq!(e.kind, Kind::Refused);
        assert!(
            e.message
                .contains("refused by the server: back/ab is outside its root (back/a)"),
            "{}",
            e.message
        );
        assert!(state("other").is_err());
    }

    /// A receive-only server takes what a backup needs: receives, cursor moves, and
    /// its own locks and resume states.
    #[test]
    fn receive_only_takes_what_a_backup_needs() {
        let p = policy(Mode::ReceiveOnly);
        let ok = [
            Request::Receive(Receive::new(ds("back/a/new"), false)),
            Request::Cursor(CursorMove {
                hold: vec![hold("back/a@s", "zrep-12345678")],
                release: vec![hold("back/a@r", "zrep-12345678")],
                bookmark: vec![NewBookmark {
                    bookmark: BookmarkName::new("back/a#zrep-1-s").unwrap(),
                    snapshot: snap("back/a@s"),
                }],
                ..CursorMove::default()
            }),
            Request::AbortResume {
                dataset: ds("back/a"),
            },
            Request::Lock {
                dataset: ds("back/a"),
                wait_secs: 1,
            },
        ];
        for r in &ok {
            assert!(p.check(r).is_ok(), "{r:?}");
        }
    }

    /// Every other request type against a receive-only server: what a compromised
    /// source could try on its backup host.
    #[test]
    fn receive_only_refuses_the_rest() {
        let p = policy(Mode::ReceiveOnly);
        let refused = [
            (
                Request::Receive(Receive::new(ds("back/a"), true)),
                "a forced receive",
            ),
            (
                Request::Receive(Receive::new(ds("back/ab"), false)),
                "outside",
            ),
            (
                Request::DestroySnapshots {
                    snapshots: vec![snap("back/a@zrep-20260101T000000Z")],
                },
                "destroying snapshots is not allowed (zrep serve --receive-only)",
            ),
            (
                Request::Cursor(CursorMove {
                    destroy_bookmarks: vec![BookmarkName::new("back/a#zrep-1").unwrap()],
                    ..CursorMove::default()
                }),
                "destroying bookmarks",
            ),
            (
                Request::RollbackTo {
                    snapshot: snap("back/a@s"),
                    tag: "zrep-1".into(),
                },
                "rollback",
            ),
            (
                Request::Readonly {
                    dataset: ds("back/a"),
                    recursive: true,
                    on: false,
                },
                "changing readonly (failover) is not allowed",
            ),
            (
                Request::Cursor(CursorMove {
                    release: vec![hold("back/a@s", "admin")],
                    ..CursorMove::default()
                }),
                "hold tag \"admin\" is not zrep's",
            ),
            (
                Request::Send {
                    snapshot: snap("back/a@s"),
                    from: None,
                    flags: Flags::default(),
                },
                "sending",
            ),
            (
                Request::Estimate {
                    snapshot: snap("back/a@s"),
                    from: None,
                    flags: Flags::default(),
                },
                "sending",
            ),
            (
                Request::SendResume {
                    token: "1-x".into(),
                },
                "sending",
            ),
            (
                Request::Snapshot {
                    snapshots: vec![snap("back/a@zrep-x")],
                },
                "taking snapshots",
            ),
            (
                Request::SnapshotWritten {
                    snapshots: vec![snap("back/a@zrep-x")],
                },
                "taking snapshots",
            ),
        ];
        for (r, why) in &refused {
            let e = p.check(r).unwrap_err();
            assert_eq!(e.kind, Kind::Refused, "{r:?}");
            assert!(e.message.contains(why), "{r:?}: {}", e.message);
        }
    }

    #[test]
    fn send_only_reads_and_prunes_only_its_own_with_allow_prune() {
        let p = policy(Mode::SendOnly { allow_prune: false });
        let send = Request::Send {
            snapshot: snap("back/a/x@s"),
            from: Some(libzfs::SendSource::new("back/a/x#zrep-1-s").unwrap()),
            flags: Flags::default(),
        };
        assert!(p.check(&send).is_ok());
        let ours = Request::DestroySnapshots {
            snapshots: vec![snap("back/a@zrep-20260101T000000Z")],
        };
        assert!(p.check(&ours).is_err());
        let theirs = Request::DestroySnapshots {
            snapshots: vec![snap("back/a@daily")],
        };
        let p = policy(Mode::SendOnly { allow_prune: true });
        assert!(p.check(&ours).is_ok());
        assert!(p
            .check(&theirs)
            .unwrap_err()
            .message
            .contains("not a snapshot zrep took"));
        for r in [
            Request::Receive(Receive::new(ds("back/a"), false)),
            Request::RollbackTo {
                snapshot: snap("back/a@s"),
                tag: "zrep-1".into(),
            },
            Request::AbortResume {
                dataset: ds("back/a"),
            },
            Request::Send {
                snapshot: snap("tank/a@s"),
                from: None,
                flags: Flags::default(),
            },
        ] {
            assert_eq!(p.check(&r).unwrap_err().kind, Kind::Refused, "{r:?}");
        }
    }

    #[test]
    fn a_restricted_server_takes_no_property_that_reaches_outside_the_backup() {
        use crate::proto::{PropValue, Property};
        let prop = |name: &str, value: PropValue| Property {
            name: name.into(),
            value,
        };
        let receive = |received: Vec<Property>, set: Vec<Property>| {
            Request::Receive(Receive {
                received: Some(received),
                set,
                ..Receive::new(ds("back/a/x"), false)
            })
        };
        let p = policy(Mode::ReceiveOnly);
        let ok = receive(
            vec![
                prop("compression", PropValue::Number(15)),
                prop("com.example:owner", PropValue::String("dru".into())),
            ],
            vec![prop("canmount", PropValue::Number(2))],
        );
        assert!(p.check(&ok).is_ok());
        for (bad, needle) in [
            (
                receive(
                    vec![prop("mountpoint", PropValue::String("/etc".into()))],
                    vec![],
                ),
                "property mountpoint reaches outside the backup",
            ),
            (
                receive(
                    vec![],
                    vec![prop("sharenfs", PropValue::String("on".into()))],
                ),
                "property sharenfs",
            ),
            (
                receive(vec![], vec![prop("canmount", PropValue::Number(1))]),
                "canmount other than off or noauto",
            ),
        ] {
            let e = p.check(&bad).unwrap_err();
            assert_eq!(e.kind, Kind::Refused);
            assert!(e.message.contains(needle), "{}", e.message);
            // An unrestricted server takes them.
            assert!(Policy::unrestricted().check(&bad).is_ok());
        }
        // A malformed list is refused by every server.
        let twice = receive(vec![prop("atime", PropValue::Number(0)); 2], vec![]);
        for p in [policy(Mode::ReceiveOnly), Policy::unrestricted()] {
            let e = p.check(&twice).unwrap_err();
            assert_eq!(e.kind, Kind::InvalidArgument);
        }
        // Reading properties is a send: a receive-only server refuses it.
        let read = Request::Properties {
            dataset: ds("back/a"),
        };
        assert_eq!(p.check(&read).unwrap_err().kind, Kind::Refused);
        assert!(policy(Mode::SendOnly { allow_prune: false })
            .check(&read)
            .is_ok());
    }

    #[test]
    fn an_unrestricted_server_allows_everything() {
        let p = Policy::unrestricted();
        assert!(!p.is_restricted());
        assert!(p
            .check(&Request::RollbackTo {
                snapshot: snap("any/where@s"),
                tag: "t".into(),
            })
            .is_ok());
    }
}
