//! The bandwidth limit of a remote transfer (`--bwlimit RATE`, job keys `bwlimit`
//! and `bwlimit_schedule`), applied to the bytes on the wire (frames, after
//! compression).
//!
//! A token bucket that holds at most [`BURST`] worth of the rate: a sender that was
//! idle may send that much at once, then sends as the tokens come, in chunks of a
//! sixteenth of a second's worth (see [`Bucket::chunk`]), so the rate is smooth at
//! the scale of a second. Pushing, zrep's pump waits before each frame it writes.
//! Pulling, the client asks `zrep serve` in its hello to send at the rate (the rate
//! at that moment: a schedule's later windows do not reach the server) and also
//! waits after each frame it reads, so an older server that ignores the request is
//! held back too, once the pipes between them are full.
//!
//! A schedule gives other rates at times of day (local time): the first window that
//! contains the moment wins, outside them the plain `bwlimit` applies (none: no
//! limit). The rate is looked up again before each frame, so a long transfer follows
//! the windows as it crosses them.

use std::time::{Duration, Instant};

/// Burst allowance: this much of a second's rate may go at once after a pause.
pub const BURST: Duration = Duration::from_millis(100);

/// Parses a rate: bytes per second, with an optional `K`, `M`, `G` (powers of 1024,
/// as rsync's `--bwlimit`), an optional `B` and `/s` after it (`10M`, `500K`,
/// `1.5MB/s`); `off`, `none`, `0`: no limit (`None`).
pub fn parse_rate(s: &str) -> Result<Option<u64>, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    if matches!(lower.as_str(), "off" | "none" | "0") {
        return Ok(None);
    }
    let body = lower.strip_suffix("/s").unwrap_or(&lower);
    let body = body.strip_suffix('b').unwrap_or(body);
    let (num, mult) = match body.char_indices().last() {
        Some((i, 'k')) => (&body[..i], 1u64 << 10),
        Some((i, 'm')) => (&body[..i], 1 << 20),
        Some((i, 'g')) => (&body[..i], 1 << 30),
        _ => (body, 1),
    };
    let bad = || format!("rate {s:?}: write bytes per second as 10M, 500K or 1.5G (K = 1024)");
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(bad());
    }
    let v: f64 = num.parse().map_err(|_| bad())?;
    let bytes = v * mult as f64;
    if !bytes.is_finite() || bytes > 1e15 {
        return Err(bad());
    }
    if bytes < 1024.0 {
        return Err(format!(
            "rate {s:?} is under 1K per second: too slow to carry a stream"
        ));
    }
    Ok(Some(bytes as u64))
}

/// A rate in the form [`parse_rate`] reads.
pub fn describe_rate(rate: Option<u64>) -> String {
    match rate {
        None => "unlimited".into(),
        Some(r) if r >= 1 << 20 && r % (1 << 20) == 0 => format!("{}M/s", r >> 20),
        Some(r) if r >= 1 << 20 => format!("{:.1}M/s", r as f64 / (1 << 20) as f64),
        Some(r) if r % 1024 == 0 => format!("{}K/s", r >> 10),
        Some(r) => format!("{r}B/s"),
    }
}

/// One window of a schedule: from `start` to `end` (minutes after local midnight; a
/// window may cross midnight), at `rate` (`None`: unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First minute of the day in the window.
    pub start: u32,
    /// First minute after it.
    pub end: u32,
    /// The rate in the window.
    pub rate: Option<u64>,
}

impl Window {
    /// `"08:00-18:00"` and a rate.
    pub fn parse(hours: &str, rate: &str) -> Result<Window, String> {
        let bad = || format!("window {hours:?}: write it as HH:MM-HH:MM (local time)");
        let (a, b) = hours.split_once('-').ok_or_else(bad)?;
        let minute = |t: &str| -> Result<u32, String> {
            let (h, m) = t.trim().split_once(':').ok_or_else(bad)?;
            let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
            if h > 24 || m > 59 || (h == 24 && m > 0) {
                return Err(bad());
            }
            Ok(h * 60 + m)
        };
        let (start, end) = (minute(a)?, minute(b)?);
        if start == end {
            return Err(format!("window {hours:?} is empty"));
        }
        Ok(Window {
            start,
            end,
            rate: parse_rate(rate)?,
        })
    }

    fn contains(&self, minute: u32) -> bool {
        if self.start < self.end {
            (self.start..self.end).contains(&minute)
        } else {
            minute >= self.start || minute < self.end
        }
    }
}

/// The limit of a transfer: a rate, and windows of the day with rates of their own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limit {
    /// Outside the windows (`None`: unlimited).
    pub rate: Option<u64>,
    /// The windows, first match wins.
    pub schedule: Vec<Window>,
}

impl Limit {
    /// A plain rate.
    pub fn rate(rate: Option<u64>) -> Limit {
        Limit {
            rate,
            schedule: Vec::new(),
        }
    }

    /// Whether it never limits anything.
    pub fn is_none(&self) -> bool {
        self.rate.is_none() && self.schedule.iter().all(|w| w.rate.is_none())
    }

    /// The rate at `minute` after local midnight.
    pub fn at(&self, minute: u32) -> Option<u64> {
        self.schedule
            .iter()
            .find(|w| w.contains(minute))
            .map_or(self.rate, |w| w.rate)
    }

    /// The rate now.
    pub fn now(&self) -> Option<u64> {
        if self.schedule.is_empty() {
            return self.rate;
        }
        self.at(local_minute())
    }

    /// One line: `5M/s`, `5M/s, 1M/s 08:00-18:00`.
    pub fn describe(&self) -> String {
        let mut s = describe_rate(self.rate);
        for w in &self.schedule {
            s.push_str(&format!(
                ", {} {:02}:{:02}-{:02}:{:02}",
                describe_rate(w.rate),
                w.start / 60,
                w.start % 60,
                w.end / 60,
                w.end % 60
            ));
        }
        s
    }
}

/// Minutes since local midnight (UTC when the local zone cannot be read).
fn local_minute() -> u32 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as libc::time_t;
    // SAFETY: localtime_r writes only into the tm we own; both pointers are valid for
    // the call.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            return ((now as u64 / 60) % 1440) as u32;
        }
        tm
    };
    (tm.tm_hour.clamp(0, 23) * 60 + tm.tm_min.clamp(0, 59)) as u32
}

/// A token bucket over a [`Limit`]: `take(n)` returns once `n` bytes may go.
#[derive(Debug)]
pub struct Bucket {
    limit: Limit,
    /// When the bytes taken so far are paid for (a virtual clock: tokens owed).
    paid_at: Instant,
}

impl Bucket {
    /// A bucket for `limit`, full.
    pub fn new(limit: Limit) -> Bucket {
        Bucket {
            limit,
            paid_at: Instant::now(),
        }
    }

    /// Bytes to move at a time under the current rate: a sixteenth of a second's
    /// worth, between 16 KiB and `max`.
    pub fn chunk(&self, max: usize) -> usize {
        match self.limit.now() {
            None => max,
            Some(r) => usize::try_from(r / 16)
                .unwrap_or(max)
                .clamp(16 << 10, max.max(16 << 10))
                .min(max),
        }
    }

    /// Waits until `n` more bytes fit the rate.
    pub fn take(&mut self, n: u64) {
        let now = Instant::now();
        match self.limit.now() {
            None => self.paid_at = now,
            Some(rate) => {
                let wait = self.owed(now, rate, n);
                if !wait.is_zero() {
                    std::thread::sleep(wait);
                }
            }
        }
    }

    /// Records `n` bytes sent at `now` under `rate` and says how long to wait first:
    /// whatever is owed beyond the burst allowance (idle time earns nothing more).
    fn owed(&mut self, now: Instant, rate: u64, n: u64) -> Duration {
        let start = self.paid_at.max(now);
        self.paid_at = start + Duration::from_secs_f64(n as f64 / rate as f64);
        self.paid_at.saturating_duration_since(now + BURST)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate("10M"), Ok(Some(10 << 20)));
        assert_eq!(parse_rate("500K"), Ok(Some(500 << 10)));
        assert_eq!(parse_rate("500k"), Ok(Some(500 << 10)));
        assert_eq!(parse_rate("1.5MB/s"), Ok(Some(3 << 19)));
        assert_eq!(parse_rate("2G"), Ok(Some(2 << 30)));
        assert_eq!(parse_rate("65536"), Ok(Some(65536)));
        assert_eq!(parse_rate("off"), Ok(None));
        assert_eq!(parse_rate("0"), Ok(None));
        for bad in ["", "M", "10X", "-5M", "1e9", "10 M", "ten", "5MM", "1.2.3K"] {
            assert!(parse_rate(bad).is_err(), "{bad:?}");
        }
        assert!(parse_rate("100").unwrap_err().contains("under 1K"));
        assert_eq!(describe_rate(Some(5 << 20)), "5M/s");
        assert_eq!(describe_rate(Some(500 << 10)), "500K/s");
        assert_eq!(describe_rate(None), "unlimited");
    }

    #[test]
    fn schedules_pick_the_first_window_and_cross_midnight() {
        let day = Window::parse("08:00-18:00", "1M").unwrap();
        let night = Window::parse("22:30-06:00", "off").unwrap();
        let l = Limit {
            rate: Some(10 << 20),
            schedule: vec![day, night],
        };
        assert_eq!(l.at(8 * 60), Some(1 << 20));
        assert_eq!(l.at(18 * 60 - 1), Some(1 << 20));
        assert_eq!(l.at(18 * 60), Some(10 << 20));
        assert_eq!(l.at(23 * 60), None);
        assert_eq!(l.at(3 * 60), None);
        assert_eq!(l.at(6 * 60), Some(10 << 20));
        assert!(!l.is_none());
        assert!(
            l.describe().contains("1M/s 08:00-18:00"),
            "{}",
            l.describe()
        );
        for bad in ["8-18", "08:00", "25:00-01:00", "08:60-09:00", "08:00-08:00"] {
            assert!(Window::parse(bad, "1M").is_err(), "{bad}");
        }
    }

    /// The bucket's sends on a simulated clock: chunks at 5M/s for 30 s land within
    /// 2% of the rate in every one-second bucket, after a pause the burst is at most
    /// the allowance, and the rate changes as the limit does.
    #[test]
    fn the_bucket_paces_chunks_at_the_rate() {
        let rate = 5u64 << 20;
        let mut b = Bucket::new(Limit::rate(Some(rate)));
        let origin = b.paid_at;
        let chunk = b.chunk(1 << 20) as u64;
        assert_eq!(chunk, rate / 16);
        let mut sim = Duration::ZERO;
        let mut per_second = vec![0u64; 32];
        while sim < Duration::from_secs(30) {
            sim += b.owed(origin + sim, rate, chunk);
            per_second[sim.as_secs() as usize] += chunk;
        }
        for (i, n) in per_second.iter().enumerate().take(30) {
            let ratio = *n as f64 / rate as f64;
            let ok = if i == 0 { 0.9..=1.15 } else { 0.98..=1.02 };
            assert!(ok.contains(&ratio), "second {i}: {ratio:.3}");
        }
        // A pause of 10 s: no more than the allowance goes at once.
        sim += Duration::from_secs(10);
        let mut burst = 0;
        while b.owed(origin + sim, rate, chunk).is_zero() {
            burst += chunk;
        }
        assert!(burst <= rate / 10 + chunk, "{burst}");
        // Half the rate: half as many chunks in a second.
        let mut sent = 0;
        let end = sim + Duration::from_secs(10);
        while sim < end {
            sim += b.owed(origin + sim, rate / 2, chunk);
            sent += chunk;
        }
        let ratio = sent as f64 / (5 * rate) as f64;
        assert!((0.97..=1.05).contains(&ratio), "{ratio}");
    }

    #[test]
    fn chunks_follow_the_rate() {
        let b = Bucket::new(Limit::rate(Some(5 << 20)));
        assert_eq!(b.chunk(1 << 20), (5 << 20) / 16);
        let b = Bucket::new(Limit::rate(Some(64 << 10)));
        assert_eq!(b.chunk(1 << 20), 16 << 10);
        let b = Bucket::new(Limit::rate(Some(1 << 30)));
        assert_eq!(b.chunk(1 << 20), 1 << 20);
        let b = Bucket::new(Limit::rate(None));
        assert_eq!(b.chunk(1 << 20), 1 << 20);
    }
}
