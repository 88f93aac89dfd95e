//! Argon2id password hashing, always on the blocking pool.

use std::sync::Arc;

use argon2::password_hash::PasswordVerifier as _;
use argon2::{Algorithm, Argon2, Params, Version, password_hash::PasswordHasher as _};

use crate::{config::Argon2Settings, domain::Password};

/// Hashes and verifies user passwords.
#[derive(Clone)]
pub struct PasswordHasher {
    argon: Arc<Argon2<'static>>,
    /// A hash of a random password with the current parameters. Verifying against it for
    /// an unknown user costs the same as for a known one, so timing tells nothing.
    dummy_hash: Arc<str>,
    /// One Argon2 computation per core at a time. They are CPU-bound, so more at once
    /// would not finish sooner, and each holds 19 MiB (the default memory cost): unbounded,
    /// a burst of logins spread them over many blocking threads and malloc arenas, and the
    /// server kept over a gigabyte resident afterwards (BENCHMARKS.md).
    permits: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher").finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// Builds a hasher with the given cost and computes the dummy hash.
    pub async fn new(settings: Argon2Settings) -> anyhow::Result<Self> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(|e| anyhow::anyhow!("invalid Argon2 parameters: {e}"))?;
        let argon = Arc::new(Argon2::new(Algorithm::Argon2id, Version::V0x13, params));
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let hasher_argon = argon.clone();
        let dummy_hash = tokio::task::spawn_blocking(move || {
            hasher_argon
                .hash_password(&random)
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
        })
        .await??;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Self {
            argon,
            dummy_hash: dummy_hash.into(),
            permits: Arc::new(tokio::sync::Semaphore::new(cores)),
        })
    }

    /// Hashes a new password into a PHC string with a random salt.
    #[tracing::instrument(skip_all)]
    pub async fn hash(&self, password: Password) -> anyhow::Result<String> {
        let argon = self.argon.clone();
        // Owned, and moved into the task: a caller that goes away does not free the slot
        // while the computation still runs.
        let permit = self.permits.clone().acquire_owned().await?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            argon
                .hash_password(password.expose().as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
        })
        .await?
    }

    /// Whether `password` matches `stored`; with no stored hash (unknown user) it verifies
    /// against the dummy hash and answers false, taking the same time.
    #[tracing::instrument(skip_all)]
    pub async fn verify(&self, password: String, stored: Option<String>) -> anyhow::Result<bool> {
        let argon = self.argon.clone();
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let permit = self.permits.clone().acquire_owned().await?;
        let matches = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            argon
                .verify_password(password.as_bytes(), hash.as_str())
                .is_ok()
        })
        .await?;
        Ok(known && matches)
    }
}
