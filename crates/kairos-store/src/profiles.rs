//! Profile and dimension tables in the database: imported whole from CSV (create or replace),
//! their schemas kept for expression type checking, rows read by key column.

use kairos_model::table::{Column, ColumnType, Table, TableSchema};
use kairos_rules::Value;
use kairos_rules::time::Timestamp;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Executor, Row};

use crate::StoreError;
use crate::migrate::{self, migrate};
use crate::sql::connect;
use crate::statements::{Dialect, placeholders};

/// Rows per multi-row INSERT for imports: columns x rows stays under the parameter limits.
const PARAMETERS_PER_STATEMENT: usize = 30_000;

pub struct ProfileStore {
    pool: AnyPool,
    dialect: Dialect,
}

fn table_name(name: &str) -> Result<String, StoreError> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(StoreError::Corrupt(format!(
            "'{name}' is not a valid table name"
        )));
    }
    // Prefixed so a profile table never collides with Kairos's own tables.
    Ok(format!("kp_{}", name.to_ascii_lowercase()))
}

fn sql_type(ty: ColumnType, dialect: Dialect) -> &'static str {
    match (ty, dialect) {
        (ColumnType::Int | ColumnType::Timestamp, _) => "BIGINT",
        (ColumnType::Double, _) => "DOUBLE PRECISION",
        (ColumnType::Bool, Dialect::Postgres) => "BOOLEAN",
        (ColumnType::Bool, Dialect::Sqlite) => "INTEGER",
        (ColumnType::String, _) => "TEXT",
    }
}

fn schema_json(schema: &TableSchema, key: &str) -> String {
    let columns: Vec<serde_json::Value> = schema
        .columns
        .iter()
        .map(|c| serde_json::json!({ "name": c.name, "type": c.ty.name() }))
        .collect();
    serde_json::json!({ "key": key, "columns": columns }).to_string()
}

fn schema_from_json(name: &str, text: &str) -> Result<TableSchema, StoreError> {
    let bad = || StoreError::Corrupt(format!("schema of table {name}"));
    let doc: serde_json::Value = serde_json::from_str(text).map_err(|_| bad())?;
    let columns = doc["columns"]
        .as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|c| {
            Some(Column {
                name: c["name"].as_str()?.to_string(),
                ty: ColumnType::from_name(c["type"].as_str()?)?,
            })
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(bad)?;
    Ok(TableSchema {
        name: name.to_string(),
        columns,
    })
}

/// A cell read back with its column's type.
fn cell(row: &AnyRow, i: usize, ty: ColumnType) -> Result<Option<Value>, sqlx::Error> {
    Ok(match ty {
        ColumnType::Int => row.try_get::<Option<i64>, _>(i)?.map(Value::Int),
        ColumnType::Timestamp => row
            .try_get::<Option<i64>, _>(i)?
            .map(|n| Value::Timestamp(Timestamp(n))),
        ColumnType::Double => row.try_get::<Option<f64>, _>(i)?.map(Value::Double),
        // SQLite has no boolean type: it keeps 0 and 1.
        ColumnType::Bool => match row.try_get::<Option<bool>, _>(i) {
            Ok(b) => b.map(Value::Bool),
            Err(_) => row
                .try_get::<Option<i64>, _>(i)?
                .map(|n| Value::Bool(n != 0)),
        },
        ColumnType::String => row.try_get::<Option<String>, _>(i)?.map(Value::string),
    })
}

impl ProfileStore {
    pub async fn open(url: &str) -> Result<ProfileStore, StoreError> {
        let (pool, dialect) = connect(url).await?;
        migrate(&pool, dialect, "profiles", migrate::PROFILES).await?;
        Ok(ProfileStore { pool, dialect })
    }

    /// Creates or replaces a table with `table`'s rows, indexed by `key`; one transaction, so
    /// readers see the old table or the new one, never half of it.
    pub async fn import(&self, table: &Table, key: &str) -> Result<usize, StoreError> {
        let name = table_name(&table.schema.name)?;
        if table.schema.column(key).is_none() {
            return Err(StoreError::Corrupt(format!(
                "table {} has no key column '{key}'",
                table.schema.name
            )));
        }
        let columns: Vec<String> = table
            .schema
            .columns
            .iter()
            .map(|c| format!("\"{}\"", c.name))
            .collect();
        let definitions: Vec<String> = table
            .schema
            .columns
            .iter()
            .map(|c| format!("\"{}\" {}", c.name, sql_type(c.ty, self.dialect)))
            .collect();
        let mut tx = self.pool.begin().await?;
        tx.execute(format!("DROP TABLE IF EXISTS {name}").as_str())
            .await?;
        tx.execute(format!("CREATE TABLE {name} ({})", definitions.join(", ")).as_str())
            .await?;
        let rows_per_statement = (PARAMETERS_PER_STATEMENT / columns.len().max(1)).max(1);
        for chunk in table.rows.chunks(rows_per_statement) {
            let sql = format!(
                "INSERT INTO {name} ({}) VALUES {}",
                columns.join(", "),
                placeholders(chunk.len(), columns.len(), self.dialect)
            );
            let mut query = sqlx::query(&sql);
            for row in chunk {
                for (value, column) in row.iter().zip(&table.schema.columns) {
                    query = match (value, column.ty) {
                        (None, ColumnType::Int | ColumnType::Timestamp) => query.bind(None::<i64>),
                        (None, ColumnType::Double) => query.bind(None::<f64>),
                        (None, ColumnType::Bool) => query.bind(None::<bool>),
                        (None, ColumnType::String) => query.bind(None::<String>),
                        (Some(Value::Int(i)), _) => query.bind(*i),
                        (Some(Value::Timestamp(t)), _) => query.bind(t.0),
                        (Some(Value::Double(d)), _) => query.bind(*d),
                        (Some(Value::Bool(b)), _) => query.bind(*b),
                        (Some(other), _) => query.bind(crate::sql::text_of(other)),
                    };
                }
            }
            query.execute(&mut *tx).await?;
        }
        tx.execute(format!("CREATE INDEX {name}_key ON {name} (\"{key}\")").as_str())
            .await?;
        sqlx::query("INSERT INTO kairos_tables (name, schema) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET schema = excluded.schema")
            .bind(table.schema.name.to_ascii_lowercase())
            .bind(schema_json(&table.schema, key))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(table.rows.len())
    }

    /// The schemas of every imported table.
    pub async fn schemas(&self) -> Result<Vec<TableSchema>, StoreError> {
        let rows = sqlx::query("SELECT name, schema FROM kairos_tables ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                schema_from_json(
                    &r.try_get::<String, _>("name")?,
                    &r.try_get::<String, _>("schema")?,
                )
            })
            .collect()
    }

    /// The table itself, at most `limit` rows (reports over a population).
    pub async fn table(&self, schema: &TableSchema, limit: i64) -> Result<Table, StoreError> {
        let name = table_name(&schema.name)?;
        let list: Vec<String> = schema
            .columns
            .iter()
            .map(|c| format!("\"{}\"", c.name))
            .collect();
        let sql = format!("SELECT {} FROM {name} LIMIT $1", list.join(", "));
        let rows = sqlx::query(&sql).bind(limit).fetch_all(&self.pool).await?;
        let rows = rows
            .iter()
            .map(|row| {
                schema
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| cell(row, i, c.ty))
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Table {
            schema: schema.clone(),
            rows,
        })
    }

    /// Rows of `schema`'s table whose `column` holds the ID `id` (given as text, compared with
    /// the column's type), as (column, value) pairs without missing values.
    pub async fn rows(
        &self,
        schema: &TableSchema,
        column: &str,
        id: &str,
    ) -> Result<Vec<Vec<(String, Value)>>, StoreError> {
        let name = table_name(&schema.name)?;
        let Some(col) = schema.column(column) else {
            return Ok(Vec::new());
        };
        let list: Vec<String> = schema
            .columns
            .iter()
            .map(|c| format!("\"{}\"", c.name))
            .collect();
        let sql = format!(
            "SELECT {} FROM {name} WHERE \"{column}\" = $1",
            list.join(", ")
        );
        let query = sqlx::query(&sql);
        let query = match col.ty {
            ColumnType::Int | ColumnType::Timestamp => match id.parse::<i64>() {
                Ok(n) => query.bind(n),
                Err(_) => return Ok(Vec::new()),
            },
            ColumnType::Double => match id.parse::<f64>() {
                Ok(d) => query.bind(d),
                Err(_) => return Ok(Vec::new()),
            },
            ColumnType::Bool => query.bind(id == "true"),
            ColumnType::String => query.bind(id.to_string()),
        };
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let mut out = Vec::with_capacity(schema.columns.len());
                for (i, c) in schema.columns.iter().enumerate() {
                    if let Some(v) = cell(row, i, c.ty)? {
                        out.push((c.name.clone(), v));
                    }
                }
                Ok(out)
            })
            .collect()
    }
}
