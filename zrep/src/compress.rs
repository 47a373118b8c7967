//! Wire compression of stream data between `zrep` and `zrep serve`.
//!
//! Negotiated in the hello: the client lists the codecs it wants, in order, and the
//! server answers the first it knows (an older server answers none, and the stream
//! travels as plain `D` frames). The sender's pump then compresses each chunk on its
//! own into a `Z` frame: `[codec: u8][length once decompressed: u32 BE][data]`; a chunk
//! that does not shrink goes as a `D` frame. Each frame stands alone, so a resumed
//! stream needs nothing from the interrupted one.
//!
//! By default (`auto`), streams whose blocks travel compressed already (`-c`, or raw
//! `-w`, whose encrypted blocks do not compress) are not compressed again: zstd saves
//! little there and costs the sender's CPU. `--compress zstd` or `lz4` compresses
//! every stream; `none` none.
//!
//! The receiver trusts nothing: the announced length is checked against the frame
//! limit before anything is allocated, the data must decompress to exactly that many
//! bytes into a buffer of that size (a bomb stops at the buffer's end), and a codec
//! that was not negotiated is refused.

use serde::{Deserialize, Serialize};

use crate::proto::{resize_for, ProtoError, MAX_CHUNK, Z_HEAD};

/// A compression codec on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// Zstandard, level 1: near lz4's speed, a much better ratio.
    Zstd,
    /// LZ4 (block format): the lightest on the CPU.
    Lz4,
}

impl Codec {
    /// The codec's name in the hello and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Zstd => "zstd",
            Codec::Lz4 => "lz4",
        }
    }

    /// The codec a name stands for (a name this build does not know: `None`).
    pub fn from_name(name: &str) -> Option<Codec> {
        match name {
            "zstd" => Some(Codec::Zstd),
            "lz4" => Some(Codec::Lz4),
            _ => None,
        }
    }

    fn id(self) -> u8 {
        match self {
            Codec::Zstd => 1,
            Codec::Lz4 => 2,
        }
    }
}

/// What the user asked for (`--compress`, job key `compress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compress {
    /// zstd for streams not compressed already (the default).
    #[default]
    Auto,
    /// This codec for every stream.
    Always(Codec),
    /// Never.
    Never,
}

impl Compress {
    /// `zstd`, `lz4`, `none` or `auto`.
    pub fn parse(s: &str) -> Result<Compress, String> {
        match s {
            "auto" => Ok(Compress::Auto),
            "none" | "off" => Ok(Compress::Never),
            other => Codec::from_name(other)
                .map(Compress::Always)
                .ok_or_else(|| {
                    format!("compress {other:?}: use zstd, lz4 or none (or auto, the default)")
                }),
        }
    }

    /// The codecs the client offers in its hello, preferred first.
    pub fn offer(self) -> Vec<String> {
        match self {
            Compress::Auto => vec![Codec::Zstd.name().into(), Codec::Lz4.name().into()],
            Compress::Always(c) => vec![c.name().into()],
            Compress::Never => Vec::new(),
        }
    }

    /// Whether streams already compressed are compressed again.
    pub fn always(self) -> bool {
        matches!(self, Compress::Always(_))
    }

    /// How the user would write it.
    pub fn describe(self) -> &'static str {
        match self {
            Compress::Auto => "auto",
            Compress::Always(c) => c.name(),
            Compress::Never => "none",
        }
    }
}

/// The server's pick from a client's offer: the first codec it knows. At most the
/// first 16 names are looked at (a hostile client's list is not walked to its end).
pub fn pick(offer: &[String]) -> Option<Codec> {
    offer.iter().take(16).find_map(|n| Codec::from_name(n))
}

/// What one session agreed: the codec (none: plain frames) and whether streams
/// already compressed are compressed too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Agreed {
    /// The codec both ends use.
    pub codec: Option<Codec>,
    /// Compress `-c` and raw streams too.
    pub always: bool,
}

impl Agreed {
    /// The codec for a stream with these flags (`compressed`: `-c`; `raw`: `-w`).
    pub fn for_stream(self, compressed: bool, raw: bool) -> Option<Codec> {
        self.codec.filter(|_| self.always || !(compressed || raw))
    }
}

/// Compresses chunks, reusing its context and output buffer.
pub struct Encoder {
    codec: Codec,
    zstd: Option<zstd::bulk::Compressor<'static>>,
    out: Vec<u8>,
}

/// zstd's level: 1, its fastest standard level (see [`zstd_level`]).
const ZSTD_LEVEL: i32 = 1;

/// zstd's level, `ZREP_ZSTD_LEVEL` for measurements. Measured on 100 MiB of the
/// host's /usr (`measure_codecs` below, 1 MiB chunks, one core, 2026-12-04): lz4
/// 2.59x at 706 MB/s; zstd -1 3.82x at 656 MB/s, 1 4.25x at 606 MB/s, 2 4.42x at 525
/// MB/s, 3 4.48x at 424 MB/s. Level 1 keeps most of the ratio at near lz4's speed;
/// the sender's CPU is also ssh's.
fn zstd_level() -> i32 {
    std::env::var("ZREP_ZSTD_LEVEL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ZSTD_LEVEL)
}

impl Encoder {
    /// A new encoder for `codec`.
    pub fn new(codec: Codec) -> std::io::Result<Encoder> {
        let zstd = match codec {
            Codec::Zstd => Some(zstd::bulk::Compressor::new(zstd_level())?),
            Codec::Lz4 => None,
        };
        Ok(Encoder {
            codec,
            zstd,
            out: Vec::new(),
        })
    }

    /// The `Z` frame payload for `chunk`, or `None` when it did not shrink (send it
    /// as `D`). `chunk` is at most [`MAX_CHUNK`] bytes.
    pub fn encode(&mut self, chunk: &[u8]) -> Option<&[u8]> {
        debug_assert!(chunk.len() <= MAX_CHUNK);
        let len = u32::try_from(chunk.len()).ok()?;
        self.out.clear();
        self.out.push(self.codec.id());
        self.out.extend_from_slice(&len.to_be_bytes());
        match (self.codec, self.zstd.as_mut()) {
            (Codec::Zstd, Some(z)) => {
                let bound = zstd::zstd_safe::compress_bound(chunk.len());
                self.out.resize(Z_HEAD + bound, 0);
                let n = z.compress_to_buffer(chunk, &mut self.out[Z_HEAD..]).ok()?;
                self.out.truncate(Z_HEAD + n);
            }
            _ => {
                let bound = lz4_flex::block::get_maximum_output_size(chunk.len());
                self.out.resize(Z_HEAD + bound, 0);
                let n = lz4_flex::block::compress_into(chunk, &mut self.out[Z_HEAD..]).ok()?;
                self.out.truncate(Z_HEAD + n);
            }
        }
        (self.out.len() < chunk.len()).then_some(&self.out[..])
    }
}

/// Decompresses `Z` frames from a peer into one reused buffer, bounded.
pub struct Decoder {
    agreed: Option<Codec>,
    zstd: Option<zstd::bulk::Decompressor<'static>>,
    out: Vec<u8>,
}

impl Decoder {
    /// A decoder that accepts `agreed` (none: every `Z` frame is refused).
    pub fn new(agreed: Option<Codec>) -> Decoder {
        Decoder {
            agreed,
            zstd: None,
            out: Vec::new(),
        }
    }

    fn bad(why: impl std::fmt::Display) -> ProtoError {
        ProtoError::Unexpected(format!("compressed stream data that {why}"))
    }

    /// The chunk a `Z` frame payload carries.
    pub fn decode(&mut self, payload: &[u8]) -> Result<&[u8], ProtoError> {
        let Some((head, data)) = payload.split_first_chunk::<Z_HEAD>() else {
            return Err(Decoder::bad(format!(
                "is {} bytes long, shorter than its header",
                payload.len()
            )));
        };
        let codec = match head[0] {
            1 => Codec::Zstd,
            2 => Codec::Lz4,
            other => return Err(Decoder::bad(format!("names an unknown codec ({other})"))),
        };
        if self.agreed != Some(codec) {
            return Err(Decoder::bad(format!(
                "uses {}, which was not agreed (agreed: {})",
                codec.name(),
                self.agreed.map_or("none", Codec::name)
            )));
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        if len > MAX_CHUNK {
            return Err(Decoder::bad(format!(
                "claims {len} bytes once decompressed, over the {MAX_CHUNK}-byte limit"
            )));
        }
        resize_for(&mut self.out, len);
        let got = match codec {
            Codec::Zstd => {
                if self.zstd.is_none() {
                    let mut d = zstd::bulk::Decompressor::new().map_err(ProtoError::Io)?;
                    // No window larger than a chunk: what fits the output needs no more.
                    d.set_parameter(zstd::zstd_safe::DParameter::WindowLogMax(23))
                        .map_err(ProtoError::Io)?;
                    self.zstd = Some(d);
                }
                let d = self.zstd.as_mut().expect("set just above");
                d.decompress_to_buffer(data, &mut self.out[..])
                    .map_err(|e| Decoder::bad(format!("does not decompress: {e}")))?
            }
            Codec::Lz4 => lz4_flex::block::decompress_into(data, &mut self.out[..])
                .map_err(|e| Decoder::bad(format!("does not decompress: {e}")))?,
        };
        if got != len {
            return Err(Decoder::bad(format!(
                "decompressed to {got} bytes, not the {len} it announced"
            )));
        }
        Ok(&self.out[..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: usize) -> Vec<u8> {
        let words = ["zfs ", "send ", "stream ", "block ", "pool ", "dataset\n"];
        let mut v = Vec::with_capacity(n);
        let mut i = 0usize;
        while v.len() < n {
            v.extend_from_slice(words[(i * 7 + i / 3) % words.len()].as_bytes());
            i += 1;
        }
        v.truncate(n);
        v
    }

    fn noise(n: usize, mut x: u64) -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn both_codecs_round_trip_and_incompressible_chunks_stay_plain() {
        for codec in [Codec::Zstd, Codec::Lz4] {
            let mut enc = Encoder::new(codec).unwrap();
            let mut dec = Decoder::new(Some(codec));
            for data in [text(1 << 20), text(100), text(MAX_CHUNK)] {
                let z = enc.encode(&data).expect("text shrinks").to_vec();
                assert!(z.len() < data.len() / 2 + 40, "{codec:?}: {}", z.len());
                assert_eq!(dec.decode(&z).unwrap(), &data[..]);
            }
            assert!(enc.encode(&noise(1 << 20, 7)).is_none(), "{codec:?}");
            assert!(enc.encode(b"").is_none());
        }
    }

    #[test]
    fn offers_and_picks() {
        assert_eq!(Compress::parse("zstd"), Ok(Compress::Always(Codec::Zstd)));
        assert_eq!(Compress::parse("none"), Ok(Compress::Never));
        assert!(Compress::parse("gzip").unwrap_err().contains("zstd, lz4"));
        assert_eq!(pick(&Compress::Auto.offer()), Some(Codec::Zstd));
        assert_eq!(pick(&["brotli".into(), "lz4".into()]), Some(Codec::Lz4));
        assert_eq!(pick(&[]), None);
        let auto = Agreed {
            codec: Some(Codec::Zstd),
            always: false,
        };
        assert_eq!(auto.for_stream(false, false), Some(Codec::Zstd));
        assert_eq!(auto.for_stream(true, false), None);
        assert_eq!(auto.for_stream(false, true), None);
        let always = Agreed {
            always: true,
            ..auto
        };
        assert_eq!(always.for_stream(true, true), Some(Codec::Zstd));
    }

    /// A frame whose data decompresses to more than it announced (a bomb: 4 MiB of
    /// zeros announced as 1 KiB), or to less, is refused, never written past.
    #[test]
    fn bombs_and_lies_are_refused() {
        for codec in [Codec::Zstd, Codec::Lz4] {
            let mut enc = Encoder::new(codec).unwrap();
            let mut z = enc.encode(&vec![0u8; MAX_CHUNK]).unwrap().to_vec();
            z[1..5].copy_from_slice(&1024u32.to_be_bytes());
            let mut dec = Decoder::new(Some(codec));
            let e = dec.decode(&z).unwrap_err().to_string();
            assert!(
                e.contains("does not decompress") || e.contains("decompressed to"),
                "{e}"
            );
            z[1..5].copy_from_slice(&(MAX_CHUNK as u32 - 1).to_be_bytes());
            assert!(dec.decode(&z).is_err());
            z[1..5].copy_from_slice(&(MAX_CHUNK as u32 + 1).to_be_bytes());
            assert!(dec.decode(&z).unwrap_err().to_string().contains("over the"));
        }
        let mut dec = Decoder::new(None);
        let z = Encoder::new(Codec::Lz4)
            .unwrap()
            .encode(&text(999))
            .unwrap()
            .to_vec();
        assert!(dec
            .decode(&z)
            .unwrap_err()
            .to_string()
            .contains("not agreed"));
        let mut dec = Decoder::new(Some(Codec::Zstd));
        assert!(dec
            .decode(&z)
            .unwrap_err()
            .to_string()
            .contains("not agreed"));
        assert!(dec
            .decode(&[1, 0])
            .unwrap_err()
            .to_string()
            .contains("header"));
        assert!(dec
            .decode(&[9, 0, 0, 0, 0])
            .unwrap_err()
            .to_string()
            .contains("unknown codec"));
    }

    /// Speed and ratio of each codec on a sample file (`ZREP_SAMPLE`), chunk by chunk
    /// as the pump does: `ZREP_SAMPLE=FILE cargo test -p zrep --release --lib
    /// measure_codecs -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn measure_codecs() {
        let data = std::fs::read(std::env::var("ZREP_SAMPLE").expect("ZREP_SAMPLE")).unwrap();
        for (name, codec, level) in [
            ("lz4", Codec::Lz4, 0),
            ("zstd -1", Codec::Zstd, -1),
            ("zstd 1", Codec::Zstd, 1),
            ("zstd 2", Codec::Zstd, 2),
            ("zstd 3", Codec::Zstd, 3),
        ] {
            std::env::set_var("ZREP_ZSTD_LEVEL", level.to_string());
            let mut enc = Encoder::new(codec).unwrap();
            let t0 = std::time::Instant::now();
            let out: usize = data
                .chunks(1 << 20)
                .map(|c| enc.encode(c).map_or(c.len(), <[u8]>::len))
                .sum();
            let secs = t0.elapsed().as_secs_f64();
            println!(
                "{name}: {:.2}x, {:.0} MB/s",
                data.len() as f64 / out as f64,
                data.len() as f64 / secs / 1e6
            );
        }
    }

    /// Garbage, truncations and bit flips of real frames: an error or the announced
    /// length, never a panic, a hang, or a buffer over the limit.
    #[test]
    fn garbage_never_panics() {
        let secs: u64 = std::env::var("ZREP_FUZZ_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut inputs = 0u64;
        for codec in [Codec::Zstd, Codec::Lz4] {
            let real = Encoder::new(codec)
                .unwrap()
                .encode(&text(64 << 10))
                .unwrap()
                .to_vec();
            let mut dec = Decoder::new(Some(codec));
            let until = std::time::Instant::now() + std::time::Duration::from_millis(secs * 500);
            while std::time::Instant::now() < until {
                let mut buf = real.clone();
                match rnd() % 4 {
                    0 => buf.truncate((rnd() as usize) % buf.len()),
                    1 => {
                        for _ in 0..1 + rnd() % 8 {
                            let i = (rnd() as usize) % buf.len();
                            buf[i] ^= 1 << (rnd() % 8);
                        }
                    }
                    2 => {
                        let n = (rnd() % 4096) as usize;
                        buf = (0..n).map(|_| rnd() as u8).collect();
                        if buf.len() >= Z_HEAD {
                            buf[0] = codec.id();
                        }
                    }
                    _ => {
                        let i = Z_HEAD + (rnd() as usize) % (buf.len() - Z_HEAD);
                        buf[i..].iter_mut().for_each(|b| *b = rnd() as u8);
                    }
                }
                if let Ok(out) = dec.decode(&buf) {
                    assert!(out.len() <= MAX_CHUNK);
                }
                assert!(dec.out.capacity() <= MAX_CHUNK);
                inputs += 1;
            }
        }
        assert!(inputs > 100, "{inputs}");
    }
}
