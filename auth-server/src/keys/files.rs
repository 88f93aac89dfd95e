//! The keys directory on disk: `<kid>.pem` (PKCS#8, mode 0600) and `<kid>.json`.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use chrono::Utc;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};

use super::{KeyMeta, SigningKey};

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
}
