//! The SQL both history writers share: the history's columns and their values in order,
//! the insert and upsert texts per dialect, and how SQLite history ids are given. The
//! PostgreSQL writer (`sql.rs`, through sqlx) and the SQLite one (`sqlite_writer.rs`, through
//! rusqlite) each bind them their own way.

use kairos_engine::world::HistoryRecord;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

pub(crate) const COLUMNS: &str = "kind, treatment_code, offer, category, rule, segment, ip, zone, score, deployment, session_id, audience, at, issued_at, cross_session";

/// Below this, an id is a count from an earlier version, not a time (10^15 ns is 12 days
/// into 1970).
pub(crate) const COUNTED_IDS_BELOW: i64 = 1_000_000_000_000_000;

/// Rows per multi-row INSERT: 15 columns x 500 stays under both databases' parameter limits.
pub(crate) const ROWS_PER_STATEMENT: usize = 500;

/// `($1, $2), ($3, $4)` for `rows` rows of `columns` values; `(?, ?), (?, ?)` on SQLite,
/// whose lookup of a numbered parameter's name scans every parameter (the binding of a
/// multi-row statement would be quadratic).
pub(crate) fn placeholders(rows: usize, columns: usize, dialect: Dialect) -> String {
    use std::fmt::Write;
    // Built in one string: a batch's statement has hundreds of placeholders.
    let mut sql = String::with_capacity(rows * columns * 4);
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 1..=columns {
            if c > 1 {
                sql.push_str(", ");
            }
            match dialect {
                Dialect::Sqlite => sql.push('?'),
                Dialect::Postgres => {
                    let _ = write!(sql, "${}", r * columns + c);
                }
            }
        }
        sql.push(')');
    }
    sql
}

/// The history insert of `rows` rows, values in [`COLUMNS`] order.
pub(crate) fn history_insert(rows: usize, dialect: Dialect) -> String {
    format!(
        "INSERT INTO kairos_history ({COLUMNS}) VALUES {}",
        placeholders(rows, 15, dialect)
    )
}

/// SQLite's one-row history insert: the id (see [`next_history_id`]), then the values in
/// [`COLUMNS`] order.
pub(crate) fn sqlite_history_insert() -> String {
    format!(
        "INSERT INTO kairos_history (id, {COLUMNS}) VALUES {}",
        placeholders(1, 16, Dialect::Sqlite)
    )
}

/// The highest history id on SQLite, read once per transaction: the writer holds the write
/// lock from its `BEGIN IMMEDIATE`, so no other connection adds a row before its commit.
pub(crate) const SQLITE_LAST_HISTORY_ID: &str = "SELECT coalesce(max(id), 0) FROM kairos_history";

/// A SQLite history row's id: one past the last or the row's time, whichever is later. Ids
/// still grow with each row, and every id is at least its row's time, so rows at or after a
/// time all have ids at or after it.
pub(crate) fn next_history_id(last: i64, at: i64) -> i64 {
    (last + 1).max(at)
}

/// The upsert of `rows` audience states (audience, state, updated_at), each audience once.
/// On SQLite a replace: the audience is the table's one key, so replacing its row is the
/// upsert's update, in 3-4% fewer instructions per commit (callgrind on `cargo bench -p
/// kairos-store --bench history`, groups of 9 and 32 events).
pub(crate) fn audience_upsert(rows: usize, dialect: Dialect) -> String {
    let (insert, on_conflict) = match dialect {
        Dialect::Sqlite => ("INSERT OR REPLACE", ""),
        Dialect::Postgres => (
            "INSERT",
            " ON CONFLICT (audience) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
        ),
    };
    format!(
        "{insert} INTO kairos_audience (audience, state, updated_at) VALUES {}{on_conflict}",
        placeholders(rows, 3, dialect)
    )
}

/// Whole seconds since 1970: an audience row's `updated_at`.
pub(crate) fn unix_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// One value of a history row, for either database layer to bind.
pub(crate) enum Cell<'a> {
    Text(&'a str),
    OptionalText(Option<&'a str>),
    Integer(i64),
    Real(f64),
}

/// A history row's 15 values, in [`COLUMNS`] order.
pub(crate) fn record_cells(r: &HistoryRecord) -> [Cell<'_>; 15] {
    let t = &r.treatment;
    let origin = &t.origin;
    [
        Cell::Text(r.kind.name()),
        Cell::Text(&t.code),
        Cell::Text(&origin.offer),
        Cell::OptionalText(origin.category.as_deref()),
        Cell::Text(&origin.rule),
        Cell::OptionalText(origin.segment.as_deref()),
        Cell::Text(&t.ip),
        Cell::Text(&t.zone),
        Cell::Real(t.score),
        Cell::Integer(t.deployment as i64),
        Cell::Text(&t.session_id),
        Cell::Text(&t.audience),
        Cell::Integer(r.at.0),
        Cell::Integer(t.issued_at.0),
        Cell::Integer(i64::from(r.cross_session)),
    ]
}

#[cfg(test)]
mod tests {
    use super::{Dialect, placeholders};

    #[test]
    fn placeholders_number_every_value_on_postgres_only() {
        assert_eq!(
            placeholders(2, 3, Dialect::Postgres),
            "($1, $2, $3), ($4, $5, $6)"
        );
        assert_eq!(placeholders(2, 2, Dialect::Sqlite), "(?, ?), (?, ?)");
    }
}
