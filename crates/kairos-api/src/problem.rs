//! Errors as RFC 9457 problem documents with stable codes.

use http::StatusCode;
use serde_json::{Value as J, json};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub status: StatusCode,
    /// A stable code clients can match on (`INVALID_SESSION_ID`).
    pub code: &'static str,
    pub detail: String,
    /// Every located error, when there are several (a rejected channel).
    pub errors: Vec<String>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn with_errors(mut self, errors: Vec<String>) -> Self {
        self.errors = errors;
        self
    }

    /// A failure of the server's own, not the caller's.
    pub fn internal(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, "MALFORMED_REQUEST", detail)
    }

    pub fn session_not_found(id: &str) -> Self {
        Problem::new(
            StatusCode::NOT_FOUND,
            "INVALID_SESSION_ID",
            format!("no live session '{id}' (it may have expired)"),
        )
    }

    pub fn channel_not_found(name: &str) -> Self {
        Problem::new(
            StatusCode::NOT_FOUND,
            "INVALID_CHANNEL",
            format!("channel '{name}' is not deployed here"),
        )
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut doc = json!({
            "type": "about:blank",
            "title": self.status.canonical_reason().unwrap_or("error"),
            "status": self.status.as_u16(),
            "code": self.code,
            "detail": self.detail,
            // The runtime API's contract: every response carries its messages, errors too.
            "messages": [{ "code": self.code, "level": "error", "message": self.detail }],
        });
        if !self.errors.is_empty() {
            doc["errors"] = json!(self.errors);
        }
        doc
    }
}

/// A problem answer as one line of text for a person: its detail (or the status when the
/// body is no problem document), then each located error on a line of its own.
pub fn problem_text(status: u16, body: &J) -> String {
    let mut text = body["detail"]
        .as_str()
        .map_or_else(|| format!("the server answered {status}"), str::to_string);
    for e in body["errors"].as_array().into_iter().flatten() {
        text.push_str("\n  ");
        text.push_str(e.as_str().unwrap_or_default());
    }
    text
}

#[cfg(feature = "server")]
pub use server::bare_error_as_problem;

#[cfg(feature = "server")]
mod server {
    use axum::Json;
    use axum::http::{HeaderValue, StatusCode, header};

    use axum::response::{IntoResponse, Response};

    use super::Problem;

    /// axum's own rejections (a path that is not UTF-8, a method a route lacks) answer in plain
    /// text or with no body at all; this makes them problem documents too, keeping their status
    /// and headers (`Allow`), so a caller meets one error format whatever went wrong.
    pub async fn bare_error_as_problem(response: Response) -> Response {
        let status = response.status();
        let plain = response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_none_or(|v| v.as_bytes().starts_with(b"text/plain"));
        if !(status.is_client_error() || status.is_server_error()) || !plain {
            return response;
        }
        let (parts, body) = response.into_parts();
        let text = axum::body::to_bytes(body, 4096)
            .await
            .map(|b| String::from_utf8_lossy(&b).trim().to_lowercase())
            .unwrap_or_default();
        let detail = if text.is_empty() {
            status.canonical_reason().unwrap_or("error").to_lowercase()
        } else {
            text
        };
        let mut problem = Problem::new(status, code_of(status), detail).into_response();
        for (name, value) in &parts.headers {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                problem.headers_mut().append(name, value.clone());
            }
        }
        problem
    }

    impl IntoResponse for Problem {
        fn into_response(self) -> Response {
            let mut response = (self.status, Json(self.to_json())).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/problem+json"),
            );
            response
        }
    }

    impl From<axum::extract::rejection::JsonRejection> for Problem {
        fn from(rejection: axum::extract::rejection::JsonRejection) -> Self {
            let status = match rejection.status() {
                StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
                status => status,
            };
            // axum's text names the field and position: "requests[0].count: invalid type ...".
            Problem::new(
                status,
                code_of(status),
                rejection.body_text().to_lowercase(),
            )
        }
    }

    impl From<axum::extract::rejection::QueryRejection> for Problem {
        fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
            Problem::bad_request(rejection.body_text().to_lowercase())
        }
    }

    /// The code of an error that has no more specific one: a request that could not be read is
    /// malformed, whatever status axum gives it.
    fn code_of(status: StatusCode) -> &'static str {
        match status {
            StatusCode::BAD_REQUEST
            | StatusCode::UNPROCESSABLE_ENTITY
            | StatusCode::UNSUPPORTED_MEDIA_TYPE => "MALFORMED_REQUEST",
            StatusCode::UNAUTHORIZED => "UNAUTHORIZED",
            StatusCode::FORBIDDEN => "FORBIDDEN",
            StatusCode::NOT_FOUND => "NOT_FOUND",
            StatusCode::METHOD_NOT_ALLOWED => "METHOD_NOT_ALLOWED",
            StatusCode::PAYLOAD_TOO_LARGE => "PAYLOAD_TOO_LARGE",
            s if s.is_server_error() => "INTERNAL",
            _ => "BAD_REQUEST",
        }
    }
}
