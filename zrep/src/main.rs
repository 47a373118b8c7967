//! zrep: ZFS replication on libzfs_core. It never runs `zfs` or `zpool`; between hosts
//! it runs `ssh HOST zrep serve` and speaks its own framed protocol over the pipe.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use libzfs::{DatasetName, SendSource, SnapshotName};
use zrep::config::{self, Config};
use zrep::error::{err, Error, Kind, Result};
use zrep::local;
use zrep::proto::{Flags, Reading};
use zrep::side::{split_host, Route, Side};
use zrep::ui::{self, Ui};
use zrep::{jobs, replicate, serve, verify};

mod cli;
use cli::{Cli, Cmd, ListKind, RemoteArgs, ReplicateArgs, VerifyArgs};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        // A reader that stopped reading (`zrep list | head`) got what it wanted.
        Err(_) if STDOUT_CLOSED.load(std::sync::atomic::Ordering::Relaxed) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zrep: {}", e.message);
            ExitCode::from(1)
        }
    }
}

/// Set when stdout's reader went away.
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Prints one line on stdout; a closed stdout ends the command quietly (exit 0).
fn out(line: impl std::fmt::Display) -> Result<()> {
    use std::io::Write;
    writeln!(std::io::stdout().lock(), "{line}").map_err(|e| {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            STDOUT_CLOSED.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        err(Kind::Io, format!("stdout: {e}"))
    })
}

fn run(cli: Cli) -> Result<ExitCode> {
    zrep::clock::check_env().map_err(|m| err(Kind::Usage, m))?;
    match cli.command {
        Cmd::Serve(a) => Ok(ExitCode::from(serve::serve(&a.options()?) as u8)),
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
        Cmd::CheckConfig { config, datasets } => cmd_check_config(&config.load()?, datasets),
        Cmd::Replicate(a) => cmd_replicate(a, false),
        Cmd::Failover(a) => cmd_replicate(a, true),
        Cmd::Verify(a) => cmd_verify(a),
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
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "zrep", &mut text);
            out(String::from_utf8_lossy(&text).trim_end())?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Man { dir: None } => {
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .map_err(|e| err(Kind::Io, e.to_string()))?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Man { dir: Some(dir) } => {
            clap_mangen::generate_to(Cli::command(), &dir)
                .map_err(|e| err(Kind::Io, format!("{}: {e}", dir.display())))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn select<'a>(cfg: &'a Config, names: &[String]) -> Result<Vec<&'a config::Job>> {
    cfg.select(names)
        .map_err(|e| err(Kind::Config, e.to_string()))
}

fn json_out<T: serde::Serialize + ?Sized>(v: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(v).map_err(|e| err(Kind::Io, e.to_string()))?;
    out(text)
}

fn cmd_run(cfg: &Config, names: &[String], ui: Ui) -> Result<ExitCode> {
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

fn cmd_prune(cfg: &Config, names: &[String], dry_run: bool, ui: &Ui) -> Result<ExitCode> {
    for job in select(cfg, names)? {
        jobs::prune(job, dry_run, ui)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_status(cfg: &Config, names: &[String], json: bool) -> Result<ExitCode> {
    let state = zrep::state::State::load(&cfg.state_dir)?;
    let all: Vec<jobs::JobStatus> = select(cfg, names)?
        .into_iter()
        .map(|job| jobs::status(job, &state))
        .collect();
    if json {
        json_out(&all)?;
    } else {
        for line in all.iter().flat_map(jobs::status_lines) {
            out(line)?;
        }
    }
    Ok(ExitCode::from(if all.iter().any(|s| s.over_limit) {
        2
    } else {
        0
    }))
}

fn cmd_check_config(cfg: &Config, datasets: bool) -> Result<ExitCode> {
    out(format!(
        "{}: {} job{}; state in {}{}",
        cfg.path.display(),
        cfg.jobs.len(),
        if cfg.jobs.len() == 1 { "" } else { "s" },
        cfg.state_dir.display(),
        cfg.prometheus
            .as_ref()
            .map(|p| format!("; Prometheus textfile {}", p.display()))
            .unwrap_or_default()
    ))?;
    let mut failed = false;
    for job in &cfg.jobs {
        for line in job.describe() {
            out(line)?;
        }
        if datasets && job.recursive && !job.target_only() {
            match zrep::jobs::covered(job) {
                Ok(decisions) => {
                    for d in decisions {
                        let fate = if d.travels { "replicated" } else { "left out" };
                        out(format!("  {}: {fate}: {}", d.name, d.reason))?;
                    }
                }
                Err(e) => {
                    failed = true;
                    eprintln!(
                        "zrep: job {}: cannot list its source: {}",
                        job.name, e.message
                    );
                }
            }
        }
    }
    Ok(ExitCode::from(u8::from(failed)))
}

/// `zrep replicate`, or with `failover` `zrep failover` (the same arguments).
fn cmd_replicate(a: Box<ReplicateArgs>, failover: bool) -> Result<ExitCode> {
    if failover && (a.dry_run || a.no_snapshot || a.source.contains('@')) {
        return Err(err(
            Kind::Usage,
            "failover takes a snapshot of its own: --dry-run, --no-snapshot and SOURCE@snap \
             do not apply",
        ));
    }
    let (shost, sspec) = split_host(&a.source);
    let (thost, tspec) = split_host(&a.target);
    let route = Route::new(shost, thost)?;
    // Validate names before touching anything.
    let (source, up_to) = match sspec.split_once('@') {
        Some(_) => {
            let s = SnapshotName::new(sspec)?;
            (s.dataset(), Some(s.short_name().to_string()))
        }
        None => (DatasetName::new(sspec)?, None),
    };
    let target = DatasetName::new(tspec)?;
    route.check_target(&source, &target)?;
    let ui = Ui::new(a.verbose, a.json, a.quiet);
    let opts = replicate::Options {
        source,
        up_to,
        target,
        target_host: route.target_host().unwrap_or("").to_string(),
        recursive: a.recursive,
        force: a.force,
        dry_run: a.dry_run,
        no_snapshot: a.no_snapshot,
        flags: a.flags.flags(),
        lock_wait: a.lock_wait,
        writable: a.writable,
        allow_empty: a.allow_empty,
        jobs: a.jobs.map_or(replicate::Jobs::Auto, |n| {
            replicate::Jobs::Exactly(n.into())
        }),
        travel: zrep::travel::Travel::new(&a.travel.words())?,
        hooks: Default::default(),
    };
    let mut ssh = a.remote.ssh(a.verbose)?;
    a.wire.apply(&mut ssh);
    let (mut src, mut dst) = route.open(&ssh)?;
    let more = || route.open(&ssh);
    let outcomes = match failover {
        true => zrep::failover::failover(&opts, &mut src, &mut dst, &more, &ui)?,
        false => replicate::replicate(&opts, &mut src, &mut dst, &more, &ui)?,
    };
    if a.json {
        if a.recursive {
            json_out(&outcomes)?;
        } else {
            json_out(&outcomes[0])?;
        }
    }
    let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
    if failed > 0 && a.recursive {
        eprintln!("zrep: {failed} of {} datasets failed", outcomes.len());
    }
    Ok(ExitCode::from(u8::from(failed > 0)))
}

fn cmd_verify(a: VerifyArgs) -> Result<ExitCode> {
    let (opts, route, ssh) = match &a.job {
        Some(name) => {
            let cfg = a.config.load()?;
            let job = select(&cfg, std::slice::from_ref(name))?[0];
            let source = job.source.as_deref().ok_or_else(|| {
                err(
                    Kind::Usage,
                    format!("job {name} has no source: nothing to verify its target against"),
                )
            })?;
            let opts = verify::Options {
                source: DatasetName::new(source)?,
                target: DatasetName::new(job.target.as_str())?,
                target_host: job.target_host.clone().unwrap_or_default(),
                recursive: job.recursive,
                read: a.read,
                filter: Some(job.travel.filter.clone()),
            };
            let route = Route::new(job.source_host.as_deref(), job.target_host.as_deref())?;
            (opts, route, jobs::ssh(job)?)
        }
        None => {
            let (source, target) = (
                a.source.as_deref().unwrap_or_default(),
                a.target.as_deref().unwrap_or_default(),
            );
            let (shost, sspec) = split_host(source);
            let (thost, tspec) = split_host(target);
            let route = Route::new(shost, thost)?;
            let opts = verify::Options {
                source: DatasetName::new(sspec)?,
                target: DatasetName::new(tspec)?,
                target_host: route.target_host().unwrap_or("").to_string(),
                recursive: a.recursive,
                read: a.read,
                filter: None,
            };
            (opts, route, a.remote.ssh(false)?)
        }
    };
    let (mut src, mut dst) = route.open(&ssh)?;
    let verdicts = verify::verify(&opts, &mut src, &mut dst)?;
    if a.json {
        json_out(&verdicts)?;
    } else {
        for v in &verdicts {
            out(v.line())?;
        }
    }
    Ok(ExitCode::from(u8::from(verdicts.iter().any(|v| !v.ok))))
}

fn cmd_snapshot(recursive: bool, spec: &str) -> Result<ExitCode> {
    let (ds, name) = match spec.split_once('@') {
        Some((d, n)) => (DatasetName::new(d)?, n.to_string()),
        None => (DatasetName::new(spec)?, zrep::names::new_snapshot()),
    };
    let zfs = libzfs::Zfs::open()?;
    let states = local::state(&zfs, &ds, recursive, false)?;
    if states.is_empty() {
        return Err(err(Kind::NotFound, format!("{ds} does not exist")));
    }
    let all = states
        .iter()
        .map(|d| d.name.snapshot(&name))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    zfs.snapshot(&all, None)?;
    out(format!("{ds}@{name}"))?;
    Ok(ExitCode::SUCCESS)
}

/// The streams `zrep send -I FROM SNAPSHOT` stands for: one per snapshot after FROM,
/// each from the one before.
fn intermediates(
    zfs: &libzfs::Zfs,
    from: SendSource,
    snap: &SnapshotName,
) -> Result<Vec<(Option<SendSource>, SnapshotName)>> {
    let ds = snap.dataset();
    let st = local::state(zfs, &ds, false, true)?;
    let d = st
        .first()
        .ok_or_else(|| err(Kind::NotFound, format!("{ds} does not exist")))?;
    let txg = |short: &str, full: &dyn std::fmt::Display| {
        d.snapshots
            .iter()
            .find(|s| s.name == short)
            .map(|s| s.createtxg)
            .ok_or_else(|| err(Kind::NotFound, format!("{full} does not exist")))
    };
    let from_txg = txg(from.short_name(), &from)?;
    let to_txg = txg(snap.short_name(), snap)?;
    let mut prev = from;
    let mut streams = Vec::new();
    for s in d
        .snapshots
        .iter()
        .filter(|s| s.createtxg > from_txg && s.createtxg <= to_txg)
    {
        let to = ds.snapshot(&s.name)?;
        streams.push((Some(prev), to.clone()));
        prev = to.into();
    }
    Ok(streams)
}

fn cmd_send(
    incremental: Option<String>,
    intermediate: Option<String>,
    flags: Flags,
    dry_run: bool,
    snapshot: &str,
) -> Result<ExitCode> {
    let snap = SnapshotName::new(snapshot)?;
    let ds = snap.dataset_str().to_string();
    let full = |f: &str| -> Result<SendSource> {
        let name = if f.starts_with('@') || f.starts_with('#') {
            format!("{ds}{f}")
        } else if !f.contains(['@', '#']) {
            format!("{ds}@{f}")
        } else {
            f.to_string()
        };
        Ok(SendSource::new(&name)?)
    };
    let zfs = libzfs::Zfs::open()?;
    let streams = match (incremental, intermediate) {
        (Some(i), _) => vec![(Some(full(&i)?), snap)],
        (None, Some(i)) => intermediates(&zfs, full(&i)?, &snap)?,
        (None, None) => vec![(None, snap)],
    };
    let mut total = 0;
    for (from, to) in &streams {
        let e = local::estimate(&zfs, to, from.as_ref(), flags)?;
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
            Kind::Usage,
            "refusing to write a send stream to a terminal: redirect stdout to a file or pipe",
        ));
    }
    for (from, to) in &streams {
        local::send(&zfs, to, from.as_ref(), flags, &stdout)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_receive(force: bool, resumable: bool, dataset: &str) -> Result<ExitCode> {
    let zfs = libzfs::Zfs::open()?;
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(err(
            Kind::Usage,
            "no send stream on stdin (it is a terminal)",
        ));
    }
    let mut n = 0;
    loop {
        let opts = libzfs::ReceiveOptions {
            force: force && n == 0,
            resumable,
            ..Default::default()
        };
        match zfs.receive(dataset, &stdin, &opts) {
            Ok(r) => {
                eprintln!("received {} ({})", r.snapshot, ui::bytes(r.bytes));
                n += 1;
            }
            // End of input after at least one stream: done.
            Err(e) if n > 0 && e.is_end_of_input() => break,
            Err(e) => return Err(Error::from(e)),
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
) -> Result<ExitCode> {
    let (host, ds) = split_host(spec);
    let ds = DatasetName::new(ds)?;
    let mut side = Side::open(host, &remote.ssh(false)?)?;
    // The table shows names, GUIDs and txgs: each property more would cost the kernel
    // a lookup of every snapshot. JSON carries everything.
    let states = match json {
        true => side.state(&ds, recursive)?,
        false => side.state_for(&ds, recursive, Reading::List)?,
    };
    if states.is_empty() {
        return Err(err(Kind::NotFound, format!("{spec} does not exist")));
    }
    if json {
        json_out(&states)?;
        return Ok(ExitCode::SUCCESS);
    }
    out(format!(
        "{:<50} {:>10} {:>20} {:>10}",
        "NAME", "TYPE", "GUID", "CREATETXG"
    ))?;
    for d in &states {
        if matches!(kind, ListKind::Filesystem | ListKind::All) {
            out(format!(
                "{:<50} {:>10} {:>20} {:>10}",
                d.name, d.kind, "-", "-"
            ))?;
        }
        let rows = [
            (ListKind::Snapshot, '@', "snapshot", &d.snapshots),
            (ListKind::Bookmark, '#', "bookmark", &d.bookmarks),
        ];
        for (k, sep, what, entries) in rows {
            if kind == k || kind == ListKind::All {
                for e in entries {
                    let n = format!("{}{sep}{}", d.name, e.name);
                    out(format!(
                        "{n:<50} {what:>10} {:>20} {:>10}",
                        e.guid, e.createtxg
                    ))?;
                }
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
