//! Unica Interact's JSON as types: the RestServlet batch, the REST v2 bodies and the answers
//! of both, as HCL documents them. Requests are read leniently where Interact clients rely on
//! it (a session ID or a count given as a number or as text, a flag as `true` or `"true"`, a
//! name/value pair without its type); answers are written exactly.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value as J};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::Code;

/// `statusCode` and `msgLevel`: 0 success, 1 warning, 2 error.
pub const SUCCESS: u8 = 0;
pub const WARNING: u8 = 1;
pub const ERROR: u8 = 2;

/// Interact's advisory message numbers (`msgCode`) for the codes it documents the same
/// situation for; every other code has a number of Kairos' own, from 1001, fixed here.
pub fn message_number(code: Code) -> u32 {
    match code {
        Code::InvalidSessionId => 1,
        Code::InvalidChannel => 3,
        Code::UnknownEvent => 4,
        Code::UnknownInteractionPoint => 5,
        Code::ProfileUnavailable | Code::ProfileTimeout => 8,
        Code::HistoryUnavailable | Code::HistoryTimeout => 9,
        Code::UnknownCommand => 10,
        Code::MissingTreatmentCode | Code::UnknownResponseType | Code::UnknownTreatmentCode => 11,
        Code::MalformedRequest => 1001,
        Code::BadRequest => 1002,
        Code::Unauthorized => 1003,
        Code::BadCredentials => 1004,
        Code::Forbidden => 1005,
        Code::TokenNotForChannel => 1006,
        Code::LimitExceeded => 1007,
        Code::TooManyAttempts => 1008,
        Code::NotFound => 1009,
        Code::MethodNotAllowed => 1010,
        Code::Conflict => 1011,
        Code::GatesFailed => 1012,
        Code::NeverActive => 1013,
        Code::NothingActive => 1014,
        Code::NothingToRollBackTo => 1015,
        Code::NoHistory => 1016,
        Code::NoPopulation => 1017,
        Code::OneProductionGroup => 1018,
        Code::PayloadTooLarge => 1019,
        Code::InvalidChannelFile => 1020,
        Code::Internal => 1021,
        Code::StorageUnavailable => 1022,
        Code::NotReady => 1023,
        Code::SessionsUnavailable => 1024,
        Code::SessionBusy => 1025,
        Code::TooManySessions => 1026,
        Code::ProfileNotFound => 1027,
        Code::InvalidAudienceLevel => 1028,
        Code::InvalidAudienceId => 1029,
    }
}

/// HCL's name for the numbers it documents, which starts an advisory message's `msg`.
pub fn message_title(number: u32) -> Option<&'static str> {
    Some(match number {
        1 => "Invalid session id",
        3 => "Invalid interactive channel",
        4 => "Invalid event name",
        5 => "Invalid interaction point",
        8 => "Profile load failed",
        9 => "Offer suppression load failed",
        10 => "Command method unrecognized",
        11 => "Error trying to post event parameters",
        _ => return None,
    })
}

/// An advisory message: Interact's number and text, Kairos' code and detail in `detailMsg`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = InteractMessage)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub msg_code: u32,
    pub msg_level: u8,
    pub msg: String,
    pub detail_msg: String,
}

impl Message {
    pub fn new(code: Code, level: u8, detail: &str) -> Message {
        let number = message_number(code);
        Message {
            msg_code: number,
            msg_level: level,
            msg: match message_title(number) {
                Some(title) => format!("{title}: {detail}"),
                None => detail.to_string(),
            },
            detail_msg: format!("{}: {detail}", code.name()),
        }
    }
}

/// A name/value pair's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = InteractNvpType)]
#[serde(rename_all = "lowercase")]
pub enum NvpType {
    String,
    Numeric,
    Datetime,
}

/// A value of an answer's name/value pair: a number for `numeric`, text otherwise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = InteractNvpValue)]
#[serde(untagged)]
pub enum NvpValue {
    Int(i64),
    Float(f64),
    Text(String),
    Null,
}

/// A name/value pair of an answer (offer attributes, the profile).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = InteractNvp)]
pub struct Nvp {
    pub n: String,
    pub t: NvpType,
    /// A number for `numeric`, text (or null) otherwise.
    #[schema(value_type = Value)]
    pub v: NvpValue,
}

/// A name/value pair as a touchpoint sends it: the type may be left out (a string) or in
/// any case; the value is read by the type.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[schema(as = InteractNvpIn)]
#[serde(try_from = "Map<String, J>")]
pub struct NvpIn {
    #[serde(default)]
    pub n: Option<String>,
    #[serde(default)]
    pub t: Option<String>,
    #[serde(default)]
    #[schema(value_type = Value)]
    pub v: J,
}

/// A pair is an object: serde would read a list as the fields in order.
impl TryFrom<Map<String, J>> for NvpIn {
    type Error = String;

    fn try_from(fields: Map<String, J>) -> Result<NvpIn, String> {
        // A pair is read for its name, type and value; other fields are ignored.
        #[derive(Deserialize)]
        struct Pair {
            #[serde(default)]
            n: Option<String>,
            #[serde(default)]
            t: Option<String>,
            #[serde(default)]
            v: J,
        }
        let Pair { n, t, v } = Pair::deserialize(J::Object(fields)).map_err(|e| e.to_string())?;
        Ok(NvpIn { n, t, v })
    }
}

/// A count given as a number or as its text (`"3"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Count(pub u32);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Count, D::Error> {
        match J::deserialize(d)? {
            J::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
            J::String(s) if (1..=9).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse().ok()
            }
            _ => None,
        }
        .map(Count)
        .ok_or_else(|| serde::de::Error::custom("a whole number, as a number or as text"))
    }
}

/// A flag given as a boolean or as its text (`"true"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Flag, D::Error> {
        match J::deserialize(d)? {
            J::Bool(b) => Some(b),
            J::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            J::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
        .map(Flag)
        .ok_or_else(|| serde::de::Error::custom("true or false"))
    }
}

/// A session ID given as text or as a number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SessionId(pub String);

impl<'de> Deserialize<'de> for SessionId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SessionId, D::Error> {
        match J::deserialize(d)? {
            J::String(s) => Ok(SessionId(s)),
            J::Number(n) => Ok(SessionId(n.to_string())),
            _ => Err(serde::de::Error::custom(
                "a session ID, as text or a number",
            )),
        }
    }
}

/// A lenient scalar's schema for the API document: one of the kinds it is read from.
macro_rules! one_of_schema {
    ($type:ty, $description:literal, $($kind:expr),+ $(,)?) => {
        impl PartialSchema for $type {
            fn schema() -> RefOr<Schema> {
                OneOfBuilder::new()
                    $(.item($kind))+
                    .description(Some($description))
                    .into()
            }
        }

        impl ToSchema for $type {}
    };
}

one_of_schema!(
    Count,
    "A whole number, or its digits",
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .maximum(Some(u32::MAX)),
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[0-9]{1,9}$")),
);

one_of_schema!(
    Flag,
    "true or false, or its text",
    ObjectBuilder::new().schema_type(Type::Boolean),
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])$")),
);

one_of_schema!(
    SessionId,
    "A session ID, as text or a number",
    ObjectBuilder::new().schema_type(Type::String),
    ObjectBuilder::new().schema_type(Type::Number),
);

/// One interaction point of a get offers for several.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[schema(as = InteractGetOfferRequest)]
#[serde(rename_all = "camelCase")]
pub struct GetOfferRequest {
    #[serde(alias = "ipName")]
    pub ip: String,
    #[serde(default)]
    pub number_requested: Option<Count>,
    /// 1 NO_DUPLICATION (leave out the offers of the requests before it), 2
    /// ALLOW_DUPLICATION.
    #[serde(default)]
    pub dup_policy: Option<Count>,
    /// Interact's offer attribute requirements, which Kairos does not apply (a warning says
    /// so).
    #[serde(default)]
    pub offer_attributes: Option<J>,
}

/// A RestServlet command: its `action` and the fields that action reads.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[schema(as = InteractCommand)]
#[serde(rename_all = "camelCase")]
pub struct Command {
    pub action: String,
    #[serde(default)]
    pub ic: Option<String>,
    #[serde(default, rename = "audienceID", alias = "audienceId")]
    pub audience_id: Option<Vec<NvpIn>>,
    #[serde(default)]
    pub audience_level: Option<String>,
    #[serde(default)]
    pub parameters: Option<Vec<NvpIn>>,
    #[serde(default)]
    pub rely_on_existing_session: Option<Flag>,
    #[serde(default)]
    pub debug: Option<Flag>,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub number_requested: Option<Count>,
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub get_offer_requests: Option<Vec<GetOfferRequest>>,
}

/// `POST /interact/servlet/RestServlet`, and a v2 batch in the same shape.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[schema(as = InteractServletRequest)]
#[serde(rename_all = "camelCase")]
pub struct ServletRequest {
    #[serde(default)]
    pub session_id: Option<SessionId>,
    /// Each read when its turn comes: one that cannot be read answers an error, and the
    /// batch goes on.
    pub commands: Vec<Map<String, J>>,
}

/// The query of the v2 paths: a session start's channel and audience (HCL's form), get
/// offers' `number`. Other query parameters are ignored.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct V2Query {
    #[serde(default)]
    pub ic: Option<String>,
    #[serde(default)]
    pub audience_level: Option<String>,
    /// The audience ID's field, when `auIdParams` gives its value without the name.
    #[serde(default, rename = "audienceIDField", alias = "audienceIdField")]
    pub audience_id_field: Option<String>,
    #[serde(default)]
    pub number: Option<Count>,
}

/// The body of `POST /interact/v2/sessions/{id}` (and a v2 batch's `startSession`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[schema(as = InteractV2Start)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct V2Start {
    /// The audience ID's values.
    #[serde(default)]
    pub au_id_params: Option<Vec<NvpIn>>,
    #[serde(default, rename = "audienceID", alias = "audienceId")]
    pub audience_id: Option<Vec<NvpIn>>,
    #[serde(default)]
    pub ic: Option<String>,
    #[serde(default)]
    pub audience_level: Option<String>,
    #[serde(default)]
    pub parameters: Option<Vec<NvpIn>>,
    #[serde(default)]
    pub rely_on_existing_session: Option<Flag>,
    #[serde(default)]
    pub debug: Option<Flag>,
}

/// The body of `PUT /interact/v2/audiences/{id}` (and a v2 batch's `setAudience`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[schema(as = InteractV2Audience)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct V2Audience {
    #[serde(default, rename = "audienceID", alias = "audienceId")]
    pub audience_id: Option<Vec<NvpIn>>,
    #[serde(default)]
    pub au_id_params: Option<Vec<NvpIn>>,
    #[serde(default)]
    pub audience_level: Option<String>,
    #[serde(default)]
    pub parameters: Option<Vec<NvpIn>>,
}

/// A v2 batch's `getOffers` (HCL spells the field `interationPointID`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[schema(as = InteractV2GetOffers)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct V2GetOffers {
    #[serde(
        default,
        rename = "interationPointID",
        alias = "interactionPointID",
        alias = "ip"
    )]
    pub interaction_point: Option<String>,
    #[serde(default)]
    pub number_requested: Option<Count>,
    #[serde(default)]
    pub parameters: Option<Vec<NvpIn>>,
}

/// The body of `POST /interact/v2/offers/{id}` (and a v2 batch's
/// `getOffersForMultipleInteractionPoints`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[schema(as = InteractV2MultipleOffers)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct V2MultipleOffers {
    pub get_offer_requests: Vec<GetOfferRequest>,
    #[serde(default)]
    pub parameters: Option<Vec<NvpIn>>,
}

/// The body of `POST /interact/v2/events/{id}/{event}` (and a v2 batch's `postEvent`, which
/// names its event).
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[schema(as = InteractV2Event)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct V2Event {
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub parameters: Option<Vec<NvpIn>>,
}

/// A v2 batch's `setDebug`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[schema(as = InteractV2Debug)]
#[serde(deny_unknown_fields)]
pub struct V2Debug {
    pub debug: Flag,
}

/// `POST /interact/v2/batch/{id}` in HCL's documented shape: one field per command, run in
/// the order below; a flag command runs when `true`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[schema(as = InteractV2Batch)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct V2Batch {
    #[serde(default)]
    pub start_session: Option<V2Start>,
    #[serde(default)]
    pub set_audience: Option<V2Audience>,
    #[serde(default)]
    pub set_debug: Option<V2Debug>,
    #[serde(default)]
    pub post_event: Option<V2Event>,
    #[serde(default)]
    pub get_offers: Option<V2GetOffers>,
    #[serde(default)]
    pub get_offers_for_multiple_interaction_points: Option<V2MultipleOffers>,
    #[serde(default)]
    pub get_profile: Option<Flag>,
    #[serde(default)]
    pub get_version: Option<Flag>,
    #[serde(default)]
    pub end_session: Option<Flag>,
}

/// An interaction point's offers in an answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = InteractOfferList)]
#[serde(rename_all = "camelCase")]
pub struct OfferList {
    pub ip: String,
    pub default_string: String,
    pub offers: Vec<Offer>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = InteractOffer)]
#[serde(rename_all = "camelCase")]
pub struct Offer {
    /// The offer's name (its code when it has none).
    pub n: String,
    pub code: Vec<String>,
    pub treatment_code: String,
    pub score: i64,
    pub desc: String,
    pub attributes: Vec<Nvp>,
}

/// The answer of one command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = InteractResponse)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    pub session_id: String,
    pub status_code: u8,
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer_lists: Option<Vec<OfferList>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Vec<Nvp>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl Response {
    /// An answer with these messages; its status is the worst of their levels.
    pub fn with_messages(session_id: &str, messages: Vec<Message>) -> Response {
        Response {
            session_id: session_id.to_string(),
            status_code: messages
                .iter()
                .map(|m| m.msg_level)
                .max()
                .unwrap_or(SUCCESS),
            messages,
            offer_lists: None,
            profile: None,
            version: None,
        }
    }

    /// A failed command's answer.
    pub fn failed(session_id: &str, code: Code, detail: &str) -> Response {
        Response::with_messages(session_id, vec![Message::new(code, ERROR, detail)])
    }
}

/// The answer of a batch: one response per command, every command run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = InteractBatchResponse)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    pub batch_status_code: u8,
    pub responses: Vec<Response>,
}

impl BatchResponse {
    pub fn new(responses: Vec<Response>) -> BatchResponse {
        BatchResponse {
            batch_status_code: responses
                .iter()
                .map(|r| r.status_code)
                .max()
                .unwrap_or(SUCCESS),
            responses,
        }
    }
}

/// What `getVersion` answers: Kairos' version and the Interact API level it implements.
pub fn version() -> String {
    format!(
        "Kairos {} (Unica Interact API 12.1)",
        env!("CARGO_PKG_VERSION")
    )
}
