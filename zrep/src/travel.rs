//! What travels and how it lands, checked once from the command line or a job:
//! which datasets of a tree ([`crate::filter`]), which snapshots
//! ([`crate::plan::Selection`], `--newest-only`) and which properties
//! ([`crate::props`]).

use crate::error::{err, Kind, Result};
use crate::filter::Filter;
use crate::plan::Selection;
use crate::props::Choice;

/// The options as the user wrote them (flags or job keys).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Words {
    /// `--include` / `include`.
    pub include: Vec<String>,
    /// `--exclude` / `exclude`.
    pub exclude: Vec<String>,
    /// `--snapshots` / `snapshots`.
    pub snapshots: Vec<String>,
    /// `--newest-only` / `newest_only`.
    pub newest_only: bool,
    /// `--send-properties` / `send_properties`.
    pub send_properties: bool,
    /// `--exclude-property` / `exclude_properties` (`None`: the default list).
    pub exclude_properties: Option<Vec<String>>,
    /// `--set` / `set`, as `PROP=VALUE`.
    pub set: Vec<String>,
    /// `--inherit` / `inherit`.
    pub inherit: Vec<String>,
}

/// The options, checked.
#[derive(Debug, Clone, Default)]
pub struct Travel {
    /// Which datasets of a recursive run travel.
    pub filter: Filter,
    /// Which source snapshots travel (`None`: all).
    pub select: Option<Selection>,
    /// A first run sends only the newest snapshot.
    pub newest_only: bool,
    /// Which properties travel and land.
    pub props: Choice,
}

impl Travel {
    /// Checks the user's words; errors name the option and the reason.
    pub fn new(w: &Words) -> Result<Travel> {
        let filter = Filter::new(&w.include, &w.exclude)?;
        let select = if w.snapshots.is_empty() {
            None
        } else {
            Some(Selection::new(&w.snapshots).map_err(usage)?)
        };
        Ok(Travel {
            filter,
            select,
            newest_only: w.newest_only,
            props: Choice::new(
                w.send_properties,
                w.exclude_properties.clone(),
                &w.set,
                w.inherit.clone(),
            )?,
        })
    }

    /// Lines for `zrep check-config` and `--dry-run`: what differs from the default.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.filter.is_empty() {
            out.push(format!("datasets: {}", self.filter.describe()));
        }
        if let Some(s) = &self.select {
            out.push(format!("snapshots: {}", s.describe()));
        }
        if self.newest_only {
            out.push("first run: the newest snapshot only".into());
        }
        if !self.props.is_plain() {
            out.push(self.props.describe());
        }
        out
    }
}

fn usage(m: String) -> crate::error::Error {
    err(Kind::Usage, m)
}
