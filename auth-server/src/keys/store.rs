use std::{
    collections::HashMap,
    fmt, fs,
    io::Write,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::Duration,
};

use aws_lc_rs::signature::{KeyPair, RsaKeyPair};
use chrono::Utc;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};

use super::{
    Jwk, JwkSet, KeyMeta,
    lifecycle::{is_published, pick_active},
};

/// Resource servers accept tokens this much past `exp` (posts-server defaults to 30 s);
/// a retired key stays published at least this long after its last token expires.
const PUBLICATION_MARGIN: Duration = Duration::from_secs(60);

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
    fn from_pkcs8(der: &[u8]) -> anyhow::Result<Self> {
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

/// The keys directory: `<kid>.pem` (PKCS#8, mode 0600) and `<kid>.json` (metadata).
#[derive(Debug, Clone)]
pub struct KeyFiles {
    dir: PathBuf,
    bits: usize,
}

impl KeyFiles {
    /// The directory and the size of keys generated in it.
    pub fn new(dir: impl Into<PathBuf>, bits: usize) -> Self {
        Self {
            dir: dir.into(),
            bits,
        }
    }

    /// Every key's metadata, oldest first. Unreadable entries are skipped with a warning so
    /// that one bad file cannot take the server down.
    pub fn list(&self) -> anyhow::Result<Vec<KeyMeta>> {
        let mut metas = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(metas),
            Err(e) => return Err(anyhow::anyhow!("cannot read {}: {e}", self.dir.display())),
        };
        for entry in entries {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            match fs::read(&path)
                .map_err(anyhow::Error::from)
                .and_then(|raw| {
                    serde_json::from_slice::<KeyMeta>(&raw).map_err(anyhow::Error::from)
                }) {
                Ok(meta) => metas.push(meta),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "skipping unreadable key metadata")
                }
            }
        }
        metas.sort_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)));
        Ok(metas)
    }

    /// Loads the private key of `meta`, checking that it is the key the metadata names.
    pub fn load(&self, meta: &KeyMeta) -> anyhow::Result<SigningKey> {
        let pem = fs::read_to_string(self.pem_path(&meta.kid))?;
        let (_, doc) = rsa::pkcs8::SecretDocument::from_pem(&pem)
            .map_err(|e| anyhow::anyhow!("bad PEM: {e}"))?;
        let key = SigningKey::from_pkcs8(doc.as_bytes())?;
        anyhow::ensure!(key.kid == meta.kid, "key file does not match its kid");
        Ok(key)
    }

    /// Generates a new key, writes it (private key mode 0600) and returns its metadata.
    /// Slow (RSA prime search): call it off the async threads.
    pub fn generate(&self) -> anyhow::Result<KeyMeta> {
        create_private_dir(&self.dir)?;
        let mut rng = getrandom::SysRng;
        let private = rsa::PrivateKey::new(&mut rng, self.bits)?;
        let pem = private
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| anyhow::anyhow!("cannot encode key: {e}"))?;
        let der = private
            .to_pkcs8_der()
            .map_err(|e| anyhow::anyhow!("cannot encode key: {e}"))?;
        let key = SigningKey::from_pkcs8(der.as_bytes())?;
        let meta = KeyMeta {
            kid: key.kid.clone(),
            created_at: Utc::now(),
            retired_at: None,
        };
        write_atomically(&self.pem_path(&meta.kid), pem.as_bytes(), 0o600)?;
        self.save(&meta)?;
        tracing::info!(kid = %meta.kid, bits = self.bits, "generated a signing key");
        Ok(meta)
    }

    /// Makes a new key active and retires every other unretired key. Returns the new key.
    ///
    /// A lock file keeps two rotations (the CLI, or several replicas rotating on schedule)
    /// from retiring each other's new keys; a lock older than a minute is a crashed
    /// rotation's and is taken over.
    pub fn rotate(&self) -> anyhow::Result<KeyMeta> {
        create_private_dir(&self.dir)?;
        let _lock = RotationLock::acquire(&self.dir)?;
        let new = self.generate()?;
        let now = Utc::now();
        for mut old in self.list()? {
            if old.kid != new.kid && old.retired_at.is_none() {
                old.retired_at = Some(now);
                self.save(&old)?;
                tracing::info!(kid = %old.kid, "retired a signing key");
            }
        }
        Ok(new)
    }

    fn save(&self, meta: &KeyMeta) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(meta)?;
        write_atomically(&self.dir.join(format!("{}.json", meta.kid)), &json, 0o644)
    }

    fn pem_path(&self, kid: &str) -> PathBuf {
        self.dir.join(format!("{kid}.pem"))
    }
}

/// Held while a rotation runs; removed on drop.
struct RotationLock(PathBuf);

impl RotationLock {
    fn acquire(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(".rotate.lock");
        for _ in 0..2 {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(_) => return Ok(Self(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let stale = fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .map(|t| {
                            t.elapsed().unwrap_or_default() > std::time::Duration::from_secs(60)
                        })
                        .unwrap_or(true);
                    anyhow::ensure!(stale, "another key rotation is in progress");
                    let _ = fs::remove_file(&path);
                }
                Err(e) => return Err(e.into()),
            }
        }
        anyhow::bail!("could not take the rotation lock")
    }
}

impl Drop for RotationLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        }
    }
    Ok(())
}

/// Writes via a temporary file and a rename, so a reader (another replica) never sees a
/// half-written key, and the mode is set before any secret byte is written.
fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    Ok(())
}

/// The loaded keys of a running server: the active signer and every published key.
struct Loaded {
    active: Arc<SigningKey>,
    published: HashMap<String, Arc<SigningKey>>,
    jwks: JwkSet,
}

/// The keys in memory, re-read from disk by [`KeyStore::reload`].
pub struct KeyStore {
    files: KeyFiles,
    max_token_lifetime: Duration,
    loaded: RwLock<Arc<Loaded>>,
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyStore")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl KeyStore {
    /// Loads the keys, generating the first one if the directory has no usable active key.
    pub async fn open(files: KeyFiles, max_token_lifetime: Duration) -> anyhow::Result<Self> {
        let loaded = {
            let files = files.clone();
            tokio::task::spawn_blocking(move || {
                let metas = files.list()?;
                if pick_active(&metas).is_none() {
                    files.generate()?;
                }
                load_all(&files, max_token_lifetime, &HashMap::new())
            })
            .await??
        };
        Ok(Self {
            files,
            max_token_lifetime,
            loaded: RwLock::new(Arc::new(loaded)),
        })
    }

    /// Re-reads the directory: picks up keys rotated by the CLI or another replica and
    /// drops retired keys whose tokens have all expired. Keeps the current keys on error.
    pub async fn reload(&self) -> anyhow::Result<()> {
        let previous = self.snapshot().published.clone();
        let files = self.files.clone();
        let ttl = self.max_token_lifetime;
        let loaded =
            tokio::task::spawn_blocking(move || load_all(&files, ttl, &previous)).await??;
        let mut guard = self.loaded.write().unwrap_or_else(|e| e.into_inner());
        if guard.active.kid != loaded.active.kid {
            tracing::info!(kid = %loaded.active.kid, "now signing with a new key");
        }
        *guard = Arc::new(loaded);
        Ok(())
    }

    /// Rotates when the active key is older than `every` (automatic rotation), then
    /// reloads. Returns the new kid if it rotated.
    pub async fn rotate_if_due(&self, every: Option<Duration>) -> anyhow::Result<Option<String>> {
        let files = self.files.clone();
        let rotated = tokio::task::spawn_blocking(move || -> anyhow::Result<Option<KeyMeta>> {
            let metas = files.list()?;
            let Some(active) = pick_active(&metas) else {
                return Ok(None);
            };
            if !super::lifecycle::rotation_due(active.created_at, Utc::now(), every) {
                return Ok(None);
            }
            Ok(Some(files.rotate()?))
        })
        .await??;
        if rotated.is_some() {
            self.reload().await?;
        }
        Ok(rotated.map(|m| m.kid))
    }

    /// The key that signs new tokens.
    pub fn active(&self) -> Arc<SigningKey> {
        self.snapshot().active.clone()
    }

    /// A published key by kid, for verifying tokens this server issued.
    pub fn published(&self, kid: &str) -> Option<Arc<SigningKey>> {
        self.snapshot().published.get(kid).cloned()
    }

    /// The RFC 7517 key set: every key that may still verify a live token, active first.
    pub fn jwks(&self) -> JwkSet {
        self.snapshot().jwks.clone()
    }

    fn snapshot(&self) -> Arc<Loaded> {
        self.loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

fn load_all(
    files: &KeyFiles,
    max_token_lifetime: Duration,
    cache: &HashMap<String, Arc<SigningKey>>,
) -> anyhow::Result<Loaded> {
    let metas = files.list()?;
    let now = Utc::now();
    let active_meta = pick_active(&metas)
        .ok_or_else(|| anyhow::anyhow!("no active signing key in the keys directory"))?;
    let mut published = HashMap::new();
    let mut ordered = Vec::new();
    // Newest first, so the active key leads the JWKS.
    for meta in metas.iter().rev() {
        if !is_published(meta, now, max_token_lifetime, PUBLICATION_MARGIN) {
            continue;
        }
        let key = match cache.get(&meta.kid) {
            Some(key) => key.clone(),
            None => match files.load(meta) {
                Ok(key) => Arc::new(key),
                Err(e) if meta.kid == active_meta.kid => return Err(e),
                Err(e) => {
                    tracing::warn!(kid = %meta.kid, error = %e, "skipping unloadable key");
                    continue;
                }
            },
        };
        ordered.push(key.clone());
        published.insert(meta.kid.clone(), key);
    }
    let active = published
        .get(&active_meta.kid)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("the active key is not loadable"))?;
    ordered.sort_by_key(|k| k.kid != active.kid);
    let jwks = JwkSet {
        keys: ordered.iter().map(|k| k.jwk.clone()).collect(),
    };
    Ok(Loaded {
        active,
        published,
        jwks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_private_and_reload_with_the_same_kid() {
        let dir = tempfile::tempdir().unwrap();
        let files = KeyFiles::new(dir.path(), 2048);
        let meta = files.generate().unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(format!("{}.pem", meta.kid)))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let key = files.load(&meta).unwrap();
        assert_eq!(key.kid, meta.kid);
        assert_eq!(files.list().unwrap(), vec![meta]);
    }

    #[test]
    fn rotation_retires_the_previous_key_and_keeps_it_published() {
        let dir = tempfile::tempdir().unwrap();
        let files = KeyFiles::new(dir.path(), 2048);
        let first = files.generate().unwrap();
        let second = files.rotate().unwrap();
        let loaded = load_all(&files, Duration::from_secs(900), &HashMap::new()).unwrap();
        assert_eq!(loaded.active.kid, second.kid);
        assert_eq!(loaded.jwks.keys[0].kid, second.kid);
        assert!(loaded.published.contains_key(&first.kid));
        let metas = files.list().unwrap();
        assert!(
            metas
                .iter()
                .find(|m| m.kid == first.kid)
                .unwrap()
                .retired_at
                .is_some()
        );
    }
}
