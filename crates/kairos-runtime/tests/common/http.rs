//! A minimal HTTP/1.1 client for the servers' integration tests (the runtime's and, through
//! a `#[path]` module, the control plane's): one request per connection, any method, path
//! and headers, so tests can send what a typed client would refuse to.

use std::net::SocketAddr;

use serde_json::Value as J;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A minimal HTTP/1.1 client: one request per connection.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let (status, _, body) = http_with_head(addr, method, path, headers, body).await;
    (status, body)
}

/// As [`http`], with the answer's head (status line and headers, lowercased) too.
pub async fn http_with_head(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: kairos\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    // JSON unless the caller names a content type; one named empty is sent as none.
    let typed = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    if !body.is_empty() && !typed {
        request.push_str("content-type: application/json\r\n");
    }
    for (k, v) in headers.iter().filter(|(_, v)| !v.is_empty()) {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text[9..12].parse().unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let (head, body) = (head.to_ascii_lowercase(), body.to_string());
    // Small bodies only: undo chunked transfer encoding when present.
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(&body)
    } else {
        body
    };
    (status, head, body)
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
    out
}

pub async fn call(addr: SocketAddr, method: &str, path: &str, body: J) -> (u16, J) {
    let text = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let (status, body) = http(addr, method, path, &[], &text).await;
    (
        status,
        serde_json::from_str(&body).unwrap_or(J::String(body)),
    )
}
