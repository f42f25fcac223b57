//! What both servers' OpenAPI documents share: every problem an operation can answer with,
//! added to the operations the routes' annotations describe, each status with the codes it
//! carries and what they mean.

use std::collections::BTreeMap;

use utoipa::ToSchema;
use utoipa::openapi::path::Operation;
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, ResponseBuilder};

use crate::Code;
use crate::problem::ProblemDocument;

/// A problem an operation can answer with: its code, and the status when it is not the
/// code's own (axum's rejections keep theirs: a body of the wrong type is a 415).
pub type Refusal = (Code, Option<u16>);

/// The refusals of any operation that reads a JSON body.
pub const BODY: &[Refusal] = &[
    (Code::MalformedRequest, None),
    (Code::MalformedRequest, Some(415)),
    (Code::PayloadTooLarge, None),
];

/// Calls `visit` with each operation of `document` and its path.
pub fn each_operation(document: &mut OpenApi, mut visit: impl FnMut(&str, &mut Operation)) {
    for (path, item) in document.paths.paths.iter_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            visit(path, operation);
        }
    }
}

/// Adds to every operation of `document` the problems `refusals` lists for it (given its
/// operation id and whether it reads a body), one response per status.
pub fn add_refusals(document: &mut OpenApi, refusals: impl Fn(&str, bool) -> Vec<Refusal>) {
    let problem = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name(ProblemDocument::name())))
        .build();
    each_operation(document, |_, operation| {
        let id = operation.operation_id.clone().unwrap_or_default();
        let mut by_status: BTreeMap<u16, Vec<Code>> = BTreeMap::new();
        for (code, status) in refusals(&id, operation.request_body.is_some()) {
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
    });
}
