//! The SQLite history writer: one thread owning one connection, taking groups straight from
//! the [`WriteQueue`] and committing each as one transaction of cached one-row statements,
//! synced before it is acknowledged. Every hand-off between threads costs context switches,
//! dear on a small virtual machine: through sqlx every statement was a round trip to a worker
//! thread, and with the sync on the blocking pool a group took four hand-offs where it now
//! takes one each way (0.8 context switches per contact-load request before, 0.5 now).

use std::collections::HashMap;
use std::path::Path;

use rusqlite::types::ToSqlOutput;
use rusqlite::{Connection, OpenFlags, OptionalExtension, ToSql, params};

use crate::statements::{
    Cell, Dialect, SQLITE_LAST_HISTORY_ID, audience_upsert, next_history_id, record_cells,
    sqlite_history_insert, unix_seconds,
};
use crate::{Batch, StoreError, WriteQueue, log_vfs, resolve_states};

/// Opens the database file (its tables already made) and starts the writer thread, which
/// calls `after_commit` after each commit and ends when the queue closes.
pub(crate) fn start(
    path: &Path,
    mut queue: WriteQueue,
    mut after_commit: impl FnMut() + Send + 'static,
) -> Result<(), StoreError> {
    let failed = |e: rusqlite::Error| {
        StoreError::WriteFailed(format!("opening {} for writing: {e}", path.display()))
    };
    log_vfs::register().map_err(StoreError::WriteFailed)?;
    // Through the VFS that passes each commit's log frames to the file in one write.
    let conn = Connection::open_with_flags_and_vfs(path, OpenFlags::default(), log_vfs::NAME)
        .map_err(failed)?;
    // FULL: a commit returns once the log is synced, so a group is acknowledged only once it
    // is on disk; what queues during the sync is the next group. The VFS relies on it too:
    // it passes held frames on when they are synced, and FULL syncs every commit before
    // other connections can see it. Checkpoints run beside the writer (see
    // `Sql::checkpoint`); its own, at 8 MiB of log, finds little left to copy, and it is what
    // lets the log restart from its beginning under steady load.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
         PRAGMA wal_autocheckpoint = 2048; PRAGMA busy_timeout = 5000;",
    )
    .map_err(failed)?;
    std::thread::Builder::new()
        .name("kairos-history".into())
        .spawn(move || {
            // Written once: every batch looks its cached statements up by these texts.
            let statements = Statements {
                insert: sqlite_history_insert(),
                upsert: audience_upsert(1, Dialect::Sqlite),
            };
            while let Some(group) = queue.next_blocking() {
                let result = commit(&conn, &statements, &group.batch);
                group.acknowledge(result.map_err(|e| e.to_string()));
                after_commit();
            }
        })
        .map_err(|e| StoreError::WriteFailed(format!("starting the history writer: {e}")))?;
    Ok(())
}

/// The one-row statements a commit runs.
struct Statements {
    insert: String,
    upsert: String,
}

/// One transaction: all of the batch or, on any error, none of it. BEGIN and COMMIT are
/// cached statements too: through `Connection::transaction` both were parsed anew for every
/// commit, about 3,600 instructions (callgrind).
fn commit(conn: &Connection, statements: &Statements, batch: &Batch) -> rusqlite::Result<()> {
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let written = write(conn, statements, batch)
        .and_then(|()| conn.prepare_cached("COMMIT")?.execute([]).map(drop));
    if written.is_err() && !conn.is_autocommit() {
        // What the failed statement left of the transaction goes; the error is the one to
        // report.
        let _ = conn.execute_batch("ROLLBACK");
    }
    written
}

fn write(conn: &Connection, statements: &Statements, batch: &Batch) -> rusqlite::Result<()> {
    let now = unix_seconds();
    // Ids given here, not by a subquery in each insert: that was a cursor opened on the
    // history table for every row.
    let mut last_id: i64 = conn
        .prepare_cached(SQLITE_LAST_HISTORY_ID)?
        .query_row([], |row| row.get(0))?;
    let mut insert = conn.prepare_cached(&statements.insert)?;
    for r in &batch.records {
        let id = next_history_id(last_id, r.at.0);
        let cells = std::iter::once(Cell::Integer(id)).chain(record_cells(r));
        insert.execute(rusqlite::params_from_iter(cells))?;
        last_id = id;
    }
    // What is stored now of the audiences whose writes change it, read under this
    // transaction's write lock: no other writer changes it before the commit.
    let mut stored = HashMap::new();
    let mut read = conn.prepare_cached("SELECT state FROM kairos_audience WHERE audience = ?1")?;
    for w in batch.states.iter().filter(|w| w.base.is_some()) {
        if !stored.contains_key(&w.key)
            && let Some(state) = read
                .query_row(params![w.key], |row| row.get::<_, String>(0))
                .optional()?
        {
            stored.insert(w.key.clone(), state);
        }
    }
    let mut upsert = conn.prepare_cached(&statements.upsert)?;
    for (key, state) in resolve_states(&batch.states, &stored) {
        upsert.execute(params![key, state, now])?;
    }
    Ok(())
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
