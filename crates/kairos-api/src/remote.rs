//! The scenario [`Target`] over a runtime's native API: `kairos test --group`, `kairos
//! loadtest` and the control plane's simulator play scenarios through it.

use std::sync::Arc;

use kairos_engine::scenario::{Call, Outcome, Target};
use kairos_engine::{CandidateExplain, Filter, IpExplain};
use kairos_rules::Value;
use serde::Deserialize;
use serde_json::{Map, Value as J, json};

use crate::problem::ProblemDocument;
use crate::{Client, value_json};

fn params(values: &[(String, Value)]) -> J {
    J::Object(
        values
            .iter()
            .map(|(k, v)| (k.clone(), value_json(v)))
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
        let (status, reply) = self
            .client
            .request(method, path, body.as_ref())
            .map_err(|e| e.to_string())?;
        if status == 200 {
            Ok(reply)
        } else {
            Err(match ProblemDocument::deserialize(&reply) {
                Ok(problem) => format!("{}: {} (HTTP {status})", problem.code, problem.detail),
                Err(_) => format!("the runtime answered HTTP {status}"),
            })
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
