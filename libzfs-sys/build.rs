//! Finds libzfs_core with pkg-config, emits one cfg per OpenZFS feature level and
//! generates the bindings with bindgen.
//!
//! Or, with the `pregenerated` feature or on docs.rs (`DOCS_RS` set), uses the bindings
//! committed in `bindings/`, generated from OpenZFS 2.1.11's headers for Linux:
//! no headers and no libclang needed, and on docs.rs nothing to link.
//! `scripts/check-openzfs-2.1` checks that they are what bindgen makes of those headers
//! (`--update-bindings` rewrites them).
//!
//! Overrides (for FreeBSD's base system or headers unpacked into a folder):
//! - `LIBZFS_CORE_INCLUDE_DIRS`: colon-separated include directories; skips pkg-config.
//! - `LIBZFS_CORE_LIB_DIR`: where libzfs_core.so and libnvpair.so live.
//! - `LIBZFS_CORE_VERSION`: the OpenZFS version those headers belong to (e.g. 2.1.11).
//! - `PKG_CONFIG_PATH` / `PKG_CONFIG_SYSROOT_DIR` work as usual for pkg-config.
use std::env;
use std::path::PathBuf;

/// The OpenZFS release `bindings/` was generated from.
const PREGENERATED_VERSION: &str = "2.1.11";

/// Feature levels the code may test with `#[cfg(openzfs_X_Y)]`: each is set when the
/// headers are at least that version. The first and the last make the supported
/// range (2.0 up to, not including, 2.4); dependents read the list as
/// `DEP_ZFS_CORE_LEVELS` (libzfs's build script emits the same cfgs from it).
const LEVELS: &[(u32, u32)] = &[(2, 0), (2, 1), (2, 2), (2, 3)];

/// The supported OpenZFS versions: `[oldest level, newest level's next minor)`.
fn supported() -> (String, String) {
    let (a, b) = LEVELS[0];
    let (c, d) = LEVELS[LEVELS.len() - 1];
    (format!("{a}.{b}"), format!("{c}.{}", d + 1))
}

/// Refuses headers of an OpenZFS outside [`supported`]: their prototypes are not
/// the ones this crate was written and tested against.
fn check_supported(version: &str) {
    let (lo, hi) = supported();
    let v = parse_version(version);
    if v < parse_version(&lo) || v >= parse_version(&hi) {
        panic!(
            "libzfs-sys: OpenZFS {version} is not supported (supported: {lo} <= version < {hi})"
        );
    }
}

fn main() {
    for var in [
        "LIBZFS_CORE_INCLUDE_DIRS",
        "LIBZFS_CORE_LIB_DIR",
        "LIBZFS_CORE_VERSION",
        "PKG_CONFIG_PATH",
        "LIBZFS_CORE_FREEBSD_SRC",
        "DOCS_RS",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed=wrapper.h");
    for (maj, min) in LEVELS {
        println!("cargo:rustc-check-cfg=cfg(openzfs_{maj}_{min})");
    }

    let pregenerated = env::var_os("CARGO_FEATURE_PREGENERATED").is_some();
    let docs_rs = env::var_os("DOCS_RS").is_some();
    let (includes, version) = if pregenerated || docs_rs {
        (Vec::new(), PREGENERATED_VERSION.to_string())
    } else {
        probe()
    };
    check_supported(&version);
    let (maj, min) = parse_version(&version);
    let levels: Vec<String> = LEVELS.iter().map(|(a, b)| format!("{a}.{b}")).collect();
    println!("cargo:levels={}", levels.join(" "));
    for &(lmaj, lmin) in LEVELS {
        if (maj, min) >= (lmaj, lmin) {
            println!("cargo:rustc-cfg=openzfs_{lmaj}_{lmin}");
        }
    }
    // Exposed to dependents as DEP_ZFS_CORE_VERSION (libzfs emits the same cfgs).
    println!("cargo:version={version}");
    println!("cargo:rustc-env=LIBZFS_SYS_OPENZFS_VERSION={version}");

    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap()).join("bindings.rs");
    if pregenerated || docs_rs {
        use_pregenerated(&out, docs_rs);
        return;
    }
    let mut builder = bindgen::Builder::default()
        .header("wrapper.h")
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .allowlist_function("lzc_.*")
        .allowlist_function("libzfs_core_(init|fini)")
        .allowlist_type("lzc_.*")
        .allowlist_type("zfs_errno_t|zfs_errno")
        .allowlist_type("pool_initialize_func(_t)?|pool_trim_func(_t)?")
        .allowlist_type("zpool_wait_activity(_t)?|zfs_wait_activity(_t)?")
        .allowlist_type("dmu_objset_type(_t)?")
        // lzc_scrub takes one; also lets lib.rs check which OS's zfs.h was read.
        .allowlist_type("zfs_ioc(_t)?")
        .allowlist_var("ZFS_MAX_DATASET_NAME_LEN|ZCP_.*|ZFS_IMPORTED|LZC_.*")
        // nvlists come from nvpair-sys, so one *mut nvlist_t flows between the crates.
        .blocklist_type("nvlist|nvlist_t|nvpair|nvpair_t")
        .raw_line("pub use nvpair_sys::{nvlist_t, nvpair_t};")
        // lzc_send_progress is declared but not implemented (2.0-2.4): never bind it.
        .blocklist_function("lzc_send_progress")
        .constified_enum_module("boolean_t")
        .default_enum_style(bindgen::EnumVariation::Consts)
        .prepend_enum_name(false)
        .derive_default(true)
        .layout_tests(true);
    for inc in &includes {
        builder = builder.clang_arg(format!("-I{}", inc.display()));
    }
    let bindings = builder.generate().unwrap_or_else(|e| {
        panic!(
            "bindgen failed on libzfs_core.h ({e}). Is libclang installed? \
             On Debian: apt-get install libclang-dev"
        )
    });
    bindings.write_to_file(&out).expect("write bindings.rs");
}

/// Copies the committed bindings to `out` and, unless on docs.rs (which only
/// documents), links the libraries without asking pkg-config for headers.
fn use_pregenerated(out: &std::path::Path, docs_rs: bool) {
    let file = format!("bindings/openzfs-{PREGENERATED_VERSION}.rs");
    println!("cargo:rerun-if-changed={file}");
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if !docs_rs && (os != "linux" || arch != "x86_64") {
        panic!(
            "libzfs-sys: the pre-generated bindings ({file}) were made from Linux x86_64 \
             headers; on {arch}-{os} build without the `pregenerated` feature (bindgen reads \
             the installed headers)"
        );
    }
    std::fs::copy(&file, out).unwrap_or_else(|e| panic!("libzfs-sys: copy {file}: {e}"));
    if docs_rs {
        return;
    }
    if let Ok(dir) = env::var("LIBZFS_CORE_LIB_DIR") {
        println!("cargo:rustc-link-search=native={dir}");
    }
    println!("cargo:rustc-link-lib=zfs_core");
    println!("cargo:rustc-link-lib=nvpair");
}

/// Returns the include directories and the OpenZFS version, and emits the link flags.
fn probe() -> (Vec<PathBuf>, String) {
    if let Some(dirs) = env::var_os("LIBZFS_CORE_INCLUDE_DIRS") {
        let includes = env::split_paths(&dirs).collect();
        let version = env::var("LIBZFS_CORE_VERSION").unwrap_or_else(|_| {
            panic!("LIBZFS_CORE_INCLUDE_DIRS is set: also set LIBZFS_CORE_VERSION (e.g. 2.2.0)")
        });
        if let Ok(dir) = env::var("LIBZFS_CORE_LIB_DIR") {
            println!("cargo:rustc-link-search=native={dir}");
        }
        println!("cargo:rustc-link-lib=zfs_core");
        println!("cargo:rustc-link-lib=nvpair");
        return (includes, version);
    }
    if let Some(found) = freebsd_base() {
        return found;
    }
    let (lo, hi) = supported();
    match pkg_config::Config::new()
        .range_version(lo.as_str()..hi.as_str())
        .probe("libzfs_core")
    {
        Ok(lib) => {
            if let Ok(dir) = env::var("LIBZFS_CORE_LIB_DIR") {
                println!("cargo:rustc-link-search=native={dir}");
            }
            (lib.include_paths, lib.version)
        }
        Err(e) => panic!(
            "\n\nlibzfs-sys: libzfs_core (OpenZFS {lo} <= version < {hi}) was not found by \
             pkg-config:\n{e}\n\
             On Debian/Ubuntu install the headers: apt-get install libzfslinux-dev pkg-config\n\
             (OpenZFS 2.3 is in bookworm-backports; scripts/setup does all of it).\n\
             Elsewhere, point LIBZFS_CORE_INCLUDE_DIRS at the OpenZFS sources' include, \
             lib/libspl/include and lib/libspl/include/os/<os>, and set \
             LIBZFS_CORE_VERSION.\n"
        ),
    }
}

/// FreeBSD ships libzfs_core in the base system without a pkg-config file; its
/// headers are in the source tree (`/usr/src/sys/contrib/openzfs`), whose META file
/// gives the version. Used when pkg-config has no `libzfs_core` module.
fn freebsd_base() -> Option<(Vec<PathBuf>, String)> {
    if env::var("CARGO_CFG_TARGET_OS").ok()? != "freebsd" {
        return None;
    }
    if pkg_config::probe_library("libzfs_core").is_ok() {
        return None;
    }
    let root = PathBuf::from(
        env::var("LIBZFS_CORE_FREEBSD_SRC")
            .unwrap_or_else(|_| "/usr/src/sys/contrib/openzfs".into()),
    );
    let meta = std::fs::read_to_string(root.join("META")).unwrap_or_else(|_| {
        panic!(
            "libzfs-sys: no OpenZFS sources at {}: install the FreeBSD source tree \
             (pkg install FreeBSD-src, or git clone the release branch into /usr/src), or \
             the openzfs port, or set LIBZFS_CORE_INCLUDE_DIRS and LIBZFS_CORE_VERSION",
            root.display()
        )
    });
    let version = meta
        .lines()
        .find_map(|l| l.strip_prefix("Version:"))
        .map(|v| v.trim().to_string())
        .expect("META has a Version line");
    println!("cargo:rustc-link-lib=zfs_core");
    println!("cargo:rustc-link-lib=nvpair");
    // The userland search path FreeBSD's own cddl/lib/libzfs_core Makefile uses. Not
    // include/os/freebsd/{spl,zfs}: those are the kernel's headers, and their
    // sys/types.h (reached through libspl's #include_next) does not parse in userland.
    let inc = |p: &str| root.join(p);
    Some((
        vec![
            inc("include"),
            inc("lib/libspl/include"),
            inc("lib/libspl/include/os/freebsd"),
        ],
        version,
    ))
}

fn parse_version(v: &str) -> (u32, u32) {
    let mut it = v
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    let maj = it.next().and_then(|s| s.parse().ok());
    let min = it.next().and_then(|s| s.parse().ok());
    match (maj, min) {
        (Some(a), Some(b)) => (a, b),
        _ => panic!("libzfs-sys: cannot read an OpenZFS version from {v:?}"),
    }
}
