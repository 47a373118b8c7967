//! What zrep prints: progress bars on a terminal, plain lines otherwise, JSON on
//! request. Human output goes to stderr; `--json` output alone goes to stdout.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::plan::Plan;
use crate::report::Outcome;

/// Output settings.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    /// `-v`: plan, estimates, one line per snapshot.
    pub verbose: bool,
    /// `--json`: one JSON document on stdout, no human summary lines.
    pub json: bool,
    /// `-q`: errors only.
    pub quiet: bool,
    /// Draw progress bars (stderr is a terminal).
    pub progress: bool,
}

impl Ui {
    /// Settings for this process.
    pub fn new(verbose: bool, json: bool, quiet: bool) -> Ui {
        Ui {
            verbose,
            json,
            quiet,
            progress: !quiet && std::io::stderr().is_terminal(),
        }
    }

    /// The same, without progress bars (several transfers at once).
    pub fn without_progress(&self) -> Ui {
        Ui {
            progress: false,
            ..*self
        }
    }

    /// Whether progress bars are drawn.
    pub fn shows_progress(&self) -> bool {
        self.progress && !self.json
    }

    /// A normal line.
    pub fn info(&self, msg: &str) {
        if !self.quiet {
            eprintln!("{msg}");
        }
    }

    /// A `-v` line.
    pub fn verbose(&self, msg: &str) {
        if self.verbose && !self.quiet {
            eprintln!("{msg}");
        }
    }

    /// An error line.
    pub fn error(&self, msg: &str) {
        eprintln!("zrep: {msg}");
    }

    /// The plan of one dataset.
    pub fn plan(&self, plan: &Plan, source: &str, target: &str, estimate: u64) {
        self.verbose(&format!(
            "{source} -> {target}: {} (estimated size is {})",
            plan.describe(),
            bytes(estimate)
        ));
    }

    /// The closing line of one dataset.
    pub fn summary(&self, o: &Outcome) {
        if self.json || o.error.is_some() {
            return;
        }
        let what = o.what();
        if o.dry_run {
            self.info(&format!(
                "{} -> {}: would send {what}, estimated {}",
                o.source,
                o.target,
                bytes(o.estimated_bytes)
            ));
        } else {
            let wire = match (&o.compress, o.wire_bytes) {
                (Some(c), w) if w > 0 => format!(" ({} on the wire, {c})", bytes(w)),
                _ => String::new(),
            };
            self.info(&format!(
                "{} -> {}: {what}, {}{wire} in {:.1} s",
                o.source,
                o.target,
                bytes(o.bytes_sent),
                o.seconds
            ));
        }
    }

    /// A progress bar for one stream (hidden when not on a terminal).
    pub fn bar(&self, name: &str, total: u64) -> ProgressBar {
        if !self.shows_progress() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(name.to_string());
        bar
    }
}

/// Bytes in the units `zfs` prints (K, M, G: powers of 1024).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "K", "M", "G", "T", "P"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}B")
    } else {
        format!("{v:.2}{}", UNITS[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_zfs() {
        assert_eq!(bytes(512), "512B");
        assert_eq!(bytes(2_233_466), "2.13M");
        assert_eq!(bytes(3 << 30), "3.00G");
    }
}
