//! Smoke tests of the raw bindings against the real kernel module: init, exists,
//! snapshot, send into a pipe, receive from it. Only libzfs-sys and nvpair-sys here.
use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::ptr;

use libzfs_sys as sys;
use nvpair_sys as nv;
use zrep_tests::TestPool;

fn init() {
    // SAFETY: no preconditions; reference counted.
    let rc = unsafe { sys::libzfs_core_init() };
    assert_eq!(rc, 0, "libzfs_core_init failed: errno {rc}");
}

fn exists(name: &str) -> bool {
    let c = CString::new(name).unwrap();
    // SAFETY: valid C string.
    unsafe { sys::lzc_exists(c.as_ptr()) == nv::boolean_t::B_TRUE }
}

fn snapshot(name: &str) -> i32 {
    let c = CString::new(name).unwrap();
    // SAFETY: we own the list and free it once; errlist is freed if set.
    unsafe {
        let mut list = ptr::null_mut();
        assert_eq!(nv::nvlist_alloc(&mut list, 1, 0), 0);
        assert_eq!(nv::nvlist_add_boolean(list, c.as_ptr()), 0);
        let mut errs = ptr::null_mut();
        let rc = sys::lzc_snapshot(list, ptr::null_mut(), &mut errs);
        nv::nvlist_free(list);
        if !errs.is_null() {
            nv::nvlist_free(errs);
        }
        rc
    }
}

#[test]
fn init_and_exists() {
    let pool = TestPool::new();
    init();
    assert!(exists(pool.name()));
    assert!(!exists(&pool.ds("nope")));
}

#[test]
fn snapshot_send_receive_through_a_pipe() {
    let pool = TestPool::new();
    init();
    let fs = pool.create("src");
    zrep_tests::write_random(&pool.path("src/data"), 1 << 20, 1);
    let snap = format!("{fs}@one");
    assert_eq!(snapshot(&snap), 0);
    assert!(exists(&snap));
    assert_ne!(
        snapshot(&snap),
        0,
        "a second snapshot of the same name must fail"
    );

    let (reader, writer) = os_pipe::pipe().unwrap();
    let c_snap = CString::new(snap.clone()).unwrap();
    let sender = std::thread::spawn(move || {
        // SAFETY: valid C string; the writer stays open for the call.
        let rc = unsafe { sys::lzc_send(c_snap.as_ptr(), ptr::null(), writer.as_raw_fd(), 0) };
        drop(writer);
        rc
    });
    let target = CString::new(format!("{}@one", pool.ds("dst"))).unwrap();
    // SAFETY: valid C string; NULL props and origin; the reader stays open.
    let rc = unsafe {
        sys::lzc_receive(
            target.as_ptr(),
            ptr::null_mut(),
            ptr::null(),
            nv::boolean_t::B_FALSE,
            nv::boolean_t::B_FALSE,
            reader.as_raw_fd(),
        )
    };
    assert_eq!(rc, 0, "lzc_receive failed: errno {rc}");
    assert_eq!(sender.join().unwrap(), 0);
    assert!(exists(&format!("{}@one", pool.ds("dst"))));
    zrep_tests::mount(&pool.ds("dst"));
    assert_eq!(
        zrep_tests::tree_digest(&pool.path("src")),
        zrep_tests::tree_digest(&pool.path("dst"))
    );
}
