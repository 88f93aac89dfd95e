//! The one hash the server stores instead of a value: lower-case hex SHA-256.
//!
//! Right for high-entropy secrets (refresh tokens, client secrets), where a slow password
//! hash would only cap throughput, and for keys that must have a fixed size.

use sha2::{Digest, Sha256};

/// Lower-case hex SHA-256 of `bytes` (64 characters).
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_the_fips_180_example() {
        assert_eq!(
            super::sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
