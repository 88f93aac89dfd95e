//! A post's times as poem-openapi writes a `DateTime<Utc>`, without going through `fmt`.
//!
//! A page of ten posts writes twenty times. `to_rfc3339` builds each in a new `String`
//! through chrono's `fmt` machinery, and serde then copies it again through `collect_str`;
//! here each is written into a buffer on the stack. The text is exactly `to_rfc3339`'s
//! (the tests compare them), so a post reads the same in a page as alone, where
//! poem-openapi writes it.

use chrono::{DateTime, Datelike, Timelike, Utc};

/// Long enough for `YYYY-MM-DDTHH:MM:SS.nnnnnnnnn+00:00`.
const MAX_LEN: usize = 35;

/// `time.to_rfc3339()`: chrono's `SecondsFormat::AutoSi` (no fraction, or 3, 6 or 9
/// digits, as few as show the time exactly) and `+00:00`.
pub(super) struct Rfc3339 {
    text: [u8; MAX_LEN],
    len: usize,
}

impl Rfc3339 {
    /// `None` where chrono writes something else than four digits of year and two of
    /// second (years outside 0–9999, a leap second): the caller uses chrono there.
    pub(super) fn new(time: &DateTime<Utc>) -> Option<Self> {
        let year = u32::try_from(time.year()).ok().filter(|y| *y <= 9999)?;
        let nano = time.nanosecond();
        if nano >= 1_000_000_000 {
            return None;
        }
        let mut out = Self {
            text: [0; MAX_LEN],
            len: 0,
        };
        out.digits(year, 4);
        out.push(b'-');
        out.digits(time.month(), 2);
        out.push(b'-');
        out.digits(time.day(), 2);
        out.push(b'T');
        out.digits(time.hour(), 2);
        out.push(b':');
        out.digits(time.minute(), 2);
        out.push(b':');
        out.digits(time.second(), 2);
        let (fraction, width) = match nano {
            0 => (0, 0),
            n if n % 1_000_000 == 0 => (n / 1_000_000, 3),
            n if n % 1_000 == 0 => (n / 1_000, 6),
            n => (n, 9),
        };
        if width > 0 {
            out.push(b'.');
            out.digits(fraction, width);
        }
        for &b in b"+00:00" {
            out.push(b);
        }
        Some(out)
    }

    pub(super) fn as_str(&self) -> &str {
        // Only ASCII digits and punctuation were written.
        std::str::from_utf8(&self.text[..self.len]).unwrap_or_default()
    }

    fn push(&mut self, byte: u8) {
        self.text[self.len] = byte;
        self.len += 1;
    }

    /// `value` in `width` digits, zero-padded (`value` has no more).
    fn digits(&mut self, mut value: u32, width: usize) {
        for at in (self.len..self.len + width).rev() {
            self.text[at] = b'0' + (value % 10) as u8;
            value /= 10;
        }
        self.len += width;
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    #[test]
    fn writes_what_to_rfc3339_writes() {
        let mut time = Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap();
        let end = Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap();
        let mut checked = 0;
        while time < end {
            for nanos in [
                0,
                1,
                10,
                1_000,
                120_000,
                123_000_000,
                123_456_000,
                999_999_999,
            ] {
                let t = time + Duration::nanoseconds(nanos);
                assert_eq!(Rfc3339::new(&t).unwrap().as_str(), t.to_rfc3339());
                checked += 1;
            }
            time += Duration::seconds(86_399 * 37 + 3_607);
        }
        assert!(checked > 50_000, "{checked}");
        let last = Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap()
            + Duration::nanoseconds(999_999_999);
        assert_eq!(Rfc3339::new(&last).unwrap().as_str(), last.to_rfc3339());
        assert_eq!(Rfc3339::new(&last).unwrap().as_str().len(), MAX_LEN);
    }

    #[test]
    fn leaves_to_chrono_what_it_writes_otherwise() {
        let far = Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap();
        assert!(Rfc3339::new(&far).is_none());
        let before = Utc.with_ymd_and_hms(-1, 12, 31, 0, 0, 0).unwrap();
        assert!(Rfc3339::new(&before).is_none());
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap()
            .and_utc();
        assert!(Rfc3339::new(&leap).is_none());
    }
}
