//! One replication per target at a time: an `flock(2)` on a file named after the
//! target dataset. The lock goes with the process, so a killed run never leaves a
//! stale lock behind.
//!
//! Lock files live in a directory of the user's own, so that nobody else can plant
//! or hold them: root's is `/run/zrep` (`/var/run/zrep` off Linux); another user's
//! is `$XDG_RUNTIME_DIR/zrep` when that variable names a directory of theirs, else
//! `/tmp/zrep-<uid>`. `ZREP_LOCK_DIR` (an absolute path) overrides the choice. Any
//! of them is created with mode 0700 when missing, and refused unless it is a
//! directory (not a symbolic link) owned by the user running zrep and writable by
//! nobody else. Lock files are opened without following a symbolic link.
//!
//! Locks exclude runs of the same user only: a root run and a run as another user
//! (or one with `XDG_RUNTIME_DIR` and one without it, as from cron) look in
//! different directories.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{err, Error, Kind, Result};

/// A held lock; released on drop (or process exit).
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// root's lock directory. FreeBSD has no /run: its run-time state lives in /var/run.
const ROOT_DIR: &str = if cfg!(target_os = "linux") {
    "/run/zrep"
} else {
    "/var/run/zrep"
};

/// The user zrep runs as (who owns what it creates).
fn euid() -> u32 {
    // SAFETY: geteuid takes no arguments, has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The checked lock directory (see the module's documentation).
fn lock_dir() -> Result<PathBuf> {
    let uid = euid();
    if let Some(d) = std::env::var_os("ZREP_LOCK_DIR") {
        return chosen_dir(PathBuf::from(d), uid);
    }
    let preferred = match uid {
        0 => Some(PathBuf::from(ROOT_DIR)),
        _ => std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|x| x.is_absolute() && check_dir(x, uid).is_ok())
            .map(|x| x.join("zrep")),
    };
    // One that cannot be created (no /run, say) is passed over; one that exists must
    // pass the checks.
    if let Some(d) = preferred.filter(|d| create(d, false).is_ok()) {
        check_dir(&d, uid)?;
        return Ok(d);
    }
    let d = PathBuf::from(format!("/tmp/zrep-{uid}"));
    ensure(&d, false, uid)?;
    Ok(d)
}

/// `ZREP_LOCK_DIR`'s directory, created (parents too) when missing, and checked.
fn chosen_dir(d: PathBuf, uid: u32) -> Result<PathBuf> {
    if !d.is_absolute() {
        return Err(err(
            Kind::InvalidArgument,
            format!(
                "ZREP_LOCK_DIR={:?} must be an absolute path",
                d.display().to_string()
            ),
        ));
    }
    ensure(&d, true, uid)?;
    Ok(d)
}

/// Creates `dir` if missing (see [`create`]), then checks it.
fn ensure(dir: &Path, parents: bool, uid: u32) -> Result<()> {
    create(dir, parents).map_err(|e| {
        err(
            Kind::Io,
            format!("cannot create lock directory {}: {e}", dir.display()),
        )
    })?;
    check_dir(dir, uid)
}

/// Creates `dir` with mode 0700 (and its missing parents with `parents`); an
/// existing entry of that name is left to [`check_dir`].
fn create(dir: &Path, parents: bool) -> io::Result<()> {
    match DirBuilder::new().recursive(parents).mode(0o700).create(dir) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        r => r,
    }
}

/// A lock directory's or lock file's refusal.
fn refuse(what: &str, path: &Path, why: &str) -> Error {
    err(
        Kind::Io,
        format!(
            "{what} {} {why}: refusing it (remove it, or set ZREP_LOCK_DIR to a \
             directory of your own)",
            path.display()
        ),
    )
}

/// Refuses `dir` unless it is a directory (not a symbolic link to one) owned by
/// `uid` and writable by nobody else.
fn check_dir(dir: &Path, uid: u32) -> Result<()> {
    let m = std::fs::symlink_metadata(dir).map_err(|e| {
        err(
            Kind::Io,
            format!("cannot read lock directory {}: {e}", dir.display()),
        )
    })?;
    let why = if m.file_type().is_symlink() {
        "is a symbolic link".to_string()
    } else if !m.is_dir() {
        "is not a directory".to_string()
    } else if m.uid() != uid {
        format!("belongs to uid {}, not to uid {uid} running zrep", m.uid())
    } else if m.mode() & 0o022 != 0 {
        format!("is writable by others (mode {:o})", m.mode() & 0o7777)
    } else {
        return Ok(());
    };
    Err(refuse("lock directory", dir, &why))
}

/// Opens (creating it, mode 0600) the lock file `path`: never through a symbolic
/// link, never a FIFO or device (`O_NONBLOCK` keeps a FIFO from blocking the open),
/// only a regular file of `uid`'s.
fn open_file(path: &Path, uid: u32) -> Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            // A symbolic link: ELOOP on Linux, EMLINK on FreeBSD.
            Some(libc::ELOOP | libc::EMLINK) => refuse("lock file", path, "is a symbolic link"),
            _ => err(
                Kind::Io,
                format!("cannot open lock file {}: {e}", path.display()),
            ),
        })?;
    let m = file.metadata().map_err(|e| {
        err(
            Kind::Io,
            format!("cannot stat lock file {}: {e}", path.display()),
        )
    })?;
    if !m.is_file() {
        return Err(refuse("lock file", path, "is not a regular file"));
    }
    if m.uid() != uid {
        let why = format!("belongs to uid {}, not to uid {uid} running zrep", m.uid());
        return Err(refuse("lock file", path, &why));
    }
    Ok(file)
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
        Lock::take_in(&lock_dir()?, file, wait_secs, busy)
    }

    /// [`Lock::take`] in `dir`, which the caller has checked.
    fn take_in(dir: &Path, file: &str, wait_secs: u64, busy: impl Fn() -> String) -> Result<Lock> {
        let path = dir.join(file);
        let file = open_file(&path, euid())?;
        // No deadline when it lies beyond what the clock can say.
        let deadline = Instant::now().checked_add(Duration::from_secs(wait_secs));
        loop {
            // SAFETY: flock on a descriptor we own, open for the whole call.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                return Ok(Lock { _file: file });
            }
            let e = io::Error::last_os_error();
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    /// Asserts that `r` failed with `needle` in its message.
    #[track_caller]
    fn refused<T: std::fmt::Debug>(r: Result<T>, needle: &str) {
        let e = r.unwrap_err();
        assert!(e.message.contains(needle), "{e}");
    }

    /// A new directory of mode 0700 for one test.
    fn scratch(test: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("zrep-lock-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        create(&d, false).unwrap();
        d
    }

    #[test]
    fn a_directory_of_ones_own_is_created_private_and_used() {
        let base = scratch("own");
        let d = base.join("a/b");
        create(&d, true).unwrap();
        let mode = std::fs::metadata(&d).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        check_dir(&d, euid()).unwrap();
        let first = Lock::take_in(&d, "x.lock", 0, || "busy".into()).unwrap();
        let again = Lock::take_in(&d, "x.lock", 0, || "held by the test".into());
        let e = again.unwrap_err();
        assert_eq!(e.kind, Kind::Busy);
        assert!(e.message.starts_with("held by the test (waited 0 s"), "{e}");
        drop(first);
        Lock::take_in(&d, "x.lock", 0, || "busy".into()).unwrap();
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn zrep_lock_dir_is_created_and_checked() {
        let base = scratch("env");
        let d = chosen_dir(base.join("x/locks"), euid()).unwrap();
        assert_eq!(std::fs::metadata(&d).unwrap().mode() & 0o777, 0o700);
        symlink(&d, base.join("link")).unwrap();
        refused(
            chosen_dir(base.join("link"), euid()),
            "is a symbolic link: refusing it",
        );
        let e = chosen_dir("locks".into(), euid()).unwrap_err();
        assert_eq!(
            e.message,
            "ZREP_LOCK_DIR=\"locks\" must be an absolute path"
        );
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_symlinked_directory_is_refused() {
        let base = scratch("dirlink");
        let real = base.join("real");
        create(&real, false).unwrap();
        let link = base.join("link");
        symlink(&real, &link).unwrap();
        let want = format!(
            "lock directory {} is a symbolic link: refusing it",
            link.display()
        );
        refused(check_dir(&link, euid()), &want);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_directory_others_can_write_or_own_is_refused() {
        let base = scratch("mode");
        let d = base.join("open");
        create(&d, false).unwrap();
        for mode in [0o777, 0o1777, 0o720, 0o702] {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode)).unwrap();
            let want = format!("is writable by others (mode {mode:o})");
            refused(check_dir(&d, euid()), &want);
        }
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        check_dir(&d, euid()).unwrap();
        let (me, other) = (euid(), euid() + 1);
        let want = format!("belongs to uid {me}, not to uid {other} running zrep");
        refused(check_dir(&d, other), &want);
        std::fs::write(base.join("file"), "").unwrap();
        refused(check_dir(&base.join("file"), me), "is not a directory");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_symlinked_lock_file_is_refused() {
        let d = scratch("filelink");
        let victim = d.join("victim");
        std::fs::write(&victim, "precious").unwrap();
        symlink(&victim, d.join("x.lock")).unwrap();
        let take = |f: &str| Lock::take_in(&d, f, 0, || "busy".into());
        let want = format!(
            "lock file {} is a symbolic link: refusing it",
            d.join("x.lock").display()
        );
        refused(take("x.lock"), &want);
        // Dangling: nothing is created through it.
        symlink(d.join("made"), d.join("y.lock")).unwrap();
        refused(take("y.lock"), "is a symbolic link");
        assert!(!d.join("made").exists());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        // A FIFO neither blocks the open nor passes for a lock file.
        let fifo = d.join("z.lock");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo reads the NUL-terminated path, which outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        refused(take("z.lock"), "z.lock");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn file_names_are_distinct_and_safe() {
        assert_ne!(file_name("a/b"), file_name("a_b"));
        assert!(file_name("../x").starts_with("___x-"));
    }
}
