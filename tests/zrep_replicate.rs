//! zrep replicate on real pools: local, push and pull over loopback SSH, refusals,
//! --force, resume after kill -9, bookmarks, -r, encryption, odd names.
use std::process::Command;
use std::time::Duration;

use zrep_tests::cli::{kill_when, wait_until, zrep, zrep_cmd};
use zrep_tests::pair::{expect_refused, guid, receiving, short_snaps, zrep_ssh, Pair, Way};
use zrep_tests::{
    cli_exists, cli_snapshots, mount, resume_token, test_dir, tree_digest, write_random, zfs,
    zfs_get, TestPool,
};

#[test]
fn first_run_sends_a_full_stream_then_noop() {
    let p = TestPool::new();
    let pair = p.pair();
    pair.src.write("a", 2 << 20, 1);
    let j = pair.replicate_json(&[]);
    assert_eq!(j["mode"], "full");
    assert_eq!(j["source"], pair.src.name());
    assert_eq!(j["target"], pair.dst.name());
    assert!(j["bytes_sent"].as_u64().unwrap() > 2 << 20);
    assert!(j["estimated_bytes"].as_u64().unwrap() > 0);
    assert_eq!(j["resumed"], false);
    let sent = j["snapshots"].as_array().unwrap();
    assert_eq!(sent.len(), 1);
    let name = sent[0].as_str().unwrap();
    assert!(name.starts_with("zrep-"), "{name}");
    pair.same_snapshot(name);
    pair.same_data();

    // Nothing changed: the next run with --no-snapshot has nothing to do.
    let j = pair.replicate_json(&["--no-snapshot"]);
    assert_eq!(j["mode"], "noop");
    assert_eq!(j["bytes_sent"], 0);
}

#[test]
fn incremental_carries_every_intermediate_snapshot() {
    let p = TestPool::new();
    let pair = p.pair();
    pair.src.write("a", 1 << 20, 2).snap("s1");
    zrep(&["replicate", &pair.src.at("s1"), pair.dst.name()]).ok();
    for (i, n) in ["s2", "s3", "s4"].iter().enumerate() {
        pair.src
            .write(&format!("f{i}"), 256 << 10, 10 + i as u64)
            .snap(n);
    }
    let j = pair.replicate_json(&["--no-snapshot"]);
    assert_eq!(j["mode"], "incremental");
    assert_eq!(j["snapshots"], serde_json::json!(["s2", "s3", "s4"]));
    assert_eq!(pair.dst.short_snaps(), ["s1", "s2", "s3", "s4"]);
    for s in ["s1", "s2", "s3", "s4"] {
        pair.same_snapshot(s);
    }
    pair.same_data();
}

#[test]
fn replicates_up_to_a_named_snapshot() {
    let p = TestPool::new();
    let pair = p.pair();
    pair.src.snaps(&["a", "b", "c"]);
    zrep(&["replicate", &pair.src.at("b"), pair.dst.name()]).ok();
    assert_eq!(pair.dst.short_snaps(), ["a", "b"]);
}

/// Pushed and pulled, each from its own source: a full stream, then an incremental.
#[test]
fn push_and_pull_over_ssh() {
    let p = TestPool::new();
    for (way, seed) in [(Way::Push, 3), (Way::Pull, 5)] {
        let w = way.name();
        let pair = Pair {
            src: p.fs(&format!("{w}-src")),
            dst: p.fs_at(&format!("{w}-dst")),
        };
        pair.src.write("a", 1 << 20, seed);
        let j = pair.replicate_via(way, &["--json"]).ok().json();
        assert_eq!(j["mode"], "full", "{w}");
        pair.same_data();
        pair.src.write("b", 1 << 20, seed + 1);
        let j = pair.replicate_via(way, &["--json"]).ok().json();
        assert_eq!(j["mode"], "incremental", "{w}");
        pair.same_data();
    }
}

#[test]
fn a_tree_goes_in_parallel_over_ssh() {
    let p = TestPool::with_size(512 << 20);
    let pair = p.pair();
    for c in ["a", "b", "c", "d", "e"] {
        p.create(&format!("src/{c}"));
        p.fs(&format!("src/{c}/deeper")).write("x", 256 << 10, 30);
    }
    let opts = ["-r", "-j", "3", "--json"];
    // Children wait for their parents' first receive; siblings go three at a time.
    let j = pair.replicate_via(Way::Push, &opts).ok().json();
    let all = j.as_array().unwrap();
    assert_eq!(all.len(), 11);
    assert!(all.iter().all(|o| o["mode"] == "full"), "{j}");
    for c in ["a", "b", "c", "d", "e"] {
        p.fs_at(&format!("src/{c}/deeper")).write("y", 64 << 10, 31);
    }
    let j = pair.replicate_via(Way::Push, &opts).ok().json();
    for o in j.as_array().unwrap() {
        let deep = o["source"].as_str().unwrap().ends_with("/deeper");
        assert_eq!(o["mode"], if deep { "incremental" } else { "noop" }, "{o}");
    }
    for c in ["a", "b", "c", "d", "e"] {
        let rel = format!("{c}/deeper");
        p.pair_at(&format!("src/{rel}"), &format!("dst/{rel}"))
            .same_data();
    }
    // One cursor per dataset, as with one worker: the first snapshot stays held where
    // it is still the newest (the root and a..e), released under */deeper.
    let first = pair.dst.at(&pair.dst.short_snaps()[0]);
    let holds = zfs(&["holds", "-H", "-r", &first]);
    assert_eq!(holds.lines().count(), 6, "{holds}");
    assert!(!holds.contains("/deeper@"), "{holds}");
}

#[test]
fn a_local_tree_sends_small_streams_beside_large_ones() {
    let p = TestPool::with_size(512 << 20);
    let pair = p.pair();
    // Eight children with work: locally and by default, up to 16 go at once while
    // the streams beyond four are small; the two large ones take two of four permits.
    let kids = ["a", "b", "c", "d", "e", "f", "g", "h"];
    for (i, c) in kids.iter().enumerate() {
        let size = if i < 2 { 20 << 20 } else { 64 << 10 };
        p.fs(&format!("src/{c}")).write("x", size, 40 + i as u64);
    }
    let j = pair.replicate(&["-r", "--json"]).ok().json();
    let all = j.as_array().unwrap();
    assert_eq!(all.len(), 9, "{j}");
    assert!(
        all.iter()
            .all(|o| o["mode"] == "full" && o["error"].is_null()),
        "{j}"
    );
    for (i, c) in kids.iter().enumerate() {
        p.fs_at(&format!("src/{c}"))
            .write("y", 64 << 10, 50 + i as u64);
    }
    let j = pair.replicate(&["-r", "--json"]).ok().json();
    for o in j.as_array().unwrap() {
        let root = o["source"] == pair.src.name();
        assert_eq!(o["mode"], if root { "noop" } else { "incremental" }, "{o}");
    }
    for c in kids {
        p.pair_at(&format!("src/{c}"), &format!("dst/{c}"))
            .same_data();
    }
}

#[test]
fn diverged_target_is_refused_then_forced() {
    let p = TestPool::new();
    let pair = p.pair();
    pair.src.snap("s1");
    pair.replicate(&["--no-snapshot"]).ok();
    pair.dst.snap("extra");
    pair.src.snap("s2");
    let before = pair.dst.short_snaps();
    pair.replicate(&["--no-snapshot"])
        .fails_with("newest common snapshot @s1")
        .fails_with("@extra");
    assert_eq!(
        pair.dst.short_snaps(),
        before,
        "a refusal must change nothing"
    );
    let j = pair.replicate_json(&["--force", "--no-snapshot"]);
    assert_eq!(j["snapshots"], serde_json::json!(["s2"]));
    assert_eq!(pair.dst.short_snaps(), ["s1", "s2"]);
}

#[test]
fn modified_target_is_refused_then_forced() {
    let p = TestPool::new();
    let pair = p.pair();
    pair.src.write("a", 64 << 10, 7).snap("s1");
    pair.replicate(&["--writable", "--no-snapshot"]).ok();
    mount(pair.dst.name());
    pair.dst.write("local-change", 64 << 10, 8);
    zfs(&["unmount", pair.dst.name()]);
    pair.src.snap("s2");
    pair.replicate(&["--no-snapshot"])
        .fails_with("modified since its most recent snapshot @s1");
    pair.replicate(&["--force", "--no-snapshot"]).ok();
    pair.same_data();
    assert!(!pair.dst.path("local-change").exists());
}

/// Targets on another pool: its root, a dataset with no common snapshot (both refused
/// with a suggestion), and one without room for the stream (refused with both numbers).
#[test]
fn targets_on_another_pool_are_refused_with_a_reason() {
    let big = TestPool::with_size(512 << 20);
    let small = TestPool::with_size(64 << 20);
    let test = big.fs("test");
    test.snap("s1");
    let (t, b) = (test.name(), small.name());
    expect_refused(
        "the pool root",
        zrep(&["replicate", "--no-snapshot", t, b]),
        &format!("replicate into a new dataset under it, e.g. {b}/test"),
    );
    let other = small.create("other");
    expect_refused(
        "an unrelated dataset",
        zrep(&["replicate", "--no-snapshot", t, &other]),
        &format!("{other}/test"),
    );
    assert!(short_snaps(&other).is_empty());

    let src = big.fs("src");
    src.write("a", 100 << 20, 9).snap("s1");
    let dst = small.ds("dst");
    let r = expect_refused(
        "not enough space",
        zrep(&["replicate", "--no-snapshot", src.name(), &dst]),
        "available but the stream is estimated at",
    );
    assert!(r.stderr.contains('M'), "{}", r.stderr);
    assert!(!cli_exists(&dst));
}

#[test]
fn dry_run_changes_nothing() {
    let p = TestPool::new();
    let pair = p.pair();
    let (src, dst) = (pair.src.name(), pair.dst.name());
    pair.src.write("a", 1 << 20, 10);
    let j = pair.replicate_json(&["--dry-run"]);
    assert_eq!(j["dry_run"], true);
    assert!(cli_snapshots(src).is_empty(), "dry run took a snapshot");
    assert!(!cli_exists(dst));
    pair.src.snap("s1");
    let r = pair.replicate(&["--dry-run", "-v", "--no-snapshot"]).ok();
    assert!(r.stderr.contains("estimated size is"), "{}", r.stderr);
    assert!(!cli_exists(dst));
    // Data written a moment ago, not yet on disk, is what a dry run says it would send.
    pair.replicate(&["--no-snapshot"]).ok();
    pair.src.write("b", 1 << 20, 11);
    let j = pair.replicate_json(&["--dry-run"]);
    assert_eq!(j["mode"], "incremental", "{j}");
    assert_eq!(cli_snapshots(src).len(), 1, "the dry run took a snapshot");
}

#[test]
fn killed_full_transfer_resumes_to_identical_data() {
    let p = TestPool::with_size(1 << 30);
    let pair = p.pair();
    let dst = pair.dst.name();
    // Larger than the dirty data that makes ZFS sync (a fifth of its maximum, a tenth
    // of the guest's memory: about 120 MB), so that a transaction group writes part of
    // the stream before its end: otherwise the first `referenced` seen can be the
    // whole stream's, its receive done, and nothing left to resume.
    pair.src.write("big", 200 << 20, 11).snap("s1");
    let mut child = pair.spawn(Way::Local, &["--no-snapshot"]);
    // The partially received dataset appears as soon as the stream starts; its token
    // shows the receive still under way as of the last transaction group.
    kill_when(&mut child, || {
        receiving(dst, 8 << 20) && resume_token(dst).is_some()
    });
    let token = resume_token(dst).expect("an interrupted receive leaves a resume token");
    assert!(!token.is_empty());
    let j = pair.replicate_json(&["--no-snapshot"]);
    assert_eq!(j["resumed"], true, "{j}");
    assert_eq!(j["mode"], "resume");
    assert!(resume_token(dst).is_none());
    pair.same_snapshot("s1");
    pair.same_data();
}

#[test]
fn killed_ssh_mid_incremental_resumes() {
    let p = TestPool::with_size(512 << 20);
    let pair = p.pair();
    let dst = pair.dst.name();
    pair.src.write("a", 1 << 20, 12).snap("s1");
    pair.replicate_via(Way::Push, &["--no-snapshot"]).ok();
    pair.src.write("big", 96 << 20, 13).snap("s2");
    let mut child = pair.spawn(Way::Push, &["--no-snapshot"]);
    let pid = child.id();
    let recv = format!("{dst}/%recv");
    wait_until(&mut child, || receiving(&recv, 8 << 20));
    // kill -9 the ssh child of zrep, not zrep itself.
    let out = Command::new("pkill")
        .args(["-9", "-P", &pid.to_string(), "ssh"])
        .status()
        .unwrap();
    assert!(out.success(), "no ssh child to kill");
    let st = child.wait().unwrap();
    assert!(!st.success(), "zrep must fail when its ssh dies");
    assert!(resume_token(dst).is_some());
    let j = pair
        .replicate_via(Way::Push, &["--json", "--no-snapshot"])
        .ok()
        .json();
    assert_eq!(j["resumed"], true, "{j}");
    pair.same_data();
}

#[test]
fn stale_resume_token_is_discarded_and_replanned() {
    let p = TestPool::with_size(512 << 20);
    let pair = p.pair();
    let (src, dst) = (pair.src.name(), pair.dst.name());
    pair.src.write("big", 96 << 20, 14).snap("s1");
    // An interrupted resumable receive, made deterministically: a cut stream.
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "zfs send {src}@s1 | head -c 16M | zfs receive -s {dst}"
        ))
        .status()
        .unwrap();
    assert!(!st.success());
    assert!(resume_token(dst).is_some());
    zfs(&["destroy", &pair.src.at("s1")]);
    pair.src.snap("s2");
    let r = pair.replicate(&["--json", "--no-snapshot"]).ok();
    assert!(
        r.stderr.contains("discarding an interrupted receive"),
        "{}",
        r.stderr
    );
    assert_eq!(r.json()["mode"], "full");
    assert_eq!(pair.dst.short_snaps(), ["s2"]);
    pair.same_data();
}

#[test]
fn pruned_common_snapshot_is_bridged_by_the_bookmark() {
    let p = TestPool::new();
    let pair = p.pair();
    let (src, s1) = (pair.src.name(), pair.src.at("s1"));
    pair.src.snap("s1");
    pair.replicate(&["--no-snapshot"]).ok();
    // zrep keeps a hold and a bookmark on the last replicated snapshot.
    let holds = zfs(&["holds", "-H", &s1]);
    let tag = holds.split('\t').nth(1).expect("a zrep hold").to_string();
    assert!(tag.starts_with("zrep-"), "{holds}");
    let bms = zfs(&["list", "-H", "-o", "name", "-t", "bookmark", src]);
    assert!(bms.contains("#zrep-"), "{bms}");
    zfs(&["release", &tag, &s1]);
    pair.src.write("x", 64 << 10, 15).snap("s2");
    zfs(&["destroy", &s1]);
    let j = pair.replicate_json(&["--no-snapshot"]);
    assert_eq!(j["mode"], "incremental");
    assert_eq!(pair.dst.short_snaps(), ["s1", "s2"]);
    pair.same_data();
}

#[test]
fn a_cursor_hold_placed_already_is_kept_and_the_old_one_released() {
    let p = TestPool::new();
    let pair = p.pair();
    let (s1, s2) = (pair.src.at("s1"), pair.src.at("s2"));
    pair.src.snap("s1");
    pair.replicate(&["--no-snapshot"]).ok();
    let holds = zfs(&["holds", "-H", &s1]);
    let tag = holds.split('\t').nth(1).expect("a zrep hold").to_string();
    // zrep places its holds all at once, and a hold that exists fails the whole call:
    // here the source's is there before the run.
    pair.src.write("x", 64 << 10, 16).snap("s2");
    zfs(&["hold", &tag, &s2]);
    let j = pair.replicate_json(&["--no-snapshot"]);
    assert_eq!(j["mode"], "incremental", "{j}");
    let d2 = format!("{}@s2", pair.dst.name());
    let d1 = format!("{}@s1", pair.dst.name());
    for (snap, held) in [(&s2, true), (&d2, true), (&s1, false), (&d1, false)] {
        let h = zfs(&["holds", "-H", snap]);
        assert_eq!(h.contains(&tag), held, "{snap}: {h}");
    }
}

/// A run with nothing new reads the cursor snapshot's hold tags from its listing:
/// where zrep's hold is there it places none (no transaction group), and where only
/// another tool's is (zrep's released by hand) it places its own again.
#[test]
fn a_lost_cursor_hold_is_placed_again_beside_another_tools() {
    let p = TestPool::new();
    let pair = p.pair();
    let s1 = pair.src.at("s1");
    let d1 = format!("{}@s1", pair.dst.name());
    pair.src.snap("s1");
    pair.replicate(&["--no-snapshot"]).ok();
    let holds = zfs(&["holds", "-H", &s1]);
    let tag = holds.split('\t').nth(1).expect("a zrep hold").to_string();
    zfs(&["release", &tag, &d1]);
    zfs(&["hold", "keep", &d1]);
    let j = pair.replicate_json(&["--no-snapshot"]);
    assert!(j["error"].is_null(), "{j}");
    for snap in [&s1, &d1] {
        let h = zfs(&["holds", "-H", snap]);
        assert!(h.contains(&tag), "{snap}: {h}");
    }
    assert!(zfs(&["holds", "-H", &d1]).contains("keep"));
    zfs(&["release", "keep", &d1]);
}

#[test]
fn recursive_continues_past_a_failing_child() {
    let p = TestPool::new();
    let pair = p.pair();
    let src = pair.src.name();
    for c in ["a", "b", "c"] {
        p.create(&format!("src/{c}"));
    }
    pair.replicate(&["-r", "--json"]).ok();
    // Make child b diverge on the target.
    p.fs_at("dst/b").snap("foreign");
    // Nothing was written: --allow-empty snapshots every dataset anyway.
    let r = pair.replicate(&["-r", "--json", "--allow-empty"]);
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
    let pair = p.pair();
    p.create("src/quiet");
    pair.replicate(&["-r"]).ok();
    pair.src.write("new", 64 << 10, 21);
    let j = pair.replicate_json(&["-r"]);
    assert_eq!(j[0]["mode"], "incremental", "{j}");
    assert_eq!(j[1]["mode"], "noop", "{j}");
    assert_eq!(pair.src.short_snaps().len(), 2);
    assert_eq!(short_snaps(&p.ds("src/quiet")).len(), 1);
    assert_eq!(short_snaps(&p.ds("dst/quiet")).len(), 1);
}

#[test]
fn encrypted_source_is_sent_raw() {
    let p = TestPool::new();
    let keyfile = test_dir().join(format!("key-{}", p.name()));
    std::fs::write(&keyfile, "correct horse battery staple").unwrap();
    let pair = p.pair_at("secret", "copy");
    let (src, dst) = (pair.src.name(), pair.dst.name());
    zfs(&[
        "create",
        "-o",
        "encryption=on",
        "-o",
        "keyformat=passphrase",
        "-o",
        &format!("keylocation=file://{}", keyfile.display()),
        src,
    ]);
    pair.src.write("a", 256 << 10, 16);
    pair.replicate(&[]).ok();
    assert_eq!(zfs_get("encryption", dst), "aes-256-gcm");
    assert_eq!(zfs_get("keystatus", dst), "unavailable");
    // Incremental raw too.
    pair.src.write("b", 256 << 10, 17);
    pair.replicate(&[]).ok();
    assert_eq!(pair.dst.short_snaps().len(), 2);
    // The copy reads back without its key (a raw read), locally and over SSH.
    for way in [Way::Local, Way::Push] {
        let [s, t] = pair.ends(way);
        let j = zrep_ssh(&["verify", "--read", "--json", &s, &t])
            .ok()
            .json();
        assert_eq!(j[0]["ok"], true, "{j}");
        assert!(j[0]["read_bytes"].as_u64().unwrap() > 512 << 10, "{j}");
    }
    assert_eq!(zfs_get("keystatus", dst), "unavailable");
}

#[test]
fn names_with_spaces_travel_safely_over_ssh() {
    let p = TestPool::new();
    let pair = Pair {
        src: p.fs("my data"),
        dst: p.fs_at("copy of: my data"),
    };
    pair.src.write("f", 64 << 10, 18);
    pair.replicate_via(Way::Push, &[]).ok();
    pair.same_data();
}

/// Refusals on one pool: each run fails, saying why, before it changes anything (it
/// takes no snapshot, and no shell ever interprets a name).
#[test]
fn refusals_say_why_and_change_nothing() {
    let p = TestPool::new();
    let fresh = p.fs("fresh");
    let other = p.fs("other");
    other.snap("unrelated");
    let src = p.fs("src");
    src.snap("s1");
    let (f, s) = (fresh.name(), src.name());
    let (inner, nope, dst) = (p.ds("fresh/inner"), p.ds("nope"), p.ds("dst"));
    for (what, args, says) in [
        ("the same dataset", [f, f], "is the source or inside it"),
        (
            "inside the source",
            [f, &inner],
            "is the source or inside it",
        ),
        ("a missing source", [&nope, &dst], "does not exist"),
        ("a missing pool", ["nosuchpool/x", &dst], "nosuchpool"),
        (
            "no common snapshot",
            [f, other.name()],
            "shares no snapshot",
        ),
        ("a missing parent", [f, &p.ds("no/parent")], "parent"),
    ] {
        expect_refused(what, zrep(&["replicate", args[0], args[1]]), says);
    }
    assert!(cli_snapshots(f).is_empty(), "a refused run left a snapshot");
    let no_parent = p.ds("no/such/parent");
    expect_refused(
        "a missing parent, --no-snapshot",
        zrep(&["replicate", "--no-snapshot", s, &no_parent]),
        "parent",
    );

    let marker = test_dir().join("pwned");
    for bad in [
        format!("{}/x$(touch {})", p.name(), marker.display()),
        format!("{}/x;touch {}", p.name(), marker.display()),
        format!("{}/x`id`", p.name()),
        format!("{}/a\nb", p.name()),
        format!("{}/'q'", p.name()),
    ] {
        let what = format!("target {bad:?}");
        expect_refused(&what, zrep(&["replicate", s, &bad]), "invalid character");
        let remote = format!("localhost:{bad}");
        let r = zrep_ssh(&["replicate", s, &remote]);
        expect_refused(&format!("{what} over SSH"), r, "invalid character");
    }
    // A hostile host name is refused before ssh runs.
    let host = format!("-oProxyCommand=touch {}:{}", marker.display(), p.ds("d"));
    let r = zrep_ssh(&["replicate", s, &host]);
    assert_ne!(r.code, 0);
    assert!(!marker.exists(), "a shell interpreted input");
}

#[test]
fn two_runs_on_one_target_do_not_collide() {
    let p = TestPool::with_size(512 << 20);
    let pair = p.pair();
    pair.src.write("big", 48 << 20, 19).snap("s1");
    let mut first = pair.spawn(Way::Local, &["--no-snapshot"]);
    std::thread::sleep(Duration::from_millis(300));
    // The second gives up quickly with a clear message, or waits and finds nothing to do.
    let second = pair.replicate(&["--no-snapshot", "--lock-wait", "0"]);
    let st = first.wait().unwrap();
    assert!(st.success());
    if second.code != 0 {
        let msg = &second.stderr;
        assert!(msg.contains("another zrep is replicating into"), "{msg}");
    }
    assert_eq!(pair.replicate_json(&["--no-snapshot"])["mode"], "noop");
    pair.same_data();
}

#[test]
fn send_and_receive_commands_pipe_like_zfs() {
    let p = TestPool::new();
    let pair = p.pair();
    let (src, dst) = (pair.src.name(), pair.dst.name());
    pair.src
        .write("a", 512 << 10, 20)
        .snaps(&["s1", "s2", "s3"]);
    let file = test_dir().join(format!("{}.stream", p.name()));
    // `zrep send ARGS > file`, then `zrep receive DST < file`.
    let pipe = |args: &[&str]| {
        let out = std::fs::File::create(&file).unwrap();
        let sent = zrep_cmd(args).stdout(out).status().unwrap();
        assert!(sent.success(), "{args:?}");
        let inp = std::fs::File::open(&file).unwrap();
        let got = zrep_cmd(&["receive", dst]).stdin(inp).status().unwrap();
        assert!(got.success(), "receive of {args:?}");
    };
    pipe(&["send", &pair.src.at("s1")]);
    // -I: every intermediate, several streams in one pipe.
    pipe(&["send", "-I", "@s1", &format!("{src}@s3")]);
    assert_eq!(pair.dst.short_snaps(), ["s1", "s2", "s3"]);
    let _ = std::fs::remove_file(&file);
    zrep_tests::cli::assert_no_zfs_spawned();
}

#[test]
fn list_shows_snapshots_locally_and_remotely() {
    let p = TestPool::new();
    let src = p.fs("src");
    src.snap("s1");
    let r = zrep(&["list", "-t", "all", src.name()]).ok();
    assert!(r.stdout.contains(&src.at("s1")), "{}", r.stdout);
    let remote = format!("localhost:{}", src.name());
    let j = zrep_ssh(&["list", "--json", "-r", &remote]).ok().json();
    assert_eq!(j[0]["snapshots"][0]["name"], "s1");
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
    let r = zrep_ssh(&["failover", "-r", "--json", &a, &format!("localhost:{b}")]).ok();
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
    let j = zrep_ssh(&["failover", "-r", "--json", &format!("localhost:{a}"), &b])
        .ok()
        .json();
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
