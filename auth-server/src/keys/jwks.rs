use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One public key as RFC 7517 describes it, restricted to what RS256 needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, poem_openapi::Object)]
pub struct Jwk {
    /// Key type, always `RSA`.
    pub kty: String,
    /// Intended use, always `sig`.
    #[serde(rename = "use")]
    #[oai(rename = "use")]
    pub use_: String,
    /// The only algorithm this key may be used with.
    pub alg: String,
    /// Key id: the RFC 7638 thumbprint of the key.
    pub kid: String,
    /// Modulus, base64url without padding.
    pub n: String,
    /// Public exponent, base64url without padding.
    pub e: String,
}

/// RFC 7517 §5 key set.
#[derive(Debug, Clone, Serialize, Deserialize, poem_openapi::Object)]
pub struct JwkSet {
    /// The keys, active one first.
    pub keys: Vec<Jwk>,
}

impl Jwk {
    /// Builds the JWK of an RSA public key from its big-endian modulus and exponent.
    pub fn rsa(n: &[u8], e: &[u8]) -> Self {
        let n = URL_SAFE_NO_PAD.encode(strip_leading_zeros(n));
        let e = URL_SAFE_NO_PAD.encode(strip_leading_zeros(e));
        Self {
            kty: "RSA".into(),
            use_: "sig".into(),
            alg: "RS256".into(),
            kid: thumbprint(&n, &e),
            n,
            e,
        }
    }
}

/// RFC 7638 §3 thumbprint of an RSA key: SHA-256 over the required members in
/// lexicographic order with no whitespace, base64url-encoded. Being derived from the key
/// itself, the kid survives restarts and is the same on every replica.
pub fn thumbprint(n_b64: &str, e_b64: &str) -> String {
    let canonical = format!(r#"{{"e":"{e_b64}","kty":"RSA","n":"{n_b64}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7638 §3.1 example key and its published thumbprint.
    const N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
    const E: &str = "AQAB";

    #[test]
    fn thumbprint_matches_rfc_7638_example() {
        assert_eq!(
            thumbprint(N, E),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn leading_zeros_are_not_encoded() {
        let jwk = Jwk::rsa(&[0, 0, 1, 2], &[0, 1, 0, 1]);
        assert_eq!(jwk.n, URL_SAFE_NO_PAD.encode([1, 2]));
        assert_eq!(jwk.e, "AQAB");
        assert_eq!(jwk.alg, "RS256");
    }
}
