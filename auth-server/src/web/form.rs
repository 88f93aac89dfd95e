//! Request parameters of the browser side, kept as the ordered list they arrived as, so
//! that a repeated parameter is seen (RFC 6749 §3.1: none may appear twice) instead of
//! silently collapsing into one.

use poem::{Request, http::header};

/// The parameters of a query string or a form body.
#[derive(Debug, Default, Clone)]
pub struct Params {
    pairs: Vec<(String, String)>,
    /// The first parameter whose percent-encoding is not UTF-8.
    not_utf8: Option<String>,
}

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

    /// `application/x-www-form-urlencoded` parsing that, unlike `url::form_urlencoded`,
    /// does not replace bytes that are not UTF-8: a value must come back exactly as sent
    /// (`state`), or be refused.
    fn parse(raw: &[u8]) -> Self {
        let mut params = Self::default();
        for pair in raw.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (key, value) = match pair.iter().position(|b| *b == b'=') {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, &b""[..]),
            };
            let (key, key_ok) = decode(key);
            let (value, value_ok) = decode(value);
            if !(key_ok && value_ok) && params.not_utf8.is_none() {
                params.not_utf8 = Some(key.clone());
            }
            params.pairs.push((key, value));
        }
        params
    }

    /// The first parameter whose value (or name) is not UTF-8, if any.
    pub fn not_utf8(&self) -> Option<&str> {
        self.not_utf8.as_deref()
    }

    /// The value of `name`; an empty value counts as absent (RFC 6749 §3.1).
    pub fn one(&self, name: &str) -> Result<Option<&str>, Repeated> {
        let mut values = self.pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
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
        let mut seen = std::collections::HashSet::with_capacity(self.pairs.len());
        self.pairs
            .iter()
            .find(|(k, _)| !seen.insert(k.as_str()))
            .map(|(k, _)| k.as_str())
    }
}

/// `+` is a space, then percent-decoding; `false` when the result is not UTF-8 (it is then
/// decoded lossily, for messages only).
fn decode(raw: &[u8]) -> (String, bool) {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    let bytes: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
    match String::from_utf8(bytes) {
        Ok(s) => (s, true),
        Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), false),
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

    #[test]
    fn values_that_are_not_utf8_are_reported_not_replaced() {
        let p = Params::parse(b"client_id=x&state=ab%FFcd");
        assert_eq!(p.not_utf8(), Some("state"));
        assert_eq!(
            Params::parse("state=%C3%A9t%C3%A9".as_bytes()).not_utf8(),
            None
        );
        assert_eq!(
            Params::parse(b"state=%C3%A9").one("state"),
            Ok(Some("\u{e9}"))
        );
    }
}
