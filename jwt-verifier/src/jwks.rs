//! Reading key sets: fetching a JWKS document (RFC 7517) or reading a file (a JWKS or a
//! single PEM public key), within a size limit, and the HTTP caching headers that say how
//! long a fetched set stays fresh.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, StatusCode, header};
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use url::Url;

/// Verification keys by kid.
pub(crate) type KeyMap = HashMap<String, Arc<DecodingKey>>;

/// A key set larger than this is refused: a real one holds a handful of keys.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// RSA keys shorter than this are skipped (RFC 7518 §3.3 requires 2048 bits).
const MIN_RSA_BITS: usize = 2048;

/// Why the key set could not be (re)loaded, or the cache not be built.
///
/// The HTTP client's own errors are kept as [`std::error::Error::source`] only, so that the
/// client library is not part of this crate's API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// Network failure or timeout.
    #[error("cannot fetch the key set")]
    Fetch(#[source] BoxError),
    /// The HTTP client for the key set cannot be built (no TLS roots, say).
    #[error("cannot build the HTTP client for the key set")]
    Client(#[source] BoxError),
    /// The endpoint answered with an error status.
    #[error("the key set endpoint answered {0}")]
    Status(StatusCode),
    /// Larger than [`MAX_JWKS_BYTES`].
    #[error("the key set is larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    /// The key file cannot be read.
    #[error("cannot read the key file {path}")]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Not a JWKS document.
    #[error("the key set is not a JWKS document")]
    Json(#[from] serde_json::Error),
    /// A PEM file that is not a usable RSA public key.
    #[error("the PEM file is not a usable RSA public key: {0}")]
    Pem(String),
    /// Not one key is an RSA signing key for RS256 with a kid.
    #[error("the key set holds no usable RS256 signing key")]
    NoUsableKeys,
}

/// A boxed error source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The usable keys of a JWKS document (RFC 7517), by kid. Keys that are not RSA signing
/// keys for RS256, lack a kid, or are shorter than 2048 bits are skipped, not fatal: the
/// set may legitimately carry keys for other consumers.
pub(crate) fn parse_jwks(bytes: &[u8]) -> Result<KeyMap, JwksError> {
    #[derive(Deserialize)]
    struct RawSet {
        keys: Vec<serde_json::Value>,
    }
    let raw: RawSet = serde_json::from_slice(bytes)?;
    let mut keys = HashMap::new();
    for value in raw.keys {
        match usable_key(&value) {
            Ok((kid, key)) => match keys.entry(kid) {
                Entry::Occupied(entry) => tracing::warn!(
                    kid = entry.key(),
                    "the key set repeats a kid; keeping the first key"
                ),
                Entry::Vacant(entry) => {
                    entry.insert(Arc::new(key));
                }
            },
            Err(reason) => tracing::debug!(reason, "skipping a key of the key set"),
        }
    }
    if keys.is_empty() {
        return Err(JwksError::NoUsableKeys);
    }
    Ok(keys)
}

fn usable_key(value: &serde_json::Value) -> Result<(String, DecodingKey), &'static str> {
    let field = |name: &str| value.get(name).and_then(serde_json::Value::as_str);
    if field("kty") != Some("RSA") {
        return Err("not an RSA key");
    }
    if value.get("use").is_some() && field("use") != Some("sig") {
        return Err("not a signing key");
    }
    if value.get("alg").is_some() && field("alg") != Some("RS256") {
        return Err("not an RS256 key");
    }
    let kid = field("kid").filter(|kid| !kid.is_empty()).ok_or("no kid")?;
    let (n, e) = field("n").zip(field("e")).ok_or("no modulus or exponent")?;
    rsa_key(n, e).map(|key| (kid.to_owned(), key))
}

fn rsa_key(n: &str, e: &str) -> Result<DecodingKey, &'static str> {
    let modulus = URL_SAFE_NO_PAD
        .decode(n)
        .map_err(|_| "modulus is not base64url")?;
    let significant = modulus.iter().skip_while(|b| **b == 0).count();
    if significant * 8 < MIN_RSA_BITS {
        return Err("RSA key shorter than 2048 bits");
    }
    DecodingKey::from_rsa_components(n, e).map_err(|_| "unusable RSA components")
}

/// A single RSA public key in PEM (`PUBLIC KEY` or `RSA PUBLIC KEY`). Its kid is its RFC 7638
/// SHA-256 thumbprint, which is how the auth server names its keys.
pub(crate) fn parse_pem(bytes: &[u8]) -> Result<KeyMap, JwksError> {
    let text = std::str::from_utf8(bytes).map_err(|_| JwksError::Pem("not UTF-8".to_owned()))?;
    if !text.contains("-----BEGIN PUBLIC KEY-----")
        && !text.contains("-----BEGIN RSA PUBLIC KEY-----")
    {
        return Err(JwksError::Pem(
            "expected a PUBLIC KEY or RSA PUBLIC KEY block".to_owned(),
        ));
    }
    let pem_key = DecodingKey::from_rsa_pem(bytes).map_err(|e| JwksError::Pem(e.to_string()))?;
    let jwk = Jwk::from_decoding_key(&pem_key, Some(Algorithm::RS256))
        .map_err(|e| JwksError::Pem(e.to_string()))?;
    let kid = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|e| JwksError::Pem(e.to_string()))?;
    let AlgorithmParameters::RSA(params) = &jwk.algorithm else {
        return Err(JwksError::Pem("not an RSA key".to_owned()));
    };
    let key = rsa_key(&params.n, &params.e).map_err(|reason| JwksError::Pem(reason.to_owned()))?;
    Ok(HashMap::from([(kid, Arc::new(key))]))
}

/// `Cache-Control: max-age` minus `Age` (RFC 9111 §4.2.3); `no-store`/`no-cache` count as 0.
pub(crate) fn cache_max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut max_age = None;
    for value in headers.get_all(header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',').map(str::trim) {
            let lower = directive.to_ascii_lowercase();
            if lower == "no-store" || lower == "no-cache" {
                return Some(Duration::ZERO);
            }
            if let Some(seconds) = lower.strip_prefix("max-age=") {
                max_age = seconds.trim_matches('"').parse::<u64>().ok();
            }
        }
    }
    let age = headers
        .get(header::AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    max_age.map(|seconds| Duration::from_secs(seconds.saturating_sub(age)))
}

fn fetch_error(error: reqwest::Error) -> JwksError {
    JwksError::Fetch(error.into())
}

pub(crate) async fn fetch_remote(
    client: &reqwest::Client,
    url: &Url,
) -> Result<(KeyMap, Option<Duration>), JwksError> {
    let mut response = client
        .get(url.clone())
        .header(header::ACCEPT, "application/jwk-set+json, application/json")
        .send()
        .await
        .map_err(fetch_error)?;
    if !response.status().is_success() {
        return Err(JwksError::Status(response.status()));
    }
    if response
        .content_length()
        .is_some_and(|len| len > MAX_JWKS_BYTES as u64)
    {
        return Err(JwksError::TooLarge);
    }
    let max_age = cache_max_age(response.headers());
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(fetch_error)? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(JwksError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok((parse_jwks(&body)?, max_age))
}

pub(crate) async fn read_file(path: &Path) -> Result<KeyMap, JwksError> {
    let file_error = |source| JwksError::File {
        path: path.to_owned(),
        source,
    };
    let metadata = tokio::fs::metadata(path).await.map_err(file_error)?;
    if metadata.len() > MAX_JWKS_BYTES as u64 {
        return Err(JwksError::TooLarge);
    }
    let bytes = tokio::fs::read(path).await.map_err(file_error)?;
    if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        parse_pem(&bytes)
    } else {
        parse_jwks(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name.clone(), HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        let h = headers(&[(header::CACHE_CONTROL, "public, max-age=300")]);
        assert_eq!(cache_max_age(&h), Some(Duration::from_secs(300)));
    }

    #[test]
    fn age_is_subtracted_from_max_age() {
        let h = headers(&[(header::CACHE_CONTROL, "max-age=300"), (header::AGE, "100")]);
        assert_eq!(cache_max_age(&h), Some(Duration::from_secs(200)));
    }

    #[test]
    fn no_store_means_refresh_as_soon_as_allowed() {
        let h = headers(&[(header::CACHE_CONTROL, "no-store")]);
        assert_eq!(cache_max_age(&h), Some(Duration::ZERO));
    }

    #[test]
    fn no_cache_control_means_the_default_interval() {
        assert_eq!(cache_max_age(&HeaderMap::new()), None);
        let h = headers(&[(header::CACHE_CONTROL, "max-age=soon")]);
        assert_eq!(cache_max_age(&h), None);
    }

    #[test]
    fn a_key_set_without_usable_keys_is_refused() {
        let doc = br#"{"keys":[{"kty":"EC","kid":"a","crv":"P-256","x":"x","y":"y"},
                       {"kty":"RSA","kid":"b","use":"enc","n":"AQAB","e":"AQAB"},
                       {"kty":"oct","kid":"c","k":"c2VjcmV0"}]}"#;
        assert!(matches!(parse_jwks(doc), Err(JwksError::NoUsableKeys)));
    }

    #[test]
    fn short_rsa_keys_are_skipped() {
        let n = URL_SAFE_NO_PAD.encode([0xC5u8; 128]);
        let doc = format!(r#"{{"keys":[{{"kty":"RSA","kid":"k","n":"{n}","e":"AQAB"}}]}}"#);
        assert!(matches!(
            parse_jwks(doc.as_bytes()),
            Err(JwksError::NoUsableKeys)
        ));
    }

    #[test]
    fn rsa_signing_keys_are_kept_by_kid() {
        let n = URL_SAFE_NO_PAD.encode([0xC5u8; 256]);
        let doc = format!(
            r#"{{"keys":[{{"kty":"RSA","kid":"k1","use":"sig","alg":"RS256","n":"{n}","e":"AQAB"}},
                        {{"kty":"RSA","kid":"k2","alg":"RS512","n":"{n}","e":"AQAB"}},
                        {{"kty":"RSA","n":"{n}","e":"AQAB"}}]}}"#
        );
        let keys = parse_jwks(doc.as_bytes()).unwrap();
        assert_eq!(keys.keys().collect::<Vec<_>>(), ["k1"]);
    }

    #[test]
    fn a_document_that_is_not_a_key_set_is_refused() {
        assert!(matches!(parse_jwks(b"[]"), Err(JwksError::Json(_))));
        assert!(matches!(parse_jwks(b"<html>"), Err(JwksError::Json(_))));
    }

    #[test]
    fn a_pem_private_key_is_refused() {
        let pem = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(matches!(parse_pem(pem), Err(JwksError::Pem(_))));
    }
}
