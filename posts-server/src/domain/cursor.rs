//! Keyset pagination: the opaque cursor and the page size.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};

use super::PostId;

/// A position in the newest-first order over `(created_at, id)`: the next page holds the
/// posts strictly older than this one. Opaque to clients (base64url), so its layout may
/// change without breaking anyone who follows `next_cursor` as told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    created_at: DateTime<Utc>,
    id: PostId,
}

/// Why a cursor was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cursor is not one this server issued")]
pub struct CursorError;

impl Cursor {
    // A cursor this server issues is about 70 characters; anything far longer is not ours
    // and is refused before decoding.
    const MAX_ENCODED_LEN: usize = 128;

    /// The cursor just after the post with this creation time and id.
    pub fn after(created_at: DateTime<Utc>, id: PostId) -> Self {
        Self { created_at, id }
    }

    /// Creation time of the last post already returned.
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    /// Id of the last post already returned.
    pub fn id(&self) -> PostId {
        self.id
    }

    /// The opaque text handed to clients.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "{}:{}",
            self.created_at.timestamp_micros(),
            self.id
        ))
    }

    /// Parses text produced by [`Cursor::encode`].
    pub fn parse(raw: &str) -> Result<Self, CursorError> {
        if raw.is_empty() || raw.len() > Self::MAX_ENCODED_LEN {
            return Err(CursorError);
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| CursorError)?;
        let text = String::from_utf8(bytes).map_err(|_| CursorError)?;
        let (micros, id) = text.split_once(':').ok_or(CursorError)?;
        let micros: i64 = micros.parse().map_err(|_| CursorError)?;
        // Only times a post can have: both databases store and order them alike, and
        // PostgreSQL refuses timestamps before 4713 BC (a forged cursor was a 500).
        if !(0..=MAX_CURSOR_MICROS).contains(&micros) {
            return Err(CursorError);
        }
        let created_at = DateTime::from_timestamp_micros(micros).ok_or(CursorError)?;
        let id = PostId::parse(id).ok_or(CursorError)?;
        Ok(Self { created_at, id })
    }
}

/// 9999-12-31T23:59:59Z in microseconds: the last time SQLite's text order and
/// PostgreSQL agree on.
const MAX_CURSOR_MICROS: i64 = 253_402_300_799_000_000;

/// How many posts one page holds: 1 to 100, 20 when not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(u64);

/// Why a page size was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("limit must be between 1 and {max}", max = PageLimit::MAX)]
pub struct PageLimitError;

impl PageLimit {
    /// The page size when the client names none.
    pub const DEFAULT: u64 = 20;
    /// The largest page.
    pub const MAX: u64 = 100;

    /// Accepts 1..=100, or nothing for the default.
    pub fn parse(raw: Option<u64>) -> Result<Self, PageLimitError> {
        match raw {
            None => Ok(Self(Self::DEFAULT)),
            Some(n) if (1..=Self::MAX).contains(&n) => Ok(Self(n)),
            Some(_) => Err(PageLimitError),
        }
    }

    /// The page size.
    pub fn get(self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_outside_the_years_a_post_can_have_are_refused() {
        use base64::Engine as _;
        let id = "0195c5f0-7b1e-7c43-9d1f-3f1d7e2a9b10";
        let valid = URL_SAFE_NO_PAD.encode(format!("1700000000000000:{id}"));
        assert!(Cursor::parse(&valid).is_ok());
        for micros in ["-220000000000000000", "253402300800000000"] {
            let raw = URL_SAFE_NO_PAD.encode(format!("{micros}:{id}"));
            assert!(Cursor::parse(&raw).is_err(), "{micros}");
        }
    }

    fn sample() -> Cursor {
        let created_at = DateTime::from_timestamp_micros(1_795_000_000_123_456).unwrap();
        Cursor::after(created_at, PostId::new())
    }

    #[test]
    fn a_cursor_round_trips() {
        let cursor = sample();
        assert_eq!(Cursor::parse(&cursor.encode()), Ok(cursor));
    }

    #[test]
    fn the_encoding_is_url_safe() {
        let encoded = sample().encode();
        assert!(
            encoded
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn garbage_cursors_are_refused() {
        let out_of_range = URL_SAFE_NO_PAD.encode(format!("{}:{}", i64::MAX, PostId::new()));
        let no_id = URL_SAFE_NO_PAD.encode("12345:");
        let too_long = "A".repeat(10_000);
        for raw in ["", "!!!", "abc", &out_of_range, &no_id, &too_long] {
            assert_eq!(Cursor::parse(raw), Err(CursorError), "{raw}");
        }
    }

    #[test]
    fn limits_default_to_twenty_and_stay_within_one_to_a_hundred() {
        assert_eq!(PageLimit::parse(None).unwrap().get(), 20);
        assert_eq!(PageLimit::parse(Some(1)).unwrap().get(), 1);
        assert_eq!(PageLimit::parse(Some(100)).unwrap().get(), 100);
        assert_eq!(PageLimit::parse(Some(0)), Err(PageLimitError));
        assert_eq!(PageLimit::parse(Some(101)), Err(PageLimitError));
    }
}
