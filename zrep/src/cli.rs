//! The command line: clap's structs for every command and their checked forms.

use clap::{Args, Parser, Subcommand};

use libzfs::DatasetName;
use zrep::bwlimit::Limit;
use zrep::compress::Compress;
use zrep::config::{self, Config};
use zrep::error::{err, Kind, Result};
use zrep::policy::{Mode, Policy};
use zrep::proto::Flags;
use zrep::serve;
use zrep::side::Ssh;

/// ZFS replication that calls libzfs_core directly: no `zfs` processes, resumable,
/// GUID-planned, safe by default.
#[derive(Parser, Debug)]
#[command(name = "zrep", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Replicate SOURCE to TARGET: snapshot, then send what the target lacks.
    ///
    /// SOURCE is `pool/fs` or `pool/fs@snap`; TARGET is `pool/fs`. Either (not both)
    /// may start with `[user@]host:` for a remote end reached by SSH. The newest
    /// snapshot both sides share (by GUID) is the incremental base; a target that was
    /// modified or has snapshots the source lacks is refused unless --force.
    Replicate(Box<ReplicateArgs>),
    /// Hand over from SOURCE to TARGET: replicate, set readonly=on on SOURCE, replicate
    /// the last writes (a snapshot taken even if nothing changed), set readonly=off on
    /// TARGET. The way back is `zrep failover TARGET SOURCE`: an incremental from the
    /// failover snapshot, no --force, no full resend. Same options as replicate
    /// (--dry-run, --no-snapshot and SOURCE@snap excepted); -r covers each dataset.
    Failover(Box<ReplicateArgs>),
    /// Check that TARGET is a sound copy of SOURCE; with --read, read it back.
    ///
    /// Per dataset: snapshots both sides have by name have the same GUID, the
    /// target's newest snapshot is on the source, and zrep's cursor (bookmark
    /// `#zrep-<id>-<snapshot>` on the source, hold `zrep-<id>` on both sides) is in
    /// place. One line per dataset (`ok` or `MISMATCH`); exit 1 on any mismatch.
    /// Either side may be `[user@]host:dataset`. Changes nothing.
    Verify(VerifyArgs),
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
        /// Also list each recursive job's source tree (over SSH for a pull) and say
        /// which datasets its runs cover and why.
        #[arg(long)]
        datasets: bool,
    },
    /// The remote end: speak the protocol on stdin/stdout (run by ssh).
    ///
    /// As an SSH forced command, `--root` and a mode confine what the client may do:
    /// a compromised client then cannot destroy or read what it was not given.
    Serve(ServeArgs),
    /// Print shell completions.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write every page (zrep.1 and one per
    /// subcommand, zrep-replicate.1...) into a directory.
    Man {
        /// Write all pages into DIR instead of printing zrep(1).
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListKind {
    Filesystem,
    Snapshot,
    Bookmark,
    All,
}

#[derive(Args, Debug, Clone)]
pub struct FlagArgs {
    /// Keep blocks larger than 128 KiB large (-L).
    #[arg(short = 'L', long)]
    pub large_blocks: bool,
    /// Keep embedded data embedded (-e).
    #[arg(short = 'e', long)]
    pub embedded: bool,
    /// Send blocks compressed as on disk (-c).
    #[arg(short = 'c', long)]
    pub compressed: bool,
    /// Raw: send encrypted data as is (-w; implied for encrypted datasets).
    #[arg(short = 'w', long)]
    pub raw: bool,
}

impl FlagArgs {
    pub fn flags(&self) -> Flags {
        Flags {
            large_blocks: self.large_blocks,
            embedded: self.embedded,
            compressed: self.compressed,
            raw: self.raw,
        }
    }
}

/// What travels and how it lands (README: "Choosing what travels").
#[derive(Args, Debug, Clone, Default)]
pub struct TravelArgs {
    /// With -r: leave out datasets whose path under the source matches (a glob; `*`
    /// stays within one level, `**` crosses levels), and everything below them.
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,
    /// With -r: only datasets whose path under the source matches (and their
    /// parents, which a receive needs).
    #[arg(long, value_name = "PATTERN")]
    pub include: Vec<String>,
    /// Only source snapshots whose name matches travel (and the run's own); the
    /// step from the common snapshot goes straight to the next matching one.
    #[arg(long, value_name = "PATTERN")]
    pub snapshots: Vec<String>,
    /// A first run sends only the newest snapshot, not the whole history.
    #[arg(long)]
    pub newest_only: bool,
    /// Send the source's locally set properties (zfs send -p).
    #[arg(long)]
    pub send_properties: bool,
    /// Never send this property (repeatable; replaces the default list:
    /// mountpoint, sharenfs, sharesmb, keylocation).
    #[arg(long, value_name = "PROP")]
    pub exclude_property: Vec<String>,
    /// Set this property on the target, over what is received (zfs receive -o).
    #[arg(short = 'o', long, value_name = "PROP=VALUE")]
    pub set: Vec<String>,
    /// The target inherits this property whatever the source says (zfs receive -x).
    #[arg(short = 'x', long, value_name = "PROP")]
    pub inherit: Vec<String>,
}

impl TravelArgs {
    /// The options as written.
    pub fn words(&self) -> zrep::travel::Words {
        zrep::travel::Words {
            include: self.include.clone(),
            exclude: self.exclude.clone(),
            snapshots: self.snapshots.clone(),
            newest_only: self.newest_only,
            send_properties: self.send_properties,
            exclude_properties: (!self.exclude_property.is_empty())
                .then(|| self.exclude_property.clone()),
            set: self.set.clone(),
            inherit: self.inherit.clone(),
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct RemoteArgs {
    /// SSH command for a remote end, split like a shell would (no shell runs it).
    #[arg(long, default_value = "ssh", value_name = "COMMAND")]
    pub ssh: String,
    /// Path of zrep on the remote host.
    #[arg(long, default_value = "zrep", value_name = "PATH")]
    pub remote_zrep: String,
    /// Seconds without a byte from the remote end (or room to write to it) after which
    /// the session ends; an interrupted receive stays resumable.
    #[arg(long, default_value_t = 600, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,
}

impl RemoteArgs {
    pub fn ssh(&self, verbose: bool) -> Result<Ssh> {
        let mut ssh = Ssh::new(
            &self.ssh,
            &self.remote_zrep,
            std::time::Duration::from_secs(self.timeout),
        )?;
        ssh.verbose = verbose;
        Ok(ssh)
    }
}

/// How stream bytes travel to or from a remote side.
#[derive(Args, Debug, Clone, Default)]
pub struct WireArgs {
    /// Compress stream data on the wire: zstd, lz4 or none. Default: zstd when the
    /// other end supports it, for streams not compressed already (-c, raw).
    #[arg(long, value_name = "CODEC", value_parser = parse_compress)]
    pub compress: Option<Compress>,
    /// Limit the bytes on the wire to RATE per second (10M, 500K; K = 1024).
    #[arg(long, value_name = "RATE", value_parser = parse_bwlimit)]
    pub bwlimit: Option<Limit>,
}

fn parse_compress(s: &str) -> std::result::Result<Compress, String> {
    Compress::parse(s)
}

fn parse_bwlimit(s: &str) -> std::result::Result<Limit, String> {
    zrep::bwlimit::parse_rate(s).map(Limit::rate)
}

impl WireArgs {
    /// Puts the options into `ssh`.
    pub fn apply(&self, ssh: &mut Ssh) {
        if let Some(c) = self.compress {
            ssh.compress = c;
        }
        if let Some(l) = &self.bwlimit {
            ssh.bwlimit = l.clone();
        }
    }
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Confine every request to DATASET and below (repeatable). Other datasets are
    /// refused, but for the roots' parents, whose identity and free space are told.
    #[arg(long = "root", value_name = "DATASET")]
    pub roots: Vec<String>,
    /// A push target: receive new snapshots and keep zrep's holds and bookmarks;
    /// never send, roll back, force a receive or destroy.
    #[arg(long, conflicts_with = "send_only")]
    pub receive_only: bool,
    /// A pull source: send, list, snapshot, keep zrep's holds and bookmarks; never
    /// receive, roll back or destroy (but zrep's own snapshots with --allow-prune).
    #[arg(long)]
    pub send_only: bool,
    /// With --send-only: let the client destroy snapshots zrep took (retention).
    #[arg(long, requires = "send_only")]
    pub allow_prune: bool,
    /// Seconds without a byte from the client after which the session ends.
    #[arg(long, default_value_t = 600, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,
}

impl ServeArgs {
    pub fn options(&self) -> Result<serve::Options> {
        let roots = self
            .roots
            .iter()
            .map(|r| DatasetName::new(r.as_str()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mode = match (self.receive_only, self.send_only) {
            (true, _) => Mode::ReceiveOnly,
            (_, true) => Mode::SendOnly {
                allow_prune: self.allow_prune,
            },
            _ => Mode::Full,
        };
        Ok(serve::Options {
            policy: Policy::new(roots, mode),
            timeout: std::time::Duration::from_secs(self.timeout),
        })
    }
}

#[derive(Args, Debug, Clone)]
pub struct ConfigArg {
    /// The job file.
    #[arg(short, long, default_value = config::DEFAULT_PATH, value_name = "FILE")]
    pub config: std::path::PathBuf,
}

impl ConfigArg {
    pub fn load(&self) -> Result<Config> {
        Config::load(&self.config).map_err(|e| err(Kind::Config, e.to_string()))
    }
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Include descendants.
    #[arg(short, long)]
    pub recursive: bool,
    /// Also read the target's newest snapshot back in full (ZFS reads and checks
    /// every block; blocks cached in memory are read from there).
    #[arg(long)]
    pub read: bool,
    /// One JSON array on stdout, an object per dataset.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Verify a job's source and target instead (from the config file).
    #[arg(long, value_name = "NAME", conflicts_with_all = ["source", "target"])]
    pub job: Option<String>,
    #[command(flatten)]
    pub config: ConfigArg,
    /// `[[user@]host:]pool/fs`
    #[arg(required_unless_present = "job")]
    pub source: Option<String>,
    /// `[[user@]host:]pool/fs`
    #[arg(required_unless_present = "job")]
    pub target: Option<String>,
}

#[derive(Args, Debug)]
pub struct ReplicateArgs {
    /// Include descendants, parents first; a failing child does not stop the others.
    #[arg(short, long)]
    pub recursive: bool,
    /// Roll the target back to the newest common snapshot when it was modified or has
    /// snapshots the source lacks (those are destroyed). Never destroys a dataset.
    #[arg(short = 'F', long)]
    pub force: bool,
    /// Print the plan and the estimate; change nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Send up to the newest existing snapshot instead of taking one.
    #[arg(long)]
    pub no_snapshot: bool,
    /// Snapshot datasets even when nothing was written since their newest snapshot
    /// (by default those send their newest snapshot as it is).
    #[arg(long, conflicts_with = "no_snapshot")]
    pub allow_empty: bool,
    #[command(flatten)]
    pub flags: FlagArgs,
    #[command(flatten)]
    pub travel: TravelArgs,
    /// Create new targets writable instead of `readonly=on` (a modified target refuses
    /// incrementals until rolled back).
    #[arg(long)]
    pub writable: bool,
    /// Datasets sent at once with -r, each with its own SSH connection when remote
    /// [default: 4; between local pools, up to 16 when the streams beyond 4 are small].
    #[arg(short = 'j', long, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: Option<u16>,
    /// Seconds to wait when another zrep is replicating into the same target.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub lock_wait: u64,
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(flatten)]
    pub wire: WireArgs,
    /// Plan, estimates and one line per snapshot.
    #[arg(short, long)]
    pub verbose: bool,
    /// Errors only.
    #[arg(short, long)]
    pub quiet: bool,
    /// Print one JSON object per dataset (an array with -r) on stdout.
    #[arg(long)]
    pub json: bool,
    /// `[[user@]host:]pool/fs[@snap]`
    pub source: String,
    /// `[[user@]host:]pool/fs`
    pub target: String,
}
