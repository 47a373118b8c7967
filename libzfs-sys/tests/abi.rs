//! Host-side ABI checks (no ZFS kernel module needed): the constants and types the
//! safe crate relies on have the values and sizes of the C headers, and the library
//! links (calling nothing that needs /dev/zfs).
use libzfs_sys as sys;
use std::mem::size_of;

#[test]
fn send_flags_match_lzc_send_flags() {
    assert_eq!(sys::LZC_SEND_FLAG_EMBED_DATA, 1);
    assert_eq!(sys::LZC_SEND_FLAG_LARGE_BLOCK, 2);
    assert_eq!(sys::LZC_SEND_FLAG_COMPRESS, 4);
    assert_eq!(sys::LZC_SEND_FLAG_RAW, 8);
}

#[test]
fn enums_are_c_int_sized() {
    assert_eq!(size_of::<sys::lzc_send_flags>(), 4);
    assert_eq!(size_of::<sys::lzc_dataset_type>(), 4);
    assert_eq!(size_of::<sys::boolean_t::Type>(), 4);
    assert_eq!(sys::LZC_DATSET_TYPE_ZFS, 2);
    assert_eq!(sys::LZC_DATSET_TYPE_ZVOL, 3);
}

#[test]
fn zfs_errno_values_start_at_1024() {
    assert_eq!(sys::ZFS_ERR_CHECKPOINT_EXISTS, 1024);
    assert_eq!(sys::ZFS_ERR_STREAM_TRUNCATED, 1040);
    assert_eq!(sys::ZFS_MAX_DATASET_NAME_LEN, 256);
}

#[test]
fn nvlist_type_is_shared_with_nvpair_sys() {
    // The same type flows through both crates: this only compiles if it is one type.
    fn takes(_: *mut nvpair_sys::nvlist_t) {}
    let p: *mut sys::nvlist_t = std::ptr::null_mut();
    takes(p);
}

#[test]
fn library_links_and_symbols_resolve() {
    // Taking the address forces the dynamic linker to resolve the symbols.
    let init: unsafe extern "C" fn() -> i32 = sys::libzfs_core_init;
    let fini: unsafe extern "C" fn() = sys::libzfs_core_fini;
    assert!(init as *const () != fini as *const ());
    assert!(!sys::OPENZFS_HEADERS_VERSION.is_empty());
}

#[test]
fn newer_functions_are_found_at_run_time() {
    // The host's library is at least as new as the headers: what they bind is found.
    #[cfg(openzfs_2_3)]
    assert!(sys::runtime::lzc_get_props().is_some());
    // Looked up once, then the same answer.
    assert_eq!(
        sys::runtime::lzc_get_props().is_some(),
        sys::runtime::lzc_get_props().is_some()
    );
}
