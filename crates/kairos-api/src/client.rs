//! The HTTP client of the CLI, of the runtimes following their control plane and of the
//! control plane's simulator: reqwest's blocking client (keep-alive, JSON), `http://` or
//! `https://`, trusting the system's roots and, for a private CA, the certificates of a PEM
//! file.

use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Duration;

use reqwest::blocking::RequestBuilder;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value as J;

use crate::Code;
use crate::problem::{ProblemDocument, problem_text};

/// Why a request got no answer, or not the one asked for.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server refused: its problem's code, and its text (the detail, then each located
    /// error).
    #[error("{text}")]
    Refused {
        status: u16,
        code: Option<Code>,
        text: String,
    },
    #[error("the answer to {path} is not what this kairos expects: {error}")]
    Unexpected {
        path: String,
        error: serde_json::Error,
    },
    #[error("'{0}' is not an http:// or https:// address")]
    Url(String),
    #[error("cannot read the CA file {}: {error}", path.display())]
    CaFile {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("the CA file {} holds no PEM certificate: {}", path.display(), chain(error))]
    CaPem {
        path: PathBuf,
        error: reqwest::Error,
    },
    #[error("'{0}' is not an HTTP method")]
    Method(String),
    #[error("cannot set up the HTTP client: {}", chain(.0))]
    Build(reqwest::Error),
    #[error("cannot reach {url}: {}", chain(error))]
    Unreachable { url: String, error: reqwest::Error },
}

/// An error and its causes on one line: reqwest's own text alone ("error sending request")
/// does not say that the connection was refused, or which certificate was not trusted. (The
/// reqwest error is therefore no `source` of ours: a printer of source chains would repeat it.)
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// TLS through rustls with ring, installed once as the process's provider (the servers use
/// the same one). rustls now marks ring's provider deprecated for lacking post-quantum key
/// exchange; its alternative, aws-lc-rs, builds a C library of its own with cmake, a cost on
/// every clean build that a link between a team's own control plane and runtimes does not
/// justify yet.
pub fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Another part of the process may have installed one first; either serves.
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A connection pool to one server (a control plane or a runtime), sending a bearer token
/// with every request when it has one.
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::blocking::Client,
}

impl Client {
    /// `url` is `http://HOST:PORT` or `https://HOST:PORT`; the system's roots are trusted.
    pub fn new(url: &str, token: Option<String>) -> Result<Client, ClientError> {
        Client::with_ca_file(url, token, None)
    }

    /// As [`Client::new`], trusting the certificates of `ca_file` (PEM) too.
    pub fn with_ca_file(
        url: &str,
        token: Option<String>,
        ca_file: Option<&Path>,
    ) -> Result<Client, ClientError> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ClientError::Url(url.to_string()));
        }
        install_crypto_provider();
        // Long polls wait up to 5 s and a heavy report a few more; 30 s means the server is
        // stuck, not busy.
        let mut builder = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true);
        if let Some(path) = ca_file {
            let pem = std::fs::read(path).map_err(|error| ClientError::CaFile {
                path: path.to_path_buf(),
                error,
            })?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| {
                ClientError::CaPem {
                    path: path.to_path_buf(),
                    error,
                }
            })?;
            builder = builder.tls_certs_merge(certificates);
        }
        Ok(Client {
            base: url.trim_end_matches('/').to_string(),
            token,
            http: builder.build().map_err(ClientError::Build)?,
        })
    }

    /// A JSON call answered with `T` (`IgnoredAny` when the answer has no body); an answer
    /// other than 2xx is [`ClientError::Refused`] with its problem's text.
    pub fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, ClientError> {
        let mut request = self.start(method, path)?;
        if let Some(body) = body {
            request = request.json(body);
        }
        let (status, bytes) = self.finish(request)?;
        answer(path, status, &bytes)
    }

    /// A body that is not JSON (a CSV file), answered with `T`.
    pub fn upload<T: DeserializeOwned>(
        &self,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<T, ClientError> {
        let (status, bytes) = self.send("POST", path, Some(content_type), body)?;
        answer(path, status, &bytes)
    }

    /// Sends one JSON request (or none) and reads a JSON answer (`null` when it is not JSON).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&J>,
    ) -> Result<(u16, J), ClientError> {
        let mut request = self.start(method, path)?;
        if let Some(body) = body {
            request = request.json(body);
        }
        let (status, bytes) = self.finish(request)?;
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(J::Null)))
    }

    /// Sends one request with any body.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let mut request = self.start(method, path)?.body(body.to_vec());
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        self.finish(request)
    }

    fn start(&self, method: &str, path: &str) -> Result<RequestBuilder, ClientError> {
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| ClientError::Method(method.to_string()))?;
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        Ok(request)
    }

    fn finish(&self, request: RequestBuilder) -> Result<(u16, Vec<u8>), ClientError> {
        let unreachable = |error| ClientError::Unreachable {
            url: self.base.clone(),
            error,
        };
        let response = request.send().map_err(unreachable)?;
        let status = response.status().as_u16();
        let bytes = response.bytes().map_err(unreachable)?;
        Ok((status, bytes.to_vec()))
    }
}

/// A 2xx answer as `T` (an empty one reads as `null`), or the refusal's problem text.
fn answer<T: DeserializeOwned>(path: &str, status: u16, bytes: &[u8]) -> Result<T, ClientError> {
    if !(200..300).contains(&status) {
        let problem = serde_json::from_slice(bytes).unwrap_or(J::Null);
        return Err(ClientError::Refused {
            status,
            code: ProblemDocument::deserialize(&problem).ok().map(|p| p.code),
            text: problem_text(status, &problem),
        });
    }
    let bytes = if bytes.is_empty() { b"null" } else { bytes };
    serde_json::from_slice(bytes).map_err(|error| ClientError::Unexpected {
        path: path.to_string(),
        error,
    })
}
