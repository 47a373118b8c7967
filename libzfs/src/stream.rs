//! Send and receive: streams on file descriptors, size estimates, resume tokens.

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};
use std::ptr;

use libzfs_sys as sys;

use crate::error::{check, zfs_error, Error, Op, Result};
use crate::name::{DatasetName, SendSource, SnapshotName};
use crate::nvlist::{NvList, NvListRef};
use crate::quiet::QuietChildren;
use crate::zfs::{cbool, take_list, Zfs};

/// Flags of a send stream (`zfs send -L -e -c -w`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendFlags {
    /// `-L`: blocks larger than 128 KiB stay large.
    pub large_blocks: bool,
    /// `-e`: embedded-data blocks stay embedded.
    pub embedded: bool,
    /// `-c`: blocks stay compressed as on disk.
    pub compressed: bool,
    /// `-w`: raw: encrypted data is sent as is (no key needed).
    pub raw: bool,
    /// `-S`: send the saved partial state of an interrupted receive (2.0+).
    pub saved: bool,
}

impl SendFlags {
    /// The `lzc_send_flags` bits.
    pub fn bits(self) -> sys::lzc_send_flags {
        let mut b = 0;
        if self.large_blocks {
            b |= sys::LZC_SEND_FLAG_LARGE_BLOCK;
        }
        if self.embedded {
            b |= sys::LZC_SEND_FLAG_EMBED_DATA;
        }
        if self.compressed {
            b |= sys::LZC_SEND_FLAG_COMPRESS;
        }
        if self.raw {
            b |= sys::LZC_SEND_FLAG_RAW;
        }
        if self.saved {
            b |= sys::LZC_SEND_FLAG_SAVED;
        }
        b
    }
}

fn from_cstring(from: Option<&SendSource>) -> Option<CString> {
    from.map(|f| CString::new(f.as_str()).expect("names have no NUL"))
}

impl Zfs {
    /// Writes the send stream of `snap` to `out`: full, or incremental from `from`
    /// (a snapshot or bookmark of the same dataset's history).
    ///
    /// `out` must be open for writing (a pipe is fastest; other descriptors go through
    /// an internal pipe since OpenZFS 2.2). A reader that goes away gives an
    /// [`ErrorKind::Io`](crate::ErrorKind::Io) error (EPIPE).
    #[doc(alias = "lzc_send")]
    pub fn send(
        &self,
        snap: &SnapshotName,
        from: Option<&SendSource>,
        out: impl AsFd,
        flags: SendFlags,
    ) -> Result<()> {
        self.send_at(snap, from, out.as_fd(), flags, (0, 0), Op::Send)
    }

    /// Resumes a send at (`object`, `offset`), as recorded in a resume token.
    #[doc(alias = "lzc_send_resume")]
    pub fn send_resume(
        &self,
        snap: &SnapshotName,
        from: Option<&SendSource>,
        out: impl AsFd,
        flags: SendFlags,
        object: u64,
        offset: u64,
    ) -> Result<()> {
        self.send_at(
            snap,
            from,
            out.as_fd(),
            flags,
            (object, offset),
            Op::SendResume,
        )
    }

    /// `lzc_send_resume` (which `lzc_send` is, at (0, 0)), its errors labelled `op`.
    fn send_at(
        &self,
        snap: &SnapshotName,
        from: Option<&SendSource>,
        out: BorrowedFd<'_>,
        flags: SendFlags,
        (object, offset): (u64, u64),
        op: Op,
    ) -> Result<()> {
        let s = snap.to_cstring();
        let f = from_cstring(from);
        let fd = Zfs::raw_fd(&out);
        let _quiet = QuietChildren::new();
        // SAFETY: valid C strings (from may be NULL); fd is borrowed for the call.
        let rc = unsafe {
            sys::lzc_send_resume(
                s.as_ptr(),
                f.as_ref().map_or(ptr::null(), |c| c.as_ptr()),
                fd,
                flags.bits(),
                object,
                offset,
            )
        };
        check(rc, op, snap.as_str())
    }

    /// Sends what is left of an interrupted stream, described by the target's
    /// `receive_resume_token`. The token's own flags are used.
    ///
    /// Tokens name the incremental source only by GUID; it is looked up among the
    /// dataset's snapshots and bookmarks, as `zfs send -t` does.
    pub fn send_from_token(&self, token: &ResumeToken, out: impl AsFd) -> Result<()> {
        let found = self.token_source(token)?;
        let from = found.as_ref();
        self.send_resume(
            &token.to,
            from,
            out,
            token.flags,
            token.object,
            token.offset,
        )
    }

    /// The incremental source of a token: its `fromname`, or the snapshot or bookmark
    /// of the sent dataset whose GUID is the token's `fromguid`.
    pub fn token_source(&self, token: &ResumeToken) -> Result<Option<SendSource>> {
        if token.fromguid == 0 || token.from.is_some() {
            return Ok(token.from.clone());
        }
        let ds = token.to.dataset();
        let snaps = self.snapshots(&ds)?.unwrap_or_default();
        if let Some(s) = snaps.into_iter().find(|s| s.guid == token.fromguid) {
            return Ok(Some(SendSource::Snapshot(s.name)));
        }
        if let Some(b) = self
            .bookmarks(&ds)?
            .into_iter()
            .find(|b| b.guid == token.fromguid)
        {
            return Ok(Some(SendSource::Bookmark(b.name)));
        }
        Err(Error::Stream(format!(
            "cannot resume the send of {}: its incremental source (guid {}) is gone",
            token.to, token.fromguid
        )))
    }

    /// Estimates the size of the send stream in bytes.
    #[doc(alias = "lzc_send_space")]
    pub fn send_space(
        &self,
        snap: &SnapshotName,
        from: Option<&SendSource>,
        flags: SendFlags,
    ) -> Result<u64> {
        let s = snap.to_cstring();
        let f = from_cstring(from);
        let mut space = 0u64;
        // SAFETY: valid C strings (from may be NULL); space is a valid out pointer.
        let rc = unsafe {
            sys::lzc_send_space(
                s.as_ptr(),
                f.as_ref().map_or(ptr::null(), |c| c.as_ptr()),
                flags.bits(),
                &mut space,
            )
        };
        check(rc, Op::SendSpace, snap.as_str())?;
        Ok(space)
    }

    /// Estimates what is left to send of an interrupted stream.
    #[doc(alias = "lzc_send_space_resume_redacted")]
    pub fn send_space_from_token(&self, token: &ResumeToken) -> Result<u64> {
        #[cfg(openzfs_2_0)]
        {
            let s = token.to.to_cstring();
            let from = self.token_source(token)?;
            let f = from_cstring(from.as_ref());
            let mut space = 0u64;
            // SAFETY: valid C strings (from and redactbook may be NULL); fd -1 is
            // accepted for an estimate; space is a valid out pointer.
            let rc = unsafe {
                sys::lzc_send_space_resume_redacted(
                    s.as_ptr(),
                    f.as_ref().map_or(ptr::null(), |c| c.as_ptr()),
                    token.flags.bits(),
                    token.object,
                    token.offset,
                    token.bytes,
                    ptr::null(),
                    -1,
                    &mut space,
                )
            };
            check(rc, Op::SendSpace, token.to.as_str())?;
            Ok(space)
        }
        #[cfg(not(openzfs_2_0))]
        {
            let _ = token;
            Err(Error::Unsupported {
                op: Op::SendSpace,
                needs: "2.0",
            })
        }
    }

    /// Receives one stream from `input` into `target`, which is either a dataset (the
    /// snapshot takes the stream's own snapshot name) or a full snapshot name.
    ///
    /// The stream's BEGIN record is read first and returned in the result, so the
    /// caller learns what was received. The descriptor is left just past the stream's
    /// END record: several streams can follow each other on one descriptor.
    #[doc(alias = "lzc_receive")]
    #[doc(alias = "lzc_receive_with_cmdprops")]
    pub fn receive(
        &self,
        target: &str,
        input: impl AsFd,
        opts: &ReceiveOptions,
    ) -> Result<Received> {
        let (header, raw) = StreamHeader::read_from(&input)?;
        self.receive_with_header(target, input, opts, header, &raw)
    }

    /// Like [`Zfs::receive`], with a BEGIN record the caller already read from `input`
    /// (see [`StreamHeader::read_from`]).
    pub fn receive_with_header(
        &self,
        target: &str,
        input: impl AsFd,
        opts: &ReceiveOptions,
        header: StreamHeader,
        raw_begin: &RawBeginRecord,
    ) -> Result<Received> {
        let snapshot = if target.contains('@') {
            SnapshotName::new(target)?
        } else {
            let ds = DatasetName::new(target)?;
            ds.snapshot(header.snapshot_short_name().ok_or_else(|| {
                Error::Stream(format!(
                    "stream for {:?} has no snapshot name; give a full target snapshot",
                    header.toname
                ))
            })?)?
        };
        if header.is_compound() {
            return Err(Error::Stream(
                "this is a replication package (zfs send -R); receive its streams \
                 one by one or use `zrep replicate -r`"
                    .into(),
            ));
        }
        let s = snapshot.to_cstring();
        let origin = opts.origin.as_ref().map(|o| o.to_cstring());
        let mut cmdprops = NvList::new();
        if let Some(p) = &opts.props {
            for (k, v) in p.iter() {
                cmdprops.insert_value(k, &v)?;
            }
        }
        for k in &opts.exclude {
            cmdprops.insert_flag(k)?;
        }
        // Excluding a property children do not inherit (canmount, quota...) cannot
        // mask its received value with an explicit inherit (the kernel skips such a
        // flag): as `zfs receive -x` does, it is left out of the received ones.
        let masked;
        let received = match &opts.received {
            Some(r)
                if opts
                    .exclude
                    .iter()
                    .any(|k| !crate::props::excludable_by_inherit(k) && r.contains(k)) =>
            {
                let mut copy = r.try_to_owned()?;
                for k in &opts.exclude {
                    if !crate::props::excludable_by_inherit(k) {
                        copy.remove(k);
                    }
                }
                masked = copy;
                Some(&*masked)
            }
            Some(r) => Some(&**r),
            None => None,
        };
        let fd = Zfs::raw_fd(&input);
        let mut read_bytes = 0u64;
        let mut errflags = 0u64;
        let mut action_handle = 0u64;
        let mut errs = ptr::null_mut();
        let resumable = opts.resumable;
        let _quiet = QuietChildren::new();
        // SAFETY: valid C strings (origin may be NULL); the property lists are live
        // nvlists we lend for the call, which libzfs_core copies and never frees
        // (cmdprops is NULL when empty, props when absent); raw_begin is the 312-byte
        // BEGIN record read from this fd, 8-aligned, as `dmu_replay_record_t`
        // expects; the output pointers are valid; errs becomes ours.
        let rc = unsafe {
            sys::lzc_receive_with_cmdprops(
                s.as_ptr(),
                received.map_or(ptr::null_mut(), |p| p.as_ptr()),
                if cmdprops.is_empty() {
                    ptr::null_mut()
                } else {
                    cmdprops.as_ptr()
                },
                ptr::null_mut(),
                0,
                origin.as_ref().map_or(ptr::null(), |c| c.as_ptr()),
                cbool(opts.force),
                cbool(resumable),
                cbool(header.is_raw()),
                fd,
                raw_begin.as_ptr(),
                -1,
                &mut read_bytes,
                &mut errflags,
                &mut action_handle,
                &mut errs,
            )
        };
        let errs = take_list(errs);
        if rc != 0 {
            return Err(zfs_error(rc, Op::Receive, snapshot.as_str(), None));
        }
        let mut property_errors = Vec::new();
        if let Some(errs) = errs {
            for (k, v) in errs.iter() {
                property_errors.push((k.to_string(), v.as_int().unwrap_or(0) as i32));
            }
        }
        Ok(Received {
            snapshot,
            header,
            bytes: read_bytes + RawBeginRecord::LEN as u64,
            property_errors,
        })
    }
}

/// Options of [`Zfs::receive`].
#[derive(Debug, Default)]
pub struct ReceiveOptions {
    /// `-F`: roll back the destination to its most recent snapshot first (and, for
    /// a full stream, overwrite an existing dataset that has no snapshots).
    pub force: bool,
    /// `-s`: an interrupted receive keeps its partial state and sets
    /// `receive_resume_token` on the destination.
    pub resumable: bool,
    /// `-o`: properties set locally on the received dataset (lzc's `cmdprops`):
    /// they override received values, which stay stored beneath them. Values as
    /// the kernel takes them: see [`props`](crate::props) to build them.
    pub props: Option<NvList>,
    /// `-x`: properties to exclude (inherit) rather than take from the stream: the
    /// received value is stored but masked, as `zfs receive -x` does (lzc's
    /// `cmdprops`, as flags). A property children do not inherit (`canmount`,
    /// `quota`...; see [`Property::inheritable`](crate::Property::inheritable)) is
    /// left out of [`received`](Self::received) instead.
    pub exclude: Vec<String>,
    /// The properties received with the stream, as `zfs send -p` carries them in a
    /// replication stream (lzc's `props`): set with source `received`, under any
    /// local value. On an existing dataset they replace its received properties
    /// as a whole: a property received before and missing here is cleared
    /// (`Some` of an empty list clears them all), while `None` leaves them as
    /// they are. Read them from the source with
    /// [`Zfs::local_properties`](crate::Zfs::local_properties).
    ///
    /// Properties the kernel refuses do not fail the receive: they are listed in
    /// [`Received::property_errors`].
    pub received: Option<NvList>,
    /// `-o origin=`: the clone origin for an incremental stream received as a clone.
    pub origin: Option<SnapshotName>,
}

/// What [`Zfs::receive`] received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The snapshot created.
    pub snapshot: SnapshotName,
    /// The stream's BEGIN record.
    pub header: StreamHeader,
    /// Bytes read from the descriptor, the BEGIN record included.
    pub bytes: u64,
    /// Properties that could not be set: (name, errno).
    pub property_errors: Vec<(String, i32)>,
}

/// The BEGIN record of a stream, as read from the descriptor (312 bytes, the size of
/// `dmu_replay_record_t`), aligned as libzfs_core expects.
#[derive(Clone)]
#[repr(C, align(8))]
pub struct RawBeginRecord([u8; RawBeginRecord::LEN]);

impl RawBeginRecord {
    /// `sizeof (dmu_replay_record_t)`.
    pub const LEN: usize = 312;

    fn as_ptr(&self) -> *const sys::dmu_replay_record {
        self.0.as_ptr().cast()
    }
}

impl std::fmt::Debug for RawBeginRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawBeginRecord(312 bytes)")
    }
}

const DMU_BACKUP_MAGIC: u64 = 0x0002_F5BA_CBAC;
const DRR_BEGIN: u32 = 0;
const DRR_FLAG_CLONE: u32 = 1 << 0;
const DMU_COMPOUNDSTREAM: u64 = 2;
const DMU_BACKUP_FEATURE_RAW: u64 = 1 << 24;

/// The fields of a stream's BEGIN record (`struct drr_begin`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamHeader {
    /// GUID of the snapshot the stream creates.
    pub toguid: u64,
    /// GUID of the incremental source, 0 for a full stream.
    pub fromguid: u64,
    /// Full name of the sent snapshot, as it was on the sender.
    pub toname: String,
    /// Creation time of the snapshot (seconds).
    pub creation_time: u64,
    /// `drr_versioninfo`: header type and feature flags.
    pub versioninfo: u64,
    /// `drr_flags`.
    pub flags: u32,
    /// Whether the stream's integers are in the other byte order.
    pub byteswapped: bool,
}

impl StreamHeader {
    /// Reads exactly the BEGIN record from `input` and parses it.
    pub fn read_from(input: &impl AsFd) -> Result<(StreamHeader, RawBeginRecord)> {
        let mut raw = RawBeginRecord([0; RawBeginRecord::LEN]);
        let mut file = std::fs::File::from(
            input
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| Error::io("cannot duplicate the stream descriptor", e))?,
        );
        let mut got = 0;
        while got < raw.0.len() {
            match file.read(&mut raw.0[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("cannot read the send stream", e)),
            }
        }
        if got == 0 {
            return Err(Error::NoStream);
        }
        if got < raw.0.len() {
            return Err(Error::Stream(format!(
                "send stream is truncated: {got} bytes, shorter than its BEGIN record"
            )));
        }
        Ok((StreamHeader::parse(&raw.0)?, raw))
    }

    /// Parses a 312-byte BEGIN record.
    pub fn parse(b: &[u8]) -> Result<StreamHeader> {
        if b.len() < RawBeginRecord::LEN {
            return Err(Error::Stream("BEGIN record too short".into()));
        }
        let le64 = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        let le32 = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        let magic = le64(8);
        let byteswapped = if magic == DMU_BACKUP_MAGIC {
            false
        } else if magic.swap_bytes() == DMU_BACKUP_MAGIC {
            true
        } else {
            return Err(Error::Stream(
                "input is not a ZFS send stream (bad magic in its first record)".into(),
            ));
        };
        let fix64 = |v: u64| if byteswapped { v.swap_bytes() } else { v };
        let fix32 = |v: u32| if byteswapped { v.swap_bytes() } else { v };
        if fix32(le32(0)) != DRR_BEGIN {
            return Err(Error::Stream(
                "send stream does not start with a BEGIN record".into(),
            ));
        }
        let name = &b[56..56 + 256];
        let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
        Ok(StreamHeader {
            versioninfo: fix64(le64(16)),
            creation_time: fix64(le64(24)),
            flags: fix32(le32(36)),
            toguid: fix64(le64(40)),
            fromguid: fix64(le64(48)),
            toname: String::from_utf8_lossy(&name[..end]).into_owned(),
            byteswapped,
        })
    }

    /// Whether the stream is incremental.
    pub fn is_incremental(&self) -> bool {
        self.fromguid != 0
    }

    /// Whether it is a replication package (`zfs send -R`), not a single stream.
    pub fn is_compound(&self) -> bool {
        self.versioninfo & 0x3 == DMU_COMPOUNDSTREAM
    }

    /// Whether it is a raw (encrypted, `-w`) stream.
    pub fn is_raw(&self) -> bool {
        (self.versioninfo >> 2) & DMU_BACKUP_FEATURE_RAW != 0
    }

    /// Whether it is a clone stream.
    pub fn is_clone(&self) -> bool {
        self.flags & DRR_FLAG_CLONE != 0
    }

    /// The part of `toname` after `@`.
    pub fn snapshot_short_name(&self) -> Option<&str> {
        self.toname.split_once('@').map(|(_, s)| s)
    }
}

/// A decoded `receive_resume_token`: what to send to finish an interrupted receive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResumeToken {
    /// The snapshot being sent.
    pub to: SnapshotName,
    /// Its GUID.
    pub toguid: u64,
    /// The incremental source (snapshot or bookmark), if any.
    pub from: Option<SendSource>,
    /// Its GUID (0 for a full stream).
    pub fromguid: u64,
    /// Object to resume at.
    pub object: u64,
    /// Offset in that object.
    pub offset: u64,
    /// Bytes already received.
    pub bytes: u64,
    /// The flags of the interrupted stream.
    pub flags: SendFlags,
}

/// The longest resume token [`ResumeToken::parse`] accepts, in bytes of text. Real
/// tokens are a few hundred bytes to a few KiB (the kernel compresses a list of a
/// dozen fields).
pub const MAX_TOKEN_LEN: usize = 64 << 10;

/// The largest packed list a resume token may claim to decompress to, in bytes.
pub const MAX_TOKEN_PACKED_LEN: usize = 1 << 20;

impl ResumeToken {
    /// Decodes a token, `1-<checksum>-<packed length>-<hex of zlib(packed nvlist)>`,
    /// as the kernel writes it (`zfs send -t` reads it the same way).
    ///
    /// The token may come from anywhere (the other side of a replication): it is at
    /// most [`MAX_TOKEN_LEN`] bytes, claims at most [`MAX_TOKEN_PACKED_LEN`] bytes
    /// unpacked and must decompress to exactly that; its checksum (fletcher-4 of the
    /// compressed bytes) must match; the packed list is checked before libnvpair
    /// reads it. Every failure is [`Error::Stream`] saying what is wrong.
    pub fn parse(token: &str) -> Result<ResumeToken> {
        let bad = |why: String| Error::Stream(format!("invalid resume token: {why}"));
        if token.len() > MAX_TOKEN_LEN {
            return Err(bad(format!(
                "{} bytes long, more than the {MAX_TOKEN_LEN} a token can be",
                token.len()
            )));
        }
        let token = token.trim_ascii();
        if token.is_empty() {
            return Err(bad("empty".into()));
        }
        if let Some(c) = token.chars().find(|c| !c.is_ascii()) {
            return Err(bad(format!("contains {c:?}, not ASCII")));
        }
        let mut fields = token.splitn(4, '-');
        match fields.next() {
            Some("1") => {}
            Some(v) if v.len() <= 8 => return Err(bad(format!("unsupported version {v:?}"))),
            _ => return Err(bad("no version 1 at the start".into())),
        }
        let checksum = hex_field(fields.next(), "checksum").map_err(bad)?;
        let len = hex_field(fields.next(), "length").map_err(bad)?;
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l <= MAX_TOKEN_PACKED_LEN)
            .ok_or_else(|| {
                bad(format!(
                    "claims {len} bytes unpacked, more than the {MAX_TOKEN_PACKED_LEN} allowed"
                ))
            })?;
        let compressed = hex_bytes(fields.next().unwrap_or("")).map_err(bad)?;
        let sum = fletcher4_first_word(&compressed);
        if sum != checksum {
            return Err(bad(format!(
                "checksum mismatch (computed {sum:x}, the token says {checksum:x}): \
                 it is corrupt or truncated"
            )));
        }
        // Room for one byte more than claimed, so that a longer output is seen
        // without the vector growing past the bound.
        let mut packed = Vec::with_capacity(len + 1);
        flate2::read::ZlibDecoder::new(&compressed[..])
            .take(len as u64 + 1)
            .read_to_end(&mut packed)
            .map_err(|e| bad(format!("cannot decompress: {e}")))?;
        if packed.len() != len {
            let got = if packed.len() > len {
                "more".to_string()
            } else {
                packed.len().to_string()
            };
            return Err(bad(format!(
                "decompresses to {got} bytes, not the {len} it claims"
            )));
        }
        let nvl = NvList::unpack(&packed).map_err(|e| bad(e.to_string()))?;
        Self::from_nvlist(&nvl).map_err(bad)
    }

    fn from_nvlist(n: &NvListRef) -> std::result::Result<ResumeToken, String> {
        let num = |k: &str| n.get_u64(k).ok_or_else(|| format!("no uint64 {k:?}"));
        let to = n.get_str("toname").ok_or("no string \"toname\"")?;
        let to = SnapshotName::new(to).map_err(|e| format!("toname: {e}"))?;
        let from = match n.get("fromname") {
            None => None,
            Some(v) => {
                let f = v.as_str().ok_or("\"fromname\" is not a string")?;
                Some(
                    f.parse::<SendSource>()
                        .map_err(|e| format!("fromname: {e}"))?,
                )
            }
        };
        Ok(ResumeToken {
            to,
            toguid: num("toguid")?,
            from,
            fromguid: n.get_u64("fromguid").unwrap_or(0),
            object: num("object")?,
            offset: num("offset")?,
            bytes: n.get_u64("bytes").unwrap_or(0),
            flags: SendFlags {
                large_blocks: n.contains("largeblockok"),
                embedded: n.contains("embedok"),
                compressed: n.contains("compressok"),
                raw: n.contains("rawok"),
                saved: n.contains("savedok"),
            },
        })
    }
}

/// A token field of 1 to 16 hex digits (what `%llx` writes).
fn hex_field(field: Option<&str>, what: &str) -> std::result::Result<u64, String> {
    let f = field.ok_or_else(|| format!("no {what}"))?;
    if f.is_empty() || f.len() > 16 || !f.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("the {what} is not 1 to 16 hex digits"));
    }
    u64::from_str_radix(f, 16).map_err(|e| format!("the {what}: {e}"))
}

/// The bytes of a hex payload (two digits a byte, either case).
fn hex_bytes(hex: &str) -> std::result::Result<Vec<u8>, String> {
    if hex.is_empty() {
        return Err("no payload".into());
    }
    if hex.len() % 2 != 0 {
        return Err(format!("odd payload length {}", hex.len()));
    }
    let digit = |b: u8| char::from(b).to_digit(16);
    hex.as_bytes()
        .chunks_exact(2)
        .enumerate()
        .map(|(i, pair)| match (digit(pair[0]), digit(pair[1])) {
            (Some(hi), Some(lo)) => Ok((hi * 16 + lo) as u8),
            _ => Err(format!("payload byte {i} is not two hex digits")),
        })
        .collect()
}

/// The first word of the fletcher-4 checksum of `bytes` in this host's byte order,
/// what a token carries: the sum of its 32-bit words (a tail of fewer than 4 bytes
/// is left out, as `fletcher_4_native_varsize` does).
fn fletcher4_first_word(bytes: &[u8]) -> u64 {
    bytes
        .chunks_exact(4)
        .map(|w| u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
        .fold(0u64, u64::wrapping_add)
}

#[cfg(test)]
#[path = "../tests/support/token.rs"]
mod token_support;

#[cfg(test)]
mod tests {
    use super::token_support::{token_claiming, token_of};
    use super::*;

    #[test]
    fn parses_a_begin_record() {
        let mut b = [0u8; RawBeginRecord::LEN];
        b[8..16].copy_from_slice(&DMU_BACKUP_MAGIC.to_le_bytes());
        b[16..24].copy_from_slice(&(1u64 | (DMU_BACKUP_FEATURE_RAW << 2)).to_le_bytes());
        b[40..48].copy_from_slice(&42u64.to_le_bytes());
        b[48..56].copy_from_slice(&7u64.to_le_bytes());
        b[56..56 + 8].copy_from_slice(b"p/fs@s1\0");
        let h = StreamHeader::parse(&b).unwrap();
        assert_eq!(h.toguid, 42);
        assert!(h.is_incremental() && h.is_raw() && !h.is_compound());
        assert_eq!(h.snapshot_short_name(), Some("s1"));
        // Same record from a big-endian sender.
        let mut s = b;
        s[8..16].copy_from_slice(&DMU_BACKUP_MAGIC.to_be_bytes());
        s[40..48].copy_from_slice(&42u64.to_be_bytes());
        s[16..24].copy_from_slice(&1u64.to_be_bytes());
        assert_eq!(StreamHeader::parse(&s).unwrap().toguid, 42);
    }

    #[test]
    fn rejects_garbage() {
        let b = [0x55u8; RawBeginRecord::LEN];
        let e = StreamHeader::parse(&b).unwrap_err();
        assert!(e.to_string().contains("not a ZFS send stream"), "{e}");
        assert!(ResumeToken::parse("2-aa-10-00").is_err());
        assert!(ResumeToken::parse("1-aa-zz-00").is_err());
        assert!(ResumeToken::parse("1-aa-10-0g").is_err());
        assert!(ResumeToken::parse("").is_err());
    }

    fn sample_token_list() -> NvList {
        let mut n = NvList::new();
        n.insert("object", &5u64).unwrap();
        n.insert("offset", &4096u64).unwrap();
        n.insert("bytes", &10000u64).unwrap();
        n.insert("toguid", &99u64).unwrap();
        n.insert("toname", "p/fs@b").unwrap();
        n.insert("fromguid", &98u64).unwrap();
        n.insert("fromname", "p/fs@a").unwrap();
        n.insert_flag("compressok").unwrap();
        n
    }

    #[test]
    fn decodes_a_token_we_encode() {
        let tok = token_of(&sample_token_list().pack().unwrap());
        let t = ResumeToken::parse(&format!(" {tok}\n")).unwrap();
        assert_eq!(t.to.as_str(), "p/fs@b");
        assert_eq!(t.from.unwrap().as_str(), "p/fs@a");
        assert_eq!((t.object, t.offset, t.toguid), (5, 4096, 99));
        assert!(t.flags.compressed && !t.flags.raw);
    }

    fn refusal(token: &str) -> String {
        match ResumeToken::parse(token) {
            Err(Error::Stream(m)) => m,
            other => panic!("{token:.60}: expected Error::Stream, got {other:?}"),
        }
    }

    #[test]
    fn hostile_tokens_are_refused_with_a_reason() {
        let huge = refusal("1-0-7fffffffffffffff-00");
        assert!(
            huge.contains("claims 9223372036854775807 bytes unpacked"),
            "{huge}"
        );
        assert!(refusal("1-é-10-00").contains("not ASCII"));
        assert!(refusal("1-aé").contains("not ASCII"));
        let long = format!("1-0-10-{}", "0".repeat(MAX_TOKEN_LEN));
        assert!(refusal(&long).contains("more than the 65536"));
        assert!(refusal("1-0-+e0-00").contains("length is not 1 to 16 hex"));
        assert!(refusal("1-0-10000000000000000-00").contains("not 1 to 16 hex"));
        assert!(refusal("1--10-00").contains("checksum is not"));
        assert!(refusal("1-0-10").contains("no payload"));
        assert!(refusal("1-0-10-").contains("no payload"));
        assert!(refusal("1-0-10-abc").contains("odd payload length 3"));
        assert!(refusal("1-0-10-abzz").contains("payload byte 1"));
        assert!(refusal(&"9".repeat(100)).contains("no version 1"));
        assert!(refusal("2-aa-10-00").contains("unsupported version \"2\""));
    }

    #[test]
    fn checksum_and_lengths_are_checked() {
        let packed = sample_token_list().pack().unwrap();
        let good = token_of(&packed);
        let mut fields: Vec<&str> = good.splitn(4, '-').collect();
        let other_sum = format!("{}1", fields[1]);
        fields[1] = &other_sum;
        assert!(refusal(&fields.join("-")).contains("checksum mismatch"));
        let short = refusal(&token_claiming(&packed, packed.len() + 8));
        assert!(short.contains(&format!("decompresses to {} bytes", packed.len())));
        let long = refusal(&token_claiming(&packed, packed.len() - 8));
        assert!(long.contains("decompresses to more bytes"), "{long}");
        // A megabyte of zeros claimed as 16 bytes: decompression stops at 17.
        let bomb = refusal(&token_claiming(&vec![0; 1 << 20], 16));
        assert!(bomb.contains("decompresses to more bytes"), "{bomb}");
    }

    #[test]
    fn bad_lists_inside_tokens_are_refused() {
        // An unterminated string, which libnvpair would read past.
        let mut n = NvList::new();
        n.insert("toname", "p/fs@s").unwrap();
        let mut packed = n.pack().unwrap();
        let at = 12 + 24;
        assert_eq!(&packed[at..at + 6], b"p/fs@s");
        packed[at..at + 8].fill(b'x');
        let m = refusal(&token_of(&packed));
        assert!(
            m.contains("malformed") && m.contains("not NUL-terminated"),
            "{m}"
        );
        let mut missing = sample_token_list();
        missing.remove("object");
        assert!(refusal(&token_of(&missing.pack().unwrap())).contains("no uint64 \"object\""));
        let mut spaced = sample_token_list();
        spaced.remove("toname");
        spaced.insert("toname ", "p/fs@b").unwrap();
        assert!(refusal(&token_of(&spaced.pack().unwrap())).contains("no string \"toname\""));
        let mut bad_name = sample_token_list();
        bad_name.insert("toname", "p/fs").unwrap();
        assert!(refusal(&token_of(&bad_name.pack().unwrap())).contains("toname:"));
    }
}

#[cfg(test)]
mod token_from_zfs {
    use super::*;

    /// A real token: `zfs send -i @a ep/src@b | head -c 10M | zfs receive -s ep/dst`.
    #[test]
    fn decodes_an_incremental_token_made_by_zfs() {
        let t = ResumeToken::parse("1-c5f530fc9-e0-789c636064000310a501c49c50360710a715e5e7a69766a630408176505dbfdca3f7790a40363b92bafca4acd4e412060666a83a0cf9b4b4e2d41290cc1cb83c1b927c5265496a319036c89a87557f493ec4157297731444821f2dd24092e704cbe725e6a63230a416e81717253b24312001008dc41cdb").unwrap();
        assert_eq!(t.to.as_str(), "ep/src@b");
        assert!(t.fromguid != 0);
    }
}
