//! libzfs against real pools: encrypted filesystems, keys and raw sends.
use libzfs::{ErrorKind, NvList, ReceiveOptions, SendFlags};
use zrep_tests::*;

const KEY: [u8; 32] = [7u8; 32];
const KEY2: [u8; 32] = [9u8; 32];

fn enc_props() -> NvList {
    let mut p = NvList::new();
    // Index properties take their enum values: aes-256-gcm is 8, keyformat raw is 1.
    p.insert("encryption", &8u64).unwrap();
    p.insert("keyformat", &1u64).unwrap();
    p.insert("keylocation", "prompt").unwrap();
    p
}

fn encrypted(pool: &TestPool, zfs: &libzfs::Zfs, rel: &str) -> String {
    let fs = pool.ds(rel);
    zfs.create_encrypted(&dn(&fs), &enc_props(), &KEY)
        .unwrap_or_else(|e| panic!("{e:?}"));
    fs
}

fn with_data(pool: &TestPool, zfs: &libzfs::Zfs, rel: &str) -> String {
    let fs = encrypted(pool, zfs, rel);
    mount(&fs);
    write_random(&pool.path(&format!("{rel}/secret")), 200_000, 5);
    snap(zfs, &[&format!("{fs}@s1")]);
    zrep_tests::zfs(&["unmount", &fs]);
    fs
}

#[test]
fn create_encrypted_fs() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = encrypted(&pool, &zfs, "enc");
    assert_eq!(zfs_get("encryption", &fs), "aes-256-gcm");
    assert_eq!(zfs_get("keyformat", &fs), "raw");
    assert_eq!(zfs_get("keystatus", &fs), "available");
    assert_eq!(zfs_get("encryptionroot", &fs), fs);
}

#[test]
fn list_reports_encryption() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = encrypted(&pool, &zfs, "enc");
    let d = zfs.dataset(&dn(&fs)).unwrap().unwrap();
    // Channel programs cannot read the cipher (zfs.get_prop says "off"): the listing
    // reports "on", decided from keystatus.
    assert_eq!(d.encryption, "on");
    // Nor `encryptionroot`: channel programs do not see it.
    assert_eq!(d.encryption_root, None);
    assert_eq!(d.key_status.as_deref(), Some("available"));
    zfs.unload_key(&dn(&fs)).unwrap();
    let d = zfs.dataset(&dn(&fs)).unwrap().unwrap();
    assert_eq!(d.key_status.as_deref(), Some("unavailable"));
}

#[test]
fn create_encrypted_with_short_key_fails() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.ds("enc");
    let e = zfs
        .create_encrypted(&dn(&fs), &enc_props(), &[1u8; 5])
        .unwrap_err();
    assert!(e.errno().is_some(), "{e:?}");
    assert!(!zfs.exists(&fs));
}

#[test]
fn child_of_encrypted_fs_inherits_encryption() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = encrypted(&pool, &zfs, "enc");
    let child = format!("{fs}/child");
    lzc_create(&zfs, &child);
    assert_eq!(zfs_get("encryptionroot", &child), fs);
    assert_eq!(zfs_get("encryption", &child), "aes-256-gcm");
}

#[test]
fn unload_and_load_key() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = encrypted(&pool, &zfs, "enc");
    zfs.unload_key(&dn(&fs)).unwrap();
    assert_eq!(zfs_get("keystatus", &fs), "unavailable");
    zfs.load_key(&dn(&fs), &KEY, false).unwrap();
    assert_eq!(zfs_get("keystatus", &fs), "available");
}

#[test]
fn load_wrong_key_is_key_missing() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = encrypted(&pool, &zfs, "enc");
    zfs.unload_key(&dn(&fs)).unwrap();
    let e = expect_kind(zfs.load_key(&dn(&fs), &KEY2, false), ErrorKind::KeyMissing);
    assert!(e.to_string().contains("cannot load key of"), "{e}");
    assert_eq!(zfs_get("keystatus", &fs), "unavailable");
}

#[test]
fn load_key_noop_only_checks() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = encrypted(&pool, &zfs, "enc");
    zfs.unload_key(&dn(&fs)).unwrap();
    zfs.load_key(&dn(&fs), &KEY, true).unwrap();
    assert_eq!(zfs_get("keystatus", &fs), "unavailable");
    expect_kind(zfs.load_key(&dn(&fs), &KEY2, true), ErrorKind::KeyMissing);
}

#[test]
fn load_key_already_loaded_is_already_exists() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = encrypted(&pool, &zfs, "enc");
    expect_kind(
        zfs.load_key(&dn(&fs), &KEY, false),
        ErrorKind::AlreadyExists,
    );
}

#[test]
fn load_key_of_missing_fs_is_not_found() {
    let pool = TestPool::new();
    let zfs = lzc();
    expect_kind(
        zfs.load_key(&dn(&pool.ds("nope")), &KEY, false),
        ErrorKind::NotFound,
    );
}

#[test]
fn unload_key_not_loaded_is_key_missing() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = encrypted(&pool, &zfs, "enc");
    zfs.unload_key(&dn(&fs)).unwrap();
    expect_kind(zfs.unload_key(&dn(&fs)), ErrorKind::KeyMissing);
}

#[test]
fn unload_key_of_mounted_fs_is_busy() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = encrypted(&pool, &zfs, "enc");
    mount(&fs);
    expect_kind(zfs.unload_key(&dn(&fs)), ErrorKind::Busy);
    assert_eq!(zfs_get("keystatus", &fs), "available");
}

#[test]
fn unload_key_of_missing_fs_is_not_found() {
    let pool = TestPool::new();
    let zfs = lzc();
    expect_kind(zfs.unload_key(&dn(&pool.ds("nope"))), ErrorKind::NotFound);
}

#[test]
fn unload_key_of_unencrypted_fs_fails() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = pool.ds("plain");
    lzc_create(&zfs, &fs);
    let e = zfs.unload_key(&dn(&fs)).unwrap_err();
    assert!(e.errno().is_some(), "{e:?}");
}

#[test]
fn change_key() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = encrypted(&pool, &zfs, "enc");
    let mut props = NvList::new();
    props.insert("keyformat", &1u64).unwrap();
    props.insert("keylocation", "prompt").unwrap();
    zfs.change_key(&dn(&fs), Some(&props), &KEY2).unwrap();
    zfs.unload_key(&dn(&fs)).unwrap();
    expect_kind(zfs.load_key(&dn(&fs), &KEY, false), ErrorKind::KeyMissing);
    zfs.load_key(&dn(&fs), &KEY2, false).unwrap();
    assert_eq!(zfs_get("keystatus", &fs), "available");
}

fn new_key_props() -> NvList {
    let mut props = NvList::new();
    props.insert("keyformat", &1u64).unwrap();
    props.insert("keylocation", "prompt").unwrap();
    props
}

#[test]
fn change_key_without_props_is_refused() {
    // The kernel wants the new key's keyformat (and keylocation): EINVAL without.
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = encrypted(&pool, &zfs, "enc");
    expect_kind(
        zfs.change_key(&dn(&fs), None, &KEY2),
        ErrorKind::InvalidArgument,
    );
    zfs.unload_key(&dn(&fs)).unwrap();
    zfs.load_key(&dn(&fs), &KEY, false).unwrap();
}

#[test]
fn change_key_when_not_loaded_fails() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = encrypted(&pool, &zfs, "enc");
    zfs.unload_key(&dn(&fs)).unwrap();
    let e = zfs
        .change_key(&dn(&fs), Some(&new_key_props()), &KEY2)
        .unwrap_err();
    assert_eq!(e.errno().unwrap().raw(), libc::EACCES, "{e:?}");
}

#[test]
fn change_key_when_not_loaded_is_key_missing() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = encrypted(&pool, &zfs, "enc");
    zfs.unload_key(&dn(&fs)).unwrap();
    expect_kind(
        zfs.change_key(&dn(&fs), Some(&new_key_props()), &KEY2),
        ErrorKind::KeyMissing,
    );
}

#[test]
fn change_key_of_missing_fs_is_not_found() {
    let pool = TestPool::new();
    let zfs = lzc();
    expect_kind(
        zfs.change_key(&dn(&pool.ds("nope")), None, &KEY2),
        ErrorKind::NotFound,
    );
}

#[test]
fn raw_send_to_another_pool_without_the_key() {
    let p1 = TestPool::new();
    let p2 = TestPool::new();
    let zfs = lzc();
    let fs = with_data(&p1, &zfs, "enc");
    let dst = p2.ds("copy");
    let raw = SendFlags {
        raw: true,
        ..Default::default()
    };
    let (s, r) = send_recv_raw(
        &zfs,
        &format!("{fs}@s1"),
        None,
        raw,
        &dst,
        &ReceiveOptions::default(),
    );
    let r = r.unwrap_or_else(|e| panic!("{e:?}"));
    s.unwrap();
    assert!(r.header.is_raw());
    assert_eq!(zfs_get("keystatus", &dst), "unavailable");
    assert_eq!(zfs_get("encryption", &dst), "aes-256-gcm");
    assert_eq!(
        zfs_get("guid", &format!("{dst}@s1")),
        zfs_get("guid", &format!("{fs}@s1"))
    );
    // The same key opens the copy.
    zfs.load_key(&dn(&dst), &KEY, false).unwrap();
    mount(&dst);
    assert_eq!(
        std::fs::read(p2.path("copy/secret")).unwrap(),
        std::fs::read(p1.path("enc/.zfs/snapshot/s1/secret")).unwrap_or_else(|_| {
            mount(&fs);
            std::fs::read(p1.path("enc/secret")).unwrap()
        })
    );
}

#[test]
fn raw_send_works_with_key_unloaded() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = with_data(&pool, &zfs, "enc");
    zfs.unload_key(&dn(&fs)).unwrap();
    let raw = SendFlags {
        raw: true,
        ..Default::default()
    };
    let data = send_bytes(&zfs, &format!("{fs}@s1"), None, raw).unwrap();
    let r = recv_bytes(&zfs, &pool.ds("copy"), &data, &ReceiveOptions::default()).unwrap();
    assert!(r.header.is_raw());
    assert_eq!(zfs_get("keystatus", &pool.ds("copy")), "unavailable");
}

#[test]
fn raw_incremental_send() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = with_data(&pool, &zfs, "enc");
    mount(&fs);
    write_random(&pool.path("enc/more"), 100_000, 6);
    snap(&zfs, &[&format!("{fs}@s2")]);
    let raw = SendFlags {
        raw: true,
        ..Default::default()
    };
    let dst = pool.ds("copy");
    let o = ReceiveOptions::default();
    let (_, r) = send_recv_raw(&zfs, &format!("{fs}@s1"), None, raw, &dst, &o);
    r.unwrap();
    let (_, r) = send_recv_raw(
        &zfs,
        &format!("{fs}@s2"),
        Some(&format!("{fs}@s1")),
        raw,
        &dst,
        &o,
    );
    let r = r.unwrap_or_else(|e| panic!("{e:?}"));
    assert!(r.header.is_raw() && r.header.is_incremental());
    assert!(zfs.exists(&format!("{dst}@s2")));
}

#[test]
fn non_raw_send_with_key_unloaded_is_key_missing() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = with_data(&pool, &zfs, "enc");
    zfs.unload_key(&dn(&fs)).unwrap();
    let e = expect_kind(
        send_bytes(&zfs, &format!("{fs}@s1"), None, SendFlags::default()),
        ErrorKind::KeyMissing,
    );
    assert!(e.to_string().contains("key"), "{e}");
}

#[test]
fn non_raw_send_with_key_loaded_decrypts() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = with_data(&pool, &zfs, "enc");
    let dst = pool.ds("plain");
    replicate(
        &zfs,
        &format!("{fs}@s1"),
        None,
        &dst,
        &ReceiveOptions::default(),
    );
    assert_eq!(zfs_get("encryption", &dst), "off");
    mount(&dst);
    assert_eq!(
        std::fs::metadata(pool.path("plain/secret")).unwrap().len(),
        200_000
    );
}

#[test]
fn send_space_of_encrypted_without_key() {
    let pool = TestPool::new();
    let zfs = lzc();
    let fs = with_data(&pool, &zfs, "enc");
    zfs.unload_key(&dn(&fs)).unwrap();
    let raw = SendFlags {
        raw: true,
        ..Default::default()
    };
    let n = zfs.send_space(&sn(&format!("{fs}@s1")), None, raw).unwrap();
    assert!(n >= 200_000, "{n}");
}
