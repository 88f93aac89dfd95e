//! What every handler can reach: the application state, attached to the routes with
//! `.data()` and taken as `Data<&AppState>`.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::{
    clients::{self, AuthenticatedClient, Client, ClientCache, Credentials},
    config::Settings,
    error::OAuthError,
    keys::KeyStore,
    metrics::Metrics,
    passwords::PasswordHasher,
    tokens::{AccessClaims, AccessTokenIssuer, VerifyError},
};

/// What every handler can reach, attached with `.data()`.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Connections for reads.
    pub db: DatabaseConnection,
    /// On an SQLite file, read-only connections used on the calling thread for the
    /// hottest lookups (see `sqlite-readers`); `None` on PostgreSQL and in memory.
    pub readers: Option<sqlite_readers::Readers>,
    /// Client rows, invalidated through the database (see `clients::ClientCache`).
    pub clients: Arc<ClientCache>,
    /// The connection for writes and transactions (see [`crate::db::Databases`]).
    pub writer: DatabaseConnection,
    /// The settings the server started with.
    pub settings: Arc<Settings>,
    /// The signing keys.
    pub keys: Arc<KeyStore>,
    /// Argon2id hashing.
    pub hasher: PasswordHasher,
    /// Signs access tokens.
    pub issuer: AccessTokenIssuer,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Commits refresh-token rotations, several per transaction.
    pub rotator: crate::tokens::rotation::Rotator,
    /// One password check at a time per account.
    pub login_gate: Arc<crate::throttle::AccountGate>,
}

impl AppState {
    /// Verifies an access token this server issued and checks it was not revoked.
    pub async fn verify_access_token(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        let claims = self.issuer.verify(token)?;
        match crate::tokens::refresh::access_token_revoked(&self.db, &claims.jti).await {
            Ok(false) => Ok(claims),
            Ok(true) => Err(VerifyError::Invalid("token revoked".into())),
            Err(e) => Err(VerifyError::Unchecked(e)),
        }
    }

    /// The registered client `client_id`, as the sign-in and logout pages see it.
    pub async fn find_client(&self, client_id: &str) -> anyhow::Result<Option<Client>> {
        let posts_web = &self.settings.posts_web_redirect_uris.0;
        clients::find(
            &self.db,
            self.readers.as_ref(),
            &self.clients,
            client_id,
            posts_web,
        )
        .await
    }

    /// Authenticates the client of a token, revocation or introspection request.
    pub async fn authenticate_client(
        &self,
        credentials: Credentials,
    ) -> Result<AuthenticatedClient, OAuthError> {
        clients::authenticate(&self.db, self.readers.as_ref(), &self.clients, credentials).await
    }
}
