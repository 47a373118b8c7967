//! The library handle and the dataset operations of libzfs_core.

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::ptr;
use std::sync::OnceLock;

use libzfs_sys as sys;
use nvpair_sys::boolean_t;

use crate::error::{check, zfs_error, Errno, Error, ItemError, Op, Result};
use crate::name::{BookmarkName, DatasetName, NameError, SendSource, SnapshotName, MAX_NAME_LEN};
use crate::nvlist::{NvList, NvListRef};

/// A handle proving that libzfs_core is initialised.
///
/// [`Zfs::open`] calls `libzfs_core_init` once per process; the library is never torn
/// down behind the user's back (no `libzfs_core_fini` on drop), because lzc aborts the
/// process when called uninitialised. The handle is a zero-sized `Copy` token.
///
/// `Zfs` is `Send` and `Sync`: every `lzc_*` call is an ioctl on one shared `/dev/zfs`
/// descriptor, and libzfs_core keeps no other mutable state between calls.
#[derive(Clone, Copy, Debug)]
pub struct Zfs {
    _private: (),
}

static INIT: OnceLock<i32> = OnceLock::new();

/// Converts a Rust bool to the C `boolean_t`.
pub(crate) fn cbool(b: bool) -> boolean_t::Type {
    if b {
        boolean_t::B_TRUE
    } else {
        boolean_t::B_FALSE
    }
}

/// Takes ownership of an output nvlist that libzfs_core may have left NULL.
pub(crate) fn take_list(ptr: *mut nvpair_sys::nvlist_t) -> Option<NvList> {
    // SAFETY: libzfs_core hands the caller ownership of every output nvlist it
    // allocates; NULL (nothing allocated) becomes None.
    unsafe { NvList::from_raw(ptr) }
}

/// The lzc calls that take a list of names and fill an error list (snapshot,
/// destroy_snaps, bookmark, destroy_bookmarks, hold, release): `call` gets `list`
/// and the place for the error list. A failure names `first` and carries each
/// item's errno; success returns the error list, where hold and release report the
/// items they skipped.
fn batch(
    op: Op,
    first: &str,
    list: &NvList,
    call: impl FnOnce(*mut nvpair_sys::nvlist_t, *mut *mut nvpair_sys::nvlist_t) -> i32,
) -> Result<Option<NvList>> {
    let mut errs = ptr::null_mut();
    let rc = call(list.as_ptr(), &mut errs);
    let errs = take_list(errs);
    if rc == 0 {
        return Ok(errs);
    }
    Err(zfs_error(rc, op, first, errs.as_deref()))
}

/// An nvlist of flags: the names an lzc batch call acts on, or the properties a
/// call should return.
fn flags<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<NvList> {
    let mut list = NvList::new();
    for n in names {
        list.insert_flag(n)?;
    }
    Ok(list)
}

/// The kind of dataset [`Zfs::create`] makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatasetType {
    /// A filesystem.
    Filesystem,
    /// A volume (`volsize` must be among the properties).
    Volume,
}

/// The name of the hidden child where an interrupted receive into an existing
/// dataset keeps its state.
const RECV_CHILD: &str = "%recv";

/// `fs/%recv`, if it fits in [`MAX_NAME_LEN`] bytes. libzfs_core cuts a longer name
/// without a word, to `fs` itself for a 255-byte `fs`. Such a child can exist (the
/// kernel creates it by its short name) but no call can name it.
fn recv_child(fs: &DatasetName) -> Option<CString> {
    let name = format!("{fs}/{RECV_CHILD}");
    (name.len() <= MAX_NAME_LEN).then(|| CString::new(name).expect("names have no NUL"))
}

/// A pool (or other) name as a C string, refused when libzfs_core would cut it
/// (over [`MAX_NAME_LEN`] bytes) or it cannot be one (a NUL byte).
fn c_name(name: &str) -> Result<CString> {
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong {
            name: name.to_string(),
            len: name.len(),
            max: MAX_NAME_LEN,
        }
        .into());
    }
    CString::new(name).map_err(|e| {
        NameError::InvalidChar {
            name: name.to_string(),
            ch: '\0',
            position: e.nul_position(),
        }
        .into()
    })
}

/// Hold tags are at most 255 bytes (`MAXNAMELEN` with its NUL): longer ones are
/// refused here, since some kernels never answer them.
fn check_tag(tag: &str) -> Result<()> {
    if tag.is_empty() || tag.len() > 255 || tag.contains('\0') {
        return Err(crate::name::NameError::TooLong {
            name: tag.to_string(),
            len: tag.len(),
            max: 255,
        }
        .into());
    }
    Ok(())
}

/// A snapshot hold: the snapshot and the tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hold {
    /// The held snapshot.
    pub snapshot: SnapshotName,
    /// The hold's tag.
    pub tag: String,
}

/// A bookmark and the properties [`Zfs::bookmarks`] returns for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BookmarkInfo {
    /// The bookmark.
    pub name: BookmarkName,
    /// GUID of the snapshot it was created from.
    pub guid: u64,
    /// Transaction group of that snapshot.
    pub createtxg: u64,
    /// Creation time of that snapshot (seconds since the epoch).
    pub creation: u64,
}

impl Zfs {
    /// Initialises libzfs_core (once per process) and returns the handle.
    ///
    /// Fails when `/dev/zfs` cannot be opened (module not loaded, or no permission).
    #[doc(alias = "libzfs_core_init")]
    pub fn open() -> Result<Zfs> {
        // SAFETY: libzfs_core_init has no preconditions; it opens /dev/zfs and is
        // reference counted. We call it at most once and never call fini.
        let rc = *INIT.get_or_init(|| unsafe { sys::libzfs_core_init() });
        if rc != 0 {
            return Err(Error::io(
                "cannot open /dev/zfs (is the zfs kernel module loaded?)",
                std::io::Error::from_raw_os_error(rc),
            ));
        }
        Ok(Zfs { _private: () })
    }

    /// Whether a dataset, snapshot or bookmark of this name exists.
    #[doc(alias = "lzc_exists")]
    pub fn exists(&self, name: &str) -> bool {
        // lzc_exists does not find bookmarks: look them up in their dataset.
        if let Some((ds, short)) = name.split_once('#') {
            return DatasetName::new(ds)
                .ok()
                .and_then(|d| self.bookmarks(&d).ok())
                .is_some_and(|v| v.iter().any(|b| b.name.short_name() == short));
        }
        // A longer name would be cut to 255 bytes and find what those name.
        let Ok(c) = c_name(name) else {
            return false;
        };
        // SAFETY: c is a valid NUL-terminated string for the duration of the call.
        unsafe { sys::lzc_exists(c.as_ptr()) == boolean_t::B_TRUE }
    }

    /// Creates a filesystem or volume with the given properties.
    #[doc(alias = "lzc_create")]
    pub fn create(
        &self,
        name: &DatasetName,
        kind: DatasetType,
        props: Option<&NvListRef>,
    ) -> Result<()> {
        let c = name.to_cstring();
        let t = match kind {
            DatasetType::Filesystem => sys::LZC_DATSET_TYPE_ZFS,
            DatasetType::Volume => sys::LZC_DATSET_TYPE_ZVOL,
        };
        let props = props.map_or(ptr::null_mut(), |p| p.as_ptr());
        // SAFETY: valid C string; props is NULL or a live nvlist we only lend;
        // no wrapping key (NULL, 0).
        let rc = unsafe { sys::lzc_create(c.as_ptr(), t, props, ptr::null_mut(), 0) };
        check(rc, Op::Create, name.as_str())
    }

    /// Creates an encrypted filesystem whose wrapping key is `key` (raw 32 bytes for
    /// `keyformat=raw`, or the passphrase): `props` must set `encryption`,
    /// `keyformat` and `keylocation`.
    #[doc(alias = "lzc_create")]
    pub fn create_encrypted(
        &self,
        name: &DatasetName,
        props: &NvListRef,
        key: &[u8],
    ) -> Result<()> {
        let c = name.to_cstring();
        let mut key = key.to_vec();
        // SAFETY: valid C string and nvlist; lzc only reads key[..len] during the call.
        let rc = unsafe {
            sys::lzc_create(
                c.as_ptr(),
                sys::LZC_DATSET_TYPE_ZFS,
                props.as_ptr(),
                key.as_mut_ptr(),
                key.len() as _,
            )
        };
        key.fill(0);
        check(rc, Op::Create, name.as_str())
    }

    /// Destroys a dataset (not recursively; it must have no children or snapshots).
    #[doc(alias = "lzc_destroy")]
    pub fn destroy(&self, name: &DatasetName) -> Result<()> {
        let c = name.to_cstring();
        // SAFETY: valid C string.
        let rc = unsafe { sys::lzc_destroy(c.as_ptr()) };
        check(rc, Op::Destroy, name.as_str())
    }

    /// Discards the saved state of an interrupted resumable receive into `fs`
    /// (`zfs receive -A`): the hidden `fs/%recv` of a receive into an existing `fs`,
    /// or `fs` itself when an interrupted receive created it (it is then marked
    /// inconsistent and has no snapshots). Returns whether there was anything to
    /// discard.
    ///
    /// When `fs/%recv` is longer than 255 bytes (`fs` of 250 bytes or more), no call
    /// can name it (libzfs_core would cut the name, for a 255-byte `fs` to `fs`
    /// itself), so it is never asked for: `fs` is destroyed only if the kernel marks
    /// it inconsistent, and state kept in the unnameable child is an error of kind
    /// [`NameTooLong`](crate::ErrorKind::NameTooLong).
    pub fn abort_resumable_receive(&self, fs: &DatasetName) -> Result<bool> {
        let child = recv_child(fs);
        if let Some(recv) = &child {
            // SAFETY: valid C string.
            if unsafe { sys::lzc_exists(recv.as_ptr()) } == boolean_t::B_TRUE {
                // SAFETY: valid C string.
                let rc = unsafe { sys::lzc_destroy(recv.as_ptr()) };
                check(rc, Op::Destroy, fs.as_str())?;
                return Ok(true);
            }
        }
        let token = self.dataset(fs)?.and_then(|i| i.receive_resume_token);
        if token.is_none() {
            return Ok(false);
        }
        let no_snapshots = self.snapshots(fs)?.unwrap_or_default().is_empty();
        let own_state = match child {
            // With no fs/%recv, a token on a dataset without snapshots is its own.
            Some(_) => no_snapshots,
            None => no_snapshots && self.is_inconsistent(fs)?,
        };
        if own_state {
            self.destroy(fs)?;
            return Ok(true);
        }
        match child {
            Some(_) => Ok(false),
            None => Err(zfs_error(
                libc::ENAMETOOLONG,
                Op::Destroy,
                &format!("{fs}/{RECV_CHILD}"),
                None,
            )),
        }
    }

    /// The hidden `inconsistent` property: set on a dataset an interrupted receive
    /// is creating.
    fn is_inconsistent(&self, fs: &DatasetName) -> Result<bool> {
        const PROGRAM: &str = "local args = ...\n\
            local v = zfs.get_prop(args[\"fs\"], \"inconsistent\")\n\
            return v";
        let mut args = NvList::new();
        args.insert("fs", fs.as_str())?;
        let out =
            self.channel_program(fs.pool(), PROGRAM, &args, ProgramLimits::default(), false)?;
        match out.get("return").and_then(|v| v.as_int()) {
            Some(v) => Ok(v != 0),
            None => Err(Error::Protocol {
                op: Op::ChannelProgram,
                detail: format!("no \"inconsistent\" property for {fs}"),
            }),
        }
    }

    /// Takes the snapshots atomically: all of them or none. They must all be in one
    /// pool. `props` are user properties set on every new snapshot.
    ///
    /// On failure the error lists every snapshot that failed and why.
    #[doc(alias = "lzc_snapshot")]
    pub fn snapshot(&self, snaps: &[SnapshotName], props: Option<&NvListRef>) -> Result<()> {
        let Some(first) = snaps.first() else {
            return Ok(());
        };
        let list = flags(snaps.iter().map(SnapshotName::as_str))?;
        let props = props.map_or(ptr::null_mut(), |p| p.as_ptr());
        batch(Op::Snapshot, first.as_str(), &list, |l, errs| {
            // SAFETY: list and props are live nvlists lent for the call; errs
            // receives an nvlist batch() then owns (or stays NULL).
            unsafe { sys::lzc_snapshot(l, props, errs) }
        })?;
        Ok(())
    }

    /// Destroys snapshots (of one pool). With `defer`, held snapshots or snapshots
    /// with clones are marked for destruction when the last hold or clone goes.
    #[doc(alias = "lzc_destroy_snaps")]
    pub fn destroy_snapshots(&self, snaps: &[SnapshotName], defer: bool) -> Result<()> {
        let Some(first) = snaps.first() else {
            return Ok(());
        };
        let list = flags(snaps.iter().map(SnapshotName::as_str))?;
        batch(Op::DestroySnapshots, first.as_str(), &list, |l, errs| {
            // SAFETY: live nvlist lent for the call; errs becomes batch()'s.
            unsafe { sys::lzc_destroy_snaps(l, cbool(defer), errs) }
        })?;
        Ok(())
    }

    /// Rolls a filesystem back to its most recent snapshot, which is returned.
    #[doc(alias = "lzc_rollback")]
    pub fn rollback(&self, fs: &DatasetName) -> Result<SnapshotName> {
        let c = fs.to_cstring();
        let mut buf = vec![0 as libc::c_char; sys::ZFS_MAX_DATASET_NAME_LEN as usize];
        // SAFETY: valid C string; buf has the length we pass.
        let rc = unsafe { sys::lzc_rollback(c.as_ptr(), buf.as_mut_ptr(), buf.len() as _) };
        check(rc, Op::Rollback, fs.as_str())?;
        // SAFETY: on success lzc wrote a NUL-terminated name into buf.
        let s = unsafe { CStr::from_ptr(buf.as_ptr()) };
        Ok(SnapshotName::new(s.to_string_lossy().into_owned())?)
    }

    /// Rolls a filesystem back to `snap`, which must be its most recent snapshot
    /// ([`ErrorKind::NotLatestSnapshot`](crate::ErrorKind::NotLatestSnapshot) otherwise).
    #[doc(alias = "lzc_rollback_to")]
    pub fn rollback_to(&self, snap: &SnapshotName) -> Result<()> {
        let fs = CString::new(snap.dataset_str()).expect("names have no NUL");
        let s = snap.to_cstring();
        // SAFETY: valid C strings.
        let rc = unsafe { sys::lzc_rollback_to(fs.as_ptr(), s.as_ptr()) };
        check(rc, Op::Rollback, snap.as_str())
    }

    /// Creates a clone of `origin` named `name`.
    #[doc(alias = "lzc_clone")]
    pub fn clone_snapshot(
        &self,
        name: &DatasetName,
        origin: &SnapshotName,
        props: Option<&NvListRef>,
    ) -> Result<()> {
        let c = name.to_cstring();
        let o = origin.to_cstring();
        let props = props.map_or(ptr::null_mut(), |p| p.as_ptr());
        // SAFETY: valid C strings; props NULL or live.
        let rc = unsafe { sys::lzc_clone(c.as_ptr(), o.as_ptr(), props) };
        check(rc, Op::Clone, name.as_str())
    }

    /// Promotes a clone. On a snapshot-name conflict the error's item names it.
    #[doc(alias = "lzc_promote")]
    pub fn promote(&self, clone: &DatasetName) -> Result<()> {
        let c = clone.to_cstring();
        let mut buf = vec![0 as libc::c_char; sys::ZFS_MAX_DATASET_NAME_LEN as usize];
        // SAFETY: valid C string; buf has the length we pass.
        let rc = unsafe { sys::lzc_promote(c.as_ptr(), buf.as_mut_ptr(), buf.len() as _) };
        if rc == 0 {
            return Ok(());
        }
        let mut err = zfs_error(rc, Op::Promote, clone.as_str(), None);
        if let Error::Zfs(z) = &mut err {
            // SAFETY: buf is zero-initialised and lzc writes a NUL-terminated name.
            let conflict = unsafe { CStr::from_ptr(buf.as_ptr()) };
            if !conflict.to_bytes().is_empty() {
                z.push_item(crate::error::ItemError {
                    name: conflict.to_string_lossy().into_owned(),
                    errno: Errno(rc),
                });
            }
        }
        Err(err)
    }

    /// Renames a dataset (within its pool).
    #[doc(alias = "lzc_rename")]
    pub fn rename(&self, from: &DatasetName, to: &DatasetName) -> Result<()> {
        let f = from.to_cstring();
        let t = to.to_cstring();
        // SAFETY: valid C strings.
        let rc = unsafe { sys::lzc_rename(f.as_ptr(), t.as_ptr()) };
        check(rc, Op::Rename, from.as_str())
    }

    /// Creates bookmarks atomically, each from a snapshot or another bookmark.
    #[doc(alias = "lzc_bookmark")]
    pub fn bookmark(&self, pairs: &[(BookmarkName, SendSource)]) -> Result<()> {
        let Some((first, _)) = pairs.first() else {
            return Ok(());
        };
        let mut list = NvList::new();
        for (b, src) in pairs {
            list.insert(b.as_str(), src.as_str())?;
        }
        batch(Op::Bookmark, first.as_str(), &list, |l, errs| {
            // SAFETY: live nvlist; errs becomes batch()'s.
            unsafe { sys::lzc_bookmark(l, errs) }
        })?;
        Ok(())
    }

    /// Lists the bookmarks of a filesystem with their guid, createtxg and creation.
    #[doc(alias = "lzc_get_bookmarks")]
    pub fn bookmarks(&self, fs: &DatasetName) -> Result<Vec<BookmarkInfo>> {
        let c = fs.to_cstring();
        let props = flags(["guid", "createtxg", "creation"])?;
        let mut out = ptr::null_mut();
        // SAFETY: valid C string, live nvlist; out becomes ours.
        let rc = unsafe { sys::lzc_get_bookmarks(c.as_ptr(), props.as_ptr(), &mut out) };
        let out = take_list(out);
        check(rc, Op::GetBookmarks, fs.as_str())?;
        let mut v = Vec::new();
        if let Some(out) = out {
            for (short, value) in out.iter() {
                let Some(p) = value.as_nvlist() else { continue };
                let get = |k: &str| {
                    p.get_nvlist(k)
                        .and_then(|n| n.get_u64("value"))
                        .unwrap_or(0)
                };
                v.push(BookmarkInfo {
                    name: fs.bookmark(short)?,
                    guid: get("guid"),
                    createtxg: get("createtxg"),
                    creation: get("creation"),
                });
            }
        }
        v.sort_by_key(|b| b.createtxg);
        Ok(v)
    }

    /// Destroys bookmarks (of one pool).
    #[doc(alias = "lzc_destroy_bookmarks")]
    pub fn destroy_bookmarks(&self, bookmarks: &[BookmarkName]) -> Result<()> {
        let Some(first) = bookmarks.first() else {
            return Ok(());
        };
        let list = flags(bookmarks.iter().map(BookmarkName::as_str))?;
        batch(Op::DestroyBookmarks, first.as_str(), &list, |l, errs| {
            // SAFETY: live nvlist; errs becomes batch()'s.
            unsafe { sys::lzc_destroy_bookmarks(l, errs) }
        })?;
        Ok(())
    }

    /// Opens the cleanup descriptor for temporary holds: holds placed with it are
    /// released when every copy of the descriptor is closed.
    pub fn cleanup_fd(&self) -> Result<OwnedFd> {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/zfs")
            .map(OwnedFd::from)
            .map_err(|e| Error::io("cannot open /dev/zfs for a hold cleanup fd", e))
    }

    /// Places holds atomically (within one pool). With `cleanup_fd` the holds are
    /// temporary: they vanish when that descriptor closes.
    ///
    /// Returns the snapshots that did not exist (lzc skips them instead of failing).
    #[doc(alias = "lzc_hold")]
    pub fn hold(
        &self,
        holds: &[Hold],
        cleanup_fd: Option<BorrowedFd<'_>>,
    ) -> Result<Vec<SnapshotName>> {
        let Some(first) = holds.first() else {
            return Ok(Vec::new());
        };
        let mut list = NvList::new();
        for h in holds {
            check_tag(&h.tag)?;
            list.insert(h.snapshot.as_str(), h.tag.as_str())?;
        }
        let fd = cleanup_fd.map_or(-1, |f| f.as_raw_fd());
        let errs = batch(Op::Hold, first.snapshot.as_str(), &list, |l, errs| {
            // SAFETY: live nvlist; fd is -1 or a descriptor borrowed for the call;
            // errs becomes batch()'s.
            unsafe { sys::lzc_hold(l, fd, errs) }
        })?;
        // Success with entries in the error list: those snapshots did not exist.
        let mut missing = Vec::new();
        if let Some(errs) = errs {
            for (name, _) in errs.iter() {
                missing.push(SnapshotName::new(name)?);
            }
        }
        Ok(missing)
    }

    /// Releases holds atomically. Holds that do not exist (unknown tag, missing
    /// snapshot) are skipped by the kernel and returned as `(name, errno)`.
    #[doc(alias = "lzc_release")]
    pub fn release(&self, holds: &[Hold]) -> Result<Vec<ItemError>> {
        let Some(first) = holds.first() else {
            return Ok(Vec::new());
        };
        let mut list = NvList::new();
        for h in holds {
            let mut tags = match list.get_nvlist(h.snapshot.as_str()) {
                Some(t) => t.to_owned(),
                None => NvList::new(),
            };
            tags.insert_flag(&h.tag)?;
            list.insert(h.snapshot.as_str(), &*tags)?;
        }
        let errs = batch(Op::Release, first.snapshot.as_str(), &list, |l, errs| {
            // SAFETY: live nvlist; errs becomes batch()'s.
            unsafe { sys::lzc_release(l, errs) }
        })?;
        Ok(errs
            .iter()
            .flat_map(|l| l.iter())
            .map(|(name, v)| ItemError {
                name: name.to_string(),
                errno: Errno(v.as_int().unwrap_or(0) as i32),
            })
            .collect())
    }

    /// The holds on a snapshot: (tag, creation time in seconds).
    #[doc(alias = "lzc_get_holds")]
    pub fn holds(&self, snap: &SnapshotName) -> Result<Vec<(String, u64)>> {
        let c = snap.to_cstring();
        let mut out = ptr::null_mut();
        // SAFETY: valid C string; out becomes ours.
        let rc = unsafe { sys::lzc_get_holds(c.as_ptr(), &mut out) };
        let out = take_list(out);
        check(rc, Op::GetHolds, snap.as_str())?;
        Ok(out
            .map(|l| {
                l.iter()
                    .map(|(tag, v)| (tag.to_string(), v.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Waits for pending changes of a pool to reach disk (`force` also syncs when
    /// nothing is dirty).
    #[doc(alias = "lzc_sync")]
    pub fn sync(&self, pool: &str, force: bool) -> Result<()> {
        let c = c_name(pool)?;
        let mut args = NvList::new();
        args.insert("force", &force)?;
        // SAFETY: valid C string and nvlist; the out list is unused (NULL).
        let rc = unsafe { sys::lzc_sync(c.as_ptr(), args.as_ptr(), ptr::null_mut()) };
        check(rc, Op::Sync, pool)
    }

    /// Waits until the pool activity ends; returns whether it had to wait. A signal
    /// with a handler ends the wait early (EINTR), SIGCHLD excepted.
    #[doc(alias = "lzc_wait")]
    pub fn wait(&self, pool: &str, activity: WaitActivity) -> Result<bool> {
        let c = c_name(pool)?;
        let mut waited = boolean_t::B_FALSE;
        let _quiet = crate::quiet::QuietChildren::new();
        // SAFETY: valid C string; waited is a valid out pointer.
        let rc = unsafe { sys::lzc_wait(c.as_ptr(), activity as _, &mut waited) };
        check(rc, Op::Wait, pool)?;
        Ok(waited == boolean_t::B_TRUE)
    }

    /// Waits until the filesystem's delete queue is empty; returns whether it waited.
    #[doc(alias = "lzc_wait_fs")]
    pub fn wait_fs_deleteq(&self, fs: &DatasetName) -> Result<bool> {
        let c = fs.to_cstring();
        let mut waited = boolean_t::B_FALSE;
        let _quiet = crate::quiet::QuietChildren::new();
        // SAFETY: valid C string; waited is a valid out pointer.
        let rc = unsafe { sys::lzc_wait_fs(c.as_ptr(), sys::ZFS_WAIT_DELETEQ, &mut waited) };
        check(rc, Op::Wait, fs.as_str())?;
        Ok(waited == boolean_t::B_TRUE)
    }

    /// Loads an encryption key (`noop` only checks it).
    #[doc(alias = "lzc_load_key")]
    pub fn load_key(&self, fs: &DatasetName, key: &[u8], noop: bool) -> Result<()> {
        let c = fs.to_cstring();
        let mut key = key.to_vec();
        // SAFETY: valid C string; lzc reads key[..len] during the call.
        let rc =
            unsafe { sys::lzc_load_key(c.as_ptr(), cbool(noop), key.as_mut_ptr(), key.len() as _) };
        key.fill(0);
        check(rc, Op::LoadKey, fs.as_str())
    }

    /// Unloads an encryption key.
    #[doc(alias = "lzc_unload_key")]
    pub fn unload_key(&self, fs: &DatasetName) -> Result<()> {
        let c = fs.to_cstring();
        // SAFETY: valid C string.
        let rc = unsafe { sys::lzc_unload_key(c.as_ptr()) };
        check(rc, Op::UnloadKey, fs.as_str())
    }

    /// Changes the wrapping key of an encryption root to `key` (with `props` such
    /// as `keyformat`/`keylocation`).
    #[doc(alias = "lzc_change_key")]
    pub fn change_key(
        &self,
        fs: &DatasetName,
        props: Option<&NvListRef>,
        key: &[u8],
    ) -> Result<()> {
        // `dcp_cmd_t` lives in the kernel-only sys/dsl_crypt.h (not installed for
        // userland builds to include): NONE = 0, RAW_RECV = 1, NEW_KEY = 2.
        const DCP_CMD_NEW_KEY: u64 = 2;
        let c = fs.to_cstring();
        let mut key = key.to_vec();
        let props = props.map_or(ptr::null_mut(), |p| p.as_ptr());
        // SAFETY: valid C string; props NULL or live; lzc reads key[..len].
        let rc = unsafe {
            sys::lzc_change_key(
                c.as_ptr(),
                DCP_CMD_NEW_KEY,
                props,
                key.as_mut_ptr(),
                key.len() as _,
            )
        };
        key.fill(0);
        check(rc, Op::ChangeKey, fs.as_str())
    }

    /// Runs a ZFS channel program (Lua) on `pool` and returns its `return` value's
    /// enclosing list (key `return`). With `sync == false` the program runs read-only
    /// in open context (`lzc_channel_program_nosync`) and cannot change anything.
    /// SIGCHLD is blocked in the calling thread while it runs (the kernel cancels a
    /// program at any pending signal; SIGINT and SIGTERM still do). Root only.
    #[doc(alias = "lzc_channel_program")]
    #[doc(alias = "lzc_channel_program_nosync")]
    pub fn channel_program(
        &self,
        pool: &str,
        program: &str,
        args: &NvListRef,
        limits: ProgramLimits,
        sync: bool,
    ) -> Result<NvList> {
        let p = c_name(pool)?;
        let prog = CString::new(program)
            .map_err(|_| Error::InvalidArgument("a channel program with a NUL byte".into()))?;
        let mut out = ptr::null_mut();
        let quiet = crate::quiet::QuietChildren::new();
        // SAFETY: valid C strings and nvlist; out becomes ours.
        let rc = unsafe {
            if sync {
                sys::lzc_channel_program(
                    p.as_ptr(),
                    prog.as_ptr(),
                    limits.instructions,
                    limits.memory,
                    args.as_ptr(),
                    &mut out,
                )
            } else {
                sys::lzc_channel_program_nosync(
                    p.as_ptr(),
                    prog.as_ptr(),
                    limits.instructions,
                    limits.memory,
                    args.as_ptr(),
                    &mut out,
                )
            }
        };
        drop(quiet);
        let out = take_list(out);
        if rc != 0 {
            let detail = out
                .as_ref()
                .and_then(|o| o.get_str("error").map(str::to_owned));
            let mut err = zfs_error(rc, Op::ChannelProgram, pool, None);
            if let (Some(d), Error::Zfs(z)) = (detail, &mut err) {
                z.push_item(crate::error::ItemError {
                    name: d,
                    errno: Errno(rc),
                });
            }
            return Err(err);
        }
        Ok(out.unwrap_or_default())
    }

    /// The properties of a **pool** (OpenZFS 2.3+, `lzc_get_props`; despite its name
    /// it reads pool properties, not a dataset's: use [`Zfs::list`] for those).
    ///
    /// Built against older headers, the call is looked up at run time: it works where
    /// the installed libzfs_core is 2.3 or later, and is [`Error::Unsupported`] before.
    #[doc(alias = "lzc_get_props")]
    pub fn pool_props(&self, name: &str) -> Result<NvList> {
        #[cfg(openzfs_2_3)]
        let get_props: sys::runtime::lzc_get_props_t = sys::lzc_get_props;
        #[cfg(not(openzfs_2_3))]
        let get_props = sys::runtime::lzc_get_props().ok_or(Error::Unsupported {
            op: Op::GetProps,
            needs: "2.3",
        })?;
        let c = c_name(name)?;
        let mut out = ptr::null_mut();
        // SAFETY: get_props is lzc_get_props (bound or found at run time, same
        // prototype); valid C string; out becomes ours.
        let rc = unsafe { get_props(c.as_ptr(), &mut out) };
        let out = take_list(out);
        check(rc, Op::GetProps, name)?;
        Ok(out.unwrap_or_default())
    }

    /// Space that would be freed by destroying the snapshots from `first` to `last`
    /// (inclusive), in bytes.
    #[doc(alias = "lzc_snaprange_space")]
    pub fn snaprange_space(&self, first: &SnapshotName, last: &SnapshotName) -> Result<u64> {
        let f = first.to_cstring();
        let l = last.to_cstring();
        let mut space = 0u64;
        // SAFETY: valid C strings; space is a valid out pointer.
        let rc = unsafe { sys::lzc_snaprange_space(f.as_ptr(), l.as_ptr(), &mut space) };
        check(rc, Op::SnaprangeSpace, last.as_str())?;
        Ok(space)
    }

    pub(crate) fn raw_fd<F: AsFd>(f: &F) -> i32 {
        f.as_fd().as_raw_fd()
    }
}

/// Instruction and memory limits of a channel program.
#[derive(Clone, Copy, Debug)]
pub struct ProgramLimits {
    /// Lua instructions (the kernel's maximum is 100 million).
    pub instructions: u64,
    /// Bytes of memory (the kernel's maximum is 100 MiB).
    pub memory: u64,
}

impl Default for ProgramLimits {
    /// The `zfs program` defaults: 10 million instructions, 10 MiB.
    fn default() -> Self {
        ProgramLimits {
            instructions: 10_000_000,
            memory: 10 << 20,
        }
    }
}

impl ProgramLimits {
    /// The largest limits the kernel accepts.
    pub const MAX: ProgramLimits = ProgramLimits {
        instructions: 100_000_000,
        memory: 100 << 20,
    };
}

/// Pool activities [`Zfs::wait`] can wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
#[allow(missing_docs)]
pub enum WaitActivity {
    CheckpointDiscard = sys::ZPOOL_WAIT_CKPT_DISCARD,
    Free = sys::ZPOOL_WAIT_FREE,
    Initialize = sys::ZPOOL_WAIT_INITIALIZE,
    Replace = sys::ZPOOL_WAIT_REPLACE,
    Remove = sys::ZPOOL_WAIT_REMOVE,
    Resilver = sys::ZPOOL_WAIT_RESILVER,
    Scrub = sys::ZPOOL_WAIT_SCRUB,
    Trim = sys::ZPOOL_WAIT_TRIM,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs_of_len(len: usize) -> DatasetName {
        DatasetName::new(format!("tank/{}", "a".repeat(len - 5))).unwrap()
    }

    #[test]
    fn recv_child_is_named_only_when_it_fits() {
        let fits = recv_child(&fs_of_len(249)).unwrap();
        assert_eq!(fits.as_bytes().len(), MAX_NAME_LEN);
        assert!(fits.to_str().unwrap().ends_with("a/%recv"));
        // Cut to 255 bytes, these would name something else: "fs/%rec", "fs/", fs.
        for len in [250, 252, 254, 255] {
            assert_eq!(recv_child(&fs_of_len(len)), None, "{len}");
        }
    }

    #[test]
    fn names_libzfs_core_would_cut_are_refused() {
        let ok = "p".repeat(MAX_NAME_LEN);
        assert_eq!(c_name(&ok).unwrap().as_bytes(), ok.as_bytes());
        let long = "p".repeat(MAX_NAME_LEN + 1);
        let e = c_name(&long).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::NameTooLong);
        let e = c_name("po\0ol").unwrap_err();
        assert!(e.to_string().contains("at byte 2"), "{e}");
        // exists() answers for the name given, not for its first 255 bytes; this
        // needs no /dev/zfs, since the name never reaches libzfs_core.
        assert!(!Zfs { _private: () }.exists(&long));
    }
}
