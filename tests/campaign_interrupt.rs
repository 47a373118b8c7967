//! Campaign 1, interrupted transfers (issue #5): ZREP_CAMPAIGN_ROUNDS (20) replications
//! of a 128 MiB dataset over SSH, push or pull, full or incremental, each killed with
//! SIGKILL at a random byte offset of the stream: the sending zrep, the receiving side
//! or ssh, chosen at random (seed printed; ZREP_CAMPAIGN_SEED repeats a run). Each is
//! followed by a normal run. Every round must end with identical file trees, the
//! target accepting the next incremental, and zrep's cursor alone left behind.
//!
//! Each target keeps its direction (push or pull) until a full round replaces it.
//! The offset is the number of bytes the sending process has written (its
//! `/proc/PID/io` `wchar`), polled every 10 ms. SSH sessions share one master
//! connection (ControlMaster): handshakes cost seconds in the emulated guest, and what
//! is killed is still the ssh process zrep started.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use zrep_tests::campaign::{assert_cursor_only, Report, Rng};
use zrep_tests::cli::{zrep, zrep_spawn};
use zrep_tests::{mount, test_dir, tree_digest, write_random, zfs, zrep_bin, TestPool};

const FILES: u64 = 4;
const FILE_SIZE: usize = 32 << 20;

/// A shared SSH connection, closed on drop.
struct Master {
    ssh: String,
    control: PathBuf,
}

impl Master {
    fn start() -> Master {
        let base = std::env::var("ZREP_TEST_SSH").expect("ZREP_TEST_SSH (run in the guest)");
        let control = test_dir().join(format!("cm-{}", std::process::id()));
        let mut argv: Vec<String> = base.split_whitespace().map(String::from).collect();
        argv.extend(
            [
                "-o",
                "ControlMaster=yes",
                "-o",
                "ControlPersist=yes",
                "-f",
                "-N",
                "localhost",
            ]
            .map(String::from),
        );
        argv.insert(1, format!("-oControlPath={}", control.display()));
        zrep_tests::run(Command::new(&argv[0]).args(&argv[1..]));
        Master {
            ssh: format!(
                "{base} -o ControlMaster=no -o ControlPath={}",
                control.display()
            ),
            control,
        }
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        let _ = Command::new("ssh")
            .arg("-o")
            .arg(format!("ControlPath={}", self.control.display()))
            .args(["-O", "exit", "localhost"])
            .output();
    }
}

/// `--remote-zrep`: a wrapper that records the serving process's PID, then becomes it.
fn serve_wrapper(pidfile: &Path) -> PathBuf {
    let p = test_dir().join(format!("zrep-serve-{}", std::process::id()));
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\necho $$ > {}\nexec {} \"$@\"\n",
            pidfile.display(),
            zrep_bin().display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// For a round that hangs: every zrep, ssh and sshd process, each thread's kernel
/// stack, and where each descriptor points (pipes by inode), to see who waits on whom.
fn where_stuck() -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let read = |p: String| std::fs::read_to_string(p).unwrap_or_default();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if pid.parse::<u32>().is_err() {
            continue;
        }
        let comm = read(format!("/proc/{pid}/comm")).trim().to_string();
        if !["zrep", "ssh", "sshd"].contains(&comm.as_str()) && !comm.starts_with("campaign") {
            continue;
        }
        let args = read(format!("/proc/{pid}/cmdline")).replace('\0', " ");
        let _ = writeln!(out, "{pid} {comm}: {args}");
        for t in std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let tid = t.file_name().to_string_lossy().into_owned();
            let stack: Vec<String> = read(format!("/proc/{pid}/task/{tid}/stack"))
                .lines()
                .filter_map(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .map(|f| f.split('+').next().unwrap_or(f).to_string())
                })
                .take(6)
                .collect();
            let _ = writeln!(out, "  task {tid}: {}", stack.join(" < "));
        }
        for f in std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(to) = std::fs::read_link(f.path()) {
                let to = to.display().to_string();
                if to.starts_with("pipe:") || to.starts_with("socket:") {
                    let _ = writeln!(out, "  fd {} -> {to}", f.file_name().to_string_lossy());
                }
            }
        }
    }
    out
}

/// Bytes written by a process so far (None once it is gone).
fn wchar(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .and_then(|v| v.trim().parse().ok())
}

fn alive(pid: u32) -> bool {
    // A zombie still has /proc/PID: look at its state.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// The ssh child of `parent`.
fn ssh_child(parent: u32) -> Option<u32> {
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((comm, rest)) = stat.split_once(") ") else {
            continue;
        };
        let ppid = rest.split(' ').nth(1).and_then(|p| p.parse::<u32>().ok());
        if comm.ends_with("(ssh") && ppid == Some(parent) {
            return Some(pid);
        }
    }
    None
}

fn wait_gone(pid: u32, what: &str) {
    let t0 = Instant::now();
    while alive(pid) {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "{what} (pid {pid}) never exited"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn resume_token(ds: &str) -> bool {
    [ds.to_string(), format!("{ds}/%recv")].iter().any(|d| {
        Command::new("zfs")
            .args(["get", "-Hp", "-o", "value", "receive_resume_token", d])
            .output()
            .map(|o| {
                let v = String::from_utf8_lossy(&o.stdout).trim().to_string();
                o.status.success() && v != "-" && !v.is_empty()
            })
            .unwrap_or(false)
    })
}

/// Destroys every snapshot but the newest that nothing holds (a pruning policy).
fn prune(ds: &str) {
    let snaps = zrep_tests::cli_snapshots(ds);
    for s in snaps.iter().rev().skip(1) {
        let _ = Command::new("zfs").args(["destroy", s]).output();
    }
}

#[test]
fn campaign_interrupt() {
    let mut report = Report::new("interrupt");
    let mut rng = Rng::from_env(&mut report);
    let rounds: usize = std::env::var("ZREP_CAMPAIGN_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let p = TestPool::with_size(1 << 30);
    let src = p.create("src");
    for i in 0..FILES {
        write_random(&p.path(&format!("src/f{i}")), FILE_SIZE, rng.bits());
    }
    let dst = p.ds("dst");
    let master = Master::start();
    let pidfile = test_dir().join(format!("serve-{}.pid", std::process::id()));
    let wrapper = serve_wrapper(&pidfile);
    let t_all = Instant::now();
    // A round that hangs fails the campaign, with where it was, instead of the guest's
    // timeout ending everything without a word.
    let round_at = std::sync::Arc::new(std::sync::Mutex::new((0usize, Instant::now())));
    {
        let round_at = round_at.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_secs(5));
            let (round, since) = *round_at.lock().unwrap();
            if since.elapsed() > Duration::from_secs(300) {
                let line = format!(
                    "round {round}: still going after 300 s; zrep and ssh processes:\n{}",
                    where_stuck()
                );
                Report::note("interrupt", &line);
                eprintln!("{line}");
                std::process::exit(1);
            }
        });
    }
    let (mut resumed, mut identical, mut tokens, mut killed_n) = (0, 0, 0, 0);
    let mut rows = Vec::new();
    let mut next_full = true;
    let mut push = true;
    for round in 0..rounds {
        *round_at.lock().unwrap() = (round, Instant::now());
        let full = next_full;
        next_full = rng.range(0, 3) == 0;
        if full {
            if zrep_tests::cli_exists(&dst) {
                // Retiring a target: release zrep's holds on it, then destroy it.
                for (snap, tag) in zrep_tests::campaign::zrep_marks(&dst).0 {
                    zfs(&["release", &tag, &format!("{dst}@{snap}")]);
                }
                zfs(&["destroy", "-r", "-f", &dst]);
            }
        } else {
            let k = rng.range(0, FILES);
            write_random(&p.path(&format!("src/f{k}")), FILE_SIZE, rng.bits());
        }
        let snap = format!("r{round}");
        zfs(&["snapshot", &format!("{src}@{snap}")]);
        let est = zrep(&[
            "replicate",
            "--dry-run",
            "--json",
            "--no-snapshot",
            &src,
            &dst,
        ])
        .ok()
        .json()["estimated_bytes"]
            .as_u64()
            .unwrap();
        // A target is pushed to or pulled into, the same way for its lifetime: the
        // cursor's id names the target as seen from where zrep runs.
        if full {
            push = rng.range(0, 2) == 0;
        }
        let victim = *rng.pick(&["sender", "receiver", "ssh"]);
        let offset = rng.range(1 << 20, est * 9 / 10);
        let (s_arg, t_arg) = if push {
            (src.clone(), format!("localhost:{dst}"))
        } else {
            (format!("localhost:{src}"), dst.clone())
        };
        let args = |json: bool| {
            let mut v = vec!["replicate".to_string(), "--no-snapshot".into()];
            if json {
                v.push("--json".into());
            }
            v.extend([
                "--ssh".into(),
                master.ssh.clone(),
                "--remote-zrep".into(),
                wrapper.display().to_string(),
                s_arg.clone(),
                t_arg.clone(),
            ]);
            v
        };
        report.progress(&format!(
            "round {round}: {} {}, will kill the {victim} at {:.1} of {:.1} MiB",
            if full { "full" } else { "incr" },
            if push { "push" } else { "pull" },
            offset as f64 / 1048576.0,
            est as f64 / 1048576.0
        ));
        let _ = std::fs::remove_file(&pidfile);
        let a = args(false);
        let child = zrep_spawn(&a.iter().map(String::as_str).collect::<Vec<_>>());
        let client = child.id();
        // The serving process (sender when pulling, receiver when pushing).
        let t0 = Instant::now();
        let serve = loop {
            if let Some(pid) = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
            {
                break pid;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "round {round}: zrep serve never started"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        let sender = if push { client } else { serve };
        let client_is_victim = (victim == "sender") == push && victim != "ssh";
        let pid = match victim {
            "sender" => sender,
            "receiver" if push => serve,
            "receiver" => client,
            _ => 0, // ssh: found when the time comes
        };
        let mut killed = false;
        loop {
            match wchar(sender) {
                Some(n) if n >= offset => {
                    let target = if victim == "ssh" {
                        ssh_child(client).expect("zrep's ssh child")
                    } else {
                        pid
                    };
                    // SAFETY: kill(2) on a PID we just looked up; no memory involved.
                    unsafe { libc::kill(target as i32, libc::SIGKILL) };
                    killed = true;
                    break;
                }
                Some(_) if alive(sender) => std::thread::sleep(Duration::from_millis(10)),
                _ => break, // the sender finished first
            }
        }
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!stderr.contains("panicked"), "round {round}: {stderr}");
        let message = if client_is_victim {
            "(killed)".to_string()
        } else {
            assert!(
                !killed || !out.status.success(),
                "round {round}: zrep succeeded though its {victim} was killed"
            );
            stderr
                .lines()
                .find(|l| l.starts_with("zrep:"))
                .unwrap_or(if killed { "(no message)" } else { "(finished)" })
                .chars()
                .take(72)
                .collect()
        };
        if killed {
            killed_n += 1;
            assert!(
                message.starts_with("zrep:") || message == "(killed)",
                "round {round}: unclear failure: {stderr}"
            );
        }
        wait_gone(serve, "zrep serve");
        let token = resume_token(&dst);
        tokens += usize::from(token);

        // The normal run that follows.
        let a = args(true);
        let j = zrep(&a.iter().map(String::as_str).collect::<Vec<_>>())
            .ok()
            .json();
        let was_resumed = j["resumed"] == true;
        resumed += usize::from(was_resumed);
        assert_eq!(
            was_resumed, token,
            "round {round}: a resume token must be resumed, and only then: {j}"
        );
        mount(&dst);
        let same = tree_digest(&p.path("src")) == tree_digest(&p.path("dst"));
        assert!(same, "round {round}: the trees differ");
        identical += usize::from(same);
        assert_cursor_only(&src, &dst, &snap);

        // The target must take the next incremental: the next round sends one, or
        // (before a full round, and at the end) a small one here.
        let next = if next_full || round + 1 == rounds {
            write_random(&p.path("src/small"), 64 << 10, rng.bits());
            let s2 = format!("r{round}b");
            zfs(&["snapshot", &format!("{src}@{s2}")]);
            let j = zrep(&a.iter().map(String::as_str).collect::<Vec<_>>())
                .ok()
                .json();
            assert_eq!(j["mode"], "incremental", "round {round}: {j}");
            assert_cursor_only(&src, &dst, &s2);
            "accepted here"
        } else {
            "next round"
        };
        prune(&src);
        prune(&dst);
        report.progress(&format!(
            "round {round}: done; token {token}, resumed {was_resumed}, {:.0} s so far",
            t_all.elapsed().as_secs_f64()
        ));
        rows.push(vec![
            round.to_string(),
            if full { "full" } else { "incr" }.into(),
            if push { "push" } else { "pull" }.into(),
            victim.into(),
            format!(
                "{:.1}/{:.1}",
                offset as f64 / 1048576.0,
                est as f64 / 1048576.0
            ),
            message,
            if token { "yes" } else { "no" }.into(),
            if was_resumed { "yes" } else { "no" }.into(),
            if same { "yes" } else { "NO" }.into(),
            next.into(),
        ]);
    }
    report.table(
        &[
            "round",
            "stream",
            "dir",
            "killed",
            "at MiB/of",
            "what the client said",
            "token",
            "resumed",
            "identical",
            "next incr.",
        ],
        &rows,
    );
    report.line(&format!(
        "{killed_n} of {rounds} runs killed mid-stream, {tokens} left a resume token; {:.0} s",
        t_all.elapsed().as_secs_f64()
    ));
    assert_eq!(identical, rounds);
    report.finish(&format!(
        "{resumed}/{rounds} resumed, {identical} identical"
    ));
}
