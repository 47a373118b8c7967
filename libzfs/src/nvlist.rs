//! Owned and borrowed name–value lists (`nvlist_t` from `libnvpair`).
//!
//! Two types follow the "foreign types" pattern:
//!
//! - [`NvList`] owns an `nvlist_t` and frees it exactly once when dropped.
//! - [`NvListRef`] is an opaque type that is only ever used behind a reference:
//!   `&NvListRef` *is* the `*mut nvlist_t` pointer. Nested lists returned by lookups
//!   are `&NvListRef`s borrowed from their parent; they are never freed by Rust (the
//!   parent owns them), which rules out the double free of embedded lists.
//!
//! `NvList` dereferences to `NvListRef`, so every reading and writing method is
//! defined once, on `NvListRef`.
//!
//! ```
//! use libzfs::NvList;
//!
//! let mut props = NvList::new();
//! props.insert("compression", "lz4").unwrap();
//! props.insert("quota", &(1u64 << 30)).unwrap();
//! assert_eq!(props.get_str("compression"), Some("lz4"));
//! assert_eq!(props.get_u64("quota"), Some(1 << 30));
//! ```

use std::borrow::{Borrow, BorrowMut};
use std::cell::UnsafeCell;
use std::ffi::{c_char, c_int, CStr, CString};
use std::fmt;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::ptr::{self, NonNull};

use nvpair_sys as sys;
use nvpair_sys::{boolean_t, data_type_t, nvlist_t, nvpair_t, uint_t};

/// Errors from building, packing or unpacking an nvlist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NvListError {
    /// A pair name or a string value contained a NUL byte, which C strings cannot hold.
    #[error("nvlist pair {name:?}: the name or a string value contains an interior NUL byte")]
    InteriorNul {
        /// The name of the pair being added (lossy if the name itself held the NUL).
        name: String,
    },
    /// A `libnvpair` function returned an error number.
    #[error("{}", errno_message(op, name, *errno))]
    Errno {
        /// The `libnvpair` function that failed, e.g. `"nvlist_add_uint64"`.
        op: &'static str,
        /// The pair name involved, or an empty string for whole-list operations.
        name: String,
        /// The error number it returned (`ENOMEM`, `EINVAL`, ...).
        errno: i32,
    },
    /// A packed list failed the check [`NvList::unpack`] runs before libnvpair sees
    /// it (see [`crate::packed`]).
    #[error("packed nvlist is malformed at byte {offset}: {reason}")]
    Malformed {
        /// Where in the buffer the fault was found.
        offset: usize,
        /// What is wrong there.
        reason: String,
    },
}

/// The description of `errno` without std's " (os error N)" suffix.
fn errno_words(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    let suffix = format!(" (os error {errno})");
    match text.strip_suffix(&suffix) {
        Some(words) => words.to_owned(),
        None => text,
    }
}

fn errno_message(op: &str, name: &str, errno: i32) -> String {
    let words = errno_words(errno);
    if name.is_empty() {
        format!("{op} failed: {words} (errno {errno})")
    } else {
        format!("{op} of {name:?} failed: {words} (errno {errno})")
    }
}

/// Turns a `libnvpair` return code into a `Result`.
fn check(rc: c_int, op: &'static str, name: &CStr) -> Result<(), NvListError> {
    if rc == 0 {
        Ok(())
    } else {
        Err(NvListError::Errno {
            op,
            name: name.to_string_lossy().into_owned(),
            errno: rc,
        })
    }
}

/// Converts a pair name (or a string value of pair `name`) to a C string.
fn to_cstring(s: &str, name: &str) -> Result<CString, NvListError> {
    CString::new(s).map_err(|_| NvListError::InteriorNul {
        name: name.to_owned(),
    })
}

/// Converts a slice length to the `uint_t` element count `libnvpair` takes.
fn array_len(len: usize, op: &'static str, name: &CStr) -> Result<uint_t, NvListError> {
    uint_t::try_from(len).map_err(|_| NvListError::Errno {
        op,
        name: name.to_string_lossy().into_owned(),
        errno: libc::EOVERFLOW,
    })
}

/// How [`NvListRef::pack`] encodes a list.
pub use crate::packed::Encoding;

impl From<crate::packed::Malformed> for NvListError {
    fn from(m: crate::packed::Malformed) -> Self {
        NvListError::Malformed {
            offset: m.offset,
            reason: m.reason,
        }
    }
}

impl Encoding {
    fn as_raw(self) -> c_int {
        match self {
            Encoding::Native => sys::NV_ENCODE_NATIVE,
            Encoding::Xdr => sys::NV_ENCODE_XDR,
        }
    }
}

// ---------------------------------------------------------------------------------------
// NvList (owned)
// ---------------------------------------------------------------------------------------

/// An owned `nvlist_t`, freed with `nvlist_free` when dropped.
///
/// Lists made by [`NvList::new`] have unique names (`NV_UNIQUE_NAME`): inserting a name
/// that is already present replaces the old pair.
pub struct NvList(NonNull<nvlist_t>);

// SAFETY: an `NvList` is the only handle to its `nvlist_t` (nested lists are embedded
// copies, not shared), and libnvpair keeps no thread-local or global state tied to a
// list: its default allocator is plain malloc/free. Moving the sole owner to another
// thread is therefore sound. `NvList` is deliberately not `Sync`: `NvListRef` is
// `!Sync`, and nothing here is designed for concurrent access.
unsafe impl Send for NvList {}

impl NvList {
    /// Allocates an empty list with unique names (`NV_UNIQUE_NAME`).
    ///
    /// # Panics
    ///
    /// Panics if `nvlist_alloc` fails, which only happens when memory is exhausted
    /// (`ENOMEM`), like Rust's own allocations. Use [`NvList::try_new`] to get the error.
    pub fn new() -> NvList {
        NvList::try_new().expect("nvlist_alloc failed (out of memory)")
    }

    /// Allocates an empty list with unique names, returning `nvlist_alloc`'s error.
    pub fn try_new() -> Result<NvList, NvListError> {
        let mut p: *mut nvlist_t = ptr::null_mut();
        // SAFETY: `p` is a valid out-pointer; flags and kmflag (0) are valid values.
        let rc = unsafe { sys::nvlist_alloc(&mut p, sys::NV_UNIQUE_NAME, 0) };
        check(rc, "nvlist_alloc", c"")?;
        // SAFETY: on success `nvlist_alloc` stored a fresh list that we now own.
        unsafe { NvList::from_raw(p) }.ok_or(NvListError::Errno {
            op: "nvlist_alloc",
            name: String::new(),
            errno: libc::ENOMEM,
        })
    }

    /// Takes ownership of a raw list; returns `None` if `ptr` is NULL.
    ///
    /// # Safety
    ///
    /// A non-NULL `ptr` must point to a valid `nvlist_t` allocated by libnvpair that the
    /// caller owns and that nothing else frees or uses afterwards (in particular it must
    /// not be a list embedded in another list). It will be freed with `nvlist_free` when
    /// the returned `NvList` is dropped.
    pub unsafe fn from_raw(ptr: *mut nvlist_t) -> Option<NvList> {
        NonNull::new(ptr).map(NvList)
    }

    /// Gives up ownership, returning the raw pointer; the caller must free it.
    pub fn into_raw(self) -> *mut nvlist_t {
        let this = ManuallyDrop::new(self);
        this.0.as_ptr()
    }

    /// The raw pointer, still owned by `self`.
    pub fn as_ptr(&self) -> *mut nvlist_t {
        self.0.as_ptr()
    }

    /// Duplicates the list (`nvlist_dup`), returning its error instead of panicking.
    pub fn try_clone(&self) -> Result<NvList, NvListError> {
        self.deref().try_to_owned()
    }

    /// Decodes a buffer produced by [`NvListRef::pack`] (either encoding).
    ///
    /// The buffer may come from anywhere: it is checked in Rust first
    /// ([`crate::packed::validate`]), because libnvpair reads past a buffer whose
    /// strings are not terminated. A buffer that fails the check is
    /// [`NvListError::Malformed`] and never reaches libnvpair.
    pub fn unpack(buf: &[u8]) -> Result<NvList, NvListError> {
        crate::packed::validate(buf)?;
        // Copy into 8-byte-aligned storage: the native decoder reads headers in place.
        let mut aligned = vec![0u64; buf.len().div_ceil(8)];
        // SAFETY: `aligned` holds at least `buf.len()` bytes and does not overlap `buf`.
        unsafe {
            ptr::copy_nonoverlapping(buf.as_ptr(), aligned.as_mut_ptr().cast::<u8>(), buf.len())
        };
        let mut p: *mut nvlist_t = ptr::null_mut();
        // SAFETY: the buffer pointer is valid for `buf.len()` bytes (libnvpair only reads
        // it despite the `char *` type) and `p` is a valid out-pointer. `validate`
        // checked that every size, string and nested list it will follow lies inside
        // the buffer.
        let rc = unsafe {
            sys::nvlist_unpack(
                aligned.as_mut_ptr().cast::<c_char>(),
                buf.len() as sys::size_t,
                &mut p,
                0,
            )
        };
        check(rc, "nvlist_unpack", c"")?;
        // SAFETY: on success `nvlist_unpack` stored a fresh list that we now own.
        unsafe { NvList::from_raw(p) }.ok_or(NvListError::Errno {
            op: "nvlist_unpack",
            name: String::new(),
            errno: libc::EINVAL,
        })
    }
}

impl Drop for NvList {
    fn drop(&mut self) {
        // SAFETY: we own the list (invariant of `NvList`), and this is the only place it
        // is freed; `into_raw` skips this by using `ManuallyDrop`.
        unsafe { sys::nvlist_free(self.0.as_ptr()) }
    }
}

impl Default for NvList {
    fn default() -> Self {
        NvList::new()
    }
}

impl Clone for NvList {
    /// Duplicates the list with `nvlist_dup`.
    ///
    /// # Panics
    ///
    /// Panics if memory is exhausted; see [`NvList::try_clone`].
    fn clone(&self) -> Self {
        self.try_clone().expect("nvlist_dup failed")
    }
}

impl Deref for NvList {
    type Target = NvListRef;

    fn deref(&self) -> &NvListRef {
        // SAFETY: the pointer is a valid list owned by `self`, and the returned borrow
        // keeps `self` alive and unmodified.
        unsafe { NvListRef::from_ptr(self.0.as_ptr()) }
    }
}

impl DerefMut for NvList {
    fn deref_mut(&mut self) -> &mut NvListRef {
        // SAFETY: the pointer is a valid list owned by `self`, and `&mut self` makes the
        // returned borrow exclusive.
        unsafe { NvListRef::from_ptr_mut(self.0.as_ptr()) }
    }
}

impl AsRef<NvListRef> for NvList {
    fn as_ref(&self) -> &NvListRef {
        self
    }
}

impl AsMut<NvListRef> for NvList {
    fn as_mut(&mut self) -> &mut NvListRef {
        self
    }
}

impl Borrow<NvListRef> for NvList {
    fn borrow(&self) -> &NvListRef {
        self
    }
}

impl BorrowMut<NvListRef> for NvList {
    fn borrow_mut(&mut self) -> &mut NvListRef {
        self
    }
}

impl fmt::Debug for NvList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.deref(), f)
    }
}

impl PartialEq for NvList {
    fn eq(&self, other: &NvList) -> bool {
        self.deref() == other.deref()
    }
}

impl PartialEq<NvListRef> for NvList {
    fn eq(&self, other: &NvListRef) -> bool {
        self.deref() == other
    }
}

impl<'a> IntoIterator for &'a NvList {
    type Item = (&'a str, Value<'a>);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

// ---------------------------------------------------------------------------------------
// NvListRef (borrowed)
// ---------------------------------------------------------------------------------------

/// A borrowed `nvlist_t`, only ever used as `&NvListRef` or `&mut NvListRef`.
///
/// The reference's address is the `nvlist_t *`. It may point into an owned [`NvList`],
/// into a parent list (a nested list), or at a list owned by C code. It is never freed
/// through this type. It is neither `Send` nor `Sync`.
pub struct NvListRef {
    _opaque: UnsafeCell<[u8; 0]>,
    _not_send_sync: PhantomData<*mut u8>,
}

impl NvListRef {
    /// Borrows a raw list for `'a`.
    ///
    /// # Safety
    ///
    /// `ptr` must be non-NULL and point to a valid `nvlist_t` that stays alive and is not
    /// modified (except through this very borrow tree) for `'a`.
    pub unsafe fn from_ptr<'a>(ptr: *mut nvlist_t) -> &'a NvListRef {
        debug_assert!(!ptr.is_null());
        // SAFETY: `NvListRef` is a zero-sized, alignment-1 type, so any non-NULL pointer
        // is a valid reference to it; the caller guarantees the list outlives `'a`.
        unsafe { &*ptr.cast::<NvListRef>() }
    }

    /// Mutably borrows a raw list for `'a`.
    ///
    /// # Safety
    ///
    /// As for [`NvListRef::from_ptr`], and additionally nothing else may read or write
    /// the list during `'a`.
    pub unsafe fn from_ptr_mut<'a>(ptr: *mut nvlist_t) -> &'a mut NvListRef {
        debug_assert!(!ptr.is_null());
        // SAFETY: as in `from_ptr`; the caller guarantees exclusivity for `'a`.
        unsafe { &mut *ptr.cast::<NvListRef>() }
    }

    /// The raw `nvlist_t *`. It stays owned by whoever owns the list.
    pub fn as_ptr(&self) -> *mut nvlist_t {
        self as *const NvListRef as *mut nvlist_t
    }

    /// Copies the list into a new owned list (`nvlist_dup`).
    pub fn try_to_owned(&self) -> Result<NvList, NvListError> {
        let mut p: *mut nvlist_t = ptr::null_mut();
        // SAFETY: `self` is a valid list and `p` a valid out-pointer.
        let rc = unsafe { sys::nvlist_dup(self.as_ptr(), &mut p, 0) };
        check(rc, "nvlist_dup", c"")?;
        // SAFETY: on success `nvlist_dup` stored a fresh list that we now own.
        unsafe { NvList::from_raw(p) }.ok_or(NvListError::Errno {
            op: "nvlist_dup",
            name: String::new(),
            errno: libc::ENOMEM,
        })
    }

    // --- insertion ---------------------------------------------------------------------

    /// Adds `value` under `name`, replacing any existing pair of that name (for lists
    /// with unique names, such as every list made by [`NvList::new`]).
    ///
    /// Nested lists (`&NvListRef`, `NvList`) and arrays are copied into `self`.
    ///
    /// ```
    /// # use libzfs::NvList;
    /// let mut nv = NvList::new();
    /// nv.insert("guid", &42u64)?;
    /// nv.insert("name", "tank/fs")?;
    /// nv.insert("ids", &[1u64, 2, 3])?;
    /// nv.insert("child", &NvList::new())?;
    /// # Ok::<(), libzfs::NvListError>(())
    /// ```
    pub fn insert<V: ToNvValue + ?Sized>(
        &mut self,
        name: &str,
        value: &V,
    ) -> Result<(), NvListError> {
        let cname = to_cstring(name, name)?;
        value.add_to_nvlist(self, &cname)
    }

    /// Adds a presence-only flag (`DATA_TYPE_BOOLEAN`) named `name`, as ZFS uses for
    /// sets such as the snapshot list of `lzc_snapshot`.
    pub fn insert_flag(&mut self, name: &str) -> Result<(), NvListError> {
        add_flag(self, &to_cstring(name, name)?)
    }

    /// Adds a `DATA_TYPE_BYTE` value (distinct from `u8`, which is `DATA_TYPE_UINT8`).
    pub fn insert_byte(&mut self, name: &str, value: u8) -> Result<(), NvListError> {
        add_byte(self, &to_cstring(name, name)?, value)
    }

    /// Adds a `DATA_TYPE_BYTE_ARRAY` value (distinct from `[u8]`, a `DATA_TYPE_UINT8_ARRAY`).
    pub fn insert_byte_array(&mut self, name: &str, value: &[u8]) -> Result<(), NvListError> {
        add_byte_array(self, &to_cstring(name, name)?, value)
    }

    /// Adds a `DATA_TYPE_HRTIME` value (nanoseconds).
    pub fn insert_hrtime(&mut self, name: &str, value: i64) -> Result<(), NvListError> {
        add_hrtime(self, &to_cstring(name, name)?, value)
    }

    /// Adds a [`Value`] (typically read from another list) with its exact data type,
    /// e.g. to copy pairs between lists. [`Value::Unknown`] fails with `EINVAL`.
    pub fn insert_value(&mut self, name: &str, value: &Value<'_>) -> Result<(), NvListError> {
        self.insert(name, value)
    }

    /// Removes every pair named `name` (`nvlist_remove_all`); returns whether any was.
    pub fn remove(&mut self, name: &str) -> bool {
        let Ok(cname) = CString::new(name) else {
            return false;
        };
        // SAFETY: `self` is a valid list borrowed mutably (so no `Value` borrowed from the
        // removed pairs is alive); `cname` is a C string.
        let rc = unsafe { sys::nvlist_remove_all(self.as_ptr(), cname.as_ptr()) };
        rc == 0
    }

    // --- lookup ------------------------------------------------------------------------

    /// The value of the pair named exactly `name` (byte for byte), or `None` if there
    /// is none. In a list that allows repeated names, the first such pair.
    ///
    /// libnvpair's own lookup (`nvlist_lookup_nvpair`) is not used: it trims blanks
    /// and reads `name[N]` as an array index, so `"fs@a "` would find `fs@a`, and ZFS
    /// names may contain spaces. Like that lookup, this walks the list.
    pub fn get(&self, name: &str) -> Option<Value<'_>> {
        let pair = self.pair(name)?;
        // SAFETY: `pair` belongs to `self`, which is borrowed (unmodifiable) for the
        // lifetime of the returned value.
        Some(unsafe { Value::from_pair(pair) })
    }

    /// Whether a pair named exactly `name` exists (of any type).
    pub fn contains(&self, name: &str) -> bool {
        self.pair(name).is_some()
    }

    /// The first pair named exactly `name`.
    fn pair(&self, name: &str) -> Option<*mut nvpair_t> {
        Pairs::new(self).find(|&p| {
            // SAFETY: `p` is a live pair of `self`; its name is a NUL-terminated
            // string stored in the pair.
            unsafe { CStr::from_ptr(sys::nvpair_name(p)) }.to_bytes() == name.as_bytes()
        })
    }

    /// A `uint64` value, or `None` if absent or of another type.
    pub fn get_u64(&self, name: &str) -> Option<u64> {
        self.get(name)?.as_u64()
    }

    /// An `int64` value, or `None` if absent or of another type.
    pub fn get_i64(&self, name: &str) -> Option<i64> {
        self.get(name)?.as_i64()
    }

    /// A `uint32` value, or `None` if absent or of another type.
    pub fn get_u32(&self, name: &str) -> Option<u32> {
        match self.get(name)? {
            Value::UInt32(v) => Some(v),
            _ => None,
        }
    }

    /// An `int32` value, or `None` if absent or of another type.
    pub fn get_i32(&self, name: &str) -> Option<i32> {
        match self.get(name)? {
            Value::Int32(v) => Some(v),
            _ => None,
        }
    }

    /// A string value as `&str`, or `None` if absent, not a string, or not UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name)?.as_str()
    }

    /// A string value as `&CStr`, or `None` if absent or not a string.
    pub fn get_cstr(&self, name: &str) -> Option<&CStr> {
        self.get(name)?.as_cstr()
    }

    /// A `boolean_value` value, or `None` if absent or of another type (a presence-only
    /// flag is not a `boolean_value`; test it with [`NvListRef::contains`]).
    pub fn get_bool(&self, name: &str) -> Option<bool> {
        self.get(name)?.as_bool()
    }

    /// A nested list, borrowed from `self`, or `None` if absent or not a list.
    pub fn get_nvlist(&self, name: &str) -> Option<&NvListRef> {
        self.get(name)?.as_nvlist()
    }

    /// Whether the list has no pairs.
    pub fn is_empty(&self) -> bool {
        // SAFETY: `self` is a valid list.
        unsafe { sys::nvlist_empty(self.as_ptr()) == boolean_t::B_TRUE }
    }

    /// The number of pairs (counted by walking the list).
    pub fn len(&self) -> usize {
        self.iter_cstr().count()
    }

    /// Iterates over `(name, value)` in insertion order.
    ///
    /// A pair name that is not UTF-8 (never the case for names ZFS produces) is yielded
    /// as `"\u{FFFD}"`; use [`NvListRef::iter_cstr`] to see such names exactly.
    pub fn iter(&self) -> Iter<'_> {
        Iter(self.iter_cstr())
    }

    /// Iterates over `(name, value)` in insertion order, with names as `&CStr`.
    pub fn iter_cstr(&self) -> CStrIter<'_> {
        CStrIter(Pairs::new(self))
    }

    // --- packing -----------------------------------------------------------------------

    /// Serializes the list in the native encoding, as the ZFS ioctls and resume tokens
    /// use; see [`NvListRef::pack_with`].
    pub fn pack(&self) -> Result<Vec<u8>, NvListError> {
        self.pack_with(Encoding::Native)
    }

    /// Serializes the list in `encoding` (`nvlist_size` + `nvlist_pack` into a Rust
    /// buffer, so no C-allocated memory is handed out).
    pub fn pack_with(&self, encoding: Encoding) -> Result<Vec<u8>, NvListError> {
        let enc = encoding.as_raw();
        let mut size: sys::size_t = 0;
        // SAFETY: `self` is a valid list and `size` a valid out-pointer.
        let rc = unsafe { sys::nvlist_size(self.as_ptr(), &mut size, enc) };
        check(rc, "nvlist_size", c"")?;
        let size_usize = usize::try_from(size).map_err(|_| NvListError::Errno {
            op: "nvlist_size",
            name: String::new(),
            errno: libc::EOVERFLOW,
        })?;
        let mut buf = vec![0u8; size_usize];
        let mut bufp = buf.as_mut_ptr().cast::<c_char>();
        let mut len = size;
        // SAFETY: `bufp` is non-NULL and points to `len` writable bytes, so nvlist_pack
        // encodes into it instead of allocating; `self` is a valid list.
        let rc = unsafe { sys::nvlist_pack(self.as_ptr(), &mut bufp, &mut len, enc, 0) };
        check(rc, "nvlist_pack", c"")?;
        debug_assert_eq!(bufp, buf.as_mut_ptr().cast::<c_char>());
        if let Ok(l) = usize::try_from(len) {
            buf.truncate(l);
        }
        Ok(buf)
    }
}

impl ToOwned for NvListRef {
    type Owned = NvList;

    /// Copies the list with `nvlist_dup`.
    ///
    /// # Panics
    ///
    /// Panics if memory is exhausted; see [`NvListRef::try_to_owned`].
    fn to_owned(&self) -> NvList {
        self.try_to_owned().expect("nvlist_dup failed")
    }
}

impl fmt::Debug for NvListRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (name, value) in self.iter_cstr() {
            match name.to_str() {
                Ok(s) => map.entry(&s, &value),
                Err(_) => map.entry(&name, &value),
            };
        }
        map.finish()
    }
}

/// Lists are equal when they hold equal pairs (names, types and values) in the same
/// order.
impl PartialEq for NvListRef {
    fn eq(&self, other: &NvListRef) -> bool {
        let mut a = self.iter_cstr();
        let mut b = other.iter_cstr();
        loop {
            match (a.next(), b.next()) {
                (None, None) => return true,
                (Some(x), Some(y)) if x == y => {}
                _ => return false,
            }
        }
    }
}

impl<'a> IntoIterator for &'a NvListRef {
    type Item = (&'a str, Value<'a>);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

// ---------------------------------------------------------------------------------------
// Iteration
// ---------------------------------------------------------------------------------------

/// Iterator over the pairs of a list as `(&str, Value)`; see [`NvListRef::iter`].
pub struct Iter<'a>(CStrIter<'a>);

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, Value<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let (name, value) = self.0.next()?;
        Some((name.to_str().unwrap_or("\u{FFFD}"), value))
    }
}

impl fmt::Debug for Iter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").finish_non_exhaustive()
    }
}

/// The raw pairs of a list, in order.
struct Pairs<'a> {
    list: &'a NvListRef,
    cur: *mut nvpair_t,
    done: bool,
}

impl<'a> Pairs<'a> {
    fn new(list: &'a NvListRef) -> Self {
        Pairs {
            list,
            cur: ptr::null_mut(),
            done: false,
        }
    }
}

impl Iterator for Pairs<'_> {
    type Item = *mut nvpair_t;

    fn next(&mut self) -> Option<*mut nvpair_t> {
        if self.done {
            return None;
        }
        // SAFETY: `list` is valid and borrowed for 'a; `cur` is NULL or a pair of
        // `list` returned by the previous call, still present since `list` cannot
        // change while borrowed.
        let next = unsafe { sys::nvlist_next_nvpair(self.list.as_ptr(), self.cur) };
        self.done = next.is_null();
        self.cur = next;
        (!self.done).then_some(next)
    }
}

/// Iterator over the pairs of a list as `(&CStr, Value)`; see [`NvListRef::iter_cstr`].
pub struct CStrIter<'a>(Pairs<'a>);

impl<'a> Iterator for CStrIter<'a> {
    type Item = (&'a CStr, Value<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let pair = self.0.next()?;
        // SAFETY: `pair` is a live pair of the list borrowed for 'a; its name is a
        // NUL-terminated string stored in the pair, which lives as long as the borrow.
        let name = unsafe { CStr::from_ptr(sys::nvpair_name(pair)) };
        // SAFETY: as above, the pair outlives 'a.
        let value = unsafe { Value::from_pair(pair) };
        Some((name, value))
    }
}

impl fmt::Debug for CStrIter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CStrIter").finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------
// Value
// ---------------------------------------------------------------------------------------

/// The value of one pair, borrowed from its list.
///
/// Numeric arrays are slices pointing into the pair; boolean, string and list arrays are
/// collected into `Vec`s of borrowed items.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// `DATA_TYPE_BOOLEAN`: a presence-only flag with no value.
    Boolean,
    /// `DATA_TYPE_BOOLEAN_VALUE`.
    BooleanValue(bool),
    /// `DATA_TYPE_BYTE`.
    Byte(u8),
    /// `DATA_TYPE_INT8`.
    Int8(i8),
    /// `DATA_TYPE_UINT8`.
    UInt8(u8),
    /// `DATA_TYPE_INT16`.
    Int16(i16),
    /// `DATA_TYPE_UINT16`.
    UInt16(u16),
    /// `DATA_TYPE_INT32`.
    Int32(i32),
    /// `DATA_TYPE_UINT32`.
    UInt32(u32),
    /// `DATA_TYPE_INT64`.
    Int64(i64),
    /// `DATA_TYPE_UINT64`.
    UInt64(u64),
    /// `DATA_TYPE_DOUBLE`.
    Double(f64),
    /// `DATA_TYPE_HRTIME` (nanoseconds).
    HrTime(i64),
    /// `DATA_TYPE_STRING` (not necessarily UTF-8; see [`Value::as_str`]).
    String(&'a CStr),
    /// `DATA_TYPE_NVLIST`: a nested list, owned by the parent.
    NvList(&'a NvListRef),
    /// `DATA_TYPE_BOOLEAN_ARRAY`.
    BooleanArray(Vec<bool>),
    /// `DATA_TYPE_BYTE_ARRAY`.
    ByteArray(&'a [u8]),
    /// `DATA_TYPE_INT8_ARRAY`.
    Int8Array(&'a [i8]),
    /// `DATA_TYPE_UINT8_ARRAY`.
    UInt8Array(&'a [u8]),
    /// `DATA_TYPE_INT16_ARRAY`.
    Int16Array(&'a [i16]),
    /// `DATA_TYPE_UINT16_ARRAY`.
    UInt16Array(&'a [u16]),
    /// `DATA_TYPE_INT32_ARRAY`.
    Int32Array(&'a [i32]),
    /// `DATA_TYPE_UINT32_ARRAY`.
    UInt32Array(&'a [u32]),
    /// `DATA_TYPE_INT64_ARRAY`.
    Int64Array(&'a [i64]),
    /// `DATA_TYPE_UINT64_ARRAY`.
    UInt64Array(&'a [u64]),
    /// `DATA_TYPE_STRING_ARRAY`.
    StringArray(Vec<&'a CStr>),
    /// `DATA_TYPE_NVLIST_ARRAY`: nested lists, owned by the parent.
    NvListArray(Vec<&'a NvListRef>),
    /// A data type this binding does not know, with its `data_type_t` number.
    Unknown(i32),
}

/// Builds a slice from a libnvpair array, treating NULL/0 as empty.
///
/// # Safety
///
/// If `n > 0`, `p` must point to `n` initialized `T`s that stay valid and unmodified for
/// `'a`.
unsafe fn array_slice<'a, T>(p: *const T, n: uint_t) -> &'a [T] {
    if p.is_null() || n == 0 {
        return &[];
    }
    // libnvpair 8-byte-aligns every value; check rather than assume.
    assert!(p.is_aligned(), "misaligned nvpair array");
    // SAFETY: non-NULL, aligned, and valid for `n` elements for 'a (caller's promise).
    unsafe { std::slice::from_raw_parts(p, n as usize) }
}

macro_rules! scalar_value {
    ($pair:expr, $f:ident, $t:ty, $variant:ident, $ty:expr) => {{
        let mut v: $t = Default::default();
        // SAFETY: the caller of `from_pair` guarantees the pair is valid; the type was
        // checked by `nvpair_type`, and `v` is a valid out-pointer of the right type.
        if unsafe { sys::$f($pair, &mut v) } == 0 {
            Value::$variant(v)
        } else {
            Value::Unknown($ty)
        }
    }};
}

macro_rules! array_value {
    ($pair:expr, $f:ident, $t:ty, $variant:ident, $ty:expr) => {{
        let mut p: *mut $t = ptr::null_mut();
        let mut n: uint_t = 0;
        // SAFETY: the caller of `from_pair` guarantees the pair is valid; the type was
        // checked by `nvpair_type`, and `p`/`n` are valid out-pointers.
        if unsafe { sys::$f($pair, &mut p, &mut n) } == 0 {
            // SAFETY: libnvpair returned a pointer to `n` elements stored in the pair,
            // which lives for 'a.
            Value::$variant(unsafe { array_slice(p, n) })
        } else {
            Value::Unknown($ty)
        }
    }};
}

impl<'a> Value<'a> {
    /// Reads the value of `pair`.
    ///
    /// # Safety
    ///
    /// `pair` must be a valid pair of a list that stays alive and unmodified for `'a`.
    unsafe fn from_pair(pair: *mut nvpair_t) -> Value<'a> {
        use data_type_t::*;
        // SAFETY: `pair` is valid (caller's promise).
        let ty = unsafe { sys::nvpair_type(pair) };
        match ty {
            DATA_TYPE_BOOLEAN => Value::Boolean,
            DATA_TYPE_BOOLEAN_VALUE => {
                let mut b: boolean_t::Type = boolean_t::B_FALSE;
                // SAFETY: valid pair of this type and a valid out-pointer.
                if unsafe { sys::nvpair_value_boolean_value(pair, &mut b) } == 0 {
                    Value::BooleanValue(b != boolean_t::B_FALSE)
                } else {
                    Value::Unknown(ty)
                }
            }
            DATA_TYPE_BYTE => scalar_value!(pair, nvpair_value_byte, u8, Byte, ty),
            DATA_TYPE_INT8 => scalar_value!(pair, nvpair_value_int8, i8, Int8, ty),
            DATA_TYPE_UINT8 => scalar_value!(pair, nvpair_value_uint8, u8, UInt8, ty),
            DATA_TYPE_INT16 => scalar_value!(pair, nvpair_value_int16, i16, Int16, ty),
            DATA_TYPE_UINT16 => scalar_value!(pair, nvpair_value_uint16, u16, UInt16, ty),
            DATA_TYPE_INT32 => scalar_value!(pair, nvpair_value_int32, i32, Int32, ty),
            DATA_TYPE_UINT32 => scalar_value!(pair, nvpair_value_uint32, u32, UInt32, ty),
            DATA_TYPE_INT64 => scalar_value!(pair, nvpair_value_int64, i64, Int64, ty),
            DATA_TYPE_UINT64 => scalar_value!(pair, nvpair_value_uint64, u64, UInt64, ty),
            DATA_TYPE_DOUBLE => scalar_value!(pair, nvpair_value_double, f64, Double, ty),
            DATA_TYPE_HRTIME => scalar_value!(pair, nvpair_value_hrtime, i64, HrTime, ty),
            DATA_TYPE_STRING => {
                let mut s: *mut c_char = ptr::null_mut();
                // SAFETY: valid pair of this type and a valid out-pointer.
                if unsafe { sys::nvpair_value_string(pair, &mut s) } == 0 && !s.is_null() {
                    // SAFETY: the string is NUL-terminated and stored in the pair ('a).
                    Value::String(unsafe { CStr::from_ptr(s) })
                } else {
                    Value::Unknown(ty)
                }
            }
            DATA_TYPE_NVLIST => {
                let mut l: *mut nvlist_t = ptr::null_mut();
                // SAFETY: valid pair of this type and a valid out-pointer.
                if unsafe { sys::nvpair_value_nvlist(pair, &mut l) } == 0 && !l.is_null() {
                    // SAFETY: the embedded list is owned by the pair, which lives and is
                    // unmodified for 'a; it is only borrowed, never freed.
                    Value::NvList(unsafe { NvListRef::from_ptr(l) })
                } else {
                    Value::Unknown(ty)
                }
            }
            DATA_TYPE_BOOLEAN_ARRAY => {
                let mut p: *mut boolean_t::Type = ptr::null_mut();
                let mut n: uint_t = 0;
                // SAFETY: valid pair of this type and valid out-pointers.
                if unsafe { sys::nvpair_value_boolean_array(pair, &mut p, &mut n) } == 0 {
                    // SAFETY: `n` elements stored in the pair ('a).
                    let raw = unsafe { array_slice(p, n) };
                    Value::BooleanArray(raw.iter().map(|&b| b != boolean_t::B_FALSE).collect())
                } else {
                    Value::Unknown(ty)
                }
            }
            DATA_TYPE_BYTE_ARRAY => array_value!(pair, nvpair_value_byte_array, u8, ByteArray, ty),
            DATA_TYPE_INT8_ARRAY => array_value!(pair, nvpair_value_int8_array, i8, Int8Array, ty),
            DATA_TYPE_UINT8_ARRAY => {
                array_value!(pair, nvpair_value_uint8_array, u8, UInt8Array, ty)
            }
            DATA_TYPE_INT16_ARRAY => {
                array_value!(pair, nvpair_value_int16_array, i16, Int16Array, ty)
            }
            DATA_TYPE_UINT16_ARRAY => {
                array_value!(pair, nvpair_value_uint16_array, u16, UInt16Array, ty)
            }
            DATA_TYPE_INT32_ARRAY => {
                array_value!(pair, nvpair_value_int32_array, i32, Int32Array, ty)
            }
            DATA_TYPE_UINT32_ARRAY => {
                array_value!(pair, nvpair_value_uint32_array, u32, UInt32Array, ty)
            }
            DATA_TYPE_INT64_ARRAY => {
                array_value!(pair, nvpair_value_int64_array, i64, Int64Array, ty)
            }
            DATA_TYPE_UINT64_ARRAY => {
                array_value!(pair, nvpair_value_uint64_array, u64, UInt64Array, ty)
            }
            DATA_TYPE_STRING_ARRAY => {
                let mut p: *mut *mut c_char = ptr::null_mut();
                let mut n: uint_t = 0;
                // SAFETY: valid pair of this type and valid out-pointers.
                if unsafe { sys::nvpair_value_string_array(pair, &mut p, &mut n) } == 0 {
                    // SAFETY: `n` string pointers stored in the pair ('a).
                    let ptrs = unsafe { array_slice(p.cast_const(), n) };
                    Value::StringArray(
                        ptrs.iter()
                            // SAFETY: each is a NUL-terminated string stored in the pair.
                            .map(|&s| unsafe { CStr::from_ptr(s) })
                            .collect(),
                    )
                } else {
                    Value::Unknown(ty)
                }
            }
            DATA_TYPE_NVLIST_ARRAY => {
                let mut p: *mut *mut nvlist_t = ptr::null_mut();
                let mut n: uint_t = 0;
                // SAFETY: valid pair of this type and valid out-pointers.
                if unsafe { sys::nvpair_value_nvlist_array(pair, &mut p, &mut n) } == 0 {
                    // SAFETY: `n` list pointers stored in the pair ('a).
                    let ptrs = unsafe { array_slice(p.cast_const(), n) };
                    Value::NvListArray(
                        ptrs.iter()
                            .filter(|l| !l.is_null())
                            // SAFETY: each embedded list is owned by the pair ('a) and
                            // only borrowed here.
                            .map(|&l| unsafe { NvListRef::from_ptr(l) })
                            .collect(),
                    )
                } else {
                    Value::Unknown(ty)
                }
            }
            other => Value::Unknown(other),
        }
    }

    /// Any integer value (signed or unsigned, any width) as `i64`; `UInt64` values
    /// above `i64::MAX` wrap. The kernel reports errnos as int32, Lua numbers as
    /// int64, most properties as uint64: this reads them all.
    pub fn as_int(&self) -> Option<i64> {
        Some(match *self {
            Value::Byte(v) | Value::UInt8(v) => i64::from(v),
            Value::Int8(v) => i64::from(v),
            Value::Int16(v) => i64::from(v),
            Value::UInt16(v) => i64::from(v),
            Value::Int32(v) => i64::from(v),
            Value::UInt32(v) => i64::from(v),
            Value::Int64(v) | Value::HrTime(v) => v,
            Value::UInt64(v) => v as i64,
            _ => return None,
        })
    }

    /// The value if this is a `UInt64`.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::UInt64(v) => Some(v),
            _ => None,
        }
    }

    /// The value if this is an `Int64`.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int64(v) => Some(v),
            _ => None,
        }
    }

    /// The value if this is a `BooleanValue`.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::BooleanValue(v) => Some(v),
            _ => None,
        }
    }

    /// The string if this is a `String` holding UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        self.as_cstr()?.to_str().ok()
    }

    /// The string if this is a `String`.
    pub fn as_cstr(&self) -> Option<&'a CStr> {
        match *self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The nested list if this is an `NvList`.
    pub fn as_nvlist(&self) -> Option<&'a NvListRef> {
        match *self {
            Value::NvList(l) => Some(l),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Insertion trait
// ---------------------------------------------------------------------------------------

/// A Rust value that can be stored in an nvlist with [`NvListRef::insert`].
///
/// | Rust type | nvpair type |
/// |---|---|
/// | `bool` | `boolean_value` |
/// | `u8`, `i8`, `u16`, `i16`, `u32`, `i32`, `u64`, `i64` | `uint8` ... `int64` |
/// | `f64` | `double` |
/// | `str`, `String`, `CStr`, `CString` | `string` |
/// | `NvListRef`, `NvList` | `nvlist` (copied) |
/// | `[bool]`, `[u8]` ... `[i64]` | `boolean_array`, `uint8_array` ... `int64_array` |
/// | `[&str]`, `[String]`, `[&CStr]` | `string_array` |
/// | `[NvList]`, `[&NvListRef]` | `nvlist_array` (copied) |
///
/// Arrays `[T; N]`, `Vec<T>` and references `&T` work wherever `[T]` / `T` do.
pub trait ToNvValue {
    /// Adds `self` to `list` under `name`.
    fn add_to_nvlist(&self, list: &mut NvListRef, name: &CStr) -> Result<(), NvListError>;
}

impl<T: ToNvValue + ?Sized> ToNvValue for &T {
    fn add_to_nvlist(&self, list: &mut NvListRef, name: &CStr) -> Result<(), NvListError> {
        (**self).add_to_nvlist(list, name)
    }
}

impl<T, const N: usize> ToNvValue for [T; N]
where
    [T]: ToNvValue,
{
    fn add_to_nvlist(&self, list: &mut NvListRef, name: &CStr) -> Result<(), NvListError> {
        self[..].add_to_nvlist(list, name)
    }
}

impl<T> ToNvValue for Vec<T>
where
    [T]: ToNvValue,
{
    fn add_to_nvlist(&self, list: &mut NvListRef, name: &CStr) -> Result<(), NvListError> {
        self[..].add_to_nvlist(list, name)
    }
}

macro_rules! scalar_to_nv {
    ($($t:ty => $f:ident),* $(,)?) => {$(
        impl ToNvValue for $t {
            fn add_to_nvlist(
                &self,
                list: &mut NvListRef,
                name: &CStr,
            ) -> Result<(), NvListError> {
                // SAFETY: `list` is a valid list borrowed mutably; `name` is a C string.
                let rc = unsafe { sys::$f(list.as_ptr(), name.as_ptr(), *self) };
                check(rc, stringify!($f), name)
            }
        }
    )*};
}

scalar_to_nv! {
    i8 => nvlist_add_int8,
    u8 => nvlist_add_uint8,
    i16 => nvlist_add_int16,
    u16 => nvlist_add_uint16,
    i32 => nvlist_add_int32,
    u32 => nvlist_add_uint32,
    i64 => nvlist_add_int64,
    u64 => nvlist_add_uint64,
    f64 => nvlist_add_double,
}

impl ToNvValue for bool {
    fn add_to_nvlist(&self, list: &mut NvListRef, name: &CStr) -> Result<(), NvListError> {
        let b = if *self {
            boolean_t::B_TRUE
        } else {
            boolean_t::B_FALSE
        };
        // SAFETY: `list` is a valid list borrowed mutably; `name` is a C string.
        let rc = unsafe { sys::nvlist_add_boolean_value(list.as_ptr(), name.as_ptr(), b) };
        check(rc, "nvlist_add_boolean_value", name)
    }
}

macro_rules! array_to_nv {
    ($($t:ty => $f:ident),* $(,)?) => {$(
        impl ToNvValue for [$t] {
            fn add_to_nvlist(
                &self,
                list: &mut NvListRef,
                name: &CStr,
            ) -> Result<(), NvListError> {
                let n = array_len(self.len(), stringify!($f), name)?;
                // SAFETY: `list` is a valid list borrowed mutably; `name` is a C string;
                // the array pointer is valid for `n` elements and only read (copied).
                let rc = unsafe {
                    sys::$f(list.as_ptr(), name.as_ptr(), self.as_ptr().cast_mut(), n)
                };
                check(rc, stringify!($f), name)
            }
        }
    )*};
}

array_to_nv! {
    i8 => nvlist_add_int8_array,
    u8 => nvlist_add_uint8_array,
    i16 => nvlist_add_int16_array,
    u16 => nvlist_add_uint16_array,
    i32 => nvlist_add_int32_array,
    u32 => nvlist_add_uint32_array,
    i64 => nvlist_add_int64_array,
    u64 => nvlist_add_uint64_array,
}

impl ToNvValue for [bool] {
    fn add_to_nvlist(&self, list: &mut NvListRef, name: &CStr) -> Result<(), NvListError> {
        let n = array_len(self.len(), "nvlist_add_boolean_array", name)?;
        let mut raw: Vec<boolean_t::Type> = self
            .iter()
            .map(|&b| {
                if b {
                    boolean_t::B_TRUE
                } else {
                    boolean_t::B_FALSE
                }
            })
            .collect();
        // SAFETY: `list` is a valid list borrowed mutably; `name` is a C string; `raw`
        // holds `n` elements and is only read (copied).
        let rc = unsafe {
            sys::nvlist_add_boolean_array(list.as_ptr(), name.as_ptr(), raw.as_mut_ptr(), n)
        };
        check(rc, "nvlist_add_boolean_array", name)
    }
}

impl ToNvValue for CStr {
    fn add_to_nvlist(&self, list: &mut NvListRef, name: &CStr) -> Result<(), NvListError> {
        // SAFETY: `list` is a valid list borrowed mutably; both are C strings.
        let rc = unsafe { sys::nvlist_add_string(list.as_ptr(), name.as_ptr(), self.as_ptr()) };
        check(rc, "nvlist_add_string", name)
    }
}

impl ToNvValue for CString {
    fn add_to_nvlist(&self, list: &mut NvListRef, name: &CStr) -> Result<(), NvListError> {
        self.as_c_str().add_to_nvlist(list, name)
    }
}

impl ToNvValue for str {
    fn add_to_nvlist(&self, list: &mut NvListRef, name: &CStr) -> Result<(), NvListError> {
        let value = to_cstring(self, &name.to_string_lossy())?;
        value.as_c_str().add_to_nvlist(list, name)
    }
}

impl ToNvValue for String {
    fn add_to_nvlist(&self, list: &mut NvListRef, name: &CStr) -> Result<(), NvListError> {
        self.as_str().add_to_nvlist(list, name)
    }
}

fn add_flag(list: &mut NvListRef, name: &CStr) -> Result<(), NvListError> {
    // SAFETY: `list` is a valid list borrowed mutably; `name` is a C string.
    let rc = unsafe { sys::nvlist_add_boolean(list.as_ptr(), name.as_ptr()) };
    check(rc, "nvlist_add_boolean", name)
}

fn add_byte(list: &mut NvListRef, name: &CStr, value: u8) -> Result<(), NvListError> {
    // SAFETY: `list` is a valid list borrowed mutably; `name` is a C string.
    let rc = unsafe { sys::nvlist_add_byte(list.as_ptr(), name.as_ptr(), value) };
    check(rc, "nvlist_add_byte", name)
}

fn add_byte_array(list: &mut NvListRef, name: &CStr, value: &[u8]) -> Result<(), NvListError> {
    let n = array_len(value.len(), "nvlist_add_byte_array", name)?;
    // SAFETY: `list` is a valid list borrowed mutably; `name` is a C string; the array
    // pointer is valid for `n` elements and only read (copied) by libnvpair.
    let rc = unsafe {
        sys::nvlist_add_byte_array(list.as_ptr(), name.as_ptr(), value.as_ptr().cast_mut(), n)
    };
    check(rc, "nvlist_add_byte_array", name)
}

fn add_hrtime(list: &mut NvListRef, name: &CStr, value: i64) -> Result<(), NvListError> {
    // SAFETY: `list` is a valid list borrowed mutably; `name` is a C string.
    let rc = unsafe { sys::nvlist_add_hrtime(list.as_ptr(), name.as_ptr(), value) };
    check(rc, "nvlist_add_hrtime", name)
}

/// Re-adds a value with its exact data type.
impl ToNvValue for Value<'_> {
    fn add_to_nvlist(&self, list: &mut NvListRef, name: &CStr) -> Result<(), NvListError> {
        match self {
            Value::Boolean => add_flag(list, name),
            Value::BooleanValue(v) => v.add_to_nvlist(list, name),
            Value::Byte(v) => add_byte(list, name, *v),
            Value::Int8(v) => v.add_to_nvlist(list, name),
            Value::UInt8(v) => v.add_to_nvlist(list, name),
            Value::Int16(v) => v.add_to_nvlist(list, name),
            Value::UInt16(v) => v.add_to_nvlist(list, name),
            Value::Int32(v) => v.add_to_nvlist(list, name),
            Value::UInt32(v) => v.add_to_nvlist(list, name),
            Value::Int64(v) => v.add_to_nvlist(list, name),
            Value::UInt64(v) => v.add_to_nvlist(list, name),
            Value::Double(v) => v.add_to_nvlist(list, name),
            Value::HrTime(v) => add_hrtime(list, name, *v),
            Value::String(v) => v.add_to_nvlist(list, name),
            Value::NvList(v) => v.add_to_nvlist(list, name),
            Value::BooleanArray(v) => v.add_to_nvlist(list, name),
            Value::ByteArray(v) => add_byte_array(list, name, v),
            Value::Int8Array(v) => v.add_to_nvlist(list, name),
            Value::UInt8Array(v) => v.add_to_nvlist(list, name),
            Value::Int16Array(v) => v.add_to_nvlist(list, name),
            Value::UInt16Array(v) => v.add_to_nvlist(list, name),
            Value::Int32Array(v) => v.add_to_nvlist(list, name),
            Value::UInt32Array(v) => v.add_to_nvlist(list, name),
            Value::Int64Array(v) => v.add_to_nvlist(list, name),
            Value::UInt64Array(v) => v.add_to_nvlist(list, name),
            Value::StringArray(v) => add_string_array(list, name, v),
            Value::NvListArray(v) => add_nvlist_array(list, name, v),
            Value::Unknown(_) => Err(NvListError::Errno {
                op: "nvlist_add (unknown data type)",
                name: name.to_string_lossy().into_owned(),
                errno: libc::EINVAL,
            }),
        }
    }
}

/// Adds a string array from C string pointers.
fn add_string_array(
    list: &mut NvListRef,
    name: &CStr,
    strings: &[&CStr],
) -> Result<(), NvListError> {
    let n = array_len(strings.len(), "nvlist_add_string_array", name)?;
    let ptrs: Vec<*mut c_char> = strings.iter().map(|s| s.as_ptr().cast_mut()).collect();
    // SAFETY: `list` is a valid list borrowed mutably; `name` is a C string; `ptrs` holds
    // `n` pointers to C strings that outlive the call; libnvpair only reads (copies) them.
    let rc =
        unsafe { sys::nvlist_add_string_array(list.as_ptr(), name.as_ptr(), ptrs.as_ptr(), n) };
    check(rc, "nvlist_add_string_array", name)
}

impl ToNvValue for [&CStr] {
    fn add_to_nvlist(&self, list: &mut NvListRef, name: &CStr) -> Result<(), NvListError> {
        add_string_array(list, name, self)
    }
}

impl ToNvValue for [&str] {
    fn add_to_nvlist(&self, list: &mut NvListRef, name: &CStr) -> Result<(), NvListError> {
        let lossy = name.to_string_lossy();
        let owned = self
            .iter()
            .map(|s| to_cstring(s, &lossy))
            .collect::<Result<Vec<CString>, _>>()?;
        let refs: Vec<&CStr> = owned.iter().map(CString::as_c_str).collect();
        add_string_array(list, name, &refs)
    }
}

impl ToNvValue for [String] {
    fn add_to_nvlist(&self, list: &mut NvListRef, name: &CStr) -> Result<(), NvListError> {
        let refs: Vec<&str> = self.iter().map(String::as_str).collect();
        refs[..].add_to_nvlist(list, name)
    }
}

impl ToNvValue for NvListRef {
    fn add_to_nvlist(&self, list: &mut NvListRef, name: &CStr) -> Result<(), NvListError> {
        // SAFETY: `list` is a valid list borrowed mutably and `self` a distinct valid
        // list (the borrow rules forbid `self` aliasing `list`); nvlist_add_nvlist copies
        // `self` and does not take ownership of it.
        let rc = unsafe { sys::nvlist_add_nvlist(list.as_ptr(), name.as_ptr(), self.as_ptr()) };
        check(rc, "nvlist_add_nvlist", name)
    }
}

impl ToNvValue for NvList {
    fn add_to_nvlist(&self, list: &mut NvListRef, name: &CStr) -> Result<(), NvListError> {
        self.deref().add_to_nvlist(list, name)
    }
}

/// Adds an nvlist array from list pointers.
fn add_nvlist_array(
    list: &mut NvListRef,
    name: &CStr,
    lists: &[&NvListRef],
) -> Result<(), NvListError> {
    let n = array_len(lists.len(), "nvlist_add_nvlist_array", name)?;
    let mut ptrs: Vec<*mut nvlist_t> = lists.iter().map(|l| l.as_ptr()).collect();
    // SAFETY: `list` is a valid list borrowed mutably; `name` is a C string; `ptrs` holds
    // `n` valid lists distinct from `list` (borrow rules), which libnvpair copies without
    // taking ownership.
    let rc =
        unsafe { sys::nvlist_add_nvlist_array(list.as_ptr(), name.as_ptr(), ptrs.as_mut_ptr(), n) };
    check(rc, "nvlist_add_nvlist_array", name)
}

impl ToNvValue for [&NvListRef] {
    fn add_to_nvlist(&self, list: &mut NvListRef, name: &CStr) -> Result<(), NvListError> {
        add_nvlist_array(list, name, self)
    }
}

impl ToNvValue for [NvList] {
    fn add_to_nvlist(&self, list: &mut NvListRef, name: &CStr) -> Result<(), NvListError> {
        let refs: Vec<&NvListRef> = self.iter().map(|l| &**l).collect();
        add_nvlist_array(list, name, &refs)
    }
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn new_list_is_empty() {
        let nv = NvList::new();
        assert!(nv.is_empty());
        assert_eq!(nv.len(), 0);
        assert_eq!(nv.iter().count(), 0);
        assert_eq!(format!("{nv:?}"), "{}");
    }

    /// A pair of every scalar type, and a flag.
    fn scalars() -> NvList {
        let mut nv = NvList::new();
        nv.insert("b", &true).unwrap();
        nv.insert("i8", &-8i8).unwrap();
        nv.insert("u8", &8u8).unwrap();
        nv.insert("i16", &-16i16).unwrap();
        nv.insert("u16", &16u16).unwrap();
        nv.insert("i32", &-32i32).unwrap();
        nv.insert("u32", &32u32).unwrap();
        nv.insert("i64", &i64::MIN).unwrap();
        nv.insert("u64", &u64::MAX).unwrap();
        nv.insert("f64", &1.5f64).unwrap();
        nv.insert_byte("byte", 0xab).unwrap();
        nv.insert_hrtime("hr", 123_456_789).unwrap();
        nv.insert_flag("flag").unwrap();
        nv
    }

    #[test]
    fn scalar_round_trip() {
        let nv = scalars();
        assert_eq!(nv.get("b"), Some(Value::BooleanValue(true)));
        assert_eq!(nv.get("i8"), Some(Value::Int8(-8)));
        assert_eq!(nv.get("u8"), Some(Value::UInt8(8)));
        assert_eq!(nv.get("i16"), Some(Value::Int16(-16)));
        assert_eq!(nv.get("u16"), Some(Value::UInt16(16)));
        assert_eq!(nv.get("i32"), Some(Value::Int32(-32)));
        assert_eq!(nv.get("u32"), Some(Value::UInt32(32)));
        assert_eq!(nv.get("i64"), Some(Value::Int64(i64::MIN)));
        assert_eq!(nv.get("u64"), Some(Value::UInt64(u64::MAX)));
        assert_eq!(nv.get("f64"), Some(Value::Double(1.5)));
        assert_eq!(nv.get("byte"), Some(Value::Byte(0xab)));
        assert_eq!(nv.get("hr"), Some(Value::HrTime(123_456_789)));
        assert_eq!(nv.get("flag"), Some(Value::Boolean));
        assert_eq!(nv.len(), 13);
    }

    #[test]
    fn typed_getters() {
        let mut nv = NvList::new();
        nv.insert("u64", &7u64).unwrap();
        nv.insert("i64", &-7i64).unwrap();
        nv.insert("u32", &5u32).unwrap();
        nv.insert("i32", &-5i32).unwrap();
        nv.insert("s", "hello").unwrap();
        nv.insert("yes", &true).unwrap();
        nv.insert("no", &false).unwrap();
        assert_eq!(nv.get_u64("u64"), Some(7));
        assert_eq!(nv.get_i64("i64"), Some(-7));
        assert_eq!(nv.get_u32("u32"), Some(5));
        assert_eq!(nv.get_i32("i32"), Some(-5));
        assert_eq!(nv.get_str("s"), Some("hello"));
        assert_eq!(nv.get_cstr("s"), Some(c"hello"));
        assert_eq!(nv.get_bool("yes"), Some(true));
        assert_eq!(nv.get_bool("no"), Some(false));
    }

    #[test]
    fn missing_and_wrong_types() {
        let mut nv = NvList::new();
        nv.insert("u64", &7u64).unwrap();
        nv.insert("s", "x").unwrap();
        nv.insert_flag("flag").unwrap();
        assert_eq!(nv.get("nope"), None);
        assert_eq!(nv.get_u64("nope"), None);
        assert!(!nv.contains("nope"));
        assert!(nv.contains("flag"));
        assert_eq!(nv.get_u64("s"), None);
        assert_eq!(nv.get_i64("u64"), None);
        assert_eq!(nv.get_u32("u64"), None);
        assert_eq!(nv.get_str("u64"), None);
        assert_eq!(nv.get_cstr("u64"), None);
        assert_eq!(nv.get_nvlist("u64"), None);
        assert_eq!(nv.get_bool("flag"), None);
        assert_eq!(nv.get("a\0b"), None);
        assert!(!nv.contains("a\0b"));
    }

    #[test]
    fn lookups_match_names_exactly() {
        let mut nv = NvList::new();
        nv.insert("fs@a", &1u64).unwrap();
        nv.insert("arr", &[1u64, 2]).unwrap();
        nv.insert("a b", &2u64).unwrap();
        nv.insert_flag(" lead").unwrap();
        // nvlist_lookup_nvpair would trim blanks and read "[0]" as an index.
        for near in [
            "fs@a ", "fs@a[0]", " fs@a", "fs@a\t", "fs@", "arr[0]", "arr [1]",
        ] {
            assert_eq!(nv.get(near), None, "{near:?}");
            assert!(!nv.contains(near), "{near:?}");
        }
        assert_eq!(nv.get_u64("fs@a"), Some(1));
        assert_eq!(nv.get_u64("a b"), Some(2));
        assert_eq!(nv.get_u64("a  b"), None);
        assert!(nv.contains(" lead") && !nv.contains("lead"));
        assert_eq!(nv.get(""), None);
    }

    #[test]
    fn non_utf8_string_value() {
        let mut nv = NvList::new();
        let raw = CString::new(vec![0xffu8, 0xfe]).unwrap();
        nv.insert("bin", raw.as_c_str()).unwrap();
        assert_eq!(nv.get_str("bin"), None);
        assert_eq!(nv.get_cstr("bin"), Some(raw.as_c_str()));
    }

    #[test]
    fn strings_round_trip() {
        let mut nv = NvList::new();
        nv.insert("a", "tank/fs@snap").unwrap();
        nv.insert("b", &String::from("with space")).unwrap();
        nv.insert("c", "").unwrap();
        nv.insert("d", &CString::new("c-string").unwrap()).unwrap();
        nv.insert("ü", "ünïcode").unwrap();
        assert_eq!(nv.get_str("a"), Some("tank/fs@snap"));
        assert_eq!(nv.get_str("b"), Some("with space"));
        assert_eq!(nv.get_str("c"), Some(""));
        assert_eq!(nv.get_str("d"), Some("c-string"));
        assert_eq!(nv.get_str("ü"), Some("ünïcode"));
    }

    #[test]
    fn nested_three_levels() {
        let mut l3 = NvList::new();
        l3.insert("leaf", &3u64).unwrap();
        let mut l2 = NvList::new();
        l2.insert("l3", &l3).unwrap();
        l2.insert("two", &2u64).unwrap();
        let mut l1 = NvList::new();
        l1.insert("l2", &*l2).unwrap();
        drop(l2);
        drop(l3);
        let got = l1
            .get_nvlist("l2")
            .and_then(|l| l.get_nvlist("l3"))
            .and_then(|l| l.get_u64("leaf"));
        assert_eq!(got, Some(3));
        assert_eq!(l1.get_nvlist("l2").unwrap().get_u64("two"), Some(2));
        assert_eq!(
            format!("{l1:?}"),
            r#"{"l2": NvList({"l3": NvList({"leaf": UInt64(3)}), "two": UInt64(2)})}"#
        );
    }

    #[test]
    fn nested_is_a_copy() {
        let mut child = NvList::new();
        child.insert("x", &1u64).unwrap();
        let mut parent = NvList::new();
        parent.insert("child", &child).unwrap();
        child.insert("x", &2u64).unwrap();
        assert_eq!(parent.get_nvlist("child").unwrap().get_u64("x"), Some(1));
    }

    #[test]
    fn borrowed_nested_then_owned_copy_outlives_parent() {
        let mut parent = NvList::new();
        let mut child = NvList::new();
        child.insert("k", "v").unwrap();
        parent.insert("c", &child).unwrap();
        let borrowed: &NvListRef = parent.get_nvlist("c").unwrap();
        assert_eq!(borrowed.get_str("k"), Some("v"));
        let owned: NvList = borrowed.to_owned();
        drop(parent);
        assert_eq!(owned.get_str("k"), Some("v"));
    }

    #[test]
    fn numeric_arrays_round_trip() {
        let mut nv = NvList::new();
        nv.insert("u64", &[1u64, 2, u64::MAX]).unwrap();
        nv.insert("i64", &vec![-1i64, 0, 1]).unwrap();
        nv.insert("u32", &[3u32, 4][..]).unwrap();
        nv.insert("i32", &[-3i32]).unwrap();
        nv.insert("u16", &[16u16, 17]).unwrap();
        nv.insert("i16", &[-16i16]).unwrap();
        nv.insert("u8", &[0u8, 255]).unwrap();
        nv.insert("i8", &[-128i8, 127]).unwrap();
        nv.insert("bool", &[true, false, true]).unwrap();
        nv.insert_byte_array("bytes", b"\x00\x01zfs").unwrap();
        assert_eq!(nv.get("u64"), Some(Value::UInt64Array(&[1, 2, u64::MAX])));
        assert_eq!(nv.get("i64"), Some(Value::Int64Array(&[-1, 0, 1])));
        assert_eq!(nv.get("u32"), Some(Value::UInt32Array(&[3, 4])));
        assert_eq!(nv.get("i32"), Some(Value::Int32Array(&[-3])));
        assert_eq!(nv.get("u16"), Some(Value::UInt16Array(&[16, 17])));
        assert_eq!(nv.get("i16"), Some(Value::Int16Array(&[-16])));
        assert_eq!(nv.get("u8"), Some(Value::UInt8Array(&[0, 255])));
        assert_eq!(nv.get("i8"), Some(Value::Int8Array(&[-128, 127])));
        assert_eq!(
            nv.get("bool"),
            Some(Value::BooleanArray(vec![true, false, true]))
        );
        assert_eq!(nv.get("bytes"), Some(Value::ByteArray(b"\x00\x01zfs")));
    }

    #[test]
    fn empty_arrays() {
        let mut nv = NvList::new();
        nv.insert("u64", &Vec::<u64>::new()).unwrap();
        nv.insert("s", &Vec::<&str>::new()).unwrap();
        nv.insert("l", &Vec::<NvList>::new()).unwrap();
        nv.insert("b", &Vec::<bool>::new()).unwrap();
        assert_eq!(nv.get("u64"), Some(Value::UInt64Array(&[])));
        assert_eq!(nv.get("s"), Some(Value::StringArray(vec![])));
        assert_eq!(nv.get("l"), Some(Value::NvListArray(vec![])));
        assert_eq!(nv.get("b"), Some(Value::BooleanArray(vec![])));
    }

    #[test]
    fn string_arrays_round_trip() {
        let mut nv = NvList::new();
        nv.insert("strs", &["a", "bc", ""]).unwrap();
        nv.insert("owned", &vec![String::from("x"), String::from("y z")])
            .unwrap();
        nv.insert("cstrs", &[c"p", c"q"]).unwrap();
        assert_eq!(
            nv.get("strs"),
            Some(Value::StringArray(vec![c"a", c"bc", c""]))
        );
        assert_eq!(
            nv.get("owned"),
            Some(Value::StringArray(vec![c"x", c"y z"]))
        );
        assert_eq!(nv.get("cstrs"), Some(Value::StringArray(vec![c"p", c"q"])));
    }

    #[test]
    fn nvlist_arrays_round_trip() {
        let mut a = NvList::new();
        a.insert("n", &1u64).unwrap();
        let mut b = NvList::new();
        b.insert("n", &2u64).unwrap();
        let mut nv = NvList::new();
        nv.insert("owned", &vec![a.clone(), b.clone()]).unwrap();
        nv.insert("refs", &[&*a, &*b]).unwrap();
        drop(a);
        drop(b);
        for key in ["owned", "refs"] {
            let Some(Value::NvListArray(lists)) = nv.get(key) else {
                panic!("{key} is not an nvlist array");
            };
            let ns: Vec<_> = lists.iter().map(|l| l.get_u64("n")).collect();
            assert_eq!(ns, [Some(1), Some(2)]);
        }
    }

    #[test]
    fn iteration_in_insertion_order() {
        let mut nv = NvList::new();
        let names = ["zeta", "alpha", "mid", "beta"];
        for (i, n) in names.iter().enumerate() {
            nv.insert(n, &(i as u64)).unwrap();
        }
        let got: Vec<(&str, u64)> = nv.iter().map(|(k, v)| (k, v.as_u64().unwrap())).collect();
        assert_eq!(got, [("zeta", 0), ("alpha", 1), ("mid", 2), ("beta", 3)]);
        let mut seen = Vec::new();
        for (k, _) in &*nv {
            seen.push(k);
        }
        for (k, _) in &nv {
            seen.push(k);
        }
        assert_eq!(seen.len(), 8);
        let cnames: Vec<&CStr> = nv.iter_cstr().map(|(k, _)| k).collect();
        assert_eq!(cnames, [c"zeta", c"alpha", c"mid", c"beta"]);
    }

    #[test]
    fn overwrite_keeps_one_entry() {
        let mut nv = NvList::new();
        nv.insert("k", &1u64).unwrap();
        nv.insert("k", &2u64).unwrap();
        assert_eq!(nv.len(), 1);
        assert_eq!(nv.get_u64("k"), Some(2));
        // Different type, same name: still replaced.
        nv.insert("k", "str").unwrap();
        assert_eq!(nv.len(), 1);
        assert_eq!(nv.get_str("k"), Some("str"));
    }

    #[test]
    fn remove_pairs() {
        let mut nv = NvList::new();
        nv.insert("a", &1u64).unwrap();
        nv.insert("b", &2u64).unwrap();
        assert!(nv.remove("a"));
        assert!(!nv.remove("a"));
        assert!(!nv.remove("x\0y"));
        assert_eq!(nv.len(), 1);
        assert!(!nv.contains("a"));
        assert!(nv.remove("b"));
        assert!(nv.is_empty());
    }

    fn sample() -> NvList {
        let mut inner = NvList::new();
        inner.insert("leaf", "v").unwrap();
        let mut nv = NvList::new();
        nv.insert("u64", &42u64).unwrap();
        nv.insert("i32", &-1i32).unwrap();
        nv.insert("s", "tank/fs").unwrap();
        nv.insert("b", &true).unwrap();
        nv.insert_flag("flag").unwrap();
        nv.insert("arr", &[1u64, 2, 3]).unwrap();
        nv.insert("strs", &["x", "y"]).unwrap();
        nv.insert("inner", &inner).unwrap();
        nv.insert("inners", &[inner.clone(), inner]).unwrap();
        nv
    }

    /// A list with every data type, nested lists and arrays (some empty).
    pub(crate) fn every_type() -> NvList {
        let mut leaf = NvList::new();
        leaf.insert("leaf", "v").unwrap();
        let mut mid = NvList::new();
        mid.insert("l", &leaf).unwrap();
        mid.insert("ls", &[leaf.clone(), NvList::new()]).unwrap();
        let mut n = scalars();
        n.insert("s", "tank/fs@a b").unwrap();
        n.insert("empty", "").unwrap();
        n.insert("bools", &[true, false]).unwrap();
        n.insert_byte_array("bytes", b"abc").unwrap();
        n.insert("i8s", &[-1i8, 1]).unwrap();
        n.insert("u8s", &[1u8, 2, 3]).unwrap();
        n.insert("i16s", &[-1i16]).unwrap();
        n.insert("u16s", &[1u16, 2]).unwrap();
        n.insert("i32s", &[-1i32]).unwrap();
        n.insert("u32s", &[1u32, 2, 3]).unwrap();
        n.insert("i64s", &[-1i64]).unwrap();
        n.insert("u64s", &[1u64, 2]).unwrap();
        n.insert("no u64s", &Vec::<u64>::new()).unwrap();
        n.insert("strs", &["a", "", "bcdefghij"]).unwrap();
        n.insert("no strs", &Vec::<&str>::new()).unwrap();
        n.insert("mid", &mid).unwrap();
        n.insert("no lists", &Vec::<NvList>::new()).unwrap();
        n
    }

    #[test]
    fn insert_value_copies_every_type() {
        let src = every_type();
        let mut dst = NvList::new();
        for (k, v) in src.iter() {
            dst.insert_value(k, &v).unwrap();
        }
        assert_eq!(dst, src);
        assert!(dst.insert_value("x", &Value::Unknown(99)).is_err());
    }

    #[test]
    fn pack_unpack_native() {
        let nv = sample();
        let buf = nv.pack_with(Encoding::Native).unwrap();
        assert!(!buf.is_empty());
        assert_eq!(buf, nv.pack().unwrap());
        let back = NvList::unpack(&buf).unwrap();
        assert_eq!(back, nv);
        assert_eq!(back.get_nvlist("inner").unwrap().get_str("leaf"), Some("v"));
    }

    #[test]
    fn pack_unpack_xdr() {
        let nv = sample();
        let buf = nv.pack_with(Encoding::Xdr).unwrap();
        let back = NvList::unpack(&buf).unwrap();
        assert_eq!(back, nv);
        assert_ne!(buf, nv.pack_with(Encoding::Native).unwrap());
    }

    #[test]
    fn unpack_unaligned_input() {
        let nv = sample();
        let buf = nv.pack_with(Encoding::Native).unwrap();
        let mut shifted = vec![0u8];
        shifted.extend_from_slice(&buf);
        let back = NvList::unpack(&shifted[1..]).unwrap();
        assert_eq!(back, nv);
    }

    #[test]
    fn unpack_garbage_fails() {
        let err = NvList::unpack(b"definitely not an nvlist").unwrap_err();
        assert!(
            matches!(err, NvListError::Malformed { offset: 0, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("unknown encoding 100"), "{err}");
        assert!(NvList::unpack(&[]).is_err());
    }

    #[test]
    fn clone_is_independent() {
        let mut a = sample();
        let b = a.clone();
        assert_eq!(a, b);
        a.insert("u64", &0u64).unwrap();
        a.remove("s");
        assert_eq!(b.get_u64("u64"), Some(42));
        assert_eq!(b.get_str("s"), Some("tank/fs"));
        assert_ne!(a, b);
        let c = b.try_clone().unwrap();
        drop(b);
        assert_eq!(c.get_str("s"), Some("tank/fs"));
    }

    #[test]
    fn raw_round_trip() {
        let mut nv = NvList::new();
        nv.insert("k", &1u64).unwrap();
        let p = nv.into_raw();
        // SAFETY: `p` came from `into_raw`, so we own it.
        let back = unsafe { NvList::from_raw(p) }.unwrap();
        assert_eq!(back.as_ptr(), p);
        assert_eq!(back.get_u64("k"), Some(1));
        // SAFETY: `back` is alive for the borrow's duration.
        let r = unsafe { NvListRef::from_ptr(back.as_ptr()) };
        assert_eq!(r.as_ptr(), p);
        assert_eq!(r.get_u64("k"), Some(1));
        // SAFETY: NULL is allowed and yields None.
        assert!(unsafe { NvList::from_raw(ptr::null_mut()) }.is_none());
    }

    #[test]
    fn mutate_through_from_ptr_mut() {
        let nv = NvList::new();
        {
            // SAFETY: `nv` is alive and not otherwise used during the borrow.
            let r = unsafe { NvListRef::from_ptr_mut(nv.as_ptr()) };
            r.insert("k", &5u64).unwrap();
        }
        assert_eq!(nv.get_u64("k"), Some(5));
    }

    #[test]
    fn interior_nul_errors() {
        let mut nv = NvList::new();
        let err = nv.insert("a\0b", &1u64).unwrap_err();
        assert_eq!(
            err,
            NvListError::InteriorNul {
                name: "a\0b".into()
            }
        );
        let err = nv.insert("k", "v\0w").unwrap_err();
        assert_eq!(err, NvListError::InteriorNul { name: "k".into() });
        let err = nv.insert("arr", &["ok", "bad\0"]).unwrap_err();
        assert_eq!(err, NvListError::InteriorNul { name: "arr".into() });
        assert!(nv.insert_flag("f\0").is_err());
        assert!(nv.is_empty());
        assert!(err.to_string().contains("interior NUL"));
    }

    #[test]
    fn errno_message_format() {
        let err = NvListError::Errno {
            op: "nvlist_add_uint64",
            name: "guid".into(),
            errno: libc::ENOMEM,
        };
        assert_eq!(
            err.to_string(),
            format!(
                "nvlist_add_uint64 of \"guid\" failed: {} (errno 12)",
                errno_words(libc::ENOMEM)
            )
        );
        assert!(!errno_words(libc::ENOMEM).contains("os error"));
        let err = NvListError::Errno {
            op: "nvlist_pack",
            name: String::new(),
            errno: libc::EINVAL,
        };
        assert!(err.to_string().starts_with("nvlist_pack failed: "));
    }

    #[test]
    fn value_helpers() {
        let mut nv = NvList::new();
        nv.insert("u", &1u64).unwrap();
        nv.insert("s", "x").unwrap();
        nv.insert("l", &NvList::new()).unwrap();
        let u = nv.get("u").unwrap();
        assert_eq!(u.as_u64(), Some(1));
        assert_eq!(u.as_str(), None);
        assert_eq!(u.as_nvlist(), None);
        assert_eq!(nv.get("s").unwrap().as_str(), Some("x"));
        assert!(nv.get("l").unwrap().as_nvlist().unwrap().is_empty());
    }

    #[test]
    fn debug_is_map_like() {
        let mut nv = NvList::new();
        nv.insert("guid", &5u64).unwrap();
        nv.insert("name", "tank").unwrap();
        assert_eq!(
            format!("{nv:?}"),
            r#"{"guid": UInt64(5), "name": String("tank")}"#
        );
    }

    #[test]
    fn owned_list_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<NvList>();
        let mut nv = NvList::new();
        nv.insert("k", &1u64).unwrap();
        let got = std::thread::spawn(move || nv.get_u64("k")).join().unwrap();
        assert_eq!(got, Some(1));
    }
}
