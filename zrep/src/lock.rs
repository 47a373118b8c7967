//! One replication per target at a time: an `flock(2)` on a file named after the
//! target dataset. The lock goes with the process, so a killed run never leaves a
//! stale lock behind.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::error::{err, Kind, Result};

/// A held lock; released on drop (or process exit).
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

fn lock_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("ZREP_LOCK_DIR") {
        return d.into();
    }
    // FreeBSD has no /run: its run-time state lives in /var/run.
    let run = if cfg!(target_os = "linux") {
        "/run/zrep"
    } else {
        "/var/run/zrep"
    };
    for d in [run, "/tmp/zrep-locks"] {
        if std::fs::create_dir_all(d).is_ok() {
            return d.into();
        }
    }
    std::env::temp_dir()
}

/// A file name for the dataset: readable, with `/` replaced, and a hash so that
/// distinct names never share a lock.
fn file_name(dataset: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in dataset.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    let safe: String = dataset
        .chars()
        .take(80)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}-{h:016x}.lock")
}

impl Lock {
    /// Takes the lock for replicating into `dataset`, waiting up to `wait_secs` for
    /// another holder.
    pub fn acquire(dataset: &str, wait_secs: u64) -> Result<Lock> {
        Lock::take(&file_name(dataset), wait_secs, || {
            format!("another zrep is replicating into {dataset}")
        })
    }

    /// Takes the lock of a configured job (one run of a job at a time).
    pub fn job(name: &str, wait_secs: u64) -> Result<Lock> {
        Lock::take(&file_name(&format!("job {name}")), wait_secs, || {
            format!("job {name} is already running")
        })
    }

    fn take(file: &str, wait_secs: u64, busy: impl Fn() -> String) -> Result<Lock> {
        let dir = lock_dir();
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(file);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| {
                err(
                    Kind::Io,
                    format!("cannot open lock file {}: {e}", path.display()),
                )
            })?;
        // No deadline when it lies beyond what the clock can say.
        let deadline = Instant::now().checked_add(Duration::from_secs(wait_secs));
        loop {
            // SAFETY: flock on a descriptor we own.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                return Ok(Lock { _file: file });
            }
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(err(
                    Kind::Io,
                    format!("cannot lock {}: {e}", path.display()),
                ));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(err(
                    Kind::Busy,
                    format!("{} (waited {wait_secs} s; lock {})", busy(), path.display()),
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
