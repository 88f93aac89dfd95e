//! OAuth clients: registration (for the CLI) and authentication at the token endpoint.
//!
//! Client authentication goes through oxide-auth's registrar primitives: a row becomes an
//! [`EncodedClient`] (public, or confidential with the stored secret hash) and
//! [`RegisteredClient::check_authentication`] decides, with our [`PasswordPolicy`]
//! [`SecretHashPolicy`]. Secrets are 256-bit random values, so a fast hash is enough and
//! keeps client authentication cheap; comparison is constant-time.

use std::fmt;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use oxide_auth::primitives::{
    registrar::{
        ClientType, EncodedClient, ExactUrl, PasswordPolicy, RegisteredClient, RegisteredUrl,
        RegistrarError,
    },
    scope::Scope,
};
use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, QueryOrder, Set, SqlErr};
use serde::Serialize;
use subtle::ConstantTimeEq;

use crate::{domain::ScopeSet, entities::clients, error::OAuthError};

/// The client a password grant without `client_id` is attributed to.
pub const DEFAULT_PUBLIC_CLIENT: &str = "posts-web";

/// The grant types this server implements.
pub const GRANT_TYPES: [&str; 3] = ["password", "refresh_token", "client_credentials"];

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
#[tracing::instrument(skip_all)]
pub async fn authenticate(
    db: &DatabaseConnection,
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
        clients::Entity::find_by_id(client_id.clone())
            .one(db)
            .await?
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
        grant_types: row
            .grant_types
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        scopes: ScopeSet::parse(&row.scopes).map_err(|e| anyhow::anyhow!("stored scopes: {e}"))?,
    })
}

/// The oxide-auth view of a stored client. These clients have no redirect URI (they use
/// grants without redirects); the out-of-band URN stands in for one so that an
/// authorization endpoint built on the same registrar refuses to redirect for them.
fn encode(row: &clients::Model) -> EncodedClient {
    let default_scope: Scope = row
        .scopes
        .parse()
        .unwrap_or_else(|_| "".parse().expect("empty scope"));
    EncodedClient {
        client_id: row.client_id.clone(),
        redirect_uri: RegisteredUrl::Exact(
            ExactUrl::new("urn:ietf:wg:oauth:2.0:oob".into()).expect("a valid URN"),
        ),
        additional_redirect_uris: vec![],
        default_scope,
        encoded_client: match &row.secret_hash {
            Some(hash) => ClientType::Confidential {
                passdata: hash.clone().into_bytes(),
            },
            None => ClientType::Public,
        },
    }
}

/// What `clients create` prints: the secret appears here once and is never stored.
#[derive(Serialize)]
pub struct CreatedClient {
    /// The client id.
    pub client_id: String,
    /// The secret of a confidential client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

impl fmt::Debug for CreatedClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedClient")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// A registered client as `clients list` prints it.
#[derive(Debug, Serialize)]
pub struct ClientInfo {
    /// The client id.
    pub client_id: String,
    /// `confidential` or `public`.
    pub client_type: &'static str,
    /// Allowed grant types.
    pub grant_types: Vec<String>,
    /// Allowed scopes, space-separated.
    pub scopes: String,
    /// Registration time.
    pub created_at: DateTime<Utc>,
}

/// Why a client could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// Bad id, grant type or scope.
    #[error("{0}")]
    Invalid(String),
    /// The id is taken.
    #[error("a client with this id already exists")]
    Exists,
    /// Database failure.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Registers a client. Confidential clients get a 256-bit random secret.
pub async fn register(
    db: &DatabaseConnection,
    client_id: &str,
    confidential: bool,
    grant_types: &[String],
    scopes: &str,
) -> Result<CreatedClient, RegisterError> {
    let valid_id = !client_id.is_empty()
        && client_id.len() <= 128
        && client_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c));
    if !valid_id {
        return Err(RegisterError::Invalid(
            "client_id must be 1-128 characters of A-Z a-z 0-9 - . _ ~".into(),
        ));
    }
    for grant in grant_types {
        if !GRANT_TYPES.contains(&grant.as_str()) {
            return Err(RegisterError::Invalid(format!(
                "unknown grant type `{grant}`"
            )));
        }
    }
    if grant_types.iter().any(|g| g == "client_credentials") && !confidential {
        return Err(RegisterError::Invalid(
            "client_credentials needs a confidential client (--confidential)".into(),
        ));
    }
    let scopes = ScopeSet::parse(scopes).map_err(|e| RegisterError::Invalid(e.to_string()))?;
    let secret = confidential.then(random_secret).transpose()?;
    let row = clients::ActiveModel {
        client_id: Set(client_id.to_owned()),
        secret_hash: Set(secret.as_deref().map(|s| hash_secret(s.as_bytes()))),
        grant_types: Set(grant_types.join(" ")),
        scopes: Set(scopes.to_string()),
        created_at: Set(Utc::now()),
    };
    match row.insert(db).await {
        Ok(_) => Ok(CreatedClient {
            client_id: client_id.to_owned(),
            client_secret: secret,
        }),
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            Err(RegisterError::Exists)
        }
        Err(e) => Err(RegisterError::Internal(e.into())),
    }
}

/// Every registered client, by id.
pub async fn list(db: &DatabaseConnection) -> anyhow::Result<Vec<ClientInfo>> {
    let rows = clients::Entity::find()
        .order_by_asc(clients::Column::ClientId)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| ClientInfo {
            client_type: if r.secret_hash.is_some() {
                "confidential"
            } else {
                "public"
            },
            grant_types: r
                .grant_types
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            client_id: r.client_id,
            scopes: r.scopes,
            created_at: r.created_at,
        })
        .collect())
}

/// Deletes a client; false when there was none.
pub async fn delete(db: &DatabaseConnection, client_id: &str) -> anyhow::Result<bool> {
    let result = clients::Entity::delete_by_id(client_id.to_owned())
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}

fn random_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_policy_accepts_only_the_stored_secret() {
        let stored = SecretHashPolicy.store("c", b"s3cret");
        assert!(SecretHashPolicy.check("c", b"s3cret", &stored).is_ok());
        assert!(SecretHashPolicy.check("c", b"s3cret!", &stored).is_err());
    }

    #[test]
    fn secrets_have_256_bits() {
        let secret = random_secret().unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(secret).unwrap().len(), 32);
    }
}
