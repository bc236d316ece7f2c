//! Calendar arithmetic on days (SPEC §4: dates are `Date32`, periods half-open).
//!
//! A [`Day`] is the number of days since 1970-01-01, exactly the `Date32` value, so rows can be
//! built without conversions. Months are half-open `[first, next first)`; quarters are calendar
//! quarters. Timestamps are microseconds since the epoch, UTC.

use chrono::{Datelike, NaiveDate};

use crate::error::{Error, Result};

/// Days since 1970-01-01 (the `Date32` representation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub i32);

pub const MICROS_PER_DAY: i64 = 86_400_000_000;
pub const MICROS_PER_HOUR: i64 = 3_600_000_000;
pub const MICROS_PER_MINUTE: i64 = 60_000_000;

const EPOCH_CE: i32 = 719_163; // NaiveDate::from_ymd(1970,1,1).num_days_from_ce()

impl Day {
    pub fn from_ymd(y: i32, m: u32, d: u32) -> Option<Day> {
        NaiveDate::from_ymd_opt(y, m, d).map(Day::from_naive)
    }

    pub fn from_naive(d: NaiveDate) -> Day {
        Day(d.num_days_from_ce() - EPOCH_CE)
    }

    pub fn naive(self) -> NaiveDate {
        // Every i32 day count used by gtmos lies well inside chrono's range; clamp defensively.
        NaiveDate::from_num_days_from_ce_opt(self.0 + EPOCH_CE).unwrap_or(NaiveDate::MIN)
    }

    /// Parse `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Result<Day> {
        NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map(Day::from_naive)
            .map_err(|_| Error::usage(format!("invalid date `{s}`: expected YYYY-MM-DD")))
    }

    /// (year, month, day) without going through chrono: Howard Hinnant's civil-from-days.
    pub fn ymd(self) -> (i32, u32, u32) {
        let z = self.0 as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let y = (yoe + era * 400 + if m <= 2 { 1 } else { 0 }) as i32;
        (y, m, d)
    }

    /// `YYYYMMDD` appended to `out`.
    pub fn push_compact(self, out: &mut String) {
        let (y, m, d) = self.ymd();
        let v = y as u32 * 10_000 + m * 100 + d;
        let mut buf = [0u8; 8];
        let mut x = v;
        for i in (0..8).rev() {
            buf[i] = b'0' + (x % 10) as u8;
            x /= 10;
        }
        out.push_str(std::str::from_utf8(&buf).unwrap_or("00000000"));
    }

    pub fn year(self) -> i32 {
        self.naive().year()
    }
    pub fn month(self) -> u32 {
        self.naive().month()
    }
    pub fn day_of_month(self) -> u32 {
        self.naive().day()
    }

    /// Monday = 0 … Sunday = 6.
    pub fn weekday(self) -> u32 {
        // 1970-01-01 was a Thursday (3).
        (self.0 + 3).rem_euclid(7) as u32
    }

    pub fn plus(self, days: i32) -> Day {
        Day(self.0 + days)
    }

    pub fn minus(self, other: Day) -> i32 {
        self.0 - other.0
    }

    /// Midnight UTC of this day, in microseconds since the epoch.
    pub fn micros(self) -> i64 {
        self.0 as i64 * MICROS_PER_DAY
    }

    pub fn first_of_month(self) -> Day {
        let d = self.naive();
        Day::from_ymd(d.year(), d.month(), 1).unwrap_or(self)
    }

    /// The Monday on or before this day.
    pub fn week_start(self) -> Day {
        Day(self.0 - self.weekday() as i32)
    }

    /// Same day-of-month `n` months later, clamped to the month's end (Jan 31 + 1 month = Feb 28/29).
    pub fn add_months(self, n: i32) -> Day {
        let d = self.naive();
        let total = d.year() * 12 + d.month0() as i32 + n;
        let (y, m0) = (total.div_euclid(12), total.rem_euclid(12) as u32);
        let last = days_in_month(y, m0 + 1);
        Day::from_ymd(y, m0 + 1, d.day().min(last)).unwrap_or(self)
    }

    /// Months since year 0 (`year * 12 + month0`): a dense month index.
    pub fn month_index(self) -> i32 {
        let d = self.naive();
        d.year() * 12 + d.month0() as i32
    }

    pub fn first_of_quarter(self) -> Day {
        let d = self.naive();
        let m = (d.month0() / 3) * 3 + 1;
        Day::from_ymd(d.year(), m, 1).unwrap_or(self)
    }

    pub fn iso(self) -> String {
        self.naive().format("%Y-%m-%d").to_string()
    }
}

impl std::fmt::Display for Day {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.iso())
    }
}

/// First day of the month with the given dense month index (see [`Day::month_index`]).
pub fn month_start(month_index: i32) -> Day {
    let (y, m0) = (
        month_index.div_euclid(12),
        month_index.rem_euclid(12) as u32,
    );
    Day::from_ymd(y, m0 + 1, 1).unwrap_or(Day(0))
}

pub fn days_in_month(year: i32, month: u32) -> u32 {
    let (ny, nm) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    match (
        NaiveDate::from_ymd_opt(ny, nm, 1),
        NaiveDate::from_ymd_opt(year, month, 1),
    ) {
        (Some(a), Some(b)) => (a - b).num_days() as u32,
        _ => 30,
    }
}

/// Days of the half-open interval `[a_start, a_end)` that fall inside `[b_start, b_end)`.
pub fn overlap_days(a_start: Day, a_end: Day, b_start: Day, b_end: Day) -> i32 {
    (a_end.0.min(b_end.0) - a_start.0.max(b_start.0)).max(0)
}

/// RFC 3339 text (`2026-01-01T00:00:00Z`) of a UTC timestamp in microseconds.
pub fn format_ts(micros: i64) -> String {
    match chrono::DateTime::from_timestamp_micros(micros) {
        Some(t) if micros % 1_000_000 == 0 => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        None => micros.to_string(),
    }
}

/// Parse a UTC timestamp: RFC 3339 (`2026-01-01T00:00:00Z`), or a bare date meaning midnight UTC.
pub fn parse_ts(s: &str) -> Result<i64> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_micros());
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(Day::from_naive(d).micros());
    }
    Err(Error::usage(format!(
        "invalid timestamp `{s}`: expected RFC 3339 such as 2026-01-01T00:00:00Z, or YYYY-MM-DD"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_weekday() {
        assert_eq!(Day::from_ymd(1970, 1, 1), Some(Day(0)));
        // 2024-01-01 was a Monday.
        assert_eq!(Day::from_ymd(2024, 1, 1).unwrap().weekday(), 0);
        assert_eq!(Day::from_ymd(2024, 1, 7).unwrap().weekday(), 6);
        assert_eq!(
            Day::from_ymd(2024, 1, 10).unwrap().week_start(),
            Day::from_ymd(2024, 1, 8).unwrap()
        );
    }

    #[test]
    fn months_and_leap_years() {
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2025, 2), 28);
        assert_eq!(days_in_month(2025, 12), 31);
        let jan31 = Day::from_ymd(2024, 1, 31).unwrap();
        assert_eq!(jan31.add_months(1), Day::from_ymd(2024, 2, 29).unwrap());
        assert_eq!(jan31.add_months(13), Day::from_ymd(2025, 2, 28).unwrap());
        assert_eq!(
            Day::from_ymd(2024, 11, 15).unwrap().add_months(-11),
            Day::from_ymd(2023, 12, 15).unwrap()
        );
        let m = Day::from_ymd(2024, 5, 20).unwrap();
        assert_eq!(
            month_start(m.month_index()),
            Day::from_ymd(2024, 5, 1).unwrap()
        );
        assert_eq!(m.first_of_quarter(), Day::from_ymd(2024, 4, 1).unwrap());
    }

    #[test]
    fn overlap_is_half_open() {
        let d = |y, m, dd| Day::from_ymd(y, m, dd).unwrap();
        // $120 oracle term 2024-06-15 .. 2024-10-13: 16 days in June, 12 in October.
        assert_eq!(
            overlap_days(
                d(2024, 6, 15),
                d(2024, 10, 13),
                d(2024, 6, 1),
                d(2024, 7, 1)
            ),
            16
        );
        assert_eq!(
            overlap_days(
                d(2024, 6, 15),
                d(2024, 10, 13),
                d(2024, 10, 1),
                d(2024, 11, 1)
            ),
            12
        );
        assert_eq!(
            overlap_days(
                d(2024, 6, 15),
                d(2024, 10, 13),
                d(2024, 11, 1),
                d(2024, 12, 1)
            ),
            0
        );
    }

    #[test]
    fn civil_from_days_matches_chrono() {
        for d in (-800_000..800_000).step_by(997) {
            let day = Day(d);
            let n = day.naive();
            assert_eq!(day.ymd(), (n.year(), n.month(), n.day()), "{d}");
        }
        let mut s = String::new();
        Day::from_ymd(2024, 3, 5).unwrap().push_compact(&mut s);
        assert_eq!(s, "20240305");
    }

    #[test]
    fn timestamps_round_trip() {
        let t = parse_ts("2026-01-01T00:00:00Z").unwrap();
        assert_eq!(t, Day::from_ymd(2026, 1, 1).unwrap().micros());
        assert_eq!(format_ts(t), "2026-01-01T00:00:00Z");
        assert_eq!(parse_ts("2026-01-01").unwrap(), t);
        assert!(parse_ts("yesterday").is_err());
    }
}
