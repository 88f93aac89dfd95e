//! The command line: serve by default, plus admin subcommands that print JSON on stdout.

use std::sync::Arc;

use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::{
    clients::{self, RegisterError},
    config::{KeyStoreKind, Settings},
    db,
    keys::{self, KeyDatabase, KeyFiles, KeyState, KeyStorage},
};

/// OAuth 2.0 authorization server issuing RS256 JWT access tokens.
#[derive(Debug, Parser)]
#[command(
    name = "auth-server",
    version,
    about,
    long_about = "OAuth2 authorization server issuing RS256 JWT access tokens (RFC 9068).\n\n\
        Without a command it serves HTTP. Settings come from flags, then AUTH_* environment \
        variables, then a .env file in the working directory, then the defaults shown.",
    after_help = "Admin commands print JSON on stdout. Exit status: 0 success, 1 failure \
        (with {\"error\": …} on stdout), 2 usage error."
)]
pub struct Cli {
    /// Settings shared by the server and the admin commands.
    #[command(flatten)]
    pub settings: Settings,

    /// What to do; serves HTTP when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve HTTP (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage OAuth clients.
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

/// `auth-server clients …`
#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Register a client; prints `{"client_id","client_secret"?}` (the secret only now).
    Create {
        /// The client id (A-Z a-z 0-9 - . _ ~).
        client_id: String,
        /// Give the client a secret (needed for client_credentials and introspection).
        #[arg(long)]
        confidential: bool,
        /// Allowed grant types, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "password,refresh_token")]
        grants: Vec<String>,
        /// Allowed scopes, space-separated.
        #[arg(long, default_value = "posts:read posts:write")]
        scopes: String,
        /// A redirect URI for the authorization-code flow (repeatable): absolute, no
        /// fragment, http only on 127.0.0.1, [::1] or localhost.
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
        /// Where the browser may return after OpenID Connect logout (repeatable).
        #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
        post_logout_redirect_uris: Vec<String>,
        /// Skip the consent page (a first-party client).
        #[arg(long)]
        trusted: bool,
        /// The name shown on the consent page (default: the client id).
        #[arg(long)]
        name: Option<String>,
    },
    /// List the registered clients as a JSON array.
    List,
    /// Delete a client.
    Delete {
        /// The client id (may begin with `-`).
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
}

/// `auth-server keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Schedule the next key to sign once it has been published for AUTH_KEY_PUBLISH_LEAD,
    /// and make a new next key; prints `{"kid","active_from","next_kid"}`. Running
    /// servers switch at `active_from` without a restart; the old key stays published
    /// until the tokens it signed have expired.
    Rotate {
        /// Promote the next key at once (an emergency: verifiers that have not cached it
        /// yet must refetch the key set).
        #[arg(long)]
        now: bool,
    },
    /// Withdraw a key: out of the JWKS and no longer accepted here, within the reload
    /// interval. Revoking the active key first promotes the next key at once. Prints
    /// `{"kid"}`.
    Revoke {
        /// The key id, as `keys list` shows it. A key id is base64url and may begin with
        /// `-`; it is still the key id, not an option.
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
    /// List the keys: kid, state (next, active, retired, revoked) and their times.
    List,
    /// Copy the keys of AUTH_KEYS_DIR into the auth database, encrypted under
    /// AUTH_KEYS_ENCRYPTION_KEY (idempotent); then set AUTH_KEYS_STORE=database.
    MigrateToDatabase,
}

#[derive(Serialize)]
struct KeyInfo {
    kid: String,
    state: KeyState,
    created_at: chrono::DateTime<chrono::Utc>,
    active_from: Option<chrono::DateTime<chrono::Utc>>,
    retired_at: Option<chrono::DateTime<chrono::Utc>>,
    revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A failed admin command: printed as `{"error": …}` and exit code 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CommandError(pub String);

/// Runs an admin command and returns what to print on stdout.
pub async fn run_admin(
    settings: &Settings,
    command: Command,
) -> Result<serde_json::Value, CommandError> {
    let fail = |e: anyhow::Error| CommandError(format!("{e:#}"));
    match command {
        Command::Serve => unreachable!("serve is not an admin command"),
        Command::Migrate => {
            let conn = db::connect(&settings.database_url).await.map_err(fail)?;
            db::migrate(&conn).await.map_err(fail)?;
            Ok(serde_json::json!({"migrated": true}))
        }
        Command::Clients(cmd) => {
            let conn = db::connect(&settings.database_url).await.map_err(fail)?;
            db::migrate(&conn).await.map_err(fail)?;
            match cmd {
                ClientsCommand::Create {
                    client_id,
                    confidential,
                    grants,
                    scopes,
                    redirect_uris,
                    post_logout_redirect_uris,
                    trusted,
                    name,
                } => {
                    let grant_types: Vec<String> = grants
                        .into_iter()
                        .map(|g| g.trim().to_owned())
                        .filter(|g| !g.is_empty())
                        .collect();
                    let new = clients::NewClient {
                        client_id,
                        confidential,
                        grant_types,
                        scopes,
                        redirect_uris,
                        post_logout_redirect_uris,
                        trusted,
                        name,
                    };
                    match clients::register(&conn, new).await {
                        Ok(created) => {
                            Ok(serde_json::to_value(created).map_err(|e| fail(e.into()))?)
                        }
                        Err(RegisterError::Internal(e)) => Err(fail(e)),
                        Err(e) => Err(CommandError(e.to_string())),
                    }
                }
                ClientsCommand::List => {
                    let list = clients::list(&conn, &settings.posts_web_redirect_uris.0)
                        .await
                        .map_err(fail)?;
                    Ok(serde_json::to_value(list).map_err(|e| fail(e.into()))?)
                }
                ClientsCommand::Delete { client_id } => {
                    if clients::delete(&conn, &client_id).await.map_err(fail)? {
                        // Running servers keep client rows for up to this long after a
                        // change: once the command has answered, none accepts the client.
                        tokio::time::sleep(clients::CACHE_BOUND).await;
                        Ok(serde_json::Value::Null)
                    } else {
                        Err(CommandError(format!("no client `{client_id}`")))
                    }
                }
            }
        }
        Command::Keys(cmd) => run_keys(settings, cmd).await.map_err(fail),
    }
}

async fn run_keys(settings: &Settings, command: KeysCommand) -> anyhow::Result<serde_json::Value> {
    let bits = settings.key_bits;
    match command {
        KeysCommand::Rotate { now } => {
            let storage = key_storage(settings).await?;
            let lead = settings.key_publish_lead();
            let rotated = keys::rotation::rotate(&*storage, bits, lead, now).await?;
            Ok(serde_json::to_value(rotated)?)
        }
        KeysCommand::Revoke { kid } => {
            let storage = key_storage(settings).await?;
            keys::rotation::revoke(&*storage, bits, &kid).await?;
            Ok(serde_json::json!({ "kid": kid }))
        }
        KeysCommand::List => {
            let metas = key_storage(settings).await?.list().await?.keys;
            let now = keys::lifecycle::now();
            let listed: Vec<KeyInfo> = metas
                .iter()
                .rev()
                .map(|m| KeyInfo {
                    kid: m.kid.clone(),
                    state: keys::lifecycle::state(m, &metas, now),
                    created_at: m.created_at,
                    active_from: m.active_from,
                    retired_at: keys::lifecycle::retired_at(m, &metas),
                    revoked_at: m.revoked_at,
                })
                .collect();
            Ok(serde_json::to_value(listed)?)
        }
        KeysCommand::MigrateToDatabase => {
            let conn = migrated_database(settings).await?;
            let key = keys::encryption_key(settings)?;
            let to = KeyDatabase::open(conn.clone(), conn, key).await?;
            let from = KeyFiles::new(&settings.keys_dir);
            let migrated = keys::rotation::migrate(&from, &to).await?;
            Ok(serde_json::to_value(migrated)?)
        }
    }
}

/// The key store the settings name, the encryption key checked for the database.
async fn key_storage(settings: &Settings) -> anyhow::Result<Arc<dyn KeyStorage>> {
    match settings.keys_store {
        KeyStoreKind::Files => Ok(Arc::new(KeyFiles::new(&settings.keys_dir))),
        KeyStoreKind::Database => {
            let conn = migrated_database(settings).await?;
            keys::open_storage(settings, &conn, &conn).await
        }
    }
}

async fn migrated_database(settings: &Settings) -> anyhow::Result<sea_orm::DatabaseConnection> {
    let conn = db::connect(&settings.database_url).await?;
    db::migrate(&conn).await?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    // Key ids are base64url thumbprints: one in 64 begins with `-`.
    #[test]
    fn a_key_id_or_client_id_that_begins_with_a_hyphen_is_a_value() {
        for kid in [
            "-fWbSZLb3PWh9eggAZCnXNnRxUQxhte7oPNvWf0FtL8",
            "--fWbSZLb3PW",
            "-",
        ] {
            let cli = Cli::try_parse_from(["auth-server", "keys", "revoke", kid]).unwrap();
            assert!(
                matches!(&cli.command, Some(Command::Keys(KeysCommand::Revoke { kid: k })) if k == kid),
                "{kid}: {:?}",
                cli.command
            );
        }
        let cli = Cli::try_parse_from(["auth-server", "clients", "delete", "-web"]).unwrap();
        assert!(matches!(
            &cli.command,
            Some(Command::Clients(ClientsCommand::Delete { client_id })) if client_id == "-web"
        ));
    }
}
