//! `/api/tables`, `/api/reports/performance`, `/api/unknown-names`, `/api/audit`.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use kairos_api::Problem;
use kairos_api::control::{
    AuditQuery, AuditView, ImportQuery, Imported, PerformanceQuery, PerformanceReport, TableView,
    TablesQuery, UnknownNameView,
};

use super::{Params, Shared, TablePath};
use crate::service::Caller;

#[utoipa::path(get, path = "/api/tables", tag = "records", params(TablesQuery),
    responses((status = 200, description = "The tables of a data source, with their columns", body = Vec<TableView>)))]
pub async fn tables(
    State(cp): Shared,
    Params(query): Params<TablesQuery>,
) -> Result<Json<Vec<TableView>>, Problem> {
    Ok(Json(cp.tables(query.group.as_deref()).await?))
}

/// The body is the table as CSV text.
#[utoipa::path(post, path = "/api/tables/{name}", tag = "records",
    params(TablePath, ImportQuery),
    request_body(content = String, content_type = "text/csv", description = "The table, with a header row"),
    responses((status = 200, description = "The table, created or replaced", body = Imported)))]
pub async fn import_table(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
    Path(TablePath { name }): Path<TablePath>,
    Params(query): Params<ImportQuery>,
    csv: String,
) -> Result<Json<Imported>, Problem> {
    Ok(Json(cp.import_table(&caller, &name, query, &csv).await?))
}

#[utoipa::path(get, path = "/api/reports/performance", tag = "records", params(PerformanceQuery),
    responses((status = 200, description = "Offer performance from the group's history", body = PerformanceReport)))]
pub async fn performance(
    State(cp): Shared,
    Params(query): Params<PerformanceQuery>,
) -> Result<Json<PerformanceReport>, Problem> {
    Ok(Json(cp.performance(query).await?))
}

#[utoipa::path(get, path = "/api/unknown-names", tag = "records",
    responses((status = 200, description = "Names touchpoints called that a channel lacks", body = Vec<UnknownNameView>)))]
pub async fn unknown_names(State(cp): Shared) -> Result<Json<Vec<UnknownNameView>>, Problem> {
    Ok(Json(cp.unknown_names().await?))
}

#[utoipa::path(get, path = "/api/audit", tag = "records", params(AuditQuery),
    responses((status = 200, description = "The newest entries of the audit log", body = Vec<AuditView>)))]
pub async fn audit_log(
    State(cp): Shared,
    Params(query): Params<AuditQuery>,
) -> Result<Json<Vec<AuditView>>, Problem> {
    Ok(Json(cp.audit_log(query.limit).await?))
}
