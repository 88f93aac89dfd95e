//! The body of a post.

/// A post body: 1 to 100,000 characters (Unicode scalar values, not bytes), not blank, and
/// without NUL, which PostgreSQL cannot store in text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostBody(String);

/// Why a body was refused; the message is shown to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostBodyError {
    /// Empty or whitespace only.
    #[error("body must not be empty")]
    Empty,
    /// Longer than the maximum.
    #[error("body must be at most {max} characters, got {actual}", max = PostBody::MAX_CHARS)]
    TooLong {
        /// How many characters were sent.
        actual: usize,
    },
    /// Contains U+0000.
    #[error("body must not contain NUL characters")]
    Nul,
}

impl PostBody {
    /// The longest body, in characters.
    pub const MAX_CHARS: usize = 100_000;

    /// Accepts a body that satisfies every rule above, unchanged.
    pub fn parse(raw: String) -> Result<Self, PostBodyError> {
        if raw.trim().is_empty() {
            return Err(PostBodyError::Empty);
        }
        let actual = raw.chars().count();
        if actual > Self::MAX_CHARS {
            return Err(PostBodyError::TooLong { actual });
        }
        if raw.contains('\0') {
            return Err(PostBodyError::Nul);
        }
        Ok(Self(raw))
    }

    /// The body as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The owned body.
    pub fn into_inner(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multi_line_body_is_accepted() {
        assert!(PostBody::parse("first line\n\tsecond line".into()).is_ok());
    }

    #[test]
    fn an_empty_or_blank_body_is_rejected() {
        assert_eq!(PostBody::parse(String::new()), Err(PostBodyError::Empty));
        assert_eq!(PostBody::parse("\n \t".into()), Err(PostBodyError::Empty));
    }

    #[test]
    fn the_limit_counts_characters_not_bytes() {
        assert!(PostBody::parse("ß".repeat(100_000)).is_ok());
        assert_eq!(
            PostBody::parse("ß".repeat(100_001)),
            Err(PostBodyError::TooLong { actual: 100_001 })
        );
    }

    #[test]
    fn nul_is_rejected() {
        assert_eq!(PostBody::parse("a\0b".into()), Err(PostBodyError::Nul));
    }
}
