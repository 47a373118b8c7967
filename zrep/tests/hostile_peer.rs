//! Campaign 4, hostile or broken peer (issue #5), on the host (no ZFS needed): zrep
//! talks to a fake `ssh HOST zrep serve` (fake_peer.py) that sends a huge length
//! prefix, stops mid-frame, speaks another version or protocol, closes early, or
//! answers with the wrong thing. Each must give a clear error, exit 1 promptly, and
//! stay small (peak RSS of the zrep processes, from getrusage).
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn peer(case: &str) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake_peer.py");
    format!("python3 {} {case}", script.display())
}

/// Runs `zrep list` (only the remote side is opened) against the fake peer.
fn against(case: &str) -> (i32, String, Duration) {
    let t0 = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_zrep"))
        .args([
            "list",
            "--timeout",
            "3",
            "--ssh",
            &peer(case),
            "localhost:pool/fs",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run zrep");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        t0.elapsed(),
    )
}

fn children_max_rss_kib() -> i64 {
    // SAFETY: getrusage fills the zeroed struct we pass; no other memory is touched.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut u);
        u.ru_maxrss
    }
}

#[test]
fn hostile_peers_get_clear_errors_and_clean_exits() {
    let v = zrep::proto::VERSION;
    let mismatch = format!(
        "protocol version mismatch: we speak {v}, the peer speaks {}",
        v + 1
    );
    let cases = [
        (
            "huge",
            "J frame of 4294967295 bytes, over the 1048576-byte limit",
        ),
        ("huge-then-stall", "over the 1048576-byte limit"),
        (
            "mid-frame",
            "closed the connection in the middle of a frame",
        ),
        ("version", mismatch.as_str()),
        ("close", "the peer closed the connection"),
        ("shell-error", "is not installed on localhost"),
        ("ssh-banner", "unknown frame kind 0x53 (is it zrep serve?)"),
        ("bad-json", "malformed message"),
        ("noise", "localhost: "),
        (
            "after-hello-data",
            "stream data where a message was expected",
        ),
        ("after-hello-wrong", "unexpected response Streaming"),
        ("after-hello-huge-data", "D frame of 4294967295 bytes"),
        ("after-hello-abort", "malformed message"),
        (
            "after-hello-end",
            "end of stream where a message was expected",
        ),
        ("after-hello-deep", "malformed message"),
        (
            "after-hello-unknown",
            "malformed message: unknown variant `launch`",
        ),
        ("after-hello-kind", "unknown frame kind 0x51"),
        (
            "codec",
            "protocol error: the server chose codec \"brotli\", which was not offered",
        ),
        ("after-hello-close", "the peer closed the connection"),
        (
            "stall-mid-frame",
            "no byte from the peer for 3 s while waiting for the answer to: hello",
        ),
        (
            "after-hello-stall",
            "no byte from the peer for 3 s while waiting for the answer to: list pool/fs",
        ),
        (
            "after-hello-outside",
            "protocol error: a listing of pool/fs named pool/fsx, outside it",
        ),
        (
            "after-hello-shorter",
            "protocol error: a listing of pool/fs named pool, outside it",
        ),
        ("after-hello-bad-name", "malformed message"),
    ];
    let mut table = Vec::new();
    for (case, want) in cases {
        let (code, stderr, took) = against(case);
        assert!(!stderr.contains("panicked"), "{case}: {stderr}");
        assert_eq!(code, 1, "{case}: {stderr}");
        let line = stderr
            .lines()
            .find(|l| l.starts_with("zrep:"))
            .unwrap_or_else(|| panic!("{case}: no zrep: line in {stderr}"));
        assert!(line.contains(want), "{case}: {line}");
        assert!(took < Duration::from_secs(20), "{case}: took {took:?}");
        table.push(format!("| {case} | {:.1} s | {line} |", took.as_secs_f64()));
    }
    let rss = children_max_rss_kib();
    let mut text = String::from("| peer | exit after | what zrep said |\n|---|---|---|\n");
    for l in &table {
        text += &format!("{l}\n");
    }
    text += &format!(
        "RESULT: {} hostile peers: exit 1 with a clear message each; peak RSS of any child {} KiB\n",
        table.len(),
        rss
    );
    eprint!("{text}");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/guest/campaigns");
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(dir.join("peer.txt"), &text);
    }
    assert!(rss < 64 * 1024, "a child used {rss} KiB");
}

#[test]
fn pull_from_a_hostile_peer_fails_before_touching_anything() {
    // replicate opens the remote source first: the peer's failure is the error.
    let out = Command::new(env!("CARGO_BIN_EXE_zrep"))
        .args([
            "replicate",
            "--ssh",
            &peer("version"),
            "localhost:pool/fs",
            "pool/copy",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("protocol version mismatch"), "{err}");
}
