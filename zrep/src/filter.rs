//! Which datasets of a recursive job's tree travel, and why: include and exclude
//! patterns, and an opt-out property a dataset's owner can set. A pure module: it
//! sees names and one property value per dataset, never ZFS.
//!
//! # Paths
//!
//! A dataset is known by its path below the run's root: under root `tank`,
//! `tank/home/dru` is `home/dru`, and the root itself is `.` (the empty path).
//!
//! # Patterns
//!
//! Globs, matched against the whole relative path:
//!
//! | pattern        | matches                                  | not                      |
//! |----------------|------------------------------------------|--------------------------|
//! | `home/*`       | `home/dru`                               | `home`, `home/dru/cache` |
//! | `home/*/cache` | `home/dru/cache`                         | `home/cache`             |
//! | `**/tmp`       | `tmp`, `home/tmp`, `home/dru/tmp`        | `tmp/a`, `home/tmpfs`    |
//! | `home/**`      | `home/dru`, `home/dru/cache`             | `home`                   |
//! | `vm-?`         | `vm-1`, `vm-a`                           | `vm-10`                  |
//! | `vm-[12]`      | `vm-1`, `vm-2`                           | `vm-3`                   |
//! | `{db,www}/**`  | `db/data`, `www/logs`                    | `db`                     |
//!
//! - `*` and `?` stay within one path component; `**` as a whole component spans
//!   any number of components, none too (`**/tmp` matches `tmp`).
//! - `home/**` is everything below `home`, not `home` itself: exclude
//!   `home/**` to send `home` without its children, include `home` and
//!   `home/**` to send it with them.
//! - A pattern matches the whole path, never a part: `cache` is the child `cache`
//!   of the root only; `**/cache` is any dataset named `cache`.
//! - No pattern matches the root: `exclude = ["*"]` sends the root alone. To leave
//!   the root out, leave the job out (or opt it out, below).
//! - A pattern that can match no dataset is an error naming it and why: an empty
//!   one, one starting with `/` (paths are relative), one with an empty component
//!   (`home/`, `a//b`) or a `.` or `..` component, and what the glob syntax
//!   rejects (`[abc` unclosed, `{a,b` unclosed, a trailing `\`).
//!
//! # The opt-out property
//!
//! `zfs set zrep-rs:exclude=on tank/home/dru/scratch` leaves that dataset, and
//! everything below it, out of every recursive job, whatever the patterns say.
//! `on`, `yes` and `true` opt out; `off`, `no`, `false` and no value at all do not
//! (case does not matter). Any other value is an error naming the dataset, the
//! property and the value: a typo must not send, or silently skip, a dataset. ZFS
//! passes the property down to descendants like any user property.
//!
//! The property is in zrep's own namespace, apart from bolthole zrep's `zrep:`
//! properties, so that both can run side by side.
//!
//! # What travels
//!
//! The first rule that applies decides:
//!
//! 1. A dataset whose parent is excluded is excluded (`its parent X is excluded`):
//!    a receive cannot place a child under a missing parent. This holds even for a
//!    child that sets `zrep-rs:exclude=off` or that an include pattern matches.
//! 2. A dataset an exclude pattern matches is excluded (`excluded by "P"`, the first
//!    such pattern as written).
//! 3. A dataset whose `zrep-rs:exclude` is on, set on it or inherited, is excluded
//!    (`excluded by zrep-rs:exclude=on`).
//! 4. Without include patterns, every other dataset travels (`not excluded`).
//! 5. With include patterns, a dataset one of them matches travels
//!    (`included by "P"`), and so does every ancestor of a travelling dataset up to
//!    and with the root, which the receive needs (`parent of included X`, naming
//!    the first, by name, of the included datasets below it). Every other dataset
//!    stays (`not included`).
//!
//! Exclusion wins: an included dataset inside an excluded one stays, and pulls no
//! parent in. So every dataset that travels has its parent travelling too, up to
//! the root. Excluding a dataset takes all its children with it; to send a dataset
//! with only some of its children, include those (`include = ["data/keep"]` sends
//! `data` and `data/keep`) or exclude the others.
//!
//! # Example
//!
//! ```text
//! include = ["home/**", "srv/db"]
//! exclude = ["**/tmp", "home/*/cache"]
//! ```
//!
//! with `zrep-rs:exclude=on` set on `tank/home/dru/scratch`, gives under root `tank`:
//!
//! ```text
//! tank                       parent of included tank/home/dru
//! tank/home                  parent of included tank/home/dru
//! tank/home/dru              included by "home/**"
//! tank/home/dru/cache        excluded by "home/*/cache"
//! tank/home/dru/scratch      excluded by zrep-rs:exclude=on
//! tank/home/dru/scratch/keep excluded: its parent tank/home/dru/scratch is excluded
//! tank/home/dru/tmp          excluded by "**/tmp"
//! tank/srv                   parent of included tank/srv/db
//! tank/srv/db                included by "srv/db"
//! tank/srv/db/log            not included
//! tank/srv/www               not included
//! ```
//!
//! # The listing
//!
//! The names come from the listing of the tree, maybe a peer's. A name outside the
//! root's tree, a malformed one, one listed twice, or one whose parent is not listed
//! (only the root has none) is an error: such a listing cannot be trusted to
//! describe a tree.

use std::collections::HashMap;
use std::fmt;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::{Error, Kind};

/// The user property that leaves a dataset and its subtree out of recursive jobs.
pub use crate::names::OPT_OUT;

/// The values of [`OPT_OUT`] that leave a dataset out (compared without case).
const OPT_OUT_ON: [&str; 3] = ["on", "yes", "true"];

/// The values of [`OPT_OUT`] that do not (compared without case).
const OPT_OUT_OFF: [&str; 3] = ["off", "no", "false"];

/// One dataset of the tree, as listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// Full dataset name (`tank/home/dru`).
    pub name: &'a str,
    /// The effective value of [`OPT_OUT`], `None` when it is not set here or above.
    pub opt_out: Option<&'a str>,
    /// Whether the value is set on this dataset (else it is inherited); only the
    /// wording of the reason depends on it.
    pub local: bool,
}

/// Why a dataset travels or stays. Its `Display` is a short phrase for
/// `--dry-run` and `zrep check-config`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// Travels: no include patterns, and nothing excludes it.
    All,
    /// Travels: this include pattern (the first, as written) matches it.
    Included {
        /// The pattern.
        pattern: String,
    },
    /// Travels: it is an ancestor of an included dataset, which needs it on the target.
    ParentOfIncluded {
        /// The first (by name) included dataset below it.
        child: String,
    },
    /// Stays: there are include patterns, and it neither matches one nor holds a
    /// dataset that does.
    NotIncluded,
    /// Stays: this exclude pattern (the first, as written) matches it.
    Excluded {
        /// The pattern.
        pattern: String,
    },
    /// Stays: its [`OPT_OUT`] property says so.
    OptedOut {
        /// The value, as set.
        value: String,
        /// Set on the dataset itself (else inherited: from above the run's root,
        /// since a dataset inheriting it from inside the tree is excluded with its
        /// parent).
        local: bool,
    },
    /// Stays: its parent stays, and a child cannot be received without its parent.
    ParentExcluded {
        /// The parent's full name.
        parent: String,
    },
}

impl Reason {
    /// Whether a dataset with this reason travels.
    pub fn travels(&self) -> bool {
        matches!(
            self,
            Reason::All | Reason::Included { .. } | Reason::ParentOfIncluded { .. }
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::All => f.write_str("not excluded"),
            Reason::Included { pattern } => write!(f, "included by \"{pattern}\""),
            Reason::ParentOfIncluded { child } => write!(f, "parent of included {child}"),
            Reason::NotIncluded => f.write_str("not included"),
            Reason::Excluded { pattern } => write!(f, "excluded by \"{pattern}\""),
            Reason::OptedOut { value, local: true } => write!(f, "excluded by {OPT_OUT}={value}"),
            Reason::OptedOut {
                value,
                local: false,
            } => write!(f, "excluded by {OPT_OUT}={value} (inherited)"),
            Reason::ParentExcluded { parent } => {
                write!(f, "excluded: its parent {parent} is excluded")
            }
        }
    }
}

/// The fate of one dataset.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Decision {
    /// Full dataset name, as listed.
    pub name: String,
    /// Whether it is replicated.
    pub travels: bool,
    /// Why.
    pub reason: Reason,
}

impl fmt::Display for Decision {
    /// `tank/home/dru/cache  excluded by "home/*/cache"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}  {}", self.name, self.reason)
    }
}

/// A pattern that cannot be used, a property value that means nothing, or a listing
/// that is not a tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// An include or exclude pattern that is malformed or can match no dataset.
    #[error("bad {list} pattern \"{pattern}\": {why}")]
    Pattern {
        /// `include` or `exclude`.
        list: &'static str,
        /// The pattern as written.
        pattern: String,
        /// What is wrong with it.
        why: String,
    },
    /// An [`OPT_OUT`] value that is neither on nor off.
    #[error(
        "{dataset}: {}={value:?} is neither on nor off (nor yes/no, true/false); \
         set it to on or off, or zfs inherit it",
        OPT_OUT
    )]
    OptOutValue {
        /// The dataset (full name).
        dataset: String,
        /// The value found.
        value: String,
    },
    /// A listed name that is not the root or below it.
    #[error("{dataset:?} is not in the tree of {root}")]
    NotInTree {
        /// The name.
        dataset: String,
        /// The run's root.
        root: String,
    },
    /// A name with an empty component (`tank//a`, `tank/a/`, an empty root).
    #[error("{dataset:?} is not a dataset name")]
    BadName {
        /// The name.
        dataset: String,
    },
    /// A name listed twice.
    #[error("{dataset:?} is listed twice")]
    Duplicate {
        /// The name.
        dataset: String,
    },
    /// A dataset below the root whose parent is not listed.
    #[error("{dataset:?} is listed without its parent {parent:?}")]
    MissingParent {
        /// The name.
        dataset: String,
        /// Its parent's name.
        parent: String,
    },
}

impl From<FilterError> for Error {
    /// A pattern is the user's ([`Kind::Usage`]; the config loader words its own
    /// error, with the line), so is a property value ([`Kind::InvalidArgument`]); a
    /// listing that is not a tree is the peer's ([`Kind::Connection`], as for a name
    /// outside the tree in [`crate::replicate`]).
    fn from(e: FilterError) -> Error {
        let kind = match e {
            FilterError::Pattern { .. } => Kind::Usage,
            FilterError::OptOutValue { .. } => Kind::InvalidArgument,
            _ => Kind::Connection,
        };
        crate::error::err(kind, e.to_string())
    }
}

/// One list of patterns: as written, and compiled into one set.
#[derive(Debug, Clone, Default)]
struct Patterns {
    written: Vec<String>,
    set: GlobSet,
}

impl Patterns {
    /// Checks and compiles `patterns` (`list` names them in errors).
    fn new(list: &'static str, patterns: &[String]) -> Result<Patterns, FilterError> {
        let mut set = GlobSetBuilder::new();
        for p in patterns {
            let bad = |why: String| FilterError::Pattern {
                list,
                pattern: p.clone(),
                why,
            };
            check_pattern(p).map_err(|why| bad(why.to_string()))?;
            let glob = GlobBuilder::new(p)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| bad(e.kind().to_string()))?;
            set.add(glob);
        }
        let set = set.build().map_err(|e| FilterError::Pattern {
            list,
            pattern: e.glob().unwrap_or_default().to_string(),
            why: e.kind().to_string(),
        })?;
        Ok(Patterns {
            written: patterns.to_vec(),
            set,
        })
    }

    fn is_empty(&self) -> bool {
        self.written.is_empty()
    }

    /// The first pattern (as written) that matches relative path `rel`; `hits` is
    /// scratch space, kept between calls to spare an allocation per dataset.
    fn first_match(&self, rel: &str, hits: &mut Vec<usize>) -> Option<&str> {
        if self.is_empty() {
            return None;
        }
        self.set.matches_into(rel, hits);
        hits.first().map(|&i| self.written[i].as_str())
    }
}

/// Why pattern `p` can match no dataset, if it cannot; the glob syntax is
/// checked after.
fn check_pattern(p: &str) -> Result<(), &'static str> {
    if p.is_empty() {
        return Err("an empty pattern matches nothing");
    }
    if p.starts_with('/') {
        return Err("paths are relative to the root dataset: drop the leading /");
    }
    let dots = "no dataset is named . or ..: paths are relative to the root, which \
                no pattern matches";
    for component in p.split('/') {
        match component {
            "" => return Err("an empty component (a trailing / or //) matches no dataset"),
            "." | ".." => return Err(dots),
            _ => {}
        }
    }
    Ok(())
}

/// Whether an [`OPT_OUT`] value opts out: `Some(true)` for on, `Some(false)` for
/// off, `None` for a value that is neither.
fn opts_out(value: &str) -> Option<bool> {
    let is = |words: [&str; 3]| words.iter().any(|w| value.eq_ignore_ascii_case(w));
    if is(OPT_OUT_ON) {
        Some(true)
    } else if is(OPT_OUT_OFF) {
        Some(false)
    } else {
        None
    }
}

/// The listing as a tree: each candidate's relative path and parent.
struct Tree<'a> {
    /// Relative paths (`""` for the root), parallel to the candidates.
    rel: Vec<&'a str>,
    /// Each candidate's parent, `None` for the root.
    parent: Vec<Option<usize>>,
    /// Candidate indices, every parent before its children (by path length).
    order: Vec<usize>,
}

impl<'a> Tree<'a> {
    /// Checks that `candidates` form the tree of `root`, and links them.
    fn new(root: &str, candidates: &[Candidate<'a>]) -> Result<Tree<'a>, FilterError> {
        if root.split('/').any(str::is_empty) {
            return Err(FilterError::BadName {
                dataset: root.to_string(),
            });
        }
        let mut rel = Vec::with_capacity(candidates.len());
        let mut index: HashMap<&str, usize> = HashMap::with_capacity(candidates.len());
        for (i, c) in candidates.iter().enumerate() {
            let r = relative(root, c.name)?;
            if index.insert(r, i).is_some() {
                return Err(FilterError::Duplicate {
                    dataset: c.name.to_string(),
                });
            }
            rel.push(r);
        }
        let parent = candidates
            .iter()
            .zip(&rel)
            .map(|(c, r)| {
                let Some(p) = parent_of(r) else {
                    return Ok(None);
                };
                index
                    .get(p)
                    .map(|&j| Some(j))
                    .ok_or_else(|| FilterError::MissingParent {
                        dataset: c.name.to_string(),
                        parent: full_name(root, p),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        order.sort_by_key(|&i| rel[i].len());
        Ok(Tree { rel, parent, order })
    }
}

/// `name`'s path relative to `root` (`""` for the root itself).
fn relative<'a>(root: &str, name: &'a str) -> Result<&'a str, FilterError> {
    let rest = crate::policy::relative(name, root).ok_or_else(|| FilterError::NotInTree {
        dataset: name.to_string(),
        root: root.to_string(),
    })?;
    let Some(rel) = rest.strip_prefix('/') else {
        return Ok(rest); // The root.
    };
    if rel.split('/').any(str::is_empty) {
        return Err(FilterError::BadName {
            dataset: name.to_string(),
        });
    }
    Ok(rel)
}

/// The relative path of `rel`'s parent, `None` for the root.
fn parent_of(rel: &str) -> Option<&str> {
    if rel.is_empty() {
        return None;
    }
    Some(rel.rsplit_once('/').map_or("", |(p, _)| p))
}

/// The full name of relative path `rel` under `root`.
fn full_name(root: &str, rel: &str) -> String {
    if rel.is_empty() {
        root.to_string()
    } else {
        format!("{root}/{rel}")
    }
}

/// Which datasets of a tree travel: include and exclude patterns, checked once.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    include: Patterns,
    exclude: Patterns,
}

impl Filter {
    /// Checks and compiles the patterns; a bad one is an error naming it and why.
    pub fn new(include: &[String], exclude: &[String]) -> Result<Filter, FilterError> {
        Ok(Filter {
            include: Patterns::new("include", include)?,
            exclude: Patterns::new("exclude", exclude)?,
        })
    }

    /// Whether there are no patterns at all. [`OPT_OUT`] still applies: an empty
    /// filter still needs [`Filter::decide`].
    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    /// The patterns, for `zrep check-config`: `include home/**; exclude **/tmp,
    /// home/dru/cache`, or `no patterns`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (word, p) in [("include", &self.include), ("exclude", &self.exclude)] {
            if !p.is_empty() {
                parts.push(format!("{word} {}", p.written.join(", ")));
            }
        }
        if parts.is_empty() {
            "no patterns".to_string()
        } else {
            parts.join("; ")
        }
    }

    /// Decides every dataset of the tree of `root` (one decision per candidate, in
    /// their order, which may be any). Errors: a bad [`OPT_OUT`] value (the first
    /// in the listing's order), or a listing that is not `root`'s tree.
    pub fn decide(
        &self,
        root: &str,
        candidates: &[Candidate],
    ) -> Result<Vec<Decision>, FilterError> {
        let tree = Tree::new(root, candidates)?;
        let mut hits = Vec::new();
        let own = candidates
            .iter()
            .zip(&tree.rel)
            .map(|(c, rel)| self.own_exclusion(c, rel, &mut hits))
            .collect::<Result<Vec<_>, _>>()?;
        let mut reasons = exclusions(candidates, &tree, own);
        if !self.include.is_empty() {
            self.inclusions(candidates, &tree, &mut reasons, &mut hits);
        }
        Ok(candidates
            .iter()
            .zip(reasons)
            .map(|(c, reason)| {
                let reason = reason.unwrap_or(Reason::All);
                Decision {
                    name: c.name.to_string(),
                    travels: reason.travels(),
                    reason,
                }
            })
            .collect())
    }

    /// What excludes the dataset by itself (an exclude pattern, else its
    /// property), whatever its parent.
    fn own_exclusion(
        &self,
        c: &Candidate,
        rel: &str,
        hits: &mut Vec<usize>,
    ) -> Result<Option<Reason>, FilterError> {
        let out = match c.opt_out {
            None => false,
            Some(value) => opts_out(value).ok_or_else(|| FilterError::OptOutValue {
                dataset: c.name.to_string(),
                value: value.to_string(),
            })?,
        };
        // No pattern matches the root.
        let pattern = if rel.is_empty() {
            None
        } else {
            self.exclude.first_match(rel, hits)
        };
        Ok(match (pattern, c.opt_out) {
            (Some(p), _) => Some(Reason::Excluded {
                pattern: p.to_string(),
            }),
            (None, Some(value)) if out => Some(Reason::OptedOut {
                value: value.to_string(),
                local: c.local,
            }),
            _ => None,
        })
    }

    /// Fills the reasons of datasets not excluded (`None` in `reasons`): included,
    /// parent of included, or not included.
    fn inclusions(
        &self,
        candidates: &[Candidate],
        tree: &Tree,
        reasons: &mut [Option<Reason>],
        hits: &mut Vec<usize>,
    ) {
        // The smallest-named included dataset at or below each dataset, children
        // first so that a parent has heard from all its children before it passes
        // the name up.
        let mut via: Vec<Option<usize>> = vec![None; candidates.len()];
        for &i in tree.order.iter().rev() {
            if reasons[i].is_some() || tree.rel[i].is_empty() {
                continue;
            }
            if let Some(p) = self.include.first_match(tree.rel[i], hits) {
                reasons[i] = Some(Reason::Included {
                    pattern: p.to_string(),
                });
                via[i] = Some(i);
            }
            if let (Some(v), Some(p)) = (via[i], tree.parent[i]) {
                let name = |j: usize| candidates[j].name;
                let smaller = match via[p] {
                    Some(w) => name(v) < name(w),
                    None => true,
                };
                if smaller {
                    via[p] = Some(v);
                }
            }
        }
        for (i, reason) in reasons.iter_mut().enumerate() {
            if reason.is_none() {
                *reason = Some(match via[i] {
                    Some(v) => Reason::ParentOfIncluded {
                        child: candidates[v].name.to_string(),
                    },
                    None => Reason::NotIncluded,
                });
            }
        }
    }
}

/// Each dataset's exclusion, parents first: an excluded parent, else its own
/// (`own`); `None` when nothing excludes it.
fn exclusions(
    candidates: &[Candidate],
    tree: &Tree,
    mut own: Vec<Option<Reason>>,
) -> Vec<Option<Reason>> {
    let mut out: Vec<Option<Reason>> = vec![None; candidates.len()];
    for &i in &tree.order {
        out[i] = match tree.parent[i] {
            Some(p) if out[p].is_some() => Some(Reason::ParentExcluded {
                parent: candidates[p].name.to_string(),
            }),
            _ => own[i].take(),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn filter(include: &[&str], exclude: &[&str]) -> Filter {
        Filter::new(&strings(include), &strings(exclude)).unwrap()
    }

    /// Candidates without the property.
    fn plain<'a>(names: &[&'a str]) -> Vec<Candidate<'a>> {
        names
            .iter()
            .map(|&name| Candidate {
                name,
                opt_out: None,
                local: false,
            })
            .collect()
    }

    #[test]
    fn patterns_match_whole_paths() {
        // (pattern, path, matches)
        let table = [
            ("home/*", "home/dru", true),
            ("home/*", "home", false),
            ("home/*", "home/dru/cache", false),
            ("home/*/cache", "home/dru/cache", true),
            ("home/*/cache", "home/cache", false),
            ("**/tmp", "tmp", true),
            ("**/tmp", "a/tmp", true),
            ("**/tmp", "a/b/tmp", true),
            ("**/tmp", "tmp/a", false),
            ("**/tmp", "home/tmpfs", false),
            ("home/**", "home", false),
            ("home/**", "home/dru", true),
            ("home/**", "home/dru/cache", true),
            ("home/**", "homes/dru", false),
            ("**", "a/b/c", true),
            ("*", "a", true),
            ("*", "a/b", false),
            ("vm-?", "vm-1", true),
            ("vm-?", "vm-10", false),
            ("a?b", "a/b", false),
            ("vm-[12]", "vm-2", true),
            ("vm-[12]", "vm-3", false),
            ("{db,www}/**", "www/logs", true),
            ("{db,www}/**", "db", false),
            ("cache", "cache", true),
            ("cache", "home/cache", false),
            ("caché/*", "caché/ü", true),
            (r"a\*", "a*", true),
            (r"a\*", "ab", false),
        ];
        let mut hits = Vec::new();
        for (pattern, path, want) in table {
            let p = Patterns::new("exclude", &strings(&[pattern])).unwrap();
            assert_eq!(
                p.first_match(path, &mut hits).is_some(),
                want,
                "{pattern} on {path}"
            );
        }
    }

    #[test]
    fn the_first_matching_pattern_is_named() {
        let p = Patterns::new("exclude", &strings(&["a/*", "**", "a/b"])).unwrap();
        let mut hits = Vec::new();
        assert_eq!(p.first_match("a/b", &mut hits), Some("a/*"));
        assert_eq!(p.first_match("c", &mut hits), Some("**"));
    }

    #[test]
    fn bad_patterns_are_named_with_the_reason() {
        // (pattern, the reason begins with)
        let table = [
            ("", "an empty pattern"),
            ("/home", "paths are relative"),
            ("home/", "an empty component"),
            ("a//b", "an empty component"),
            (".", "no dataset is named . or .."),
            ("home/../etc", "no dataset is named . or .."),
            ("./home", "no dataset is named . or .."),
            ("vm-[12", "unclosed character class"),
            ("{a,b", "unclosed alternate group"),
            ("[z-a]", "invalid range"),
            ("a,b}", "unopened alternate group"),
            (r"a\", "dangling"),
        ];
        for (pattern, why) in table {
            for (include, exclude, list) in [
                (vec![pattern], vec![], "include"),
                (vec![], vec!["ok/*", pattern], "exclude"),
            ] {
                let e = Filter::new(&strings(&include), &strings(&exclude)).unwrap_err();
                let FilterError::Pattern {
                    list: l,
                    pattern: p,
                    why: w,
                } = &e
                else {
                    panic!("{pattern:?}: {e:?}");
                };
                assert_eq!((*l, p.as_str()), (list, pattern));
                assert!(w.starts_with(why), "{pattern:?}: {w}");
                assert!(
                    e.to_string()
                        .starts_with(&format!("bad {list} pattern \"{pattern}\": ")),
                    "{e}"
                );
            }
        }
    }

    /// A home server's tree, listed out of order. `tank/home/eve` opts out locally
    /// and its child `keep` sets it off again; `tank/home/eve/music` inherits it.
    fn home_server() -> Vec<Candidate<'static>> {
        let opt = |name, value, local| Candidate {
            name,
            opt_out: Some(value),
            local,
        };
        let mut c = plain(&[
            "tank/srv/db/log",
            "tank/home/dru/cache",
            "tank",
            "tank/home",
            "tank/home/dru",
            "tank/home/dru/tmp",
            "tank/home/dru/tmp/build",
            "tank/home/dru/docs",
            "tank/home/dru/cache/thumbs",
            "tank/home/ann",
            "tank/home/ann/cache",
            "tank/home/ann/docs",
            "tank/home/ann/projects",
            "tank/home/ann/projects/tmp",
            "tank/home/ann/projects/zrep",
            "tank/home/cache",
            "tank/tmp",
            "tank/srv",
            "tank/srv/db",
            "tank/srv/www",
            "tank/srv/www/tmp",
            "tank/vm",
        ]);
        c.extend([
            opt("tank/home/eve", "on", true),
            opt("tank/home/eve/music", "on", false),
            opt("tank/home/eve/keep", "off", true),
            opt("tank/vm/scratch", "YES", true),
        ]);
        c
    }

    /// The decisions, sorted by name, as `--dry-run` lines.
    fn sorted_lines(f: &Filter, c: &[Candidate]) -> Vec<String> {
        let d = f.decide("tank", c).unwrap();
        for (d, c) in d.iter().zip(c) {
            assert_eq!(d.name, c.name, "decisions keep the listing's order");
            assert_eq!(d.travels, d.reason.travels());
        }
        let mut d = d;
        d.sort_by(|a, b| a.name.cmp(&b.name));
        d.iter()
            .map(|d| format!("{} {}", if d.travels { "+" } else { "-" }, d))
            .collect()
    }

    #[test]
    fn excludes_take_subtrees_and_opt_outs_stick() {
        let f = filter(&[], &["**/tmp", "home/*/cache"]);
        assert_eq!(
            sorted_lines(&f, &home_server()),
            [
                "+ tank  not excluded",
                "+ tank/home  not excluded",
                "+ tank/home/ann  not excluded",
                "- tank/home/ann/cache  excluded by \"home/*/cache\"",
                "+ tank/home/ann/docs  not excluded",
                "+ tank/home/ann/projects  not excluded",
                "- tank/home/ann/projects/tmp  excluded by \"**/tmp\"",
                "+ tank/home/ann/projects/zrep  not excluded",
                // `home/*/cache` is not `home/cache`.
                "+ tank/home/cache  not excluded",
                "+ tank/home/dru  not excluded",
                "- tank/home/dru/cache  excluded by \"home/*/cache\"",
                "- tank/home/dru/cache/thumbs  excluded: its parent tank/home/dru/cache is excluded",
                "+ tank/home/dru/docs  not excluded",
                "- tank/home/dru/tmp  excluded by \"**/tmp\"",
                "- tank/home/dru/tmp/build  excluded: its parent tank/home/dru/tmp is excluded",
                "- tank/home/eve  excluded by zrep-rs:exclude=on",
                // Set off, yet its parent is gone.
                "- tank/home/eve/keep  excluded: its parent tank/home/eve is excluded",
                "- tank/home/eve/music  excluded: its parent tank/home/eve is excluded",
                "+ tank/srv  not excluded",
                "+ tank/srv/db  not excluded",
                "+ tank/srv/db/log  not excluded",
                "+ tank/srv/www  not excluded",
                "- tank/srv/www/tmp  excluded by \"**/tmp\"",
                "- tank/tmp  excluded by \"**/tmp\"",
                "+ tank/vm  not excluded",
                "- tank/vm/scratch  excluded by zrep-rs:exclude=YES",
            ]
        );
    }

    #[test]
    fn includes_pull_parents_in_and_excludes_win() {
        let f = filter(
            &["home/*/docs", "home/ann/projects/**", "srv/db", "tmp"],
            &["**/tmp", "home/*/cache"],
        );
        assert_eq!(
            sorted_lines(&f, &home_server()),
            [
                "+ tank  parent of included tank/home/ann/docs",
                "+ tank/home  parent of included tank/home/ann/docs",
                "+ tank/home/ann  parent of included tank/home/ann/docs",
                "- tank/home/ann/cache  excluded by \"home/*/cache\"",
                "+ tank/home/ann/docs  included by \"home/*/docs\"",
                // Its child `tmp` is included by a pattern, but excluded.
                "+ tank/home/ann/projects  parent of included tank/home/ann/projects/zrep",
                "- tank/home/ann/projects/tmp  excluded by \"**/tmp\"",
                "+ tank/home/ann/projects/zrep  included by \"home/ann/projects/**\"",
                "- tank/home/cache  not included",
                "+ tank/home/dru  parent of included tank/home/dru/docs",
                "- tank/home/dru/cache  excluded by \"home/*/cache\"",
                "- tank/home/dru/cache/thumbs  excluded: its parent tank/home/dru/cache is excluded",
                "+ tank/home/dru/docs  included by \"home/*/docs\"",
                "- tank/home/dru/tmp  excluded by \"**/tmp\"",
                "- tank/home/dru/tmp/build  excluded: its parent tank/home/dru/tmp is excluded",
                "- tank/home/eve  excluded by zrep-rs:exclude=on",
                "- tank/home/eve/keep  excluded: its parent tank/home/eve is excluded",
                "- tank/home/eve/music  excluded: its parent tank/home/eve is excluded",
                "+ tank/srv  parent of included tank/srv/db",
                "+ tank/srv/db  included by \"srv/db\"",
                "- tank/srv/db/log  not included",
                "- tank/srv/www  not included",
                "- tank/srv/www/tmp  excluded by \"**/tmp\"",
                // Included and excluded: excluded.
                "- tank/tmp  excluded by \"**/tmp\"",
                "- tank/vm  not included",
                "- tank/vm/scratch  excluded by zrep-rs:exclude=YES",
            ]
        );
    }

    #[test]
    fn the_module_docs_example_holds() {
        let mut c = plain(&[
            "tank",
            "tank/home",
            "tank/home/dru",
            "tank/home/dru/cache",
            "tank/home/dru/scratch/keep",
            "tank/home/dru/tmp",
            "tank/srv",
            "tank/srv/db",
            "tank/srv/db/log",
            "tank/srv/www",
        ]);
        c.push(Candidate {
            name: "tank/home/dru/scratch",
            opt_out: Some("on"),
            local: true,
        });
        c[4].opt_out = Some("on");
        let f = filter(&["home/**", "srv/db"], &["**/tmp", "home/*/cache"]);
        let mut d = f.decide("tank", &c).unwrap();
        d.sort_by(|a, b| a.name.cmp(&b.name));
        let text: Vec<String> = d
            .iter()
            .map(|d| format!("{:<26} {}", d.name, d.reason))
            .collect();
        let doc = include_str!("filter.rs")
            .split("//! ```text\n")
            .nth(2)
            .unwrap()
            .split("//! ```")
            .next()
            .unwrap()
            .lines()
            .map(|l| l.trim_start_matches("//! ").to_string())
            .collect::<Vec<_>>();
        assert_eq!(text, doc);
    }

    #[test]
    fn every_reason_reads_as_a_phrase() {
        let s = |x: &str| x.to_string();
        // (reason, travels, phrase)
        let table = [
            (Reason::All, true, "not excluded"),
            (
                Reason::Included {
                    pattern: s("home/**"),
                },
                true,
                "included by \"home/**\"",
            ),
            (
                Reason::ParentOfIncluded {
                    child: s("tank/home/dru"),
                },
                true,
                "parent of included tank/home/dru",
            ),
            (Reason::NotIncluded, false, "not included"),
            (
                Reason::Excluded {
                    pattern: s("home/*/cache"),
                },
                false,
                "excluded by \"home/*/cache\"",
            ),
            (
                Reason::OptedOut {
                    value: s("on"),
                    local: true,
                },
                false,
                "excluded by zrep-rs:exclude=on",
            ),
            (
                Reason::OptedOut {
                    value: s("True"),
                    local: false,
                },
                false,
                "excluded by zrep-rs:exclude=True (inherited)",
            ),
            (
                Reason::ParentExcluded {
                    parent: s("tank/home/eve"),
                },
                false,
                "excluded: its parent tank/home/eve is excluded",
            ),
        ];
        for (reason, travels, phrase) in table {
            assert_eq!(reason.travels(), travels, "{reason:?}");
            assert_eq!(reason.to_string(), phrase);
        }
        let d = Decision {
            name: s("tank/home/dru/cache"),
            travels: false,
            reason: Reason::Excluded {
                pattern: s("home/*/cache"),
            },
        };
        assert_eq!(
            d.to_string(),
            "tank/home/dru/cache  excluded by \"home/*/cache\""
        );
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"name":"tank/home/dru/cache","travels":false,"reason":{"kind":"excluded","pattern":"home/*/cache"}}"#
        );
    }

    #[test]
    fn opt_out_values_read_without_case_and_typos_are_errors() {
        // (value, opts out; None: an error)
        let table = [
            ("on", Some(true)),
            ("ON", Some(true)),
            ("yes", Some(true)),
            ("True", Some(true)),
            ("off", Some(false)),
            ("No", Some(false)),
            ("FALSE", Some(false)),
            ("onn", None),
            (" on", None),
            ("", None),
            ("1", None),
            ("-", None),
        ];
        let f = filter(&[], &[]);
        for (value, want) in table {
            let c = [
                Candidate {
                    name: "tank",
                    opt_out: None,
                    local: false,
                },
                Candidate {
                    name: "tank/a",
                    opt_out: Some(value),
                    local: true,
                },
            ];
            match (f.decide("tank", &c), want) {
                (Ok(d), Some(out)) => assert_eq!(d[1].travels, !out, "{value:?}"),
                (Err(e), None) => {
                    assert_eq!(
                        e,
                        FilterError::OptOutValue {
                            dataset: "tank/a".into(),
                            value: value.into(),
                        }
                    );
                    assert!(e.to_string().starts_with(&format!(
                        "tank/a: zrep-rs:exclude={value:?} is neither on nor off"
                    )));
                }
                (got, _) => panic!("{value:?}: {got:?}"),
            }
        }
    }

    #[test]
    fn a_typo_is_an_error_even_under_an_excluded_parent() {
        let mut c = plain(&["tank", "tank/tmp", "tank/tmp/a"]);
        c[2].opt_out = Some("nope");
        let e = filter(&[], &["tmp"]).decide("tank", &c).unwrap_err();
        assert!(matches!(e, FilterError::OptOutValue { .. }), "{e:?}");
    }

    #[test]
    fn the_root_is_matched_by_no_pattern_but_can_opt_out() {
        let c = plain(&["tank/a", "tank", "tank/a/b"]);
        let reasons = |f: &Filter, c: &[Candidate]| -> Vec<String> {
            f.decide("tank", c)
                .unwrap()
                .iter()
                .map(|d| d.reason.to_string())
                .collect()
        };
        // `*` and `**` take every child, and leave the root.
        assert_eq!(
            reasons(&filter(&[], &["*"]), &c),
            [
                "excluded by \"*\"",
                "not excluded",
                "excluded: its parent tank/a is excluded"
            ]
        );
        assert_eq!(
            reasons(&filter(&[], &["**"]), &c)[1],
            "not excluded".to_string()
        );
        // Nothing included: not even the root travels.
        assert_eq!(
            reasons(&filter(&["nothing"], &[]), &c),
            ["not included", "not included", "not included"]
        );
        // An opt-out inherited from above the root takes the whole tree.
        let mut c = c;
        for x in &mut c {
            x.opt_out = Some("on");
        }
        assert_eq!(
            reasons(&filter(&["**"], &[]), &c),
            [
                "excluded: its parent tank is excluded",
                "excluded by zrep-rs:exclude=on (inherited)",
                "excluded: its parent tank/a is excluded"
            ]
        );
    }

    #[test]
    fn the_parent_named_for_an_include_is_the_first_by_name() {
        let c = plain(&["t/b/y", "t/b", "t", "t/a", "t/b/x", "t/c"]);
        let d = filter(&["b/*", "a"], &[]).decide("t", &c).unwrap();
        let reasons: Vec<String> = d.iter().map(|d| d.reason.to_string()).collect();
        assert_eq!(
            reasons,
            [
                "included by \"b/*\"",
                "parent of included t/b/x",
                "parent of included t/a",
                "included by \"a\"",
                "included by \"b/*\"",
                "not included",
            ]
        );
    }

    #[test]
    fn listings_that_are_not_a_tree_are_errors() {
        let f = filter(&[], &[]);
        let dup = |d: &str| FilterError::Duplicate { dataset: d.into() };
        let outside = |d: &str| FilterError::NotInTree {
            dataset: d.into(),
            root: "tank".into(),
        };
        let bad = |d: &str| FilterError::BadName { dataset: d.into() };
        let orphan = |d: &str, p: &str| FilterError::MissingParent {
            dataset: d.into(),
            parent: p.into(),
        };
        // (root, names, error)
        let table = [
            ("tank", vec!["tank", "tank/a", "tank/a"], dup("tank/a")),
            ("tank", vec!["tank", "tank"], dup("tank")),
            ("tank", vec!["tank", ""], outside("")),
            ("tank", vec!["tank", "tankx/a"], outside("tankx/a")),
            ("tank", vec!["tank", "tankx"], outside("tankx")),
            ("tank", vec!["tank", "other/a"], outside("other/a")),
            ("tank", vec!["tank", "tank/"], bad("tank/")),
            ("tank", vec!["tank", "tank//a"], bad("tank//a")),
            ("tank", vec!["tank", "tank/a/"], bad("tank/a/")),
            (
                "tank",
                vec!["tank", "tank/a/b"],
                orphan("tank/a/b", "tank/a"),
            ),
            ("tank", vec!["tank/a"], orphan("tank/a", "tank")),
            ("", vec!["tank"], bad("")),
            ("tank/", vec!["tank/"], bad("tank/")),
            ("/tank", vec!["/tank"], bad("/tank")),
        ];
        for (root, names, want) in table {
            assert_eq!(f.decide(root, &plain(&names)), Err(want), "{names:?}");
        }
        let e: Error = dup("tank/a").into();
        assert_eq!(e.kind, Kind::Connection);
        assert_eq!(e.message, "\"tank/a\" is listed twice");
    }

    #[test]
    fn odd_but_valid_names_are_decided() {
        let c = plain(&[
            "pool/ü",
            "pool",
            "pool/ü/日本",
            "pool/a b",
            "pool/a b/:x.y-z_",
            "pool/ü/日本/tmp",
        ]);
        // ZFS names are ASCII: globset's `?` is one byte, so `*` here.
        let d = filter(&[], &["**/tmp", "ü/*"]).decide("pool", &c).unwrap();
        let travels: Vec<bool> = d.iter().map(|d| d.travels).collect();
        assert_eq!(travels, [true, true, false, true, true, false]);
        assert_eq!(d[2].reason.to_string(), "excluded by \"ü/*\"");
        assert!(filter(&[], &[]).decide("pool", &[]).unwrap().is_empty());
    }

    #[test]
    fn errors_have_kinds() {
        let pattern: Error = Filter::new(&strings(&["/a"]), &[]).unwrap_err().into();
        assert_eq!(pattern.kind, Kind::Usage);
        let c = [Candidate {
            name: "tank",
            opt_out: Some("maybe"),
            local: true,
        }];
        let value: Error = filter(&[], &[]).decide("tank", &c).unwrap_err().into();
        assert_eq!(value.kind, Kind::InvalidArgument);
    }

    #[test]
    fn describe_lists_the_patterns() {
        // (include, exclude, description)
        let table: [(&[&str], &[&str], &str); 4] = [
            (&[], &[], "no patterns"),
            (&["home/**"], &[], "include home/**"),
            (
                &[],
                &["**/tmp", "home/dru/cache"],
                "exclude **/tmp, home/dru/cache",
            ),
            (
                &["home/**"],
                &["**/tmp", "home/dru/cache"],
                "include home/**; exclude **/tmp, home/dru/cache",
            ),
        ];
        for (include, exclude, want) in table {
            let f = filter(include, exclude);
            assert_eq!(f.describe(), want);
            assert_eq!(f.is_empty(), include.is_empty() && exclude.is_empty());
        }
    }

    #[test]
    fn ten_thousand_datasets_are_decided() {
        // tank/uN/pM/dK: 10 users of 10 projects of 99 datasets, plus the parents.
        let mut names = vec!["tank".to_string()];
        for u in 0..10 {
            names.push(format!("tank/u{u}"));
            for p in 0..10 {
                names.push(format!("tank/u{u}/p{p}"));
                for k in 0..99 {
                    let leaf = if k % 10 == 0 {
                        "tmp".into()
                    } else {
                        format!("d{k}")
                    };
                    names.push(format!("tank/u{u}/p{p}/{leaf}{k}"));
                }
            }
        }
        names.reverse();
        assert!(names.len() >= 10_000);
        let mut c: Vec<Candidate> = names
            .iter()
            .map(|name| Candidate {
                name,
                opt_out: None,
                local: false,
            })
            .collect();
        for x in c.iter_mut().filter(|x| x.name.starts_with("tank/u3")) {
            x.opt_out = Some("on");
            x.local = x.name == "tank/u3";
        }
        let f = filter(&["u*/p[0-4]/**", "u9/**"], &["**/tmp*", "u*/p2"]);
        let start = std::time::Instant::now();
        let d = f.decide("tank", &c).unwrap();
        eprintln!("{} datasets decided in {:?}", d.len(), start.elapsed());
        // Every dataset that travels has its parent travelling.
        let travels: HashMap<&str, bool> = d.iter().map(|d| (d.name.as_str(), d.travels)).collect();
        for x in &d {
            if let (true, Some((parent, _))) = (x.travels, x.name.rsplit_once('/')) {
                assert!(travels[parent], "{} travels without {parent}", x.name);
            }
        }
        let count = |f: &dyn Fn(&Decision) -> bool| d.iter().filter(|d| f(d)).count();
        // Users 0-2 and 4-8: projects 0, 1, 3, 4 of 89 datasets; user 9: all but p2.
        assert_eq!(
            count(&|d| matches!(d.reason, Reason::Included { .. })),
            8 * 4 * 89 + 9 * 90
        );
        assert_eq!(count(&|d| d.name.starts_with("tank/u3") && d.travels), 0);
    }
}
