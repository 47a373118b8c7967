//! Safe Rust API over OpenZFS `libzfs_core` and `libnvpair`.
//!
//! Everything starts from a [`Zfs`] handle (which initialises libzfs_core once per
//! process). Names are validated before any call ([`DatasetName`], [`SnapshotName`],
//! [`BookmarkName`]); every failure is an [`Error`] naming the operation, the dataset
//! and the cause, with an [`ErrorKind`] to match on. Streams go to and come from any
//! descriptor (`impl AsFd`); [`props`] reads and converts the properties a receive
//! carries (`zfs send -p`). No `unsafe` is needed by callers.
//!
//! Replicating a snapshot in-process, one thread sending and one receiving:
//!
//! ```no_run
//! use libzfs::{ReceiveOptions, SendFlags, SnapshotName, Zfs};
//!
//! fn replicate(snap: &str, target: &str) -> Result<(), Box<dyn std::error::Error>> {
//!     let zfs = Zfs::open()?;
//!     let snap = SnapshotName::new(snap)?;
//!     let (reader, writer) = os_pipe::pipe()?;
//!     let received = std::thread::scope(|s| {
//!         let sender = s.spawn(move || {
//!             // The writer is dropped when send returns: the receiver sees EOF.
//!             zfs.send(&snap, None, writer, SendFlags::default())
//!         });
//!         let received = zfs.receive(target, &reader, &ReceiveOptions::default());
//!         drop(reader);
//!         sender.join().expect("sender thread")?;
//!         received
//!     })?;
//!     println!("received {} ({} bytes)", received.snapshot, received.bytes);
//!     Ok(())
//! }
//! ```
//!
//! # Threads
//! [`Zfs`] is `Send + Sync` (libzfs_core calls are independent ioctls). [`NvList`] is
//! `Send` (it owns its memory) but not `Sync`; borrowed [`NvListRef`]s are neither.
//!
//! # Versions
//! The crate builds against OpenZFS 2.1 and newer headers; calls the headers lack
//! return [`ErrorKind::Unsupported`], unless they are found at run time in the
//! installed library ([`Zfs::pool_props`] built against 2.1 headers works on 2.3).
//! `cfg(openzfs_2_2)`, `cfg(openzfs_2_3)` are set by the build script from the version
//! libzfs-sys found.
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod error;
pub mod list;
pub mod name;
mod native;
pub mod nvlist;
pub mod packed;
pub mod props;
mod quiet;
#[cfg(feature = "serde")]
mod serde;
pub mod stream;
pub mod zfs;

pub use error::{Errno, Error, ErrorKind, ItemError, Op, Result, ZfsError};
pub use list::{DatasetInfo, Fields, Kind, Listed, Scope, SnapshotInfo, UserProperty};
pub use name::{BookmarkName, DatasetName, NameError, SendSource, SnapshotName};
pub use nvlist::{NvList, NvListError, NvListRef, Value};
pub use props::{PropKind, PropValue, Property, PropertyError};
pub use stream::{RawBeginRecord, ReceiveOptions, Received, ResumeToken, SendFlags, StreamHeader};
pub use zfs::{BookmarkInfo, DatasetType, Hold, ProgramLimits, WaitActivity, Zfs};

/// The OpenZFS version of the headers this crate was built against.
pub const OPENZFS_VERSION: &str = libzfs_sys::OPENZFS_HEADERS_VERSION;
