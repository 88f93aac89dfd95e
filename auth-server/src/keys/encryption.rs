//! AES-256-GCM for private keys at rest in the database (`AUTH_KEYS_ENCRYPTION_KEY`).
//!
//! A sealed key is `nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes)`, with the kid as
//! associated data: a ciphertext copied onto another key's row does not open, so a row
//! cannot be made to sign under a kid that is not its own.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::{Engine, engine::general_purpose::STANDARD};

/// The key that encrypts private keys in the database. Its `Debug` shows nothing.
pub struct EncryptionKey(RandomizedNonceKey);

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionKey(<redacted>)")
    }
}

/// Why a sealed key did not open.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot decrypt the private key of {kid}: AUTH_KEYS_ENCRYPTION_KEY is not the key it \
     was encrypted with, or the row is corrupted"
)]
pub struct OpenError {
    /// The key whose row did not open.
    pub kid: String,
}

impl EncryptionKey {
    /// Parses 32 bytes in standard base64 (RFC 4648 §4, `openssl rand -base64 32`). The
    /// error never repeats the value: a mistyped secret is still a secret.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bytes = STANDARD.decode(text.trim()).map_err(|_| {
            "AUTH_KEYS_ENCRYPTION_KEY is not standard base64 (RFC 4648 §4); \
             generate one with `openssl rand -base64 32`"
                .to_owned()
        })?;
        if bytes.len() != 32 {
            return Err(format!(
                "AUTH_KEYS_ENCRYPTION_KEY must be 32 bytes, it decodes to {}; \
                 generate one with `openssl rand -base64 32`",
                bytes.len()
            ));
        }
        RandomizedNonceKey::new(&AES_256_GCM, &bytes)
            .map(Self)
            .map_err(|_| "AUTH_KEYS_ENCRYPTION_KEY is not a usable AES-256 key".to_owned())
    }

    /// Encrypts `plaintext` under a fresh random nonce, bound to `kid`.
    pub fn seal(&self, kid: &str, plaintext: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut in_out = plaintext.to_vec();
        let nonce = self
            .0
            .seal_in_place_append_tag(Aad::from(kid.as_bytes()), &mut in_out)
            .map_err(|_| anyhow::anyhow!("AES-GCM encryption failed"))?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + in_out.len());
        sealed.extend_from_slice(nonce.as_ref());
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    /// Decrypts what [`Self::seal`] produced for `kid`.
    pub fn open(&self, kid: &str, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        let fail = || OpenError {
            kid: kid.to_owned(),
        };
        if sealed.len() < NONCE_LEN {
            return Err(fail());
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| fail())?;
        let mut in_out = ciphertext.to_vec();
        let plaintext_len = self
            .0
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut in_out)
            .map_err(|_| fail())?
            .len();
        in_out.truncate(plaintext_len);
        Ok(in_out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    #[test]
    fn a_sealed_key_opens_only_under_its_kid_and_key() {
        let key = EncryptionKey::parse(KEY).unwrap();
        let sealed = key.seal("kid-a", b"secret der").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(key.open("kid-a", &sealed).unwrap(), b"secret der");
        assert!(key.open("kid-b", &sealed).is_err(), "the kid is bound");
        let other = EncryptionKey::parse(&STANDARD.encode([7u8; 32])).unwrap();
        assert!(other.open("kid-a", &sealed).is_err(), "another key fails");
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(key.open("kid-a", &tampered).is_err());
        assert!(key.open("kid-a", &sealed[..5]).is_err());
    }

    #[test]
    fn two_seals_of_one_key_differ() {
        let key = EncryptionKey::parse(KEY).unwrap();
        assert_ne!(key.seal("k", b"x").unwrap(), key.seal("k", b"x").unwrap());
    }

    #[test]
    fn malformed_keys_are_refused_without_repeating_them() {
        for bad in [
            "not base64!!",
            "c2hvcnQ=",
            "",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY",
        ] {
            let err = EncryptionKey::parse(bad).unwrap_err();
            assert!(err.contains("openssl rand -base64 32"), "{err}");
            assert!(bad.is_empty() || !err.contains(bad), "{err}");
        }
        assert_eq!(
            format!("{:?}", EncryptionKey::parse(KEY).unwrap()),
            "EncryptionKey(<redacted>)"
        );
    }
}
