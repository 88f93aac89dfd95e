//! Random secrets, and the one hash the server stores instead of them: lower-case hex
//! SHA-256.
//!
//! Right for high-entropy secrets (refresh tokens, codes, session ids, client secrets),
//! where a slow password hash would only cap throughput, and for keys that must have a
//! fixed size.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

/// Lower-case hex SHA-256 of `bytes` (64 characters).
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// 256 random bits from the operating system, base64url without padding (43 characters).
pub fn random_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether `s` has the shape of a [`random_token`] (43 base64url characters): anything
/// else presented as one of ours (a cookie, a request id) is not worth a lookup.
pub fn is_token(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

    #[test]
    fn matches_the_fips_180_example() {
        assert_eq!(
            super::sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn random_tokens_carry_256_bits_and_differ() {
        let a = super::random_token().unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert_ne!(a, super::random_token().unwrap());
        assert!(super::is_token(&a));
        assert!(!super::is_token(&format!("{}'", &a[..42])));
        assert!(!super::is_token(""));
    }
}
