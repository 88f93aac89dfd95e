//! Argon2id password hashing, off the async threads.

use std::{panic::AssertUnwindSafe, sync::Arc};

use std::cell::RefCell;

use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::{Engine, engine::general_purpose::STANDARD_NO_PAD};
use subtle::ConstantTimeEq;

use crate::{config::Argon2Settings, domain::Password};

/// Hashes and verifies user passwords.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Arc<Params>,
    /// A hash of a random password with the current parameters. Verifying against it for
    /// an unknown user costs the same as for a known one, so timing tells nothing.
    dummy_hash: Arc<str>,
    workers: Arc<Workers>,
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
        let params = Arc::new(params);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = Arc::new(Workers::start(cores)?);
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let dummy_params = params.clone();
        let dummy_hash = workers
            .run(move || hash_phc(&dummy_params, &random))
            .await??;
        Ok(Self {
            params,
            dummy_hash: dummy_hash.into(),
            workers,
        })
    }

    /// Hashes a new password into a PHC string with a random salt.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn hash(&self, password: Password) -> anyhow::Result<String> {
        let params = self.params.clone();
        self.workers
            .run(move || hash_phc(&params, password.expose().as_bytes()))
            .await?
    }

    /// Whether `password` matches `stored`; with no stored hash (unknown user) it verifies
    /// against the dummy hash and answers false, taking the same time.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn verify(&self, password: String, stored: Option<String>) -> anyhow::Result<bool> {
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let matches = self
            .workers
            .run(move || verify_phc(password.as_bytes(), &hash))
            .await?;
        Ok(known && matches)
    }
}

const SALT_LEN: usize = 16;
const OUTPUT_LEN: usize = 32;

thread_local! {
    /// The Argon2 memory of this worker thread, allocated once and reused by every
    /// computation on it (see [`Workers`]).
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Frees this thread's buffer and, with glibc, returns freed memory to the system: a
/// freed 19 MiB block otherwise stays in the thread's malloc arena.
fn release_buffer() {
    let had_memory = BLOCKS.with(|blocks| {
        let had = blocks.borrow().capacity() > 0;
        *blocks.borrow_mut() = Vec::new();
        had
    });
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if had_memory {
        // SAFETY: malloc_trim only returns free pages of the allocator to the system.
        unsafe {
            libc::malloc_trim(0);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = had_memory;
}

fn with_blocks<R>(count: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
    BLOCKS.with(|blocks| {
        let mut blocks = blocks.borrow_mut();
        if blocks.len() < count {
            blocks.resize(count, Block::default());
        }
        f(&mut blocks[..count])
    })
}

/// Argon2id of `password` with a fresh salt, as a PHC string
/// (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`, the format the argon2 crate writes and reads).
fn hash_phc(params: &Params, password: &[u8]) -> anyhow::Result<String> {
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let mut out = [0u8; OUTPUT_LEN];
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    with_blocks(params.block_count(), |blocks| {
        argon.hash_password_into_with_memory(password, &salt, &mut out, blocks)
    })
    .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    ))
}

/// Whether `password` matches an Argon2id PHC string, compared in constant time. A string
/// that does not parse never matches.
fn verify_phc(password: &[u8], phc: &str) -> bool {
    let Some((params, salt, expected)) = parse_phc(phc) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let computed = with_blocks(params.block_count(), |blocks| {
        argon.hash_password_into_with_memory(password, &salt, &mut out, blocks)
    });
    computed.is_ok() && bool::from(out.ct_eq(&expected))
}

fn parse_phc(phc: &str) -> Option<(Params, Vec<u8>, Vec<u8>)> {
    let mut parts = phc.split('$');
    let (Some(""), Some("argon2id"), Some("v=19"), Some(costs), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let (mut m, mut t, mut p) = (None, None, None);
    for pair in costs.split(',') {
        let (key, value) = pair.split_once('=')?;
        let value: u32 = value.parse().ok()?;
        match key {
            "m" => m = Some(value),
            "t" => t = Some(value),
            "p" => p = Some(value),
            _ => return None,
        }
    }
    let salt = STANDARD_NO_PAD.decode(salt).ok()?;
    let hash = STANDARD_NO_PAD.decode(hash).ok()?;
    let params = Params::new(m?, t?, p?, Some(hash.len())).ok()?;
    Some((params, salt, hash))
}

type Job = Box<dyn FnOnce() + Send>;

/// Makes glibc give every allocation of 4 MiB or more (the Argon2 blocks) a mapping of its
/// own, unmapped when freed. By default glibc raises that threshold to the size of the
/// first such block freed, so the next blocks came from the workers' malloc arenas; a freed
/// block at the top of a thread's arena then stayed resident, because `malloc_trim` gives
/// back the top of the main arena only. After a login storm the server kept both workers'
/// 19 MiB (65 MB after the load benchmark instead of about 26). Process-wide, and
/// idempotent.
///
/// A fixed threshold also stops glibc's adjustment of the trim threshold, which it would
/// have raised to twice the mmap threshold with it; left at its initial 128 KiB, every
/// thread that freed a little more than that at the top of its arena (the refresh
/// rotations' thread did, at nearly every batch: SQLite's page-cache and statement buffers)
/// gave it back with `madvise`, and a TLB shootdown on every core, and faulted it in again
/// at the next allocation: a sixth of that thread's CPU (BENCHMARKS.md, issue 14, sixth
/// round). So the trim threshold is set to what glibc would have chosen.
fn map_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; glibc serialises it with malloc.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD);
    }
}

/// Allocations of this size or more get a mapping of their own (see [`map_large_blocks`]).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 4 << 20;

/// Puts the calling thread in Linux's `SCHED_BATCH` class (sched(7)): the scheduler treats
/// it as CPU-bound, mildly disfavours it at wake-ups and stops preempting it for
/// interactivity. During a login storm the Argon2 workers keep both cores busy, and every
/// wake-up of a request thread (an answer to send, a database reply) then cost a context
/// switch more than it had to; in this class the request threads get the core when they
/// need it and the workers keep it otherwise (BENCHMARKS.md, issue 14: CPU per password
/// grant 22.2 → 20.3 ms). Best effort: where the call fails, the thread keeps the normal
/// class.
fn schedule_as_batch() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: changes only the calling thread's scheduling class; `param` outlives the call.
        let changed = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
        if changed != 0 {
            tracing::debug!("Argon2 worker keeps the normal scheduling class");
        }
    }
}

/// One thread per core for Argon2, instead of tokio's blocking pool.
///
/// Argon2 is CPU-bound, so more computations at once would not finish sooner; and each
/// needs 19 MiB (the default memory cost). On the blocking pool a burst of logins spreads
/// over dozens of threads, each with its own malloc arena keeping its freed 19 MiB, and the
/// server stayed above a gigabyte after the burst. Here each worker thread keeps one
/// buffer, reused by every computation on it while logins keep coming (memory stays at
/// cores × 19 MiB), and freed when the worker has been idle for [`IDLE`].
struct Workers {
    jobs: flume::Sender<Job>,
}

/// A worker idle this long frees its buffer, so an idle server stays small.
const IDLE: std::time::Duration = std::time::Duration::from_secs(2);

impl Workers {
    fn start(threads: usize) -> anyhow::Result<Self> {
        map_large_blocks();
        // Many consumers, each waiting with its own idle timeout.
        let (tx, rx) = flume::unbounded::<Job>();
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    schedule_as_batch();
                    loop {
                        let job = match rx.recv_timeout(IDLE) {
                            Ok(job) => job,
                            // Idle: give the memory back until the next login.
                            Err(flume::RecvTimeoutError::Timeout) => {
                                release_buffer();
                                continue;
                            }
                            // Every hasher is gone: so is the thread.
                            Err(flume::RecvTimeoutError::Disconnected) => return,
                        };
                        // A panicking job only loses its own answer, not the thread.
                        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                    }
                })?;
        }
        Ok(Self { jobs: tx })
    }

    /// Runs `f` on a worker thread and waits for its result without blocking the caller's
    /// async thread.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        self.jobs
            .send(job)
            .map_err(|_| anyhow::anyhow!("the Argon2 workers have stopped"))?;
        rx.await
            .map_err(|_| anyhow::anyhow!("an Argon2 computation failed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn light() -> Argon2Settings {
        Argon2Settings {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        }
    }

    #[tokio::test]
    async fn a_hashed_password_verifies_and_a_wrong_one_does_not() {
        let hasher = PasswordHasher::new(light()).await.unwrap();
        let hash = hasher
            .hash(Password::parse("correct horse".into()).unwrap())
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            hasher
                .verify("correct horse".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify("wrong horse".into(), Some(hash))
                .await
                .unwrap()
        );
    }

    #[test]
    fn hashes_are_interchangeable_with_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let params = Params::new(1024, 1, 1, None).unwrap();
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
            .hash_password(b"pw-123456")
            .unwrap()
            .to_string();
        assert!(verify_phc(b"pw-123456", &theirs));
        assert!(!verify_phc(b"pw-1234567", &theirs));
        let ours = hash_phc(&params, b"pw-123456").unwrap();
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        assert!(argon.verify_password(b"pw-123456", ours.as_str()).is_ok());
    }

    #[test]
    fn malformed_phc_strings_never_match() {
        for bad in [
            "",
            "$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
            "$argon2id$v=19$m=x$a$b",
            "plain",
        ] {
            assert!(!verify_phc(b"x", bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        let hasher = PasswordHasher::new(light()).await.unwrap();
        assert!(!hasher.verify("anything".into(), None).await.unwrap());
    }

    #[tokio::test]
    async fn many_computations_at_once_all_complete() {
        let hasher = PasswordHasher::new(light()).await.unwrap();
        let runs = (0..16).map(|_| hasher.verify("x".into(), None));
        let results = futures::future::join_all(runs).await;
        assert!(results.iter().all(|r| matches!(r, Ok(false))));
    }
}
