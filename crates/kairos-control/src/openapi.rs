//! The control plane's OpenAPI document, generated from the routes and the wire types: each
//! route's request and success answer from its annotation, and every problem it can answer
//! with (status, code, what the code means) from the tables below, served at
//! `/api/openapi.json`.

use std::sync::LazyLock;

use kairos_api::Code;
use kairos_api::openapi::{BODY, Refusal, add_refusals, each_operation};
use kairos_api::problem::ProblemDocument;
use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{access, design, groups, records, testruns, versions};

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
        access::create_token, access::logout, access::set_user_disabled, access::delete_user,
        access::revoke,
        design::channels, design::apply, design::channel, design::export, design::validate,
        design::component, design::put_component, design::delete_component, design::diff,
        versions::versions, versions::version, versions::create_version, versions::review,
        versions::impact, versions::segments,
        groups::groups, groups::put_group, groups::deploy, groups::rollback, groups::active,
        groups::heartbeat, testruns::start_test_run, testruns::test_run,
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

/// What every route of a kind can be refused with.
const SERVER: &[Refusal] = &[(Code::Internal, None), (Code::StorageUnavailable, None)];
const SIGNED: &[Refusal] = &[(Code::Unauthorized, None)];
const ROLE: &[Refusal] = &[(Code::Forbidden, None)];
const READ: &[Refusal] = &[(Code::MalformedRequest, None), (Code::NotFound, None)];

/// The refusals particular to each route (by its operation id, the handler's name).
fn particular(operation: &str) -> &'static [Refusal] {
    match operation {
        "login" => &[(Code::BadCredentials, None), (Code::TooManyAttempts, None)],
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
        "start_test_run" => &[(Code::Conflict, None), (Code::LimitExceeded, None)],
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

/// The problems each route can answer with, and the bearer token.
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
        each_operation(document, |_, operation| {
            let id = operation.operation_id.as_deref().unwrap_or_default();
            if !PUBLIC.contains(&id) {
                operation.security = Some(vec![SecurityRequirement::new(
                    "token",
                    Vec::<String>::new(),
                )]);
            }
        });
        add_refusals(document, |id, has_body| {
            let mut refusals: Vec<Refusal> = SERVER.to_vec();
            refusals.extend_from_slice(READ);
            if has_body {
                refusals.extend_from_slice(BODY);
            }
            if !PUBLIC.contains(&id) {
                refusals.extend_from_slice(SIGNED);
                if !ANY_ROLE.contains(&id) {
                    refusals.extend_from_slice(ROLE);
                }
            }
            refusals.extend_from_slice(particular(id));
            refusals
        });
    }
}
