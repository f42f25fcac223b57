//! Users and tokens in the control plane's repository: a user's tokens end with their
//! password, their account or a revocation, in the same transaction.

use kairos_rules::time::Timestamp;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{ControlStore, ts};
use crate::StoreError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub password_hash: String,
    pub roles: Vec<String>,
    /// A disabled user cannot log in and their tokens fail.
    pub disabled: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// `user` (the CLI and UI act as that user) or `touchpoint` (runtime calls for a channel).
    pub kind: String,
    /// The user name, or the channel a touchpoint token is for.
    pub subject: String,
    pub label: String,
    /// Digest of the secret; the secret itself is never stored.
    pub digest: String,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
    pub created_by: String,
    pub created_at: Timestamp,
}

impl Token {
    /// What names the token in lists and revocations: the start of its digest, which tells
    /// nothing about the secret.
    pub fn id(&self) -> &str {
        &self.digest[..self.digest.len().min(12)]
    }

    pub fn expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

const TOKEN_COLUMNS: &str = "digest, kind, subject, label, created_by, created_at, expires_at";

fn user(row: &AnyRow) -> Result<User, StoreError> {
    let roles: String = row.try_get("roles")?;
    Ok(User {
        name: row.try_get("name")?,
        password_hash: row.try_get("password_hash")?,
        roles: roles
            .split(',')
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .collect(),
        disabled: row.try_get::<i64, _>("disabled")? != 0,
    })
}

fn token(row: &AnyRow) -> Result<Token, StoreError> {
    Ok(Token {
        kind: row.try_get("kind")?,
        subject: row.try_get("subject")?,
        label: row.try_get("label")?,
        digest: row.try_get("digest")?,
        expires_at: row.try_get::<Option<i64>, _>("expires_at")?.map(Timestamp),
        created_by: row.try_get("created_by")?,
        created_at: ts(row, "created_at")?,
    })
}

impl ControlStore {
    // ---- users and tokens ----

    /// Creates or replaces a user. A changed password or a disabled user ends every token
    /// of theirs, in the same transaction.
    pub async fn put_user(&self, user: &User, at: Timestamp) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let before = sqlx::query("SELECT password_hash FROM kc_users WHERE name = $1")
            .bind(&user.name)
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| row.try_get::<String, _>("password_hash"))
            .transpose()?;
        sqlx::query(
            "INSERT INTO kc_users (name, password_hash, roles, created_at, disabled) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash, roles = excluded.roles, \
             disabled = excluded.disabled",
        )
        .bind(&user.name)
        .bind(&user.password_hash)
        .bind(user.roles.join(","))
        .bind(at.0)
        .bind(i64::from(user.disabled))
        .execute(&mut *tx)
        .await?;
        if user.disabled || before.is_some_and(|hash| hash != user.password_hash) {
            Self::end_user_tokens(&mut tx, &user.name).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a user and every token of theirs; whether there was one.
    pub async fn delete_user(&self, name: &str) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let done = sqlx::query("DELETE FROM kc_users WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        Self::end_user_tokens(&mut tx, name).await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn end_user_tokens(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        name: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM kc_tokens WHERE kind = 'user' AND subject = $1")
            .bind(name)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    pub async fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        sqlx::query("SELECT name, password_hash, roles, disabled FROM kc_users WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(user)
            .transpose()
    }

    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        sqlx::query("SELECT name, password_hash, roles, disabled FROM kc_users ORDER BY name")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(user)
            .collect()
    }

    pub async fn add_token(&self, token: &Token) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO kc_tokens (digest, kind, subject, label, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&token.digest)
        .bind(&token.kind)
        .bind(&token.subject)
        .bind(&token.label)
        .bind(&token.created_by)
        .bind(token.created_at.0)
        .bind(token.expires_at.map(|t| t.0))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Revokes the token whose [`Token::id`] (or whole digest) is `id`; the token it was, if
    /// any.
    pub async fn revoke_token(&self, id: &str) -> Result<Option<Token>, StoreError> {
        // An ID is hex: `LIKE` patterns in it are impossible, and a prefix match is exact.
        if id.len() < 12 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let mut tx = self.write().await?;
        let found = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM kc_tokens WHERE digest LIKE $1"
        ))
        .bind(format!("{id}%"))
        .fetch_all(&mut *tx)
        .await?;
        // Two digests sharing 48 bits: name neither rather than revoke both.
        let [row] = found.as_slice() else {
            return Ok(None);
        };
        let revoked = token(row)?;
        sqlx::query("DELETE FROM kc_tokens WHERE digest = $1")
            .bind(&revoked.digest)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(revoked))
    }

    /// Revokes every token of this kind, subject and label; returns how many there were.
    pub async fn revoke_tokens(
        &self,
        kind: &str,
        subject: &str,
        label: &str,
    ) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM kc_tokens WHERE kind = $1 AND subject = $2 AND label = $3")
                .bind(kind)
                .bind(subject)
                .bind(label)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected())
    }

    pub async fn token(&self, digest: &str) -> Result<Option<Token>, StoreError> {
        sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM kc_tokens WHERE digest = $1"
        ))
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(token)
        .transpose()
    }

    /// Tokens of one kind (`touchpoint` tokens go to the runtimes).
    pub async fn tokens(&self, kind: &str) -> Result<Vec<Token>, StoreError> {
        sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM kc_tokens WHERE kind = $1 ORDER BY created_at"
        ))
        .bind(kind)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(token)
        .collect()
    }
}
