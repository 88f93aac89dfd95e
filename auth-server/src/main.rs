//! Reads settings, starts telemetry and hands off to the library.

use std::process::ExitCode;

use auth_server::{
    cli::{Cli, Command, run_admin},
    startup::Application,
    telemetry,
};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    // A `.env` file fills in variables that the environment does not already set.
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    telemetry::init(cli.settings.log_format);
    match cli.command {
        None | Some(Command::Serve) => {
            let serve = async {
                Application::build(cli.settings)
                    .await?
                    .run_until_stopped()
                    .await
            };
            match serve.await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "auth-server failed");
                    ExitCode::FAILURE
                }
            }
        }
        Some(command) => match run_admin(&cli.settings, command).await {
            Ok(value) => {
                if !value.is_null() {
                    println!("{value}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                println!("{}", serde_json::json!({"error": e.to_string()}));
                ExitCode::FAILURE
            }
        },
    }
}
