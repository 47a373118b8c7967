//! Re-emits libzfs-sys's OpenZFS feature cfgs (`openzfs_2_2`, ...) from the version it
//! found (`DEP_ZFS_CORE_VERSION`, so the package must depend on libzfs-sys directly).
//! Shared by the build scripts of `libzfs` and of the test crate.
pub fn emit() {
    let levels = [(2, 0), (2, 1), (2, 2), (2, 3)];
    for (a, b) in levels {
        println!("cargo:rustc-check-cfg=cfg(openzfs_{a}_{b})");
    }
    let v = std::env::var("DEP_ZFS_CORE_VERSION").expect("libzfs-sys passes its version");
    let mut it = v.split('.').map(|s| s.parse::<u32>().unwrap_or(0));
    let have = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    for (a, b) in levels {
        if have >= (a, b) {
            println!("cargo:rustc-cfg=openzfs_{a}_{b}");
        }
    }
}
