//! Which properties travel and how they land: `--send-properties`,
//! `--exclude-property`, `--set` and `--inherit` (job keys `send_properties`,
//! `exclude_properties`, `set`, `inherit`).
//!
//! Properties travel beside the stream, never inside it: the source's locally set
//! (and received) properties are read with a channel program and passed to
//! libzfs_core's receive as the stream's own (`zfs send -p`), overrides as `-o` and
//! `-x`. What lands:
//! - without `--send-properties`, nothing but what the user sets: a target inherits
//!   from its parent on the backup host;
//! - with it, every property set on the source but those never sent (by default
//!   [`NEVER_BY_DEFAULT`]: a backup never takes the source's mount point or shares,
//!   so it mounts under the target's own tree);
//! - if `mountpoint` is sent anyway (an `exclude_properties` without it), every
//!   received filesystem gets `canmount=noauto` unless `set` names `canmount`: a
//!   backup never mounts over the backup host's own paths at boot;
//! - `readonly=on` on every receive unless the run is `--writable` or `set` names
//!   `readonly` (adopted targets included); the source's own `readonly` is never
//!   sent (a restore from a backup would otherwise come back read-only).
//!
//! Names and values are checked here before anything runs; a list that comes from a
//! peer is checked again by the side that takes it ([`check_list`]).

use crate::error::{err, Kind, Result};
use crate::proto::{PropValue, Property, MAX_PROPERTIES};

/// Never sent unless `exclude_properties` says otherwise: a backup host's own paths
/// and shares, and a key location that names a file on the source.
pub const NEVER_BY_DEFAULT: &[&str] = &["mountpoint", "sharenfs", "sharesmb", "keylocation"];

/// What a restricted `zrep serve` never takes from its client (see
/// [`crate::policy`]): they reach outside the backup, to the host's paths, shares,
/// files or zones.
pub const HOST_REACHING: &[&str] = &["mountpoint", "sharenfs", "sharesmb", "keylocation", "zoned"];

/// The longest property name (ZFS's `ZAP_MAXNAMELEN`, 256 with the NUL).
const MAX_NAME: usize = 255;
/// The longest string value (ZFS's `ZAP_MAXVALUELEN`, 8192 with the NUL).
const MAX_VALUE: usize = 8191;

/// The user's choice of what travels and lands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Choice {
    /// Send the source's properties.
    pub send: bool,
    /// Never sent ([`NEVER_BY_DEFAULT`] unless given).
    pub never: Vec<String>,
    /// Set on the target over what is received.
    pub set: Vec<Property>,
    /// Inherited on the target whatever is received.
    pub inherit: Vec<String>,
}

impl Choice {
    /// Checks the user's words: `set` as `PROP=VALUE`, names known to ZFS, values
    /// of the property's kind (`1M`, `zstd-9`, `noauto`).
    pub fn new(
        send: bool,
        never: Option<Vec<String>>,
        set: &[String],
        inherit: Vec<String>,
    ) -> Result<Choice> {
        let never =
            never.unwrap_or_else(|| NEVER_BY_DEFAULT.iter().map(|s| s.to_string()).collect());
        for n in never.iter().chain(&inherit) {
            check_name(n).map_err(|e| usage(&e))?;
        }
        let mut props = Vec::new();
        for s in set {
            let (name, value) = s
                .split_once('=')
                .ok_or_else(|| usage(&format!("--set {s:?}: write PROPERTY=VALUE")))?;
            let value = libzfs::props::parse_property(name, value)
                .map_err(|e| usage(&format!("--set {s}: {e}")))?;
            if props.iter().any(|p: &Property| p.name == name) {
                return Err(usage(&format!("--set names {name} twice")));
            }
            props.push(Property {
                name: name.to_string(),
                value: from_libzfs(value),
            });
        }
        if let Some(p) = props.iter().find(|p| inherit.contains(&p.name)) {
            return Err(usage(&format!(
                "{} is both set and inherited: choose one",
                p.name
            )));
        }
        Ok(Choice {
            send,
            never,
            set: props,
            inherit,
        })
    }

    /// Whether the target gets anything but `readonly`.
    pub fn is_plain(&self) -> bool {
        !self.send && self.set.is_empty() && self.inherit.is_empty()
    }

    /// What is received of the source's properties `source`: `None` without
    /// `--send-properties`.
    pub fn received(&self, source: Vec<Property>) -> Option<Vec<Property>> {
        self.send.then(|| {
            source
                .into_iter()
                .filter(|p| {
                    p.name != "readonly"
                        && !self.never.contains(&p.name)
                        && !self.inherit.contains(&p.name)
                })
                .collect()
        })
    }

    /// The overrides of one receive: `set`, `canmount=noauto` when a mount point is
    /// received, `readonly=on` unless `writable`.
    pub fn overrides(&self, received: Option<&[Property]>, writable: bool) -> Vec<Property> {
        let mut out = self.set.clone();
        let named =
            |n: &str| out.iter().any(|p| p.name == n) || self.inherit.iter().any(|i| i == n);
        let mut extra = Vec::new();
        if received.is_some_and(|r| r.iter().any(|p| p.name == "mountpoint")) && !named("canmount")
        {
            extra.push(Property {
                name: "canmount".into(),
                value: PropValue::Number(CANMOUNT_NOAUTO),
            });
        }
        if !writable && !named("readonly") {
            extra.push(Property {
                name: "readonly".into(),
                value: PropValue::Number(1),
            });
        }
        out.extend(extra);
        out
    }

    /// One line for `--dry-run -v` and `zrep check-config`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.send {
            parts.push(format!("properties sent but {}", self.never.join(", ")));
        }
        if !self.set.is_empty() {
            let set: Vec<String> = self
                .set
                .iter()
                .map(|p| format!("{}={}", p.name, shown(&p.name, &p.value)))
                .collect();
            parts.push(format!("set {}", set.join(", ")));
        }
        if !self.inherit.is_empty() {
            parts.push(format!("inherit {}", self.inherit.join(", ")));
        }
        if parts.is_empty() {
            "properties not sent".into()
        } else {
            parts.join("; ")
        }
    }
}

/// `canmount=noauto`'s index.
const CANMOUNT_NOAUTO: u64 = 2;

/// A value as `zfs get` shows it: an index property's number by its name.
fn shown(name: &str, v: &PropValue) -> String {
    match v {
        PropValue::Number(n) => libzfs::props::property(name)
            .and_then(|p| p.index_name(*n))
            .map_or_else(|| n.to_string(), str::to_string),
        PropValue::String(s) => s.clone(),
    }
}

fn usage(m: &str) -> crate::error::Error {
    err(Kind::Usage, m.to_string())
}

/// A property value from the library's form.
pub fn from_libzfs(v: libzfs::PropValue) -> PropValue {
    match v {
        libzfs::PropValue::Number(n) => PropValue::Number(n),
        libzfs::PropValue::String(s) => PropValue::String(s),
    }
}

/// A property name ZFS could know: a system property's (`a-z`, digits, `_`) or a
/// user property's (`module:name`, lower-case letters, digits, `:._-`), at most
/// 255 bytes.
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    let ok_chars = name.bytes().all(|b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b':' | b'.' | b'-')
    });
    if name.is_empty() || name.len() > MAX_NAME || !ok_chars {
        return Err(format!("{name:?} is not a property name"));
    }
    Ok(())
}

/// Checks a property list that crossed the wire: at most [`MAX_PROPERTIES`], each
/// once, names and string values of ZFS's sizes.
pub fn check_list(props: &[Property]) -> std::result::Result<(), String> {
    if props.len() > MAX_PROPERTIES {
        return Err(format!("{} properties, over {MAX_PROPERTIES}", props.len()));
    }
    let mut seen = std::collections::HashSet::new();
    for p in props {
        check_name(&p.name)?;
        if !seen.insert(p.name.as_str()) {
            return Err(format!("property {} named twice", p.name));
        }
        if let PropValue::String(v) = &p.value {
            if v.len() > MAX_VALUE || v.contains('\0') {
                return Err(format!(
                    "the value of {} is not a property value (NUL, or over {MAX_VALUE} bytes)",
                    p.name
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prop(name: &str, value: PropValue) -> Property {
        Property {
            name: name.into(),
            value,
        }
    }

    #[test]
    fn defaults_keep_the_backup_under_its_own_tree() {
        let c = Choice::new(true, None, &[], vec![]).unwrap();
        let source = vec![
            prop("compression", PropValue::Number(15)),
            prop("mountpoint", PropValue::String("/home".into())),
            prop("com.example:owner", PropValue::String("dru".into())),
        ];
        let r = c.received(source).unwrap();
        let names: Vec<&str> = r.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["compression", "com.example:owner"]);
        let o = c.overrides(Some(&r), false);
        assert_eq!(o, [prop("readonly", PropValue::Number(1))]);
        assert_eq!(c.overrides(Some(&r), true), []);
    }

    #[test]
    fn a_received_mount_point_never_mounts_by_itself() {
        let c = Choice::new(true, Some(vec![]), &[], vec![]).unwrap();
        let r = c
            .received(vec![prop("mountpoint", PropValue::String("/home".into()))])
            .unwrap();
        let o = c.overrides(Some(&r), true);
        assert_eq!(o, [prop("canmount", PropValue::Number(CANMOUNT_NOAUTO))]);
        let c = Choice::new(true, Some(vec![]), &["canmount=on".into()], vec![]).unwrap();
        let o = c.overrides(Some(&r), true);
        assert_eq!(o.len(), 1, "{o:?}");
        assert_eq!(o[0].name, "canmount");
    }

    #[test]
    fn without_send_properties_nothing_is_received() {
        let c = Choice::new(false, None, &[], vec!["compression".into()]).unwrap();
        assert_eq!(c.received(vec![prop("atime", PropValue::Number(0))]), None);
        assert!(!c.is_plain());
        assert!(Choice::default().is_plain());
    }

    #[test]
    fn bad_words_are_named() {
        let e = |set: &[&str], inherit: &[&str]| {
            let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
            let inherit = inherit.iter().map(|s| s.to_string()).collect();
            Choice::new(false, None, &set, inherit).unwrap_err().message
        };
        assert!(e(&["compression"], &[]).contains("PROPERTY=VALUE"));
        assert!(e(&["compression=lz4", "compression=off"], &[]).contains("twice"));
        assert!(e(&["atime=off"], &["atime"]).contains("both set and inherited"));
        assert!(e(&[], &["Bad Name"]).contains("not a property name"));
    }

    #[test]
    fn lists_from_a_peer_are_bounded() {
        let many: Vec<Property> = (0..=MAX_PROPERTIES)
            .map(|i| prop(&format!("a:p{i}"), PropValue::Number(1)))
            .collect();
        assert!(check_list(&many).unwrap_err().contains("over"));
        let twice = vec![prop("atime", PropValue::Number(0)); 2];
        assert!(check_list(&twice).unwrap_err().contains("twice"));
        let nul = vec![prop("a:b", PropValue::String("x\0y".into()))];
        assert!(check_list(&nul).is_err());
        let long = vec![prop("a:b", PropValue::String("x".repeat(MAX_VALUE + 1)))];
        assert!(check_list(&long).is_err());
        assert!(check_list(&[prop(&"a".repeat(256), PropValue::Number(0))]).is_err());
        assert!(check_list(&[prop("com.example:owner", PropValue::String("dru".into()))]).is_ok());
    }
}
