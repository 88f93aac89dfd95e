//! Signing keys in the auth database, private keys encrypted under
//! `AUTH_KEYS_ENCRYPTION_KEY`: replicas on different hosts share them without a shared
//! disk, and a database dump alone does not give the keys away.

use std::sync::Arc;

use rsa::pkcs8::SecretDocument;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, SqlErr, sea_query::Expr,
};

use super::{
    EncryptionKey, KeyMeta, PrivateKey,
    storage::{Change, KeySet, KeyStorage, WriteError},
};
use crate::entities::signing_keys::{self, Column, Entity};

/// The `signing_keys` table.
#[derive(Clone)]
pub struct KeyDatabase {
    reader: DatabaseConnection,
    writer: DatabaseConnection,
    key: Arc<EncryptionKey>,
}

// Names the store only: the connections' Debug is not ours to vouch for.
impl std::fmt::Debug for KeyDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyDatabase")
    }
}

impl KeyDatabase {
    /// The table, once `key` is known to be the key its rows were encrypted with.
    ///
    /// Checked before anything else runs, so that a wrong key stops the server (or the
    /// CLI) before it could add a key encrypted under it next to the stored ones: one row
    /// that opens proves the key (AES-GCM authenticates); rows that do not are reported
    /// as corrupted when they are loaded.
    pub async fn open(
        reader: DatabaseConnection,
        writer: DatabaseConnection,
        key: EncryptionKey,
    ) -> anyhow::Result<Self> {
        let store = Self {
            reader,
            writer,
            key: Arc::new(key),
        };
        let rows = Entity::find()
            .order_by_desc(Column::Seq)
            .all(&store.reader)
            .await?;
        if rows.is_empty() {
            return Ok(store);
        }
        let count = rows.len();
        let key = store.key.clone();
        let opens = tokio::task::spawn_blocking(move || {
            rows.iter()
                .any(|row| key.open(&row.kid, &row.encrypted_key).is_ok())
        })
        .await?;
        anyhow::ensure!(
            opens,
            "AUTH_KEYS_ENCRYPTION_KEY does not decrypt any of the {count} signing keys in the \
             database: it is not the key they were encrypted with. Nothing was changed; start \
             again with the right key"
        );
        Ok(store)
    }
}

fn meta(row: &signing_keys::Model) -> KeyMeta {
    KeyMeta {
        kid: row.kid.clone(),
        created_at: row.created_at,
        active_from: row.active_from,
        retired_at: row.retired_at,
        revoked_at: row.revoked_at,
    }
}

#[async_trait::async_trait]
impl KeyStorage for KeyDatabase {
    async fn list(&self) -> anyhow::Result<KeySet> {
        let rows = Entity::find()
            .order_by_asc(Column::Seq)
            .all(&self.reader)
            .await?;
        let version = rows.iter().map(|r| r.seq).max().unwrap_or(0);
        let mut keys: Vec<KeyMeta> = rows.iter().map(meta).collect();
        keys.sort_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)));
        Ok(KeySet {
            keys,
            version: u64::try_from(version)?,
        })
    }

    async fn load(&self, kid: &str) -> anyhow::Result<PrivateKey> {
        let row = Entity::find_by_id(kid.to_owned())
            .one(&self.reader)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no key with kid `{kid}` in the database"))?;
        let key = self.key.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<PrivateKey> {
            let der = key.open(&row.kid, &row.encrypted_key)?;
            let fail = |e: &dyn std::fmt::Display| {
                anyhow::anyhow!(
                    "the private key of {} in the database is corrupted: {e}",
                    row.kid
                )
            };
            let der = SecretDocument::try_from(der).map_err(|e| fail(&e))?;
            let private = PrivateKey::from_der(der).map_err(|e| fail(&e))?;
            if private.kid() != row.kid {
                return Err(fail(&"it holds another key than its kid says"));
            }
            Ok(private)
        })
        .await?
    }

    async fn insert(
        &self,
        version: u64,
        meta: &KeyMeta,
        key: &PrivateKey,
    ) -> Result<(), WriteError> {
        let sealer = self.key.clone();
        let (kid, private) = (meta.kid.clone(), key.clone());
        let encrypted_key = tokio::task::spawn_blocking(move || sealer.seal(&kid, private.der()))
            .await
            .map_err(anyhow::Error::from)??;
        let row = signing_keys::ActiveModel {
            kid: sea_orm::Set(meta.kid.clone()),
            seq: sea_orm::Set(i64::try_from(version + 1).map_err(anyhow::Error::from)?),
            created_at: sea_orm::Set(meta.created_at),
            active_from: sea_orm::Set(meta.active_from),
            retired_at: sea_orm::Set(meta.retired_at),
            revoked_at: sea_orm::Set(meta.revoked_at),
            encrypted_key: sea_orm::Set(encrypted_key),
        };
        match row.insert(&self.writer).await {
            Ok(_) => {
                tracing::info!(kid = %meta.kid, "wrote a signing key to the database");
                Ok(())
            }
            // Another replica took this `seq` first: it saw the same keys and added one.
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Err(WriteError::Conflict)
            }
            Err(e) => Err(anyhow::Error::from(e).into()),
        }
    }

    async fn update(&self, kid: &str, change: Change) -> Result<(), WriteError> {
        // The preconditions of `Change::apply`, as one conditional UPDATE.
        let usable = Condition::all()
            .add(Column::RevokedAt.is_null())
            .add(Column::RetiredAt.is_null());
        let (column, at, condition) = match change {
            Change::Schedule { at } => (
                Column::ActiveFrom,
                at,
                usable.add(Column::ActiveFrom.is_null()),
            ),
            Change::PromoteNow { at } => (
                Column::ActiveFrom,
                at,
                usable.add(
                    Condition::any()
                        .add(Column::ActiveFrom.is_null())
                        .add(Column::ActiveFrom.gt(at)),
                ),
            ),
            Change::Revoke { at } => (
                Column::RevokedAt,
                at,
                Condition::all().add(Column::RevokedAt.is_null()),
            ),
        };
        let result = Entity::update_many()
            .col_expr(column, Expr::value(at))
            .filter(Column::Kid.eq(kid))
            .filter(condition)
            .exec(&self.writer)
            .await
            .map_err(anyhow::Error::from)?;
        if result.rows_affected == 1 {
            return Ok(());
        }
        let exists = Entity::find_by_id(kid.to_owned())
            .one(&self.writer)
            .await
            .map_err(anyhow::Error::from)?
            .is_some();
        if exists {
            Err(WriteError::Conflict)
        } else {
            Err(anyhow::anyhow!("no key with kid `{kid}` in the database").into())
        }
    }
}
