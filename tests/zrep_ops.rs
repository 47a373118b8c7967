//! Running zrep in a real shop (issue #17): wire compression negotiated over SSH (push
//! and pull, an older peer, a resumed compressed stream), the bandwidth limit measured
//! on loopback, and `zrep verify` (GUIDs, the cursor, `--read` finding a block
//! corrupted in the target pool's image file), locally and over SSH, restricted
//! servers included.
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use zrep_tests::cli::{forced_key, patience, remote_zrep, ssh_args, zrep, zrep_spawn, Run};
use zrep_tests::{
    cli_exists, mount, resume_token, run as run_cmd, test_dir, tree_digest, write_random, zfs,
    zfs_get, TestPool,
};

/// Taken shared by every test of this file, and alone by the one that measures a
/// rate.
static ALONE: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// The shared side of [`ALONE`].
fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    ALONE.read().unwrap_or_else(|e| e.into_inner())
}

/// A measured figure: printed, and kept in `target/guest/campaigns/zrep_ops.progress`
/// (a passing test's output is not shown).
fn figure(s: &str) {
    eprintln!("{s}");
    zrep_tests::campaign::Report::note("zrep_ops", s);
}

fn snap(ds: &str, name: &str) {
    zfs(&["snapshot", &format!("{ds}@{name}")]);
}

fn guid(name: &str) -> String {
    zfs_get("guid", name)
}

fn run(args: &[String]) -> Run {
    let v: Vec<&str> = args.iter().map(String::as_str).collect();
    zrep(&v)
}

fn args(words: &[&str]) -> Vec<String> {
    words.iter().map(|s| s.to_string()).collect()
}

fn with_ssh(mut a: Vec<String>) -> Vec<String> {
    a.extend(ssh_args());
    a
}

/// Compressible data (words, like logs or source code): `len` bytes at `path`.
fn write_text(path: &Path, len: usize, seed: u64) {
    let words = [
        "replication ",
        "snapshot ",
        "bookmark ",
        "stream ",
        "pool ",
        "dataset ",
        "checksum ",
        "block\n",
        "the ",
        "of ",
        "zfs ",
        "send ",
    ];
    let mut x = seed | 1;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut n = 0;
    while n < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let w = words[(x % words.len() as u64) as usize];
        f.write_all(w.as_bytes()).unwrap();
        n += w.len();
    }
}

/// Asserts both datasets hold the same files (mounting the target).
fn same_data(ps: &TestPool, rel_s: &str, pt: &TestPool, rel_t: &str) {
    mount(&pt.ds(rel_t));
    assert_eq!(tree_digest(&ps.path(rel_s)), tree_digest(&pt.path(rel_t)));
}

/// `--remote-zrep` for a server that answers the hello as one from before
/// compression did (no codec): a wrapper setting `ZREP_SERVE_CODECS` empty.
fn old_server() -> String {
    let script = test_dir().join(format!("zrep-no-codecs-{}", std::process::id()));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nZREP_SERVE_CODECS= exec '{}' \"$@\"\n",
            remote_zrep()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script.display().to_string()
}

/// Push and pull of compressible data: zstd agreed and used by default, lz4 when
/// asked, and far fewer bytes on the wire than in the stream; the data arrive whole.
#[test]
fn compression_is_negotiated_and_used_push_and_pull() {
    let _shared = shared();
    let p = TestPool::with_size(512 << 20);
    let src = p.create("src");
    write_text(&p.path("src/log"), 24 << 20, 1);
    snap(&src, "s1");
    let mut figures = Vec::new();
    for (dir, codec) in [
        ("push", None),
        ("pull", None),
        ("push", Some("lz4")),
        ("pull", Some("lz4")),
    ] {
        let dst = p.ds(&format!("{dir}-{}", codec.unwrap_or("auto")));
        let (s, t) = match dir {
            "push" => (src.clone(), format!("localhost:{dst}")),
            _ => (format!("localhost:{src}"), dst.clone()),
        };
        let mut a = args(&["replicate", "--json", "--no-snapshot"]);
        if let Some(c) = codec {
            a.extend(args(&["--compress", c]));
        }
        a.extend([s, t]);
        let j = run(&with_ssh(a)).ok().json();
        let (stream, wire) = (
            j["bytes_sent"].as_u64().unwrap(),
            j["wire_bytes"].as_u64().unwrap(),
        );
        assert_eq!(j["compress"], codec.unwrap_or("zstd"), "{dir}: {j}");
        let factor = if codec.is_some() { 2 } else { 3 };
        assert!(
            wire * factor < stream,
            "{dir} {codec:?}: {wire} on the wire for {stream}"
        );
        figures.push(format!(
            "{dir} {}: {stream} -> {wire}",
            codec.unwrap_or("zstd")
        ));
        assert_eq!(guid(&format!("{src}@s1")), guid(&format!("{dst}@s1")));
        let rel = dst.split_once('/').unwrap().1.to_string();
        same_data(&p, "src", &p, &rel);
    }
    figure(&format!(
        "compression (stream -> wire bytes): {}",
        figures.join("; ")
    ));
}

/// A stream of blocks compressed already (`-c`) travels plain by default (little to
/// gain), compressed when asked; `--compress none` sends plain frames.
#[test]
fn compressed_streams_are_not_compressed_again_unless_asked() {
    let _shared = shared();
    let p = TestPool::with_size(512 << 20);
    let src = p.create("src");
    zfs(&["set", "compression=lz4", &src]);
    write_text(&p.path("src/log"), 8 << 20, 2);
    snap(&src, "s1");
    for (extra, want) in [
        (vec!["-c"], serde_json::Value::Null),
        (vec!["-c", "--compress", "zstd"], "zstd".into()),
        (vec!["--compress", "none"], serde_json::Value::Null),
    ] {
        let dst = p.ds(&format!("d{}", extra.len()));
        let mut a = args(&["replicate", "--json", "--no-snapshot"]);
        a.extend(args(&extra));
        a.extend([src.clone(), format!("localhost:{dst}")]);
        let j = run(&with_ssh(a)).ok().json();
        assert_eq!(j["compress"], want, "{extra:?}: {j}");
        let (stream, wire) = (
            j["bytes_sent"].as_u64().unwrap(),
            j["wire_bytes"].as_u64().unwrap(),
        );
        if want.is_null() {
            assert!(wire > stream, "{extra:?}: {wire} on the wire for {stream}");
        }
    }
}

/// A server that knows no codec (as one from before compression): the client offers,
/// the server answers none, and push and pull travel as plain frames.
#[test]
fn an_older_server_without_compression_still_replicates() {
    let _shared = shared();
    let p = TestPool::new();
    let src = p.create("src");
    write_text(&p.path("src/log"), 4 << 20, 3);
    snap(&src, "s1");
    let old = old_server();
    for dir in ["push", "pull"] {
        let dst = p.ds(dir);
        let (s, t) = match dir {
            "push" => (src.clone(), format!("localhost:{dst}")),
            _ => (format!("localhost:{src}"), dst.clone()),
        };
        let mut a = args(&["replicate", "--json", "--no-snapshot", "--compress", "zstd"]);
        a.extend(ssh_args().into_iter().take(2));
        a.extend(["--remote-zrep".into(), old.clone(), s, t]);
        let j = run(&a).ok().json();
        assert_eq!(j["compress"], serde_json::Value::Null, "{dir}: {j}");
        assert!(j["wire_bytes"].as_u64().unwrap() > j["bytes_sent"].as_u64().unwrap());
        assert_eq!(guid(&format!("{src}@s1")), guid(&format!("{dst}@s1")));
    }
}

/// A compressed push killed mid-stream leaves a resume token; the next run resumes
/// it, compressed too, to identical data.
#[test]
fn an_interrupted_compressed_transfer_resumes() {
    let _shared = shared();
    let p = TestPool::with_size(512 << 20);
    let src = p.create("src");
    write_text(&p.path("src/log"), 64 << 20, 4);
    snap(&src, "s1");
    let dst = p.ds("dst");
    // Slowed down (512K/s on the wire, a few M/s of stream) so that it is killed
    // mid-stream for sure.
    let a = with_ssh(args(&[
        "replicate",
        "--no-snapshot",
        "--bwlimit",
        "512K",
        &src,
        &format!("localhost:{dst}"),
    ]));
    let v: Vec<&str> = a.iter().map(String::as_str).collect();
    let mut child = zrep_spawn(&v);
    let t0 = Instant::now();
    while !(cli_exists(&dst) && zfs_get("referenced", &dst).parse::<u64>().unwrap_or(0) > 4 << 20) {
        if let Ok(Some(st)) = child.try_wait() {
            let mut e = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut e);
            panic!("zrep ended ({st}) before it could be killed: {e}");
        }
        assert!(t0.elapsed() < patience(120), "the stream never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        resume_token(&dst).is_some(),
        "an interrupted receive leaves a token"
    );
    let j = run(&with_ssh(args(&[
        "replicate",
        "--json",
        "--no-snapshot",
        &src,
        &format!("localhost:{dst}"),
    ])))
    .ok()
    .json();
    assert_eq!(j["resumed"], true, "{j}");
    assert_eq!(j["mode"], "resume");
    assert_eq!(j["compress"], "zstd", "{j}");
    assert!(resume_token(&dst).is_none());
    assert_eq!(guid(&format!("{src}@s1")), guid(&format!("{dst}@s1")));
    same_data(&p, "src", &p, "dst");
}

/// Bytes zrep's main thread (`pid`) has written so far (`wchar`: a push's frames to
/// ssh, and a few lines of stderr; not the send's writes into its pipe, made by
/// another thread).
fn written(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/io")).ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .and_then(|v| v.trim().parse().ok())
}

/// The newest `zrep serve` process (the test that looks runs alone).
fn newest_server() -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
            args.len() >= 2 && args[0].ends_with(b"zrep") && args[1] == b"serve"
        })
        .max()
}

/// `--bwlimit` on loopback (2M, or `ZREP_CAMPAIGN_BWLIMIT` MiB/s), a push then a pull
/// of 22 s worth of incompressible data: the bytes the sending zrep writes to ssh (a
/// push: the client's main thread; a pull: `zrep serve`'s, which sends at the rate
/// the client asked), sampled every second, average within 10% of the limit and no
/// second above 150%. It runs alone (the other tests of this file wait). The issue's
/// 5M held (5.00 MiB every second) in a quiet guest, but an emulated guest on a busy
/// host carries less than that over ssh: the suite measures 2M.
#[test]
fn bwlimit_keeps_the_rate_on_the_wire() {
    let _alone = ALONE.write().unwrap_or_else(|e| e.into_inner());
    let p = TestPool::with_size(768 << 20);
    let src = p.create("src");
    let mib: u64 = std::env::var("ZREP_CAMPAIGN_BWLIMIT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let rate = mib << 20;
    let limit = format!("{mib}M");
    write_random(&p.path("src/big"), (22 * rate) as usize, 5);
    snap(&src, "s1");
    for dir in ["push", "pull"] {
        let dst = p.ds(dir);
        let (s, t) = match dir {
            "push" => (src.clone(), format!("localhost:{dst}")),
            _ => (format!("localhost:{src}"), dst.clone()),
        };
        let a = with_ssh(args(&[
            "replicate",
            "--json",
            "--no-snapshot",
            "--compress",
            "none",
            "--bwlimit",
            &limit,
            &s,
            &t,
        ]));
        let v: Vec<&str> = a.iter().map(String::as_str).collect();
        let mut child = zrep_spawn(&v);
        // Start counting once the stream flows (the listing and estimate come first).
        let t0 = Instant::now();
        let (pid, base) = loop {
            let pid = match dir {
                "push" => Some(child.id()),
                _ => newest_server(),
            };
            if let Some(w) = pid.and_then(written).filter(|w| *w > 1 << 20) {
                break (pid.unwrap(), w);
            }
            assert!(
                t0.elapsed() < patience(120),
                "{dir}: the stream never started"
            );
            assert!(
                child.try_wait().unwrap().is_none(),
                "{dir}: zrep ended early"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut seconds = Vec::new();
        let mut last = base;
        let mut tick = Instant::now();
        loop {
            tick += Duration::from_secs(1);
            std::thread::sleep(tick.saturating_duration_since(Instant::now()));
            let Some(w) = written(pid) else { break };
            if child.try_wait().unwrap().is_some() {
                break;
            }
            seconds.push(w - last);
            last = w;
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{dir}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        // The whole seconds, not the last (the stream ends inside it).
        let full = &seconds[..seconds.len().saturating_sub(1)];
        assert!(
            full.len() >= 15,
            "{dir}: only {} seconds measured: {seconds:?}",
            full.len()
        );
        let total: u64 = full.iter().sum();
        let avg = total as f64 / full.len() as f64 / rate as f64;
        let peak = full.iter().copied().max().unwrap() as f64 / rate as f64;
        figure(&format!(
            "bwlimit {limit}, {dir}: {} s, average {:.3} of the limit, peak second {:.3}; per second (MiB): {:?}; wire {}",
            full.len(),
            avg,
            peak,
            full.iter().map(|b| format!("{:.2}", *b as f64 / (1 << 20) as f64)).collect::<Vec<_>>(),
            j["wire_bytes"]
        ));
        assert!(
            (0.9..=1.1).contains(&avg),
            "{dir}: average {avg:.3} of the limit"
        );
        assert!(peak <= 1.5, "{dir}: a second at {peak:.3} of the limit");
        assert_eq!(guid(&format!("{src}@s1")), guid(&format!("{dst}@s1")));
    }
}

/// `zrep verify` after a replication: every dataset `ok`; `--read` reads the newest
/// snapshot back (at least the data written); JSON has one object per dataset.
#[test]
fn verify_finds_a_sound_copy_sound_locally_and_over_ssh() {
    let _shared = shared();
    let p = TestPool::with_size(512 << 20);
    let src = p.create("src");
    p.create("src/child");
    write_random(&p.path("src/a"), 2 << 20, 6);
    write_random(&p.path("src/child/b"), 1 << 20, 7);
    let dst = p.ds("dst");
    zfs(&["snapshot", "-r", &format!("{src}@s1")]);
    zrep(&["replicate", "-r", "--no-snapshot", &src, &dst]).ok();
    write_random(&p.path("src/c"), 1 << 20, 8);
    zfs(&["snapshot", "-r", &format!("{src}@s2")]);
    zrep(&["replicate", "-r", "--no-snapshot", &src, &dst]).ok();
    let r = zrep(&["verify", "-r", "--read", &src, &dst]).ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.stdout);
    assert!(lines.iter().all(|l| l.starts_with("ok ")), "{}", r.stdout);
    assert!(
        lines[0].contains("2 snapshots shared") && lines[0].contains("read back"),
        "{}",
        r.stdout
    );
    for (s, t) in [
        (src.clone(), format!("localhost:{dst}")),
        (format!("localhost:{src}"), dst.clone()),
    ] {
        let j = run(&with_ssh(args(&[
            "verify", "-r", "--read", "--json", &s, &t,
        ])))
        .ok()
        .json();
        let all = j.as_array().unwrap();
        assert_eq!(all.len(), 2, "{j}");
        assert!(all.iter().all(|v| v["ok"] == true), "{j}");
        assert!(all[0]["read_bytes"].as_u64().unwrap() > 2 << 20, "{j}");
        assert_eq!(
            all[1]["target"].as_str().unwrap().rsplit('/').next(),
            Some("child")
        );
    }
}

/// A snapshot both sides have by name but with another GUID, and a cursor whose
/// bookmark and target hold are gone: each named, exit 1.
#[test]
fn verify_reports_guid_mismatches_and_a_missing_cursor() {
    let _shared = shared();
    let p = TestPool::new();
    let src = p.create("src");
    write_random(&p.path("src/a"), 1 << 20, 9);
    snap(&src, "a");
    snap(&src, "b");
    let dst = p.ds("dst");
    zrep(&["replicate", "--no-snapshot", &src, &dst]).ok();
    zrep(&["verify", &src, &dst]).ok();
    // Another @a on the source (the old one destroyed): same name, new GUID.
    zfs(&["destroy", &format!("{src}@a")]);
    write_random(&p.path("src/x"), 4096, 10);
    snap(&src, "a");
    let r = zrep(&["verify", "--json", &src, &dst]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let v = &r.json()[0];
    assert_eq!(v["ok"], false);
    let problems = v["problems"].to_string();
    assert!(problems.contains("@a: GUID"), "{problems}");
    // The cursor: the bookmark on the source and the hold on the target, removed.
    let marks = zfs(&["list", "-H", "-o", "name", "-t", "bookmark", &src]);
    let mark = marks
        .lines()
        .find(|l| l.contains("#zrep-"))
        .expect("a cursor bookmark")
        .to_string();
    zfs(&["destroy", &mark]);
    let tag = mark
        .split('#')
        .nth(1)
        .unwrap()
        .rsplit_once("-b")
        .unwrap()
        .0
        .to_string();
    zfs(&["release", &tag, &format!("{dst}@b")]);
    let r = zrep(&["verify", &src, &dst]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("MISMATCH "), "{}", r.stdout);
    assert!(r.stdout.contains("cursor bookmark #zrep-"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains(&format!("cursor hold {tag} is missing on the target's @b")),
        "{}",
        r.stdout
    );
    // A target that does not exist.
    let r = zrep(&["verify", &src, &p.ds("nowhere")]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("the target does not exist"),
        "{}",
        r.stdout
    );
}

/// The offset of `needle` in the file at `path` (searched at 512-byte steps, where
/// ZFS places blocks).
fn find_in(path: &Path, needle: &[u8]) -> Option<u64> {
    let mut f = std::fs::File::open(path).unwrap();
    let mut buf = vec![0u8; 8 << 20];
    let mut base = 0u64;
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            return None;
        }
        let mut got = n;
        while got < buf.len() {
            let m = f.read(&mut buf[got..]).unwrap();
            if m == 0 {
                break;
            }
            got += m;
        }
        let mut i = 0;
        while i + needle.len() <= got {
            if &buf[i..i + needle.len()] == needle {
                return Some(base + i as u64);
            }
            i += 512;
        }
        base += got as u64;
        if got < buf.len() {
            return None;
        }
    }
}

/// `verify --read` on a target whose pool image had garbage written over a block of
/// its newest snapshot's data: the read back fails and says so, exit 1; the same
/// check over SSH through a receive-only server, which allows it inside its root.
#[test]
fn verify_read_finds_corruption_in_the_target_pool() {
    let _shared = shared();
    let ps = TestPool::new();
    let pt = TestPool::with_size(64 << 20);
    let src = ps.create("src");
    write_random(&ps.path("src/data"), 1 << 20, 11);
    let dst = pt.ds("dst");
    zrep(&["replicate", &src, &dst]).ok();
    zrep(&["verify", "--read", &src, &dst]).ok();
    let data = std::fs::read(ps.path("src/data")).unwrap();
    // The pool's image file: the one zpool status names.
    let image = image_of(pt.name());
    run_cmd(Command::new("zpool").args(["export", pt.name()]));
    let at = find_in(&image, &data[256 << 10..(256 << 10) + 64]).expect("the data in the image");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .unwrap();
    f.seek(SeekFrom::Start(at + 4096)).unwrap();
    f.write_all(&[0x5a; 8192]).unwrap();
    f.sync_all().unwrap();
    drop(f);
    run_cmd(
        Command::new("zpool")
            .args(["import", "-d"])
            .arg(image.parent().unwrap())
            .arg(pt.name()),
    );
    // Without --read the metadata is fine.
    zrep(&["verify", &src, &dst]).ok();
    let r = zrep(&["verify", "--read", &src, &dst]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("MISMATCH "), "{}", r.stdout);
    assert!(r.stdout.contains("read back failed"), "{}", r.stdout);
    figure(&format!(
        "verify --read on a corrupted target: {}",
        r.stdout.trim()
    ));
    // Over SSH, the target behind a receive-only forced command rooted at it.
    let (forced, _) = forced_key(&format!("--root {dst} --receive-only"));
    let mut a = args(&["verify", "--read", &src, &format!("localhost:{dst}")]);
    a.extend(forced.clone());
    let r = run(&a);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("read back failed"), "{}", r.stdout);
    // Outside its root, the server refuses.
    let mut a = args(&[
        "verify",
        "--read",
        &src,
        &format!("localhost:{}", ps.ds("src")),
    ]);
    a.extend(forced);
    run(&a).fails_with("refused by the server");
}

/// The image file of a test pool (`zpool status -P` names its vdev).
fn image_of(pool: &str) -> PathBuf {
    let out = run_cmd(Command::new("zpool").args(["status", "-P", pool]));
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find(|w| w.starts_with('/') && w.ends_with(".img"))
        .map(PathBuf::from)
        .expect("the pool's image file in zpool status")
}
