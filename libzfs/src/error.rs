//! Errors: one place turns a libzfs_core return code into a Rust error.
//!
//! Every failing call becomes an [`Error`] that keeps the raw errno, names the operation
//! and the dataset, and classifies the cause as an [`ErrorKind`] a caller can match.
//! The same errno means different things to different operations (EEXIST from
//! `destroy_snaps` is "has clones", from `receive` "destination exists"), so the
//! mapping is per [`Op`], following what pyzfs and the OpenZFS sources document.

use std::fmt;
use std::io;

use crate::name::NameError;
use crate::nvlist::{NvListError, NvListRef};

/// OpenZFS's own errno values (`enum zfs_errno` in `sys/fs/zfs.h`). The enum only
/// grows, so the values are fixed; they are spelled out here because the kernel module
/// can be newer than the headers we were built against (2.1 headers lack the last
/// ones). A host test checks them against the headers when those have them all.
pub mod code {
    #![allow(missing_docs)]
    pub const ZFS_ERR_IOC_CMD_UNAVAIL: i32 = 1029;
    pub const ZFS_ERR_IOC_ARG_UNAVAIL: i32 = 1030;
    pub const ZFS_ERR_IOC_ARG_REQUIRED: i32 = 1031;
    pub const ZFS_ERR_IOC_ARG_BADTYPE: i32 = 1032;
    pub const ZFS_ERR_WRONG_PARENT: i32 = 1033;
    pub const ZFS_ERR_FROM_IVSET_GUID_MISSING: i32 = 1034;
    pub const ZFS_ERR_FROM_IVSET_GUID_MISMATCH: i32 = 1035;
    pub const ZFS_ERR_SPILL_BLOCK_FLAG_MISSING: i32 = 1036;
    pub const ZFS_ERR_UNKNOWN_SEND_STREAM_FEATURE: i32 = 1037;
    pub const ZFS_ERR_EXPORT_IN_PROGRESS: i32 = 1038;
    pub const ZFS_ERR_BOOKMARK_SOURCE_NOT_ANCESTOR: i32 = 1039;
    pub const ZFS_ERR_STREAM_TRUNCATED: i32 = 1040;
    pub const ZFS_ERR_STREAM_LARGE_BLOCK_MISMATCH: i32 = 1041;
    pub const ZFS_ERR_RESILVER_IN_PROGRESS: i32 = 1042;
    pub const ZFS_ERR_REBUILD_IN_PROGRESS: i32 = 1043;
    pub const ZFS_ERR_BADPROP: i32 = 1044;
    pub const ZFS_ERR_VDEV_NOTSUP: i32 = 1045;
    pub const ZFS_ERR_NOT_USER_NAMESPACE: i32 = 1046;
    pub const ZFS_ERR_RESUME_EXISTS: i32 = 1047;
    pub const ZFS_ERR_CRYPTO_NOTSUP: i32 = 1048;
}

/// ZFS names a few errnos the OS does not have, or spells them differently: the module
/// maps them to native codes per OS (include/os/linux/spl/sys/errno.h and
/// include/os/freebsd/spl/sys/ccompile.h in the OpenZFS sources).
#[cfg(target_os = "linux")]
mod os_errno {
    pub const ECKSUM: i32 = libc::EBADE;
    pub const ETIME: i32 = libc::ETIME;
    pub const ECHRNG: i32 = libc::ECHRNG;
}
#[cfg(target_os = "freebsd")]
mod os_errno {
    pub const ECKSUM: i32 = libc::EINTEGRITY;
    pub const ETIME: i32 = libc::ETIMEDOUT;
    pub const ECHRNG: i32 = libc::ENXIO;
}

/// An errno value: POSIX codes, plus OpenZFS's own codes from 1024 up
/// (`enum zfs_errno` in `sys/fs/zfs.h`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Errno(pub i32);

impl Errno {
    /// `ZFS_ERR_STREAM_TRUNCATED`: a receive ended before the stream's END record.
    pub const STREAM_TRUNCATED: Errno = Errno(code::ZFS_ERR_STREAM_TRUNCATED);
    /// `ZFS_ERR_IOC_CMD_UNAVAIL`: the kernel module does not know this ioctl.
    pub const IOC_CMD_UNAVAIL: Errno = Errno(code::ZFS_ERR_IOC_CMD_UNAVAIL);
    /// `ZFS_ERR_RESUME_EXISTS`: a resumable receive state is already there.
    pub const RESUME_EXISTS: Errno = Errno(code::ZFS_ERR_RESUME_EXISTS);
    /// ZFS's ECKSUM (a checksum error, e.g. a corrupt stream): EBADE on Linux,
    /// EINTEGRITY on FreeBSD.
    pub const ECKSUM: Errno = Errno(os_errno::ECKSUM);
    /// ZFS's ETIME: a channel program ran out of instructions. ETIME on Linux,
    /// ETIMEDOUT on FreeBSD.
    pub const ETIME: Errno = Errno(os_errno::ETIME);
    /// ZFS's ECHRNG: a channel program failed at run time (a Lua error). ECHRNG on
    /// Linux, ENXIO on FreeBSD.
    pub const ECHRNG: Errno = Errno(os_errno::ECHRNG);

    /// The raw value.
    pub fn raw(self) -> i32 {
        self.0
    }

    /// Words for this code: ZFS's own codes by name, the rest as the OS describes them.
    pub fn describe(self) -> String {
        match self.0 {
            1024.. => zfs_errno_words(self.0).to_string(),
            n => io::Error::from_raw_os_error(n).to_string(),
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Errno({}: {})", self.0, self.describe())
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

fn zfs_errno_words(code: i32) -> &'static str {
    use crate::error::code as s;
    match code {
        s::ZFS_ERR_STREAM_TRUNCATED => "send stream is truncated",
        s::ZFS_ERR_IOC_CMD_UNAVAIL => "operation not supported by the loaded zfs module",
        s::ZFS_ERR_IOC_ARG_UNAVAIL => "argument not supported by the loaded zfs module",
        s::ZFS_ERR_IOC_ARG_REQUIRED => "required argument missing",
        s::ZFS_ERR_IOC_ARG_BADTYPE => "argument has the wrong type",
        s::ZFS_ERR_WRONG_PARENT => "wrong parent dataset",
        s::ZFS_ERR_FROM_IVSET_GUID_MISSING => "incremental source has no IV set guid",
        s::ZFS_ERR_FROM_IVSET_GUID_MISMATCH => "incremental source IV set guid mismatch",
        s::ZFS_ERR_SPILL_BLOCK_FLAG_MISSING => "stream lacks the spill block flag",
        s::ZFS_ERR_UNKNOWN_SEND_STREAM_FEATURE => "send stream uses an unknown feature",
        s::ZFS_ERR_EXPORT_IN_PROGRESS => "pool export in progress",
        s::ZFS_ERR_BOOKMARK_SOURCE_NOT_ANCESTOR => "bookmark source is not an ancestor",
        s::ZFS_ERR_STREAM_LARGE_BLOCK_MISMATCH => "stream large-block setting mismatch",
        s::ZFS_ERR_BADPROP => "invalid property",
        s::ZFS_ERR_RESUME_EXISTS => "resumable receive state already exists",
        s::ZFS_ERR_CRYPTO_NOTSUP => "encryption feature not supported",
        s::ZFS_ERR_NOT_USER_NAMESPACE => "not a user namespace",
        _ => "OpenZFS error",
    }
}

/// The libzfs_core operation that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum Op {
    Init,
    Create,
    Clone,
    Promote,
    Destroy,
    Snapshot,
    DestroySnapshots,
    Rollback,
    Rename,
    Bookmark,
    GetBookmarks,
    DestroyBookmarks,
    Hold,
    Release,
    GetHolds,
    Send,
    SendSpace,
    SendResume,
    Receive,
    Sync,
    Wait,
    LoadKey,
    UnloadKey,
    ChangeKey,
    ChannelProgram,
    GetProps,
    List,
    SnaprangeSpace,
    SetProperty,
}

impl Op {
    /// The verb used in messages: "cannot {verb} {name}: ...".
    pub fn verb(self) -> &'static str {
        match self {
            Op::Init => "initialise libzfs_core for",
            Op::Create => "create",
            Op::Clone => "clone into",
            Op::Promote => "promote",
            Op::Destroy => "destroy",
            Op::Snapshot => "snapshot",
            Op::DestroySnapshots => "destroy snapshot",
            Op::Rollback => "roll back",
            Op::Rename => "rename",
            Op::Bookmark => "create bookmark",
            Op::GetBookmarks => "list bookmarks of",
            Op::DestroyBookmarks => "destroy bookmark",
            Op::Hold => "hold",
            Op::Release => "release hold on",
            Op::GetHolds => "get holds of",
            Op::Send => "send",
            Op::SendSpace => "estimate send size of",
            Op::SendResume => "resume send of",
            Op::Receive => "receive into",
            Op::Sync => "sync pool",
            Op::Wait => "wait for",
            Op::LoadKey => "load key of",
            Op::UnloadKey => "unload key of",
            Op::ChangeKey => "change key of",
            Op::ChannelProgram => "run channel program on",
            Op::GetProps => "get properties of",
            Op::List => "list",
            Op::SnaprangeSpace => "compute space of",
            Op::SetProperty => "set a property of",
        }
    }
}

/// What went wrong, as a caller would want to branch on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The dataset, snapshot, bookmark or pool does not exist.
    NotFound,
    /// The name is already taken (or a hold tag already exists).
    AlreadyExists,
    /// The dataset is busy (mounted and in use, a receive in progress...).
    Busy,
    /// The snapshot is held (destroy it with `defer`, or release the hold).
    Held,
    /// The snapshot has dependent clones.
    HasClones,
    /// receive: the destination was modified since its most recent snapshot.
    DestinationModified,
    /// receive: the incremental source of the stream is not on the destination.
    StreamMismatch,
    /// rollback_to: the snapshot is not the most recent one.
    NotLatestSnapshot,
    /// send: the incremental source is not an earlier snapshot (or bookmark) of the
    /// same dataset, or the two are given in the wrong order; bookmark: the source
    /// is not a snapshot (or bookmark) of the bookmark's dataset.
    NotAnAncestor,
    /// Out of space or over quota.
    NoSpace,
    /// Not permitted (not root, or no delegation).
    PermissionDenied,
    /// A name is malformed (checked client-side before any call).
    InvalidName,
    /// A name is longer than ZFS allows.
    NameTooLong,
    /// The names given belong to different pools.
    PoolsDiffer,
    /// The send stream ended early.
    StreamTruncated,
    /// The send stream is corrupt, has a bad checksum, or is not a stream.
    BadStream,
    /// The encryption key is not loaded, or is wrong.
    KeyMissing,
    /// This OpenZFS version (library or kernel module) lacks the operation or flag.
    Unsupported,
    /// A resumable receive state exists (finish or abort it first).
    ResumeStateExists,
    /// An argument was rejected by the kernel.
    InvalidArgument,
    /// An I/O error on a file descriptor.
    Io,
    /// Anything else: see the errno.
    Other,
}

/// One failed item of a batch operation (snapshot, hold, destroy_snaps...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemError {
    /// The item's name, as the kernel reported it.
    pub name: String,
    /// Why it failed.
    pub errno: Errno,
}

/// A libzfs_core call that failed.
#[derive(Debug, Clone)]
pub struct ZfsError {
    op: Op,
    name: String,
    errno: Errno,
    kind: ErrorKind,
    items: Vec<ItemError>,
    more: u64,
}

impl fmt::Display for ZfsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot {} {}: {}",
            self.op.verb(),
            self.name,
            self.reason()
        )?;
        for item in &self.items {
            if item.name != self.name {
                write!(f, "; {}: {}", item.name, item_reason(self.op, item.errno))?;
            }
        }
        if self.more > 0 {
            write!(f, "; and {} more errors", self.more)?;
        }
        Ok(())
    }
}

impl ZfsError {
    fn new(op: Op, name: String, errno: Errno, items: Vec<ItemError>, more: u64) -> ZfsError {
        let mut e = ZfsError {
            op,
            name,
            errno,
            kind: ErrorKind::Other,
            items,
            more,
        };
        e.classify();
        e
    }

    /// The kind, computed once per change (from [`ZfsError::cause`]).
    fn classify(&mut self) {
        self.kind = classify(self.op, self.cause());
    }

    /// The errno that says why: with a single listed item, that item's; else the
    /// call's.
    fn cause(&self) -> Errno {
        match self.items.as_slice() {
            [one] => one.errno,
            _ => self.errno,
        }
    }

    /// The operation.
    pub fn op(&self) -> Op {
        self.op
    }

    /// The dataset, snapshot or pool it was applied to.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The call's return code.
    pub fn errno(&self) -> Errno {
        self.errno
    }

    /// The classification of the failure for this operation.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Per-item errors of a batch operation, from the kernel's error list.
    pub fn items(&self) -> &[ItemError] {
        &self.items
    }

    /// Errors the kernel counted but did not list (`N_MORE_ERRORS`).
    pub fn more(&self) -> u64 {
        self.more
    }

    /// Adds an item the call reported outside its error list.
    pub(crate) fn push_item(&mut self, item: ItemError) {
        self.items.push(item);
        self.classify();
    }

    /// The same failure as the error of `op` on `name` (a channel program's, for
    /// the operation it ran for).
    pub(crate) fn relabel(&mut self, op: Op, name: String) {
        self.op = op;
        self.name = name;
        self.classify();
    }

    fn reason(&self) -> String {
        item_reason(self.op, self.cause())
    }
}

fn item_reason(op: Op, errno: Errno) -> String {
    let kind = classify(op, errno);
    let words = match kind {
        ErrorKind::NotFound => "does not exist",
        ErrorKind::AlreadyExists if op == Op::Hold => "a hold with this tag already exists",
        ErrorKind::AlreadyExists => "already exists",
        ErrorKind::Busy if op == Op::Destroy => {
            "dataset is busy (it has snapshots or children, or is in use)"
        }
        ErrorKind::Busy => "dataset is busy",
        ErrorKind::Held => "snapshot is held (release it or destroy with defer)",
        ErrorKind::HasClones => "snapshot has dependent clones",
        ErrorKind::DestinationModified => {
            "destination has been modified since its most recent snapshot"
        }
        ErrorKind::StreamMismatch => {
            "the stream's incremental source does not exist on the destination"
        }
        ErrorKind::NotLatestSnapshot => "snapshot is not the most recent one",
        ErrorKind::NotAnAncestor => {
            "the incremental source is not an earlier snapshot of the same dataset"
        }
        ErrorKind::NoSpace => "out of space",
        ErrorKind::PermissionDenied => "permission denied",
        ErrorKind::NameTooLong => "name is too long",
        ErrorKind::PoolsDiffer => "names are in different pools",
        ErrorKind::StreamTruncated => "the stream ended early (truncated)",
        ErrorKind::BadStream => "invalid or corrupt send stream",
        ErrorKind::KeyMissing => "encryption key is not loaded",
        ErrorKind::Unsupported => "not supported by this OpenZFS version",
        ErrorKind::ResumeStateExists => "a resumable receive is already in progress",
        _ => return errno.describe(),
    };
    format!("{words} ({})", errno.describe())
}

/// Classifies `errno` for `op`.
pub fn classify(op: Op, errno: Errno) -> ErrorKind {
    use ErrorKind as K;
    let e = errno.0;
    // OpenZFS's own codes mean the same whatever the operation.
    match e {
        code::ZFS_ERR_STREAM_TRUNCATED => return K::StreamTruncated,
        code::ZFS_ERR_IOC_CMD_UNAVAIL
        | code::ZFS_ERR_IOC_ARG_UNAVAIL
        | code::ZFS_ERR_CRYPTO_NOTSUP
        | code::ZFS_ERR_UNKNOWN_SEND_STREAM_FEATURE => return K::Unsupported,
        code::ZFS_ERR_RESUME_EXISTS => return K::ResumeStateExists,
        code::ZFS_ERR_BOOKMARK_SOURCE_NOT_ANCESTOR => return K::NotAnAncestor,
        // A filesystem created or received below a volume.
        code::ZFS_ERR_WRONG_PARENT => return K::InvalidArgument,
        _ => {}
    }
    if errno == Errno::ECKSUM && op == Op::Receive {
        return K::BadStream;
    }
    match (op, e) {
        (Op::Receive, libc::ETXTBSY) => K::DestinationModified,
        (Op::Receive, libc::ENODEV) => K::StreamMismatch,
        (Op::Receive, libc::EBADMSG) | (Op::Receive, libc::EINVAL) => K::BadStream,
        (Op::Receive, libc::ENOENT) => K::NotFound,
        (Op::DestroySnapshots, libc::EEXIST) => K::HasClones,
        (Op::DestroySnapshots, libc::EBUSY) => K::Held,
        // A filesystem with snapshots, children, or mounted and in use.
        (Op::Destroy, libc::EBUSY) | (Op::Destroy, libc::EEXIST) => K::Busy,
        // rollback_to a snapshot that is not the newest: EEXIST (2.x), EXDEV (older).
        (Op::Rollback, libc::EXDEV) | (Op::Rollback, libc::EEXIST) => K::NotLatestSnapshot,
        // Same pool but not an earlier snapshot of the same dataset (or reversed).
        (Op::Send | Op::SendSpace | Op::SendResume, libc::EXDEV) => K::NotAnAncestor,
        (Op::Send | Op::SendSpace | Op::SendResume, libc::EACCES) => K::KeyMissing,
        (Op::LoadKey | Op::ChangeKey, libc::EACCES) => K::KeyMissing,
        (Op::UnloadKey, libc::EACCES) => K::KeyMissing,
        (Op::Hold, libc::E2BIG) => K::NameTooLong,
        (_, libc::ENOENT) | (_, libc::ESRCH) => K::NotFound,
        (_, libc::EEXIST) => K::AlreadyExists,
        (_, libc::EBUSY) => K::Busy,
        (_, libc::ENOSPC) | (_, libc::EDQUOT) => K::NoSpace,
        (_, libc::EPERM) | (_, libc::EACCES) => K::PermissionDenied,
        (_, libc::ENAMETOOLONG) => K::NameTooLong,
        (_, libc::EXDEV) => K::PoolsDiffer,
        (_, libc::ENOTSUP) | (_, libc::ENOSYS) => K::Unsupported,
        (_, libc::EINVAL) => K::InvalidArgument,
        (_, libc::EIO) | (_, libc::EPIPE) | (_, libc::EBADF) => K::Io,
        _ => K::Other,
    }
}

/// Every error this crate returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A libzfs_core call failed.
    #[error("{0}")]
    Zfs(Box<ZfsError>),
    /// A name was rejected before any call.
    #[error(transparent)]
    Name(#[from] NameError),
    /// Building an nvlist failed.
    #[error(transparent)]
    NvList(#[from] NvListError),
    /// A property name or value was rejected before any call.
    #[error(transparent)]
    Property(#[from] PropertyError),
    /// An I/O error outside libzfs_core (reading a stream header, a pipe...).
    #[error("{what}: {source}")]
    Io {
        /// What we were doing.
        what: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The OpenZFS library these crates were built against lacks the operation.
    #[error("cannot {}: not supported by OpenZFS {} (needs {needs})",
            op.verb(), libzfs_sys::OPENZFS_HEADERS_VERSION)]
    Unsupported {
        /// The operation.
        op: Op,
        /// The OpenZFS version that has it.
        needs: &'static str,
    },
    /// Data handed back by ZFS did not have the expected shape.
    #[error("unexpected reply from {op:?}: {detail}")]
    Protocol {
        /// The operation.
        op: Op,
        /// What was wrong.
        detail: String,
    },
    /// A send stream or resume token could not be parsed.
    #[error("{0}")]
    Stream(String),
    /// An argument no call could take (a NUL byte inside a string, say), refused
    /// before any call.
    #[error("{0}")]
    InvalidArgument(String),
    /// The input ended before a stream began: no stream at all, or the end of a
    /// series of streams.
    #[error("no send stream on input (empty)")]
    NoStream,
    /// A call into libzfs (not libzfs_core: [`Zfs::set_property`](crate::Zfs::set_property))
    /// failed, with libzfs's own description.
    #[error("cannot {} {name}: {message}", op.verb())]
    Native {
        /// The operation.
        op: Op,
        /// The dataset.
        name: String,
        /// libzfs's description of the failure.
        message: String,
    },
}

impl Error {
    /// The classification of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Zfs(e) => e.kind,
            Error::Name(NameError::TooLong { .. }) => ErrorKind::NameTooLong,
            Error::Name(_) => ErrorKind::InvalidName,
            Error::NvList(_) | Error::Property(_) => ErrorKind::InvalidArgument,
            Error::Io { .. } => ErrorKind::Io,
            Error::Unsupported { .. } => ErrorKind::Unsupported,
            Error::Protocol { .. } => ErrorKind::Other,
            Error::Stream(_) | Error::NoStream => ErrorKind::BadStream,
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::Native { .. } => ErrorKind::Other,
        }
    }

    /// Whether the input ended before a stream began (see [`Error::NoStream`]).
    pub fn is_end_of_input(&self) -> bool {
        matches!(self, Error::NoStream)
    }

    /// The errno of a failed call, if this error came from one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Zfs(e) => Some(e.errno),
            Error::Io { source, .. } => source.raw_os_error().map(Errno),
            _ => None,
        }
    }

    /// The failed call's details, if this error came from libzfs_core.
    pub fn zfs(&self) -> Option<&ZfsError> {
        match self {
            Error::Zfs(e) => Some(e),
            _ => None,
        }
    }

    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match e.kind() {
            ErrorKind::NotFound => io::ErrorKind::NotFound,
            ErrorKind::AlreadyExists => io::ErrorKind::AlreadyExists,
            ErrorKind::PermissionDenied => io::ErrorKind::PermissionDenied,
            ErrorKind::InvalidName | ErrorKind::NameTooLong | ErrorKind::InvalidArgument => {
                io::ErrorKind::InvalidInput
            }
            ErrorKind::Unsupported => io::ErrorKind::Unsupported,
            ErrorKind::StreamTruncated => io::ErrorKind::UnexpectedEof,
            ErrorKind::BadStream => io::ErrorKind::InvalidData,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Turns a return code into `Ok(())` or an error naming `op` and `name`.
pub(crate) fn check(rc: i32, op: Op, name: &str) -> Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(zfs_error(rc, op, name, None))
    }
}

/// Builds the error of a failed call, with the per-item errors of its error list.
/// The list may be absent (the ioctl failed before the kernel handler ran) or empty;
/// then the return code stands alone.
pub(crate) fn zfs_error(rc: i32, op: Op, name: &str, errlist: Option<&NvListRef>) -> Error {
    let errno = Errno(rc);
    let mut items = Vec::new();
    let mut more = 0;
    if let Some(list) = errlist {
        for (key, value) in list.iter() {
            // The kernel stores these as int32.
            if key == "N_MORE_ERRORS" {
                more = value.as_int().unwrap_or(0).max(0) as u64;
            } else if let Some(code) = value.as_int() {
                items.push(ItemError {
                    name: key.to_string(),
                    errno: Errno(code as i32),
                });
            }
        }
    }
    Error::Zfs(Box::new(ZfsError::new(
        op,
        name.to_string(),
        errno,
        items,
        more,
    )))
}

/// A property name or value that cannot be used, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("property {name:?}: {reason}")]
pub struct PropertyError {
    /// The property's name (its first 64 characters, when longer).
    pub name: String,
    /// Why it was refused.
    pub reason: String,
}

impl PropertyError {
    pub(crate) fn new(name: &str, reason: impl Into<String>) -> PropertyError {
        PropertyError {
            name: clip(name),
            reason: reason.into(),
        }
    }
}

/// A peer's string, cut for a message: at most 64 characters, with `…` when cut.
pub(crate) fn clip(s: &str) -> String {
    const SHOWN: usize = 64;
    match s.char_indices().nth(SHOWN) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(openzfs_2_3)]
    #[test]
    fn zfs_errno_values_match_the_headers() {
        use libzfs_sys as s;
        assert_eq!(
            code::ZFS_ERR_IOC_CMD_UNAVAIL,
            s::ZFS_ERR_IOC_CMD_UNAVAIL as i32
        );
        assert_eq!(
            code::ZFS_ERR_STREAM_TRUNCATED,
            s::ZFS_ERR_STREAM_TRUNCATED as i32
        );
        assert_eq!(code::ZFS_ERR_BADPROP, s::ZFS_ERR_BADPROP as i32);
        assert_eq!(code::ZFS_ERR_RESUME_EXISTS, s::ZFS_ERR_RESUME_EXISTS as i32);
        assert_eq!(code::ZFS_ERR_CRYPTO_NOTSUP, s::ZFS_ERR_CRYPTO_NOTSUP as i32);
        assert_eq!(
            code::ZFS_ERR_UNKNOWN_SEND_STREAM_FEATURE,
            s::ZFS_ERR_UNKNOWN_SEND_STREAM_FEATURE as i32
        );
    }

    #[test]
    fn receive_errnos_are_classified_per_operation() {
        assert_eq!(
            classify(Op::Receive, Errno(libc::ETXTBSY)),
            ErrorKind::DestinationModified
        );
        assert_eq!(
            classify(Op::Receive, Errno(libc::ENODEV)),
            ErrorKind::StreamMismatch
        );
        assert_eq!(
            classify(Op::DestroySnapshots, Errno(libc::EEXIST)),
            ErrorKind::HasClones
        );
        assert_eq!(
            classify(Op::Create, Errno(libc::EEXIST)),
            ErrorKind::AlreadyExists
        );
        assert_eq!(
            classify(Op::Receive, Errno::STREAM_TRUNCATED),
            ErrorKind::StreamTruncated
        );
        assert_eq!(classify(Op::Receive, Errno::ECKSUM), ErrorKind::BadStream);
        let bookmark = Errno(code::ZFS_ERR_BOOKMARK_SOURCE_NOT_ANCESTOR);
        assert_eq!(classify(Op::Bookmark, bookmark), ErrorKind::NotAnAncestor);
        let parent = Errno(code::ZFS_ERR_WRONG_PARENT);
        assert_eq!(classify(Op::Create, parent), ErrorKind::InvalidArgument);
    }

    #[test]
    fn zfs_errno_names_have_this_os_values() {
        // Each OS's errno.h numbers for the codes OpenZFS maps these names to: a
        // wrong libc name would still compile.
        #[cfg(target_os = "linux")]
        let want = [52, 62, 44];
        #[cfg(target_os = "freebsd")]
        let want = [97, 60, 6];
        assert_eq!([Errno::ECKSUM.0, Errno::ETIME.0, Errno::ECHRNG.0], want);
    }

    #[test]
    fn message_names_operation_dataset_and_cause() {
        let e = zfs_error(libc::ETXTBSY, Op::Receive, "tank/b@s", None);
        let msg = e.to_string();
        assert!(msg.contains("cannot receive into tank/b@s"), "{msg}");
        assert!(
            msg.contains("modified since its most recent snapshot"),
            "{msg}"
        );
        assert_eq!(e.kind(), ErrorKind::DestinationModified);
        assert_eq!(e.errno(), Some(Errno(libc::ETXTBSY)));
    }

    #[test]
    fn zfs_specific_codes_have_words() {
        assert_eq!(
            Errno::STREAM_TRUNCATED.describe(),
            "send stream is truncated"
        );
        let io: io::Error = zfs_error(libc::ENOENT, Op::Destroy, "p/x", None).into();
        assert_eq!(io.kind(), io::ErrorKind::NotFound);
    }
}
