//! Setting a native dataset property, such as `readonly`, through libzfs.
//!
//! libzfs_core has no call that sets a property (OpenZFS 2.1 to 2.3), and a channel
//! program's `zfs.sync.set_prop` takes user properties only. libzfs, the library
//! behind the `zfs` command, does it (`zfs_prop_set`: the value checked, the ioctl, a
//! filesystem remounted when `readonly` changes). It is not linked: its ABI changes
//! between releases (`libzfs.so.4` in 2.1, `.so.6` in 2.2 and 2.3) and only this
//! rarely used call needs it, so it is loaded on first use, and only six of its
//! functions are used, whose C signatures have stayed the same across those releases.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::OnceLock;

use crate::error::{Error, Op};
use crate::{DatasetName, PropertyError, Zfs};

/// `ZFS_TYPE_FILESYSTEM | ZFS_TYPE_VOLUME` (sys/fs/zfs.h; stable since the first
/// OpenZFS release, as the on-disk dataset types are).
const FILESYSTEM_OR_VOLUME: c_int = 1 | 4;

/// The libraries tried, newest first.
const LIBRARIES: [&str; 3] = ["libzfs.so.6", "libzfs.so.4", "libzfs.so"];

type Handle = *mut c_void;
type Init = unsafe extern "C" fn() -> Handle;
type Release = unsafe extern "C" fn(Handle);
type PrintOnError = unsafe extern "C" fn(Handle, c_int);
type Describe = unsafe extern "C" fn(Handle) -> *const c_char;
type Open = unsafe extern "C" fn(Handle, *const c_char, c_int) -> Handle;
type PropSet = unsafe extern "C" fn(Handle, *const c_char, *const c_char) -> c_int;

/// The functions of libzfs this module calls.
struct Libzfs {
    init: Init,
    fini: Release,
    print_on_error: PrintOnError,
    error_description: Describe,
    open: Open,
    close: Release,
    prop_set: PropSet,
}

static LIBZFS: OnceLock<Result<Libzfs, String>> = OnceLock::new();

/// Loads libzfs once; the error says which libraries were tried or which function
/// was missing.
fn libzfs() -> Result<&'static Libzfs, String> {
    LIBZFS.get_or_init(load).as_ref().map_err(Clone::clone)
}

fn load() -> Result<Libzfs, String> {
    let lib = LIBRARIES
        .iter()
        .find_map(|name| {
            let c = CString::new(*name).ok()?;
            // SAFETY: a valid C string; dlopen runs libzfs's initialisers, which only
            // set up its own state. The handle is never closed: the functions below
            // stay valid for the life of the process.
            let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
            (!h.is_null()).then_some(h)
        })
        .ok_or_else(|| format!("libzfs is not installed (tried {})", LIBRARIES.join(", ")))?;
    let sym = |name: &str| -> Result<*mut c_void, String> {
        let c = CString::new(name).map_err(|e| e.to_string())?;
        // SAFETY: a live handle from dlopen and a valid C string.
        let p = unsafe { libc::dlsym(lib, c.as_ptr()) };
        match p.is_null() {
            true => Err(format!("libzfs has no {name}")),
            false => Ok(p),
        }
    };
    // SAFETY: each symbol is the libzfs function of that name, whose C signature (in
    // libzfs.h of OpenZFS 2.1 to 2.3) is the function pointer type it becomes:
    // libzfs_init(void), libzfs_fini(hdl), libzfs_print_on_error(hdl, boolean_t),
    // libzfs_error_description(hdl), zfs_open(hdl, name, types), zfs_close(zhp),
    // zfs_prop_set(zhp, name, value). boolean_t is a C enum, passed as an int.
    unsafe {
        Ok(Libzfs {
            init: std::mem::transmute::<*mut c_void, Init>(sym("libzfs_init")?),
            fini: std::mem::transmute::<*mut c_void, Release>(sym("libzfs_fini")?),
            print_on_error: std::mem::transmute::<*mut c_void, PrintOnError>(sym(
                "libzfs_print_on_error",
            )?),
            error_description: std::mem::transmute::<*mut c_void, Describe>(sym(
                "libzfs_error_description",
            )?),
            open: std::mem::transmute::<*mut c_void, Open>(sym("zfs_open")?),
            close: std::mem::transmute::<*mut c_void, Release>(sym("zfs_close")?),
            prop_set: std::mem::transmute::<*mut c_void, PropSet>(sym("zfs_prop_set")?),
        })
    }
}

impl Zfs {
    /// Sets a native property of a filesystem or volume, as `zfs set` does (a
    /// mounted filesystem is remounted when its `readonly` changes), through libzfs,
    /// loaded on first use (see the module docs). The property and value are checked
    /// against the property table first.
    pub fn set_property(
        &self,
        dataset: &DatasetName,
        name: &str,
        value: &str,
    ) -> Result<(), Error> {
        crate::props::parse_property(name, value)?;
        let fail = |message: String| Error::Native {
            op: Op::SetProperty,
            name: dataset.to_string(),
            message: format!("{name}={value}: {message}"),
        };
        let lib = libzfs().map_err(fail)?;
        let c = |s: &str| {
            CString::new(s).map_err(|_| PropertyError::new(name, "a NUL byte in the value"))
        };
        let (ds, prop, val) = (dataset.to_cstring(), c(name)?, c(value)?);
        // SAFETY: the functions were resolved from libzfs with these signatures;
        // every pointer passed is a live C string or a handle this block obtained and
        // has not released. The handles are released exactly once, in reverse order.
        unsafe {
            let h = (lib.init)();
            if h.is_null() {
                return Err(fail(
                    "libzfs_init failed (is the zfs module loaded?)".into(),
                ));
            }
            (lib.print_on_error)(h, 0);
            let describe = |h| {
                let d = (lib.error_description)(h);
                match d.is_null() {
                    true => "unknown error".to_string(),
                    false => CStr::from_ptr(d).to_string_lossy().into_owned(),
                }
            };
            let zh = (lib.open)(h, ds.as_ptr(), FILESYSTEM_OR_VOLUME);
            let result = if zh.is_null() {
                Err(fail(describe(h)))
            } else {
                let rc = (lib.prop_set)(zh, prop.as_ptr(), val.as_ptr());
                let r = match rc {
                    0 => Ok(()),
                    _ => Err(fail(describe(h))),
                };
                (lib.close)(zh);
                r
            };
            (lib.fini)(h);
            result
        }
    }
}
