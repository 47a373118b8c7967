//! libzfs against real pools: encrypted filesystems, keys and raw sends.
use libzfs::{ErrorKind, NvList, ReceiveOptions, SendFlags};
use zrep_tests::*;

const KEY: [u8; 32] = [7u8; 32];
const KEY2: [u8; 32] = [9u8; 32];

/// Raw send flags (`-w`).
fn raw() -> SendFlags {
    SendFlags {
        raw: true,
        ..Default::default()
    }
}

/// An encrypted `pool/rel` (key [`KEY`] loaded) with `secret` (200 kB) in `@s1`,
/// unmounted.
fn with_secret<'p>(pool: &'p TestPool, rel: &str) -> Fs<'p> {
    let fs = pool.encrypted_fs(rel, &KEY);
    fs.mount().write("secret", 200_000, 5).snap("s1");
    zrep_tests::zfs(&["unmount", fs.name()]);
    fs
}

/// What change_key needs besides the new raw key: its keyformat and keylocation.
fn new_key_props() -> NvList {
    let mut props = NvList::new();
    props.insert("keyformat", &1u64).unwrap();
    props.insert("keylocation", "prompt").unwrap();
    props
}

#[test]
fn create_encrypted_fs() {
    let pool = TestPool::new();
    let fs = pool.encrypted_fs("enc", &KEY);
    let fs = fs.name();
    assert_eq!(zfs_get("encryption", fs), "aes-256-gcm");
    assert_eq!(zfs_get("keyformat", fs), "raw");
    assert_eq!(zfs_get("keystatus", fs), "available");
    assert_eq!(zfs_get("encryptionroot", fs), fs);
    // A child inherits the encryption.
    let child = pool.lzc_fs("enc/child");
    assert_eq!(zfs_get("encryptionroot", child.name()), fs);
    assert_eq!(zfs_get("encryption", child.name()), "aes-256-gcm");
}

#[test]
fn list_reports_encryption() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = dn(pool.encrypted_fs("enc", &KEY).name());
    let d = zfs.dataset(&fs).unwrap().unwrap();
    // Channel programs cannot read the cipher (zfs.get_prop says "off"): the listing
    // reports "on", decided from keystatus.
    assert_eq!(d.encryption, "on");
    // Nor `encryptionroot`: channel programs do not see it.
    assert_eq!(d.encryption_root, None);
    assert_eq!(d.key_status.as_deref(), Some("available"));
    zfs.unload_key(&fs).unwrap();
    let d = zfs.dataset(&fs).unwrap().unwrap();
    assert_eq!(d.key_status.as_deref(), Some("unavailable"));
}

/// A key's life: unloading makes it unavailable, a no-op load only checks it, a load
/// makes it available again; after a change only the new key loads.
#[test]
fn unload_check_load_and_change_key() {
    let pool = TestPool::new();
    let zfs = lzc();
    let enc = pool.encrypted_fs("enc", &KEY);
    let (fs, status) = (dn(enc.name()), || zfs_get("keystatus", enc.name()));
    zfs.unload_key(&fs).unwrap();
    assert_eq!(status(), "unavailable");
    zfs.load_key(&fs, &KEY, true).unwrap();
    assert_eq!(status(), "unavailable");
    zfs.load_key(&fs, &KEY, false).unwrap();
    assert_eq!(status(), "available");
    zfs.change_key(&fs, Some(&new_key_props()), &KEY2).unwrap();
    zfs.unload_key(&fs).unwrap();
    expect_kind(zfs.load_key(&fs, &KEY, false), ErrorKind::KeyMissing);
    zfs.load_key(&fs, &KEY2, false).unwrap();
    assert_eq!(status(), "available");
}

/// Key calls that fail, each with its kind, on one pool; they change nothing.
#[test]
fn failing_key_calls_have_their_kind() {
    let pool = TestPool::new();
    let zfs = lzc();
    let loaded = pool.encrypted_fs("loaded", &KEY);
    let unloaded = with_secret(&pool, "unloaded");
    zfs.unload_key(&dn(unloaded.name())).unwrap();
    let mounted = pool.encrypted_fs("mounted", &KEY);
    mounted.mount();
    let plain = pool.lzc_fs("plain");
    let (loaded_fs, unloaded_fs) = (dn(loaded.name()), dn(unloaded.name()));
    let (missing, short) = (dn(&pool.ds("nope")), pool.ds("short"));
    let e = expect_kinds([
        (
            "create with a 5-byte key",
            zfs.create_encrypted(&dn(&short), &raw_key_props(), &[1u8; 5]),
            ErrorKind::InvalidArgument,
            &[],
        ),
        (
            "load the wrong key",
            zfs.load_key(&unloaded_fs, &KEY2, false),
            ErrorKind::KeyMissing,
            &["cannot load key of"],
        ),
        (
            "check the wrong key",
            zfs.load_key(&unloaded_fs, &KEY2, true),
            ErrorKind::KeyMissing,
            &[],
        ),
        (
            "load a loaded key",
            zfs.load_key(&loaded_fs, &KEY, false),
            ErrorKind::AlreadyExists,
            &[],
        ),
        (
            "load the key of a missing filesystem",
            zfs.load_key(&missing, &KEY, false),
            ErrorKind::NotFound,
            &[],
        ),
        (
            "unload an unloaded key",
            zfs.unload_key(&unloaded_fs),
            ErrorKind::KeyMissing,
            &[],
        ),
        (
            "unload the key of a mounted filesystem",
            zfs.unload_key(&dn(mounted.name())),
            ErrorKind::Busy,
            &[],
        ),
        (
            "unload the key of a missing filesystem",
            zfs.unload_key(&missing),
            ErrorKind::NotFound,
            &[],
        ),
        (
            // The kernel says EACCES, as for a key that is not loaded (2.3.2).
            "unload the key of an unencrypted filesystem",
            zfs.unload_key(&dn(plain.name())),
            ErrorKind::KeyMissing,
            &[],
        ),
        (
            // The kernel wants the new key's keyformat (and keylocation).
            "change the key without properties",
            zfs.change_key(&loaded_fs, None, &KEY2),
            ErrorKind::InvalidArgument,
            &[],
        ),
        (
            "change an unloaded key",
            zfs.change_key(&unloaded_fs, Some(&new_key_props()), &KEY2),
            ErrorKind::KeyMissing,
            &[],
        ),
        (
            "change the key of a missing filesystem",
            zfs.change_key(&missing, None, &KEY2),
            ErrorKind::NotFound,
            &[],
        ),
        (
            "send without the key (not raw)",
            send_bytes(&zfs, &unloaded.at("s1"), None, SendFlags::default()).map(drop),
            ErrorKind::KeyMissing,
            &["key"],
        ),
    ]);
    let errno = |what| e[what].errno().map(|n| n.raw());
    assert_eq!(errno("change an unloaded key"), Some(libc::EACCES));
    assert_eq!(
        errno("unload the key of an unencrypted filesystem"),
        Some(libc::EACCES)
    );
    assert!(!zfs.exists(&short));
    assert_eq!(zfs_get("keystatus", unloaded.name()), "unavailable");
    assert_eq!(zfs_get("keystatus", mounted.name()), "available");
    // The key that failed to change is still the key.
    zfs.unload_key(&loaded_fs).unwrap();
    zfs.load_key(&loaded_fs, &KEY, false).unwrap();
}

#[test]
fn raw_send_to_another_pool_without_the_key() {
    let (p1, p2) = (TestPool::new(), TestPool::new());
    let zfs = lzc();
    let (fs, dst) = (with_secret(&p1, "enc"), p2.fs_at("copy"));
    let o = ReceiveOptions::default();
    let (s, r) = send_recv_raw(&zfs, &fs.at("s1"), None, raw(), dst.name(), &o);
    let r = r.unwrap_or_else(|e| panic!("{e:?}"));
    s.unwrap();
    assert!(r.header.is_raw());
    assert_eq!(zfs_get("keystatus", dst.name()), "unavailable");
    assert_eq!(zfs_get("encryption", dst.name()), "aes-256-gcm");
    assert_eq!(
        zfs_get("guid", &dst.at("s1")),
        zfs_get("guid", &fs.at("s1"))
    );
    // The same key opens the copy.
    zfs.load_key(&dn(dst.name()), &KEY, false).unwrap();
    assert_eq!(
        std::fs::read(dst.mount().path("secret")).unwrap(),
        std::fs::read(fs.path(".zfs/snapshot/s1/secret"))
            .unwrap_or_else(|_| std::fs::read(fs.mount().path("secret")).unwrap())
    );
}

/// A raw send, and its estimate, need no key.
#[test]
fn raw_send_works_with_key_unloaded() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = with_secret(&pool, "enc");
    zfs.unload_key(&dn(fs.name())).unwrap();
    let data = send_bytes(&zfs, &fs.at("s1"), None, raw()).unwrap();
    let r = recv_bytes(&zfs, &pool.ds("copy"), &data, &ReceiveOptions::default()).unwrap();
    assert!(r.header.is_raw());
    assert_eq!(zfs_get("keystatus", &pool.ds("copy")), "unavailable");
    let n = zfs.send_space(&sn(&fs.at("s1")), None, raw()).unwrap();
    assert!(n >= 200_000, "{n}");
}

#[test]
fn raw_incremental_send() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = with_secret(&pool, "enc");
    fs.mount().write("more", 100_000, 6).snap("s2");
    let (dst, o) = (pool.fs_at("copy"), ReceiveOptions::default());
    let (_, r) = send_recv_raw(&zfs, &fs.at("s1"), None, raw(), dst.name(), &o);
    r.unwrap();
    let from = fs.at("s1");
    let (_, r) = send_recv_raw(&zfs, &fs.at("s2"), Some(&from), raw(), dst.name(), &o);
    let r = r.unwrap_or_else(|e| panic!("{e:?}"));
    assert!(r.header.is_raw() && r.header.is_incremental());
    assert!(zfs.exists(&dst.at("s2")));
}

#[test]
fn non_raw_send_with_key_loaded_decrypts() {
    let pool = TestPool::new();
    let fs = with_secret(&pool, "enc");
    let dst = fs.send_to("s1", pool.fs_at("plain"));
    assert_eq!(zfs_get("encryption", dst.name()), "off");
    let secret = std::fs::metadata(dst.mount().path("secret")).unwrap();
    assert_eq!(secret.len(), 200_000);
}
