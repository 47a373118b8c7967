//! A job's hooks: commands run around its snapshot and after its run (`pre_snapshot`,
//! `post_snapshot`, `post_run`, `on_failure` in the config).
//!
//! A hook is an argv array, started without a shell (a user who wants one writes
//! `["sh", "-c", "..."]`), on the host that runs the job, with what it needs to know in
//! `ZREP_*` environment variables, its output going to zrep's stderr, and a time limit
//! (`hook_timeout`, default one minute) after which its whole process group is killed.
//!
//! Semantics:
//! - `pre_snapshot` runs just before the run's snapshot (only when one is taken): a
//!   failure (non-zero exit, a signal, the time limit, or a command that cannot start)
//!   skips the snapshot and fails the run, so a database that could not be quiesced is
//!   not snapshotted half-written.
//! - `post_snapshot` runs right after the snapshot (to thaw what `pre_snapshot` froze),
//!   and also when the snapshot failed after `pre_snapshot` ran; its failure is logged.
//! - `post_run` runs after every run, `on_failure` after a failed one (after
//!   `post_run`): the outcome, bytes and first error are in the environment. Their
//!   failures are logged and change nothing.

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::error::{err, Kind, Result};

/// The default time limit of a hook.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Which hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// Before the run's snapshot.
    PreSnapshot,
    /// After the run's snapshot.
    PostSnapshot,
    /// After the run.
    PostRun,
    /// After a failed run.
    OnFailure,
}

impl Hook {
    /// Its config key (and `ZREP_HOOK`).
    pub fn key(self) -> &'static str {
        match self {
            Hook::PreSnapshot => "pre_snapshot",
            Hook::PostSnapshot => "post_snapshot",
            Hook::PostRun => "post_run",
            Hook::OnFailure => "on_failure",
        }
    }
}

/// A job's hooks (none by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hooks {
    /// The job's name (`ZREP_JOB`).
    pub job: String,
    /// Before the snapshot.
    pub pre_snapshot: Option<Vec<String>>,
    /// After the snapshot.
    pub post_snapshot: Option<Vec<String>>,
    /// After every run.
    pub post_run: Option<Vec<String>>,
    /// After a failed run.
    pub on_failure: Option<Vec<String>>,
    /// Time limit of each.
    pub timeout: Duration,
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks {
            job: String::new(),
            pre_snapshot: None,
            post_snapshot: None,
            post_run: None,
            on_failure: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl Hooks {
    /// The command of `hook`, if the job has one.
    pub fn command(&self, hook: Hook) -> Option<&[String]> {
        match hook {
            Hook::PreSnapshot => self.pre_snapshot.as_deref(),
            Hook::PostSnapshot => self.post_snapshot.as_deref(),
            Hook::PostRun => self.post_run.as_deref(),
            Hook::OnFailure => self.on_failure.as_deref(),
        }
    }

    /// One line per hook the job has, for `zrep check-config`.
    pub fn describe(&self) -> Vec<String> {
        [
            Hook::PreSnapshot,
            Hook::PostSnapshot,
            Hook::PostRun,
            Hook::OnFailure,
        ]
        .into_iter()
        .filter_map(|h| {
            let argv = self.command(h)?;
            Some(format!(
                "{}: {:?} (killed after {} s)",
                h.key(),
                argv,
                self.timeout.as_secs()
            ))
        })
        .collect()
    }

    /// Runs `take` (the snapshot) between `pre_snapshot`, whose failure means `take`
    /// is not run, and `post_snapshot`, whose failure `log` is told. `env`: from
    /// [`snapshot_env`].
    pub fn around_snapshot<T>(
        &self,
        env: &[(&str, String)],
        log: impl Fn(&str),
        take: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        self.run(Hook::PreSnapshot, env)?;
        let taken = take();
        if let Err(e) = self.run(Hook::PostSnapshot, env) {
            log(&e.message);
        }
        taken
    }

    /// Runs `hook` (if the job has it) with `env` added to zrep's environment, and
    /// waits for it up to the time limit. Ok when it exited 0 or the job has no such
    /// hook; the error says which hook of which job failed and how.
    pub fn run(&self, hook: Hook, env: &[(&str, String)]) -> Result<()> {
        let Some(argv) = self.command(hook) else {
            return Ok(());
        };
        let what = format!("job {}: {} hook {:?}", self.job, hook.key(), argv[0]);
        let fail = |how: String| err(Kind::Other, format!("{what} {how}"));
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .env("ZREP_JOB", &self.job)
            .env("ZREP_HOOK", hook.key())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            // Its output goes where zrep's messages go (the journal, cron's mail):
            // zrep's stdout is for its own reports.
            .stdout(stderr()?)
            .stderr(stderr()?)
            // A group of its own, so that the time limit ends what it started too.
            .process_group(0);
        let mut child = cmd
            .spawn()
            .map_err(|e| fail(format!("could not start: {e}")))?;
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(None) => {
                    kill_group(child.id());
                    let _ = child.wait();
                    return Err(fail(format!(
                        "did not finish within {} s and was killed",
                        self.timeout.as_secs()
                    )));
                }
                Err(e) => return Err(fail(format!("could not be waited for: {e}"))),
            }
        };
        match describe(status) {
            None => Ok(()),
            Some(how) => Err(fail(how)),
        }
    }
}

/// The environment of the snapshot hooks: `ZREP_SOURCE` and `ZREP_TARGET` (as the job
/// names them), `ZREP_SNAPSHOT` (the short name about to be taken) and `ZREP_DATASETS`
/// (the datasets that get it, one per line).
pub fn snapshot_env<'a>(
    source: String,
    target: String,
    snapshot: &str,
    datasets: impl Iterator<Item = &'a str>,
) -> [(&'static str, String); 4] {
    [
        ("ZREP_SOURCE", source),
        ("ZREP_TARGET", target),
        ("ZREP_SNAPSHOT", snapshot.to_string()),
        ("ZREP_DATASETS", datasets.collect::<Vec<_>>().join("\n")),
    ]
}

/// A copy of zrep's stderr for a hook's output.
fn stderr() -> Result<Stdio> {
    use std::os::fd::AsFd;
    let fd = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| err(Kind::Other, format!("cannot pass stderr to a hook: {e}")))?;
    Ok(Stdio::from(fd))
}

/// Kills the process group `pgid` (the hook and what it started).
fn kill_group(pgid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    // SAFETY: kill(2) with a negative pid signals that process group; no memory is
    // involved. The group is the hook's own (process_group(0) above), still unreaped.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// `None` for success, else how it ended.
fn describe(status: ExitStatus) -> Option<String> {
    use std::os::unix::process::ExitStatusExt;
    if status.success() {
        return None;
    }
    Some(match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        (None, None) => format!("ended with {status}"),
    })
}

/// Checks a hook's command as written in the config.
pub fn check_command(argv: &[String]) -> std::result::Result<(), String> {
    match argv.first() {
        None => Err("an empty command (write the program and its arguments as an array)".into()),
        Some(p) if p.is_empty() => Err("an empty program name".into()),
        Some(_) if argv.iter().any(|a| a.contains('\0')) => {
            Err("an argument with a NUL byte".into())
        }
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hooks(argv: &[&str], timeout: u64) -> Hooks {
        Hooks {
            job: "j".into(),
            post_run: Some(argv.iter().map(|s| s.to_string()).collect()),
            timeout: Duration::from_secs(timeout),
            ..Hooks::default()
        }
    }

    #[test]
    fn a_hook_gets_its_environment_and_its_status_is_reported() {
        let h = hooks(
            &[
                "sh",
                "-c",
                "test \"$ZREP_JOB/$ZREP_HOOK/$ZREP_OUTCOME\" = j/post_run/ok",
            ],
            10,
        );
        h.run(Hook::PostRun, &[("ZREP_OUTCOME", "ok".into())])
            .unwrap();
        let e = h
            .run(Hook::PostRun, &[("ZREP_OUTCOME", "failed".into())])
            .unwrap_err();
        assert_eq!(
            e.message,
            "job j: post_run hook \"sh\" exited with status 1"
        );
        // No such hook: nothing runs.
        h.run(Hook::OnFailure, &[]).unwrap();
    }

    #[test]
    fn a_hook_that_cannot_start_or_overstays_fails_clearly() {
        let e = hooks(&["/nonexistent/hook"], 10)
            .run(Hook::PostRun, &[])
            .unwrap_err();
        assert!(e.message.contains("could not start"), "{}", e.message);
        let t0 = Instant::now();
        // The shell's child keeps running unless the whole group is killed.
        let e = hooks(&["sh", "-c", "sleep 30 & sleep 30"], 1)
            .run(Hook::PostRun, &[])
            .unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(10));
        assert!(
            e.message.contains("within 1 s and was killed"),
            "{}",
            e.message
        );
    }

    #[test]
    fn commands_are_checked() {
        assert!(check_command(&[]).is_err());
        assert!(check_command(&["".into()]).is_err());
        assert!(check_command(&["a".into(), "b\0".into()]).is_err());
        assert!(check_command(&["true".into()]).is_ok());
    }
}
