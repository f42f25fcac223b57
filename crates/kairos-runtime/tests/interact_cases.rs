//! The Interact request/response pairs of `interact/hcl_cases.json`, run in order against a
//! real runtime: every command in each form HCL documents, every advisory message code Kairos
//! raises. Every case runs; the failures are reported together, each with its case's name.

mod common;

use common::{http, server};
use kairos_runtime::Config;
use serde::Deserialize;
use serde_json::Value as J;

#[derive(Deserialize)]
struct Cases {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    request: Request,
    status: u16,
    expect: J,
    /// Pairs the answer's profile holds, among others.
    #[serde(default)]
    profile_contains: Vec<J>,
}

#[derive(Deserialize)]
struct Request {
    method: String,
    path: String,
    #[serde(default)]
    body: Option<J>,
    /// Sent as the content type; `""` sends none (JSON when left out).
    #[serde(default)]
    content_type: Option<String>,
}

/// Why `actual` does not match `expected`, at `at`; see the case file for the rules.
fn mismatch(at: &str, expected: &J, actual: &J) -> Option<String> {
    let differ = || Some(format!("{at}: expected {expected}, got {actual}"));
    match (expected, actual) {
        (J::String(any), actual) if any == "<any>" => actual.is_null().then(differ).flatten(),
        (J::String(part), J::String(text)) if part.starts_with('~') => {
            (!text.contains(&part[1..])).then(differ).flatten()
        }
        (J::Object(fields), J::Object(got)) => fields
            .iter()
            .find_map(|(k, v)| mismatch(&format!("{at}.{k}"), v, got.get(k).unwrap_or(&J::Null))),
        (J::Array(items), J::Array(got)) if items.len() == got.len() => items
            .iter()
            .zip(got)
            .enumerate()
            .find_map(|(i, (e, a))| mismatch(&format!("{at}[{i}]"), e, a)),
        (J::Number(e), J::Number(a)) if e.as_f64() == a.as_f64() => None,
        _ => (expected != actual).then(differ).flatten(),
    }
}

/// The profile of the first response that has one, single or in a batch.
fn profile(answer: &J) -> Option<&Vec<J>> {
    answer["profile"].as_array().or_else(|| {
        answer["responses"]
            .as_array()?
            .iter()
            .find_map(|r| r["profile"].as_array())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interact_requests_get_the_answers_hcl_documents() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interact/hcl_cases.json"),
    )
    .unwrap();
    let cases: Cases = serde_json::from_str(&text).unwrap();
    let s = server(Config::default()).await;
    let mut failures = Vec::new();
    for case in &cases.cases {
        let body = case
            .request
            .body
            .as_ref()
            .map(J::to_string)
            .unwrap_or_default();
        let mut headers = Vec::new();
        if let Some(content_type) = &case.request.content_type {
            headers.push(("content-type", content_type.as_str()));
        }
        let (status, answer) = http(
            s.addr,
            &case.request.method,
            &case.request.path,
            &headers,
            &body,
        )
        .await;
        let answer: J = serde_json::from_str(&answer).unwrap_or(J::String(answer));
        let mut wrong = Vec::new();
        if status != case.status {
            wrong.push(format!("status {status}, expected {}", case.status));
        }
        wrong.extend(mismatch("answer", &case.expect, &answer));
        for pair in &case.profile_contains {
            if !profile(&answer).is_some_and(|p| p.contains(pair)) {
                wrong.push(format!("the profile lacks {pair}"));
            }
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{}: {}\n    answer: {answer}",
                case.name,
                wrong.join("; ")
            ));
        }
    }
    s.stop().await;
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.cases.len(),
        failures.join("\n")
    );
}
