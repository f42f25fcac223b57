//! A small blocking HTTP/1.1 client (keep-alive, JSON) for the CLI, the runtimes following
//! their control plane and the control plane's simulator, and the scenario [`Target`] over a
//! runtime's native API on top of it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use kairos_engine::scenario::{Call, Outcome, Target};
use kairos_engine::{CandidateExplain, Filter, IpExplain};
use kairos_rules::Value;
use serde_json::{Map, Value as J, json};

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

fn params(values: &[(String, Value)]) -> J {
    J::Object(
        values
            .iter()
            .map(|(k, v)| (k.clone(), crate::native::value_json(v)))
            .collect::<Map<_, _>>(),
    )
}

/// Scenario steps as native API calls against one runtime, for one channel.
pub struct Remote {
    client: Client,
    channel: String,
    session: Option<String>,
}

impl Remote {
    pub fn new(client: Client, channel: &str) -> Remote {
        Remote {
            client,
            channel: channel.to_string(),
            session: None,
        }
    }

    fn session(&self) -> Result<&str, String> {
        self.session
            .as_deref()
            .ok_or_else(|| "no session: start one first".to_string())
    }

    /// A call's result: the body, or the problem's code and detail as the error.
    fn call_api(&mut self, method: &str, path: &str, body: Option<J>) -> Result<J, String> {
        let (status, reply) = self.client.request(method, path, body.as_ref())?;
        if status == 200 {
            Ok(reply)
        } else {
            let code = reply["code"].as_str().unwrap_or("HTTP_ERROR");
            Err(format!(
                "{code}: {} (HTTP {status})",
                reply["detail"].as_str().unwrap_or("")
            ))
        }
    }
}

fn messages(reply: &J) -> Vec<String> {
    reply["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["code"].as_str().map(str::to_string))
        .collect()
}

impl Target for Remote {
    fn call(&mut self, call: &Call) -> Result<Outcome, String> {
        let mut outcome = Outcome::default();
        match call {
            Call::StartSession {
                session_id,
                audience_level,
                audience_id,
                params: p,
            } => {
                let mut body = json!({ "channel": self.channel, "audience_id": params(audience_id), "params": params(p), "debug": true });
                if let Some(id) = session_id {
                    body["session_id"] = json!(id);
                }
                if let Some(level) = audience_level {
                    body["audience_level"] = json!(level);
                }
                let reply = self.call_api("POST", "/v1/sessions", Some(body))?;
                self.session = reply["session_id"].as_str().map(str::to_string);
                outcome.messages = messages(&reply);
            }
            Call::GetOffers {
                requests,
                params: p,
                allow_duplicates,
            } => {
                let requests: Vec<J> = requests
                    .iter()
                    .map(|(ip, count)| json!({ "ip": ip, "count": count }))
                    .collect();
                let body = json!({ "requests": requests, "params": params(p), "allow_duplicates": allow_duplicates });
                let path = format!("/v1/sessions/{}/offers", self.session()?);
                let reply = self.call_api("POST", &path, Some(body))?;
                outcome.offers = reply["offer_lists"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|l| {
                        let offers = l["offers"].as_array().into_iter().flatten();
                        let offers = offers.map(|o| {
                            (
                                o["code"].as_str().unwrap_or_default().to_string(),
                                o["treatment_code"].as_str().unwrap_or_default().to_string(),
                            )
                        });
                        (
                            l["ip"].as_str().unwrap_or_default().to_string(),
                            offers.collect(),
                        )
                    })
                    .collect();
                outcome.messages = messages(&reply);
                outcome.explain = reply["explain"].as_array().map(|ips| explain_text(ips));
            }
            Call::PostEvent { event, params: p } => {
                let path = format!("/v1/sessions/{}/events", self.session()?);
                let reply = self.call_api(
                    "POST",
                    &path,
                    Some(json!({ "event": event, "params": params(p) })),
                )?;
                outcome.messages = messages(&reply);
            }
            Call::SetAudience {
                audience_level,
                audience_id,
                params: p,
            } => {
                let path = format!("/v1/sessions/{}/audience", self.session()?);
                let body = json!({ "audience_level": audience_level, "audience_id": params(audience_id), "params": params(p) });
                let reply = self.call_api("PUT", &path, Some(body))?;
                outcome.messages = messages(&reply);
            }
            Call::GetProfile => {
                let path = format!("/v1/sessions/{}/profile", self.session()?);
                self.call_api("GET", &path, None)?;
            }
            Call::EndSession => {
                let path = format!("/v1/sessions/{}", self.session()?);
                self.call_api("DELETE", &path, None)?;
                self.session = None;
            }
            Call::Wait(_) => {
                return Err(
                    "wait moves the clock of an in-process run; a server group runs on real time"
                        .into(),
                );
            }
        }
        Ok(outcome)
    }

    fn segments(&mut self) -> Result<Vec<String>, String> {
        let path = format!("/v1/sessions/{}/profile", self.session()?);
        let reply = self.call_api("GET", &path, None)?;
        Ok(reply["segments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect())
    }
}

/// The explain output of a debug get offers, read back into the engine's explain types so
/// it prints exactly as an in-process run prints it.
fn explain_text(ips: &[J]) -> String {
    let text = |v: &J| Arc::<str>::from(v.as_str().unwrap_or_default());
    ips.iter()
        .map(|ip| {
            IpExplain {
                ip: text(&ip["ip"]),
                control_group: ip["control_group"].as_bool().unwrap_or(false),
                explored: ip["explored"].as_bool().unwrap_or(false),
                candidates: ip["candidates"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| CandidateExplain {
                        offer: text(&c["offer"]),
                        rule: text(&c["rule"]),
                        removed_by: c["removed_by"].as_str().and_then(Filter::from_name),
                        detail: c["detail"].as_str().map(str::to_string),
                        score: c["score"].as_f64(),
                        final_score: c["final_score"].as_f64(),
                    })
                    .collect(),
            }
            .to_text()
        })
        .collect()
}
