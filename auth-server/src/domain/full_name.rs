/// A person's name as shown to others: 1–200 characters after trimming, no control
/// characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullName(String);

const MAX_CHARS: usize = 200;

impl FullName {
    /// Parses a name, or says why it is not acceptable.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("full_name must not be empty".into());
        }
        if trimmed.chars().count() > MAX_CHARS {
            return Err(format!("full_name must be at most {MAX_CHARS} characters"));
        }
        if trimmed.chars().any(char::is_control) {
            return Err("full_name must not contain control characters".into());
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::FullName;

    #[test]
    fn names_are_trimmed() {
        assert_eq!(
            FullName::parse("  Ada Lovelace ").unwrap().as_str(),
            "Ada Lovelace"
        );
    }

    #[test]
    fn empty_and_blank_names_are_rejected() {
        assert!(FullName::parse("").is_err());
        assert!(FullName::parse("   ").is_err());
    }

    #[test]
    fn the_limit_counts_characters_not_bytes() {
        assert!(FullName::parse(&"é".repeat(200)).is_ok());
        assert!(FullName::parse(&"é".repeat(201)).is_err());
    }

    #[test]
    fn control_characters_are_rejected() {
        assert!(FullName::parse("Ada\u{0}").is_err());
    }
}
