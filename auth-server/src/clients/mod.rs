//! OAuth clients: registration (for the CLI) and authentication at the token endpoint.
//!
//! Client authentication goes through oxide-auth's registrar primitives: a row becomes an
//! [`EncodedClient`] (public, or confidential with the stored secret hash) and
//! [`RegisteredClient::check_authentication`] decides, with our [`PasswordPolicy`]
//! [`SecretHashPolicy`]. Secrets are 256-bit random values, so a fast hash is enough and
//! keeps client authentication cheap; comparison is constant-time.

use std::{fmt, time::Instant};

use oxide_auth::primitives::{
    registrar::{
        ClientType, EncodedClient, ExactUrl, PasswordPolicy, RegisteredClient, RegisteredUrl,
        RegistrarError,
    },
    scope::Scope,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, Statement};
use sqlite_readers::{Readers, rusqlite};
use subtle::ConstantTimeEq;

use crate::{
    domain::{RedirectUri, ScopeSet},
    entities::clients,
    error::OAuthError,
};

mod cache;
mod registration;

use cache::Lookup;
pub use cache::{BOUND as CACHE_BOUND, ClientCache};
pub use registration::{
    ClientInfo, CreatedClient, NewClient, RegisterError, delete, list, register,
};

/// The client a password grant without `client_id` is attributed to.
pub const DEFAULT_PUBLIC_CLIENT: &str = "posts-web";

/// The grant types this server implements.
pub const GRANT_TYPES: [&str; 4] = [
    "authorization_code",
    "password",
    "refresh_token",
    "client_credentials",
];

/// A registered client as the authorization and logout endpoints see it (before any
/// authentication: the browser only names the client).
#[derive(Debug, Clone)]
pub struct Client {
    /// The client id.
    pub client_id: String,
    /// Shown on the consent page: the registered name, or the client id.
    pub name: String,
    /// Whether it has a secret.
    pub confidential: bool,
    /// Grant types it may use.
    pub grant_types: Vec<String>,
    /// Scopes it may be granted.
    pub scopes: ScopeSet,
    /// Where authorization responses may go.
    pub redirect_uris: Vec<RedirectUri>,
    /// Where the browser may be sent after logout.
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    /// Skips the consent page.
    pub trusted: bool,
}

impl Client {
    /// Whether the client may use `grant_type`.
    pub fn may_use(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }

    /// The registered redirect URI that `requested` names, if any.
    pub fn redirect_uri(&self, requested: &str) -> Option<&RedirectUri> {
        self.redirect_uris.iter().find(|r| r.matches(requested))
    }

    /// Whether `requested` is one of the registered post-logout redirect URIs (exact).
    pub fn allows_post_logout_redirect(&self, requested: &str) -> bool {
        self.post_logout_redirect_uris
            .iter()
            .any(|r| r.as_str() == requested)
    }
}

/// Looks a client up by id. `posts_web_redirect_uris` replaces the redirect URIs of the
/// built-in client (`AUTH_POSTS_WEB_REDIRECT_URIS`), which follow posts-server's address.
pub async fn find(
    db: &DatabaseConnection,
    readers: Option<&Readers>,
    cache: &ClientCache,
    client_id: &str,
    posts_web_redirect_uris: &[RedirectUri],
) -> anyhow::Result<Option<Client>> {
    if client_id.is_empty() || client_id.len() > 128 || client_id.contains('\0') {
        return Ok(None);
    }
    let Some(row) = row(db, readers, cache, client_id).await? else {
        return Ok(None);
    };
    Ok(Some(client_view(row, posts_web_redirect_uris)?))
}

/// The row of a client: from `cache` while the version of `clients` is fresh (see
/// [`cache`]), else read and kept there.
async fn row(
    db: &DatabaseConnection,
    readers: Option<&Readers>,
    cache: &ClientCache,
    client_id: &str,
) -> Result<Option<clients::Model>, DbErr> {
    let version = match cache.lookup(client_id, Instant::now()) {
        Lookup::Hit(row) => return Ok(Some(row)),
        Lookup::Miss(version) => version,
        Lookup::Stale => {
            // Taken before the read: a change committed during it may be unseen.
            let read_at = Instant::now();
            let version = cache.observe(read_version(db, readers).await?, read_at);
            if let Lookup::Hit(row) = cache.lookup(client_id, read_at) {
                return Ok(Some(row));
            }
            version
        }
    };
    let found = read(db, readers, client_id).await?;
    if let Some(row) = &found {
        cache.keep(version, row);
    }
    Ok(found)
}

const VERSION: &str = "SELECT version FROM client_changes WHERE id = 1";

/// The version of `clients`, which every change bumps (a trigger).
async fn read_version(db: &DatabaseConnection, readers: Option<&Readers>) -> Result<i64, DbErr> {
    let on_this_thread = readers
        .and_then(|r| r.read(|c| c.prepare_cached(VERSION)?.query_row([], |row| row.get(0))));
    if let Some(version) = on_this_thread {
        return Ok(version);
    }
    db.query_one_raw(Statement::from_string(db.get_database_backend(), VERSION))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("the row of client_changes".to_owned()))?
        .try_get::<i64>("", "version")
}

/// The row of a client: on SQLite read on this thread (every token request asks, and the
/// hop to sqlx's connection thread cost more than the lookup: see `sqlite-readers`), else,
/// or when that fails, through sea-orm. Both give the same row (a test holds them to it).
async fn read(
    db: &DatabaseConnection,
    readers: Option<&Readers>,
    client_id: &str,
) -> Result<Option<clients::Model>, DbErr> {
    if let Some(found) = readers.and_then(|r| r.read(|c| read_row(c, client_id))) {
        return Ok(found);
    }
    clients::Entity::find_by_id(client_id.to_owned())
        .one(db)
        .await
}

fn read_row(
    connection: &rusqlite::Connection,
    client_id: &str,
) -> rusqlite::Result<Option<clients::Model>> {
    use rusqlite::OptionalExtension;
    connection
        .prepare_cached(
            "SELECT client_id, secret_hash, grant_types, scopes, created_at, redirect_uris, \
             post_logout_redirect_uris, trusted, name FROM clients WHERE client_id = ?1",
        )?
        .query_row([client_id], |r| {
            Ok(clients::Model {
                client_id: r.get(0)?,
                secret_hash: r.get(1)?,
                grant_types: r.get(2)?,
                scopes: r.get(3)?,
                created_at: sqlite_readers::datetime(r.get_ref(4)?)?,
                redirect_uris: r.get(5)?,
                post_logout_redirect_uris: r.get(6)?,
                trusted: r.get(7)?,
                name: r.get(8)?,
            })
        })
        .optional()
}

fn client_view(row: clients::Model, posts_web: &[RedirectUri]) -> anyhow::Result<Client> {
    let uris = |stored: &str| -> anyhow::Result<Vec<RedirectUri>> {
        stored
            .split_whitespace()
            .map(|u| RedirectUri::parse(u).map_err(|e| anyhow::anyhow!("stored URI: {e}")))
            .collect()
    };
    let redirect_uris = if row.client_id == DEFAULT_PUBLIC_CLIENT {
        posts_web.to_vec()
    } else {
        uris(&row.redirect_uris)?
    };
    Ok(Client {
        name: row.name.clone().unwrap_or_else(|| row.client_id.clone()),
        confidential: row.secret_hash.is_some(),
        grant_types: split(&row.grant_types),
        scopes: ScopeSet::parse(&row.scopes).map_err(|e| anyhow::anyhow!("stored scopes: {e}"))?,
        redirect_uris,
        post_logout_redirect_uris: uris(&row.post_logout_redirect_uris)?,
        // The built-in client is the first party's own documentation.
        trusted: row.trusted || row.client_id == DEFAULT_PUBLIC_CLIENT,
        client_id: row.client_id,
    })
}

fn split(list: &str) -> Vec<String> {
    list.split_whitespace().map(str::to_owned).collect()
}

/// A client that has authenticated (or, if public, identified itself) at the endpoint.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    /// The client id.
    pub client_id: String,
    /// Whether it proved possession of a secret.
    pub confidential: bool,
    /// Grant types it may use.
    pub grant_types: Vec<String>,
    /// Scopes it may be granted.
    pub scopes: ScopeSet,
}

impl AuthenticatedClient {
    /// Whether the client may use `grant_type`.
    pub fn may_use(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }
}

/// Client credentials as presented in one request.
pub enum Credentials {
    /// Nothing: a password or refresh grant from the default public client.
    None,
    /// `client_id` (and for confidential clients `client_secret`), via Basic or the form.
    Presented {
        /// The claimed client id.
        client_id: String,
        /// The secret, if any.
        secret: Option<String>,
        /// Whether HTTP Basic carried them, which decides the 401 challenge.
        basic: bool,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("Credentials::None"),
            Self::Presented {
                client_id, basic, ..
            } => f
                .debug_struct("Credentials")
                .field("client_id", client_id)
                .field("basic", basic)
                .finish_non_exhaustive(),
        }
    }
}

/// oxide-auth password policy for high-entropy client secrets: SHA-256, compared in
/// constant time.
pub struct SecretHashPolicy;

impl PasswordPolicy for SecretHashPolicy {
    fn store(&self, _client_id: &str, passphrase: &[u8]) -> Vec<u8> {
        hash_secret(passphrase).into_bytes()
    }

    fn check(
        &self,
        _client_id: &str,
        passphrase: &[u8],
        stored: &[u8],
    ) -> Result<(), RegistrarError> {
        let presented = hash_secret(passphrase);
        if bool::from(presented.as_bytes().ct_eq(stored)) {
            Ok(())
        } else {
            Err(RegistrarError::Unspecified)
        }
    }
}

fn hash_secret(secret: &[u8]) -> String {
    crate::digest::sha256_hex(secret)
}

/// Authenticates the client of a token, revocation or introspection request.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn authenticate(
    db: &DatabaseConnection,
    readers: Option<&Readers>,
    cache: &ClientCache,
    credentials: Credentials,
) -> Result<AuthenticatedClient, OAuthError> {
    let (client_id, secret, basic) = match credentials {
        Credentials::None => (DEFAULT_PUBLIC_CLIENT.to_owned(), None, false),
        Credentials::Presented {
            client_id,
            secret,
            basic,
        } => (client_id, secret, basic),
    };
    // PostgreSQL refuses NUL in text parameters, and no client id holds one.
    let row = if client_id.contains('\0') {
        None
    } else {
        row(db, readers, cache, &client_id).await?
    };
    let Some(row) = row else {
        tracing::debug!(%client_id, "unknown client");
        return Err(OAuthError::InvalidClient { basic });
    };
    let encoded = encode(&row);
    RegisteredClient::new(&encoded, &SecretHashPolicy)
        .check_authentication(secret.as_deref().map(str::as_bytes))
        .map_err(|_| {
            tracing::debug!(%client_id, "client authentication failed");
            OAuthError::InvalidClient { basic }
        })?;
    Ok(AuthenticatedClient {
        client_id: row.client_id,
        confidential: row.secret_hash.is_some(),
        grant_types: split(&row.grant_types),
        scopes: ScopeSet::parse(&row.scopes).map_err(|e| anyhow::anyhow!("stored scopes: {e}"))?,
    })
}

/// The oxide-auth view of a stored client, for client authentication. The redirect URIs
/// are matched by [`Client::redirect_uri`] (exact strings, as oxide-auth's `ExactUrl`, plus
/// the loopback rule); a client without any gets the out-of-band URN, which no browser
/// request can name.
fn encode(row: &clients::Model) -> EncodedClient {
    let default_scope: Scope = row
        .scopes
        .parse()
        .unwrap_or_else(|_| "".parse().expect("empty scope"));
    let mut uris = row
        .redirect_uris
        .split_whitespace()
        .filter_map(|u| RedirectUri::parse(u).ok())
        .map(|u| u.to_registered());
    EncodedClient {
        client_id: row.client_id.clone(),
        redirect_uri: uris.next().unwrap_or_else(|| {
            RegisteredUrl::Exact(
                ExactUrl::new("urn:ietf:wg:oauth:2.0:oob".into()).expect("a valid URN"),
            )
        }),
        additional_redirect_uris: uris.collect(),
        default_scope,
        encoded_client: match &row.secret_hash {
            Some(hash) => ClientType::Confidential {
                passdata: hash.clone().into_bytes(),
            },
            None => ClientType::Public,
        },
    }
}

#[cfg(test)]
mod tests;
