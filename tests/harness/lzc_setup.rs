//! Setups shared by the libzfs tests (tests/lib_*.rs), made with the library: a
//! volume, and the full send stream of a snapshot.
use crate::{dn, lzc, send_bytes, Fs, TestPool};

impl TestPool {
    /// Creates the volume `pool/rel` of `size` bytes with the library and returns its
    /// name. `volmode=none`: no device node, whose setup would keep it busy a while.
    pub fn volume(&self, rel: &str, size: u64) -> String {
        let name = self.ds(rel);
        let mut props = libzfs::NvList::new();
        props.insert("volsize", &size).unwrap();
        props.insert("volmode", &3u64).unwrap();
        lzc()
            .create(&dn(&name), libzfs::DatasetType::Volume, Some(&props))
            .unwrap_or_else(|e| panic!("create volume {name}: {e}"));
        name
    }
}

impl Fs<'_> {
    /// The full send stream of `@snap` (default flags).
    pub fn full_stream(&self, snap: &str) -> Vec<u8> {
        send_bytes(&lzc(), &self.at(snap), None, libzfs::SendFlags::default())
            .unwrap_or_else(|e| panic!("send {}: {e}", self.at(snap)))
    }
}
