//! Resume tokens written as the kernel writes them, for the tests of
//! `ResumeToken::parse`: the unit tests in `src/stream.rs` and `tests/fuzz_packed.rs`
//! include this file.

use std::io::Write;

/// A token around `packed` (zlib, hex, checksum) that claims `len` bytes unpacked.
pub fn token_claiming(packed: &[u8], len: usize) -> String {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(packed).expect("compress into memory");
    let compressed = z.finish().expect("compress into memory");
    let hex: String = compressed.iter().map(|b| format!("{b:02x}")).collect();
    // The first word of fletcher-4 in host order: the sum of the 32-bit words.
    let sum = compressed
        .chunks_exact(4)
        .map(|w| u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
        .fold(0u64, u64::wrapping_add);
    format!("1-{sum:x}-{len:x}-{hex}")
}

/// A well-formed token around `packed`.
pub fn token_of(packed: &[u8]) -> String {
    token_claiming(packed, packed.len())
}
