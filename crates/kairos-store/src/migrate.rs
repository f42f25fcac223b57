//! Schema migrations: each store's numbered changes (`migrations/<store>/NNNN_*.sql`, one text
//! per dialect where they differ), applied once, in order, under a lock.
//!
//! Our own runner rather than sqlx's: its migrator takes no lock on SQLite (two processes
//! opening a fresh file both apply the first migration, and one fails on the bookkeeping row),
//! applies each migration in a transaction of its own, and `migrate!` would build sqlx's
//! macros. Here every pending migration of a store and its bookkeeping are one transaction,
//! begun under the lock: on PostgreSQL a transaction-scoped advisory lock per schema, on SQLite
//! `BEGIN IMMEDIATE` (the database's write lock). A second process waits for the first, then
//! finds nothing to do.

use sqlx::{AnyPool, Executor};

use crate::StoreError;
use crate::statements::{Dialect, unix_seconds};

/// One schema change of one store.
pub(crate) struct Migration {
    pub version: i64,
    pub description: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

impl Migration {
    fn sql(&self, dialect: Dialect) -> &'static str {
        match dialect {
            Dialect::Sqlite => self.sqlite,
            Dialect::Postgres => self.postgres,
        }
    }
}

/// The first of the two keys of Kairos' advisory lock (the second is the schema's hash).
const LOCK_CLASS: i32 = 0x4b41_4952; // "KAIR"

/// Applies `store`'s pending `migrations` (in ascending version order). A database whose
/// `store` schema is newer than this build knows is refused, not written to.
pub(crate) async fn migrate(
    pool: &AnyPool,
    dialect: Dialect,
    store: &str,
    migrations: &[Migration],
) -> Result<(), StoreError> {
    let mut tx = match dialect {
        Dialect::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await?,
        Dialect::Postgres => {
            let mut tx = pool.begin().await?;
            // `current_schema()` is NULL when no schema of the search path exists; the lock is
            // then taken on 0, which still serialises every starter.
            sqlx::query(
                "SELECT pg_advisory_xact_lock($1, COALESCE(hashtext(current_schema()), 0))",
            )
            .bind(LOCK_CLASS)
            .execute(&mut *tx)
            .await?;
            tx
        }
    };
    tx.execute(
        "CREATE TABLE IF NOT EXISTS kairos_migrations (store TEXT NOT NULL, version BIGINT NOT NULL, \
         description TEXT NOT NULL, applied_at BIGINT NOT NULL, PRIMARY KEY (store, version))",
    )
    .await?;
    let applied: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(version), 0) FROM kairos_migrations WHERE store = $1",
    )
    .bind(store)
    .fetch_one(&mut *tx)
    .await?;
    let known = migrations.last().map_or(0, |m| m.version);
    if applied > known {
        return Err(StoreError::SchemaTooNew {
            store: store.to_string(),
            applied,
            known,
        });
    }
    for migration in migrations.iter().filter(|m| m.version > applied) {
        tx.execute(migration.sql(dialect)).await?;
        sqlx::query(
            "INSERT INTO kairos_migrations (store, version, description, applied_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(store)
        .bind(migration.version)
        .bind(migration.description)
        .bind(unix_seconds())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The migrations of the history store (history rows and audience states).
pub(crate) const HISTORY: &[Migration] = &[Migration {
    version: 1,
    description: "history and audience states",
    sqlite: include_str!("../migrations/history/0001_initial.sqlite.sql"),
    postgres: include_str!("../migrations/history/0001_initial.postgres.sql"),
}];

/// The migrations of the control plane's repository.
pub(crate) const CONTROL: &[Migration] = &[
    Migration {
        version: 1,
        description: "design repository, versions, groups, users, audit",
        sqlite: include_str!("../migrations/control/0001_initial.sqlite.sql"),
        postgres: include_str!("../migrations/control/0001_initial.postgres.sql"),
    },
    Migration {
        version: 2,
        description: "component changes, disabled users, token expiry, open groups",
        sqlite: include_str!("../migrations/control/0002_review_and_tokens.sqlite.sql"),
        postgres: include_str!("../migrations/control/0002_review_and_tokens.postgres.sql"),
    },
    Migration {
        version: 3,
        description: "origins allowed to call a group's runtimes",
        sqlite: include_str!("../migrations/control/0003_cors.sqlite.sql"),
        postgres: include_str!("../migrations/control/0003_cors.postgres.sql"),
    },
];

/// The migrations of the profile store (imported tables' schemas).
pub(crate) const PROFILES: &[Migration] = &[Migration {
    version: 1,
    description: "imported table schemas",
    sqlite: include_str!("../migrations/profiles/0001_initial.sql"),
    postgres: include_str!("../migrations/profiles/0001_initial.sql"),
}];
