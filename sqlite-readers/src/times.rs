//! Times stored as text, read and written the way sqlx does.
//!
//! Every page of posts decodes two times per row. chrono's RFC 3339 parser is general
//! (any offset, any number of fraction digits); what the servers store is always the one
//! layout sqlx writes, which [`canonical`] reads directly, in 27–33 ns against chrono's
//! 44–54 (BENCHMARKS.md, issue 14, eighth round). Anything else still goes through chrono,
//! so the fast path decides nothing on its own: the tests check that both give the same
//! time for the same text.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use rusqlite::types::ValueRef;

/// A timestamp stored as text the way sqlx decodes it for sea-orm's `DateTimeUtc`: RFC 3339
/// (what sqlx writes), or SQLite's own `YYYY-MM-DD HH:MM:SS[.fff]` in UTC (what
/// `CURRENT_TIMESTAMP` writes: the migration that creates the built-in client uses it),
/// the first two layouts sqlx tries. Anything else is an error, so that the caller falls
/// back to sqlx, which goes on to try a dozen more layouts, integers and Julian days.
pub fn datetime(value: ValueRef<'_>) -> rusqlite::Result<DateTime<Utc>> {
    let text = value.as_str()?;
    if let Some(time) = canonical(text) {
        return Ok(time);
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%F %T%.f").map(|t| t.and_utc()))
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, value.data_type(), Box::new(e)))
}

/// A `DateTime<Utc>` as sqlx-sqlite 0.9 encodes it (`to_rfc3339_opts(AutoSi, false)`), for
/// a time bound or written through rusqlite that must compare with, and read back like, the
/// text sqlx writes.
pub fn sqlx_datetime_text(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
}

/// [`datetime`] for a column that may be NULL.
pub fn optional_datetime(value: ValueRef<'_>) -> rusqlite::Result<Option<DateTime<Utc>>> {
    match value {
        ValueRef::Null => Ok(None),
        value => datetime(value).map(Some),
    }
}

/// The layout of [`sqlx_datetime_text`]: `YYYY-MM-DDTHH:MM:SS`, then nothing or `.` and
/// one to nine digits, then `+00:00`. `None` for any other text, and for a leap second
/// (chrono's parser decides those).
fn canonical(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    if b.len() < 25 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' {
        return None;
    }
    let number = |digits: &[u8]| {
        digits.iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let (nano, offset) = match b[19] {
        b'.' => {
            let digits = b[20..].iter().take_while(|d| d.is_ascii_digit()).count();
            if !(1..=9).contains(&digits) {
                return None;
            }
            let fraction = number(&b[20..20 + digits])?;
            (fraction * 10u32.pow(9 - digits as u32), &b[20 + digits..])
        }
        _ => (0, &b[19..]),
    };
    let second = number(&b[17..19])?;
    if offset != b"+00:00" || second > 59 {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(
        number(&b[..4])? as i32,
        number(&b[5..7])?,
        number(&b[8..10])?,
    )?;
    let time =
        NaiveTime::from_hms_nano_opt(number(&b[11..13])?, number(&b[14..16])?, second, nano)?;
    Some(date.and_time(time).and_utc())
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use rusqlite::Connection;

    use super::*;

    fn through_chrono(text: &str) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    #[test]
    fn the_fast_reading_of_what_sqlx_writes_agrees_with_chrono() {
        // Times across the four-digit years, with every fraction length AutoSi writes
        // (none, 3, 6 and 9 digits), stepped by an odd amount so that the digits vary.
        let mut time = Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap();
        let end = Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap();
        let mut checked = 0;
        while time < end {
            for nanos in [0, 123_000_000, 123_456_000, 123_456_789, 999_999_999, 1] {
                let t = time + Duration::nanoseconds(nanos);
                let text = sqlx_datetime_text(t);
                assert_eq!(canonical(&text), Some(t), "{text}");
                assert_eq!(through_chrono(&text), Some(t), "{text}");
                checked += 1;
            }
            time += Duration::seconds(86_399 * 37 + 3_607);
        }
        assert!(checked > 50_000, "{checked}");
    }

    #[test]
    fn fraction_lengths_that_sqlx_does_not_write_read_like_chrono() {
        for text in [
            "2026-12-06T05:00:00.1+00:00",
            "2026-12-06T05:00:00.12+00:00",
            "2026-12-06T05:00:00.1234+00:00",
            "2026-12-06T05:00:00.12345678+00:00",
            "2024-02-29T23:59:59.000000001+00:00",
        ] {
            assert_eq!(canonical(text), through_chrono(text), "{text}");
            assert!(canonical(text).is_some(), "{text}");
        }
    }

    #[test]
    fn anything_else_is_left_to_chrono() {
        for text in [
            "",
            "2026-12-06T05:00:00Z",
            "2026-12-06T05:00:00+01:00",
            "2026-12-06t05:00:00+00:00",
            "2026-12-06 05:00:00+00:00",
            "2026-12-06 05:00:00.123",
            "2026-12-06T05:00:00.+00:00",
            "2026-12-06T05:00:00.1234567890+00:00",
            "2026-12-06T05:00:60+00:00",
            "2026-02-30T05:00:00+00:00",
            "2026-12-06T24:00:00+00:00",
            "2026-12-06T05:00:00+00:00 ",
            "+2026-12-06T05:00:00+00:00",
            "2026-1a-06T05:00:00+00:00",
            "2026-12-06T05:00:00.12a+00:00",
        ] {
            assert_eq!(canonical(text), None, "{text:?}");
        }
        // ... where chrono still reads what it can.
        let zulu = Utc.with_ymd_and_hms(2026, 12, 6, 5, 0, 0).unwrap();
        let value = ValueRef::Text(b"2026-12-06T05:00:00Z");
        assert_eq!(datetime(value).unwrap(), zulu);
        let value = ValueRef::Text(b"2026-12-06T06:00:00+01:00");
        assert_eq!(datetime(value).unwrap(), zulu);
        let value = ValueRef::Text(b"2026-12-06 05:00:00");
        assert_eq!(datetime(value).unwrap(), zulu);
    }

    #[test]
    fn timestamps_read_as_sqlx_writes_them_and_other_formats_fail() {
        let c = Connection::open_in_memory().unwrap();
        let t: DateTime<Utc> = c
            .query_row("SELECT '2026-12-02T15:04:05.123456+00:00'", [], |r| {
                datetime(r.get_ref(0)?)
            })
            .unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-02T15:04:05.123456+00:00");
        assert!(
            c.query_row("SELECT 1764687845", [], |r| datetime(r.get_ref(0)?))
                .is_err()
        );
        let sqlite_time = |sql: &str| c.query_row(sql, [], |r| datetime(r.get_ref(0)?));
        assert_eq!(
            sqlite_time("SELECT '2026-12-02 15:04:05'")
                .unwrap()
                .to_rfc3339(),
            "2026-12-02T15:04:05+00:00",
            "CURRENT_TIMESTAMP's layout, in UTC"
        );
        assert_eq!(
            sqlite_time("SELECT '2026-12-02 15:04:05.250'")
                .unwrap()
                .to_rfc3339(),
            "2026-12-02T15:04:05.250+00:00"
        );
        let now = sqlite_time("SELECT CURRENT_TIMESTAMP").unwrap();
        assert!((Utc::now() - now).num_seconds().abs() < 5);
        assert!(
            sqlite_time("SELECT '2026-12-02 15:04'").is_err(),
            "left to sqlx"
        );
        assert!(
            sqlite_time("SELECT '2026-12-02T15:04:05'").is_err(),
            "left to sqlx"
        );
        assert_eq!(
            c.query_row("SELECT NULL", [], |r| optional_datetime(r.get_ref(0)?))
                .unwrap(),
            None
        );
    }
}
