//! What a peer can hand the library, fuzzed: resume tokens (`ResumeToken::parse`) and
//! packed nvlists (`packed::validate`, `NvList::unpack`). A seeded generator packs
//! random valid lists of every data type (nested, in both encodings) and wraps some
//! in tokens, then mutates them: bit flips, bytes set to edge values, 32-bit words
//! (the size and count fields) rewritten, truncations, insertions, deletions,
//! splices; random bytes and token texts come in too.
//!
//! Nothing may panic. A list the check accepts must unpack (libnvpair agrees), every
//! value of it is read and it packs again into a list the check accepts; a list the
//! check refuses must be refused by `unpack` without libnvpair seeing it. Memory is
//! bounded: no single Rust allocation during a parse exceeds the token's 1 MiB limit
//! (a global allocator records the largest request), and what libnvpair keeps for an
//! unpacked list stays within a few times the input (glibc's `mallinfo2`).
//!
//! Runs ZREP_FUZZ_SECS seconds per test (5 by default), or exactly ZREP_FUZZ_COUNT
//! inputs per test when that is set (for valgrind), from seed ZREP_FUZZ_SEED
//! (printed). Figures go to stderr.

#[path = "support/token.rs"]
mod token;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use libzfs::nvlist::Encoding;
use libzfs::stream::{MAX_TOKEN_LEN, MAX_TOKEN_PACKED_LEN};
use libzfs::{packed, Error, NvList, NvListError, NvListRef, ResumeToken};

/// Records the largest single allocation requested (`alloc` or `realloc`) since the
/// last reset: what a length read from the input would inflate.
struct LargestRequest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the wrapper only
// notes the requested size.
unsafe impl GlobalAlloc for LargestRequest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's layout is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: `p` came from this allocator (so from System) with `layout`.
        unsafe { System.realloc(p, layout, new_size) }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        // SAFETY: `p` came from this allocator (so from System) with `layout`.
        unsafe { System.dealloc(p, layout) }
    }
}

#[global_allocator]
static ALLOC: LargestRequest = LargestRequest;

/// The two tests measure process-wide figures: they take turns.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Bytes of the C heap in use, every arena and mmapped block (glibc; 0 under
/// valgrind, which replaces malloc, and off glibc, where it is not measured).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn c_heap_in_use() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    let m = unsafe { libc::mallinfo2() };
    m.uordblks + m.hblkhd
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn c_heap_in_use() -> usize {
    0
}

/// splitmix64: small, seeded, and the same sequence on every run of a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// How long to run, and from which seed.
struct Plan {
    secs: u64,
    count: Option<u64>,
    seed: u64,
}

impl Plan {
    fn from_env(test: &str) -> Plan {
        let var = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
        let seed = var("ZREP_FUZZ_SEED").unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64 % 1_000_000)
        });
        let plan = Plan {
            secs: var("ZREP_FUZZ_SECS").unwrap_or(5),
            count: var("ZREP_FUZZ_COUNT"),
            seed,
        };
        match plan.count {
            Some(n) => eprintln!("{test}: {n} inputs, seed {seed} (ZREP_FUZZ_SEED={seed})"),
            None => eprintln!(
                "{test}: {} s, seed {seed} (ZREP_FUZZ_SEED={seed})",
                plan.secs
            ),
        }
        plan
    }

    fn more(&self, t0: Instant, runs: u64) -> bool {
        match self.count {
            Some(n) => runs < n,
            None => t0.elapsed() < Duration::from_secs(self.secs),
        }
    }
}

/// A name: mostly plain, sometimes with what libnvpair's lookup would trim or index.
fn name(rng: &mut Rng) -> String {
    const PARTS: [&str; 8] = ["toname", "fs@a", " ", "[0]", "x", "guid", "\u{e9}", "#"];
    (0..1 + rng.below(4))
        .map(|_| PARTS[rng.below(PARTS.len())])
        .collect()
}

fn text(rng: &mut Rng) -> String {
    let len = [0, 1, 7, 8, 9, 300][rng.below(6)];
    (0..len)
        .map(|_| char::from(b'a' + rng.below(26) as u8))
        .collect()
}

/// A random valid list: pairs of every data type, nested up to `depth` more levels.
fn random_list(rng: &mut Rng, depth: usize) -> NvList {
    let mut n = NvList::new();
    for _ in 0..rng.below(7) {
        let k = name(rng);
        let len = rng.below(5);
        let v = rng.next();
        let r = match rng.below(16) {
            0 => n.insert_flag(&k),
            1 => n.insert(&k, &(v & 1 == 1)),
            2 => n.insert_byte(&k, v as u8),
            3 => n.insert(&k, &(v as i8)),
            4 => n.insert(&k, &(v as u16)),
            5 => n.insert(&k, &(v as i32)),
            6 => n.insert(&k, &v),
            7 => n.insert(&k, text(rng).as_str()),
            8 => n.insert(&k, &vec![v as u8; len]),
            9 => n.insert(&k, &vec![v as i16; len]),
            10 => n.insert(&k, &vec![v as u32; len]),
            11 => n.insert(&k, &vec![v; len]),
            12 => n.insert(&k, &vec![v & 1 == 1; len]),
            13 => n.insert(&k, &(0..len).map(|_| text(rng)).collect::<Vec<_>>()),
            14 if depth > 0 => n.insert(&k, &random_list(rng, depth - 1)),
            15 if depth > 0 => n.insert(
                &k,
                &(0..len)
                    .map(|_| random_list(rng, depth - 1))
                    .collect::<Vec<_>>(),
            ),
            _ => n.insert_hrtime(&k, v as i64),
        };
        r.expect("a valid pair");
    }
    n
}

/// The fields of a resume token, as the kernel packs them.
fn token_list(rng: &mut Rng) -> NvList {
    let mut n = NvList::new();
    for k in ["object", "offset", "bytes", "toguid", "fromguid"] {
        n.insert(k, &rng.next()).expect("a valid pair");
    }
    n.insert("toname", "ep/src@b").expect("a valid pair");
    if rng.chance(2) {
        n.insert("fromname", "ep/src#a").expect("a valid pair");
    }
    n.insert_flag("compressok").expect("a valid pair");
    n
}

/// A packed list: a token's, a random one, or one of both encodings.
fn valid_packed(rng: &mut Rng) -> Vec<u8> {
    let list = if rng.chance(3) {
        token_list(rng)
    } else {
        random_list(rng, 3)
    };
    let enc = if rng.chance(4) {
        Encoding::Xdr
    } else {
        Encoding::Native
    };
    list.pack_with(enc).expect("pack")
}

/// Edge values for a 32-bit size or count field.
fn edge_word(rng: &mut Rng, len: usize) -> u32 {
    let words = [
        0,
        1,
        4,
        8,
        16,
        23,
        24,
        0x7fff_ffff,
        0x8000_0000,
        u32::MAX,
        len as u32,
        rng.next() as u32,
    ];
    words[rng.below(words.len())]
}

/// A few random mutations of `v`; `other` may be spliced in.
fn mutate(rng: &mut Rng, v: &mut Vec<u8>, other: &[u8]) {
    for _ in 0..1 + rng.below(4) {
        if v.is_empty() {
            v.push(rng.next() as u8);
        }
        let i = rng.below(v.len());
        match rng.below(8) {
            0 => v[i] ^= 1 << rng.below(8),
            1 => v[i] = [0, 1, 0x7f, 0x80, 0xff, b' ', b'['][rng.below(7)],
            2 => {
                let at = i & !3;
                let w = edge_word(rng, v.len());
                let bytes = if rng.chance(2) {
                    w.to_ne_bytes()
                } else {
                    w.to_be_bytes()
                };
                let end = (at + 4).min(v.len());
                v[at..end].copy_from_slice(&bytes[..end - at]);
            }
            3 => v.truncate(i),
            4 => v.insert(i, rng.next() as u8),
            5 => {
                v.remove(i);
            }
            6 => {
                let end = (i + rng.below(32)).min(v.len());
                let copy = v[i..end].to_vec();
                let at = rng.below(v.len());
                v.splice(at..at, copy);
            }
            _ if !other.is_empty() => {
                let from = rng.below(other.len());
                let end = (from + rng.below(64)).min(other.len());
                let to = (i + end - from).min(v.len());
                v.splice(i..to, other[from..end].iter().copied());
            }
            _ => v[i] = 0,
        }
    }
}

fn random_bytes(rng: &mut Rng) -> Vec<u8> {
    let mut v: Vec<u8> = (0..rng.below(200)).map(|_| rng.next() as u8).collect();
    if rng.chance(2) && v.len() >= 4 {
        v[..4].copy_from_slice(&[rng.below(2) as u8, 1, 0, 0]);
    }
    v
}

/// Reads every value of a list, nested ones included.
fn read_all(list: &NvListRef) -> usize {
    let mut seen = 0;
    for (name, value) in list.iter_cstr() {
        seen += name.to_bytes().len() + format!("{value:?}").len();
        if let Some(inner) = value.as_nvlist() {
            seen += read_all(inner);
        }
        assert!(list.get(&name.to_string_lossy()).is_some() || name.to_str().is_err());
    }
    seen
}

fn largest_since_reset() -> usize {
    LARGEST.swap(0, Ordering::Relaxed)
}

#[test]
fn fuzz_unpack() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let plan = Plan::from_env("fuzz_unpack");
    let mut rng = Rng(plan.seed);
    let (mut runs, mut accepted, mut refused, mut bytes) = (0u64, 0u64, 0u64, 0u64);
    let (mut worst_c_ratio, mut largest) = (0f64, 0usize);
    let t0 = Instant::now();
    while plan.more(t0, runs) {
        let mut input = valid_packed(&mut rng);
        match rng.below(10) {
            0 => {} // as packed
            1 => input = random_bytes(&mut rng),
            _ => {
                let other = valid_packed(&mut rng);
                mutate(&mut rng, &mut input, &other);
            }
        }
        bytes += input.len() as u64;
        largest_since_reset();
        let verdict = packed::validate(&input);
        let heap = c_heap_in_use();
        match (verdict, NvList::unpack(&input)) {
            (Ok(_), Ok(list)) => {
                let kept = c_heap_in_use().saturating_sub(heap);
                worst_c_ratio = worst_c_ratio.max(kept as f64 / input.len() as f64);
                assert!(
                    kept <= 8 * input.len() + 4096,
                    "seed {}, run {runs}: {kept} bytes kept for {} bytes",
                    plan.seed,
                    input.len()
                );
                std::hint::black_box(read_all(&list));
                let again = list.pack().expect("an unpacked list packs");
                assert!(packed::validate(&again).is_ok(), "seed {}", plan.seed);
                accepted += 1;
            }
            (Err(e), Err(u)) => {
                assert_eq!(NvListError::from(e), u, "seed {}, run {runs}", plan.seed);
                refused += 1;
            }
            (v, u) => panic!(
                "seed {}, run {runs}: the check said {v:?}, unpack {u:?} for {input:02x?}",
                plan.seed
            ),
        }
        largest = largest.max(largest_since_reset());
        assert!(largest <= 2 * input.len() + 64 * 1024, "seed {}", plan.seed);
        runs += 1;
    }
    let kept = if c_heap_in_use() == 0 {
        "not measured (malloc replaced, as under valgrind)".to_string()
    } else {
        format!("at most {worst_c_ratio:.1} bytes per input byte")
    };
    eprintln!(
        "fuzz_unpack: {runs} lists ({} KiB) in {:.1} s, seed {}: {accepted} accepted and \
         unpacked, {refused} refused by the check (and by unpack, before libnvpair); no \
         panic; libnvpair's heap for a list: {kept}; largest Rust allocation {largest} bytes",
        bytes >> 10,
        t0.elapsed().as_secs_f64(),
        plan.seed
    );
}

/// Token texts for the parser: well-formed, around a mutated list, or mutated text.
struct Tokens {
    /// A token made by `zfs send ... | head -c 10M | zfs receive -s`.
    real: &'static str,
    /// 2 MiB of zeros claimed as the largest list allowed, checksum right.
    bomb: String,
}

impl Tokens {
    fn new() -> Tokens {
        Tokens {
            real: "1-c5f530fc9-e0-789c636064000310a501c49c50360710a715e5e7a69766a630408176505dbfdca3f7790a40363b92bafca4acd4e412060666a83a0cf9b4b4e2d41290cc1cb83c1b927c5265496a319036c89a87557f493ec4157297731444821f2dd24092e704cbe725e6a63230a416e81717253b24312001008dc41cdb",
            bomb: token::token_claiming(&vec![0; 2 << 20], MAX_TOKEN_PACKED_LEN),
        }
    }

    fn input(&self, rng: &mut Rng) -> String {
        let list = if rng.chance(4) {
            valid_packed(rng)
        } else {
            token_list(rng).pack().expect("pack")
        };
        let text = |rng: &mut Rng, base: &str, extra: &[u8]| {
            let mut text = base.as_bytes().to_vec();
            mutate(rng, &mut text, extra);
            String::from_utf8_lossy(&text).into_owned()
        };
        match rng.below(10) {
            0 => token::token_of(&list),
            1..=4 => {
                let mut bad = list.clone();
                mutate(rng, &mut bad, &list);
                token::token_of(&bad)
            }
            5 => {
                let claims = [0, 1, list.len() + 1, MAX_TOKEN_PACKED_LEN + 1, usize::MAX];
                token::token_claiming(&list, claims[rng.below(claims.len())])
            }
            6 => format!("1-0-{:x}-00", rng.next()),
            7 => text(rng, self.real, b"-0123456789abcdefg\xc3\xa9"),
            8 => text(rng, &token::token_of(&list), "\u{e9}-".as_bytes()),
            _ if rng.chance(20) => self.bomb.clone(),
            _ if rng.chance(20) => format!("1-0-10-{}", "0".repeat(MAX_TOKEN_LEN)),
            _ => String::from_utf8_lossy(&random_bytes(rng)).into_owned(),
        }
    }
}

/// A refusal's kind, for the figures: its last clause, numbers left out.
fn kind_of(message: &str) -> String {
    let clause = message.rsplit(": ").next().unwrap_or(message);
    let mut kind = String::new();
    for c in clause.chars() {
        match c {
            '0'..='9' if kind.ends_with('N') => {}
            '0'..='9' => kind.push('N'),
            c => kind.push(c),
        }
    }
    kind.chars().take(48).collect()
}

#[test]
fn fuzz_resume_tokens() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let plan = Plan::from_env("fuzz_resume_tokens");
    let mut rng = Rng(plan.seed ^ 0x5EED);
    let tokens = Tokens::new();
    assert!(ResumeToken::parse(tokens.real).is_ok());
    let (mut runs, mut accepted, mut refused, mut largest) = (0u64, 0u64, 0u64, 0usize);
    let mut reasons = std::collections::BTreeMap::<String, u64>::new();
    let t0 = Instant::now();
    while plan.more(t0, runs) {
        let input = tokens.input(&mut rng);
        largest_since_reset();
        match ResumeToken::parse(&input) {
            Ok(_) => accepted += 1,
            Err(Error::Stream(m)) => {
                refused += 1;
                *reasons.entry(kind_of(&m)).or_default() += 1;
            }
            Err(e) => panic!("seed {}, run {runs}: not a Stream error: {e:?}", plan.seed),
        }
        let big = largest_since_reset();
        largest = largest.max(big);
        assert!(
            big <= MAX_TOKEN_PACKED_LEN + 64 * 1024,
            "seed {}, run {runs}: a {big}-byte allocation for a {}-byte token",
            plan.seed,
            input.len()
        );
        runs += 1;
    }
    let mut top: Vec<_> = reasons.into_iter().collect();
    top.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
    let top: Vec<String> = top
        .iter()
        .take(6)
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    eprintln!(
        "fuzz_resume_tokens: {runs} tokens in {:.1} s, seed {}: {accepted} accepted, \
         {refused} refused (most: {}); no panic; largest Rust allocation {largest} bytes \
         (limit {} + 64 KiB)",
        t0.elapsed().as_secs_f64(),
        plan.seed,
        top.join("; "),
        MAX_TOKEN_PACKED_LEN
    );
}
