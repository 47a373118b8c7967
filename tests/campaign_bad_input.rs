//! Campaign 3, bad input (issue #5), against the real binary and real pools:
//! - dataset names at and beyond 255 bytes, `@`/`#` misplaced, empty components,
//!   non-UTF-8 bytes, spaces, quotes, `$()`, `;`, newlines; hosts and user names
//!   likewise; nonexistent pools; a target on the source dataset. Each gets a clear
//!   error or a correct replication, never a panic, never a shell. A NUL byte cannot
//!   be put in an argv (exec takes C strings): NUL reaches zrep only through the
//!   protocol, so names with NUL are sent to `zrep serve` in crafted requests.
//! - garbage, empty, truncated, corrupted and wrong-dataset streams fed to
//!   `zrep receive`: a typed error and the target as it was (or resumable with -s,
//!   as documented).
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::process::Stdio;

use zrep_tests::campaign::Report;
use zrep_tests::cli::{assert_no_zfs_spawned, ssh_args, zrep, zrep_cmd, Run};
use zrep_tests::{cli_exists, cli_snapshots, test_dir, write_random, zfs, zfs_get, TestPool};

fn first_error(r: &Run) -> String {
    let l = r
        .stderr
        .lines()
        .find(|l| l.starts_with("zrep:") || l.starts_with("error:"))
        .unwrap_or(r.stderr.lines().next().unwrap_or(""));
    l.chars().take(90).collect()
}

/// Runs zrep with raw (possibly non-UTF-8) arguments.
fn zrep_os(args: &[OsString]) -> Run {
    let out = zrep_cmd(&[])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run zrep");
    assert_no_zfs_spawned();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Every dataset, snapshot and bookmark of the pool, with GUIDs.
fn pool_view(pool: &str) -> String {
    zfs(&["list", "-Hp", "-r", "-t", "all", "-o", "name,guid", pool])
}

/// How a printed name looks in the table (escaped, shortened).
fn show(s: &OsStr) -> String {
    let e = s.as_bytes().escape_ascii().to_string();
    if e.len() > 48 {
        format!("{}...({} bytes)", &e[..40], s.len())
    } else {
        e
    }
}

#[test]
fn campaign_bad_input() {
    let mut report = Report::new("bad-input");
    let p = TestPool::new();
    let pool = p.name().to_string();
    let src = p.create("src");
    write_random(&p.path("src/a"), 64 << 10, 1);
    zfs(&["snapshot", &format!("{src}@s1")]);
    let marker = test_dir().join(format!("pwned-{}", std::process::id()));
    let m = marker.display().to_string();
    let long = |n: usize| format!("{pool}/{}", "n".repeat(n - pool.len() - 1));
    let ssh = ssh_args();

    // --- names and hosts on the command line ---
    let mut rows = Vec::new();
    let bad_names: Vec<(&str, OsString)> = vec![
        ("256 bytes", long(256).into()),
        ("1000 bytes", long(1000).into()),
        ("two @", format!("{pool}/a@b@c").into()),
        ("# in a dataset", format!("{pool}/a#b").into()),
        ("@ first", "@snap".into()),
        ("empty component", format!("{pool}//a").into()),
        ("trailing /", format!("{pool}/a/").into()),
        ("leading /", format!("/{pool}/a").into()),
        ("empty", "".into()),
        ("..", format!("{pool}/..").into()),
        ("non-UTF-8", OsStr::from_bytes(b"p\xff\xfe/a").to_owned()),
        ("single quote", format!("{pool}/it's").into()),
        ("double quote", format!("{pool}/\"q\"").into()),
        ("$()", format!("{pool}/$(touch {m})").into()),
        ("backquote", format!("{pool}/`touch {m}`").into()),
        (";", format!("{pool}/x;touch {m}").into()),
        ("newline", format!("{pool}/a\nb").into()),
        ("tab", format!("{pool}/a\tb").into()),
        ("| and >", format!("{pool}/a|b>c").into()),
        ("glob", format!("{pool}/*").into()),
        ("non-ASCII", format!("{pool}/h\u{e9}").into()),
        ("leading -", "-x".into()),
    ];
    let before = pool_view(&pool);
    for (what, name) in &bad_names {
        for (role, args) in [
            ("target", vec![OsString::from(&src), name.clone()]),
            ("source", vec![name.clone(), OsString::from(p.ds("d"))]),
            ("remote target", {
                let mut t = OsString::from("localhost:");
                t.push(name);
                vec![OsString::from(&src), t]
            }),
        ] {
            let mut a: Vec<OsString> = vec!["replicate".into()];
            if role == "remote target" {
                a.extend(ssh.iter().map(OsString::from));
            }
            a.extend(args);
            eprintln!("-- {what} as {role}");
            let r = zrep_os(&a);
            assert!(!r.stderr.contains("panicked"), "{what}: {}", r.stderr);
            assert!(
                r.code == 1 || r.code == 2,
                "{what} as {role}: expected an error: {r:?}"
            );
            if role == "target" {
                rows.push(vec![
                    format!("{what}: {}", show(name)),
                    format!("exit {}", r.code),
                    first_error(&r),
                ]);
            }
        }
    }
    assert_eq!(pool_view(&pool), before, "a refused name changed the pool");

    // Valid names: a correct replication, or (where ZFS's 255-byte limit leaves no
    // room for `@zrep-<time>`) a clear "too long" error.
    for (what, n) in [
        ("spaces, colon, dot, dash", 0),
        ("230 bytes (no room for the bookmark)", 230),
        ("250 bytes", 250),
        ("255 bytes", 255),
    ] {
        eprintln!("-- valid: {what}");
        let name = if n == 0 {
            format!("{pool}/my data: v1.0_x-y")
        } else {
            long(n)
        };
        let tgt = format!("{}T", &name[..name.len() - 1]);
        zfs(&["create", &name]);
        eprintln!("--- created");
        write_random(&p.path(&name[pool.len() + 1..]).join("f"), 4096, 9);
        let copy = p.ds(&format!("copy{}", rows.len()));
        let mut cell = Vec::new();
        for (role, s, t) in [
            ("as source", name.as_str(), copy.as_str()),
            ("as target", src.as_str(), tgt.as_str()),
        ] {
            eprintln!("--- {role}: {s} -> {t}");
            let r = zrep(&["replicate", "--json", s, t]);
            eprintln!("--- exit {}: {}", r.code, first_error(&r));
            assert!(!r.stderr.contains("panicked"), "{what}: {}", r.stderr);
            if r.code == 0 {
                let snap = r.json()["snapshots"][0].as_str().unwrap().to_string();
                assert_eq!(
                    zfs_get("guid", &format!("{s}@{snap}")),
                    zfs_get("guid", &format!("{t}@{snap}")),
                    "{what} {role}"
                );
                cell.push(format!("{role}: replicated"));
            } else {
                assert_eq!(r.code, 1, "{what} {role}: {r:?}");
                assert!(
                    n >= 250 && r.stderr.contains("the maximum is 255"),
                    "{what} {role}: {}",
                    r.stderr
                );
                cell.push(format!("{role}: {}", first_error(&r)));
            }
        }
        if n == 0 {
            assert!(cell.iter().all(|c| c.ends_with("replicated")), "{cell:?}");
        }
        rows.push(vec![
            format!("valid: {what}"),
            String::new(),
            cell.join("; "),
        ]);
    }

    // Hosts and users.
    let bad_hosts = [
        ("option", format!("-oProxyCommand=touch {m}")),
        ("$()", format!("$(touch {m})")),
        (";", format!("h;touch {m}")),
        ("space", "ho st".into()),
        ("newline", "a\nb".into()),
        ("quote", "'h'".into()),
        ("empty user", "@localhost".into()),
        ("empty host", "root@".into()),
        ("user with ;", format!("r;touch {m}@localhost")),
        ("user with space", "r t@localhost".into()),
        ("user with $()", format!("$(touch {m})@localhost")),
        ("two @", "a@b@localhost".into()),
        ("unknown host", "no-such-host.invalid".into()),
    ];
    for (what, host) in &bad_hosts {
        eprintln!("-- host {what}");
        let mut a: Vec<String> = vec!["replicate".into()];
        a.extend(ssh.iter().cloned());
        // After `--`, so that a host that looks like an option reaches zrep itself
        // (as it would from a job file), not only the argument parser.
        a.extend(["--".into(), src.clone(), format!("{host}:{}", p.ds("h"))]);
        let r = zrep(&a.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(!r.stderr.contains("panicked"), "{what}: {}", r.stderr);
        assert_eq!(r.code, 1, "host {what}: {r:?}");
        rows.push(vec![
            format!("host {what}: {}", host.escape_debug()),
            format!("exit {}", r.code),
            first_error(&r),
        ]);
    }
    // Nonexistent pools, and the source as its own target.
    for (what, s, t) in [
        ("source pool missing", "nosuchpool/x".to_string(), p.ds("d")),
        (
            "target pool missing",
            src.clone(),
            "nosuchpool/x".to_string(),
        ),
        (
            "target is a missing pool",
            src.clone(),
            "nosuchpool".to_string(),
        ),
        ("target = source", src.clone(), src.clone()),
        ("target inside source", src.clone(), format!("{src}/in")),
        (
            "target = source@snap's dataset",
            format!("{src}@s1"),
            src.clone(),
        ),
        (
            "target = source, through ssh",
            src.clone(),
            format!("localhost:{src}"),
        ),
    ] {
        eprintln!("-- {what}");
        let mut a: Vec<String> = vec!["replicate".into(), "--json".into()];
        a.extend(ssh.iter().cloned());
        a.extend([s, t]);
        let snaps = cli_snapshots(&src);
        let r = zrep(&a.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(!r.stderr.contains("panicked"), "{what}: {}", r.stderr);
        assert_eq!(r.code, 1, "{what}: {r:?}");
        assert_eq!(cli_snapshots(&src), snaps, "{what}: the source changed");
        rows.push(vec![
            what.into(),
            format!("exit {}", r.code),
            first_error(&r),
        ]);
    }
    assert!(!marker.exists(), "a shell interpreted input");
    report.line("Names, hosts and targets (every one also tried as source and remote target):");
    report.table(&["input", "exit", "what zrep said"], &rows);
    let names = rows.len();

    // --- NUL and odd names through the protocol, to zrep serve directly ---
    let mut prow = Vec::new();
    for (what, ds) in [
        ("NUL", format!("{pool}/a\u{0}b")),
        ("two @", format!("{pool}/a@b@c")),
        ("$()", format!("{pool}/$(touch {m})")),
        ("300 bytes", long(300)),
        ("empty", String::new()),
    ] {
        eprintln!("-- serve: {what}");
        let reqs = [
            serde_json::json!({"hello": {"version": zrep::proto::VERSION, "zrep": "campaign"}}),
            serde_json::json!({"state": {"dataset": ds, "recursive": false}}),
            serde_json::json!({"receive": {"dataset": ds, "force": true, "resumable": true}}),
            serde_json::json!({"destroy_snapshots": {"snapshots": [format!("{ds}@x")]}}),
            serde_json::json!("bye"),
        ];
        let mut input = Vec::new();
        for r in &reqs {
            let body = serde_json::to_vec(r).unwrap();
            input.push(b'J');
            input.extend_from_slice(&(body.len() as u32).to_be_bytes());
            input.extend_from_slice(&body);
        }
        let mut child = zrep_cmd(&["serve"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&input).unwrap();
        let mut out = Vec::new();
        child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
        let st = child.wait().unwrap();
        let mut answers = Vec::new();
        let mut rest = &out[..];
        while rest.len() >= 5 {
            let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
            if rest[0] != b'K' {
                let v: serde_json::Value = serde_json::from_slice(&rest[5..5 + len]).unwrap();
                answers.push(v);
            }
            rest = &rest[5 + len..];
        }
        assert!(st.success(), "serve exit {st}");
        assert_eq!(answers.len(), 4, "{what}: {answers:?}");
        let kinds: Vec<String> = answers[1..]
            .iter()
            .map(|a| {
                a["error"]["kind"]
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| a.to_string())
            })
            .collect();
        for k in &kinds {
            assert!(
                k == "InvalidName" || k == "NameTooLong",
                "{what}: serve answered {answers:?}"
            );
        }
        prow.push(vec![what.to_string(), kinds.join(", ")]);
    }
    assert!(!marker.exists(), "a shell interpreted input");
    report.line("Names inside protocol requests (state, receive, destroy) to zrep serve:");
    report.table(&["name", "answers"], &prow);

    // --- streams fed to zrep receive ---
    let mut srow = Vec::new();
    let file = test_dir().join(format!("{pool}.stream"));
    let send = |args: &[&str]| -> Vec<u8> {
        let out = zrep_cmd(args).stdin(Stdio::null()).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        out.stdout
    };
    write_random(&p.path("src/big"), 4 << 20, 2);
    zfs(&["snapshot", &format!("{src}@s2")]);
    let full = send(&["send", &format!("{src}@s1")]);
    let incr = send(&["send", "-i", "@s1", &format!("{src}@s2")]);
    let other = p.create("other");
    zfs(&["snapshot", &format!("{other}@o1")]);
    write_random(&p.path("other/f"), 64 << 10, 3);
    zfs(&["snapshot", &format!("{other}@o2")]);
    let foreign = send(&["send", "-i", "@o1", &format!("{other}@o2")]);
    // An existing target at @s1 that must come out unchanged.
    let dst = p.ds("rx");
    zrep(&["replicate", "--no-snapshot", &format!("{src}@s1"), &dst]).ok();
    let mut noise = vec![0u8; 1 << 20];
    let mut x = 7u64;
    for b in noise.iter_mut() {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *b = (x >> 33) as u8;
    }
    let mut flipped = incr.clone();
    let mid = flipped.len() / 2;
    for b in &mut flipped[mid..mid + 64] {
        *b ^= 0x5a;
    }
    let new = p.ds("rxnew");
    // (case, stream, target, flags, whether a resume token must stay)
    type StreamCase<'a> = (&'a str, Vec<u8>, &'a str, &'a [&'a str], bool);
    let cases: Vec<StreamCase> = vec![
        ("garbage", noise.clone(), &dst, &[], false),
        ("garbage, new dataset", noise, &new, &[], false),
        ("empty input", Vec::new(), &dst, &[], false),
        (
            "truncated full, new dataset",
            full[..full.len() / 2].to_vec(),
            &new,
            &[],
            false,
        ),
        (
            "truncated incremental",
            incr[..incr.len() / 2].to_vec(),
            &dst,
            &[],
            false,
        ),
        (
            "corrupted incremental (64 bytes flipped)",
            flipped,
            &dst,
            &[],
            false,
        ),
        ("incremental of another dataset", foreign, &dst, &[], false),
        (
            "full stream into an existing target",
            full.clone(),
            &dst,
            &[],
            false,
        ),
        (
            "full stream into it with -F",
            full.clone(),
            &dst,
            &["-F"],
            false,
        ),
        (
            "truncated full, -s (resumable)",
            full[..full.len() / 2].to_vec(),
            &new,
            &["-s"],
            true,
        ),
    ];
    for (what, data, target, flags, resumable) in cases {
        eprintln!("-- stream: {what}");
        let before = pool_view(&pool);
        std::fs::write(&file, &data).unwrap();
        let mut a = vec!["receive"];
        a.extend_from_slice(flags);
        a.push(target);
        let out = zrep_cmd(&a)
            .stdin(std::fs::File::open(&file).unwrap())
            .output()
            .unwrap();
        let r = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert!(!r.stderr.contains("panicked"), "{what}: {}", r.stderr);
        assert_eq!(r.code, 1, "{what}: {r:?}");
        assert!(r.stderr.starts_with("zrep: "), "{what}: {}", r.stderr);
        let state = if resumable {
            let t = zfs_get("receive_resume_token", target);
            assert!(t.len() > 10, "{what}: no resume token");
            zfs(&["receive", "-A", target]);
            "resume token kept (as documented for -s)"
        } else {
            assert_eq!(pool_view(&pool), before, "{what}: the pool changed");
            assert!(!cli_exists(&new), "{what}");
            "unchanged"
        };
        srow.push(vec![what.to_string(), first_error(&r), state.into()]);
    }
    let _ = std::fs::remove_file(&file);
    report.line("Streams fed to zrep receive:");
    report.table(&["stream", "what zrep said", "target"], &srow);
    report.finish(&format!(
        "{names} command lines, {} protocol names, {} streams: all clear errors or correct replications, no panic, no shell",
        prow.len(),
        srow.len()
    ));
}
