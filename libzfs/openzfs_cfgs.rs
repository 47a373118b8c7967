//! Re-emits libzfs-sys's OpenZFS feature cfgs (`openzfs_2_2`, ...) from the levels
//! and the version it found (`DEP_ZFS_CORE_LEVELS`, `DEP_ZFS_CORE_VERSION`: the package
//! must depend on libzfs-sys directly). One list of levels, libzfs-sys's. Shared by the
//! build scripts of `libzfs` and of the test crate.
pub fn emit() {
    let parse = |v: &str| {
        let mut it = v.split('.').map(|s| s.parse::<u32>().unwrap_or(0));
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    };
    let levels = std::env::var("DEP_ZFS_CORE_LEVELS").expect("libzfs-sys passes its levels");
    let have =
        parse(&std::env::var("DEP_ZFS_CORE_VERSION").expect("libzfs-sys passes its version"));
    for level in levels.split_whitespace() {
        let (a, b) = parse(level);
        println!("cargo:rustc-check-cfg=cfg(openzfs_{a}_{b})");
        if have >= (a, b) {
            println!("cargo:rustc-cfg=openzfs_{a}_{b}");
        }
    }
}
