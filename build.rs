//! Build script of the integration-test crate.
//!
//! Two jobs:
//! - libzfs-sys's OpenZFS feature cfgs (`openzfs_2_3`, ...) are set here too, so tests of
//!   behaviour a release added are gated like the code they test;
//! - the tests run the `zrep` binary, which belongs to another package of the
//!   workspace, so Cargo gives them no `CARGO_BIN_EXE_zrep`. We tell them where the
//!   profile's output directory is (`target/<profile>`), where scripts/test has built
//!   `zrep` before running them.
use std::path::PathBuf;

#[path = "libzfs/openzfs_cfgs.rs"]
mod openzfs_cfgs;

fn main() {
    openzfs_cfgs::emit();
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // OUT_DIR is target/<profile>/build/<pkg>-<hash>/out.
    let profile_dir = out.ancestors().nth(3).expect("OUT_DIR has the usual depth");
    println!("cargo:rustc-env=ZREP_PROFILE_DIR={}", profile_dir.display());
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=libzfs/openzfs_cfgs.rs");
}
