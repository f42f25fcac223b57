//! Errors as RFC 9457 problem documents with stable codes.

use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value as J;

use crate::Code;

/// An error answer: its code, status and detail, and every located error when there are
/// several (a rejected channel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub status: StatusCode,
    pub code: Code,
    pub detail: String,
    pub errors: Vec<String>,
}

/// A problem as it goes over the wire: RFC 9457's members, Kairos' `code`, the located
/// `errors`, and the `messages` list every runtime answer carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProblemDocument {
    /// Always `about:blank`: the code says what happened.
    #[serde(rename = "type")]
    pub kind: String,
    /// The status's reason phrase.
    pub title: String,
    pub status: u16,
    pub code: Code,
    /// What went wrong, for a person.
    pub detail: String,
    /// Every located error, when there are several (`file:line:column: message`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// The code and detail again, as the one message of the answer.
    pub messages: Vec<ProblemMessage>,
}

/// The one message of a problem document: its code and detail again, as an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProblemMessage {
    pub code: Code,
    /// `error`.
    pub level: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for Problem {}

impl Problem {
    /// A problem with `code`'s status.
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        Problem {
            status: code.status(),
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
        Problem::new(Code::Internal, detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Problem::new(Code::MalformedRequest, detail)
    }

    pub fn session_not_found(id: &str) -> Self {
        Problem::new(
            Code::InvalidSessionId,
            format!("no live session '{id}' (it may have expired)"),
        )
    }

    pub fn channel_not_found(name: &str) -> Self {
        Problem::new(
            Code::InvalidChannel,
            format!("channel '{name}' is not deployed here"),
        )
    }

    pub fn document(&self) -> ProblemDocument {
        ProblemDocument {
            kind: "about:blank".to_string(),
            title: self
                .status
                .canonical_reason()
                .unwrap_or("error")
                .to_string(),
            status: self.status.as_u16(),
            code: self.code,
            detail: self.detail.clone(),
            errors: self.errors.clone(),
            // The runtime API's contract: every response carries its messages, errors too.
            messages: vec![ProblemMessage {
                code: self.code,
                level: "error".to_string(),
                message: self.detail.clone(),
            }],
        }
    }
}

/// A problem answer as the lines a person reads: its detail, then each located error on a
/// line of its own; the status alone when the body is no problem document.
pub fn problem_text(status: u16, body: &J) -> String {
    let Ok(problem) = ProblemDocument::deserialize(body) else {
        return format!("the server answered {status}");
    };
    let mut text = problem.detail;
    for e in &problem.errors {
        text.push_str("\n  ");
        text.push_str(e);
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
    use crate::Code;

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
        let mut problem = of_status(status, detail).into_response();
        for (name, value) in &parts.headers {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                problem.headers_mut().append(name, value.clone());
            }
        }
        problem
    }

    impl IntoResponse for Problem {
        fn into_response(self) -> Response {
            let mut response = (self.status, Json(self.document())).into_response();
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
            of_status(status, rejection.body_text().to_lowercase())
        }
    }

    /// A body that could not be read: too large (413), or cut off.
    impl From<axum::extract::rejection::BytesRejection> for Problem {
        fn from(rejection: axum::extract::rejection::BytesRejection) -> Self {
            of_status(rejection.status(), rejection.body_text().to_lowercase())
        }
    }

    impl From<axum::extract::rejection::QueryRejection> for Problem {
        fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
            Problem::bad_request(rejection.body_text().to_lowercase())
        }
    }

    /// A problem of axum's status, with the code of an error that has no more specific one:
    /// a request that could not be read is malformed, whatever status axum gives it.
    fn of_status(status: StatusCode, detail: String) -> Problem {
        let code = match status {
            StatusCode::BAD_REQUEST
            | StatusCode::UNPROCESSABLE_ENTITY
            | StatusCode::UNSUPPORTED_MEDIA_TYPE => Code::MalformedRequest,
            StatusCode::UNAUTHORIZED => Code::Unauthorized,
            StatusCode::FORBIDDEN => Code::Forbidden,
            StatusCode::NOT_FOUND => Code::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => Code::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => Code::PayloadTooLarge,
            s if s.is_server_error() => Code::Internal,
            _ => Code::BadRequest,
        };
        Problem {
            status,
            code,
            detail,
            errors: Vec::new(),
        }
    }
}
