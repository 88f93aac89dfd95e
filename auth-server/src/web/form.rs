//! Request parameters of the browser side, kept as the ordered list they arrived as, so
//! that a repeated parameter is seen (RFC 6749 §3.1: none may appear twice) instead of
//! silently collapsing into one.

use poem::{Request, http::header};

/// The parameters of a query string or a form body.
#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

/// A parameter given more than once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repeated(pub String);

impl Params {
    /// The parameters of the request's query string.
    pub fn from_query(req: &Request) -> Self {
        Self::parse(req.uri().query().unwrap_or_default().as_bytes())
    }

    /// The parameters of an `application/x-www-form-urlencoded` body; `None` when the body
    /// has another content type.
    pub fn from_form(req: &Request, body: &[u8]) -> Option<Self> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        essence
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            .then(|| Self::parse(body))
    }

    fn parse(raw: &[u8]) -> Self {
        Self(
            url::form_urlencoded::parse(raw)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The value of `name`; an empty value counts as absent (RFC 6749 §3.1).
    pub fn one(&self, name: &str) -> Result<Option<&str>, Repeated> {
        let mut values = self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        let first = values.next();
        if values.next().is_some() {
            return Err(Repeated(name.to_owned()));
        }
        Ok(first.map(String::as_str).filter(|v| !v.is_empty()))
    }

    /// The value of `name`, with a repeated parameter treated as absent (for the fields of
    /// our own forms, where the form, not a client, is at fault).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.one(name).ok().flatten()
    }

    /// The first parameter that appears more than once, if any.
    pub fn first_repeated(&self) -> Option<&str> {
        self.0.iter().enumerate().find_map(|(i, (k, _))| {
            self.0[..i]
                .iter()
                .any(|(seen, _)| seen == k)
                .then_some(k.as_str())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_decoded_and_empty_ones_are_absent() {
        let p = Params::parse(b"a=1&b=x%20y&c=&d+e=f+g");
        assert_eq!(p.one("a"), Ok(Some("1")));
        assert_eq!(p.one("b"), Ok(Some("x y")));
        assert_eq!(p.one("c"), Ok(None));
        assert_eq!(p.one("d e"), Ok(Some("f g")));
        assert_eq!(p.one("zzz"), Ok(None));
    }

    #[test]
    fn repeated_parameters_are_reported() {
        let p = Params::parse(b"a=1&b=2&a=3");
        assert_eq!(p.one("a"), Err(Repeated("a".into())));
        assert_eq!(p.get("a"), None);
        assert_eq!(p.first_repeated(), Some("a"));
        assert_eq!(Params::parse(b"a=1&b=2").first_repeated(), None);
    }
}
