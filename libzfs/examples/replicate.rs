//! Replicates a snapshot in-process: one thread sends, the caller receives.
//!
//!     cargo run -p libzfs --example replicate -- pool/fs@snap pool/copy
use libzfs::{ReceiveOptions, SendFlags, SnapshotName, Zfs};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(snap), Some(target)) = (args.next(), args.next()) else {
        eprintln!("usage: replicate POOL/FS@SNAP TARGET");
        std::process::exit(2);
    };
    let zfs = Zfs::open()?;
    let snap = SnapshotName::new(snap)?;
    let estimate = zfs.send_space(&snap, None, SendFlags::default())?;
    eprintln!("full send of {snap} estimated size is {estimate} bytes");
    let (reader, writer) = os_pipe::pipe()?;
    let received = std::thread::scope(|s| {
        // The writer moves into the sender and closes when send returns.
        let sender = s.spawn(|| zfs.send(&snap, None, writer, SendFlags::default()));
        let received = zfs.receive(&target, &reader, &ReceiveOptions::default());
        drop(reader);
        sender.join().expect("send thread")?;
        received
    })?;
    println!("received {} ({} bytes)", received.snapshot, received.bytes);
    Ok(())
}
