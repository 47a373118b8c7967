//! zrep replicate on real pools: local, push and pull over loopback SSH, refusals,
//! --force, resume after kill -9, bookmarks, -r, encryption, odd names.
use std::process::Command;
use std::time::{Duration, Instant};

use zrep_tests::cli::{kill_when, patience, ssh_args, zrep, zrep_spawn, Run};
use zrep_tests::{
    cli_exists, cli_snapshots, mount, resume_token, tree_digest, write_random, zfs, zfs_get,
    TestPool,
};

fn snap(ds: &str, name: &str) {
    zfs(&["snapshot", &format!("{ds}@{name}")]);
}

/// Short names of a dataset's snapshots, oldest first.
fn short_snaps(ds: &str) -> Vec<String> {
    cli_snapshots(ds)
        .into_iter()
        .map(|s| s.split_once('@').unwrap().1.to_string())
        .collect()
}

fn guid(name: &str) -> String {
    zfs_get("guid", name)
}

/// Asserts both datasets hold the same files (mounting the target).
fn same_data(pool_s: &TestPool, rel_s: &str, pool_t: &TestPool, rel_t: &str) {
    mount(&pool_t.ds(rel_t));
    assert_eq!(
        tree_digest(&pool_s.path(rel_s)),
        tree_digest(&pool_t.path(rel_t))
    );
}

fn with_ssh(mut args: Vec<String>) -> Vec<String> {
    args.extend(ssh_args());
    args
}

fn run(args: &[String]) -> Run {
    let v: Vec<&str> = args.iter().map(String::as_str).collect();
    zrep(&v)
}

#[test]
fn first_run_sends_a_full_stream_then_noop() {
    let p = TestPool::new();
    let src = p.create("src");
    write_random(&p.path("src/a"), 2 << 20, 1);
    let dst = p.ds("dst");
    let r = zrep(&["replicate", "--json", &src, &dst]).ok();
    let j = r.json();
    assert_eq!(j["mode"], "full");
    assert_eq!(j["source"], src.as_str());
    assert_eq!(j["target"], dst.as_str());
    assert!(j["bytes_sent"].as_u64().unwrap() > 2 << 20);
    assert!(j["estimated_bytes"].as_u64().unwrap() > 0);
    assert_eq!(j["resumed"], false);
    let sent = j["snapshots"].as_array().unwrap();
    assert_eq!(sent.len(), 1);
    let name = sent[0].as_str().unwrap();
    assert!(name.starts_with("zrep-"), "{name}");
    assert_eq!(
        guid(&format!("{src}@{name}")),
        guid(&format!("{dst}@{name}"))
    );
    same_data(&p, "src", &p, "dst");

    // Nothing changed: the next run with --no-snapshot has nothing to do.
    let j = zrep(&["replicate", "--json", "--no-snapshot", &src, &dst])
        .ok()
        .json();
    assert_eq!(j["mode"], "noop");
    assert_eq!(j["bytes_sent"], 0);
}

#[test]
fn incremental_carries_every_intermediate_snapshot() {
    let p = TestPool::new();
    let src = p.create("src");
    write_random(&p.path("src/a"), 1 << 20, 2);
    snap(&src, "s1");
    let dst = p.ds("dst");
    zrep(&["replicate", &format!("{src}@s1"), &dst]).ok();
    for (i, n) in ["s2", "s3", "s4"].iter().enumerate() {
        write_random(&p.path(&format!("src/f{i}")), 256 << 10, 10 + i as u64);
        snap(&src, n);
    }
    let j = zrep(&["replicate", "--json", "--no-snapshot", &src, &dst])
        .ok()
        .json();
    assert_eq!(j["mode"], "incremental");
    assert_eq!(j["snapshots"], serde_json::json!(["s2", "s3", "s4"]));
    assert_eq!(short_snaps(&dst), vec!["s1", "s2", "s3", "s4"]);
    for s in ["s1", "s2", "s3", "s4"] {
        assert_eq!(guid(&format!("{src}@{s}")), guid(&format!("{dst}@{s}")));
    }
    same_data(&p, "src", &p, "dst");
}

#[test]
fn replicates_up_to_a_named_snapshot() {
    let p = TestPool::new();
    let src = p.create("src");
    for s in ["a", "b", "c"] {
        snap(&src, s);
    }
    let dst = p.ds("dst");
    zrep(&["replicate", &format!("{src}@b"), &dst]).ok();
    assert_eq!(short_snaps(&dst), vec!["a", "b"]);
}

#[test]
fn push_over_ssh() {
    let p = TestPool::new();
    let src = p.create("src");
    write_random(&p.path("src/a"), 1 << 20, 3);
    let dst = p.ds("dst");
    let args = with_ssh(vec![
        "replicate".into(),
        "--json".into(),
        src.clone(),
        format!("localhost:{dst}"),
    ]);
    let j = run(&args).ok().json();
    assert_eq!(j["mode"], "full");
    same_data(&p, "src", &p, "dst");
    write_random(&p.path("src/b"), 1 << 20, 4);
    let j = run(&args).ok().json();
    assert_eq!(j["mode"], "incremental");
    same_data(&p, "src", &p, "dst");
}

#[test]
fn a_tree_goes_in_parallel_over_ssh() {
    let p = TestPool::with_size(512 << 20);
    let src = p.create("src");
    for c in ["a", "b", "c", "d", "e"] {
        p.create(&format!("src/{c}"));
        p.create(&format!("src/{c}/deeper"));
        write_random(&p.path(&format!("src/{c}/deeper/x")), 256 << 10, 30);
    }
    let dst = p.ds("dst");
    let args = with_ssh(vec![
        "replicate".into(),
        "-r".into(),
        "-j".into(),
        "3".into(),
        "--json".into(),
        src.clone(),
        format!("localhost:{dst}"),
    ]);
    // Children wait for their parents' first receive; siblings go three at a time.
    let j = run(&args).ok().json();
    let all = j.as_array().unwrap();
    assert_eq!(all.len(), 11);
    assert!(all.iter().all(|o| o["mode"] == "full"), "{j}");
    for c in ["a", "b", "c", "d", "e"] {
        write_random(&p.path(&format!("src/{c}/deeper/y")), 64 << 10, 31);
    }
    let j = run(&args).ok().json();
    for o in j.as_array().unwrap() {
        let deep = o["source"].as_str().unwrap().ends_with("/deeper");
        assert_eq!(o["mode"], if deep { "incremental" } else { "noop" }, "{o}");
    }
    for c in ["a", "b", "c", "d", "e"] {
        let rel = format!("{c}/deeper");
        same_data(&p, &format!("src/{rel}"), &p, &format!("dst/{rel}"));
    }
    // One cursor per dataset, as with one worker: the first snapshot stays held where
    // it is still the newest (the root and a..e), released under */deeper.
    let holds = zfs(&[
        "holds",
        "-H",
        "-r",
        &format!("{dst}@{}", short_snaps(&dst)[0]),
    ]);
    assert_eq!(holds.lines().count(), 6, "{holds}");
    assert!(!holds.contains("/deeper@"), "{holds}");
}

#[test]
fn pull_over_ssh() {
    let p = TestPool::new();
    let src = p.create("src");
    write_random(&p.path("src/a"), 1 << 20, 5);
    let dst = p.ds("dst");
    let args = with_ssh(vec![
        "replicate".into(),
        "--json".into(),
        format!("localhost:{src}"),
        dst.clone(),
    ]);
    assert_eq!(run(&args).ok().json()["mode"], "full");
    write_random(&p.path("src/b"), 1 << 20, 6);
    assert_eq!(run(&args).ok().json()["mode"], "incremental");
    same_data(&p, "src", &p, "dst");
}

#[test]
fn diverged_target_is_refused_then_forced() {
    let p = TestPool::new();
    let src = p.create("src");
    snap(&src, "s1");
    let dst = p.ds("dst");
    zrep(&["replicate", "--no-snapshot", &src, &dst]).ok();
    snap(&dst, "extra");
    snap(&src, "s2");
    let before = short_snaps(&dst);
    zrep(&["replicate", "--no-snapshot", &src, &dst])
        .fails_with("newest common snapshot @s1")
        .fails_with("@extra");
    assert_eq!(short_snaps(&dst), before, "a refusal must change nothing");
    let j = zrep(&[
        "replicate",
        "--json",
        "--force",
        "--no-snapshot",
        &src,
        &dst,
    ])
    .ok()
    .json();
    assert_eq!(j["snapshots"], serde_json::json!(["s2"]));
    assert_eq!(short_snaps(&dst), vec!["s1", "s2"]);
}

#[test]
fn modified_target_is_refused_then_forced() {
    let p = TestPool::new();
    let src = p.create("src");
    write_random(&p.path("src/a"), 64 << 10, 7);
    snap(&src, "s1");
    let dst = p.ds("dst");
    zrep(&["replicate", "--writable", "--no-snapshot", &src, &dst]).ok();
    mount(&dst);
    write_random(&p.path("dst/local-change"), 64 << 10, 8);
    zfs(&["unmount", &dst]);
    snap(&src, "s2");
    zrep(&["replicate", "--no-snapshot", &src, &dst])
        .fails_with("modified since its most recent snapshot @s1");
    zrep(&["replicate", "--force", "--no-snapshot", &src, &dst]).ok();
    same_data(&p, "src", &p, "dst");
    assert!(!p.path("dst/local-change").exists());
}

#[test]
fn pool_root_target_is_refused_with_a_suggestion() {
    let a = TestPool::new();
    let b = TestPool::new();
    let src = a.create("test");
    snap(&src, "s1");
    zrep(&["replicate", "--no-snapshot", &src, b.name()]).fails_with(&format!(
        "replicate into a new dataset under it, e.g. {}/test",
        b.name()
    ));
    // An existing dataset with no common snapshot: refused, with a suggestion.
    let other = b.create("other");
    zrep(&["replicate", "--no-snapshot", &src, &other]).fails_with(&format!("{other}/test"));
    assert!(short_snaps(&other).is_empty());
}

#[test]
fn missing_target_parent_is_a_clear_error() {
    let p = TestPool::new();
    let src = p.create("src");
    snap(&src, "s1");
    zrep(&["replicate", "--no-snapshot", &src, &p.ds("no/such/parent")]).fails_with("parent");
}

#[test]
fn not_enough_space_is_refused_with_both_numbers() {
    let big = TestPool::with_size(512 << 20);
    let small = TestPool::with_size(64 << 20);
    let src = big.create("src");
    write_random(&big.path("src/a"), 100 << 20, 9);
    snap(&src, "s1");
    let r = zrep(&["replicate", "--no-snapshot", &src, &small.ds("dst")])
        .fails_with("available but the stream is estimated at");
    assert!(r.stderr.contains('M'), "{}", r.stderr);
    assert!(!Command::new("zfs")
        .args(["list", &small.ds("dst")])
        .output()
        .unwrap()
        .status
        .success());
}

#[test]
fn dry_run_changes_nothing() {
    let p = TestPool::new();
    let src = p.create("src");
    write_random(&p.path("src/a"), 1 << 20, 10);
    let dst = p.ds("dst");
    let j = zrep(&["replicate", "--dry-run", "--json", &src, &dst])
        .ok()
        .json();
    assert_eq!(j["dry_run"], true);
    assert!(cli_snapshots(&src).is_empty(), "dry run took a snapshot");
    assert!(!Command::new("zfs")
        .args(["list", &dst])
        .output()
        .unwrap()
        .status
        .success());
    snap(&src, "s1");
    let r = zrep(&["replicate", "--dry-run", "-v", "--no-snapshot", &src, &dst]).ok();
    assert!(r.stderr.contains("estimated size is"), "{}", r.stderr);
    assert!(!Command::new("zfs")
        .args(["list", &dst])
        .output()
        .unwrap()
        .status
        .success());
    // Data written a moment ago, not yet on disk, is what a dry run says it would send.
    zrep(&["replicate", "--no-snapshot", &src, &dst]).ok();
    write_random(&p.path("src/b"), 1 << 20, 11);
    let j = zrep(&["replicate", "--dry-run", "--json", &src, &dst])
        .ok()
        .json();
    assert_eq!(j["mode"], "incremental", "{j}");
    assert_eq!(cli_snapshots(&src).len(), 1, "the dry run took a snapshot");
}

#[test]
fn killed_full_transfer_resumes_to_identical_data() {
    let p = TestPool::with_size(512 << 20);
    let src = p.create("src");
    write_random(&p.path("src/big"), 96 << 20, 11);
    snap(&src, "s1");
    let dst = p.ds("dst");
    let mut child = zrep_spawn(&["replicate", "--no-snapshot", &src, &dst]);
    // The partially received dataset appears as soon as the stream starts.
    kill_when(&mut child, || {
        cli_exists(&dst) && zfs_get("referenced", &dst).parse::<u64>().unwrap_or(0) > 8 << 20
    });
    let token = resume_token(&dst).expect("an interrupted receive leaves a resume token");
    assert!(!token.is_empty());
    let j = zrep(&["replicate", "--json", "--no-snapshot", &src, &dst])
        .ok()
        .json();
    assert_eq!(j["resumed"], true, "{j}");
    assert_eq!(j["mode"], "resume");
    assert!(resume_token(&dst).is_none());
    assert_eq!(guid(&format!("{src}@s1")), guid(&format!("{dst}@s1")));
    same_data(&p, "src", &p, "dst");
}

#[test]
fn killed_ssh_mid_incremental_resumes() {
    let p = TestPool::with_size(512 << 20);
    let src = p.create("src");
    write_random(&p.path("src/a"), 1 << 20, 12);
    snap(&src, "s1");
    let dst = p.ds("dst");
    let base = with_ssh(vec![
        "replicate".into(),
        "--no-snapshot".into(),
        src.clone(),
        format!("localhost:{dst}"),
    ]);
    run(&base).ok();
    write_random(&p.path("src/big"), 96 << 20, 13);
    snap(&src, "s2");
    let v: Vec<&str> = base.iter().map(String::as_str).collect();
    let mut child = zrep_spawn(&v);
    let pid = child.id();
    let recv = format!("{dst}/%recv");
    let t0 = Instant::now();
    loop {
        if cli_exists(&recv) && zfs_get("referenced", &recv).parse::<u64>().unwrap_or(0) > 8 << 20 {
            break;
        }
        if let Ok(Some(st)) = child.try_wait() {
            let mut err = String::new();
            use std::io::Read;
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("zrep ended ({st}) before the stream started: {err}");
        }
        assert!(t0.elapsed() < patience(60), "stream never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    // kill -9 the ssh child of zrep, not zrep itself.
    let out = Command::new("pkill")
        .args(["-9", "-P", &pid.to_string(), "ssh"])
        .status()
        .unwrap();
    assert!(out.success(), "no ssh child to kill");
    let st = child.wait().unwrap();
    assert!(!st.success(), "zrep must fail when its ssh dies");
    assert!(resume_token(&dst).is_some());
    let mut j = base.clone();
    j.insert(1, "--json".into());
    let j = run(&j).ok().json();
    assert_eq!(j["resumed"], true, "{j}");
    same_data(&p, "src", &p, "dst");
}

#[test]
fn stale_resume_token_is_discarded_and_replanned() {
    let p = TestPool::with_size(512 << 20);
    let src = p.create("src");
    write_random(&p.path("src/big"), 96 << 20, 14);
    snap(&src, "s1");
    let dst = p.ds("dst");
    // An interrupted resumable receive, made deterministically: a cut stream.
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "zfs send {src}@s1 | head -c 16M | zfs receive -s {dst}"
        ))
        .status()
        .unwrap();
    assert!(!st.success());
    assert!(resume_token(&dst).is_some());
    zfs(&["destroy", &format!("{src}@s1")]);
    snap(&src, "s2");
    let r = zrep(&["replicate", "--json", "--no-snapshot", &src, &dst]).ok();
    assert!(
        r.stderr.contains("discarding an interrupted receive"),
        "{}",
        r.stderr
    );
    let j = r.json();
    assert_eq!(j["mode"], "full");
    assert_eq!(short_snaps(&dst), vec!["s2"]);
    same_data(&p, "src", &p, "dst");
}

#[test]
fn pruned_common_snapshot_is_bridged_by_the_bookmark() {
    let p = TestPool::new();
    let src = p.create("src");
    snap(&src, "s1");
    let dst = p.ds("dst");
    zrep(&["replicate", "--no-snapshot", &src, &dst]).ok();
    // zrep keeps a hold and a bookmark on the last replicated snapshot.
    let holds = zfs(&["holds", "-H", &format!("{src}@s1")]);
    let tag = holds.split('\t').nth(1).expect("a zrep hold").to_string();
    assert!(tag.starts_with("zrep-"), "{holds}");
    let bms = zfs(&["list", "-H", "-o", "name", "-t", "bookmark", &src]);
    assert!(bms.contains("#zrep-"), "{bms}");
    zfs(&["release", &tag, &format!("{src}@s1")]);
    write_random(&p.path("src/x"), 64 << 10, 15);
    snap(&src, "s2");
    zfs(&["destroy", &format!("{src}@s1")]);
    let j = zrep(&["replicate", "--json", "--no-snapshot", &src, &dst])
        .ok()
        .json();
    assert_eq!(j["mode"], "incremental");
    assert_eq!(short_snaps(&dst), vec!["s1", "s2"]);
    same_data(&p, "src", &p, "dst");
}

#[test]
fn recursive_continues_past_a_failing_child() {
    let p = TestPool::new();
    let src = p.create("src");
    p.create("src/a");
    p.create("src/b");
    p.create("src/c");
    let dst = p.ds("dst");
    zfs(&["create", &dst]);
    zfs(&["snapshot", &format!("{dst}@mine")]);
    // dst exists with an unrelated snapshot: the root fails; its children too (no
    // parent); use a target tree whose root is fine but one child is foreign.
    let dst2 = p.ds("dst2");
    zrep(&["replicate", "-r", "--json", &src, &dst2]).ok();
    // Make child b diverge on the target.
    snap(&format!("{dst2}/b"), "foreign");
    // Nothing was written: --allow-empty snapshots every dataset anyway.
    let r = zrep(&["replicate", "-r", "--json", "--allow-empty", &src, &dst2]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let j = r.json();
    let arr = j.as_array().unwrap();
    assert_eq!(arr.len(), 4);
    let failed: Vec<_> = arr.iter().filter(|o| !o["error"].is_null()).collect();
    assert_eq!(failed.len(), 1, "{j}");
    assert_eq!(failed[0]["source"], format!("{src}/b"));
    for o in arr.iter().filter(|o| o["error"].is_null()) {
        assert_eq!(o["mode"], "incremental", "{o}");
    }
    assert!(r.stderr.contains("1 of 4 datasets failed"), "{}", r.stderr);
}

#[test]
fn unchanged_datasets_get_no_new_snapshot() {
    let p = TestPool::new();
    let src = p.create("src");
    p.create("src/quiet");
    let dst = p.ds("dst");
    zrep(&["replicate", "-r", &src, &dst]).ok();
    write_random(&p.path("src/new"), 64 << 10, 21);
    let j = zrep(&["replicate", "-r", "--json", &src, &dst]).ok().json();
    assert_eq!(j[0]["mode"], "incremental", "{j}");
    assert_eq!(j[1]["mode"], "noop", "{j}");
    assert_eq!(short_snaps(&src).len(), 2);
    assert_eq!(short_snaps(&format!("{src}/quiet")).len(), 1);
    assert_eq!(short_snaps(&format!("{dst}/quiet")).len(), 1);
}

#[test]
fn encrypted_source_is_sent_raw() {
    let p = TestPool::new();
    let keyfile = zrep_tests::test_dir().join(format!("key-{}", p.name()));
    std::fs::write(&keyfile, "correct horse battery staple").unwrap();
    let src = p.ds("secret");
    zfs(&[
        "create",
        "-o",
        "encryption=on",
        "-o",
        "keyformat=passphrase",
        "-o",
        &format!("keylocation=file://{}", keyfile.display()),
        &src,
    ]);
    write_random(&p.path("secret/a"), 256 << 10, 16);
    let dst = p.ds("copy");
    zrep(&["replicate", &src, &dst]).ok();
    assert_eq!(zfs_get("encryption", &dst), "aes-256-gcm");
    assert_eq!(zfs_get("keystatus", &dst), "unavailable");
    // Incremental raw too.
    write_random(&p.path("secret/b"), 256 << 10, 17);
    zrep(&["replicate", &src, &dst]).ok();
    assert_eq!(short_snaps(&dst).len(), 2);
    // The copy reads back without its key (a raw read), locally and over SSH.
    for t in [dst.clone(), format!("localhost:{dst}")] {
        let j = run(&with_ssh(vec![
            "verify".into(),
            "--read".into(),
            "--json".into(),
            src.clone(),
            t,
        ]))
        .ok()
        .json();
        assert_eq!(j[0]["ok"], true, "{j}");
        assert!(j[0]["read_bytes"].as_u64().unwrap() > 512 << 10, "{j}");
    }
    assert_eq!(zfs_get("keystatus", &dst), "unavailable");
}

#[test]
fn names_with_spaces_travel_safely_over_ssh() {
    let p = TestPool::new();
    let src = p.create("my data");
    write_random(&p.path("my data/f"), 64 << 10, 18);
    let dst = p.ds("copy of: my data");
    let args = with_ssh(vec![
        "replicate".into(),
        src.clone(),
        format!("localhost:{dst}"),
    ]);
    run(&args).ok();
    same_data(&p, "my data", &p, "copy of: my data");
}

#[test]
fn shell_metacharacters_are_rejected_not_interpreted() {
    let p = TestPool::new();
    let src = p.create("src");
    snap(&src, "s1");
    let marker = zrep_tests::test_dir().join("pwned");
    for bad in [
        format!("{}/x$(touch {})", p.name(), marker.display()),
        format!("{}/x;touch {}", p.name(), marker.display()),
        format!("{}/x`id`", p.name()),
        format!("{}/a\nb", p.name()),
        format!("{}/'q'", p.name()),
    ] {
        zrep(&["replicate", &src, &bad]).fails_with("invalid character");
        let args = with_ssh(vec![
            "replicate".into(),
            src.clone(),
            format!("localhost:{bad}"),
        ]);
        run(&args).fails_with("invalid character");
    }
    // A hostile host name is refused before ssh runs.
    let r = run(&with_ssh(vec![
        "replicate".into(),
        src.clone(),
        format!("-oProxyCommand=touch {}:{}", marker.display(), p.ds("d")),
    ]));
    assert_ne!(r.code, 0);
    assert!(!marker.exists(), "a shell interpreted input");
}

#[test]
fn same_dataset_or_inside_the_source_is_refused() {
    let p = TestPool::new();
    let src = p.create("src");
    zrep(&["replicate", &src, &src]).fails_with("is the source or inside it");
    zrep(&["replicate", &src, &p.ds("src/inner")]).fails_with("is the source or inside it");
}

#[test]
fn missing_source_is_a_clear_error() {
    let p = TestPool::new();
    zrep(&["replicate", &p.ds("nope"), &p.ds("dst")]).fails_with("does not exist");
    zrep(&["replicate", "nosuchpool/x", &p.ds("dst")]).fails_with("nosuchpool");
}

#[test]
fn two_runs_on_one_target_do_not_collide() {
    let p = TestPool::with_size(512 << 20);
    let src = p.create("src");
    write_random(&p.path("src/big"), 48 << 20, 19);
    snap(&src, "s1");
    let dst = p.ds("dst");
    let mut first = zrep_spawn(&["replicate", "--no-snapshot", &src, &dst]);
    std::thread::sleep(Duration::from_millis(300));
    // The second gives up quickly with a clear message, or waits and finds nothing to do.
    let second = zrep(&["replicate", "--no-snapshot", "--lock-wait", "0", &src, &dst]);
    let st = first.wait().unwrap();
    assert!(st.success());
    if second.code != 0 {
        assert!(
            second.stderr.contains("another zrep is replicating into"),
            "{}",
            second.stderr
        );
    }
    let third = zrep(&["replicate", "--json", "--no-snapshot", &src, &dst])
        .ok()
        .json();
    assert_eq!(third["mode"], "noop");
    same_data(&p, "src", &p, "dst");
}

#[test]
fn send_and_receive_commands_pipe_like_zfs() {
    let p = TestPool::new();
    let src = p.create("src");
    write_random(&p.path("src/a"), 512 << 10, 20);
    snap(&src, "s1");
    snap(&src, "s2");
    snap(&src, "s3");
    let file = zrep_tests::test_dir().join(format!("{}.stream", p.name()));
    let out = std::fs::File::create(&file).unwrap();
    let st = zrep_tests::cli::zrep_cmd(&["send", &format!("{src}@s1")])
        .stdout(out)
        .status()
        .unwrap();
    assert!(st.success());
    let inp = std::fs::File::open(&file).unwrap();
    let dst = p.ds("dst");
    let st = zrep_tests::cli::zrep_cmd(&["receive", &dst])
        .stdin(inp)
        .status()
        .unwrap();
    assert!(st.success());
    // -I: every intermediate, several streams in one pipe.
    let out = std::fs::File::create(&file).unwrap();
    let st = zrep_tests::cli::zrep_cmd(&["send", "-I", "@s1", &format!("{src}@s3")])
        .stdout(out)
        .status()
        .unwrap();
    assert!(st.success());
    let inp = std::fs::File::open(&file).unwrap();
    let st = zrep_tests::cli::zrep_cmd(&["receive", &dst])
        .stdin(inp)
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(short_snaps(&dst), vec!["s1", "s2", "s3"]);
    let _ = std::fs::remove_file(&file);
    zrep_tests::cli::assert_no_zfs_spawned();
}

#[test]
fn list_shows_snapshots_locally_and_remotely() {
    let p = TestPool::new();
    let src = p.create("src");
    snap(&src, "s1");
    let r = zrep(&["list", "-t", "all", &src]).ok();
    assert!(r.stdout.contains(&format!("{src}@s1")), "{}", r.stdout);
    let mut args = vec!["list".to_string(), "--json".into(), "-r".into()];
    args.extend(ssh_args());
    args.push(format!("localhost:{src}"));
    let j = run(&args).ok().json();
    assert_eq!(j[0]["snapshots"][0]["name"], "s1");
}

#[test]
fn a_refused_run_takes_no_snapshot() {
    let p = TestPool::new();
    let src = p.create("src");
    let other = p.create("other");
    snap(&other, "unrelated");
    zrep(&["replicate", &src, &other]).fails_with("shares no snapshot");
    zrep(&["replicate", &src, &p.ds("no/parent")]).fails_with("parent");
    assert!(
        cli_snapshots(&src).is_empty(),
        "a refused run left a snapshot"
    );
}

/// `zrep failover` hands the source's role to the target: the source read-only, its
/// last writes on the target, the target writable. The way back is incremental and
/// needs no --force: scheduled runs the other way, then a failover back.
#[test]
fn failover_and_back_stay_incremental() {
    let p = TestPool::new();
    let a = p.create("a");
    let a_child = p.create("a/c");
    write_random(&p.path("a/f"), 1 << 20, 11);
    write_random(&p.path("a/c/f"), 256 << 10, 12);
    let b = p.ds("b");
    let b_child = p.ds("b/c");
    zrep(&["replicate", "-r", &a, &b]).ok();
    // Written after the last scheduled run: the failover must bring it over.
    write_random(&p.path("a/late"), 64 << 10, 13);
    let newest = |ds: &str| guid(cli_snapshots(ds).last().unwrap());
    // Over SSH, pushing.
    let args = with_ssh(vec![
        "failover".into(),
        "-r".into(),
        "--json".into(),
        a.clone(),
        format!("localhost:{b}"),
    ]);
    let r = run(&args).ok();
    assert!(
        r.stderr.contains("readonly=on (writes stop)"),
        "{}",
        r.stderr
    );
    for (src, dst) in [(&a, &b), (&a_child, &b_child)] {
        assert_eq!(zfs_get("readonly", src), "on", "{src}");
        assert_eq!(zfs_get("readonly", dst), "off", "{dst}");
        assert_eq!(newest(src), newest(dst), "{src} and {dst} differ");
    }
    assert!(
        std::fs::write(p.path("a/after"), b"x").is_err(),
        "the old source takes writes"
    );
    mount(&b);
    mount(&b_child);
    assert_eq!(tree_digest(&p.path("a")), tree_digest(&p.path("b")));
    // B is the source now: it takes writes, and runs the other way are incremental.
    write_random(&p.path("b/new"), 64 << 10, 14);
    let j = zrep(&["replicate", "-r", "--json", &b, &a]).ok().json();
    assert_eq!(j[0]["mode"], "incremental", "{j}");
    assert_eq!(j[0]["snapshots"].as_array().unwrap().len(), 1, "{j}");
    // And back, locally.
    write_random(&p.path("b/newer"), 64 << 10, 15);
    let j = zrep(&["failover", "-r", "--json", &b, &a]).ok().json();
    assert_eq!(j[0]["mode"], "incremental", "{j}");
    assert_eq!(zfs_get("readonly", &a), "off");
    assert_eq!(zfs_get("readonly", &b), "on");
    assert_eq!(newest(&a), newest(&b));
    assert_eq!(
        tree_digest(&p.path("a")),
        tree_digest(&p.path("b")),
        "the failback lost data"
    );
    assert!(p.path("a/newer").exists());
    // The roles are back: A replicates to B incrementally again.
    write_random(&p.path("a/again"), 64 << 10, 16);
    let j = zrep(&["replicate", "-r", "--json", &a, &b]).ok().json();
    assert_eq!(j[0]["mode"], "incremental", "{j}");
    // Over SSH, pulling: the backup host takes over from the source it reads.
    write_random(&p.path("a/last"), 64 << 10, 17);
    let args = with_ssh(vec![
        "failover".into(),
        "-r".into(),
        "--json".into(),
        format!("localhost:{a}"),
        b.clone(),
    ]);
    let j = run(&args).ok().json();
    assert_eq!(j[0]["mode"], "incremental", "{j}");
    for (src, dst) in [(&a, &b), (&a_child, &b_child)] {
        assert_eq!(zfs_get("readonly", src), "on", "{src}");
        assert_eq!(zfs_get("readonly", dst), "off", "{dst}");
        assert_eq!(newest(src), newest(dst), "{src} and {dst} differ");
    }
    mount(&b);
    assert!(p.path("b/last").exists(), "the pulled failover lost data");
    zrep(&["failover", "--dry-run", &a, &b]).fails_with("failover takes a snapshot of its own");
}
