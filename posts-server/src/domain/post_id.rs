//! The identifier of a post.

use std::fmt;

use uuid::Uuid;

/// A post id: a UUID, minted as version 7 so that ids of posts created in the same
/// microsecond still sort roughly by creation. Rendered in the hyphenated lower-case form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PostId(Uuid);

impl PostId {
    /// A fresh id for a new post.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// Parses an id from a path segment or a stored value; `None` for anything that is not
    /// a UUID, which the API answers with 404 like an unknown id.
    pub fn parse(raw: &str) -> Option<Self> {
        // Only the canonical 36-character form: one spelling per post, one row per spelling.
        if raw.len() != 36 {
            return None;
        }
        Uuid::try_parse(raw).ok().map(Self)
    }
}

impl Default for PostId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for PostId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_id_round_trips_through_its_text_form() {
        let id = PostId::new();
        assert_eq!(PostId::parse(&id.to_string()), Some(id));
    }

    #[test]
    fn upper_case_ids_name_the_same_post() {
        let id = PostId::new();
        assert_eq!(PostId::parse(&id.to_string().to_uppercase()), Some(id));
    }

    #[test]
    fn malformed_ids_are_refused() {
        for raw in [
            "",
            "1",
            "not-a-uuid",
            "../../etc/passwd",
            "{00000000-0000-0000-0000-000000000000}",
        ] {
            assert_eq!(PostId::parse(raw), None, "{raw}");
        }
        let simple = "0192f0c1a2b37c3d8e4f5a6b7c8d9e0f";
        assert_eq!(PostId::parse(simple), None);
    }
}
