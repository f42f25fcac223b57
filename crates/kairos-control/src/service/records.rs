//! The data administrator's tables, and what the control plane and the runtimes recorded:
//! offer performance from a group's history, names touchpoints called that channels lack,
//! the audit log.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kairos_api::control::{
    AuditView, ColumnView, ImportQuery, Imported, PerformanceBy, PerformanceQuery,
    PerformanceReport, PerformanceRow, TableView, UnknownNameView,
};
use kairos_api::{Code, Problem};
use kairos_model::table::{ColumnType, TableSchema};
use kairos_rules::time::Timestamp;
use kairos_store::StoreError;

use super::{Caller, ControlPlane, storage, time, within};
use crate::auth::Role;

/// `COLUMN:TYPE,...` as declared column types.
pub fn declared_types(spec: Option<&str>) -> Result<HashMap<String, ColumnType>, String> {
    let mut types = HashMap::new();
    for item in spec
        .into_iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.trim().is_empty())
    {
        let Some((column, ty)) = item.split_once(':') else {
            return Err(format!(
                "schema: COLUMN:TYPE pairs separated by commas, got '{item}'"
            ));
        };
        let Some(ty) = ColumnType::from_name(ty.trim()) else {
            return Err(format!(
                "schema: '{ty}' is not a type; use int, double, bool, timestamp or string"
            ));
        };
        types.insert(column.trim().to_string(), ty);
    }
    Ok(types)
}

fn columns(schema: &TableSchema) -> Vec<ColumnView> {
    schema
        .columns
        .iter()
        .map(|c| ColumnView {
            name: c.name.clone(),
            ty: c.ty.name().to_string(),
        })
        .collect()
}

impl ControlPlane {
    /// The tables of a group's own data source, or of the default one.
    pub async fn tables(&self, group: Option<&str>) -> Result<Vec<TableView>, Problem> {
        let profiles = self.profiles_for(group).await?;
        let schemas = profiles.schemas().await.map_err(storage)?;
        Ok(schemas
            .iter()
            .map(|s| TableView {
                name: s.name.clone(),
                columns: columns(s),
            })
            .collect())
    }

    /// Creates or replaces a profile or dimension table from CSV text.
    pub async fn import_table(
        &self,
        caller: &Caller,
        name: &str,
        query: ImportQuery,
        csv: &str,
    ) -> Result<Imported, Problem> {
        caller.require(&[Role::DataAdministrator])?;
        let types = declared_types(query.schema.as_deref()).map_err(Problem::bad_request)?;
        let table = kairos_model::table::read_csv(name, csv.as_bytes(), &types)
            .map_err(|e| Problem::bad_request(format!("body: {e}")))?;
        let profiles = self.profiles_for(query.group.as_deref()).await?;
        let rows = profiles
            .import(&table, &query.key)
            .await
            .map_err(|e| match e {
                StoreError::Corrupt(m) => Problem::bad_request(m),
                other => storage(other),
            })?;
        let into = query
            .group
            .as_deref()
            .map_or_else(String::new, |g| format!(" for group {g}"));
        self.audit(
            &caller.name,
            "import",
            name,
            format!("{rows} rows, key {}{into}", query.key),
        )
        .await?;
        Ok(Imported {
            table: name.to_string(),
            rows: rows as u64,
            key: query.key,
            columns: columns(&table.schema),
            group: query.group,
        })
    }

    /// A group's history database, opened when first used.
    async fn history_of(&self, group: &str) -> Result<Arc<kairos_store::Sql>, Problem> {
        let g = self.group_named(group).await?;
        let url = g.history.ok_or_else(|| {
            Problem::new(
                Code::NoHistory,
                format!(
                    "group {group} has no history source for reports: kairos group {group} --history URL"
                ),
            )
        })?;
        let mut open = self.histories.lock().await;
        if let Some(history) = open.get(&url) {
            return Ok(history.clone());
        }
        let history = Arc::new(kairos_store::Sql::open(&url).await.map_err(storage)?);
        open.insert(url, history.clone());
        Ok(history)
    }

    /// Offer performance from a group's history: contacts, accepts, rejects and the
    /// acceptance rate with its 95% interval (the Beta posterior learning draws from), by
    /// offer, segment, zone or day.
    pub async fn performance(&self, query: PerformanceQuery) -> Result<PerformanceReport, Problem> {
        let days = within("days", query.days, 1..=3660)?;
        let history = self.history_of(&query.group).await?;
        let since = Timestamp(self.now().0 - days * 86_400 * 1_000_000_000);
        let mut totals: BTreeMap<String, [u64; 3]> = BTreeMap::new();
        for row in history.performance(since).await.map_err(storage)? {
            let key = match query.by {
                PerformanceBy::Offer => row.offer,
                PerformanceBy::Segment if row.segment.is_empty() => "(every visitor)".into(),
                PerformanceBy::Segment => row.segment,
                PerformanceBy::Zone => row.zone,
                PerformanceBy::Day => {
                    let (y, m, d) = kairos_rules::time::civil_from_days(row.day);
                    format!("{y:04}-{m:02}-{d:02}")
                }
            };
            let slot = match row.kind.as_str() {
                "contact" => 0,
                "accept" => 1,
                _ => 2,
            };
            totals.entry(key).or_default()[slot] += row.count as u64;
        }
        let mut rows: Vec<(String, [u64; 3])> = totals.into_iter().collect();
        if query.by != PerformanceBy::Day {
            rows.sort_by(|a, b| b.1[0].cmp(&a.1[0]).then(a.0.cmp(&b.0)));
        }
        let rows = rows
            .into_iter()
            .map(|(key, [contacts, accepts, rejects])| {
                let p = kairos_engine::learning::summarize(kairos_engine::world::Stats {
                    contacts,
                    accepts,
                });
                PerformanceRow {
                    key,
                    contacts,
                    accepts,
                    rejects,
                    rate: p.mean,
                    low: p.low,
                    high: p.high,
                }
            })
            .collect();
        Ok(PerformanceReport {
            group: query.group,
            by: query.by,
            days,
            rows,
        })
    }

    /// Names touchpoints called that a channel lacks, as the runtimes reported them.
    pub async fn unknown_names(&self) -> Result<Vec<UnknownNameView>, Problem> {
        let names = self.store.unknown_names().await.map_err(storage)?;
        Ok(names
            .into_iter()
            .map(|u| UnknownNameView {
                channel: u.channel,
                kind: u.kind,
                name: u.name,
                calls: u.calls,
                last_at: time(u.last_at),
            })
            .collect())
    }

    /// The newest `limit` entries of the audit log.
    pub async fn audit_log(&self, limit: i64) -> Result<Vec<AuditView>, Problem> {
        let limit = within("limit", limit, 1..=10_000)?;
        let log = self.store.audit_log(limit).await.map_err(storage)?;
        Ok(log
            .into_iter()
            .map(|e| AuditView {
                at: time(e.at),
                actor: e.actor,
                action: e.action,
                target: e.target,
                detail: e.detail,
            })
            .collect())
    }
}
