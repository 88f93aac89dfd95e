use serde::{Deserialize, Serialize};

/// The OpenID Connect `prompt` parameter (Core §3.1.2.1): what the user must (not) be shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// `none`: no page may be shown; fail with `login_required` / `consent_required`.
    pub none: bool,
    /// `login`: the password must be entered again, even with a session.
    pub login: bool,
    /// `consent`: ask for consent again, even if it was given before.
    pub consent: bool,
}

/// The values `prompt` may carry here (`select_account` needs accounts to choose from).
pub const PROMPT_VALUES: [&str; 3] = ["none", "login", "consent"];

impl Prompt {
    /// Parses a space-separated `prompt`. Unknown or repeated values, and `none` with any
    /// other value, are refused (`invalid_request`).
    pub fn parse(raw: Option<&str>) -> Result<Self, String> {
        let mut prompt = Self::default();
        let Some(raw) = raw else {
            return Ok(prompt);
        };
        let mut count = 0;
        for value in raw.split(' ').filter(|v| !v.is_empty()) {
            count += 1;
            let seen = match value {
                "none" => std::mem::replace(&mut prompt.none, true),
                "login" => std::mem::replace(&mut prompt.login, true),
                "consent" => std::mem::replace(&mut prompt.consent, true),
                _ => {
                    return Err(format!(
                        "prompt value `{}` is not supported",
                        truncate(value)
                    ));
                }
            };
            if seen {
                return Err(format!("prompt value `{value}` is repeated"));
            }
        }
        if prompt.none && count > 1 {
            return Err("prompt=none cannot be combined with other values".into());
        }
        Ok(prompt)
    }
}

/// Parses OpenID Connect `max_age`: a non-negative whole number of seconds.
pub fn parse_max_age(raw: Option<&str>) -> Result<Option<u64>, String> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    if raw.is_empty() || raw.len() > 20 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err("max_age must be a non-negative whole number of seconds".into());
    }
    // Anything beyond ten years means "no limit in practice"; keep sums representable.
    Ok(Some(
        raw.parse::<u64>().unwrap_or(u64::MAX).min(315_360_000),
    ))
}

fn truncate(value: &str) -> String {
    value.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_parse_in_any_order() {
        let p = Prompt::parse(Some("consent login")).unwrap();
        assert!(p.login && p.consent && !p.none);
        assert_eq!(Prompt::parse(None).unwrap(), Prompt::default());
        assert!(Prompt::parse(Some("none")).unwrap().none);
    }

    #[test]
    fn unknown_repeated_and_combined_none_are_refused() {
        for bad in [
            "select_account",
            "login login",
            "none login",
            "consent none",
            "LOGIN",
        ] {
            assert!(Prompt::parse(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn max_age_is_a_non_negative_integer() {
        assert_eq!(parse_max_age(Some("0")).unwrap(), Some(0));
        assert_eq!(parse_max_age(Some("3600")).unwrap(), Some(3600));
        assert_eq!(parse_max_age(None).unwrap(), None);
        for bad in ["-1", "1.5", "abc", "", " 1", "+1"] {
            assert!(parse_max_age(Some(bad)).is_err(), "{bad}");
        }
        assert_eq!(
            parse_max_age(Some("99999999999999999999")).unwrap(),
            Some(315_360_000)
        );
    }
}
