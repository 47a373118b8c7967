//! libzfs against real pools: a signal with a handler, sent to the very thread that
//! is inside a send or receive ioctl, must not cut the stream, nor cancel a listing
//! (a channel program, which the kernel stops at any pending signal). SIGCHLD is the
//! one a process that starts children gets all the time (and valgrind handles every
//! signal); the library blocks it for the length of those ioctls. Its own binary: the
//! handler installed here would otherwise reach other tests.
use std::io::{Read, Write};
use std::os::unix::thread::JoinHandleExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use libzfs::{ReceiveOptions, SendFlags};
use zrep_tests::*;

static CAUGHT: AtomicU64 = AtomicU64::new(0);

extern "C" fn count(_: libc::c_int) {
    CAUGHT.fetch_add(1, Ordering::Relaxed);
}

/// Installs a SIGCHLD handler without SA_RESTART (as many programs do).
fn handle_sigchld() {
    // SAFETY: a zeroed sigaction is valid; the handler only touches an atomic.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = count as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGCHLD, &sa, std::ptr::null_mut()), 0);
    }
}

/// Sends SIGCHLD to `thread` every few milliseconds until it ends (more than ten
/// times), then joins it.
fn pester<T>(thread: JoinHandle<T>) -> T {
    let mut sent = 0;
    while !thread.is_finished() {
        // SAFETY: the thread is not joined yet, so its pthread_t is valid.
        if unsafe { libc::pthread_kill(thread.as_pthread_t(), libc::SIGCHLD) } == 0 {
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(3));
    }
    assert!(sent > 10, "only {sent} signals sent");
    thread.join().unwrap()
}

#[test]
fn sigchld_does_not_interrupt_send_or_receive() {
    let pool = TestPool::new();
    let zfs = lzc();
    let src = pool.fs("src");
    src.write("data", 24 << 20, 7).snap("s");
    handle_sigchld();

    // Send into a pipe read slowly, so the ioctl waits on a full pipe again and again.
    let (mut r, w) = os_pipe::pipe().unwrap();
    let sender = {
        let s = sn(&src.at("s"));
        std::thread::spawn(move || zfs.send(&s, None, w, SendFlags::default()))
    };
    let reader = std::thread::spawn(move || {
        let mut stream = Vec::new();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match r.read(&mut buf) {
                Ok(0) => return stream,
                Ok(n) => stream.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => panic!("read: {e}"),
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    pester(sender).expect("the send survives SIGCHLD");
    let stream = reader.join().unwrap();

    // Receive from a pipe written slowly, with the same signals at the receiver.
    let (r, mut w) = os_pipe::pipe().unwrap();
    let copy = pool.fs_at("copy");
    let receiver = {
        let target = copy.name().to_owned();
        std::thread::spawn(move || zfs.receive(&target, &r, &ReceiveOptions::default()))
    };
    let writer = std::thread::spawn(move || {
        for chunk in stream.chunks(64 << 10) {
            w.write_all(chunk).unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let got = pester(receiver).expect("the receive survives SIGCHLD");
    writer.join().unwrap();
    assert_eq!(got.snapshot.as_str(), copy.at("s"));
    assert_eq!(src.digest(), copy.mount().digest());
    // Each blocked signal was delivered once the stream ended.
    assert!(CAUGHT.load(Ordering::Relaxed) > 0);
}

#[test]
fn sigchld_does_not_cancel_a_listing() {
    let pool = TestPool::new();
    snapshot_grid(&lzc(), &pool, 10, 10);
    handle_sigchld();

    // The same listing, again and again, with SIGCHLD at the listing thread.
    let root = dn(pool.name());
    let lister = std::thread::spawn(move || {
        let zfs = lzc();
        (0..30)
            .map(|_| {
                let l = zfs.list(&root, true, true)?.expect("the pool exists");
                Ok(l.iter().map(|d| d.snapshots.len()).sum::<usize>())
            })
            .collect::<libzfs::Result<Vec<usize>>>()
    });
    let counts = pester(lister).expect("the listing survives SIGCHLD");
    assert!(counts.iter().all(|&n| n == 100), "{counts:?}");
}
