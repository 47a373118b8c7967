//! Running the zrep binary in tests, with `zfs` and `zpool` on its PATH replaced by
//! shims that fail loudly and record the call: every run asserts that zrep started
//! neither.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use crate::{test_dir, zrep_bin};

/// The shim directory (created on first use: once per test process, whose threads
/// would otherwise race on the same temporary name; each shim is renamed into place
/// for the other test processes).
pub fn shim_dir() -> PathBuf {
    static MADE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    MADE.get_or_init(make_shims).clone()
}

fn make_shims() -> PathBuf {
    let d = test_dir().join("shims");
    if !d.join("zfs").exists() {
        std::fs::create_dir_all(&d).unwrap();
        for tool in ["zfs", "zpool"] {
            let p = d.join(tool);
            let tmp = d.join(format!(".{tool}.{}", std::process::id()));
            std::fs::write(
                &tmp,
                format!(
                    "#!/bin/sh\necho \"{tool} $*\" >> {}/spawned\necho 'zrep must not run {tool}' >&2\nexit 97\n",
                    d.display()
                ),
            )
            .unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::rename(&tmp, &p).unwrap();
        }
    }
    d
}

/// Panics if any zrep run (local, or remote through the guest's sshd whose PATH has
/// the shims too) ever started `zfs` or `zpool`.
pub fn assert_no_zfs_spawned() {
    let f = shim_dir().join("spawned");
    if let Ok(s) = std::fs::read_to_string(&f) {
        panic!("zrep spawned zfs/zpool:\n{s}");
    }
}

/// With `ZREP_VALGRIND=DIR` (set by `scripts/test --valgrind`), every zrep the tests
/// start, local or remote, runs under valgrind memcheck with scripts/valgrind.args
/// (the list scripts/guest/tests.sh gives the test binaries) and logs to
/// `DIR/zrep.PID.log` (the guest sums them up).
fn valgrind() -> Option<Vec<String>> {
    const ARGS: &str = include_str!("../../scripts/valgrind.args");
    let dir = valgrind_dir()?;
    let scripts = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/");
    let listed = ARGS
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| l.replacen("=scripts/", &format!("={scripts}"), 1));
    Some(
        std::iter::once("valgrind".to_string())
            .chain(listed)
            .chain([format!("--log-file={dir}/zrep.%p.log")])
            .collect(),
    )
}

/// How long a test waits for a zrep to get somewhere: `secs`, ten times that when
/// every zrep runs under valgrind (each then takes ~30 s just to start in the
/// emulated guest, two of them over SSH).
pub fn patience(secs: u64) -> std::time::Duration {
    std::time::Duration::from_secs(if valgrind_dir().is_some() {
        secs * 10
    } else {
        secs
    })
}

/// `ZREP_VALGRIND`, when set.
fn valgrind_dir() -> Option<String> {
    std::env::var("ZREP_VALGRIND")
        .ok()
        .filter(|d| !d.is_empty())
}

/// The program to start for `zrep` (valgrind wrapping it when asked).
fn zrep_program() -> (PathBuf, Vec<String>) {
    match valgrind() {
        Some(vg) => (vg[0].clone().into(), {
            let mut a = vg[1..].to_vec();
            a.push(zrep_bin().display().to_string());
            a
        }),
        None => (zrep_bin(), Vec::new()),
    }
}

/// The `--remote-zrep` path: zrep itself, or a script running it under valgrind.
pub fn remote_zrep() -> String {
    let (prog, args) = zrep_program();
    if args.is_empty() {
        return prog.display().to_string();
    }
    let script = test_dir().join("zrep-valgrind");
    if !script.exists() {
        let words: Vec<String> = std::iter::once(prog.display().to_string())
            .chain(args)
            .map(|w| format!("'{w}'"))
            .collect();
        let tmp = test_dir().join(format!(".zrep-valgrind.{}", std::process::id()));
        std::fs::write(
            &tmp,
            format!("#!/bin/sh\nexec {} \"$@\"\n", words.join(" ")),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::rename(&tmp, &script).unwrap();
    }
    script.display().to_string()
}

/// A `zrep` command with the shim PATH.
pub fn zrep_cmd(args: &[&str]) -> Command {
    let (prog, pre) = zrep_program();
    let mut c = Command::new(prog);
    c.args(pre);
    let path = std::env::var("PATH").unwrap_or_default();
    c.env("PATH", format!("{}:{path}", shim_dir().display()));
    c.env("ZREP_LOCK_DIR", test_dir().join("locks"));
    c.args(args);
    c
}

/// The result of a zrep run.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts success and returns self.
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "zrep failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts exit code 1 with `needle` in stderr.
    #[track_caller]
    pub fn fails_with(self, needle: &str) -> Run {
        assert_eq!(
            self.code, 1,
            "expected failure:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }

    /// Parses stdout as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("bad JSON ({e}): {}", self.stdout))
    }
}

/// Runs zrep to completion.
pub fn zrep(args: &[&str]) -> Run {
    let out = zrep_cmd(args)
        .stdin(Stdio::null())
        .output()
        .expect("run zrep");
    assert_no_zfs_spawned();
    Run::from(out)
}

/// Runs zrep to completion with extra environment (e.g. `ZREP_NOW`).
pub fn zrep_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = zrep_cmd(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run zrep");
    assert_no_zfs_spawned();
    Run::from(out)
}

/// Starts zrep without waiting.
pub fn zrep_spawn(args: &[&str]) -> Child {
    zrep_cmd(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn zrep")
}

/// Waits until `cond` holds (60 s of patience) while `child` runs. Fails the test,
/// with what zrep said, when zrep ends first.
pub fn wait_until(child: &mut Child, mut cond: impl FnMut() -> bool) {
    let t0 = std::time::Instant::now();
    while !cond() {
        if let Ok(Some(st)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            panic!("zrep ended ({st}) before the condition held: {err}");
        }
        assert!(t0.elapsed() < patience(60), "condition never held");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Waits until `cond` holds (as [`wait_until`]), then kills `child` (SIGKILL) and
/// reaps it: an interruption at a chosen moment.
pub fn kill_when(child: &mut Child, cond: impl FnMut() -> bool) {
    wait_until(child, cond);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The `--ssh` value for the guest's loopback sshd, and `--remote-zrep`.
pub fn ssh_args() -> Vec<String> {
    let ssh = std::env::var("ZREP_TEST_SSH").expect(
        "ZREP_TEST_SSH is unset: remote tests need the guest's sshd (scripts/guest-run starts it)",
    );
    vec!["--ssh".into(), ssh, "--remote-zrep".into(), remote_zrep()]
}

/// Whether a path exists (for readability in tests).
pub fn exists(p: &Path) -> bool {
    p.exists()
}

/// A new key for the guest's sshd whose authorized_keys line runs
/// `zrep serve SERVE_ARGS` as a forced command (`restrict,command="..."`, as README
/// tells users to write it), whatever command the client asks for. Returns zrep's
/// `--ssh`/`--remote-zrep` arguments using that key, and the ssh argv alone.
pub fn forced_key(serve_args: &str) -> (Vec<String>, Vec<String>) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let ssh = std::env::var("ZREP_TEST_SSH").expect("ZREP_TEST_SSH is unset (guest sshd)");
    let argv: Vec<String> = ssh.split_whitespace().map(str::to_string).collect();
    let config = argv
        .iter()
        .position(|a| a == "-F")
        .and_then(|i| argv.get(i + 1))
        .expect("ZREP_TEST_SSH names its config with -F");
    let dir = Path::new(config).parent().unwrap().to_path_buf();
    let keys = test_dir().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let key = keys.join(format!(
        "k{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "forced", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success(), "ssh-keygen failed");
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let line = format!(
        "restrict,command=\"{} serve {serve_args}\" {}",
        remote_zrep(),
        public.trim()
    );
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("authorized_keys"))
        .expect("the guest's authorized_keys");
    f.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut raw = argv.clone();
    raw.extend([
        "-i".to_string(),
        key.display().to_string(),
        "-o".into(),
        "IdentitiesOnly=yes".into(),
    ]);
    let args = vec![
        "--ssh".to_string(),
        raw.join(" "),
        "--remote-zrep".into(),
        "zrep".into(),
    ];
    (args, raw)
}
