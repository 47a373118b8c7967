//! A check, in pure Rust, of a packed nvlist before libnvpair decodes it.
//!
//! `nvlist_unpack` trusts parts of its input. In every release we support (OpenZFS 2.1
//! to 2.3) it measures string values and the strings of a string array with `strlen`
//! before it checks that they end inside their pair, so a packed list with an
//! unterminated string makes it read past its buffer. Packed lists reach us from the
//! other side of a replication (inside resume tokens), so
//! [`NvList::unpack`](crate::NvList::unpack) runs [`validate`] first, and hands
//! libnvpair only lists that pass.
//!
//! What is checked, for both encodings:
//!
//! - the 4-byte header: a known encoding and, for the native one, the host's byte
//!   order (libnvpair refuses the other);
//! - each list's version (0) and flags (only the unique-name bits);
//! - every pair's declared size within what is left of the buffer; its name
//!   NUL-terminated inside its declared size, with no other NUL; a known data type
//!   with a valid element count; a value that fills the pair exactly as libnvpair's
//!   own rule (`i_validate_nvpair`) wants;
//! - string values, and each string of a string array, NUL-terminated inside the
//!   pair; boolean values 0 or 1;
//! - nested lists and list arrays, recursively, at most [`MAX_DEPTH`] deep, each
//!   ending with its terminator;
//! - nothing after the top list's terminator but, in XDR, zero bytes (libnvpair
//!   counts 4 bytes too many for each empty array it packs in XDR).
//!
//! The layouts, as OpenZFS's `module/nvpair/nvpair.c` writes them (`nvs_native_*`,
//! `nvs_xdr_*`, `i_get_value_size`):
//!
//! - native, in the packer's byte order: version, flags; then each pair as it sits in
//!   memory (`nvp_size`, name size, reserved, element count, type: 16 bytes; the name;
//!   zero padding to 8 bytes; the value, padded to 8 bytes), a nested list's own pairs
//!   right after its pair; a 4-byte zero ends every list;
//! - XDR, big-endian 4-byte words: version, flags; then each pair as its encoded size,
//!   its decoded (native) size, the name (length word, bytes padded to 4), type,
//!   element count and value; two zero words end every list, and a nested list
//!   repeats the version and flags.
//!
//! Where libnvpair is lenient in a way no packer needs (an XDR array whose own count
//! differs from the pair's, an XDR string holding a NUL), the check refuses.

use nvpair_sys::data_type_t::{self, *};
use nvpair_sys::{NV_ENCODE_NATIVE, NV_ENCODE_XDR, NV_UNIQUE_NAME, NV_UNIQUE_NAME_TYPE};

/// How a list is packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Encoding {
    /// The host's native encoding (`NV_ENCODE_NATIVE`), what the ZFS ioctls use.
    #[default]
    Native,
    /// Portable XDR encoding (`NV_ENCODE_XDR`), used on disk and between hosts.
    Xdr,
}

/// Why a buffer is not a packed nvlist: where, and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("packed nvlist is malformed at byte {offset}: {reason}")]
pub struct Malformed {
    /// Where in the buffer the fault was found.
    pub offset: usize,
    /// What is wrong there.
    pub reason: String,
}

/// How deep lists may nest inside the top list: the kernel's `nvpair_max_recursion`,
/// so every list the kernel can pack passes.
pub const MAX_DEPTH: usize = 20;

/// `sizeof (nvpair_t)`: size, name size, reserved, element count, type.
const PAIR_HEADER: usize = 16;
/// `sizeof (nvlist_t)`: a nested list's value in the native encoding.
const LIST_STRUCT: usize = 24;
/// The smallest pair, a header and a one-byte name (`NVP_SIZE_CALC(1, 0)`).
const MIN_PAIR: usize = 24;
/// The list flags libnvpair knows.
const KNOWN_FLAGS: u32 = NV_UNIQUE_NAME | NV_UNIQUE_NAME_TYPE;
/// `nvh_endian` of a list packed on this host.
const HOST_ENDIAN: u8 = cfg!(target_endian = "little") as u8;

/// Checks that `buf` is a well-formed packed nvlist (see the [module](self) for the
/// rules) and returns its encoding. Every failure is
/// [`Malformed`], naming the byte offset and the reason.
pub fn validate(buf: &[u8]) -> Result<Encoding, Malformed> {
    let Some(&[encoding, endian, _, _]) = buf.get(..4) else {
        return Err(malformed(0, "shorter than the 4-byte header"));
    };
    match i32::from(encoding) {
        NV_ENCODE_NATIVE if endian != HOST_ENDIAN => Err(malformed(
            1,
            "native encoding of the other byte order (libnvpair refuses it)",
        )),
        NV_ENCODE_NATIVE => {
            let mut r = Reader::new(buf, 4, Order::Host);
            list_header(&mut r)?;
            native_pairs(&mut r, 0)?;
            match r.left() {
                0 => Ok(Encoding::Native),
                n => Err(r.error(format!("{n} bytes follow the end of the list"))),
            }
        }
        NV_ENCODE_XDR => {
            let mut r = Reader::new(buf, 4, Order::Big);
            xdr_list(&mut r, 0)?;
            match buf[r.pos..].iter().position(|&b| b != 0) {
                None => Ok(Encoding::Xdr),
                Some(i) => Err(malformed(r.pos + i, "data after the end of the list")),
            }
        }
        other => Err(malformed(0, format!("unknown encoding {other}"))),
    }
}

fn malformed(offset: usize, reason: impl Into<String>) -> Malformed {
    Malformed {
        offset,
        reason: reason.into(),
    }
}

const fn align8(n: usize) -> usize {
    n.next_multiple_of(8)
}

const fn align4(n: usize) -> usize {
    n.next_multiple_of(4)
}

#[derive(Clone, Copy)]
enum Order {
    Host,
    Big,
}

/// A cursor over the buffer; every read is bounds-checked and errors name the offset.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    order: Order,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], pos: usize, order: Order) -> Self {
        Reader { buf, pos, order }
    }

    fn left(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn error(&self, reason: impl Into<String>) -> Malformed {
        malformed(self.pos, reason)
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], Malformed> {
        if n > self.left() {
            return Err(self.error(format!("{what} needs {n} bytes, {} are left", self.left())));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u32(&mut self, what: &str) -> Result<u32, Malformed> {
        let b: [u8; 4] = self.take(4, what)?.try_into().unwrap_or_default();
        Ok(match self.order {
            Order::Host => u32::from_ne_bytes(b),
            Order::Big => u32::from_be_bytes(b),
        })
    }

    fn i32(&mut self, what: &str) -> Result<i32, Malformed> {
        self.u32(what).map(|v| v as i32)
    }

    /// A native `int16_t`.
    fn i16(&mut self, what: &str) -> Result<i16, Malformed> {
        let b: [u8; 2] = self.take(2, what)?.try_into().unwrap_or_default();
        Ok(i16::from_ne_bytes(b))
    }

    /// An XDR string of at most `max` bytes: a length word, the bytes, padding to 4.
    fn xdr_string(&mut self, max: usize, what: &str) -> Result<&'a [u8], Malformed> {
        let at = self.pos;
        let len = self.u32(what)? as usize;
        if len > max {
            return Err(malformed(
                at,
                format!("{what} of {len} bytes does not fit in its pair ({max} at most)"),
            ));
        }
        let s = &self.take(align4(len), what)?[..len];
        if s.contains(&0) {
            return Err(malformed(at, format!("{what} contains a NUL byte")));
        }
        Ok(s)
    }
}

/// Version 0 and known flags: the start of a packed list (and of each nested list
/// in XDR).
fn list_header(r: &mut Reader) -> Result<(), Malformed> {
    let at = r.pos;
    let version = r.i32("list version")?;
    if version != nvpair_sys::NV_VERSION {
        return Err(malformed(at, format!("unknown list version {version}")));
    }
    let flags = r.u32("list flags")?;
    if flags & !KNOWN_FLAGS != 0 {
        return Err(malformed(at + 4, format!("unknown list flags {flags:#x}")));
    }
    Ok(())
}

/// What the value of a data type is made of.
#[derive(Clone, Copy)]
enum Shape {
    /// `boolean`: a flag without value.
    Flag,
    /// One number of this many bytes (natively).
    Number(usize),
    /// An array of numbers of this many bytes each; `byte_array` is `Bytes`.
    Numbers(usize),
    /// `byte_array`: an XDR opaque.
    Bytes,
    /// A NUL-terminated string.
    Str,
    /// An array of strings, after a table of 8-byte pointers.
    Strs,
    /// A nested list.
    List,
    /// An array of nested lists.
    Lists,
}

impl Shape {
    fn of(ty: data_type_t::Type) -> Option<Shape> {
        use Shape::*;
        Some(match ty {
            DATA_TYPE_BOOLEAN => Flag,
            DATA_TYPE_BYTE | DATA_TYPE_INT8 | DATA_TYPE_UINT8 => Number(1),
            DATA_TYPE_INT16 | DATA_TYPE_UINT16 => Number(2),
            DATA_TYPE_INT32 | DATA_TYPE_UINT32 | DATA_TYPE_BOOLEAN_VALUE => Number(4),
            DATA_TYPE_INT64 | DATA_TYPE_UINT64 | DATA_TYPE_HRTIME | DATA_TYPE_DOUBLE => Number(8),
            DATA_TYPE_BYTE_ARRAY => Bytes,
            DATA_TYPE_INT8_ARRAY | DATA_TYPE_UINT8_ARRAY => Numbers(1),
            DATA_TYPE_INT16_ARRAY | DATA_TYPE_UINT16_ARRAY => Numbers(2),
            DATA_TYPE_INT32_ARRAY | DATA_TYPE_UINT32_ARRAY | DATA_TYPE_BOOLEAN_ARRAY => Numbers(4),
            DATA_TYPE_INT64_ARRAY | DATA_TYPE_UINT64_ARRAY => Numbers(8),
            DATA_TYPE_STRING => Str,
            DATA_TYPE_STRING_ARRAY => Strs,
            DATA_TYPE_NVLIST => List,
            DATA_TYPE_NVLIST_ARRAY => Lists,
            _ => return None,
        })
    }

    /// Whether `nelem` suits the type (`i_validate_type_nelem`).
    fn count_ok(self, nelem: u32) -> bool {
        match self {
            Shape::Flag => nelem == 0,
            Shape::Number(_) | Shape::Str | Shape::List => nelem == 1,
            _ => true,
        }
    }

    /// The native value size without the strings (`i_get_value_size` with no data).
    fn fixed_size(self, nelem: u32) -> u64 {
        let n = u64::from(nelem);
        match self {
            Shape::Flag | Shape::Str => 0,
            Shape::Number(size) => size as u64,
            Shape::Numbers(size) => n * size as u64,
            Shape::Bytes => n,
            Shape::Strs => 8 * n,
            Shape::List => LIST_STRUCT as u64,
            Shape::Lists => n * (8 + LIST_STRUCT as u64),
        }
    }
}

/// The fields of a pair that follow its name.
struct PairHead {
    ty: data_type_t::Type,
    shape: Shape,
    nelem: u32,
    boolean: bool,
}

impl PairHead {
    fn new(r: &Reader, at: usize, ty: i32, nelem: u32) -> Result<PairHead, Malformed> {
        let shape = Shape::of(ty).ok_or_else(|| r.error(format!("unknown data type {ty}")))?;
        if !shape.count_ok(nelem) {
            return Err(malformed(
                at,
                format!("data type {ty} cannot have {nelem} elements"),
            ));
        }
        Ok(PairHead {
            ty,
            shape,
            nelem,
            boolean: matches!(ty, DATA_TYPE_BOOLEAN_VALUE | DATA_TYPE_BOOLEAN_ARRAY),
        })
    }
}

/// A pair's name, for messages.
fn shown(name: &[u8]) -> String {
    let s = String::from_utf8_lossy(name);
    match s.char_indices().nth(64) {
        Some((cut, _)) => format!("{:?}...", &s[..cut]),
        None => format!("{s:?}"),
    }
}

/// Checks that a boolean (a `boolean_t`, 4 bytes) at `at` is 0 or 1.
fn boolean_ok(at: usize, value: u32) -> Result<(), Malformed> {
    if value > 1 {
        return Err(malformed(
            at,
            format!("boolean value {value} is neither 0 nor 1"),
        ));
    }
    Ok(())
}

/// The pairs of one native list, through its terminator; nested lists follow their
/// pair, at `depth + 1`.
fn native_pairs(r: &mut Reader, depth: usize) -> Result<(), Malformed> {
    loop {
        let at = r.pos;
        let size = r.i32("pair size")?;
        if size == 0 {
            return Ok(());
        }
        let size = usize::try_from(size)
            .ok()
            .filter(|&s| s >= MIN_PAIR)
            .ok_or_else(|| malformed(at, format!("pair size {size} is below {MIN_PAIR}")))?;
        if size > r.buf.len() - at {
            return Err(malformed(
                at,
                format!("pair of {size} bytes, {} are left", r.buf.len() - at),
            ));
        }
        let nested = native_pair(&mut Reader::new(&r.buf[..at + size], at + 4, Order::Host))?;
        r.pos = at + size;
        for _ in 0..nested {
            if depth == MAX_DEPTH {
                return Err(r.error(format!("lists nest deeper than {MAX_DEPTH}")));
            }
            native_pairs(r, depth + 1)?;
        }
    }
}

/// One native pair: `r` covers exactly the pair, past its size word. Returns how many
/// nested lists follow it.
fn native_pair(r: &mut Reader) -> Result<u32, Malformed> {
    let start = r.pos - 4;
    let name_sz = r.i16("name size")?;
    r.take(2, "reserved field")?;
    let nelem = r.u32("element count")?;
    let ty = r.i32("data type")?;
    let name_len = usize::try_from(name_sz)
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| malformed(start + 4, format!("name size {name_sz} is below 1")))?;
    let name = match r.take(name_len, "the name")? {
        [name @ .., 0] if !name.contains(&0) => name,
        _ => {
            return Err(malformed(
                start + PAIR_HEADER,
                "name is not NUL-terminated at its declared size",
            ))
        }
    };
    let why = |Malformed { offset, reason }: Malformed| {
        malformed(offset, format!("pair {}: {reason}", shown(name)))
    };
    let head = PairHead::new(r, start + 8, ty, nelem).map_err(why)?;
    r.pos = start + align8(PAIR_HEADER + name_len);
    if r.pos > r.buf.len() {
        return Err(why(malformed(start, "the name overruns the pair")));
    }
    native_value(r, &head).map_err(why)
}

/// The value of a native pair: all of what `r` has left.
fn native_value(r: &mut Reader, head: &PairHead) -> Result<u32, Malformed> {
    let room = r.left();
    let fixed = head.shape.fixed_size(head.nelem);
    if fixed > room as u64 {
        return Err(r.error(format!(
            "a value of type {} needs {fixed} bytes, the pair has {room}",
            head.ty
        )));
    }
    let at = r.pos;
    let value = r.take(room, "value")?;
    let mut used = fixed as usize;
    let mut nested = 0;
    match head.shape {
        Shape::Number(_) | Shape::Numbers(_) if head.boolean => {
            for (i, word) in value[..used].chunks_exact(4).enumerate() {
                let v = u32::from_ne_bytes(word.try_into().unwrap_or_default());
                boolean_ok(at + 4 * i, v)?;
            }
        }
        Shape::Str => used = c_len(r, value, "string value")? + 1,
        Shape::Strs => {
            for _ in 0..head.nelem {
                used += c_len(r, &value[used..], "a string of the array")? + 1;
            }
        }
        Shape::List | Shape::Lists => {
            nested = if let Shape::List = head.shape {
                1
            } else {
                head.nelem
            };
            let structs = used - LIST_STRUCT * nested as usize;
            for s in value[structs..used].chunks_exact(LIST_STRUCT) {
                let version = i32::from_ne_bytes(s[..4].try_into().unwrap_or_default());
                if version != nvpair_sys::NV_VERSION {
                    return Err(r.error(format!("nested list of version {version}")));
                }
            }
        }
        _ => {}
    }
    if room != align8(used) {
        return Err(r.error(format!(
            "the value takes {room} bytes; its content needs {}",
            align8(used)
        )));
    }
    Ok(nested)
}

/// The length of the NUL-terminated string at the start of `bytes`.
fn c_len(r: &Reader, bytes: &[u8], what: &str) -> Result<usize, Malformed> {
    bytes
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| r.error(format!("{what} is not NUL-terminated inside the pair")))
}

/// The most a decoded pair may claim from `avail` bytes of XDR
/// (`NVS_XDR_MAX_LEN` in nvpair.c): libnvpair refuses more.
fn xdr_max_len(avail: usize) -> usize {
    let data = avail.saturating_sub(20);
    MIN_PAIR + 2 * data + align4(data / 4)
}

/// One XDR list: its header, its pairs, its two-word terminator.
fn xdr_list(r: &mut Reader, depth: usize) -> Result<(), Malformed> {
    if depth > MAX_DEPTH {
        return Err(r.error(format!("lists nest deeper than {MAX_DEPTH}")));
    }
    list_header(r)?;
    while xdr_pair(r, depth)? {}
    Ok(())
}

/// One XDR pair; false at the list's terminator.
fn xdr_pair(r: &mut Reader, depth: usize) -> Result<bool, Malformed> {
    let start = r.pos;
    r.u32("encoded size")?; // libnvpair does not use it either
    let decoded = r.i32("decoded size")?;
    if decoded == 0 {
        return Ok(false);
    }
    let limit = xdr_max_len(r.left());
    let size = usize::try_from(decoded)
        .ok()
        .filter(|s| (MIN_PAIR..=limit).contains(s))
        .ok_or_else(|| {
            malformed(
                start + 4,
                format!("decoded pair size {decoded} is outside {MIN_PAIR}..={limit}"),
            )
        })?;
    let name = r.xdr_string(size - PAIR_HEADER - 1, "the name")?;
    let why = |Malformed { offset, reason }: Malformed| {
        malformed(offset, format!("pair {}: {reason}", shown(name)))
    };
    let at = r.pos;
    let ty = r.i32("data type").map_err(why)?;
    let nelem = r.u32("element count").map_err(why)?;
    let head = PairHead::new(r, at, ty, nelem).map_err(why)?;
    let value_at = align8(PAIR_HEADER + name.len() + 1);
    let used = if nelem == 0 {
        0
    } else if value_at >= size {
        return Err(why(malformed(at, "no room for the value")));
    } else {
        xdr_value(r, &head, size - value_at, depth).map_err(why)?
    };
    if size != value_at + align8(used) {
        return Err(why(malformed(
            start + 4,
            format!(
                "decoded size {size} does not match its content ({})",
                value_at + align8(used)
            ),
        )));
    }
    Ok(true)
}

/// The value of an XDR pair with `room` bytes for its native form; returns the
/// native size of its content.
fn xdr_value(
    r: &mut Reader,
    head: &PairHead,
    room: usize,
    depth: usize,
) -> Result<usize, Malformed> {
    let fixed = head.shape.fixed_size(head.nelem);
    if fixed > room as u64 {
        return Err(r.error(format!(
            "a value of type {} needs {fixed} bytes, the pair has {room}",
            head.ty
        )));
    }
    let mut used = fixed as usize;
    match head.shape {
        Shape::Flag => {}
        Shape::Number(size) => xdr_numbers(r, 1, size, head.boolean)?,
        Shape::Numbers(size) => {
            let at = r.pos;
            let count = r.u32("array count")?;
            if count != head.nelem {
                return Err(malformed(
                    at,
                    format!("array of {count} elements in a pair of {}", head.nelem),
                ));
            }
            xdr_numbers(r, count, size, head.boolean)?;
        }
        Shape::Bytes => {
            r.take(align4(head.nelem as usize), "byte array")?;
        }
        Shape::Str => used = r.xdr_string(room - 1, "string value")?.len() + 1,
        Shape::Strs => {
            for _ in 0..head.nelem {
                let max = room
                    .checked_sub(used + 1)
                    .ok_or_else(|| r.error("the strings of the array do not fit in their pair"))?;
                used += r.xdr_string(max, "a string of the array")?.len() + 1;
            }
        }
        Shape::List => xdr_list(r, depth + 1)?,
        Shape::Lists => {
            for _ in 0..head.nelem {
                xdr_list(r, depth + 1)?;
            }
        }
    }
    Ok(used)
}

/// `count` XDR numbers of `size` native bytes: 4-byte words, 64-bit ones in two.
fn xdr_numbers(r: &mut Reader, count: u32, size: usize, boolean: bool) -> Result<(), Malformed> {
    for _ in 0..count {
        let at = r.pos;
        let v = r.take(if size == 8 { 8 } else { 4 }, "a number")?;
        if boolean {
            boolean_ok(at, u32::from_be_bytes(v.try_into().unwrap_or_default()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nvlist::tests::every_type;
    use crate::{NvList, NvListError};

    fn reason(buf: &[u8]) -> String {
        match validate(buf) {
            Err(Malformed { reason, .. }) => reason,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn what_libnvpair_packs_passes() {
        let n = every_type();
        let native = n.pack_with(Encoding::Native).unwrap();
        assert_eq!(validate(&native), Ok(Encoding::Native));
        let xdr = n.pack_with(Encoding::Xdr).unwrap();
        assert_eq!(validate(&xdr), Ok(Encoding::Xdr));
        let empty = NvList::new();
        assert_eq!(validate(&empty.pack().unwrap()), Ok(Encoding::Native));
        assert_eq!(
            validate(&empty.pack_with(Encoding::Xdr).unwrap()),
            Ok(Encoding::Xdr)
        );
    }

    #[test]
    fn every_truncation_is_refused() {
        for enc in [Encoding::Native, Encoding::Xdr] {
            let buf = every_type().pack_with(enc).unwrap();
            for len in 0..buf.len() - 8 {
                assert!(validate(&buf[..len]).is_err(), "{enc:?}, {len} bytes");
            }
        }
    }

    /// The native bytes of a list holding one string pair, and the offset of the
    /// string's value.
    fn one_string(name: &str, value: &str) -> (Vec<u8>, usize) {
        let mut n = NvList::new();
        n.insert(name, value).unwrap();
        let buf = n.pack().unwrap();
        let at = 12 + align8(PAIR_HEADER + name.len() + 1);
        assert_eq!(&buf[at..at + value.len()], value.as_bytes());
        (buf, at)
    }

    #[test]
    fn an_unterminated_string_is_refused() {
        // The list valgrind showed libnvpair reading past: the value's NUL and its
        // padding overwritten.
        let (mut buf, at) = one_string("toname", "p/fs@s");
        buf[at..at + 8].fill(b'x');
        let r = reason(&buf);
        assert!(
            r.contains("\"toname\"") && r.contains("not NUL-terminated"),
            "{r}"
        );
        let e = NvList::unpack(&buf).unwrap_err();
        assert!(matches!(e, NvListError::Malformed { .. }), "{e:?}");
    }

    #[test]
    fn an_unterminated_string_array_is_refused() {
        let mut n = NvList::new();
        n.insert("strs", &["ab", "cd"]).unwrap();
        let mut buf = n.pack().unwrap();
        let at = 12 + align8(PAIR_HEADER + 5) + 16;
        assert_eq!(&buf[at..at + 6], b"ab\0cd\0");
        buf[at + 5] = b'x';
        buf[at + 6] = b'x';
        buf[at + 7] = b'x';
        assert!(reason(&buf).contains("not NUL-terminated"));
    }

    #[test]
    fn bad_names_are_refused() {
        let (buf, _) = one_string("name", "v");
        let mut unterminated = buf.clone();
        unterminated[12 + PAIR_HEADER + 4] = b'x';
        assert!(reason(&unterminated).contains("name is not NUL-terminated"));
        let mut inner_nul = buf.clone();
        inner_nul[12 + PAIR_HEADER + 1] = 0;
        assert!(reason(&inner_nul).contains("name is not NUL-terminated"));
        let mut huge = buf.clone();
        huge[12 + 4..12 + 6].copy_from_slice(&200i16.to_ne_bytes());
        assert!(reason(&huge).contains("needs 200 bytes"));
        let mut zero = buf;
        zero[12 + 4..12 + 6].copy_from_slice(&0i16.to_ne_bytes());
        assert!(reason(&zero).contains("name size 0"));
    }

    #[test]
    fn bad_sizes_types_and_counts_are_refused() {
        let (buf, _) = one_string("name", "v");
        let set = |off: usize, v: i32| {
            let mut b = buf.clone();
            b[off..off + 4].copy_from_slice(&v.to_ne_bytes());
            b
        };
        assert!(reason(&set(12, 8)).contains("pair size 8"));
        assert!(reason(&set(12, -1)).contains("pair size -1"));
        assert!(reason(&set(12, 4096)).contains("4096 bytes, 36 are left"));
        assert!(reason(&set(12 + 12, 99)).contains("unknown data type 99"));
        assert!(reason(&set(12 + 8, 2)).contains("cannot have 2 elements"));
        assert!(reason(&set(12 + 12, DATA_TYPE_NVLIST)).contains("needs 24 bytes, the pair has 8"));
        let (mut short, at) = one_string("name", "abcdefghij");
        short[at + 2] = 0;
        assert!(reason(&short).contains("takes 16 bytes; its content needs 8"));
        assert!(reason(&set(4, 1)).contains("version 1"));
        assert!(reason(&set(8, 4)).contains("flags 0x4"));
        let mut n = NvList::new();
        n.insert("b", &true).unwrap();
        let mut b = n.pack().unwrap();
        let at = 12 + 24;
        b[at..at + 4].copy_from_slice(&2u32.to_ne_bytes());
        assert!(reason(&b).contains("boolean value 2"));
    }

    #[test]
    fn headers_and_trailers() {
        assert!(reason(b"").contains("4-byte header"));
        assert!(reason(&[9, 1, 0, 0]).contains("unknown encoding 9"));
        let mut other_order = NvList::new().pack().unwrap();
        other_order[1] ^= 1;
        assert!(reason(&other_order).contains("other byte order"));
        let mut trailing = NvList::new().pack().unwrap();
        trailing.push(0);
        assert!(reason(&trailing).contains("1 bytes follow"));
        let mut xdr = NvList::new().pack_with(Encoding::Xdr).unwrap();
        xdr.extend_from_slice(&[0; 8]);
        assert_eq!(validate(&xdr), Ok(Encoding::Xdr));
        xdr.push(1);
        assert!(reason(&xdr).contains("after the end"));
    }

    fn nested(depth: usize) -> NvList {
        let mut n = NvList::new();
        n.insert("x", &1u64).unwrap();
        for _ in 0..depth {
            let mut outer = NvList::new();
            outer.insert("n", &n).unwrap();
            n = outer;
        }
        n
    }

    #[test]
    fn nesting_is_bounded() {
        for enc in [Encoding::Native, Encoding::Xdr] {
            let ok = nested(MAX_DEPTH).pack_with(enc).unwrap();
            assert_eq!(validate(&ok), Ok(enc));
            let deep = nested(MAX_DEPTH + 1).pack_with(enc).unwrap();
            assert!(reason(&deep).contains("nest deeper"), "{enc:?}");
        }
    }

    #[test]
    fn xdr_mismatches_are_refused() {
        let mut n = NvList::new();
        n.insert("a", &[1u32, 2]).unwrap();
        let buf = n.pack_with(Encoding::Xdr).unwrap();
        // header, version, flags, sizes, name (4 + 4), type, nelem: the array count.
        let at = 4 + 8 + 8 + 8 + 8;
        assert_eq!(&buf[at..at + 4], &2u32.to_be_bytes());
        let mut count = buf.clone();
        count[at..at + 4].copy_from_slice(&1u32.to_be_bytes());
        assert!(reason(&count).contains("array of 1 elements"));
        let mut decoded = buf.clone();
        decoded[4 + 8 + 4..4 + 8 + 8].copy_from_slice(&40u32.to_be_bytes());
        assert!(reason(&decoded).contains("does not match its content"));
        let mut name = buf;
        name[4 + 8 + 8 + 4] = 0;
        assert!(reason(&name).contains("contains a NUL"));
    }
}
