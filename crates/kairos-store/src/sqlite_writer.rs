//! The SQLite history writer: one thread owning one connection, for the commits of
//! [`crate::HistoryStore`]. A batch is one transaction of cached one-row statements, handed
//! over once. Through sqlx, every statement of a batch (begin, inserts, upserts, commit) was
//! a round trip between the async runtime and the connection's worker thread, and its
//! arguments were copied twice on the way: together about a third of the CPU a logged
//! contact event cost.

use std::path::Path;
use std::sync::mpsc;

use rusqlite::types::ToSqlOutput;
use rusqlite::{Connection, ToSql, TransactionBehavior, params};
use tokio::sync::oneshot;

use crate::sql::{Cell, Dialect, audience_upsert, history_insert, record_cells, unix_seconds};
use crate::{Batch, StoreError, encode_state};

type Job = (Batch, oneshot::Sender<Result<(), String>>);

pub(crate) struct SqliteWriter {
    jobs: mpsc::Sender<Job>,
}

impl SqliteWriter {
    /// Opens the database file (its tables already made) and starts the writer thread; the
    /// thread ends when the writer is dropped.
    pub(crate) fn open(path: &Path) -> Result<SqliteWriter, StoreError> {
        let failed = |e: rusqlite::Error| {
            StoreError::WriteFailed(format!("opening {} for writing: {e}", path.display()))
        };
        let mut conn = Connection::open(path).map_err(failed)?;
        // NORMAL: a commit returns once in the log, and `Sql::sync` syncs the log before any
        // write is acknowledged. Checkpoints run beside the writer (see `Sql::checkpoint`);
        // its own, at 8 MiB of log, finds little left to copy, and it is what lets the log
        // restart from its beginning under steady load.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             PRAGMA wal_autocheckpoint = 2048; PRAGMA busy_timeout = 5000;",
        )
        .map_err(failed)?;
        let (jobs, received) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("kairos-history".into())
            .spawn(move || {
                // Written once: every batch looks its cached statements up by these texts.
                let statements = Statements {
                    insert: history_insert(1, Dialect::Sqlite),
                    upsert: audience_upsert(1, Dialect::Sqlite),
                };
                for (batch, done) in received {
                    let result = commit(&mut conn, &statements, &batch);
                    let _ = done.send(result.map_err(|e| e.to_string()));
                }
            })
            .map_err(|e| StoreError::WriteFailed(format!("starting the history writer: {e}")))?;
        Ok(SqliteWriter { jobs })
    }

    /// Commits the batch (the log is not yet synced when this returns).
    pub(crate) async fn write(&self, batch: Batch) -> Result<(), StoreError> {
        let (done, result) = oneshot::channel();
        self.jobs
            .send((batch, done))
            .map_err(|_| StoreError::WriterStopped)?;
        result
            .await
            .map_err(|_| StoreError::WriterStopped)?
            .map_err(StoreError::WriteFailed)
    }
}

/// The one-row statements a commit runs.
struct Statements {
    insert: String,
    upsert: String,
}

/// One transaction: all of the batch or, on any error, none of it.
fn commit(conn: &mut Connection, statements: &Statements, batch: &Batch) -> rusqlite::Result<()> {
    let now = unix_seconds();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut insert = tx.prepare_cached(&statements.insert)?;
        for r in &batch.records {
            insert.execute(rusqlite::params_from_iter(record_cells(r)))?;
        }
        let mut upsert = tx.prepare_cached(&statements.upsert)?;
        for (key, state) in &batch.states {
            upsert.execute(params![key, encode_state(state), now])?;
        }
    }
    // Dropped without a commit on the way out of an error, the transaction rolls back.
    tx.commit()
}

impl ToSql for Cell<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self {
            Cell::Text(text) => text.to_sql(),
            Cell::OptionalText(text) => text.to_sql(),
            Cell::Integer(number) => number.to_sql(),
            Cell::Real(number) => number.to_sql(),
        }
    }
}
