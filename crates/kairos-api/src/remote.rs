//! The scenario [`Target`] over a runtime's native API: `kairos test --group`, `kairos
//! loadtest` and the control plane's simulator play scenarios through it.

use std::sync::Arc;

use kairos_engine::scenario::{Call, ChannelNames, Outcome, Target};
use kairos_engine::{CandidateExplain, Filter, IpExplain};
use kairos_rules::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Map;

use crate::runtime::{
    AudienceRequest, ChannelAnswer, EventAnswer, EventRequest, IpExplainView, Message,
    MessagesAnswer, OfferAsk, OffersAnswer, OffersRequest, ProfileAnswer, StartRequest, Started,
    Values,
};
use crate::{Client, ClientError, value_json};

fn values(values: &[(String, Value)]) -> Values {
    Values(
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

    /// A call's answer as `T`, or the problem's code and text as the error (a scenario's
    /// `expect: { error: CODE }` matches its start).
    fn call_api<T: DeserializeOwned>(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, String> {
        self.client.call(method, path, body).map_err(|e| match e {
            ClientError::Refused {
                status,
                code: Some(code),
                text,
            } => format!("{code}: {text} (HTTP {status})"),
            other => other.to_string(),
        })
    }
}

fn codes(messages: &[Message]) -> Vec<String> {
    messages.iter().map(|m| m.code.name().to_string()).collect()
}

impl Target for Remote {
    fn call(&mut self, call: &Call) -> Result<Outcome, String> {
        let mut outcome = Outcome::default();
        match call {
            Call::StartSession {
                session_id,
                audience_level,
                audience_id,
                params,
            } => {
                let request = StartRequest {
                    session_id: session_id.clone(),
                    channel: self.channel.clone(),
                    audience_level: audience_level.clone(),
                    audience_id: values(audience_id),
                    params: Some(values(params)),
                    rely_on_existing_session: None,
                    debug: Some(true),
                };
                let started: Started = self.call_api("POST", "/v1/sessions", Some(&request))?;
                self.session = Some(started.session_id);
                outcome.messages = codes(&started.messages);
            }
            Call::GetOffers {
                requests,
                params,
                allow_duplicates,
            } => {
                let request = OffersRequest {
                    requests: requests
                        .iter()
                        .map(|(ip, count)| OfferAsk {
                            ip: ip.clone(),
                            count: Some(*count),
                            allow_duplicates: None,
                        })
                        .collect(),
                    params: Some(values(params)),
                    allow_duplicates: Some(*allow_duplicates),
                };
                let path = format!("/v1/sessions/{}/offers", self.session()?);
                let answer: OffersAnswer = self.call_api("POST", &path, Some(&request))?;
                outcome.offers = answer
                    .offer_lists
                    .into_iter()
                    .map(|l| {
                        let offers = l.offers.into_iter().map(|o| (o.code, o.treatment_code));
                        (l.ip, offers.collect())
                    })
                    .collect();
                outcome.messages = codes(&answer.messages);
                outcome.explain = answer.explain.map(|ips| explain_text(&ips));
            }
            Call::PostEvent { event, params } => {
                let path = format!("/v1/sessions/{}/events", self.session()?);
                let request = EventRequest {
                    event: event.clone(),
                    params: Some(values(params)),
                };
                let answer: EventAnswer = self.call_api("POST", &path, Some(&request))?;
                outcome.messages = codes(&answer.messages);
            }
            Call::SetAudience {
                audience_level,
                audience_id,
                params,
            } => {
                let path = format!("/v1/sessions/{}/audience", self.session()?);
                let request = AudienceRequest {
                    audience_level: audience_level.clone(),
                    audience_id: values(audience_id),
                    params: Some(values(params)),
                };
                let answer: MessagesAnswer = self.call_api("PUT", &path, Some(&request))?;
                outcome.messages = codes(&answer.messages);
            }
            Call::GetProfile => {
                let path = format!("/v1/sessions/{}/profile", self.session()?);
                self.call_api::<ProfileAnswer>("GET", &path, None::<&()>)?;
            }
            Call::EndSession => {
                let path = format!("/v1/sessions/{}", self.session()?);
                self.call_api::<MessagesAnswer>("DELETE", &path, None::<&()>)?;
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
        let profile: ProfileAnswer = self.call_api("GET", &path, None::<&()>)?;
        Ok(profile.segments)
    }

    fn names(&mut self) -> Result<ChannelNames, String> {
        let path = format!("/v1/channels/{}", self.channel);
        let described: ChannelAnswer = self.call_api("GET", &path, None::<&()>)?;
        Ok(ChannelNames {
            offers: described.offers,
            segments: described.segments,
            interaction_points: described.interaction_points,
        })
    }
}

/// The explain output of a debug get offers, read back into the engine's explain types so
/// it prints exactly as an in-process run prints it.
fn explain_text(ips: &[IpExplainView]) -> String {
    ips.iter()
        .map(|ip| {
            IpExplain {
                ip: Arc::from(ip.ip.as_str()),
                control_group: ip.control_group,
                explored: ip.explored,
                candidates: ip
                    .candidates
                    .iter()
                    .map(|c| CandidateExplain {
                        offer: Arc::from(c.offer.as_str()),
                        rule: Arc::from(c.rule.as_str()),
                        removed_by: c.removed_by.as_deref().and_then(Filter::from_name),
                        detail: c.detail.clone(),
                        score: c.score,
                        final_score: c.final_score,
                    })
                    .collect(),
            }
            .to_text()
        })
        .collect()
}
