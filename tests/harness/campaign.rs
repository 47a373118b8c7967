//! Shared pieces of the reliability campaigns (tests/campaign_*.rs): a seeded random
//! source whose seed is printed, a report that prints its lines and keeps them in
//! `target/guest/campaigns/NAME.txt` (scripts/campaign shows it after the guest run),
//! and the listing of zrep's cursor (holds and bookmarks) on a dataset.
use std::path::PathBuf;

use crate::{cli_snapshots, zfs};

/// xorshift64* seeded from `ZREP_CAMPAIGN_SEED` (or the clock); the seed is printed
/// so a failing run can be repeated exactly.
pub struct Rng(u64);

impl Rng {
    /// The campaign's generator; `report` gets the seed line.
    pub fn from_env(report: &mut Report) -> Rng {
        let seed = std::env::var("ZREP_CAMPAIGN_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64 % 1_000_000)
                    .unwrap_or(1)
            });
        let line = format!("seed {seed} (repeat with ZREP_CAMPAIGN_SEED={seed})");
        report.progress(&line);
        report.lines.push(line);
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn bits(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..hi` (`hi > lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.bits() % (hi - lo)
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() as u64) as usize]
    }
}

/// A campaign's printed figures, also written to `target/guest/campaigns/NAME.txt`
/// (when the report is dropped, so a failing campaign leaves what it saw).
pub struct Report {
    path: PathBuf,
    lines: Vec<String>,
    done: bool,
}

impl Report {
    /// Starts the report of campaign `name`.
    pub fn new(name: &str) -> Report {
        let dir = Report::dir();
        let _ = std::fs::create_dir_all(&dir);
        let mut r = Report {
            path: dir.join(format!("{name}.txt")),
            lines: Vec::new(),
            done: false,
        };
        let _ = std::fs::remove_file(r.path.with_extension("progress"));
        r.line(&format!("== campaign {name}"));
        r
    }

    /// A progress line: printed, and appended at once to `NAME.progress` beside the
    /// report, which can be watched while the guest runs (the test's own output only
    /// shows when it ends).
    pub fn progress(&self, s: &str) {
        eprintln!("{s}");
        Report::append(&self.path.with_extension("progress"), s);
    }

    /// A progress line for campaign `name` from anywhere (a watchdog thread).
    pub fn note(name: &str, s: &str) {
        Report::append(&Report::dir().join(format!("{name}.progress")), s);
    }

    fn dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/guest/campaigns")
    }

    fn append(path: &std::path::Path, s: &str) {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{s}");
        }
    }

    /// Prints a line (stderr) and keeps it.
    pub fn line(&mut self, s: &str) {
        eprintln!("{s}");
        self.lines.push(s.to_string());
    }

    /// Prints a table with a header row, columns padded.
    pub fn table(&mut self, header: &[&str], rows: &[Vec<String>]) {
        let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
        for r in rows {
            for (i, c) in r.iter().enumerate() {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let fmt = |cells: Vec<String>| {
            let padded: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c:<w$}", w = width[i]))
                .collect();
            format!("| {} |", padded.join(" | ")).trim_end().to_string()
        };
        self.line(&fmt(header.iter().map(|s| s.to_string()).collect()));
        self.line(&fmt(width.iter().map(|w| "-".repeat(*w)).collect()));
        for r in rows {
            self.line(&fmt(r.clone()));
        }
    }

    /// Marks the campaign complete (a report dropped before this says so).
    pub fn finish(mut self, figure: &str) {
        self.line(&format!("RESULT: {figure}"));
        self.done = true;
    }
}

impl Drop for Report {
    fn drop(&mut self) {
        if !self.done {
            self.lines
                .push("RESULT: INCOMPLETE (the campaign failed; see the test output)".into());
        }
        let _ = std::fs::write(&self.path, self.lines.join("\n") + "\n");
    }
}

/// zrep's marks on one dataset: `(snapshot short name, tag)` for every hold whose tag
/// starts with `zrep-`, and the short names of bookmarks starting with `zrep-`.
pub fn zrep_marks(ds: &str) -> (Vec<(String, String)>, Vec<String>) {
    let mut holds = Vec::new();
    let snaps = cli_snapshots(ds);
    if !snaps.is_empty() {
        let mut args = vec!["holds", "-H"];
        args.extend(snaps.iter().map(String::as_str));
        for l in zfs(&args).lines() {
            let mut f = l.split('\t');
            let (Some(snap), Some(tag)) = (f.next(), f.next()) else {
                continue;
            };
            if tag.starts_with("zrep-") {
                let short = snap.split_once('@').map_or(snap, |(_, s)| s);
                holds.push((short.to_string(), tag.to_string()));
            }
        }
    }
    let bookmarks = zfs(&["list", "-H", "-o", "name", "-t", "bookmark", "-d", "1", ds])
        .lines()
        .filter_map(|b| b.split_once('#').map(|(_, s)| s.to_string()))
        .filter(|b| b.starts_with("zrep-"))
        .collect();
    (holds, bookmarks)
}

/// Panics unless zrep's marks are exactly the documented cursor at snapshot `newest`:
/// one hold `zrep-<id>` on it on both sides, one bookmark `#zrep-<id>-<newest>` on the
/// source, and no resume state on the target. Returns the hold tag.
pub fn assert_cursor_only(src: &str, dst: &str, newest: &str) -> String {
    let (sh, sb) = zrep_marks(src);
    let (th, tb) = zrep_marks(dst);
    assert_eq!(sh.len(), 1, "zrep holds on the source {src}: {sh:?}");
    let tag = sh[0].1.clone();
    let want = vec![(newest.to_string(), tag.clone())];
    assert_eq!(sh, want, "holds on the source {src}");
    assert_eq!(th, want, "holds on the target {dst}");
    assert_eq!(sb, vec![format!("{tag}-{newest}")], "bookmarks on {src}");
    assert!(tb.is_empty(), "bookmarks on the target {dst}: {tb:?}");
    let token = crate::zfs_get("receive_resume_token", dst);
    assert!(
        token == "-" || token.is_empty(),
        "{dst} keeps a resume token"
    );
    tag
}
