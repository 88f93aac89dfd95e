//! The title of a post.

/// A post title: 1 to 200 characters (Unicode scalar values, not bytes), not blank, and
/// free of control characters so it renders on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostTitle(String);

/// Why a title was refused; the message is shown to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostTitleError {
    /// Empty or whitespace only.
    #[error("title must not be empty")]
    Empty,
    /// Longer than the maximum.
    #[error("title must be at most {max} characters, got {actual}", max = PostTitle::MAX_CHARS)]
    TooLong {
        /// How many characters were sent.
        actual: usize,
    },
    /// Contains a control character (newline, tab, NUL...).
    #[error("title must not contain control characters")]
    ControlCharacter,
}

impl PostTitle {
    /// The longest title, in characters.
    pub const MAX_CHARS: usize = 200;

    /// Accepts a title that satisfies every rule above, unchanged.
    pub fn parse(raw: String) -> Result<Self, PostTitleError> {
        if raw.trim().is_empty() {
            return Err(PostTitleError::Empty);
        }
        let actual = raw.chars().count();
        if actual > Self::MAX_CHARS {
            return Err(PostTitleError::TooLong { actual });
        }
        if raw.chars().any(char::is_control) {
            return Err(PostTitleError::ControlCharacter);
        }
        Ok(Self(raw))
    }

    /// The title as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The owned title.
    pub fn into_inner(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_character_title_is_accepted() {
        assert_eq!(PostTitle::parse("a".into()).unwrap().as_str(), "a");
    }

    #[test]
    fn an_empty_or_blank_title_is_rejected() {
        assert_eq!(PostTitle::parse(String::new()), Err(PostTitleError::Empty));
        assert_eq!(PostTitle::parse("   ".into()), Err(PostTitleError::Empty));
    }

    #[test]
    fn two_hundred_multi_byte_characters_are_accepted() {
        let title = "é".repeat(200);
        assert!(
            title.len() > 200,
            "the test needs more bytes than characters"
        );
        assert!(PostTitle::parse(title).is_ok());
    }

    #[test]
    fn two_hundred_and_one_characters_are_rejected() {
        assert_eq!(
            PostTitle::parse("ö".repeat(201)),
            Err(PostTitleError::TooLong { actual: 201 })
        );
        assert!(PostTitle::parse("a".repeat(201)).is_err());
    }

    #[test]
    fn emoji_count_as_one_character_each() {
        assert!(PostTitle::parse("🦀".repeat(200)).is_ok());
        assert!(PostTitle::parse("🦀".repeat(201)).is_err());
    }

    #[test]
    fn control_characters_are_rejected() {
        assert_eq!(
            PostTitle::parse("line\nbreak".into()),
            Err(PostTitleError::ControlCharacter)
        );
        assert_eq!(
            PostTitle::parse("nul\0".into()),
            Err(PostTitleError::ControlCharacter)
        );
    }
}
