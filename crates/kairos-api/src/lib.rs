//! The wire contract of Kairos, shared by its servers (the runtime, the control plane) and
//! their clients (the CLI, the runtimes following a control plane): both APIs' requests and
//! answers as types ([`control`], [`runtime`], [`interact`], [`testrun`]), problem documents and their stable codes,
//! what both OpenAPI documents share, rule values as JSON, token digests, and the client.
//!
//! With the `server` feature, problems are axum responses and axum's own rejections become
//! problems, request bodies are read the same way, TLS listeners serve `https://`, and
//! [`serve::serve`] bounds every connection, so both servers answer every error, read every
//! body and hold every connection alike.

pub mod client;
mod code;
pub mod control;
#[cfg(feature = "server")]
pub mod extract;
pub mod interact;
pub mod loadtest;
pub mod openapi;
pub mod problem;
pub mod remote;
pub mod runtime;
#[cfg(feature = "server")]
pub mod serve;
pub mod testrun;
#[cfg(feature = "server")]
pub mod tls;

use kairos_rules::Value;
use kairos_rules::time::{Timestamp, format_duration, format_timestamp};
use serde_json::Value as J;
use sha2::{Digest, Sha256};

pub use client::{Client, ClientError};
pub use code::Code;
pub use problem::Problem;

/// A rule value as JSON: timestamps and durations as their text, map keys as strings.
pub fn value_json(v: &Value) -> J {
    match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Double(d) => serde_json::Number::from_f64(*d).map_or(J::Null, J::Number),
        Value::String(s) => J::String(s.to_string()),
        Value::Timestamp(t) => J::String(format_timestamp(*t)),
        Value::Duration(d) => J::String(format_duration(*d)),
        Value::List(items) => J::Array(items.iter().map(value_json).collect()),
        Value::Map(pairs) => J::Object(
            pairs
                .iter()
                .map(|(k, v)| {
                    (
                        match k {
                            Value::String(s) => s.to_string(),
                            other => other.to_string(),
                        },
                        value_json(v),
                    )
                })
                .collect(),
        ),
    }
}

/// What is stored and sent of a token (user, runtime, touchpoint): its SHA-256 digest in hex.
/// A runtime checks a touchpoint's token against the digests its control plane sends.
pub fn token_digest(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The system clock, as the servers read it (the engine takes time as an argument).
pub fn wall_clock() -> Timestamp {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    Timestamp(i64::try_from(nanos).unwrap_or(i64::MAX))
}
