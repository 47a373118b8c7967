//! Dataset properties as a receive carries them (`zfs send -p`), without libzfs.
//!
//! The kernel takes received and overriding properties in an nvlist whose values
//! have the property's storage type: an **index** property (`compression`,
//! `checksum`, `atime`, `canmount`...) is a uint64 holding an enum value, a
//! **number** property (`recordsize`, `quota`...) a uint64, a **string** property
//! (`mountpoint`, `sharenfs`, user properties `module:name`) a string. Channel
//! programs, our only way to read properties, return index properties by name
//! (`"zstd-9"`, `"off"`). libzfs_core has no property table, so this module has
//! one: [`PROPERTIES`], read from `module/zcommon/zfs_prop.c` and the enums of
//! `sys/fs/zfs.h`, `sys/zio.h` and `sys/zio_compress.h` in OpenZFS 2.1.11 to 2.3.2.
//!
//! - [`parse_property`] turns user input (`compression=zstd-9`, `quota=10G`) into
//!   the value the kernel takes;
//! - [`from_listing`] turns a value as a channel program returns it into that value;
//! - [`Zfs::local_properties`] reads what `zfs send -p` would send: every property
//!   set locally or received, already converted.
//!
//! One table serves every supported version: values only newer kernels know
//! (`blake3`, `prefetch`, `direct`, `redundant_metadata=some`) are in it, and an
//! older kernel rejects them when they are set (a receive lists them in
//! [`Received::property_errors`](crate::Received::property_errors)).
//!
//! These functions take strings from the other side of a replication: they never
//! panic, bound every length, and say in their error which property and why.

use std::ffi::CStr;
use std::fmt;

pub use crate::error::PropertyError;
use crate::error::{clip, zfs_error, Error, Op, Result};
use crate::list::{over_limits, relabel, Fields};
use crate::name::DatasetName;
use crate::nvlist::{NvList, NvListError, NvListRef, ToNvValue, Value};
use crate::zfs::{ProgramLimits, Zfs};

/// How the kernel stores a property's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropKind {
    /// A uint64: a size, a count or a limit.
    Number,
    /// A string.
    String,
    /// A name stored as a uint64: the property's `(name, value)` pairs. The first
    /// pair of each value names it; later pairs with the same value are aliases
    /// (`gzip` for `gzip-6`, `posixacl` for `posix`).
    Index(&'static [(&'static str, u64)]),
}

/// A system property of datasets that can be set (read-only ones are not here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Property {
    /// Its name, as `zfs get` spells it.
    pub name: &'static str,
    /// How its value is stored.
    pub kind: PropKind,
    /// Whether a receive can set it: false for properties fixed when the dataset is
    /// created (`casesensitivity`, `encryption`, `volblocksize`...) and for those
    /// `zfs receive` handles apart (`keylocation`, `version`).
    pub receivable: bool,
    /// Whether a child inherits it (`zfs_prop_inheritable`): false for `canmount`,
    /// the quotas, reservations and limits, `volsize`, the SELinux contexts...
    /// Excluding such a property from a receive (`-x`) drops its received value
    /// instead of masking it, since there is nothing to inherit.
    pub inheritable: bool,
}

impl Property {
    /// The number of an index property's value name (aliases included).
    pub fn index_value(&self, name: &str) -> Option<u64> {
        match self.kind {
            PropKind::Index(t) => t.iter().find(|(n, _)| *n == name).map(|&(_, v)| v),
            _ => None,
        }
    }

    /// The name of an index property's value (the first of its names).
    pub fn index_name(&self, value: u64) -> Option<&'static str> {
        match self.kind {
            PropKind::Index(t) => t.iter().find(|(_, v)| *v == value).map(|&(n, _)| n),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Values (OpenZFS headers; the same in 2.1.11 and 2.3.2 where both have them)
// ---------------------------------------------------------------------------------------

/// `enum zio_checksum` (sys/zio.h).
mod cksum {
    pub const ON: u64 = 1;
    pub const OFF: u64 = 2;
    pub const FLETCHER_2: u64 = 6;
    pub const FLETCHER_4: u64 = 7;
    pub const SHA256: u64 = 8;
    pub const NOPARITY: u64 = 10;
    pub const SHA512: u64 = 11;
    pub const SKEIN: u64 = 12;
    pub const EDONR: u64 = 13;
    /// 2.2+.
    pub const BLAKE3: u64 = 14;
    /// `ZIO_CHECKSUM_VERIFY`: or-ed into a dedup value.
    pub const VERIFY: u64 = 1 << 8;
}

/// `enum zio_compress` (sys/zio_compress.h) and the zstd levels.
mod compress {
    pub const ON: u64 = 1;
    pub const OFF: u64 = 2;
    pub const LZJB: u64 = 3;
    /// `ZIO_COMPRESS_GZIP_1`; gzip-N is `GZIP_1 + N - 1`.
    pub const GZIP_1: u64 = 5;
    pub const ZLE: u64 = 14;
    pub const LZ4: u64 = 15;
    pub const ZSTD: u64 = 16;
    /// `SPA_COMPRESSBITS` (sys/spa.h): a zstd level sits above the algorithm bits.
    const COMPRESSBITS: u32 = 7;
    /// `ZIO_ZSTD_LEVEL_FAST` (`enum zio_zstd_levels`): the fast levels follow it,
    /// `FAST_1` to `FAST_10`, then `FAST_20` ... `FAST_100`, `FAST_500`, `FAST_1000`.
    const LEVEL_FAST: u64 = 102;

    /// `gzip-N`.
    pub const fn gzip(n: u64) -> u64 {
        GZIP_1 + n - 1
    }

    /// `ZIO_COMPLEVEL_ZSTD(level)`: `ZSTD | level << SPA_COMPRESSBITS`.
    pub const fn zstd_level(level: u64) -> u64 {
        ZSTD | level << COMPRESSBITS
    }

    /// `zstd-N`: levels 1 to 19 are `ZIO_ZSTD_LEVEL_1` (1) to `ZIO_ZSTD_LEVEL_19`.
    pub const fn zstd(n: u64) -> u64 {
        zstd_level(n)
    }

    /// `zstd-fast-N`, for N in 1..=10, 20, 30 ... 100, 500, 1000.
    pub const fn zstd_fast(n: u64) -> u64 {
        let step = match n {
            1..=10 => n,
            20..=100 => 10 + (n - 10) / 10,
            500 => 20,
            _ => 21, // 1000
        };
        zstd_level(LEVEL_FAST + step)
    }
}

const OFF_ON: &[(&str, u64)] = &[("off", 0), ("on", 1)];

const CHECKSUM: &[(&str, u64)] = {
    use cksum::*;
    &[
        ("on", ON),
        ("off", OFF),
        ("fletcher2", FLETCHER_2),
        ("fletcher4", FLETCHER_4),
        ("sha256", SHA256),
        ("noparity", NOPARITY),
        ("sha512", SHA512),
        ("skein", SKEIN),
        ("edonr", EDONR),
        ("blake3", BLAKE3),
    ]
};

const DEDUP: &[(&str, u64)] = {
    use cksum::*;
    &[
        ("on", ON),
        ("off", OFF),
        ("verify", ON | VERIFY),
        ("sha256", SHA256),
        ("sha256,verify", SHA256 | VERIFY),
        ("sha512", SHA512),
        ("sha512,verify", SHA512 | VERIFY),
        ("skein", SKEIN),
        ("skein,verify", SKEIN | VERIFY),
        ("edonr,verify", EDONR | VERIFY),
        ("blake3", BLAKE3),
        ("blake3,verify", BLAKE3 | VERIFY),
    ]
};

const COMPRESSION: &[(&str, u64)] = {
    use compress::*;
    &[
        ("on", ON),
        ("off", OFF),
        ("lzjb", LZJB),
        // The gzip default, named before gzip-6 as ZFS names it.
        ("gzip", gzip(6)),
        ("gzip-1", gzip(1)),
        ("gzip-2", gzip(2)),
        ("gzip-3", gzip(3)),
        ("gzip-4", gzip(4)),
        ("gzip-5", gzip(5)),
        ("gzip-6", gzip(6)),
        ("gzip-7", gzip(7)),
        ("gzip-8", gzip(8)),
        ("gzip-9", gzip(9)),
        ("zle", ZLE),
        ("lz4", LZ4),
        ("zstd", ZSTD),
        // The zstd-fast default, named before zstd-fast-1 as ZFS names it.
        ("zstd-fast", zstd_fast(1)),
        ("zstd-1", zstd(1)),
        ("zstd-2", zstd(2)),
        ("zstd-3", zstd(3)),
        ("zstd-4", zstd(4)),
        ("zstd-5", zstd(5)),
        ("zstd-6", zstd(6)),
        ("zstd-7", zstd(7)),
        ("zstd-8", zstd(8)),
        ("zstd-9", zstd(9)),
        ("zstd-10", zstd(10)),
        ("zstd-11", zstd(11)),
        ("zstd-12", zstd(12)),
        ("zstd-13", zstd(13)),
        ("zstd-14", zstd(14)),
        ("zstd-15", zstd(15)),
        ("zstd-16", zstd(16)),
        ("zstd-17", zstd(17)),
        ("zstd-18", zstd(18)),
        ("zstd-19", zstd(19)),
        ("zstd-fast-1", zstd_fast(1)),
        ("zstd-fast-2", zstd_fast(2)),
        ("zstd-fast-3", zstd_fast(3)),
        ("zstd-fast-4", zstd_fast(4)),
        ("zstd-fast-5", zstd_fast(5)),
        ("zstd-fast-6", zstd_fast(6)),
        ("zstd-fast-7", zstd_fast(7)),
        ("zstd-fast-8", zstd_fast(8)),
        ("zstd-fast-9", zstd_fast(9)),
        ("zstd-fast-10", zstd_fast(10)),
        ("zstd-fast-20", zstd_fast(20)),
        ("zstd-fast-30", zstd_fast(30)),
        ("zstd-fast-40", zstd_fast(40)),
        ("zstd-fast-50", zstd_fast(50)),
        ("zstd-fast-60", zstd_fast(60)),
        ("zstd-fast-70", zstd_fast(70)),
        ("zstd-fast-80", zstd_fast(80)),
        ("zstd-fast-90", zstd_fast(90)),
        ("zstd-fast-100", zstd_fast(100)),
        ("zstd-fast-500", zstd_fast(500)),
        ("zstd-fast-1000", zstd_fast(1000)),
    ]
};

/// `ZFS_SNAPDIR_*` (sys/zfs_ioctl.h); `disabled` is 2.3+.
const SNAPDIR: &[(&str, u64)] = &[("hidden", 0), ("visible", 1), ("disabled", 2)];
/// `ZFS_SNAPDEV_*`.
const SNAPDEV: &[(&str, u64)] = &[("hidden", 0), ("visible", 1)];
/// `ZFS_ACL_*` (sys/zfs_acl.h): discard 0, noallow 1, groupmask 2, passthrough 3,
/// restricted 4, passthrough-x 5.
const ACLMODE: &[(&str, u64)] = &[
    ("discard", 0),
    ("groupmask", 2),
    ("passthrough", 3),
    ("restricted", 4),
];
const ACLINHERIT: &[(&str, u64)] = &[
    ("discard", 0),
    ("noallow", 1),
    ("restricted", 4),
    ("passthrough", 3),
    ("secure", 4),
    ("passthrough-x", 5),
];
/// `ZFS_ACLTYPE_*` (sys/zfs_ioctl.h), with the old names as aliases.
const ACLTYPE: &[(&str, u64)] = &[
    ("off", 0),
    ("posix", 1),
    ("nfsv4", 2),
    ("disabled", 0),
    ("noacl", 0),
    ("posixacl", 1),
];
const COPIES: &[(&str, u64)] = &[("1", 1), ("2", 2), ("3", 3)];
/// `zfs_cache_type_t`, and `zfs_prefetch_type_t` (2.2+) with the same values.
const CACHE: &[(&str, u64)] = &[("none", 0), ("metadata", 1), ("all", 2)];
const LOGBIAS: &[(&str, u64)] = &[("latency", 0), ("throughput", 1)];
const SYNC: &[(&str, u64)] = &[("standard", 0), ("always", 1), ("disabled", 2)];
/// `zfs_xattr_type_t`: off 0, dir 1, sa 2. `on` is `dir` up to OpenZFS 2.2 and `sa`
/// from 2.3: as a name alone it means what current OpenZFS means, `sa`.
/// [`Zfs::local_properties`] asks the kernel which it is, and gives `dir` or `sa`.
const XATTR: &[(&str, u64)] = &[("off", 0), ("sa", 2), ("dir", 1), ("on", 2)];
/// `zfs_dnsize_type_t`.
const DNODESIZE: &[(&str, u64)] = &[
    ("legacy", 0),
    ("auto", 1),
    ("1k", 1024),
    ("2k", 2048),
    ("4k", 4096),
    ("8k", 8192),
    ("16k", 16384),
];
/// `zfs_redundant_metadata_type_t`; `some` and `none` are 2.2+.
const REDUNDANT_METADATA: &[(&str, u64)] = &[("all", 0), ("most", 1), ("some", 2), ("none", 3)];
/// `zfs_volmode_t` (`full` and `geom` are one value).
const VOLMODE: &[(&str, u64)] = &[
    ("default", 0),
    ("full", 1),
    ("geom", 1),
    ("dev", 2),
    ("none", 3),
];
/// `zfs_direct_t` (2.3+).
const DIRECT: &[(&str, u64)] = &[("disabled", 0), ("standard", 1), ("always", 2)];
/// `zfs_canmount_type_t`.
const CANMOUNT: &[(&str, u64)] = &[("off", 0), ("on", 1), ("noauto", 2)];
/// ZPL versions; `current` is `ZPL_VERSION` (5).
const VERSION: &[(&str, u64)] = &[
    ("1", 1),
    ("2", 2),
    ("3", 3),
    ("4", 4),
    ("5", 5),
    ("current", 5),
];
/// `U8_TEXTPREP_NF*` (sys/u8_textprep.h).
const NORMALIZATION: &[(&str, u64)] = &[
    ("none", 0),
    ("formD", 0x10),
    ("formKC", 0x60),
    ("formC", 0x50),
    ("formKD", 0x20),
];
/// `zfs_case_t`.
const CASE: &[(&str, u64)] = &[("sensitive", 0), ("insensitive", 1), ("mixed", 2)];
/// `enum zio_encrypt` (sys/fs/zfs.h).
const ENCRYPTION: &[(&str, u64)] = &[
    ("on", 1),
    ("off", 2),
    ("aes-128-ccm", 3),
    ("aes-192-ccm", 4),
    ("aes-256-ccm", 5),
    ("aes-128-gcm", 6),
    ("aes-192-gcm", 7),
    ("aes-256-gcm", 8),
];
/// `zfs_keyformat_t`.
const KEYFORMAT: &[(&str, u64)] = &[("none", 0), ("raw", 1), ("hex", 2), ("passphrase", 3)];

const fn index(name: &'static str, table: &'static [(&'static str, u64)]) -> Property {
    Property {
        name,
        kind: PropKind::Index(table),
        receivable: true,
        inheritable: true,
    }
}

const fn number(name: &'static str) -> Property {
    Property {
        name,
        kind: PropKind::Number,
        receivable: true,
        inheritable: true,
    }
}

const fn string(name: &'static str) -> Property {
    Property {
        name,
        kind: PropKind::String,
        receivable: true,
        inheritable: true,
    }
}

/// Not receivable (`PROP_ONETIME`, or set apart from a receive).
const fn fixed(p: Property) -> Property {
    Property {
        receivable: false,
        ..p
    }
}

/// Not inherited (`PROP_DEFAULT`, `PROP_ONETIME_DEFAULT`).
const fn own(p: Property) -> Property {
    Property {
        inheritable: false,
        ..p
    }
}

/// Every settable dataset property of OpenZFS 2.1 to 2.3, in `zfs_prop.c`'s order.
pub const PROPERTIES: &[Property] = &[
    index("redundant_metadata", REDUNDANT_METADATA),
    index("sync", SYNC),
    index("checksum", CHECKSUM),
    index("dedup", DEDUP),
    index("compression", COMPRESSION),
    index("snapdir", SNAPDIR),
    index("snapdev", SNAPDEV),
    index("aclmode", ACLMODE),
    index("acltype", ACLTYPE),
    index("aclinherit", ACLINHERIT),
    index("copies", COPIES),
    index("primarycache", CACHE),
    index("secondarycache", CACHE),
    index("prefetch", CACHE),
    index("logbias", LOGBIAS),
    index("xattr", XATTR),
    index("dnodesize", DNODESIZE),
    index("volmode", VOLMODE),
    index("direct", DIRECT),
    index("atime", OFF_ON),
    index("relatime", OFF_ON),
    index("devices", OFF_ON),
    index("exec", OFF_ON),
    index("setuid", OFF_ON),
    index("readonly", OFF_ON),
    // ZFS_PROP_ZONED is `zoned` on Linux, `jailed` on FreeBSD.
    index("zoned", OFF_ON),
    index("jailed", OFF_ON),
    index("vscan", OFF_ON),
    index("nbmand", OFF_ON),
    index("overlay", OFF_ON),
    own(index("canmount", CANMOUNT)),
    own(index("volthreading", OFF_ON)),
    index("longname", OFF_ON),
    string("mountpoint"),
    string("sharenfs"),
    string("sharesmb"),
    string("mlslabel"),
    own(string("context")),
    own(string("fscontext")),
    own(string("defcontext")),
    own(string("rootcontext")),
    own(number("quota")),
    own(number("reservation")),
    own(number("volsize")),
    own(number("refquota")),
    own(number("refreservation")),
    own(number("filesystem_limit")),
    own(number("snapshot_limit")),
    number("recordsize"),
    number("special_small_blocks"),
    // Never carried by a receive: the ZPL version is upgraded, not set, and its
    // source is never local; the key location comes with the key (libzfs fixes it
    // up apart after a raw receive).
    fixed(own(index("version", VERSION))),
    fixed(own(string("keylocation"))),
    // Chosen when the dataset is created.
    fixed(index("normalization", NORMALIZATION)),
    fixed(index("casesensitivity", CASE)),
    fixed(index("utf8only", OFF_ON)),
    fixed(index("encryption", ENCRYPTION)),
    fixed(own(index("keyformat", KEYFORMAT))),
    fixed(own(number("pbkdf2iters"))),
    fixed(number("volblocksize")),
];

/// The property named `name` (a system property; user properties are not here).
pub fn property(name: &str) -> Option<&'static Property> {
    PROPERTIES.iter().find(|p| p.name == name)
}

// ---------------------------------------------------------------------------------------
// Limits (sys/fs/zfs.h, libzfs.h)
// ---------------------------------------------------------------------------------------

/// `ZAP_MAXNAMELEN`: a user property name is shorter (at most 255 bytes).
pub const MAX_USER_NAME_LEN: usize = 255;
/// `ZAP_MAXVALUELEN`: a user property value is shorter (at most 8191 bytes).
pub const MAX_USER_VALUE_LEN: usize = 8 * 1024 - 1;
/// `ZFS_MAXPROPLEN` of OpenZFS 2.1 (`MAXPATHLEN`): a system string property value
/// is shorter (at most 4095 bytes). 2.3 allows 8191; we keep to what all take.
pub const MAX_STRING_LEN: usize = 4096 - 1;
/// The longest path component of a mountpoint (`MAXNAMELEN` - 1).
const MAX_COMPONENT_LEN: usize = 255;
/// `SPA_MINBLOCKSIZE` and `SPA_MAXBLOCKSIZE` (sys/spa.h).
const MIN_BLOCK: u64 = 512;
const MAX_BLOCK: u64 = 16 << 20;

// ---------------------------------------------------------------------------------------
// Values and errors
// ---------------------------------------------------------------------------------------

/// A property value as the kernel takes it: index and number properties are
/// numbers, string and user properties strings.
///
/// With the `serde` feature it is a JSON number or a JSON string (untagged).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PropValue {
    /// A uint64 (an index property's enum value, or a number).
    Number(u64),
    /// A string.
    String(String),
}

impl fmt::Display for PropValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PropValue::Number(n) => write!(f, "{n}"),
            PropValue::String(s) => f.write_str(s),
        }
    }
}

impl ToNvValue for PropValue {
    /// A uint64 or a string pair.
    fn add_to_nvlist(&self, list: &mut NvListRef, name: &CStr) -> Result<(), NvListError> {
        match self {
            PropValue::Number(n) => n.add_to_nvlist(list, name),
            PropValue::String(s) => s.as_str().add_to_nvlist(list, name),
        }
    }
}

/// The nvlist of `props`, as [`ReceiveOptions`](crate::ReceiveOptions) takes it.
pub fn to_nvlist<'a>(
    props: impl IntoIterator<Item = (&'a str, &'a PropValue)>,
) -> Result<NvList, NvListError> {
    let mut list = NvList::try_new()?;
    for (name, value) in props {
        list.insert(name, value)?;
    }
    Ok(list)
}

/// A value quoted for a message (escaped, clipped).
fn quoted(s: &str) -> String {
    format!("{:?}", clip(s))
}

/// Whether `name` is a valid user property name (`zfs_prop_user` in zfs_prop.c): it
/// has a `:`, only the characters `a-z 0-9 : . _ -`, and fewer than
/// `ZAP_MAXNAMELEN` (256) bytes.
pub fn is_user_property(name: &str) -> bool {
    name.len() <= MAX_USER_NAME_LEN
        && name.contains(':')
        && name
            .bytes()
            .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b':' | b'.' | b'_' | b'-'))
}

/// Whether a receive can carry `name`: a valid user property, or a known system
/// property that can be changed after creation.
pub fn is_receivable(name: &str) -> bool {
    is_user_property(name) || property(name).is_some_and(|p| p.receivable)
}

/// Whether `-x` (exclude) of `name` can mask a received value with an explicit
/// inherit: user properties and inheritable system properties. Unknown names are
/// left to the kernel (true).
pub(crate) fn excludable_by_inherit(name: &str) -> bool {
    property(name).map_or(true, |p| p.inheritable)
}

/// The receivable system property `name`, or why it is not one.
fn receivable(name: &str) -> Result<&'static Property, PropertyError> {
    match property(name) {
        Some(p) if p.receivable => Ok(p),
        Some(_) => Err(PropertyError::new(
            name,
            "is fixed when the dataset is created (or set apart from a receive)",
        )),
        None if name.contains(':') => Err(PropertyError::new(
            name,
            format!(
                "is not a valid user property name (at most {MAX_USER_NAME_LEN} bytes of \
                 a-z, 0-9, ':', '.', '_', '-')"
            ),
        )),
        None => Err(PropertyError::new(
            name,
            "is not a property that can be set (unknown, or read-only)",
        )),
    }
}

/// Parses `name=value` as given by a user (`zfs set` syntax) into what the kernel
/// takes, for [`ReceiveOptions::props`](crate::ReceiveOptions::props) or
/// [`ReceiveOptions::received`](crate::ReceiveOptions::received):
///
/// - a user property (`module:name`) stays a string;
/// - an index property's value name becomes its number (`zstd-9`, `off`, `noauto`);
///   an unknown name is refused with the list of valid ones;
/// - a number property takes an integer with an optional size suffix as `zfs set`
///   does (`128K`, `1M`, `1.5G`, `10GiB`; powers of 1024), or `none` where ZFS has
///   it (`quota`, `refquota`, `reservation`, `refreservation` give 0, the
///   `*_limit`s give 2^64 - 1); `quota=0` and `refquota=0` are refused as `zfs set`
///   refuses them; `recordsize` is a power of two from 512 to 16M;
/// - a string property is taken as given (`mountpoint` must be `none`, `legacy` or
///   an absolute path).
///
/// Properties a receive cannot set (read-only, or fixed at creation) are refused.
/// No NUL, and lengths within ZFS's limits.
pub fn parse_property(name: &str, value: &str) -> Result<PropValue, PropertyError> {
    if is_user_property(name) {
        return user_value(name, value);
    }
    let prop = receivable(name)?;
    match prop.kind {
        PropKind::Index(table) => index_of(prop.name, table, value),
        PropKind::Number => parse_number(prop, value).map(PropValue::Number),
        PropKind::String => string_value(prop, value),
    }
}

/// Converts a value as a channel program returns it (`zfs.get_prop`: index
/// properties by name, numbers as numbers) into what the kernel takes: index names
/// become numbers, numbers stay numbers (an index number must be one the table
/// knows), user properties stay strings. A string given for a number property is
/// parsed as [`parse_property`] does.
///
/// Unknown properties and those a receive cannot set are errors: a caller copying
/// a listing skips them.
pub fn from_listing(name: &str, value: PropValue) -> Result<PropValue, PropertyError> {
    if is_user_property(name) {
        return match value {
            PropValue::String(s) => user_value(name, &s),
            PropValue::Number(_) => Err(PropertyError::new(
                name,
                "a user property's value is a string, not a number",
            )),
        };
    }
    let prop = receivable(name)?;
    match (prop.kind, value) {
        (PropKind::Index(table), PropValue::String(s)) => index_of(name, table, &s),
        (PropKind::Index(_), PropValue::Number(n)) => match prop.index_name(n) {
            Some(_) => Ok(PropValue::Number(n)),
            None => Err(PropertyError::new(
                name,
                format!("{n} is not a value this library knows"),
            )),
        },
        (PropKind::Number, PropValue::Number(n)) => Ok(PropValue::Number(n)),
        (PropKind::Number, PropValue::String(s)) => parse_number(prop, &s).map(PropValue::Number),
        (PropKind::String, PropValue::String(s)) => string_value(prop, &s),
        (PropKind::String, PropValue::Number(_)) => Err(PropertyError::new(
            name,
            "its value is a string, not a number",
        )),
    }
}

fn user_value(name: &str, value: &str) -> Result<PropValue, PropertyError> {
    if value.len() > MAX_USER_VALUE_LEN {
        return Err(PropertyError::new(
            name,
            format!(
                "value of {} bytes, longer than the {MAX_USER_VALUE_LEN} ZFS allows",
                value.len()
            ),
        ));
    }
    no_nul(name, value)?;
    Ok(PropValue::String(value.to_string()))
}

fn no_nul(name: &str, value: &str) -> Result<(), PropertyError> {
    match value.find('\0') {
        Some(at) => Err(PropertyError::new(
            name,
            format!("value has a NUL byte (at byte {at})"),
        )),
        None => Ok(()),
    }
}

fn index_of(name: &str, table: &[(&str, u64)], value: &str) -> Result<PropValue, PropertyError> {
    if let Some(&(_, n)) = table.iter().find(|(n, _)| *n == value) {
        return Ok(PropValue::Number(n));
    }
    let names: Vec<&str> = table.iter().map(|&(n, _)| n).collect();
    Err(PropertyError::new(
        name,
        format!(
            "{} is not a valid value; it must be one of: {}",
            quoted(value),
            names.join(", ")
        ),
    ))
}

fn string_value(prop: &Property, value: &str) -> Result<PropValue, PropertyError> {
    if value.len() > MAX_STRING_LEN {
        return Err(PropertyError::new(
            prop.name,
            format!(
                "value of {} bytes, longer than the {MAX_STRING_LEN} ZFS allows",
                value.len()
            ),
        ));
    }
    no_nul(prop.name, value)?;
    if prop.name == "mountpoint" && value != "none" && value != "legacy" {
        if !value.starts_with('/') {
            return Err(PropertyError::new(
                prop.name,
                format!(
                    "{} must be 'none', 'legacy' or an absolute path",
                    quoted(value)
                ),
            ));
        }
        if value.split('/').any(|c| c.len() > MAX_COMPONENT_LEN) {
            return Err(PropertyError::new(
                prop.name,
                format!("a component of the path is longer than {MAX_COMPONENT_LEN} bytes"),
            ));
        }
    }
    Ok(PropValue::String(value.to_string()))
}

/// A number property's value from text: `none` where ZFS takes it, else a size.
fn parse_number(prop: &Property, value: &str) -> Result<u64, PropertyError> {
    let name = prop.name;
    let bad = |reason: String| PropertyError::new(name, reason);
    let n = match (name, value) {
        ("quota" | "refquota" | "reservation" | "refreservation", "none") => return Ok(0),
        ("filesystem_limit" | "snapshot_limit", "none") => return Ok(u64::MAX),
        ("refreservation", "auto") => {
            return Err(bad(
                "'auto' is computed by libzfs from the volume size: give a size".into(),
            ))
        }
        _ => parse_size(value).map_err(|why| bad(format!("{}: {why}", quoted(value))))?,
    };
    match name {
        "quota" | "refquota" if n == 0 => Err(bad(format!("use 'none' to disable {name}"))),
        "recordsize" if !(n.is_power_of_two() && (MIN_BLOCK..=MAX_BLOCK).contains(&n)) => Err(bad(
            format!("{n} is not a power of two from {MIN_BLOCK} to {MAX_BLOCK} bytes"),
        )),
        "special_small_blocks"
            if n != 0 && !(n.is_power_of_two() && (MIN_BLOCK..=MAX_BLOCK).contains(&n)) =>
        {
            Err(bad(format!(
                "{n} is neither 0 nor a power of two from {MIN_BLOCK} to {MAX_BLOCK} bytes"
            )))
        }
        "volsize" if n == 0 => Err(bad("a volume's size cannot be 0".into())),
        _ => Ok(n),
    }
}

/// A size as `zfs set` reads it (`zfs_nicestrtonum` in libzfs_util.c): decimal
/// digits, optionally a fraction, then optionally a suffix `B K M G T P E Z` (any
/// case; powers of 1024), which may be followed by `B` or `iB` (`KB`, `KiB`).
/// The result must fit in 64 bits; a fraction is truncated to whole bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    const SUFFIXES: &[u8] = b"BKMGTPEZ";
    let digits_end = text
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(text.len());
    let (int_part, rest) = text.split_at(digits_end);
    let (frac_part, suffix) = match rest.strip_prefix('.') {
        Some(r) => {
            let end = r
                .bytes()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(r.len());
            (Some(&r[..end]), &r[end..])
        }
        None => (None, rest),
    };
    if int_part.is_empty() && frac_part.map_or(true, str::is_empty) {
        return Err("not a number".into());
    }
    let shift = match suffix.as_bytes() {
        [] => 0,
        [first, tail @ ..] => {
            let Some(i) = SUFFIXES
                .iter()
                .position(|s| *s == first.to_ascii_uppercase())
            else {
                return Err(format!("invalid suffix {}", quoted(suffix)));
            };
            let tail_ok = match tail {
                [] => true,
                _ if i == 0 => false, // "BB", "BiB"
                [b] => b.eq_ignore_ascii_case(&b'b'),
                [i_, b] => i_.eq_ignore_ascii_case(&b'i') && b.eq_ignore_ascii_case(&b'b'),
                _ => false,
            };
            if !tail_ok {
                return Err(format!("invalid suffix {}", quoted(suffix)));
            }
            10 * i as u32
        }
    };
    let too_large = || "too large for 64 bits".to_string();
    let int: u64 = if int_part.is_empty() {
        0
    } else {
        int_part.parse().map_err(|_| too_large())?
    };
    match frac_part {
        None => {
            if shift >= 64 || int.checked_shl(shift).map(|v| v >> shift) != Some(int) {
                return Err(too_large());
            }
            Ok(int << shift)
        }
        Some(frac) => {
            // (int.frac) * 2^shift, truncated to whole bytes, in integers: the
            // first 17 digits of the fraction are plenty (ZFS itself goes through a
            // double) and keep frac * 2^70 within 128 bits.
            if int > 0 && shift >= 64 {
                return Err(too_large());
            }
            let frac = &frac[..frac.len().min(17)];
            let frac_num: u128 = frac.parse().unwrap_or(0);
            let scale = 10u128.pow(frac.len() as u32);
            let whole = (u128::from(int) << shift) + ((frac_num << shift) / scale);
            u64::try_from(whole).map_err(|_| too_large())
        }
    }
}

// ---------------------------------------------------------------------------------------
// Reading a dataset's own properties
// ---------------------------------------------------------------------------------------

/// What `zfs send -p` sends of a dataset (`send_iterate_prop` in
/// libzfs_sendrecv.c): the properties whose source is the dataset itself (set
/// locally) or `$recvd` (received), system ones of the names in `props`, and user
/// ones. `zfs.get_prop` gives index properties by name; `xattr=on` is resolved to
/// `sa` or `dir` here, where the kernel's meaning is known (OpenZFS 2.3, which made
/// `on` mean `sa`, is also the first with the `direct` property).
const LOCAL_PROPS_PROGRAM: &str = r#"
local args = ...
local root = args["root"]
local recursive = args["recursive"]
local wanted = {}
for p in string.gmatch(args["props"], "[^,]+") do wanted[p] = true end
local out = {}
local function own(ds, src) return src == ds or src == "$recvd" end
-- As in the listing: the kernel's iterators assert on names with no room for a child.
local function room(ds) return #ds <= 253 end
local function visit(ds)
    local t = {}
    local names = zfs.list.system_properties(ds)
    local known = {}
    for _, p in ipairs(names) do known[p] = true end
    for _, p in ipairs(names) do
        if wanted[p] then
            local v, src = zfs.get_prop(ds, p)
            if v ~= nil and own(ds, src) then
                if p == "xattr" and v == "on" then
                    if known["direct"] then v = "sa" else v = "dir" end
                end
                t[p] = v
            end
        end
    end
    for p, v, src in zfs.list.user_properties(ds) do
        if own(ds, src) then t[p] = v end
    end
    out[ds] = t
    if recursive and room(ds) then
        for child in zfs.list.children(ds) do visit(child) end
    end
end
if not zfs.exists(root) then
    return {missing = root}
end
visit(root)
return {datasets = out}
"#;

/// A dataset and its properties, as [`Zfs::local_properties`] returns them.
pub type DatasetProps = (DatasetName, Vec<(String, PropValue)>);

impl Zfs {
    /// The properties of `dataset` (and of its filesystem and volume descendants
    /// with `recursive`, parents first) that `zfs send -p` would send: those set
    /// locally or received, user properties included, each converted by
    /// [`from_listing`] to what a receive takes (pass them, with [`to_nvlist`], as
    /// [`ReceiveOptions::received`](crate::ReceiveOptions::received)). Properties a
    /// receive cannot set are left out; so are user property values that are not
    /// UTF-8. Each dataset's properties are sorted by name.
    ///
    /// Read with one read-only channel program (root only, as for
    /// [`Zfs::list`]); a tree too large for one program is read dataset by dataset.
    /// A missing `dataset` is an [`ErrorKind::NotFound`](crate::ErrorKind::NotFound)
    /// error.
    ///
    /// Differences from `zfs send -p`: a value changed for the current mount only
    /// (`mount -o noatime`, source `temporary`) hides the stored local value, and a
    /// `mountpoint` of a pool imported with an altroot includes that root.
    pub fn local_properties(
        &self,
        dataset: &DatasetName,
        recursive: bool,
    ) -> Result<Vec<DatasetProps>> {
        match self.local_properties_program(dataset, recursive, ProgramLimits::MAX) {
            Err(e) if recursive && over_limits(&e) => {
                let Some(tree) = self.list_fields(dataset, true, false, Fields::NAMES)? else {
                    return Err(not_found(dataset));
                };
                let mut all = Vec::with_capacity(tree.len());
                for l in tree {
                    match self.local_properties_program(&l.dataset.name, false, ProgramLimits::MAX)
                    {
                        Ok(mut one) => all.append(&mut one),
                        // Destroyed since it was listed.
                        Err(e) if e.kind() == crate::ErrorKind::NotFound => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(all)
            }
            other => other,
        }
    }

    /// One program reading the properties of `root` (and its descendants).
    #[doc(hidden)]
    pub fn local_properties_program(
        &self,
        root: &DatasetName,
        recursive: bool,
        limits: ProgramLimits,
    ) -> Result<Vec<DatasetProps>> {
        let wanted: Vec<&str> = PROPERTIES
            .iter()
            .filter(|p| p.receivable)
            .map(|p| p.name)
            .collect();
        let mut args = NvList::new();
        args.insert("root", root.as_str())?;
        args.insert("recursive", &recursive)?;
        args.insert("props", wanted.join(",").as_str())?;
        let out = self
            .channel_program(root.pool(), LOCAL_PROPS_PROGRAM, &args, limits, false)
            .map_err(|e| relabel(e, Op::GetProps, root))?;
        let datasets =
            crate::list::program_datasets(&out, Op::GetProps)?.ok_or_else(|| not_found(root))?;
        let mut all = Vec::new();
        for (name, props) in datasets.iter() {
            let Some(props) = props.as_nvlist() else {
                continue;
            };
            let mut v: Vec<(String, PropValue)> = props
                .iter()
                .filter_map(|(k, raw)| {
                    let value = listed_value(&raw)?;
                    from_listing(k, value).ok().map(|p| (k.to_string(), p))
                })
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            all.push((DatasetName::new(name)?, v));
        }
        // Parents before children; siblings by name.
        all.sort_by(|a, b| a.0.as_str().split('/').cmp(b.0.as_str().split('/')));
        Ok(all)
    }
}

/// A value of a channel program's result: a string, or a Lua integer (int64: a
/// uint64 above `i64::MAX` comes back negative, and the cast restores its bits).
fn listed_value(v: &Value<'_>) -> Option<PropValue> {
    match v {
        Value::String(_) => v.as_str().map(|s| PropValue::String(s.to_string())),
        Value::UInt64(n) => Some(PropValue::Number(*n)),
        _ => v.as_int().map(|n| PropValue::Number(n as u64)),
    }
}

fn not_found(dataset: &DatasetName) -> Error {
    zfs_error(libc::ENOENT, Op::GetProps, dataset.as_str(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables() -> impl Iterator<Item = (&'static Property, &'static [(&'static str, u64)])> {
        PROPERTIES.iter().filter_map(|p| match p.kind {
            PropKind::Index(t) => Some((p, t)),
            _ => None,
        })
    }

    #[test]
    fn names_are_unique_and_not_user_properties() {
        for (i, p) in PROPERTIES.iter().enumerate() {
            assert!(
                PROPERTIES[..i].iter().all(|q| q.name != p.name),
                "{} twice",
                p.name
            );
            assert!(!is_user_property(p.name), "{}", p.name);
            assert_eq!(property(p.name), Some(p));
            assert_eq!(is_receivable(p.name), p.receivable, "{}", p.name);
        }
        for (p, t) in tables() {
            for (i, (n, _)) in t.iter().enumerate() {
                assert!(t[..i].iter().all(|(m, _)| m != n), "{}: {n} twice", p.name);
            }
        }
    }

    /// `zfs_prop_inheritable` is false for `PROP_DEFAULT` and `PROP_ONETIME_DEFAULT`
    /// properties (zfs_prop.c).
    #[test]
    fn properties_children_do_not_inherit() {
        let own: Vec<&str> = PROPERTIES
            .iter()
            .filter(|p| !p.inheritable)
            .map(|p| p.name)
            .collect();
        assert_eq!(
            own,
            [
                "canmount",
                "volthreading",
                "context",
                "fscontext",
                "defcontext",
                "rootcontext",
                "quota",
                "reservation",
                "volsize",
                "refquota",
                "refreservation",
                "filesystem_limit",
                "snapshot_limit",
                "version",
                "keylocation",
                "keyformat",
                "pbkdf2iters",
            ]
        );
        assert!(!excludable_by_inherit("quota"));
        assert!(excludable_by_inherit("mountpoint"));
        assert!(excludable_by_inherit("a:b"));
        assert!(excludable_by_inherit("nosuch"));
    }

    #[test]
    fn every_index_value_round_trips() {
        for (p, table) in tables() {
            for &(name, value) in table {
                // string -> number -> string: back to the value's first name, which
                // is `name` itself unless `name` is an alias.
                assert_eq!(p.index_value(name), Some(value), "{}={name}", p.name);
                let first = p.index_name(value).unwrap();
                assert_eq!(p.index_value(first), Some(value), "{}={name}", p.name);
                let is_first = table.iter().find(|(_, v)| *v == value).unwrap().0 == name;
                assert_eq!(first == name, is_first, "{}={name}", p.name);
                if !p.receivable {
                    assert!(parse_property(p.name, name).is_err());
                    continue;
                }
                let num = PropValue::Number(value);
                assert_eq!(parse_property(p.name, name), Ok(num.clone()));
                let listed = PropValue::String(name.into());
                assert_eq!(from_listing(p.name, listed), Ok(num.clone()));
                assert_eq!(from_listing(p.name, num.clone()), Ok(num));
            }
        }
    }

    /// Values computed by hand from the OpenZFS headers (sys/zio.h,
    /// sys/zio_compress.h, sys/fs/zfs.h, sys/u8_textprep.h).
    #[test]
    fn index_values_match_the_headers() {
        let v = |p: &str, n: &str| property(p).unwrap().index_value(n).unwrap();
        assert_eq!(v("compression", "lz4"), 15);
        assert_eq!(v("compression", "gzip"), 10);
        assert_eq!(v("compression", "gzip-1"), 5);
        assert_eq!(v("compression", "gzip-9"), 13);
        assert_eq!(v("compression", "zstd"), 16);
        // ZIO_COMPLEVEL_ZSTD(level) = ZIO_COMPRESS_ZSTD | level << SPA_COMPRESSBITS.
        assert_eq!(v("compression", "zstd-1"), 16 | 1 << 7);
        assert_eq!(v("compression", "zstd-9"), 1168);
        assert_eq!(v("compression", "zstd-19"), 16 | 19 << 7);
        // ZIO_ZSTD_LEVEL_FAST_1 = 103 ... FAST_10 = 112, FAST_20 = 113 ... FAST_1000 = 123.
        assert_eq!(v("compression", "zstd-fast"), 16 | 103 << 7);
        assert_eq!(v("compression", "zstd-fast-1"), 16 | 103 << 7);
        assert_eq!(v("compression", "zstd-fast-10"), 16 | 112 << 7);
        assert_eq!(v("compression", "zstd-fast-20"), 16 | 113 << 7);
        assert_eq!(v("compression", "zstd-fast-100"), 16 | 121 << 7);
        assert_eq!(v("compression", "zstd-fast-500"), 16 | 122 << 7);
        assert_eq!(v("compression", "zstd-fast-1000"), 16 | 123 << 7);
        assert_eq!(v("checksum", "fletcher4"), 7);
        assert_eq!(v("checksum", "blake3"), 14);
        assert_eq!(v("dedup", "verify"), 1 | 256);
        assert_eq!(v("dedup", "sha256,verify"), 8 | 256);
        assert_eq!(v("dedup", "edonr,verify"), 13 | 256);
        assert_eq!(v("xattr", "sa"), 2);
        assert_eq!(v("xattr", "dir"), 1);
        assert_eq!(v("dnodesize", "16k"), 16384);
        assert_eq!(v("canmount", "noauto"), 2);
        assert_eq!(v("redundant_metadata", "none"), 3);
        assert_eq!(v("normalization", "formKC"), 0x60);
        assert_eq!(v("encryption", "aes-256-gcm"), 8);
        assert_eq!(v("aclinherit", "passthrough-x"), 5);
        // Names the kernel gives first for a value shared by several.
        let name = |p: &str, n: u64| property(p).unwrap().index_name(n).unwrap();
        assert_eq!(name("compression", 10), "gzip");
        assert_eq!(name("compression", 16 | 103 << 7), "zstd-fast");
        assert_eq!(name("acltype", 1), "posix");
        assert_eq!(name("volmode", 1), "full");
    }

    #[test]
    fn sizes_are_read_as_zfs_set_reads_them() {
        let ok = [
            ("0", 0),
            ("512", 512),
            ("128K", 128 << 10),
            ("128k", 128 << 10),
            ("1M", 1 << 20),
            ("1.5G", 3u64 << 29),
            ("10GiB", 10u64 << 30),
            ("10gb", 10u64 << 30),
            ("1KB", 1024),
            ("7B", 7),
            (".5K", 512),
            ("1.", 1),
            ("1.9", 1),
            ("0.001Z", 1_180_591_620_717_411_303),
            ("15E", 15u64 << 60),
            ("18446744073709551615", u64::MAX),
            ("00012", 12),
        ];
        for (text, want) in ok {
            assert_eq!(parse_size(text), Ok(want), "{text}");
        }
        let bad = [
            "",
            ".",
            "-1",
            "+1",
            " 1",
            "1 ",
            "K",
            "1X",
            "1BB",
            "1BiB",
            "1Ki",
            "1KiBs",
            "1Z",
            "0.5Z",
            "16E",
            "18446744073709551616",
            "18446744073709551616K",
            "99999999999999999999999999999.5",
            "1e3",
            "0x10",
            "１",
            "1💥",
        ];
        for text in bad {
            assert!(parse_size(text).is_err(), "{text}");
        }
    }

    #[test]
    fn parse_property_gives_what_the_kernel_takes() {
        let n = PropValue::Number;
        let s = |v: &str| PropValue::String(v.into());
        assert_eq!(parse_property("compression", "zstd-9"), Ok(n(1168)));
        assert_eq!(parse_property("atime", "off"), Ok(n(0)));
        assert_eq!(parse_property("canmount", "noauto"), Ok(n(2)));
        assert_eq!(parse_property("copies", "2"), Ok(n(2)));
        assert_eq!(parse_property("recordsize", "1M"), Ok(n(1 << 20)));
        assert_eq!(parse_property("recordsize", "512"), Ok(n(512)));
        assert_eq!(parse_property("quota", "10G"), Ok(n(10 << 30)));
        assert_eq!(parse_property("quota", "none"), Ok(n(0)));
        assert_eq!(parse_property("refquota", "none"), Ok(n(0)));
        assert_eq!(parse_property("reservation", "0"), Ok(n(0)));
        assert_eq!(parse_property("refreservation", "none"), Ok(n(0)));
        assert_eq!(parse_property("snapshot_limit", "none"), Ok(n(u64::MAX)));
        assert_eq!(parse_property("filesystem_limit", "100"), Ok(n(100)));
        assert_eq!(parse_property("special_small_blocks", "0"), Ok(n(0)));
        assert_eq!(
            parse_property("special_small_blocks", "64K"),
            Ok(n(64 << 10))
        );
        assert_eq!(parse_property("mountpoint", "/tmp/x"), Ok(s("/tmp/x")));
        assert_eq!(parse_property("mountpoint", "legacy"), Ok(s("legacy")));
        assert_eq!(
            parse_property("sharenfs", "rw=@10.0.0.0/8"),
            Ok(s("rw=@10.0.0.0/8"))
        );
        assert_eq!(parse_property("com.example:owner", "dru"), Ok(s("dru")));
        assert_eq!(parse_property("com.example:empty", ""), Ok(s("")));
        assert_eq!(parse_property("a:b", "ünïcode"), Ok(s("ünïcode")));
    }

    fn refusal(name: &str, value: &str) -> String {
        match parse_property(name, value) {
            Err(e) => {
                assert_eq!(e.name, clip(name));
                e.to_string()
            }
            Ok(v) => panic!("{name}={value:.40}: expected an error, got {v:?}"),
        }
    }

    #[test]
    fn parse_property_refuses_with_a_reason() {
        let m = refusal("compression", "zstd-99");
        assert!(m.starts_with("property \"compression\": \"zstd-99\" is not a valid value"));
        assert!(m.contains("one of: on, off, lzjb, gzip,") && m.contains("zstd-fast-1000"));
        assert!(refusal("atime", "yes").contains("one of: off, on"));
        assert!(refusal("recordsize", "1000").contains("not a power of two"));
        assert!(refusal("recordsize", "32M").contains("not a power of two"));
        assert!(refusal("recordsize", "256").contains("not a power of two"));
        assert!(refusal("recordsize", "none").contains("not a number"));
        assert!(refusal("special_small_blocks", "100").contains("neither 0"));
        assert!(refusal("quota", "0").contains("use 'none'"));
        assert!(refusal("refquota", "0").contains("use 'none'"));
        assert!(refusal("refreservation", "auto").contains("computed by libzfs"));
        assert!(refusal("volsize", "0").contains("cannot be 0"));
        assert!(refusal("quota", "-1").contains("\"-1\": not a number"));
        assert!(refusal("quota", "18446744073709551616K").contains("too large"));
        assert!(refusal("quota", "1X").contains("invalid suffix \"X\""));
        assert!(refusal("mountpoint", "tmp/x").contains("absolute path"));
        let long = format!("/{}", "c".repeat(256));
        assert!(refusal("mountpoint", &long).contains("component"));
        assert!(refusal("mountpoint", "/a\0b").contains("NUL byte (at byte 2)"));
        assert!(refusal("sharenfs", &"x".repeat(4096)).contains("4096 bytes"));
        assert!(refusal("a:b", &"x".repeat(8192)).contains("8192 bytes"));
        assert!(refusal("a:b", "x\0").contains("NUL"));
        assert!(refusal("casesensitivity", "mixed").contains("fixed when the dataset"));
        assert!(refusal("volblocksize", "8K").contains("fixed when the dataset"));
        assert!(refusal("keylocation", "prompt").contains("fixed"));
        assert!(refusal("used", "1").contains("unknown, or read-only"));
        assert!(refusal("nosuch", "1").contains("unknown, or read-only"));
        assert!(refusal("Com.Example:x", "1").contains("not a valid user property name"));
        assert!(refusal(&format!("a:{}", "b".repeat(254)), "1").contains("at most 255"));
        assert!(parse_property(&format!("a:{}", "b".repeat(253)), "1").is_ok());
    }

    #[test]
    fn from_listing_converts_a_channel_program_listing() {
        let n = PropValue::Number;
        let s = |v: &str| PropValue::String(v.into());
        assert_eq!(from_listing("compression", s("zstd-9")), Ok(n(1168)));
        assert_eq!(from_listing("compression", n(1168)), Ok(n(1168)));
        assert_eq!(from_listing("recordsize", n(1 << 20)), Ok(n(1 << 20)));
        // A uint64 above i64::MAX, as the listing restores it.
        assert_eq!(from_listing("snapshot_limit", n(u64::MAX)), Ok(n(u64::MAX)));
        assert_eq!(from_listing("quota", s("1M")), Ok(n(1 << 20)));
        assert_eq!(from_listing("mountpoint", s("/m")), Ok(s("/m")));
        assert_eq!(from_listing("a:b", s("v")), Ok(s("v")));
        // xattr=on, without the kernel's meaning: current OpenZFS's (sa).
        assert_eq!(from_listing("xattr", s("on")), Ok(n(2)));
        let bad = [
            ("compression", n(9999)),
            ("compression", s("zstd-99")),
            ("mountpoint", n(1)),
            ("a:b", n(1)),
            ("used", n(1)),
            ("casesensitivity", s("mixed")),
            ("encryption", s("on")),
            ("keylocation", s("prompt")),
            ("version", s("5")),
        ];
        for (name, v) in bad {
            assert!(from_listing(name, v.clone()).is_err(), "{name}={v:?}");
        }
    }

    #[test]
    fn user_property_names_follow_zfs() {
        for ok in ["a:b", ":", "com.example:owner", "org-x_y.z:0-9", "a::b"] {
            assert!(is_user_property(ok) && is_receivable(ok), "{ok}");
        }
        let long = format!("a:{}", "x".repeat(254));
        for bad in [
            "", "ab", "A:b", "a b:c", "a:b\0", "a:é", "a/b:c", "a@b:c", &long,
        ] {
            assert!(!is_user_property(bad) && !is_receivable(bad), "{bad:.20}");
        }
    }

    /// Odd input from a peer: nothing panics, every refusal names the property
    /// (clipped) and stays short.
    #[test]
    fn odd_input_never_panics() {
        let huge = "9".repeat(1 << 20);
        let huge_name = format!("x:{}", "y".repeat(1 << 20));
        let mut names: Vec<&str> = PROPERTIES.iter().map(|p| p.name).collect();
        names.extend([
            "",
            ":",
            "\0",
            "a:\0",
            "é:x",
            "💥",
            "compression\0",
            " compression",
            "COMPRESSION",
            huge.as_str(),
            huge_name.as_str(),
        ]);
        let values = [
            "",
            " ",
            "\0",
            "on\0",
            "zstd-99",
            "zstd-",
            "zstd-fast-0",
            "gzip-10",
            "-1",
            "-0",
            "+5",
            "0",
            ".",
            "..",
            "1..5",
            "1.5.5K",
            "1.5",
            "0.0000000000000000000000001Z",
            "18446744073709551616K",
            "18446744073709551615",
            "18446744073709551615.99",
            "9223372036854775808",
            "1E",
            "16E",
            "1Z",
            "0Z",
            "1KiBB",
            "NaN",
            "inf",
            "1e308",
            "é",
            "💥",
            "1💥",
            "1K💥",
            "１",
            "/",
            "//",
            "/\u{202e}",
            huge.as_str(),
        ];
        for name in &names {
            for value in values {
                if let Err(e) = parse_property(name, value) {
                    check_error(&e, name);
                }
                for v in [
                    PropValue::String(value.to_string()),
                    PropValue::Number(0),
                    PropValue::Number(u64::MAX),
                    PropValue::Number(i64::MAX as u64 + 1),
                ] {
                    if let Err(e) = from_listing(name, v) {
                        check_error(&e, name);
                    }
                }
            }
            let _ = is_receivable(name);
        }
    }

    fn check_error(e: &PropertyError, name: &str) {
        assert_eq!(e.name, clip(name));
        let m = e.to_string();
        assert!(m.len() < 2000, "{} bytes: {m:.200}", m.len());
    }

    /// Random strings over an alphabet of troublesome characters (a fixed seed:
    /// reproducible).
    #[test]
    fn random_input_never_panics() {
        const ALPHABET: &[&str] = &[
            "0", "1", "9", ".", "-", "+", "K", "k", "i", "B", "b", "Z", "E", "G", ":", "a", "z",
            "_", "/", "\0", " ", "é", "💥", "zstd", "none", "on", "off", "-fast",
        ];
        let names: Vec<&str> = PROPERTIES.iter().map(|p| p.name).collect();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let len = next() % 12;
            let text: String = (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect();
            let name = if next() % 4 == 0 {
                text.as_str()
            } else {
                names[(next() % names.len() as u64) as usize]
            };
            if let Err(e) = parse_property(name, &text) {
                check_error(&e, name);
            }
            if let Err(e) = from_listing(name, PropValue::String(text.clone())) {
                check_error(&e, name);
            }
            let _ = parse_size(&text);
        }
    }

    #[test]
    fn values_go_into_nvlists_with_their_kernel_types() {
        let props = [
            ("compression".to_string(), PropValue::Number(16)),
            ("a:b".to_string(), PropValue::String("v".into())),
        ];
        let nv = to_nvlist(props.iter().map(|(n, v)| (n.as_str(), v))).unwrap();
        assert_eq!(nv.get("compression"), Some(Value::UInt64(16)));
        assert_eq!(nv.get_str("a:b"), Some("v"));
        let nul = [("a:b", PropValue::String("x\0".into()))];
        assert!(to_nvlist(nul.iter().map(|(n, v)| (*n, v))).is_err());
    }

    #[test]
    fn errors_name_the_property_clipped_and_escaped() {
        let name = format!("a:{}\n", "b".repeat(100));
        let e = parse_property(&name, "\0").unwrap_err();
        assert_eq!(e.name.chars().count(), 65);
        assert!(e.name.ends_with('…'));
        let m = e.to_string();
        assert!(!m.contains('\n'), "{m}");
        let e: Error = e.into();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument);
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_values_are_untagged() {
        let n = PropValue::Number(u64::MAX);
        let s = PropValue::String("zstd".into());
        assert_eq!(serde_json::to_string(&n).unwrap(), "18446744073709551615");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"zstd\"");
        let back: Vec<PropValue> =
            serde_json::from_str("[18446744073709551615, \"zstd\", 0]").unwrap();
        assert_eq!(back, [n, s, PropValue::Number(0)]);
        for bad in ["-1", "1.5", "true", "null", "[1]", "{}"] {
            assert!(serde_json::from_str::<PropValue>(bad).is_err(), "{bad}");
        }
    }
}
