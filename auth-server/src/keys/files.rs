//! The keys directory: `<kid>.pem` (PKCS#8, mode 0600) and `<kid>.json` (metadata), shared
//! by replicas on one host or a shared volume, changed under a lock file.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use super::{
    KeyMeta, PrivateKey,
    storage::{Change, KeySet, KeyStorage, WriteError},
};

/// The keys directory: `<kid>.pem` (PKCS#8, mode 0600) and `<kid>.json` (metadata).
#[derive(Debug, Clone)]
pub struct KeyFiles {
    dir: PathBuf,
}

/// `<kid>.json`. Directories written before next keys existed have no `active_from`
/// at all: such a key signed from its creation (until its `retired_at`, if set).
#[derive(Serialize, Deserialize)]
struct MetaFile {
    kid: String,
    created_at: DateTime<Utc>,
    // Missing (an old directory) and `null` (a next key) mean different things.
    #[serde(default, deserialize_with = "present")]
    active_from: Option<Option<DateTime<Utc>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retired_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoked_at: Option<DateTime<Utc>>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<DateTime<Utc>>>, D::Error> {
    Option::<DateTime<Utc>>::deserialize(d).map(Some)
}

impl From<MetaFile> for KeyMeta {
    fn from(f: MetaFile) -> Self {
        Self {
            active_from: f.active_from.unwrap_or(Some(f.created_at)),
            kid: f.kid,
            created_at: f.created_at,
            retired_at: f.retired_at,
            revoked_at: f.revoked_at,
        }
    }
}

impl From<&KeyMeta> for MetaFile {
    fn from(m: &KeyMeta) -> Self {
        Self {
            kid: m.kid.clone(),
            created_at: m.created_at,
            active_from: Some(m.active_from),
            retired_at: m.retired_at,
            revoked_at: m.revoked_at,
        }
    }
}

impl KeyFiles {
    /// The keys in `dir` (created with mode 0700 when the first key is written).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn list_blocking(&self) -> anyhow::Result<KeySet> {
        let mut keys = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(KeySet { keys, version: 0 });
            }
            Err(e) => anyhow::bail!("cannot read the keys directory {}: {e}", self.dir.display()),
        };
        for entry in entries {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) == Some("json") {
                keys.push(read_meta(&path)?);
            }
        }
        keys.sort_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)));
        let version = keys.len() as u64;
        Ok(KeySet { keys, version })
    }

    fn load_blocking(&self, kid: &str) -> anyhow::Result<PrivateKey> {
        let path = self.pem_path(kid);
        let fail = |e: &dyn std::fmt::Display| {
            anyhow::anyhow!("cannot load the private key {}: {e}", path.display())
        };
        let pem = fs::read_to_string(&path).map_err(|e| fail(&e))?;
        let key = PrivateKey::from_pem(&pem).map_err(|e| fail(&e))?;
        if key.kid() != kid {
            return Err(fail(&"the file holds another key than its name says"));
        }
        Ok(key)
    }

    fn insert_blocking(
        &self,
        version: u64,
        meta: &KeyMeta,
        key: &PrivateKey,
    ) -> Result<(), WriteError> {
        create_private_dir(&self.dir)?;
        let _lock = ChangeLock::acquire(&self.dir)?;
        if self.list_blocking()?.version != version {
            return Err(WriteError::Conflict);
        }
        // The metadata goes last: a key counts once its `.json` exists.
        write_atomically(&self.pem_path(&meta.kid), key.to_pem()?.as_bytes(), 0o600)?;
        self.save(meta)?;
        tracing::info!(kid = %meta.kid, "wrote a signing key to the keys directory");
        Ok(())
    }

    fn update_blocking(&self, kid: &str, change: Change) -> Result<(), WriteError> {
        let _lock = ChangeLock::acquire(&self.dir)?;
        let path = self.dir.join(format!("{kid}.json"));
        if !path.exists() {
            return Err(anyhow::anyhow!("no key with kid `{kid}`").into());
        }
        let changed = change
            .apply(&read_meta(&path)?)
            .ok_or(WriteError::Conflict)?;
        self.save(&changed)?;
        Ok(())
    }

    fn save(&self, meta: &KeyMeta) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(&MetaFile::from(meta))?;
        write_atomically(&self.dir.join(format!("{}.json", meta.kid)), &json, 0o644)
    }

    fn pem_path(&self, kid: &str) -> PathBuf {
        self.dir.join(format!("{kid}.pem"))
    }

    async fn blocking<T: Send + 'static, E: From<anyhow::Error> + Send + 'static>(
        &self,
        f: impl FnOnce(Self) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E> {
        let files = self.clone();
        tokio::task::spawn_blocking(move || f(files))
            .await
            .map_err(|e| E::from(e.into()))?
    }
}

#[async_trait::async_trait]
impl KeyStorage for KeyFiles {
    async fn list(&self) -> anyhow::Result<KeySet> {
        self.blocking(|files| files.list_blocking()).await
    }

    async fn load(&self, kid: &str) -> anyhow::Result<PrivateKey> {
        let kid = kid.to_owned();
        self.blocking(move |files| files.load_blocking(&kid)).await
    }

    async fn insert(
        &self,
        version: u64,
        meta: &KeyMeta,
        key: &PrivateKey,
    ) -> Result<(), WriteError> {
        let meta = meta.clone();
        let key = key.clone();
        self.blocking(move |files| files.insert_blocking(version, &meta, &key))
            .await
    }

    async fn update(&self, kid: &str, change: Change) -> Result<(), WriteError> {
        let kid = kid.to_owned();
        self.blocking(move |files| files.update_blocking(&kid, change))
            .await
    }
}

fn read_meta(path: &Path) -> anyhow::Result<KeyMeta> {
    let parsed = fs::read(path)
        .map_err(anyhow::Error::from)
        .and_then(|raw| serde_json::from_slice::<MetaFile>(&raw).map_err(anyhow::Error::from));
    let meta = KeyMeta::from(parsed.map_err(|e| {
        anyhow::anyhow!(
            "unreadable key metadata {}: {e} (restore or move the file away)",
            path.display()
        )
    })?);
    let named = path.file_stem().and_then(|s| s.to_str()) == Some(meta.kid.as_str());
    anyhow::ensure!(
        named,
        "key metadata {} names another kid ({})",
        path.display(),
        meta.kid
    );
    Ok(meta)
}

/// Held while a process changes the directory; removed on drop. Other writers wait for
/// it (briefly: a change writes two small files); a lock older than a minute is a
/// crashed writer's and is taken over.
struct ChangeLock(PathBuf);

impl ChangeLock {
    fn acquire(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(".rotate.lock");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(_) => return Ok(Self(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let stale = fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .map(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(60))
                        .unwrap_or(false);
                    if stale {
                        let _ = fs::remove_file(&path);
                        continue;
                    }
                    anyhow::ensure!(
                        Instant::now() < deadline,
                        "another process has been changing the keys for 10 s ({} exists)",
                        path.display()
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(anyhow::anyhow!("cannot lock {}: {e}", path.display())),
            }
        }
    }
}

impl Drop for ChangeLock {
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

    fn meta(kid: &str) -> KeyMeta {
        KeyMeta {
            kid: kid.into(),
            created_at: super::super::lifecycle::now(),
            active_from: None,
            retired_at: None,
            revoked_at: None,
        }
    }

    #[tokio::test]
    async fn written_keys_are_private_and_reload_with_the_same_kid() {
        let dir = tempfile::tempdir().unwrap();
        let files = KeyFiles::new(dir.path().join("keys"));
        let key = tokio::task::spawn_blocking(|| PrivateKey::generate(2048))
            .await
            .unwrap()
            .unwrap();
        let meta = meta(key.kid());
        files.insert(0, &meta, &key).await.unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let pem = dir.path().join("keys").join(format!("{}.pem", meta.kid));
            assert_eq!(
                fs::metadata(pem).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert_eq!(files.load(&meta.kid).await.unwrap().der(), key.der());
        let set = files.list().await.unwrap();
        assert_eq!((set.keys, set.version), (vec![meta.clone()], 1));
        assert!(matches!(
            files.insert(0, &meta, &key).await,
            Err(WriteError::Conflict)
        ));
    }

    #[test]
    fn an_old_metadata_file_means_a_key_that_signed_from_its_creation() {
        let old: MetaFile = serde_json::from_str(
            r#"{"kid":"a","created_at":"2026-01-01T00:00:00Z","retired_at":null}"#,
        )
        .unwrap();
        let old = KeyMeta::from(old);
        assert_eq!(old.active_from, Some(old.created_at));
        let next: MetaFile = serde_json::from_str(
            r#"{"kid":"b","created_at":"2026-01-01T00:00:00Z","active_from":null}"#,
        )
        .unwrap();
        assert_eq!(KeyMeta::from(next).active_from, None);
    }

    #[test]
    fn a_corrupted_metadata_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("x.json"), b"{not json").unwrap();
        let err = KeyFiles::new(dir.path()).list_blocking().unwrap_err();
        assert!(err.to_string().contains("x.json"), "{err}");
    }
}
