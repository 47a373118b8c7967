//! UTC time without a time-zone database: snapshot names, retention periods, lag.
//!
//! `ZREP_NOW` (seconds since the epoch, or `YYYYMMDDTHHMMSSZ`) replaces the system
//! clock, so that tests can run a month of scheduled jobs in minutes. A value that is
//! not a time is an error: [`check_env`] says so, and `zrep` calls it at startup.

use std::ffi::OsStr;

/// The latest time zrep accepts: 9999-12-31T23:59:59Z, whose stamp still has a
/// four-digit year.
pub const LAST: u64 = 253_402_300_799;

/// Seconds since the epoch: `ZREP_NOW` when set, else the system clock.
///
/// A `ZREP_NOW` that is not a time is ignored here (this function cannot fail);
/// [`check_env`] refuses it, and zrep calls that before anything reads the clock.
pub fn now() -> u64 {
    match env_now() {
        Some(Ok(t)) => t,
        _ => system_now(),
    }
}

/// Checks `ZREP_NOW`: `Err` with a message naming the variable and its value when it
/// is set to something that is not a time (the clock would silently be the system's).
pub fn check_env() -> Result<(), String> {
    match env_now() {
        Some(Err(message)) => Err(message),
        _ => Ok(()),
    }
}

/// `ZREP_NOW` read, `None` when unset.
fn env_now() -> Option<Result<u64, String>> {
    std::env::var_os("ZREP_NOW").map(|v| parse_now(&v))
}

/// A `ZREP_NOW` value: seconds since the epoch or a stamp, up to [`LAST`].
fn parse_now(v: &OsStr) -> Result<u64, String> {
    let text = v.to_string_lossy();
    let t = v
        .to_str()
        .and_then(|s| s.parse::<u64>().ok().or_else(|| parse_stamp(s)));
    match t {
        Some(t) if t <= LAST => Ok(t),
        _ => Err(format!(
            "ZREP_NOW={text:?} is not a time: write seconds since the epoch \
             (1767225600) or a UTC time YYYYMMDDTHHMMSSZ (20260101T000000Z) up to \
             the year 9999, or unset ZREP_NOW to use the system clock"
        )),
    }
}

fn system_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A civil date and time in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Civil {
    /// Year.
    pub year: i64,
    /// Month, 1–12.
    pub month: u32,
    /// Day of the month, 1–31.
    pub day: u32,
    /// Seconds into the day.
    pub secs: u32,
}

/// Civil date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days since 1970-01-01 of a civil date (the inverse of [`civil_from_days`]).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl Civil {
    /// The civil time of `secs` since the epoch.
    pub fn from_secs(secs: u64) -> Civil {
        let (year, month, day) = civil_from_days((secs / 86_400) as i64);
        Civil {
            year,
            month,
            day,
            secs: (secs % 86_400) as u32,
        }
    }
}

/// `YYYYMMDDTHHMMSSZ` (sorts like the time it names).
pub fn utc_stamp(secs: u64) -> String {
    let c = Civil::from_secs(secs);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        c.year,
        c.month,
        c.day,
        c.secs / 3600,
        c.secs % 3600 / 60,
        c.secs % 60
    )
}

/// Parses [`utc_stamp`]'s format back; `None` for anything else.
pub fn parse_stamp(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    let days = days_from_civil(i64::from(y), mo, d);
    if days < 0 || civil_from_days(days) != (i64::from(y), mo, d) {
        return None; // before 1970, or a day the month does not have
    }
    Some(days as u64 * 86_400 + u64::from(h * 3600 + mi * 60 + se))
}

/// Calendar periods of retention rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Period {
    /// A UTC hour.
    Hour,
    /// A UTC day.
    Day,
    /// A week starting on Monday (UTC).
    Week,
    /// A calendar month.
    Month,
    /// A calendar year.
    Year,
}

impl Period {
    /// A number that is equal for times in the same period and grows with time.
    pub fn key(self, secs: u64) -> i64 {
        let days = (secs / 86_400) as i64;
        match self {
            Period::Hour => (secs / 3600) as i64,
            Period::Day => days,
            // 1970-01-01 was a Thursday: shift so that weeks start on Monday.
            Period::Week => (days + 3).div_euclid(7),
            Period::Month => {
                let c = Civil::from_secs(secs);
                c.year * 12 + i64::from(c.month) - 1
            }
            Period::Year => Civil::from_secs(secs).year,
        }
    }

    /// Readable name of the period containing `secs`, for `prune --dry-run`.
    pub fn label(self, secs: u64) -> String {
        let c = Civil::from_secs(secs);
        match self {
            Period::Hour => format!(
                "hour {:04}-{:02}-{:02}T{:02}",
                c.year,
                c.month,
                c.day,
                c.secs / 3600
            ),
            Period::Day => format!("day {:04}-{:02}-{:02}", c.year, c.month, c.day),
            Period::Week => {
                let monday = (self.key(secs) * 7 - 3) * 86_400;
                let m = Civil::from_secs(monday as u64);
                format!("week of {:04}-{:02}-{:02}", m.year, m.month, m.day)
            }
            Period::Month => format!("month {:04}-{:02}", c.year, c.month),
            Period::Year => format!("year {:04}", c.year),
        }
    }
}

/// `3d 4h`-style age.
pub fn age(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h) {
        (0, 0) => format!("{m}m{}s", secs % 60),
        (0, _) => format!("{h}h{m:02}m"),
        _ => format!("{d}d{h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(951_782_400), "20000229T000000Z");
        assert_eq!(utc_stamp(1_795_684_362), "20261126T091242Z");
        for t in [0, 951_782_400, 1_795_684_362, 4_102_444_799, 1_709_164_800] {
            assert_eq!(parse_stamp(&utc_stamp(t)), Some(t));
        }
        assert!(utc_stamp(1_795_684_362) < utc_stamp(1_795_684_363));
    }

    #[test]
    fn bad_stamps_are_none() {
        for s in [
            "",
            "20261126T091242",
            "20260230T000000Z",
            "20261326T000000Z",
            "2026112xT091242Z",
            "20261126T241242Z",
            "+0261126T091242Z",
            "20261126T0912é2Z",
        ] {
            assert_eq!(parse_stamp(s), None, "{s}");
        }
    }

    #[test]
    fn periods() {
        let t = parse_stamp("20261126T091242Z").unwrap(); // a Thursday
        let monday = parse_stamp("20261123T000000Z").unwrap();
        let sunday = parse_stamp("20261129T235959Z").unwrap();
        assert_eq!(Period::Week.key(t), Period::Week.key(monday));
        assert_eq!(Period::Week.key(t), Period::Week.key(sunday));
        assert_eq!(Period::Week.key(sunday) + 1, Period::Week.key(sunday + 1));
        assert_eq!(Period::Week.label(t), "week of 2026-11-23");
        assert_eq!(Period::Month.label(t), "month 2026-11");
        assert_eq!(Period::Hour.label(t), "hour 2026-11-26T09");
        let dec31 = parse_stamp("20261231T235959Z").unwrap();
        assert_eq!(Period::Month.key(dec31) + 1, Period::Month.key(dec31 + 1));
        assert_eq!(Period::Year.key(dec31) + 1, Period::Year.key(dec31 + 1));
        assert_eq!(age(90), "1m30s");
        assert_eq!(age(3 * 86_400 + 4 * 3600), "3d4h");
    }

    #[test]
    fn zrep_now_values() {
        let ok = |v: &str| parse_now(OsStr::new(v));
        assert_eq!(ok("1767225600"), Ok(1_767_225_600));
        assert_eq!(ok("20260101T000000Z"), Ok(1_767_225_600));
        assert_eq!(ok("99991231T235959Z"), Ok(LAST));
        for bad in [
            "",
            "soon",
            "-5",
            "2026-01-01",
            "20260101T0000Z",
            "1e9",
            "253402300800",
        ] {
            let e = ok(bad).unwrap_err();
            assert!(
                e.starts_with(&format!("ZREP_NOW={bad:?} is not a time")),
                "{e}"
            );
        }
    }

    #[test]
    fn zrep_now_not_utf8() {
        use std::os::unix::ffi::OsStrExt;
        let e = parse_now(OsStr::from_bytes(b"2026\xff")).unwrap_err();
        assert!(
            e.starts_with("ZREP_NOW=\"2026\u{fffd}\" is not a time"),
            "{e}"
        );
    }
}
