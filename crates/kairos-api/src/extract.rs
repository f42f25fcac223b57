//! Request bodies as the servers read them (`server` feature): a JSON object as a request
//! type, its rejection a problem document that names the field.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use serde_json::Value as J;

use crate::Problem;

/// A JSON object read as `T`. A number with a zero fraction reads as an integer (JSON
/// Schema's integers include `5.0`); an array never reads as a request (serde would take it
/// for the fields in order). The bytes are read straight into `T` first: the detour through
/// a JSON value is taken only when that fails (the runtime's calls come this way).
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        // The content type checked as axum's own extractor checks it.
        if json_content_type(&request) {
            let bytes = Bytes::from_request(request, state).await?;
            return read_body(&bytes).map(Body);
        }
        // Refused with axum's own problem (no or another content type).
        let refused: Result<Json<J>, JsonRejection> = Json::from_request(request, state).await;
        let value = refused?.0;
        object(value).map(Body)
    }
}

/// A JSON body's bytes read as `T`, as every request body is.
pub fn read_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    if bytes.first() == Some(&b'{')
        && let Ok(read) = serde_json::from_slice(bytes)
    {
        return Ok(read);
    }
    let value: Json<J> = Json::from_bytes(bytes)?;
    object(value.0)
}

/// A JSON value read as the request `T`: an object, never a list.
fn object<T: DeserializeOwned>(value: J) -> Result<T, Problem> {
    if !value.is_object() {
        return Err(Problem::bad_request("the body must be a JSON object"));
    }
    read_value(value, "")
}

/// `value` read as a `T` as a request body is (integral floats as integers); a problem names
/// the field, after `at` (`commands[2].`), then what is wrong with it.
pub fn read_value<T: DeserializeOwned>(mut value: J, at: &str) -> Result<T, Problem> {
    integral_floats_as_integers(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| Problem::bad_request(format!("{at}{e}")))
}

fn json_content_type(request: &Request) -> bool {
    media_type(request.headers()).is_some_and(is_json)
}

/// The media type of a request's body (`text/plain` of `text/plain;charset=UTF-8`), if it
/// names one.
pub fn media_type(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim)
}

/// Whether a media type is JSON, as axum's own extractor reads it.
pub fn is_json(mime: &str) -> bool {
    mime.eq_ignore_ascii_case("application/json")
        || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// `5.0` as `5`, everywhere in `value`: a field of an integer type then reads it.
fn integral_floats_as_integers(value: &mut J) {
    match value {
        J::Number(n) => {
            // Strictly above i64::MIN as f64: a float that rounds to it was below it.
            if let Some(f) = n.as_f64().filter(|f| n.is_f64() && f.fract() == 0.0)
                && f > i64::MIN as f64
                && f < i64::MAX as f64
            {
                *n = serde_json::Number::from(f as i64);
            }
        }
        J::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        J::Object(fields) => fields.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}
