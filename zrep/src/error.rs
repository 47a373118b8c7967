//! zrep's one error type: a typed [`Kind`] to branch on and a one-line message for
//! people. Errors cross the protocol unchanged (`zrep serve`'s refusals and failures
//! reach the client as they were made), so the kind has a stable wire form: its
//! name, with [`Kind::Unknown`] for a name a newer peer may send.

use serde::{Deserialize, Serialize};

/// What went wrong, as a caller would branch on it.
///
/// The first group mirrors [`libzfs::ErrorKind`] (see [`From<libzfs::ErrorKind>`]);
/// the second is zrep's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Kind {
    /// A dataset, snapshot, bookmark or pool does not exist.
    NotFound,
    /// The name is taken already.
    AlreadyExists,
    /// In use: a dataset, a receive, or another zrep holding the target's lock.
    Busy,
    /// The snapshot is held.
    Held,
    /// The snapshot has clones.
    HasClones,
    /// The target was modified since its newest snapshot.
    DestinationModified,
    /// The stream's incremental source is not on the target.
    StreamMismatch,
    /// Not the newest snapshot (rollback).
    NotLatestSnapshot,
    /// The incremental source is not an earlier snapshot of the dataset.
    NotAnAncestor,
    /// Out of space or over quota.
    NoSpace,
    /// Not permitted by ZFS (not root, no delegation).
    PermissionDenied,
    /// A malformed name.
    InvalidName,
    /// A name longer than ZFS allows.
    NameTooLong,
    /// Names from different pools in one call.
    PoolsDiffer,
    /// A stream that ended early.
    StreamTruncated,
    /// A stream that is corrupt or not a stream.
    BadStream,
    /// An encryption key is not loaded.
    KeyMissing,
    /// This OpenZFS lacks the operation.
    Unsupported,
    /// A resumable receive state exists.
    ResumeStateExists,
    /// An argument was rejected.
    InvalidArgument,
    /// An I/O error (a pipe, a file).
    Io,
    /// Any other ZFS error.
    Other,

    /// The connection to the peer failed or the peer broke the protocol.
    Connection,
    /// No byte from the peer (or no room to write to it) for the stall timeout.
    Timeout,
    /// A restricted `zrep serve` refused the request (its `--root`, `--receive-only`
    /// or `--send-only`).
    Refused,
    /// The command line asks for something impossible.
    Usage,
    /// The configuration file is wrong.
    Config,
    /// The target exists and shares no snapshot with the source.
    NoCommonSnapshot,
    /// The target has snapshots the source lacks after the newest common one.
    Diverged,
    /// A kind this zrep does not know (sent by a newer peer).
    #[serde(other)]
    Unknown,
}

impl From<libzfs::ErrorKind> for Kind {
    fn from(k: libzfs::ErrorKind) -> Kind {
        use libzfs::ErrorKind as L;
        match k {
            L::NotFound => Kind::NotFound,
            L::AlreadyExists => Kind::AlreadyExists,
            L::Busy => Kind::Busy,
            L::Held => Kind::Held,
            L::HasClones => Kind::HasClones,
            L::DestinationModified => Kind::DestinationModified,
            L::StreamMismatch => Kind::StreamMismatch,
            L::NotLatestSnapshot => Kind::NotLatestSnapshot,
            L::NotAnAncestor => Kind::NotAnAncestor,
            L::NoSpace => Kind::NoSpace,
            L::PermissionDenied => Kind::PermissionDenied,
            L::InvalidName => Kind::InvalidName,
            L::NameTooLong => Kind::NameTooLong,
            L::PoolsDiffer => Kind::PoolsDiffer,
            L::StreamTruncated => Kind::StreamTruncated,
            L::BadStream => Kind::BadStream,
            L::KeyMissing => Kind::KeyMissing,
            L::Unsupported => Kind::Unsupported,
            L::ResumeStateExists => Kind::ResumeStateExists,
            L::InvalidArgument => Kind::InvalidArgument,
            L::Io => Kind::Io,
            _ => Kind::Other,
        }
    }
}

/// An error: its kind and one line for people (naming the dataset or host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// What went wrong.
    pub kind: Kind,
    /// Says which thing failed and why.
    pub message: String,
}

/// zrep's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error of zrep's own making.
pub fn err(kind: Kind, message: impl Into<String>) -> Error {
    Error {
        kind,
        message: message.into(),
    }
}

impl Error {
    /// The same error with `prefix: ` before its message (a host name, a job).
    pub fn context(self, prefix: impl std::fmt::Display) -> Error {
        Error {
            kind: self.kind,
            message: format!("{prefix}: {}", self.message),
        }
    }
}

impl From<libzfs::Error> for Error {
    fn from(e: libzfs::Error) -> Self {
        Error {
            kind: e.kind().into(),
            message: e.to_string(),
        }
    }
}

impl From<libzfs::NameError> for Error {
    fn from(e: libzfs::NameError) -> Self {
        libzfs::Error::from(e).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_travel_by_name_and_unknown_ones_degrade() {
        let e = err(Kind::Refused, "no");
        let wire = serde_json::to_string(&e).unwrap();
        assert_eq!(wire, r#"{"kind":"Refused","message":"no"}"#);
        assert_eq!(serde_json::from_str::<Error>(&wire).unwrap(), e);
        let newer: Error = serde_json::from_str(r#"{"kind":"Martian","message":"x"}"#).unwrap();
        assert_eq!(newer.kind, Kind::Unknown);
    }
}
