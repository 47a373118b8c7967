//! zrep: ZFS replication on libzfs_core. It never runs `zfs` or `zpool`; between hosts
//! it runs `ssh HOST zrep serve` and speaks its own framed protocol over the pipe.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};

use zrep::config::{self, Config, Overlap};
use zrep::local::{self, err, OpResult};
use zrep::proto::{Flags, RemoteError};
use zrep::side::{split_host, Side};
use zrep::ui::{self, Ui};
use zrep::{jobs, replicate, serve};

/// ZFS replication that calls libzfs_core directly: no `zfs` processes, resumable,
/// GUID-planned, safe by default.
#[derive(Parser, Debug)]
#[command(name = "zrep", version, propagate_version = true, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Replicate SOURCE to TARGET: snapshot, then send what the target lacks.
    ///
    /// SOURCE is `pool/fs` or `pool/fs@snap`; TARGET is `pool/fs`. Either (not both)
    /// may start with `[user@]host:` for a remote end reached by SSH. The newest
    /// snapshot both sides share (by GUID) is the incremental base; a target that was
    /// modified or has snapshots the source lacks is refused unless --force.
    Replicate(ReplicateArgs),
    /// Take a snapshot (`@zrep-<UTC time>` unless a name is given).
    Snapshot {
        /// Include descendants (one atomic snapshot).
        #[arg(short, long)]
        recursive: bool,
        /// `pool/fs` or `pool/fs@name`.
        dataset: String,
    },
    /// Write a send stream of SNAPSHOT to stdout (refuses a terminal).
    Send {
        /// Incremental from this snapshot or bookmark (`@a`, `#b` or a full name).
        #[arg(short = 'i', value_name = "FROM", conflicts_with = "intermediates")]
        incremental: Option<String>,
        /// Incremental from this snapshot, with every snapshot in between.
        #[arg(short = 'I', value_name = "FROM")]
        intermediates: Option<String>,
        #[command(flatten)]
        flags: FlagArgs,
        /// Print the estimated size to stderr and send nothing.
        #[arg(short = 'n', long)]
        dry_run: bool,
        /// The snapshot to send.
        snapshot: String,
    },
    /// Receive send streams from stdin into DATASET (one or several in a row).
    Receive {
        /// Roll back to the most recent snapshot first.
        #[arg(short = 'F')]
        force: bool,
        /// Do not mount (zrep never mounts; accepted for compatibility with zfs).
        #[arg(short = 'u')]
        no_mount: bool,
        /// Keep the state of an interrupted receive for resuming.
        #[arg(short = 's')]
        resumable: bool,
        /// Target dataset, or a full snapshot name for a single stream.
        dataset: String,
    },
    /// List datasets, snapshots and bookmarks.
    List {
        /// Include descendants.
        #[arg(short, long)]
        recursive: bool,
        /// What to list.
        #[arg(short = 't', long = "type", value_enum, default_value = "filesystem")]
        kind: ListKind,
        /// JSON output.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: RemoteArgs,
        /// `[[user@]host:]pool/fs`.
        dataset: String,
    },
    /// Run configured jobs (all unless named): snapshot, replicate, prune.
    ///
    /// Meant for a systemd timer or cron. One line per dataset: outcome, bytes,
    /// seconds, snapshots pruned. A job still running from before is skipped (or
    /// waited for, with `overlap = "wait"`). Results go to the state file for
    /// `zrep status` and, if configured, to a Prometheus textfile.
    Run {
        #[command(flatten)]
        config: ConfigArg,
        /// Plan, estimates and retention decisions too.
        #[arg(short, long)]
        verbose: bool,
        /// Errors only.
        #[arg(short, long)]
        quiet: bool,
        /// One JSON document for the whole run on stdout.
        #[arg(long)]
        json: bool,
        /// Jobs to run (default: all).
        jobs: Vec<String>,
    },
    /// Apply the jobs' retention rules now, without snapshot or replication.
    Prune {
        #[command(flatten)]
        config: ConfigArg,
        /// List what would be destroyed and why; destroy nothing.
        #[arg(short = 'n', long)]
        dry_run: bool,
        /// Also list what is kept and why.
        #[arg(short, long)]
        verbose: bool,
        /// Jobs (default: all).
        jobs: Vec<String>,
    },
    /// Per job and dataset: last success, last error, lag, snapshot counts.
    ///
    /// Exits 2 when a job's lag (the age of the newest snapshot both sides have)
    /// exceeds its `lag_limit`, for monitoring checks.
    Status {
        #[command(flatten)]
        config: ConfigArg,
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// Jobs (default: all).
        jobs: Vec<String>,
    },
    /// Check the config file and print what each job will do.
    CheckConfig {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// The remote end: speak the protocol on stdin/stdout (run by ssh).
    Serve,
    /// Print shell completions.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ListKind {
    Filesystem,
    Snapshot,
    Bookmark,
    All,
}

#[derive(Args, Debug, Clone)]
struct FlagArgs {
    /// Keep blocks larger than 128 KiB large (-L).
    #[arg(short = 'L', long)]
    large_blocks: bool,
    /// Keep embedded data embedded (-e).
    #[arg(short = 'e', long)]
    embedded: bool,
    /// Send blocks compressed as on disk (-c).
    #[arg(short = 'c', long)]
    compressed: bool,
    /// Raw: send encrypted data as is (-w; implied for encrypted datasets).
    #[arg(short = 'w', long)]
    raw: bool,
}

impl FlagArgs {
    fn flags(&self) -> Flags {
        Flags {
            large_blocks: self.large_blocks,
            embedded: self.embedded,
            compressed: self.compressed,
            raw: self.raw,
        }
    }
}

#[derive(Args, Debug, Clone)]
struct RemoteArgs {
    /// SSH command for a remote end, split like a shell would (no shell runs it).
    #[arg(long, default_value = "ssh", value_name = "COMMAND")]
    ssh: String,
    /// Path of zrep on the remote host.
    #[arg(long, default_value = "zrep", value_name = "PATH")]
    remote_zrep: String,
}

#[derive(Args, Debug, Clone)]
struct ConfigArg {
    /// The job file.
    #[arg(short, long, default_value = config::DEFAULT_PATH, value_name = "FILE")]
    config: std::path::PathBuf,
}

impl ConfigArg {
    fn load(&self) -> OpResult<Config> {
        Config::load(&self.config).map_err(|e| err("Config", e.to_string()))
    }
}

#[derive(Args, Debug)]
struct ReplicateArgs {
    /// Include descendants, parents first; a failing child does not stop the others.
    #[arg(short, long)]
    recursive: bool,
    /// Roll the target back to the newest common snapshot when it was modified or has
    /// snapshots the source lacks (those are destroyed). Never destroys a dataset.
    #[arg(short = 'F', long)]
    force: bool,
    /// Print the plan and the estimate; change nothing.
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Send up to the newest existing snapshot instead of taking one.
    #[arg(long)]
    no_snapshot: bool,
    /// Snapshot datasets even when nothing was written since their newest snapshot
    /// (by default those send their newest snapshot as it is).
    #[arg(long, conflicts_with = "no_snapshot")]
    allow_empty: bool,
    #[command(flatten)]
    flags: FlagArgs,
    /// Create new targets writable instead of `readonly=on` (a modified target refuses
    /// incrementals until rolled back).
    #[arg(long)]
    writable: bool,
    /// Datasets sent at once with -r (each with its own SSH connection when remote).
    #[arg(short = 'j', long, default_value_t = 4, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    /// Seconds to wait when another zrep is replicating into the same target.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    lock_wait: u64,
    #[command(flatten)]
    remote: RemoteArgs,
    /// Plan, estimates and one line per snapshot.
    #[arg(short, long)]
    verbose: bool,
    /// Errors only.
    #[arg(short, long)]
    quiet: bool,
    /// Print one JSON object per dataset (an array with -r) on stdout.
    #[arg(long)]
    json: bool,
    /// `[[user@]host:]pool/fs[@snap]`
    source: String,
    /// `[[user@]host:]pool/fs`
    target: String,
}

fn open_side(host: Option<&str>, remote: &RemoteArgs) -> OpResult<Side> {
    Side::open(host, &remote.ssh, &remote.remote_zrep)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("zrep: {}", e.message);
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> OpResult<ExitCode> {
    match cli.command {
        Cmd::Serve => Ok(ExitCode::from(serve::serve() as u8)),
        Cmd::Run {
            config,
            verbose,
            quiet,
            json,
            jobs,
        } => cmd_run(&config.load()?, &jobs, Ui::new(verbose, json, quiet)),
        Cmd::Prune {
            config,
            dry_run,
            verbose,
            jobs,
        } => cmd_prune(
            &config.load()?,
            &jobs,
            dry_run,
            &Ui::new(verbose, false, false),
        ),
        Cmd::Status { config, json, jobs } => cmd_status(&config.load()?, &jobs, json),
        Cmd::CheckConfig { config } => cmd_check_config(&config.load()?),
        Cmd::Replicate(a) => cmd_replicate(a),
        Cmd::Snapshot { recursive, dataset } => cmd_snapshot(recursive, &dataset),
        Cmd::Send {
            incremental,
            intermediates,
            flags,
            dry_run,
            snapshot,
        } => cmd_send(
            incremental,
            intermediates,
            flags.flags(),
            dry_run,
            &snapshot,
        ),
        Cmd::Receive {
            force,
            no_mount: _,
            resumable,
            dataset,
        } => cmd_receive(force, resumable, &dataset),
        Cmd::List {
            recursive,
            kind,
            json,
            remote,
            dataset,
        } => cmd_list(recursive, kind, json, &remote, &dataset),
        Cmd::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "zrep", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Man => {
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .map_err(|e| err("Io", e.to_string()))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn select<'a>(cfg: &'a Config, names: &[String]) -> OpResult<Vec<&'a config::Job>> {
    cfg.select(names).map_err(|e| err("Config", e.to_string()))
}

fn json_out<T: serde::Serialize>(v: &T) -> OpResult<()> {
    let text = serde_json::to_string_pretty(v).map_err(|e| err("Io", e.to_string()))?;
    println!("{text}");
    Ok(())
}

fn cmd_run(cfg: &Config, names: &[String], ui: Ui) -> OpResult<ExitCode> {
    let reports: Vec<jobs::JobReport> = select(cfg, names)?
        .into_iter()
        .map(|job| jobs::run(cfg, job, &ui))
        .collect();
    if ui.json {
        json_out(&reports)?;
    }
    let failed = reports.iter().filter(|r| r.status == "failed").count();
    Ok(ExitCode::from(u8::from(failed > 0)))
}

fn cmd_prune(cfg: &Config, names: &[String], dry_run: bool, ui: &Ui) -> OpResult<ExitCode> {
    for job in select(cfg, names)? {
        jobs::prune(job, dry_run, ui)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_status(cfg: &Config, names: &[String], json: bool) -> OpResult<ExitCode> {
    let state = zrep::state::State::load(&cfg.state_dir)?;
    let all: Vec<jobs::JobStatus> = select(cfg, names)?
        .into_iter()
        .map(|job| jobs::status(job, &state))
        .collect();
    if json {
        json_out(&all)?;
    } else {
        all.iter().for_each(jobs::print_status);
    }
    Ok(ExitCode::from(if all.iter().any(|s| s.over_limit) {
        2
    } else {
        0
    }))
}

fn cmd_check_config(cfg: &Config) -> OpResult<ExitCode> {
    println!(
        "{}: {} job{}; state in {}{}",
        cfg.path.display(),
        cfg.jobs.len(),
        if cfg.jobs.len() == 1 { "" } else { "s" },
        cfg.state_dir.display(),
        cfg.prometheus
            .as_ref()
            .map(|p| format!("; Prometheus textfile {}", p.display()))
            .unwrap_or_default()
    );
    for j in &cfg.jobs {
        let f = j.flags;
        let flags: Vec<&str> = [
            (f.compressed, "compressed"),
            (f.large_blocks, "large blocks"),
            (f.embedded, "embedded"),
            (f.raw, "raw"),
        ]
        .into_iter()
        .filter_map(|(on, n)| on.then_some(n))
        .collect();
        println!(
            "job {}: {}{} -> {}",
            j.name,
            j.source_spec(),
            if j.recursive { " and descendants" } else { "" },
            j.target_spec()
        );
        println!(
            "  each run: {}replicate{}{}",
            if j.snapshot {
                "snapshot @zrep-<UTC time>, "
            } else {
                ""
            },
            if flags.is_empty() {
                String::new()
            } else {
                format!(" ({})", flags.join(", "))
            },
            if j.keep_source.is_some() || j.keep_target.is_some() {
                ", prune"
            } else {
                ""
            }
        );
        let keeps = |r: &Option<zrep::retention::Rules>, source: bool| {
            match r {
            Some(r) => format!(
                "keeps {r} of zrep's snapshots, and always the newest common snapshot and held ones{}",
                if source && !j.prune_unreplicated { ", and those not replicated yet" } else { "" }
            ),
            None => "keeps every snapshot".into(),
        }
        };
        println!("  source {}", keeps(&j.keep_source, true));
        println!("  target {}", keeps(&j.keep_target, false));
        println!(
            "  new targets {}; a run that finds the previous one going {}{}",
            if j.writable {
                "writable"
            } else {
                "readonly=on"
            },
            match j.overlap {
                Overlap::Skip => "skips",
                Overlap::Wait => "waits",
            },
            j.lag_limit
                .map(|l| format!(
                    "; status fails when lag > {}",
                    zrep::clock::age(l.as_secs())
                ))
                .unwrap_or_default()
        );
        if j.source_host.is_some() || j.target_host.is_some() {
            println!("  ssh: {} (remote zrep: {})", j.ssh, j.remote_zrep);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_replicate(a: ReplicateArgs) -> OpResult<ExitCode> {
    let (shost, sspec) = split_host(&a.source);
    let (thost, tspec) = split_host(&a.target);
    if shost.is_some() && thost.is_some() {
        return Err(err("Usage", "source and target cannot both be remote"));
    }
    let (sds, up_to) = match sspec.split_once('@') {
        Some((d, s)) => (d, Some(s.to_string())),
        None => (sspec, None),
    };
    // Validate names before touching anything.
    libzfs::DatasetName::new(sds)?;
    if let Some(s) = &up_to {
        libzfs::DatasetName::new(sds)?.snapshot(s)?;
    }
    let tds = libzfs::DatasetName::new(tspec)?;
    if shost == thost
        && (tds.is_descendant_of(&libzfs::DatasetName::new(sds)?) || tds.as_str() == sds)
    {
        return Err(err(
            "Usage",
            format!("target {tspec} is the source or inside it: choose a target outside {sds}"),
        ));
    }
    let ui = Ui::new(a.verbose, a.json, a.quiet);
    let opts = replicate::Options {
        source: sds.to_string(),
        up_to,
        target: tspec.to_string(),
        target_host: thost.unwrap_or("").to_string(),
        recursive: a.recursive,
        force: a.force,
        dry_run: a.dry_run,
        no_snapshot: a.no_snapshot,
        flags: a.flags.flags(),
        lock_wait: a.lock_wait,
        writable: a.writable,
        allow_empty: a.allow_empty,
        jobs: usize::from(a.jobs),
    };
    let mut src = open_side(shost, &a.remote)?;
    let mut dst = open_side(thost, &a.remote)?;
    let more = || Ok((open_side(shost, &a.remote)?, open_side(thost, &a.remote)?));
    let outcomes = replicate::replicate(&opts, &mut src, &mut dst, &more, &ui)?;
    if a.json {
        let text = if a.recursive {
            serde_json::to_string_pretty(&outcomes)
        } else {
            serde_json::to_string_pretty(&outcomes[0])
        };
        println!("{}", text.map_err(|e| err("Io", e.to_string()))?);
    }
    let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
    if failed > 0 && a.recursive {
        eprintln!("zrep: {failed} of {} datasets failed", outcomes.len());
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn cmd_snapshot(recursive: bool, spec: &str) -> OpResult<ExitCode> {
    let (ds, name) = match spec.split_once('@') {
        Some((d, n)) => (d.to_string(), n.to_string()),
        None => (spec.to_string(), replicate::new_snapshot_name()),
    };
    let zfs = libzfs::Zfs::open()?;
    let states = local::state(&zfs, &ds, recursive)?;
    if states.is_empty() {
        return Err(err("NotFound", format!("{ds} does not exist")));
    }
    let all: Vec<String> = states
        .iter()
        .map(|d| format!("{}@{name}", d.name))
        .collect();
    local::snapshot(&zfs, &all, &[])?;
    println!("{ds}@{name}");
    Ok(ExitCode::SUCCESS)
}

fn cmd_send(
    incremental: Option<String>,
    intermediates: Option<String>,
    flags: Flags,
    dry_run: bool,
    snapshot: &str,
) -> OpResult<ExitCode> {
    let snap = libzfs::SnapshotName::new(snapshot)?;
    let ds = snap.dataset_str().to_string();
    let full = |f: &str| -> String {
        if f.starts_with('@') || f.starts_with('#') {
            format!("{ds}{f}")
        } else if !f.contains(['@', '#']) {
            format!("{ds}@{f}")
        } else {
            f.to_string()
        }
    };
    let zfs = libzfs::Zfs::open()?;
    // The list of (from, to) streams: one, or one per snapshot for -I.
    let mut streams: Vec<(Option<String>, String)> = Vec::new();
    match (incremental, intermediates) {
        (Some(i), _) => streams.push((Some(full(&i)), snapshot.to_string())),
        (None, Some(i)) => {
            let from = full(&i);
            let st = local::state(&zfs, &ds, false)?;
            let d = st
                .first()
                .ok_or_else(|| err("NotFound", format!("{ds} does not exist")))?;
            let short = |n: &str| n.split_once('@').map(|(_, s)| s.to_string());
            let from_txg = d
                .snapshots
                .iter()
                .find(|s| Some(s.name.clone()) == short(&from))
                .map(|s| s.createtxg)
                .ok_or_else(|| err("NotFound", format!("{from} does not exist")))?;
            let to_txg = d
                .snapshots
                .iter()
                .find(|s| s.name == snap.short_name())
                .map(|s| s.createtxg)
                .ok_or_else(|| err("NotFound", format!("{snap} does not exist")))?;
            let mut prev = from;
            for s in d
                .snapshots
                .iter()
                .filter(|s| s.createtxg > from_txg && s.createtxg <= to_txg)
            {
                let to = format!("{ds}@{}", s.name);
                streams.push((Some(prev), to.clone()));
                prev = to;
            }
        }
        (None, None) => streams.push((None, snapshot.to_string())),
    }
    let mut total = 0;
    for (from, to) in &streams {
        let e = local::estimate(&zfs, to, from.as_deref(), flags)?;
        match from {
            Some(f) => eprintln!("send from {f} to {to} estimated size is {}", ui::bytes(e)),
            None => eprintln!("full send of {to} estimated size is {}", ui::bytes(e)),
        }
        total += e;
    }
    eprintln!("total estimated size is {}", ui::bytes(total));
    if dry_run {
        return Ok(ExitCode::SUCCESS);
    }
    let stdout = std::io::stdout();
    if stdout.is_terminal() {
        return Err(err(
            "Usage",
            "refusing to write a send stream to a terminal: redirect stdout to a file or pipe",
        ));
    }
    for (from, to) in &streams {
        local::send(&zfs, to, from.as_deref(), flags, &stdout)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_receive(force: bool, resumable: bool, dataset: &str) -> OpResult<ExitCode> {
    let zfs = libzfs::Zfs::open()?;
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(err("Usage", "no send stream on stdin (it is a terminal)"));
    }
    let mut n = 0;
    loop {
        match zfs.receive(
            dataset,
            &stdin,
            &libzfs::ReceiveOptions {
                force: force && n == 0,
                resumable,
                ..Default::default()
            },
        ) {
            Ok(r) => {
                eprintln!("received {} ({})", r.snapshot, ui::bytes(r.bytes));
                n += 1;
            }
            // End of input after at least one stream: done.
            Err(libzfs::Error::Stream(m)) if n > 0 && m.contains("empty") => break,
            Err(e) => return Err(RemoteError::from(e)),
        }
        if dataset.contains('@') {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_list(
    recursive: bool,
    kind: ListKind,
    json: bool,
    remote: &RemoteArgs,
    spec: &str,
) -> OpResult<ExitCode> {
    let (host, ds) = split_host(spec);
    libzfs::DatasetName::new(ds)?;
    let mut side = open_side(host, remote)?;
    let states = side.state(ds, recursive)?;
    if states.is_empty() {
        return Err(err("NotFound", format!("{spec} does not exist")));
    }
    if json {
        let v = serde_json::to_string_pretty(&states).map_err(|e| err("Io", e.to_string()))?;
        println!("{v}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<50} {:>10} {:>20} {:>10}",
        "NAME", "TYPE", "GUID", "CREATETXG"
    );
    for d in &states {
        if matches!(kind, ListKind::Filesystem | ListKind::All) {
            println!("{:<50} {:>10} {:>20} {:>10}", d.name, d.kind, "-", "-");
        }
        if matches!(kind, ListKind::Snapshot | ListKind::All) {
            for s in &d.snapshots {
                let n = format!("{}@{}", d.name, s.name);
                println!(
                    "{n:<50} {:>10} {:>20} {:>10}",
                    "snapshot", s.guid, s.createtxg
                );
            }
        }
        if matches!(kind, ListKind::Bookmark | ListKind::All) {
            for b in &d.bookmarks {
                let n = format!("{}#{}", d.name, b.name);
                println!(
                    "{n:<50} {:>10} {:>20} {:>10}",
                    "bookmark", b.guid, b.createtxg
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_split_only_before_a_dataset() {
        assert_eq!(split_host("backup:tank/fs"), (Some("backup"), "tank/fs"));
        assert_eq!(split_host("root@b:tank"), (Some("root@b"), "tank"));
        assert_eq!(split_host("tank/a:b"), (None, "tank/a:b"));
        assert_eq!(split_host("tank/fs@x:y"), (None, "tank/fs@x:y"));
        assert_eq!(split_host(":tank"), (None, ":tank"));
    }

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
