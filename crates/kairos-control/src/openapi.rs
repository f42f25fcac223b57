//! The control plane's OpenAPI document, generated from the routes and the wire types: each
//! route's request and success answer from its annotation, and every problem it can answer
//! with (status, code, what the code means) from the table below, served at
//! `/api/openapi.json`.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use kairos_api::Code;
use kairos_api::problem::ProblemDocument;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::routes::{access, design, groups, records, versions};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Kairos control plane",
        description = "The design repository, versions, gates, reviews, deployments, users and \
                       tokens. Every route but login takes `Authorization: Bearer <token>`; every \
                       error is an RFC 9457 problem document with a stable `code`."
    ),
    paths(
        access::login, access::me, access::users, access::create_user, access::tokens,
        access::create_token,
        design::channels, design::apply, design::channel, design::export, design::validate,
        design::component, design::put_component, design::delete_component, design::diff,
        versions::versions, versions::version, versions::create_version, versions::review,
        versions::attach_result, versions::impact, versions::segments,
        groups::groups, groups::put_group, groups::deploy, groups::rollback, groups::active,
        groups::heartbeat,
        records::tables, records::import_table, records::performance, records::unknown_names,
        records::audit_log,
    ),
    components(schemas(ProblemDocument, design::CreateOnly)),
    modifiers(&Refusals),
)]
struct ControlApi;

/// The document, made once.
pub fn document() -> &'static Document {
    static DOCUMENT: LazyLock<Document> = LazyLock::new(ControlApi::openapi);
    &DOCUMENT
}

/// A refusal a route can answer with: the code, and the status when it is not the code's own
/// (axum's rejections keep theirs).
type Refusal = (Code, Option<u16>);

/// What every route of a kind can be refused with.
const SERVER: &[Refusal] = &[(Code::Internal, None), (Code::StorageUnavailable, None)];
const SIGNED: &[Refusal] = &[(Code::Unauthorized, None)];
const ROLE: &[Refusal] = &[(Code::Forbidden, None)];
const READ: &[Refusal] = &[(Code::MalformedRequest, None), (Code::NotFound, None)];
const BODY: &[Refusal] = &[
    (Code::MalformedRequest, None),
    // A body that is not of the declared media type.
    (Code::MalformedRequest, Some(415)),
    (Code::PayloadTooLarge, None),
];

/// The refusals particular to each route (by its operation id, the handler's name).
fn particular(operation: &str) -> &'static [Refusal] {
    match operation {
        "login" => &[(Code::BadCredentials, None)],
        "apply" | "create_version" => &[(Code::InvalidChannelFile, None)],
        "put_component" | "delete_component" => &[(Code::Conflict, None)],
        "deploy" => &[
            (Code::GatesFailed, None),
            (Code::OneProductionGroup, None),
            (Code::InvalidChannelFile, None),
        ],
        "rollback" => &[(Code::NeverActive, None), (Code::NothingToRollBackTo, None)],
        "impact" => &[
            (Code::NothingActive, None),
            (Code::NoPopulation, None),
            (Code::InvalidChannelFile, None),
        ],
        "segments" => &[(Code::NoPopulation, None), (Code::InvalidChannelFile, None)],
        "performance" => &[(Code::NoHistory, None)],
        _ => &[],
    }
}

/// Routes anyone may call: no token.
const PUBLIC: &[&str] = &["login"];
/// Routes any signed-in caller may call: no role.
const ANY_ROLE: &[&str] = &[
    "me",
    "channels",
    "channel",
    "export",
    "validate",
    "component",
    "diff",
    "versions",
    "version",
    "impact",
    "segments",
    "groups",
    "tables",
    "performance",
    "unknown_names",
    "audit_log",
];

/// Adds every problem each route can answer with, grouped by status, and the bearer token.
struct Refusals;

impl Modify for Refusals {
    fn modify(&self, document: &mut Document) {
        let components = document.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A user token (`kairos login`) or a runtime token of a group",
                    ))
                    .build(),
            ),
        );
        let problem = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(ProblemDocument::name())))
            .build();
        for item in document.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                let id = operation.operation_id.clone().unwrap_or_default();
                let has_body = operation.request_body.is_some();
                let mut refusals: Vec<Refusal> = SERVER.to_vec();
                refusals.extend_from_slice(READ);
                if has_body {
                    refusals.extend_from_slice(BODY);
                }
                if !PUBLIC.contains(&id.as_str()) {
                    refusals.extend_from_slice(SIGNED);
                    if !ANY_ROLE.contains(&id.as_str()) {
                        refusals.extend_from_slice(ROLE);
                    }
                    operation.security = Some(vec![SecurityRequirement::new(
                        "token",
                        Vec::<String>::new(),
                    )]);
                }
                refusals.extend_from_slice(particular(&id));
                let mut by_status: BTreeMap<u16, Vec<Code>> = BTreeMap::new();
                for (code, status) in refusals {
                    let status = status.unwrap_or(code.status().as_u16());
                    let codes = by_status.entry(status).or_default();
                    if !codes.contains(&code) {
                        codes.push(code);
                    }
                }
                for (status, codes) in by_status {
                    let description: Vec<String> = codes
                        .iter()
                        .map(|c| format!("`{}`: {}", c.name(), c.meaning()))
                        .collect();
                    let response = ResponseBuilder::new()
                        .description(description.join("\n"))
                        .content("application/problem+json", problem.clone())
                        .build();
                    operation
                        .responses
                        .responses
                        .insert(status.to_string(), response.into());
                }
            }
        }
    }
}
