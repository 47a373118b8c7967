//! What a replication did, per dataset: printed by [`crate::ui`], recorded by
//! [`crate::jobs`], one JSON object each with `--json`.

use serde::Serialize;

use crate::plan;

/// What was done for a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A full stream first.
    Full,
    /// An incremental stream first.
    Incremental,
    /// An interrupted transfer finished first.
    Resume,
    /// Nothing to send.
    Noop,
    /// Only retention ran (a job without a source).
    Prune,
    /// Planning failed.
    Error,
}

impl From<plan::Mode> for Mode {
    fn from(m: plan::Mode) -> Mode {
        match m {
            plan::Mode::Full => Mode::Full,
            plan::Mode::Incremental => Mode::Incremental,
            plan::Mode::Resume => Mode::Resume,
            plan::Mode::Noop => Mode::Noop,
        }
    }
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Incremental => "incremental",
            Mode::Resume => "resume",
            Mode::Noop => "noop",
            Mode::Prune => "prune",
            Mode::Error => "error",
        }
    }
}

/// The result for one dataset.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Source dataset.
    pub source: String,
    /// Target dataset.
    pub target: String,
    /// What the first transfer was.
    pub mode: Mode,
    /// Snapshots sent (short names).
    pub snapshots: Vec<String>,
    /// Stream bytes sent.
    pub bytes_sent: u64,
    /// Bytes on the wire to or from the remote side (after compression; 0 local to
    /// local).
    pub wire_bytes: u64,
    /// The codec stream data travelled with (`zstd`, `lz4`), if any.
    pub compress: Option<String>,
    /// The estimate made before sending.
    pub estimated_bytes: u64,
    /// Wall time.
    pub seconds: f64,
    /// Whether an interrupted transfer was resumed.
    pub resumed: bool,
    /// Whether the run only planned.
    pub dry_run: bool,
    /// The error, if this dataset failed.
    pub error: Option<String>,
}

impl Outcome {
    /// A dataset not replicated yet.
    pub fn new(source: &str, target: &str, dry_run: bool) -> Outcome {
        Outcome {
            source: source.into(),
            target: target.into(),
            mode: Mode::Error,
            snapshots: Vec::new(),
            bytes_sent: 0,
            wire_bytes: 0,
            compress: None,
            estimated_bytes: 0,
            seconds: 0.0,
            resumed: false,
            dry_run,
            error: None,
        }
    }

    /// What happened, in a few words: `up to date`, `incremental, 2 snapshots`.
    pub fn what(&self) -> String {
        match (&self.error, self.mode) {
            (Some(e), _) => format!("FAILED: {e}"),
            (None, Mode::Noop | Mode::Error) => "up to date".into(),
            (None, m) => format!(
                "{}, {} snapshot{}",
                m.name(),
                self.snapshots.len(),
                if self.snapshots.len() == 1 { "" } else { "s" }
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_keep_their_json_names() {
        let mut o = Outcome::new("a", "b", false);
        let j = serde_json::to_value(&o).unwrap();
        assert_eq!(j["mode"], "error");
        o.mode = Mode::Incremental;
        o.snapshots = vec!["s".into()];
        assert_eq!(serde_json::to_value(&o).unwrap()["mode"], "incremental");
        assert_eq!(o.what(), "incremental, 1 snapshot");
    }
}
