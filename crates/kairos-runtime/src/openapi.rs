//! The runtime's OpenAPI document, served at `/openapi.json`: the native API from its routes'
//! annotations and the wire types of `kairos_api::runtime`, the Unica Interact API from the
//! table below and the types of `kairos_api::interact`, and every problem each operation can
//! answer with.

use std::sync::LazyLock;

use kairos_api::Code;
use kairos_api::interact;
use kairos_api::openapi::{BODY, Refusal, add_refusals, each_operation};
use kairos_api::problem::ProblemDocument;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ContentBuilder, ObjectBuilder, OpenApi as Document, PathItem, Ref, Required, ResponseBuilder,
    Type,
};
use utoipa::{Modify, OpenApi};

use crate::native;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Kairos runtime",
        description = "The touchpoint APIs: the native API (`/v1/`) and Unica Interact's \
                       (`/interact/`). A runtime serving a channel with a touchpoint token \
                       issued requires it: `Authorization: Bearer <token>` (Interact clients \
                       may send it as `m_tokenId`, or as `m_user_password`). Every native \
                       answer carries `messages`; every error is an RFC 9457 problem document \
                       with a stable `code`."
    ),
    paths(
        native::start_session, native::get_offers_post, native::get_offers_get,
        native::post_event, native::set_audience, native::get_profile, native::end_session,
        native::batch, native::version, native::channel,
        crate::healthz, crate::readyz, crate::metrics,
    ),
    components(schemas(
        ProblemDocument, kairos_api::runtime::Command,
        interact::ServletRequest, interact::V2Start, interact::V2Audience,
        interact::V2MultipleOffers, interact::V2Event, interact::V2Batch,
        interact::Response, interact::BatchResponse,
    )),
    modifiers(&Interact, &Refusals),
)]
struct RuntimeApi;

/// The document, made once.
pub fn document() -> &'static Document {
    static DOCUMENT: LazyLock<Document> = LazyLock::new(RuntimeApi::openapi);
    &DOCUMENT
}

/// Operations anyone may call: no token.
const PUBLIC: &[&str] = &["healthz", "readyz", "metrics"];

/// One of Interact's operations: its request body's schema (when it takes one) and its
/// answer's, both of `kairos_api::interact`.
struct InteractOperation {
    method: HttpMethod,
    path: &'static str,
    id: &'static str,
    summary: &'static str,
    parameters: &'static [&'static str],
    body: Option<&'static str>,
    answer: &'static str,
}

const INTERACT: &[InteractOperation] = &[
    InteractOperation {
        method: HttpMethod::Post,
        path: "/interact/servlet/RestServlet",
        id: "interact_servlet",
        summary: "A batch of Interact commands (startSession, getOffers, postEvent, ...), every one run in order",
        parameters: &[],
        body: Some("InteractServletRequest"),
        answer: "InteractBatchResponse",
    },
    InteractOperation {
        method: HttpMethod::Post,
        path: "/interact/v2/sessions/{id}",
        id: "interact_start_session",
        summary: "Starts a session (`ic`, `audienceLevel`, `audienceIDField` may be in the query)",
        parameters: &["id"],
        body: Some("InteractV2Start"),
        answer: "InteractResponse",
    },
    InteractOperation {
        method: HttpMethod::Delete,
        path: "/interact/v2/sessions/{id}",
        id: "interact_end_session",
        summary: "Ends a session",
        parameters: &["id"],
        body: None,
        answer: "InteractResponse",
    },
    InteractOperation {
        method: HttpMethod::Put,
        path: "/interact/v2/audiences/{id}",
        id: "interact_set_audience",
        summary: "Sets the session's audience",
        parameters: &["id"],
        body: Some("InteractV2Audience"),
        answer: "InteractResponse",
    },
    InteractOperation {
        method: HttpMethod::Get,
        path: "/interact/v2/offers/{id}/{ip}",
        id: "interact_get_offers",
        summary: "Offers for one interaction point (`number` in the query)",
        parameters: &["id", "ip"],
        body: None,
        answer: "InteractResponse",
    },
    InteractOperation {
        method: HttpMethod::Post,
        path: "/interact/v2/offers/{id}",
        id: "interact_get_offers_for_points",
        summary: "Offers for several interaction points",
        parameters: &["id"],
        body: Some("InteractV2MultipleOffers"),
        answer: "InteractResponse",
    },
    InteractOperation {
        method: HttpMethod::Post,
        path: "/interact/v2/events/{id}/{event}",
        id: "interact_post_event",
        summary: "Posts an event",
        parameters: &["id", "event"],
        body: Some("InteractV2Event"),
        answer: "InteractResponse",
    },
    InteractOperation {
        method: HttpMethod::Get,
        path: "/interact/v2/profiles/{id}",
        id: "interact_get_profile",
        summary: "The session's profile",
        parameters: &["id"],
        body: None,
        answer: "InteractResponse",
    },
    InteractOperation {
        method: HttpMethod::Post,
        path: "/interact/v2/batch/{id}",
        id: "interact_batch",
        summary: "A batch on one session: named commands (HCL's form) or a `commands` list",
        parameters: &["id"],
        body: Some("InteractV2Batch"),
        answer: "InteractBatchResponse",
    },
];

/// Interact's paths: HCL's request and answer shapes, as the types of
/// `kairos_api::interact` describe them.
struct Interact;

impl Modify for Interact {
    fn modify(&self, document: &mut Document) {
        let schema = |name: &str| {
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(name)))
                .build()
        };
        for InteractOperation {
            method,
            path,
            id,
            summary,
            parameters,
            body,
            answer,
        } in INTERACT
        {
            let mut operation = OperationBuilder::new()
                .operation_id(Some(*id))
                .summary(Some(*summary))
                .tag("interact")
                .response(
                    "200",
                    ResponseBuilder::new()
                        .description("Interact's answer: `statusCode` 0 (success), 1 (warning) or 2 (error), with its messages")
                        .content("application/json", schema(answer)),
                );
            for name in *parameters {
                operation = operation.parameter(
                    ParameterBuilder::new()
                        .name(*name)
                        .parameter_in(ParameterIn::Path)
                        .required(Required::True)
                        .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
                );
            }
            if let Some(body) = body {
                // The servlet and a batch need their commands; a v2 path's body may be left
                // out (its fields then missing are Interact errors, in its answer).
                let required = matches!(*id, "interact_servlet" | "interact_batch");
                operation = operation.request_body(Some(
                    RequestBodyBuilder::new()
                        .content("application/json", schema(body))
                        .required(Some(if required {
                            Required::True
                        } else {
                            Required::False
                        }))
                        .build(),
                ));
            }
            let item = PathItem::new(method.clone(), operation.build());
            match document.paths.paths.get_mut(*path) {
                Some(existing) => existing.merge_operations(item),
                None => {
                    document.paths.paths.insert(path.to_string(), item);
                }
            }
        }
    }
}

/// Security schemes, each operation's, and the problems each can answer with.
struct Refusals;

impl Modify for Refusals {
    fn modify(&self, document: &mut Document) {
        let components = document.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "touchpoint",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A touchpoint token of a channel the runtime serves"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "interactToken",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "m_tokenId",
                "Interact clients: a touchpoint token",
            ))),
        );
        components.add_security_scheme(
            "interactPassword",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "m_user_password",
                "Interact clients: a touchpoint token as the password",
            ))),
        );
        let none: Vec<String> = Vec::new();
        each_operation(document, |path, operation| {
            let id = operation.operation_id.as_deref().unwrap_or_default();
            if PUBLIC.contains(&id) {
                return;
            }
            operation.security = Some(if path.starts_with("/interact") {
                vec![
                    SecurityRequirement::new("touchpoint", none.clone()),
                    SecurityRequirement::new("interactToken", none.clone()),
                    SecurityRequirement::new("interactPassword", none.clone()),
                ]
            } else {
                vec![SecurityRequirement::new("touchpoint", none.clone())]
            });
        });
        add_refusals(document, |id, has_body| {
            let mut refusals: Vec<Refusal> = vec![(Code::Internal, None)];
            if id == "readyz" {
                refusals.extend([
                    (Code::NotReady, None),
                    (Code::StorageUnavailable, None),
                    (Code::SessionsUnavailable, None),
                ]);
            }
            if PUBLIC.contains(&id) {
                return refusals;
            }
            refusals.push((Code::MalformedRequest, None));
            refusals.push((Code::Unauthorized, None));
            if has_body {
                refusals.extend_from_slice(BODY);
            }
            if id.starts_with("interact") {
                if matches!(id, "interact_servlet" | "interact_batch") {
                    refusals.push((Code::LimitExceeded, None));
                }
                return refusals;
            }
            refusals.push((Code::Forbidden, None));
            let start = [(Code::InvalidChannel, None), (Code::TooManySessions, None)];
            let on_a_session = [
                (Code::InvalidSessionId, None),
                (Code::InvalidAudienceLevel, None),
                (Code::InvalidAudienceId, None),
                (Code::SessionsUnavailable, None),
                (Code::SessionBusy, None),
                (Code::StorageUnavailable, None),
                (Code::TokenNotForChannel, None),
                (Code::LimitExceeded, None),
            ];
            match id {
                "start_session" => {
                    refusals.extend_from_slice(&start);
                    refusals.extend_from_slice(&on_a_session[1..]);
                }
                "channel" => refusals.push((Code::InvalidChannel, None)),
                "version" => {}
                // A failed command answers with its own problem, the answers before it with it.
                "batch" => {
                    refusals.extend_from_slice(&start);
                    refusals.extend_from_slice(&on_a_session);
                }
                _ => refusals.extend_from_slice(&on_a_session),
            }
            refusals
        });
    }
}
