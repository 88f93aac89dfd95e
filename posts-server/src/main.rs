//! `posts-server`: serve (default) or `migrate`. Only reads settings, starts telemetry and
//! hands off to the library.
//!
//! Exit status: 0 on success, 1 on failure, 2 on a usage error (clap's own).

use std::process::ExitCode;

use clap::Parser;
use posts_server::config::{Cli, Command, Settings};
use posts_server::startup::Application;
use posts_server::{db, telemetry};

/// mimalloc instead of glibc's malloc: a request allocates and frees many small buffers
/// (hyper's, the JSON, the rows), and glibc spent about a fifth of the CPU of a
/// `POST /posts` in malloc, free and their consolidation (BENCHMARKS.md, fifth round).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // Only the working directory's .env (dotenvy::dotenv would also search parent
    // directories). A missing one is normal; a malformed one must not be silently ignored.
    if let Err(error) = dotenvy::from_path(".env")
        && !error.not_found()
    {
        eprintln!("error: cannot read .env: {error}");
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    if let Err(error) = telemetry::init(&cli.settings.telemetry) {
        eprintln!("error: {error:#}");
        return ExitCode::FAILURE;
    }
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => match serve(cli.settings).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(error = format!("{error:#}"), "posts-server failed");
                ExitCode::FAILURE
            }
        },
        // An admin command: its answer is JSON on stdout, success or not.
        Command::Migrate => match migrate(&cli.settings).await {
            Ok(()) => {
                println!("{}", serde_json::json!({ "migrated": true }));
                ExitCode::SUCCESS
            }
            Err(error) => {
                println!("{}", serde_json::json!({ "error": format!("{error:#}") }));
                ExitCode::FAILURE
            }
        },
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    // What the start-up freed on this thread (migrations, the JWKS fetch) would stay
    // resident: mimalloc returns free memory to the system only when the thread that
    // freed it allocates again, and this one mostly waits from now on.
    // SAFETY: mi_collect only returns free memory; it is safe to call at any time.
    unsafe { libmimalloc_sys::mi_collect(true) };
    app.run_until_stopped().await
}

async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let db = db::connect(&settings.database).await?;
    db::migrate(&db).await?;
    db.close().await?;
    Ok(())
}
