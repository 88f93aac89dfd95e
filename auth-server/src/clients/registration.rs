//! Registering, listing and deleting clients (the `clients` admin commands).

use std::fmt;

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, QueryOrder, Set, SqlErr};
use serde::Serialize;

use super::{DEFAULT_PUBLIC_CLIENT, GRANT_TYPES, client_view, hash_secret};
use crate::{
    domain::{FullName, RedirectUri, ScopeSet},
    entities::clients,
};

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
    /// Shown on the consent page.
    pub name: String,
    /// `confidential` or `public`.
    pub client_type: &'static str,
    /// Allowed grant types.
    pub grant_types: Vec<String>,
    /// Allowed scopes, space-separated.
    pub scopes: String,
    /// Where authorization responses may go.
    pub redirect_uris: Vec<String>,
    /// Where the browser may be sent after logout.
    pub post_logout_redirect_uris: Vec<String>,
    /// Whether the consent page is skipped.
    pub trusted: bool,
    /// Registration time.
    pub created_at: DateTime<Utc>,
}

/// What `clients create` registers.
#[derive(Debug, Default)]
pub struct NewClient {
    /// The client id.
    pub client_id: String,
    /// Whether it gets a secret.
    pub confidential: bool,
    /// Allowed grant types.
    pub grant_types: Vec<String>,
    /// Allowed scopes, space-separated.
    pub scopes: String,
    /// Redirect URIs (required with `authorization_code`).
    pub redirect_uris: Vec<String>,
    /// Post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// Skip the consent page.
    pub trusted: bool,
    /// Shown on the consent page.
    pub name: Option<String>,
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
    new: NewClient,
) -> Result<CreatedClient, RegisterError> {
    let NewClient {
        client_id,
        confidential,
        grant_types,
        scopes,
        redirect_uris,
        post_logout_redirect_uris,
        trusted,
        name,
    } = new;
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
    for grant in &grant_types {
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
    let scopes = ScopeSet::parse(&scopes).map_err(|e| RegisterError::Invalid(e.to_string()))?;
    let parse_all = |uris: &[String]| -> Result<Vec<String>, RegisterError> {
        let mut parsed: Vec<String> = Vec::new();
        for uri in uris {
            let uri = RedirectUri::parse(uri).map_err(RegisterError::Invalid)?;
            if !parsed.iter().any(|p| p == uri.as_str()) {
                parsed.push(uri.as_str().to_owned());
            }
        }
        Ok(parsed)
    };
    let redirect_uris = parse_all(&redirect_uris)?;
    let post_logout_redirect_uris = parse_all(&post_logout_redirect_uris)?;
    // The built-in client's redirect URIs come from AUTH_POSTS_WEB_REDIRECT_URIS.
    if grant_types.iter().any(|g| g == "authorization_code")
        && redirect_uris.is_empty()
        && client_id != DEFAULT_PUBLIC_CLIENT
    {
        return Err(RegisterError::Invalid(
            "the authorization_code grant needs at least one --redirect-uri".into(),
        ));
    }
    let name = name
        .map(|n| FullName::parse(&n).map(|n| n.as_str().to_owned()))
        .transpose()
        .map_err(|e| RegisterError::Invalid(e.replace("full_name", "name")))?;
    let secret = confidential.then(random_secret).transpose()?;
    let row = clients::ActiveModel {
        client_id: Set(client_id.clone()),
        secret_hash: Set(secret.as_deref().map(|s| hash_secret(s.as_bytes()))),
        grant_types: Set(grant_types.join(" ")),
        scopes: Set(scopes.to_string()),
        created_at: Set(Utc::now()),
        redirect_uris: Set(redirect_uris.join(" ")),
        post_logout_redirect_uris: Set(post_logout_redirect_uris.join(" ")),
        trusted: Set(trusted),
        name: Set(name),
    };
    match row.insert(db).await {
        Ok(_) => Ok(CreatedClient {
            client_id,
            client_secret: secret,
        }),
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            Err(RegisterError::Exists)
        }
        Err(e) => Err(RegisterError::Internal(e.into())),
    }
}

/// Every registered client, by id, as the server sees them (`posts_web_redirect_uris` as
/// for [`find`]).
pub async fn list(
    db: &DatabaseConnection,
    posts_web_redirect_uris: &[RedirectUri],
) -> anyhow::Result<Vec<ClientInfo>> {
    let rows = clients::Entity::find()
        .order_by_asc(clients::Column::ClientId)
        .all(db)
        .await?;
    rows.into_iter()
        .map(|row| {
            let created_at = row.created_at;
            let client = client_view(row, posts_web_redirect_uris)?;
            let strings = |uris: &[RedirectUri]| uris.iter().map(|u| u.to_string()).collect();
            Ok(ClientInfo {
                client_type: if client.confidential {
                    "confidential"
                } else {
                    "public"
                },
                redirect_uris: strings(&client.redirect_uris),
                post_logout_redirect_uris: strings(&client.post_logout_redirect_uris),
                trusted: client.trusted,
                scopes: client.scopes.to_string(),
                grant_types: client.grant_types,
                name: client.name,
                client_id: client.client_id,
                created_at,
            })
        })
        .collect()
}

/// Deletes a client; false when there was none.
pub async fn delete(db: &DatabaseConnection, client_id: &str) -> anyhow::Result<bool> {
    let result = clients::Entity::delete_by_id(client_id.to_owned())
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}

fn random_secret() -> anyhow::Result<String> {
    crate::digest::random_token()
}

#[cfg(test)]
mod tests {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

    #[test]
    fn secrets_have_256_bits() {
        let secret = super::random_secret().unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(secret).unwrap().len(), 32);
    }
}
