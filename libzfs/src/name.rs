//! Validated ZFS dataset, snapshot and bookmark names.
//!
//! Every name is checked in Rust, before any FFI call, against the rules of OpenZFS's
//! `zfs_namecheck.c` (`entity_namecheck` / `pool_namecheck`) plus libzfs's refusal of
//! `%` (reserved for internal temporary names):
//!
//! - at most [`MAX_NAME_LEN`] (255) bytes in total (`ZFS_MAX_DATASET_NAME_LEN` is 256
//!   including the NUL);
//! - components are separated by `/` and made of ASCII letters, digits and `_ - . :`
//!   and space; no component is empty (no leading, trailing or doubled `/`) or is `.`
//!   or `..`;
//! - a snapshot name has exactly one `@`, a bookmark name exactly one `#`, a dataset
//!   name neither; the short name after the delimiter is non-empty, uses the same
//!   characters and contains no `/`;
//! - the pool name (first component) begins with a letter, is at most
//!   [`MAX_POOL_NAME_LEN`] bytes, and is not one of the reserved words `mirror`,
//!   `raidz` or `draid`.
//!
//! ```
//! use libzfs::{DatasetName, SnapshotName};
//!
//! let fs = DatasetName::new("tank/home").unwrap();
//! let snap: SnapshotName = fs.snapshot("daily-1").unwrap();
//! assert_eq!(snap.as_str(), "tank/home@daily-1");
//! assert_eq!(snap.dataset(), fs);
//! assert!("tank/a$b".parse::<DatasetName>().is_err());
//! ```

use std::ffi::CString;
use std::fmt;
use std::str::FromStr;

/// The longest full name, in bytes (`ZFS_MAX_DATASET_NAME_LEN` minus the NUL).
pub const MAX_NAME_LEN: usize = 255;

/// The longest pool name, in bytes: `pool_namecheck` keeps room for
/// `"<pool>/$ORIGIN@$ORIGIN"` within `ZFS_MAX_DATASET_NAME_LEN`.
pub const MAX_POOL_NAME_LEN: usize = 256 - 2 - 2 * "$ORIGIN".len() - 1;

/// Pool names the kernel's `pool_namecheck` refuses.
const RESERVED_POOL_NAMES: [&str; 3] = ["mirror", "raidz", "draid"];

/// Why a string is not a valid ZFS name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is the empty string.
    #[error("a {kind} name cannot be empty")]
    Empty {
        /// What kind of name was expected ("dataset", "snapshot", ...).
        kind: &'static str,
    },
    /// The name is longer than [`MAX_NAME_LEN`] bytes.
    #[error("name {name:?} is {len} bytes long; the maximum is {max} bytes")]
    TooLong {
        /// The offending name.
        name: String,
        /// Its length in bytes.
        len: usize,
        /// The maximum length in bytes.
        max: usize,
    },
    /// The name contains a character ZFS does not allow.
    #[error("invalid character '{}' at byte {position} in {name:?}", ch.escape_debug())]
    InvalidChar {
        /// The offending name.
        name: String,
        /// The invalid character.
        ch: char,
        /// Its byte offset in `name`.
        position: usize,
    },
    /// A `/`-separated component is empty (leading, trailing or doubled `/`).
    #[error("{name:?} has an empty component (leading, trailing or doubled '/')")]
    EmptyComponent {
        /// The offending name.
        name: String,
    },
    /// A component is `.` or `..`.
    #[error("{name:?} has a \".\" or \"..\" component, which ZFS does not allow")]
    SelfOrParentComponent {
        /// The offending name.
        name: String,
    },
    /// A snapshot name without `@`, or a bookmark name without `#`.
    #[error("{name:?} is not a {} name: missing '{delimiter}'", delimiter_kind(*delimiter))]
    MissingDelimiter {
        /// The offending name.
        name: String,
        /// The missing delimiter, `@` or `#`.
        delimiter: char,
    },
    /// More than one `@` (or `#`).
    #[error("{name:?} contains more than one '{delimiter}'")]
    MultipleDelimiters {
        /// The offending name.
        name: String,
        /// The repeated delimiter.
        delimiter: char,
    },
    /// A delimiter that this kind of name cannot contain, e.g. `@` in a dataset name.
    #[error(
        "'{delimiter}' is not allowed in {name:?} (only {} names contain '{delimiter}')",
        delimiter_kind(*delimiter)
    )]
    UnexpectedDelimiter {
        /// The offending name.
        name: String,
        /// The unexpected delimiter.
        delimiter: char,
    },
    /// Nothing after the `@` or `#`.
    #[error("{name:?} has an empty {} name after '{delimiter}'", delimiter_kind(*delimiter))]
    EmptyShortName {
        /// The offending name.
        name: String,
        /// The delimiter, `@` or `#`.
        delimiter: char,
    },
    /// The first component is not an acceptable pool name.
    #[error("invalid pool name in {name:?}: {reason}")]
    BadPoolName {
        /// The offending name.
        name: String,
        /// Why the pool name is refused.
        reason: &'static str,
    },
}

fn delimiter_kind(delimiter: char) -> &'static str {
    match delimiter {
        '@' => "snapshot",
        '#' => "bookmark",
        _ => "dataset",
    }
}

/// Which kind of name is being validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dataset,
    Snapshot,
    Bookmark,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Dataset => "dataset",
            Kind::Snapshot => "snapshot",
            Kind::Bookmark => "bookmark",
        }
    }

    fn delimiter(self) -> Option<char> {
        match self {
            Kind::Dataset => None,
            Kind::Snapshot => Some('@'),
            Kind::Bookmark => Some('#'),
        }
    }
}

/// Characters allowed inside a component (`valid_char` in `zfs_namecheck.c`).
fn is_component_char(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.' | ':' | ' ')
}

fn is_self_or_parent(component: &str) -> bool {
    component == "." || component == ".."
}

fn validate(name: &str, kind: Kind) -> Result<(), NameError> {
    let owned = || name.to_owned();
    if name.is_empty() {
        return Err(NameError::Empty { kind: kind.noun() });
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong {
            name: owned(),
            len: name.len(),
            max: MAX_NAME_LEN,
        });
    }
    if let Some((position, ch)) = name
        .char_indices()
        .find(|&(_, c)| !(is_component_char(c) || matches!(c, '/' | '@' | '#')))
    {
        return Err(NameError::InvalidChar {
            name: owned(),
            ch,
            position,
        });
    }

    // Split off the short name after the delimiter, if this kind has one.
    let (dataset, short) = match kind.delimiter() {
        None => {
            if let Some(delimiter) = name.chars().find(|&c| c == '@' || c == '#') {
                return Err(NameError::UnexpectedDelimiter {
                    name: owned(),
                    delimiter,
                });
            }
            (name, None)
        }
        Some(delimiter) => {
            let other = if delimiter == '@' { '#' } else { '@' };
            if name.contains(other) {
                return Err(NameError::UnexpectedDelimiter {
                    name: owned(),
                    delimiter: other,
                });
            }
            match name.split_once(delimiter) {
                None => {
                    return Err(NameError::MissingDelimiter {
                        name: owned(),
                        delimiter,
                    })
                }
                Some((_, rest)) if rest.contains(delimiter) => {
                    return Err(NameError::MultipleDelimiters {
                        name: owned(),
                        delimiter,
                    })
                }
                Some((dataset, short)) => (dataset, Some((delimiter, short))),
            }
        }
    };

    for component in dataset.split('/') {
        if component.is_empty() {
            return Err(NameError::EmptyComponent { name: owned() });
        }
        if is_self_or_parent(component) {
            return Err(NameError::SelfOrParentComponent { name: owned() });
        }
    }

    if let Some((delimiter, short)) = short {
        if short.is_empty() {
            return Err(NameError::EmptyShortName {
                name: owned(),
                delimiter,
            });
        }
        if let Some(pos) = short.find('/') {
            return Err(NameError::InvalidChar {
                name: owned(),
                ch: '/',
                position: dataset.len() + 1 + pos,
            });
        }
        if is_self_or_parent(short) {
            return Err(NameError::SelfOrParentComponent { name: owned() });
        }
    }

    let pool = dataset.split('/').next().unwrap_or(dataset);
    let bad_pool = |reason| {
        Err(NameError::BadPoolName {
            name: owned(),
            reason,
        })
    };
    if !pool.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return bad_pool("a pool name must begin with a letter");
    }
    if RESERVED_POOL_NAMES.contains(&pool) {
        return bad_pool("\"mirror\", \"raidz\" and \"draid\" are reserved pool names");
    }
    if pool.len() > MAX_POOL_NAME_LEN {
        return bad_pool("a pool name can be at most 239 bytes long");
    }
    Ok(())
}

/// Implements the constructors and conversions shared by the three name types.
macro_rules! name_type {
    ($t:ident, $kind:expr, $noun:literal) => {
        impl $t {
            #[doc = concat!("Validates `name` as a ", $noun, " name.")]
            pub fn new(name: impl Into<String>) -> Result<$t, NameError> {
                let name = name.into();
                validate(&name, $kind)?;
                Ok($t(name))
            }

            /// The full name.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The full name as an owned `String`.
            pub fn into_string(self) -> String {
                self.0
            }

            /// The name as a C string for FFI calls. Cannot fail: valid names are ASCII
            /// without NUL bytes.
            #[allow(dead_code)] // used by the FFI wrappers
            pub(crate) fn to_cstring(&self) -> CString {
                CString::new(self.0.as_str()).expect("validated ZFS names contain no NUL")
            }
        }

        impl FromStr for $t {
            type Err = NameError;

            fn from_str(s: &str) -> Result<$t, NameError> {
                $t::new(s)
            }
        }

        impl TryFrom<&str> for $t {
            type Error = NameError;

            fn try_from(s: &str) -> Result<$t, NameError> {
                $t::new(s)
            }
        }

        impl TryFrom<String> for $t {
            type Error = NameError;

            fn try_from(s: String) -> Result<$t, NameError> {
                $t::new(s)
            }
        }

        impl From<$t> for String {
            fn from(name: $t) -> String {
                name.0
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

/// A validated filesystem or volume name, e.g. `tank/home/alice` (a bare pool name
/// such as `tank` is the pool's root dataset).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DatasetName(String);

/// A validated snapshot name, `<dataset>@<short name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SnapshotName(String);

/// A validated bookmark name, `<dataset>#<short name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BookmarkName(String);

name_type!(DatasetName, Kind::Dataset, "dataset");
name_type!(SnapshotName, Kind::Snapshot, "snapshot");
name_type!(BookmarkName, Kind::Bookmark, "bookmark");

impl DatasetName {
    /// The pool name (the first component).
    pub fn pool(&self) -> &str {
        pool_of(&self.0)
    }

    /// The parent dataset, or `None` for a pool's root dataset.
    pub fn parent(&self) -> Option<DatasetName> {
        // A `/`-prefix of a valid dataset name is itself valid.
        self.0
            .rsplit_once('/')
            .map(|(parent, _)| DatasetName(parent.to_owned()))
    }

    /// The descendant `self/rel`; `rel` may contain `/` (e.g. `"a/b"`).
    pub fn child(&self, rel: &str) -> Result<DatasetName, NameError> {
        DatasetName::new(format!("{}/{}", self.0, rel))
    }

    /// The snapshot `self@short`.
    pub fn snapshot(&self, short: &str) -> Result<SnapshotName, NameError> {
        SnapshotName::new(format!("{}@{}", self.0, short))
    }

    /// The bookmark `self#short`.
    pub fn bookmark(&self, short: &str) -> Result<BookmarkName, NameError> {
        BookmarkName::new(format!("{}#{}", self.0, short))
    }

    /// Whether this is a pool's root dataset (a single component).
    pub fn is_pool(&self) -> bool {
        !self.0.contains('/')
    }

    /// The nesting depth: 0 for a pool's root dataset, 1 for `tank/a`, and so on
    /// (the number of `/`, as `get_dataset_depth` counts).
    pub fn depth(&self) -> usize {
        self.0.matches('/').count()
    }

    /// Whether `self` is a proper descendant of `ancestor`, comparing whole components
    /// (`tank/a/b` is under `tank/a`; `tank/ab` and `tank/a` itself are not).
    pub fn is_descendant_of(&self, ancestor: &DatasetName) -> bool {
        self.0
            .strip_prefix(ancestor.as_str())
            .is_some_and(|rest| rest.starts_with('/'))
    }

    /// The `/`-separated components, pool first.
    pub fn components(&self) -> std::str::Split<'_, char> {
        self.0.split('/')
    }

    /// The last component (`alice` for `tank/home/alice`, `tank` for `tank`).
    pub fn last_component(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }
}

fn pool_of(name: &str) -> &str {
    let end = name.find(['/', '@', '#']).unwrap_or(name.len());
    &name[..end]
}

fn split_at_delimiter(name: &str, delimiter: char) -> (&str, &str) {
    // Validated names of this kind contain exactly one delimiter.
    name.split_once(delimiter).unwrap_or((name, ""))
}

impl SnapshotName {
    /// The dataset the snapshot belongs to.
    pub fn dataset(&self) -> DatasetName {
        DatasetName(self.dataset_str().to_owned())
    }

    /// The dataset part, before the `@`.
    pub fn dataset_str(&self) -> &str {
        split_at_delimiter(&self.0, '@').0
    }

    /// The short snapshot name, after the `@`.
    pub fn short_name(&self) -> &str {
        split_at_delimiter(&self.0, '@').1
    }

    /// The pool name.
    pub fn pool(&self) -> &str {
        pool_of(&self.0)
    }

    /// The bookmark `<dataset>#short` of the same dataset.
    pub fn bookmark(&self, short: &str) -> Result<BookmarkName, NameError> {
        BookmarkName::new(format!("{}#{}", self.dataset_str(), short))
    }
}

impl BookmarkName {
    /// The dataset the bookmark belongs to.
    pub fn dataset(&self) -> DatasetName {
        DatasetName(self.dataset_str().to_owned())
    }

    /// The dataset part, before the `#`.
    pub fn dataset_str(&self) -> &str {
        split_at_delimiter(&self.0, '#').0
    }

    /// The short bookmark name, after the `#`.
    pub fn short_name(&self) -> &str {
        split_at_delimiter(&self.0, '#').1
    }

    /// The pool name.
    pub fn pool(&self) -> &str {
        pool_of(&self.0)
    }
}

/// The source of an incremental send: a snapshot or a bookmark.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SendSource {
    /// `<dataset>@<snapshot>`.
    Snapshot(SnapshotName),
    /// `<dataset>#<bookmark>`.
    Bookmark(BookmarkName),
}

impl SendSource {
    /// Parses a snapshot (`@`) or bookmark (`#`) name; same as [`str::parse`].
    pub fn new(name: &str) -> Result<SendSource, NameError> {
        name.parse()
    }

    /// The full name.
    pub fn as_str(&self) -> &str {
        match self {
            SendSource::Snapshot(s) => s.as_str(),
            SendSource::Bookmark(b) => b.as_str(),
        }
    }

    /// The dataset part, before the `@` or `#`.
    pub fn dataset_str(&self) -> &str {
        match self {
            SendSource::Snapshot(s) => s.dataset_str(),
            SendSource::Bookmark(b) => b.dataset_str(),
        }
    }

    /// The dataset the snapshot or bookmark belongs to.
    pub fn dataset(&self) -> DatasetName {
        DatasetName(self.dataset_str().to_owned())
    }

    /// The short name, after the `@` or `#`.
    pub fn short_name(&self) -> &str {
        match self {
            SendSource::Snapshot(s) => s.short_name(),
            SendSource::Bookmark(b) => b.short_name(),
        }
    }

    /// Whether this is a bookmark.
    pub fn is_bookmark(&self) -> bool {
        matches!(self, SendSource::Bookmark(_))
    }

    /// The name as a C string for FFI calls.
    #[allow(dead_code)] // used by the FFI wrappers
    pub(crate) fn to_cstring(&self) -> CString {
        match self {
            SendSource::Snapshot(s) => s.to_cstring(),
            SendSource::Bookmark(b) => b.to_cstring(),
        }
    }
}

impl From<SnapshotName> for SendSource {
    fn from(s: SnapshotName) -> SendSource {
        SendSource::Snapshot(s)
    }
}

impl From<BookmarkName> for SendSource {
    fn from(b: BookmarkName) -> SendSource {
        SendSource::Bookmark(b)
    }
}

impl FromStr for SendSource {
    type Err = NameError;

    /// A name containing `#` is parsed as a bookmark, otherwise as a snapshot.
    fn from_str(s: &str) -> Result<SendSource, NameError> {
        if s.is_empty() {
            return Err(NameError::Empty {
                kind: "snapshot or bookmark",
            });
        }
        if s.contains('#') {
            BookmarkName::new(s).map(SendSource::Bookmark)
        } else {
            SnapshotName::new(s).map(SendSource::Snapshot)
        }
    }
}

impl TryFrom<&str> for SendSource {
    type Error = NameError;

    fn try_from(s: &str) -> Result<SendSource, NameError> {
        s.parse()
    }
}

impl fmt::Display for SendSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for SendSource {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(s: &str) -> DatasetName {
        DatasetName::new(s).unwrap()
    }

    #[test]
    fn valid_dataset_names() {
        for n in [
            "tank",
            "tank/home",
            "tank/home/alice",
            "T",
            "rpool/ROOT/ubuntu_1",
            "tank/a-b_c.d:e",
            "tank/with space",
            "tank/...",
            "tank/.hidden",
            "pool9/0leading-digit",
            "mirror2",
            "raidz-pool/x",
        ] {
            assert_eq!(DatasetName::new(n).unwrap().as_str(), n, "{n}");
        }
    }

    #[test]
    fn valid_snapshot_and_bookmark_names() {
        let s = SnapshotName::new("tank/fs@snap-1").unwrap();
        assert_eq!(s.dataset_str(), "tank/fs");
        assert_eq!(s.dataset(), ds("tank/fs"));
        assert_eq!(s.short_name(), "snap-1");
        assert_eq!(s.pool(), "tank");
        let b = BookmarkName::new("tank#mark 2").unwrap();
        assert_eq!(b.dataset_str(), "tank");
        assert_eq!(b.dataset(), ds("tank"));
        assert_eq!(b.short_name(), "mark 2");
        assert_eq!(b.pool(), "tank");
    }

    #[test]
    fn spaces_allowed() {
        assert!(DatasetName::new("tank/my files").is_ok());
        assert!(SnapshotName::new("tank/my files@before upgrade").is_ok());
        assert!(BookmarkName::new("tank# b").is_ok());
    }

    #[test]
    fn length_limits() {
        let ok = format!("tank/{}", "a".repeat(MAX_NAME_LEN - 5));
        assert_eq!(ok.len(), 255);
        assert!(DatasetName::new(ok.clone()).is_ok());
        let too_long = format!("{ok}b");
        assert_eq!(
            DatasetName::new(too_long.clone()),
            Err(NameError::TooLong {
                name: too_long,
                len: 256,
                max: 255
            })
        );
        let snap_ok = format!("tank@{}", "s".repeat(250));
        assert!(SnapshotName::new(snap_ok.clone()).is_ok());
        assert!(matches!(
            SnapshotName::new(format!("{snap_ok}s")),
            Err(NameError::TooLong { len: 256, .. })
        ));
    }

    #[test]
    fn empty_names() {
        assert_eq!(
            DatasetName::new(""),
            Err(NameError::Empty { kind: "dataset" })
        );
        assert_eq!(
            SnapshotName::new(""),
            Err(NameError::Empty { kind: "snapshot" })
        );
        assert_eq!(
            BookmarkName::new(""),
            Err(NameError::Empty { kind: "bookmark" })
        );
        assert_eq!(
            DatasetName::new("").unwrap_err().to_string(),
            "a dataset name cannot be empty"
        );
    }

    fn invalid_char(name: &str) -> (char, usize) {
        match DatasetName::new(name) {
            Err(NameError::InvalidChar {
                name: n,
                ch,
                position,
            }) => {
                assert_eq!(n, name);
                (ch, position)
            }
            other => panic!("{name:?}: {other:?}"),
        }
    }

    #[test]
    fn shell_metacharacters_rejected() {
        assert_eq!(invalid_char("tank/a$b"), ('$', 6));
        assert_eq!(invalid_char("tank/$(rm -rf)"), ('$', 5));
        assert_eq!(invalid_char("tank/a;b"), (';', 6));
        assert_eq!(invalid_char("tank/'q'"), ('\'', 5));
        assert_eq!(invalid_char("tank/\"q\""), ('"', 5));
        assert_eq!(invalid_char("tank/`x`"), ('`', 5));
        assert_eq!(invalid_char("tank/a|b"), ('|', 6));
        assert_eq!(invalid_char("tank/a*"), ('*', 6));
        assert_eq!(invalid_char("tank/a%b"), ('%', 6));
        assert_eq!(invalid_char("tank/a\\b"), ('\\', 6));
    }

    #[test]
    fn control_and_non_ascii_rejected() {
        assert_eq!(invalid_char("tank/a\nb"), ('\n', 6));
        assert_eq!(invalid_char("tank/a\0b"), ('\0', 6));
        assert_eq!(invalid_char("tank/\t"), ('\t', 5));
        assert_eq!(invalid_char("tank/é"), ('é', 5));
        assert_eq!(invalid_char("tank/xé"), ('é', 6));
        assert_eq!(invalid_char("tänk"), ('ä', 1));
        let snap = SnapshotName::new("tank@a\u{1b}");
        assert!(matches!(
            snap,
            Err(NameError::InvalidChar {
                ch: '\u{1b}',
                position: 6,
                ..
            })
        ));
    }

    #[test]
    fn invalid_char_message() {
        assert_eq!(
            DatasetName::new("tank/a$b").unwrap_err().to_string(),
            "invalid character '$' at byte 6 in \"tank/a$b\""
        );
        assert_eq!(
            DatasetName::new("tank/a\0b").unwrap_err().to_string(),
            "invalid character '\\0' at byte 6 in \"tank/a\\0b\""
        );
        assert_eq!(
            DatasetName::new("tank/\n").unwrap_err().to_string(),
            "invalid character '\\n' at byte 5 in \"tank/\\n\""
        );
    }

    #[test]
    fn empty_components() {
        for n in ["/tank", "tank/", "tank//a", "tank/a/", "/"] {
            assert_eq!(
                DatasetName::new(n),
                Err(NameError::EmptyComponent { name: n.into() }),
                "{n}"
            );
        }
        assert_eq!(
            SnapshotName::new("@snap"),
            Err(NameError::EmptyComponent {
                name: "@snap".into()
            })
        );
        assert_eq!(
            SnapshotName::new("tank/@snap"),
            Err(NameError::EmptyComponent {
                name: "tank/@snap".into()
            })
        );
    }

    #[test]
    fn self_and_parent_components() {
        for n in ["tank/.", "tank/..", "tank/./a", "tank/../a"] {
            assert_eq!(
                DatasetName::new(n),
                Err(NameError::SelfOrParentComponent { name: n.into() }),
                "{n}"
            );
        }
        assert!(matches!(
            SnapshotName::new("tank@.."),
            Err(NameError::SelfOrParentComponent { .. })
        ));
        assert!(matches!(
            BookmarkName::new("tank/..#b"),
            Err(NameError::SelfOrParentComponent { .. })
        ));
    }

    #[test]
    fn missing_delimiter() {
        let err = SnapshotName::new("tank/fs").unwrap_err();
        assert_eq!(
            err,
            NameError::MissingDelimiter {
                name: "tank/fs".into(),
                delimiter: '@'
            }
        );
        assert_eq!(
            err.to_string(),
            "\"tank/fs\" is not a snapshot name: missing '@'"
        );
        assert_eq!(
            BookmarkName::new("tank/fs").unwrap_err().to_string(),
            "\"tank/fs\" is not a bookmark name: missing '#'"
        );
    }

    #[test]
    fn multiple_delimiters() {
        assert_eq!(
            SnapshotName::new("tank@a@b"),
            Err(NameError::MultipleDelimiters {
                name: "tank@a@b".into(),
                delimiter: '@'
            })
        );
        assert!(matches!(
            SnapshotName::new("tank@@a"),
            Err(NameError::MultipleDelimiters { .. })
        ));
        assert!(matches!(
            BookmarkName::new("tank#a#b"),
            Err(NameError::MultipleDelimiters { delimiter: '#', .. })
        ));
        assert!(SnapshotName::new("tank@a@b")
            .unwrap_err()
            .to_string()
            .contains("more than one '@'"));
    }

    #[test]
    fn unexpected_delimiters() {
        assert_eq!(
            DatasetName::new("tank/fs@snap"),
            Err(NameError::UnexpectedDelimiter {
                name: "tank/fs@snap".into(),
                delimiter: '@'
            })
        );
        assert!(matches!(
            DatasetName::new("tank#b"),
            Err(NameError::UnexpectedDelimiter { delimiter: '#', .. })
        ));
        assert!(matches!(
            SnapshotName::new("tank@a#b"),
            Err(NameError::UnexpectedDelimiter { delimiter: '#', .. })
        ));
        assert!(matches!(
            BookmarkName::new("tank@a#b"),
            Err(NameError::UnexpectedDelimiter { delimiter: '@', .. })
        ));
        assert_eq!(
            DatasetName::new("tank/fs@snap").unwrap_err().to_string(),
            "'@' is not allowed in \"tank/fs@snap\" (only snapshot names contain '@')"
        );
    }

    #[test]
    fn empty_short_names() {
        assert_eq!(
            SnapshotName::new("tank/fs@"),
            Err(NameError::EmptyShortName {
                name: "tank/fs@".into(),
                delimiter: '@'
            })
        );
        assert!(matches!(
            BookmarkName::new("tank#"),
            Err(NameError::EmptyShortName { delimiter: '#', .. })
        ));
        assert_eq!(
            SnapshotName::new("tank@").unwrap_err().to_string(),
            "\"tank@\" has an empty snapshot name after '@'"
        );
    }

    #[test]
    fn slash_in_short_name() {
        assert_eq!(
            SnapshotName::new("tank@a/b"),
            Err(NameError::InvalidChar {
                name: "tank@a/b".into(),
                ch: '/',
                position: 6
            })
        );
        assert!(matches!(
            BookmarkName::new("tank/fs#x/"),
            Err(NameError::InvalidChar {
                ch: '/',
                position: 9,
                ..
            })
        ));
    }

    #[test]
    fn bad_pool_names() {
        for n in ["1tank", "_tank/a", "-x", ".pool", " tank", ":p/q"] {
            assert!(
                matches!(
                    DatasetName::new(n),
                    Err(NameError::BadPoolName {
                        reason: "a pool name must begin with a letter",
                        ..
                    })
                ),
                "{n}"
            );
        }
        for n in ["mirror", "raidz/fs", "draid"] {
            assert!(
                matches!(DatasetName::new(n), Err(NameError::BadPoolName { .. })),
                "{n}"
            );
        }
        assert!(matches!(
            SnapshotName::new("mirror@s"),
            Err(NameError::BadPoolName { .. })
        ));
        let long_pool = "p".repeat(MAX_POOL_NAME_LEN);
        assert!(DatasetName::new(long_pool.clone()).is_ok());
        assert!(matches!(
            DatasetName::new(format!("{long_pool}p/a")),
            Err(NameError::BadPoolName { .. })
        ));
        assert_eq!(
            DatasetName::new("1tank").unwrap_err().to_string(),
            "invalid pool name in \"1tank\": a pool name must begin with a letter"
        );
    }

    #[test]
    fn dataset_accessors() {
        let d = ds("tank/home/alice");
        assert_eq!(d.pool(), "tank");
        assert_eq!(d.depth(), 2);
        assert!(!d.is_pool());
        assert_eq!(d.last_component(), "alice");
        assert_eq!(
            d.components().collect::<Vec<_>>(),
            ["tank", "home", "alice"]
        );
        let t = ds("tank");
        assert!(t.is_pool());
        assert_eq!(t.depth(), 0);
        assert_eq!(t.pool(), "tank");
        assert_eq!(t.parent(), None);
        assert_eq!(t.last_component(), "tank");
    }

    #[test]
    fn parents() {
        let d = ds("tank/home/alice");
        let p = d.parent().unwrap();
        assert_eq!(p, ds("tank/home"));
        assert_eq!(p.parent().unwrap(), ds("tank"));
        assert_eq!(p.parent().unwrap().parent(), None);
    }

    #[test]
    fn descendants_compare_whole_components() {
        let a = ds("tank/a");
        assert!(ds("tank/a/b").is_descendant_of(&a));
        assert!(ds("tank/a/b/c").is_descendant_of(&a));
        assert!(!ds("tank/ab").is_descendant_of(&a));
        assert!(!ds("tank/a").is_descendant_of(&a));
        assert!(!ds("tank").is_descendant_of(&a));
        assert!(ds("tank/a").is_descendant_of(&ds("tank")));
        assert!(!ds("tanker/a").is_descendant_of(&ds("tank")));
    }

    #[test]
    fn builders() {
        let d = ds("tank/fs");
        assert_eq!(d.child("a").unwrap(), ds("tank/fs/a"));
        assert_eq!(d.child("a/b c").unwrap(), ds("tank/fs/a/b c"));
        assert!(matches!(d.child(""), Err(NameError::EmptyComponent { .. })));
        assert!(matches!(
            d.child("/a"),
            Err(NameError::EmptyComponent { .. })
        ));
        assert!(matches!(
            d.child("a@s"),
            Err(NameError::UnexpectedDelimiter { .. })
        ));
        assert!(matches!(
            d.child(".."),
            Err(NameError::SelfOrParentComponent { .. })
        ));
        let s = d.snapshot("s1").unwrap();
        assert_eq!(s.as_str(), "tank/fs@s1");
        assert!(matches!(
            d.snapshot("a@b"),
            Err(NameError::MultipleDelimiters { .. })
        ));
        assert!(matches!(
            d.snapshot(""),
            Err(NameError::EmptyShortName { .. })
        ));
        let b = d.bookmark("b1").unwrap();
        assert_eq!(b.as_str(), "tank/fs#b1");
        assert_eq!(s.bookmark("b1").unwrap(), b);
        assert!(matches!(
            d.bookmark("x$"),
            Err(NameError::InvalidChar { ch: '$', .. })
        ));
    }

    #[test]
    fn child_too_long() {
        let d = ds(&format!("tank/{}", "a".repeat(240)));
        assert!(matches!(
            d.child(&"b".repeat(20)),
            Err(NameError::TooLong { .. })
        ));
    }

    #[test]
    fn conversions_and_traits() {
        let d: DatasetName = "tank/x".parse().unwrap();
        let d2 = DatasetName::try_from("tank/x").unwrap();
        let d3 = DatasetName::try_from(String::from("tank/x")).unwrap();
        assert_eq!(d, d2);
        assert_eq!(d2, d3);
        assert_eq!(d.to_string(), "tank/x");
        assert_eq!(d.as_ref(), "tank/x");
        assert_eq!(d, "tank/x");
        assert_eq!(d.to_cstring().as_bytes(), b"tank/x");
        assert_eq!(String::from(d.clone()), "tank/x");
        assert_eq!(d.clone().into_string(), "tank/x");
        assert!(ds("tank/a") < ds("tank/b"));
        let mut set = std::collections::HashSet::new();
        set.insert(d);
        assert!(set.contains(&d2));
        assert!("tank@s".parse::<SnapshotName>().is_ok());
        assert!(SnapshotName::try_from("tank").is_err());
        assert!(BookmarkName::try_from(String::from("tank#b")).is_ok());
        assert_eq!(
            BookmarkName::new("tank#b").unwrap().to_cstring().as_bytes(),
            b"tank#b"
        );
    }

    #[test]
    fn send_source_parsing() {
        let s: SendSource = "tank/fs@snap".parse().unwrap();
        assert!(matches!(s, SendSource::Snapshot(_)));
        assert!(!s.is_bookmark());
        assert_eq!(s.as_str(), "tank/fs@snap");
        assert_eq!(s.dataset_str(), "tank/fs");
        assert_eq!(s.dataset(), ds("tank/fs"));
        assert_eq!(s.short_name(), "snap");
        assert_eq!(s.to_string(), "tank/fs@snap");
        assert_eq!(s.to_cstring().as_bytes(), b"tank/fs@snap");

        let b = SendSource::new("tank/fs#mark").unwrap();
        assert!(b.is_bookmark());
        assert_eq!(b.dataset_str(), "tank/fs");
        assert_eq!(b.short_name(), "mark");
        assert_eq!(b.as_ref(), "tank/fs#mark");

        assert!(matches!(
            SendSource::try_from("tank/fs"),
            Err(NameError::MissingDelimiter { delimiter: '@', .. })
        ));
        assert!(matches!(
            "".parse::<SendSource>(),
            Err(NameError::Empty { .. })
        ));
        assert!(matches!(
            "tank@a#b".parse::<SendSource>(),
            Err(NameError::UnexpectedDelimiter { delimiter: '@', .. })
        ));
        assert!(matches!(
            "tank/fs@a$".parse::<SendSource>(),
            Err(NameError::InvalidChar { ch: '$', .. })
        ));
    }

    #[test]
    fn send_source_from() {
        let snap = SnapshotName::new("tank@s").unwrap();
        let book = BookmarkName::new("tank#b").unwrap();
        assert_eq!(
            SendSource::from(snap.clone()),
            SendSource::Snapshot(snap.clone())
        );
        assert_eq!(SendSource::from(book.clone()), SendSource::Bookmark(book));
        let src: SendSource = snap.into();
        assert_eq!(src.as_str(), "tank@s");
    }

    #[test]
    fn snapshot_of_root_and_deep() {
        let s = SnapshotName::new("tank@x").unwrap();
        assert_eq!(s.dataset(), ds("tank"));
        assert!(s.dataset().is_pool());
        let s = SnapshotName::new("tank/a/b/c@x:y").unwrap();
        assert_eq!(s.pool(), "tank");
        assert_eq!(s.dataset().depth(), 3);
        assert_eq!(s.short_name(), "x:y");
    }

    #[test]
    fn error_messages_name_the_input() {
        let cases: Vec<NameError> = vec![
            DatasetName::new("tank//a").unwrap_err(),
            DatasetName::new("tank/..").unwrap_err(),
            SnapshotName::new("tank@a@b").unwrap_err(),
            BookmarkName::new("tank").unwrap_err(),
            DatasetName::new("mirror").unwrap_err(),
        ];
        for e in cases {
            let msg = e.to_string();
            assert!(msg.contains('"'), "{msg}");
        }
        assert_eq!(
            DatasetName::new("tank//a").unwrap_err().to_string(),
            "\"tank//a\" has an empty component (leading, trailing or doubled '/')"
        );
    }
}
