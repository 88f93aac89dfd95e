use std::fmt;

/// A syntactically valid e-mail address, lower-cased so that comparison and the unique
/// index are case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

/// RFC 5321 §4.5.3.1.3: a path is at most 256 octets including the angle brackets.
const MAX_LEN: usize = 254;

impl Email {
    /// Parses and normalises an address, or says why it is not one.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("email must not be empty".into());
        }
        if trimmed.len() > MAX_LEN {
            return Err(format!("email must be at most {MAX_LEN} characters"));
        }
        let lowered = trimmed.to_lowercase();
        let parsed: email_address::EmailAddress = lowered
            .parse()
            .map_err(|_| "email is not a valid e-mail address".to_string())?;
        // The crate accepts display-name forms and bare hosts; we want an addr-spec whose
        // domain has a dot, which is what every deliverable address has.
        if parsed.as_str() != lowered || !parsed.domain().contains('.') {
            return Err("email is not a valid e-mail address".into());
        }
        if lowered.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err("email is not a valid e-mail address".into());
        }
        Ok(Self(lowered))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn a_valid_address_is_lower_cased() {
        assert_eq!(
            Email::parse(" Alice@Example.COM ").unwrap().as_str(),
            "alice@example.com"
        );
    }

    #[test]
    fn addresses_without_at_or_domain_dot_are_rejected() {
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "alice@localhost",
            "a b@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn display_name_forms_are_rejected() {
        assert!(Email::parse("Alice <alice@example.com>").is_err());
    }

    #[test]
    fn overlong_addresses_are_rejected() {
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }
}
