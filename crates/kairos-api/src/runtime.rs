//! The runtime's native API (`/v1/`) as types: what a touchpoint sends and what it gets back.
//! The runtime reads the requests and writes the answers (the get offers answer by hand, into
//! bytes, as [`OffersAnswer`] describes it), clients read them, and the OpenAPI document is
//! generated from them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as J};
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{RefOr, schema::AdditionalProperties};
use utoipa::{PartialSchema, ToSchema};

use crate::{Code, Problem};

/// Named values a touchpoint sends (an audience ID's fields, real-time parameters): strings,
/// numbers and booleans only. Runtime callers never send code, nor structures.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Values(pub Map<String, J>);

impl PartialSchema for Values {
    fn schema() -> RefOr<Schema> {
        values_schema().into()
    }
}

fn values_schema() -> ObjectBuilder {
    let scalar = OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::String))
        .item(ObjectBuilder::new().schema_type(Type::Number))
        .item(ObjectBuilder::new().schema_type(Type::Boolean));
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::RefOr(scalar.into())))
        .description(Some("Names and values: strings, numbers or booleans"))
}

/// An audience ID: its level's ID fields, at least one.
fn audience_id_schema() -> ObjectBuilder {
    values_schema().min_properties(Some(1))
}

impl ToSchema for Values {}

/// `POST /v1/sessions`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct StartRequest {
    /// The session's ID; one is made when absent.
    #[serde(default)]
    pub session_id: Option<String>,
    pub channel: String,
    /// The channel's default level when absent.
    #[serde(default)]
    pub audience_level: Option<String>,
    /// The level's ID fields, like `{ "customer_id": 1001 }`.
    #[schema(schema_with = audience_id_schema)]
    pub audience_id: Values,
    #[serde(default)]
    pub params: Option<Values>,
    /// Keep a live session of this ID as it is rather than start it again.
    #[serde(default)]
    pub rely_on_existing_session: Option<bool>,
    /// Answer get offers with the explain of every decision.
    #[serde(default)]
    pub debug: Option<bool>,
}

/// Offers wanted at one interaction point.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct OfferAsk {
    pub ip: String,
    /// How many (1 by default, at most 100).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    pub count: Option<u32>,
    /// This point's own duplicate policy, over the call's.
    #[serde(default)]
    pub allow_duplicates: Option<bool>,
}

impl OfferAsk {
    /// `ip=hero&count=2`, the query of get offers by GET, read by hand: on the hot path,
    /// serde's form decoding took 5% of a call's instructions. Other parameters are ignored,
    /// as the form decoder did.
    pub fn from_query(query: &str) -> Result<OfferAsk, Problem> {
        let (mut ip, mut count) = (None, None);
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "ip" => ip = Some(percent_decode(value, "ip")?),
                "count" => {
                    count = Some(value.parse::<u32>().map_err(|_| {
                        Problem::bad_request(format!(
                            "count: '{value}' is not a whole number of offers"
                        ))
                    })?)
                }
                _ => {}
            }
        }
        // `?ip` and `?ip=` name no interaction point.
        let ip = ip.filter(|ip| !ip.is_empty()).ok_or_else(|| {
            Problem::bad_request("ip: missing; name the interaction point: ?ip=NAME&count=N")
        })?;
        Ok(OfferAsk {
            ip,
            count,
            allow_duplicates: None,
        })
    }
}

/// Decodes `%XX` escapes and `+` (a space in a form-encoded query).
fn percent_decode(text: &str, field: &str) -> Result<String, Problem> {
    if !text.contains(['%', '+']) {
        return Ok(text.to_string());
    }
    let bad = || Problem::bad_request(format!("{field}: malformed percent-encoding"));
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.bytes();
    while let Some(b) = rest.next() {
        bytes.push(match b {
            b'+' => b' ',
            b'%' => {
                let hex = [rest.next().ok_or_else(bad)?, rest.next().ok_or_else(bad)?];
                std::str::from_utf8(&hex)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(bad)?
            }
            other => other,
        });
    }
    String::from_utf8(bytes).map_err(|_| Problem::bad_request(format!("{field}: not UTF-8")))
}

/// `POST /v1/sessions/{id}/offers`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct OffersRequest {
    #[schema(min_items = 1)]
    pub requests: Vec<OfferAsk>,
    #[serde(default)]
    pub params: Option<Values>,
    /// May one offer show at several interaction points of the call.
    #[serde(default)]
    pub allow_duplicates: Option<bool>,
}

/// `POST /v1/sessions/{id}/events`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct EventRequest {
    pub event: String,
    /// The event's parameters; a contact, accept or reject names its offer's
    /// `UACIOfferTrackingCode` (the treatment code).
    #[serde(default)]
    pub params: Option<Values>,
}

/// `PUT /v1/sessions/{id}/audience`: the visitor identified (or changed) mid-session.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AudienceRequest {
    #[serde(default)]
    pub audience_level: Option<String>,
    #[schema(schema_with = audience_id_schema)]
    pub audience_id: Values,
    #[serde(default)]
    pub params: Option<Values>,
}

/// No arguments: `{}`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct NoArguments {}

/// One command of a batch: an object with one property, the command's name.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    StartSession(StartRequest),
    GetOffers(OffersRequest),
    PostEvent(EventRequest),
    SetAudience(AudienceRequest),
    GetProfile(NoArguments),
    EndSession(NoArguments),
}

/// `POST /v1/batch`: commands run in order on one session, up to the first that fails.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchRequest {
    /// The session; a `start_session` command sets it for the commands after it.
    #[serde(default)]
    pub session_id: Option<String>,
    /// Each read when its turn comes: one that cannot be read fails there, and the batch
    /// stops.
    #[schema(schema_with = command_list_schema)]
    pub commands: Vec<Map<String, J>>,
}

/// A list of [`Command`]s: each an object with exactly one property, the command's name.
fn command_list_schema() -> utoipa::openapi::schema::ArrayBuilder {
    let mut command = ObjectBuilder::new()
        .schema_type(Type::Object)
        .min_properties(Some(1))
        .max_properties(Some(1))
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .description(Some("One command: start_session, get_offers, post_event, set_audience, get_profile or end_session"));
    for (name, schema) in [
        ("start_session", StartRequest::name()),
        ("get_offers", OffersRequest::name()),
        ("post_event", EventRequest::name()),
        ("set_audience", AudienceRequest::name()),
        ("get_profile", NoArguments::name()),
        ("end_session", NoArguments::name()),
    ] {
        command = command.property(name, utoipa::openapi::Ref::from_schema_name(schema));
    }
    utoipa::openapi::schema::ArrayBuilder::new().items(command)
}

/// An advisory message; every answer carries a list of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Message {
    pub code: Code,
    /// `warning` or `error`.
    pub level: String,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Started {
    pub session_id: String,
    pub messages: Vec<Message>,
    /// The visitor's segments, when the session was started with `debug`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<Vec<String>>,
}

/// An offer served: its code, what to show, and the treatment code to echo back in events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServedOffer {
    pub code: String,
    pub name: Option<String>,
    pub category: Option<String>,
    pub treatment_code: String,
    pub score: Option<f64>,
    /// The offer's attributes, merged with its rule's.
    pub attributes: Map<String, J>,
}

/// The offers of one interaction point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OfferList {
    pub ip: String,
    /// What to show when no offer is served.
    pub default: Option<String>,
    pub offers: Vec<ServedOffer>,
}

/// Why a candidate offer was or was not served.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CandidateView {
    pub offer: String,
    pub rule: String,
    /// The filter that removed it, if one did.
    pub removed_by: Option<String>,
    pub detail: Option<String>,
    pub score: Option<f64>,
    pub final_score: Option<f64>,
}

/// The decision at one interaction point, explained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IpExplainView {
    pub ip: String,
    pub control_group: bool,
    pub explored: bool,
    pub candidates: Vec<CandidateView>,
}

/// The get offers answer (`POST` or `GET /v1/sessions/{id}/offers`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OffersAnswer {
    pub offer_lists: Vec<OfferList>,
    pub messages: Vec<Message>,
    /// Every decision explained, for a session started with `debug`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explain: Option<Vec<IpExplainView>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventAnswer {
    pub messages: Vec<Message>,
    /// The visitor's segments after the event, for a `debug` session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<Vec<String>>,
    /// The event patterns' states after the event, for a `debug` session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patterns: Option<J>,
}

/// An answer with nothing to say but its messages.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MessagesAnswer {
    pub messages: Vec<Message>,
}

/// `GET /v1/sessions/{id}/profile`: what the session knows of its visitor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProfileAnswer {
    pub audience_level: String,
    pub audience_id: Map<String, J>,
    pub profile: Map<String, J>,
    pub params: Map<String, J>,
    pub segments: Vec<String>,
    pub messages: Vec<Message>,
}

/// A channel the runtime serves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServedChannel {
    /// The version.
    pub deployment: u64,
    pub hash: String,
}

/// `GET /v1/version`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VersionAnswer {
    /// Kairos's version.
    pub version: String,
    pub channels: BTreeMap<String, ServedChannel>,
    pub messages: Vec<Message>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LevelView {
    pub name: String,
    pub id_fields: Vec<String>,
    /// The table its profiles are read from, if any.
    #[serde(default)]
    pub profile_table: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    pub name: String,
    /// Posting it logs a contact.
    pub logs_contact: bool,
}

/// `GET /v1/channels/{name}`: what a touchpoint may call on a deployed channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChannelAnswer {
    pub channel: String,
    pub deployment: u64,
    pub hash: String,
    pub default_audience_level: Option<String>,
    pub audience_levels: Vec<LevelView>,
    pub interaction_points: Vec<String>,
    pub events: Vec<EventView>,
    /// The offers' codes (a runtime of an earlier version sends none).
    #[serde(default)]
    pub offers: Vec<String>,
    /// The segments' names (a runtime of an earlier version sends none).
    #[serde(default)]
    pub segments: Vec<String>,
    pub messages: Vec<Message>,
}

/// `POST /v1/batch`: one answer per command run, in order; a failed command's is
/// `{ messages, error }` with its problem document, and the commands after it do not run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BatchAnswer {
    pub session_id: Option<String>,
    pub responses: Vec<J>,
}

#[cfg(test)]
mod tests {
    use super::OfferAsk;

    #[test]
    fn the_get_offers_query_names_its_interaction_point() {
        let ask = OfferAsk::from_query("count=2&ip=home%20hero+left&x=1").unwrap();
        assert_eq!((ask.ip.as_str(), ask.count), ("home hero left", Some(2)));
        for query in ["", "ip", "ip=", "count=2", "ip=&count=1"] {
            let refused = OfferAsk::from_query(query).unwrap_err();
            assert!(
                refused.detail.starts_with("ip: missing"),
                "{query}: {refused:?}"
            );
        }
        for (query, field) in [
            ("ip=a%2", "ip"),
            ("ip=%ff", "ip"),
            ("ip=a&count=-1", "count"),
        ] {
            let refused = OfferAsk::from_query(query).unwrap_err();
            assert!(refused.detail.starts_with(field), "{query}: {refused:?}");
        }
    }
}
