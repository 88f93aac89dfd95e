//! Throughput ceilings for the load benchmark (`bench/load.sh`): how many Argon2id
//! verifications and RS256 signatures per second the machine does on N threads, with
//! exactly the parameters and key handling of the server. Not a criterion benchmark:
//! it prints `name value` lines that the load script reads.
//!
//! `cargo bench -p auth-server --bench crypto_rates -- --threads 2 --seconds 10`
//! (`--only argon2` or `--only rs256` for one of the two: the load script measures each
//! next to the scenarios it is the ceiling of).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::{PasswordHasher as _, PasswordVerifier as _},
};
use auth_server::keys::{KeyFiles, KeyPolicy, KeyStore};

fn main() {
    let mut threads = 2usize;
    let mut seconds = 10u64;
    let mut only = None;
    // `cargo bench` appends `--bench`; ignore whatever we do not know.
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--threads" => threads = args.next().and_then(|v| v.parse().ok()).unwrap_or(threads),
            "--seconds" => seconds = args.next().and_then(|v| v.parse().ok()).unwrap_or(seconds),
            "--only" => only = args.next(),
            _ => {}
        }
    }
    let duration = Duration::from_secs(seconds);
    let wanted = |name: &str| only.as_deref().is_none_or(|only| only == name);
    if wanted("argon2") {
        println!(
            "argon2id_verify_per_s {:.1}",
            argon2_rate(threads, duration)
        );
    }
    if wanted("rs256") {
        println!("rs256_sign_per_s {:.1}", rs256_rate(threads, duration));
    }
}

/// Argon2id verifications per second, as the argon2 crate makes them.
fn argon2_rate(threads: usize, duration: Duration) -> f64 {
    // Same algorithm, version and defaults as `passwords::PasswordHasher`.
    let params = Params::new(19_456, 2, 1, None).expect("Argon2 parameters");
    let argon = Arc::new(Argon2::new(Algorithm::Argon2id, Version::V0x13, params));
    let password = b"correct horse battery staple";
    let hash: Arc<str> = argon.hash_password(password).unwrap().to_string().into();
    run(threads, duration, move || {
        assert!(argon.verify_password(password, &*hash).is_ok());
    })
}

/// RS256 signatures per second with the server's signer.
fn rs256_rate(threads: usize, duration: Duration) -> f64 {
    // The key pair parsed once, as `SigningKey` keeps it.
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let keys = runtime
        .block_on(KeyStore::open(
            std::sync::Arc::new(KeyFiles::new(dir.path())),
            KeyPolicy {
                bits: 2048,
                publish_lead: Duration::from_secs(360),
                max_token_lifetime: Duration::from_secs(900),
                rotate_every: None,
            },
        ))
        .expect("keys");
    let key = keys.active();
    let message = [b'a'; 400]; // about the size of an access token's signing input
    run(threads, duration, move || {
        key.sign_rs256(&message).unwrap();
    })
}

/// Runs `op` in a loop on `threads` threads for `duration`; operations per second.
fn run(threads: usize, duration: Duration, op: impl Fn() + Send + Sync + 'static) -> f64 {
    let op = Arc::new(op);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (op, stop, done) = (op.clone(), stop.clone(), done.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    op();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().expect("worker");
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}
