//! The SQL backend, for SQLite and PostgreSQL alike through sqlx's `Any` driver: the statements
//! are portable (numbered placeholders, `ON CONFLICT` upserts); only the table definitions and
//! connection settings differ. The one exception is SQLite's history commits, which go through
//! [`sqlite_writer`] (one row at a time, on a connection of their own, with ids that follow
//! time: see [`crate::statements::sqlite_history_insert`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use kairos_engine::world::{AudienceState, HistoryRecord, Origin, Treatment, TreatmentCode};
use kairos_rules::time::Timestamp;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

use crate::migrate::{self, migrate};
use crate::sqlite_writer;
use crate::statements::{
    COLUMNS, COUNTED_IDS_BELOW, Cell, Dialect, ROWS_PER_STATEMENT, audience_upsert, history_insert,
    placeholders, record_cells, unix_seconds,
};
use crate::{
    Backend, Batch, BoxFuture, OfferStats, StoreError, WriteQueue, decode_state, fold_stats,
    kind_from_name, resolve_states,
};

pub struct Sql {
    pool: AnyPool,
    dialect: Dialect,
    /// The SQLite database file, which the history writer opens a connection of its own to.
    sqlite_path: Option<std::path::PathBuf>,
    /// Every history id is at least its row's time (see [`crate::statements::sqlite_history_insert`]): true on
    /// SQLite unless rows from an earlier version, with counted ids, are in the table.
    ids_follow_time: bool,
    /// When the last background checkpoint started (ms since `epoch`), or -1 while one runs.
    checkpoint_started: Arc<AtomicI64>,
    epoch: Instant,
}

/// How often the log is checkpointed into the database beside the writer.
const CHECKPOINT_EVERY_MS: i64 = 100;

/// A pool for `sqlite://PATH` (created when missing; WAL; commits survive power loss) or
/// `postgres://...`.
pub(crate) async fn connect(url: &str) -> Result<(AnyPool, Dialect), StoreError> {
    sqlx::any::install_default_drivers();
    let dialect = if url.starts_with("sqlite://") {
        Dialect::Sqlite
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Dialect::Postgres
    } else {
        return Err(StoreError::Url(url.to_string()));
    };
    let (url, max_connections) = match dialect {
        // Create the file when missing; one writer plus readers.
        Dialect::Sqlite => (
            if url.contains('?') {
                url.to_string()
            } else {
                format!("{url}?mode=rwc")
            },
            4,
        ),
        Dialect::Postgres => (url.to_string(), 8),
    };
    let pool = AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if dialect == Dialect::Sqlite {
                    // WAL for concurrent readers; FULL so a commit survives power loss, not
                    // just a crash (the history writer has its own connection, see
                    // `sqlite_writer`); wait rather than fail when another writer holds the lock.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = FULL").await?;
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                }
                Ok(())
            })
        })
        .connect(&url)
        .await?;
    Ok((pool, dialect))
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Binds one history row's 15 columns.
fn bind_record<'q>(query: AnyQuery<'q>, r: &'q HistoryRecord) -> AnyQuery<'q> {
    record_cells(r)
        .into_iter()
        .fold(query, |query, cell| match cell {
            Cell::Text(text) => query.bind(text),
            Cell::OptionalText(text) => query.bind(text),
            Cell::Integer(number) => query.bind(number),
            Cell::Real(number) => query.bind(number),
        })
}

/// Text to store for a value bound as a string.
pub(crate) fn text_of(value: &kairos_rules::Value) -> String {
    match value {
        kairos_rules::Value::String(s) => s.to_string(),
        other => other.to_string(),
    }
}

fn treatment(row: &AnyRow) -> Result<Treatment, StoreError> {
    let text = |column: &str| row.try_get::<String, _>(column).map(Arc::<str>::from);
    let optional = |column: &str| {
        row.try_get::<Option<String>, _>(column)
            .map(|v| v.map(Arc::<str>::from))
    };
    Ok(Treatment {
        code: TreatmentCode::from(&*text("treatment_code")?),
        origin: Arc::new(Origin {
            offer: text("offer")?,
            category: optional("category")?,
            rule: text("rule")?,
            segment: optional("segment")?,
        }),
        ip: text("ip")?,
        zone: text("zone")?,
        score: row.try_get("score")?,
        deployment: row.try_get::<i64, _>("deployment")? as u64,
        session_id: text("session_id")?,
        audience: text("audience")?,
        issued_at: Timestamp(row.try_get("issued_at")?),
    })
}

/// Contacts, accepts or rejects of one offer in one segment, zone and day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PerformanceRow {
    pub offer: String,
    /// Empty when the rule was for every visitor.
    pub segment: String,
    pub zone: String,
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    /// `contact`, `accept` or `reject`.
    pub kind: String,
    pub count: i64,
}

impl Sql {
    /// History counted per offer, segment, zone, day and kind, since `since`: what offer
    /// performance reports are made of.
    pub async fn performance(&self, since: Timestamp) -> Result<Vec<PerformanceRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT offer, COALESCE(segment, '') AS segment, zone, at / 86400000000000 AS day, kind, COUNT(*) AS n \
             FROM kairos_history WHERE {} GROUP BY offer, COALESCE(segment, ''), zone, at / 86400000000000, kind",
            self.since_first_parameter()
        ))
        .bind(since.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PerformanceRow {
                    offer: r.try_get("offer")?,
                    segment: r.try_get("segment")?,
                    zone: r.try_get("zone")?,
                    day: r.try_get("day")?,
                    kind: r.try_get("kind")?,
                    count: r.try_get("n")?,
                })
            })
            .collect()
    }

    /// The condition for rows at or after the time bound as `$1`. Where ids follow time, a
    /// row at or after it has an id at or after it, and the query reads only those ids;
    /// elsewhere the index on `at` finds the rows (with both terms, SQLite's planner would
    /// pick the id range there, all of the table).
    fn since_first_parameter(&self) -> &'static str {
        if self.ids_follow_time {
            "at >= $1 AND id >= $1"
        } else {
            "at >= $1"
        }
    }

    pub async fn open(url: &str) -> Result<Sql, StoreError> {
        let (pool, dialect) = connect(url).await?;
        migrate(&pool, dialect, "history", migrate::HISTORY).await?;
        let ids_follow_time = dialect == Dialect::Sqlite
            && sqlx::query_scalar::<_, i64>(&format!(
                "SELECT NOT EXISTS (SELECT 1 FROM kairos_history WHERE id < {COUNTED_IDS_BELOW} AND id < at)"
            ))
            .fetch_one(&pool)
            .await?
                != 0;
        let sqlite_path = (dialect == Dialect::Sqlite).then(|| {
            let path = url.trim_start_matches("sqlite://").split('?').next();
            path.unwrap_or_default().into()
        });
        Ok(Sql {
            pool,
            dialect,
            sqlite_path,
            ids_follow_time,
            checkpoint_started: Arc::new(AtomicI64::new(0)),
            epoch: Instant::now(),
        })
    }

    /// Copies the log into the database on a reader connection, at most every
    /// [`CHECKPOINT_EVERY_MS`]: the writer's own checkpoint would hold up every commit behind
    /// it while it copies and syncs (contact-load p99 82 ms here, 14 ms with this). A passive
    /// checkpoint never blocks the writer.
    fn checkpoint(&self) {
        let now = self.epoch.elapsed().as_millis() as i64;
        let last = self.checkpoint_started.load(Ordering::Relaxed);
        if last < 0
            || now - last < CHECKPOINT_EVERY_MS
            || self
                .checkpoint_started
                .compare_exchange(last, -1, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let (pool, started) = (self.pool.clone(), self.checkpoint_started.clone());
        tokio::spawn(async move {
            // A failure leaves the log to the next checkpoint, or to the writer's own.
            let _ = pool.execute("PRAGMA wal_checkpoint(PASSIVE)").await;
            started.store(now, Ordering::Relaxed);
        });
    }

    /// One transaction through the pool, durable once it returns (PostgreSQL's commits are
    /// synced).
    async fn commit(&self, batch: &Batch) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // Multi-row statements: one round trip per chunk, not per row.
        for chunk in batch.records.chunks(ROWS_PER_STATEMENT) {
            let sql = history_insert(chunk.len(), self.dialect);
            chunk
                .iter()
                .fold(sqlx::query(&sql), bind_record)
                .execute(&mut *tx)
                .await?;
        }
        let now = unix_seconds();
        let mut keys: Vec<&str> = batch
            .states
            .iter()
            .filter(|w| w.base.is_some())
            .map(|w| w.key.as_str())
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let mut stored = HashMap::new();
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            if self.dialect == Dialect::Postgres {
                // Other instances write these audiences too: one transaction at a time each,
                // taken in key order so two commits never wait on each other.
                let lock = format!(
                    "SELECT pg_advisory_xact_lock(hashtext(k)) FROM (VALUES {}) AS v(k) ORDER BY k",
                    placeholders(chunk.len(), 1, self.dialect)
                );
                chunk
                    .iter()
                    .fold(sqlx::query(&lock), |q, key| q.bind(*key))
                    .execute(&mut *tx)
                    .await?;
            }
            let list = placeholders(chunk.len(), 1, self.dialect);
            let read = format!(
                "SELECT audience, state FROM kairos_audience WHERE audience IN ({})",
                list.replace(['(', ')'], "")
            );
            let rows = chunk
                .iter()
                .fold(sqlx::query(&read), |q, key| q.bind(*key))
                .fetch_all(&mut *tx)
                .await?;
            for row in rows {
                stored.insert(row.try_get("audience")?, row.try_get("state")?);
            }
        }
        // Each audience once, as one upsert statement requires.
        let states = resolve_states(&batch.states, &stored);
        for chunk in states.chunks(ROWS_PER_STATEMENT) {
            let sql = audience_upsert(chunk.len(), self.dialect);
            let mut query = sqlx::query(&sql);
            for (key, state) in chunk {
                query = query.bind(key).bind(state).bind(now);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

impl Backend for Sql {
    fn start_writer(self: Arc<Self>, mut queue: WriteQueue) -> Result<(), StoreError> {
        if let Some(path) = self.sqlite_path.clone() {
            // The writer thread asks for checkpoints, which run on this runtime.
            let runtime = tokio::runtime::Handle::current();
            return sqlite_writer::start(&path, queue, move || {
                let _entered = runtime.enter();
                self.checkpoint();
            });
        }
        tokio::spawn(async move {
            while let Some(group) = queue.next().await {
                let result = self.commit(&group.batch).await;
                group.acknowledge(result.map_err(|e| e.to_string()));
            }
        });
        Ok(())
    }

    fn find_contact<'a>(
        &'a self,
        code: &'a str,
    ) -> BoxFuture<'a, Result<Option<Treatment>, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM kairos_history WHERE treatment_code = $1 AND kind = 'contact' ORDER BY id LIMIT 1"
            ))
            .bind(code)
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(treatment).transpose()
        })
    }

    fn load_audience<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<AudienceState>, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT state FROM kairos_audience WHERE audience = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
            row.map(|r| decode_state(&r.try_get::<String, _>("state")?))
                .transpose()
        })
    }

    fn offer_stats(&self) -> BoxFuture<'_, Result<Vec<OfferStats>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT offer, segment, kind, COUNT(*) AS n FROM kairos_history GROUP BY offer, segment, kind ORDER BY offer, segment, kind",
            )
            .fetch_all(&self.pool)
            .await?;
            let rows = rows
                .iter()
                .map(|r| {
                    Ok((
                        r.try_get("offer")?,
                        r.try_get("segment")?,
                        r.try_get("kind")?,
                        r.try_get("n")?,
                    ))
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            fold_stats(rows)
        })
    }

    fn contacts_since(
        &self,
        since: Timestamp,
    ) -> BoxFuture<'_, Result<Vec<(String, Timestamp)>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(&format!(
                "SELECT offer, at FROM kairos_history WHERE kind = 'contact' AND {} ORDER BY at",
                self.since_first_parameter()
            ))
            .bind(since.0)
            .fetch_all(&self.pool)
            .await?;
            Ok(rows
                .iter()
                .map(|r| Ok((r.try_get("offer")?, Timestamp(r.try_get("at")?))))
                .collect::<Result<Vec<_>, sqlx::Error>>()?)
        })
    }

    fn history(&self) -> BoxFuture<'_, Result<Vec<HistoryRecord>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM kairos_history ORDER BY id"))
                .fetch_all(&self.pool)
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(HistoryRecord {
                        kind: kind_from_name(&r.try_get::<String, _>("kind")?)?,
                        treatment: treatment(r)?,
                        at: Timestamp(r.try_get("at")?),
                        cross_session: r.try_get::<i64, _>("cross_session")? != 0,
                    })
                })
                .collect()
        })
    }
}
