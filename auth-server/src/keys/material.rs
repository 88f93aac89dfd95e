//! Key material: a private key as stored (PKCS#8 DER) and as used (parsed, ready to sign).

use std::fmt;

use aws_lc_rs::signature::{KeyPair, RsaKeyPair};
use rsa::pkcs8::{EncodePrivateKey, LineEnding, SecretDocument, der::zeroize::Zeroizing};

use super::Jwk;

/// A private key in PKCS#8 DER, zeroed when dropped, with the kid of its public half.
#[derive(Clone)]
pub struct PrivateKey {
    kid: String,
    der: SecretDocument,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// Generates an RSA key of `bits`. Slow (a prime search): call it off the async threads.
    pub fn generate(bits: usize) -> anyhow::Result<Self> {
        let mut rng = getrandom::SysRng;
        let private = rsa::PrivateKey::new(&mut rng, bits)?;
        let der = private
            .to_pkcs8_der()
            .map_err(|e| anyhow::anyhow!("cannot encode key: {e}"))?;
        Self::from_der(der)
    }

    /// Wraps PKCS#8 DER after checking that it is an RSA key aws-lc can sign with.
    pub fn from_der(der: SecretDocument) -> anyhow::Result<Self> {
        let kid = SigningKey::from_pkcs8(der.as_bytes())?.kid;
        Ok(Self { kid, der })
    }

    /// Parses a PKCS#8 PEM document (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pem(pem: &str) -> anyhow::Result<Self> {
        let (_, der) =
            SecretDocument::from_pem(pem).map_err(|e| anyhow::anyhow!("bad PEM: {e}"))?;
        Self::from_der(der)
    }

    /// The kid (RFC 7638 thumbprint of the public key).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The DER bytes. Secret: never log them.
    pub fn der(&self) -> &[u8] {
        self.der.as_bytes()
    }

    /// The key as PKCS#8 PEM.
    pub fn to_pem(&self) -> anyhow::Result<Zeroizing<String>> {
        self.der
            .to_pem("PRIVATE KEY", LineEnding::LF)
            .map_err(|e| anyhow::anyhow!("cannot encode key: {e}"))
    }

    /// The parsed key, ready to sign. Parsing an RSA key costs a little CPU: call it off
    /// the async threads.
    pub fn signing_key(&self) -> anyhow::Result<SigningKey> {
        SigningKey::from_pkcs8(self.der.as_bytes())
    }
}

/// A parsed private key, ready to sign, with its public half.
pub struct SigningKey {
    /// RFC 7638 thumbprint.
    pub kid: String,
    /// The public key as published.
    pub jwk: Jwk,
    /// Verifies tokens this key signed.
    pub decoding: jsonwebtoken::DecodingKey,
    pair: RsaKeyPair,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    pub(super) fn from_pkcs8(der: &[u8]) -> anyhow::Result<Self> {
        let pair = RsaKeyPair::from_pkcs8(der)
            .map_err(|e| anyhow::anyhow!("not an RSA PKCS#8 private key: {e}"))?;
        let public = pair.public_key();
        let n = public.modulus().big_endian_without_leading_zero().to_vec();
        let e = public.exponent().big_endian_without_leading_zero().to_vec();
        let jwk = Jwk::rsa(&n, &e);
        let decoding = jsonwebtoken::DecodingKey::from_rsa_components(&jwk.n, &jwk.e)?;
        Ok(Self {
            kid: jwk.kid.clone(),
            jwk,
            decoding,
            pair,
        })
    }

    /// The modulus size in bits.
    pub fn bits(&self) -> usize {
        self.pair.public_modulus_len() * 8
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 (RS256) over `message`. The key pair is parsed once
    /// at load time, which is most of what a signature costs besides the RSA operation.
    pub fn sign_rs256(&self, message: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut signature = vec![0; self.pair.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.pair
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &rng,
                message,
                &mut signature,
            )
            .map_err(|_| anyhow::anyhow!("RSA signing failed"))?;
        Ok(signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_survives_pem_and_debug_shows_no_material() {
        let key = PrivateKey::generate(2048).unwrap();
        let pem = key.to_pem().unwrap();
        let again = PrivateKey::from_pem(&pem).unwrap();
        assert_eq!(again.kid(), key.kid());
        assert_eq!(again.der(), key.der());
        let shown = format!("{key:?} {:?}", key.signing_key().unwrap());
        assert!(shown.contains(key.kid()));
        assert!(!shown.contains("PRIVATE"), "{shown}");
    }
}
