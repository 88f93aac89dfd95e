//! `posts-server`: serve (default) or `migrate`. Only reads settings, starts telemetry and
//! hands off to the library.

use clap::Parser;
use posts_server::config::{Cli, Command};
use posts_server::startup::Application;
use posts_server::{db, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Only the working directory's .env (dotenvy::dotenv would also search parent
    // directories). A missing one is normal; a malformed one must not be silently ignored.
    if let Err(error) = dotenvy::from_path(".env")
        && !error.not_found()
    {
        return Err(error.into());
    }
    let cli = Cli::parse();
    telemetry::init(&cli.settings.telemetry)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(cli.settings).await?;
            app.run_until_stopped().await
        }
        Command::Migrate => {
            let db = db::connect(&cli.settings.database).await?;
            db::migrate(&db).await?;
            db.close().await?;
            println!("{}", serde_json::json!({ "migrated": true }));
            Ok(())
        }
    }
}
