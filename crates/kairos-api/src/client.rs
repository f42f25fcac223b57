//! A small blocking HTTP/1.1 client (keep-alive, JSON) for the CLI, the runtimes following
//! their control plane and the control plane's simulator.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value as J;

/// One keep-alive connection to a runtime.
pub struct Client {
    address: String,
    token: Option<String>,
    stream: Option<BufReader<TcpStream>>,
}

impl Client {
    /// `url` is `http://HOST:PORT`.
    pub fn new(url: &str, token: Option<String>) -> Result<Client, String> {
        let address = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("'{url}' is not an http:// address"))?
            .trim_end_matches('/')
            .to_string();
        Ok(Client {
            address,
            token,
            stream: None,
        })
    }

    fn connect(&mut self) -> Result<&mut BufReader<TcpStream>, String> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.address)
                .map_err(|e| format!("cannot reach {}: {e}", self.address))?;
            stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .map_err(|e| e.to_string())?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            self.stream = Some(BufReader::new(stream));
        }
        Ok(self.stream.as_mut().expect("connected above"))
    }

    /// Sends one JSON request (or none) and reads a JSON answer (`null` when it is not JSON).
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&J>,
    ) -> Result<(u16, J), String> {
        let body = body.map(J::to_string);
        let content_type = body.as_ref().map(|_| "application/json");
        let (status, bytes) = self.send(
            method,
            path,
            content_type,
            body.as_deref().unwrap_or_default().as_bytes(),
        )?;
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(J::Null)))
    }

    /// Sends one request with any body; a connection the server closed is reopened once.
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), String> {
        match self.try_send(method, path, content_type, body) {
            Ok(r) => Ok(r),
            Err(_) => {
                self.stream = None;
                self.try_send(method, path, content_type, body)
            }
        }
    }

    fn try_send(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), String> {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\n",
            self.address,
            body.len()
        );
        if let Some(content_type) = content_type {
            head.push_str(&format!("content-type: {content_type}\r\n"));
        }
        if let Some(token) = &self.token {
            head.push_str(&format!("authorization: Bearer {token}\r\n"));
        }
        head.push_str("\r\n");
        let address = self.address.clone();
        let stream = self.connect()?;
        let io = |e: std::io::Error| format!("the connection to {address} failed: {e}");
        stream.get_mut().write_all(head.as_bytes()).map_err(io)?;
        stream.get_mut().write_all(body).map_err(io)?;
        let mut status_line = String::new();
        stream.read_line(&mut status_line).map_err(io)?;
        let status: u16 = status_line
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{address} sent no HTTP status"))?;
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            stream.read_line(&mut line).map_err(io)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().map_err(|_| "bad content-length")?;
            }
        }
        let mut bytes = vec![0; length];
        stream.read_exact(&mut bytes).map_err(io)?;
        Ok((status, bytes))
    }
}
