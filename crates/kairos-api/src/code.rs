//! Every code a Kairos answer carries, in problem documents and in `messages`: one enum, each
//! code with its stable name, the HTTP status of a problem with it, and what it means. The
//! runtime, the control plane, their clients and the OpenAPI documents all read this table.

use http::StatusCode;
use kairos_engine::MessageCode;

macro_rules! codes {
    ($($variant:ident = $name:literal, $status:ident, $meaning:literal;)*) => {
        /// A stable code clients match on; see [`Code::meaning`] for each.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Code {
            $(#[doc = $meaning] $variant,)*
        }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The code as clients see it: `INVALID_SESSION_ID`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Code::$variant => $name,)*
                }
            }

            /// The status of a problem document with this code.
            pub fn status(self) -> StatusCode {
                match self {
                    $(Code::$variant => StatusCode::$status,)*
                }
            }

            /// What the code means, for people and for the API documents.
            pub fn meaning(self) -> &'static str {
                match self {
                    $(Code::$variant => $meaning,)*
                }
            }
        }
    };
}

codes! {
    MalformedRequest = "MALFORMED_REQUEST", BAD_REQUEST,
        "The request could not be read: not JSON, a field of the wrong type, a required field missing, a value out of range.";
    BadRequest = "BAD_REQUEST", BAD_REQUEST,
        "The server refused the request for a reason of HTTP's own (the status says which).";
    Unauthorized = "UNAUTHORIZED", UNAUTHORIZED,
        "No token was sent, or the token is not valid: log in again.";
    BadCredentials = "BAD_CREDENTIALS", UNAUTHORIZED,
        "The user name or password is wrong.";
    Forbidden = "FORBIDDEN", FORBIDDEN,
        "The token is valid but does not allow this: a role is missing, or the token is for another channel or group.";
    TokenNotForChannel = "TOKEN_NOT_FOR_CHANNEL", FORBIDDEN,
        "The touchpoint token is valid, but for other channels than the one this call is about.";
    LimitExceeded = "LIMIT_EXCEEDED", UNPROCESSABLE_ENTITY,
        "The request goes past one of the server's limits (named in the detail): too many params, commands or bytes, an ID too long. Nothing was changed.";
    TooManyAttempts = "TOO_MANY_ATTEMPTS", TOO_MANY_REQUESTS,
        "Too many failed logins for this user or from this address: wait the seconds the detail gives.";
    NotFound = "NOT_FOUND", NOT_FOUND,
        "No such endpoint, or no such channel, component, version, group, user or table.";
    InvalidSessionId = "INVALID_SESSION_ID", NOT_FOUND,
        "No live session has this ID: it was never started, it ended, or it expired.";
    InvalidChannel = "INVALID_CHANNEL", NOT_FOUND,
        "The channel is not deployed on this runtime.";
    MethodNotAllowed = "METHOD_NOT_ALLOWED", METHOD_NOT_ALLOWED,
        "The endpoint exists but not with this method; the Allow header lists those it takes.";
    Conflict = "CONFLICT", CONFLICT,
        "Someone else changed the component since the revision the edit was based on, or it already exists.";
    GatesFailed = "GATES_FAILED", CONFLICT,
        "The version does not pass the production group's gates; each failed gate is listed in errors.";
    NeverActive = "NEVER_ACTIVE", CONFLICT,
        "Rollback names a version the group never ran.";
    NothingActive = "NOTHING_ACTIVE", CONFLICT,
        "The group runs no version of this channel.";
    NothingToRollBackTo = "NOTHING_TO_ROLL_BACK_TO", CONFLICT,
        "The group ran no earlier version of this channel.";
    NoHistory = "NO_HISTORY", CONFLICT,
        "The group has no history database to report from.";
    NoPopulation = "NO_POPULATION", CONFLICT,
        "There are no profiles to run the report over: import the audience level's table first.";
    OneProductionGroup = "ONE_PRODUCTION_GROUP", CONFLICT,
        "A channel goes to one production group only, and it runs on another.";
    PayloadTooLarge = "PAYLOAD_TOO_LARGE", PAYLOAD_TOO_LARGE,
        "The request body is larger than the server accepts.";
    InvalidChannelFile = "INVALID_CHANNEL_FILE", UNPROCESSABLE_ENTITY,
        "The channel, or a component of it, has errors; each is listed in errors with its location.";
    Internal = "INTERNAL", INTERNAL_SERVER_ERROR,
        "The server failed on this request; it has been counted.";
    StorageUnavailable = "STORAGE_UNAVAILABLE", SERVICE_UNAVAILABLE,
        "The database could not be reached or failed; nothing was changed. Retry later.";
    NotReady = "NOT_READY", SERVICE_UNAVAILABLE,
        "The runtime has no deployment loaded yet.";
    SessionsUnavailable = "SESSIONS_UNAVAILABLE", SERVICE_UNAVAILABLE,
        "The shared session store (Redis) could not be reached.";
    SessionBusy = "SESSION_BUSY", SERVICE_UNAVAILABLE,
        "Another call holds this session for longer than the wait allows; retry.";
    TooManySessions = "TOO_MANY_SESSIONS", SERVICE_UNAVAILABLE,
        "The runtime holds its maximum number of live sessions.";
    UnknownCommand = "UNKNOWN_COMMAND", BAD_REQUEST,
        "An Interact batch command names an action there is none of (Interact's message 10).";
    UnknownInteractionPoint = "UNKNOWN_INTERACTION_POINT", BAD_REQUEST,
        "A get offers named an interaction point the channel lacks (a warning).";
    UnknownEvent = "UNKNOWN_EVENT", BAD_REQUEST,
        "A posted event the channel lacks (a warning).";
    MissingTreatmentCode = "MISSING_TREATMENT_CODE", BAD_REQUEST,
        "A contact, accept or reject without the treatment code of the offer it is about (a warning).";
    UnknownResponseType = "UNKNOWN_RESPONSE_TYPE", BAD_REQUEST,
        "A generic event's response type code is none Kairos knows (a warning).";
    UnknownTreatmentCode = "UNKNOWN_TREATMENT_CODE", BAD_REQUEST,
        "A treatment code neither this session nor the history issued (a warning).";
    ProfileNotFound = "PROFILE_NOT_FOUND", BAD_REQUEST,
        "No profile row for the audience ID: the session runs on an empty profile (a warning).";
    InvalidAudienceLevel = "INVALID_AUDIENCE_LEVEL", BAD_REQUEST,
        "An audience level the channel lacks.";
    InvalidAudienceId = "INVALID_AUDIENCE_ID", BAD_REQUEST,
        "An audience ID without the level's ID fields, or with values of the wrong type.";
    ProfileUnavailable = "PROFILE_UNAVAILABLE", BAD_REQUEST,
        "The profile could not be loaded; the session starts without it (a warning).";
    ProfileTimeout = "PROFILE_TIMEOUT", BAD_REQUEST,
        "The profile did not load within the store budget; the session starts without it (a warning).";
    HistoryUnavailable = "HISTORY_UNAVAILABLE", BAD_REQUEST,
        "Suppression and pattern state could not be loaded; the session starts without it (a warning).";
    HistoryTimeout = "HISTORY_TIMEOUT", BAD_REQUEST,
        "Suppression and pattern state did not load within the store budget (a warning).";
}

impl Code {
    /// The code of this name, as a client reads it back.
    pub fn from_name(name: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.name() == name)
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl From<MessageCode> for Code {
    fn from(code: MessageCode) -> Code {
        match code {
            MessageCode::UnknownInteractionPoint => Code::UnknownInteractionPoint,
            MessageCode::UnknownEvent => Code::UnknownEvent,
            MessageCode::MissingTreatmentCode => Code::MissingTreatmentCode,
            MessageCode::UnknownResponseType => Code::UnknownResponseType,
            MessageCode::UnknownTreatmentCode => Code::UnknownTreatmentCode,
            MessageCode::ProfileNotFound => Code::ProfileNotFound,
            MessageCode::InvalidAudienceLevel => Code::InvalidAudienceLevel,
            MessageCode::InvalidAudienceId => Code::InvalidAudienceId,
            MessageCode::ProfileUnavailable => Code::ProfileUnavailable,
            MessageCode::ProfileTimeout => Code::ProfileTimeout,
            MessageCode::HistoryUnavailable => Code::HistoryUnavailable,
            MessageCode::HistoryTimeout => Code::HistoryTimeout,
        }
    }
}

/// In the API documents: a string, one of the names, each code's meaning in the description.
impl utoipa::PartialSchema for Code {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let meanings: Vec<String> = Code::ALL
            .iter()
            .map(|c| {
                format!(
                    "- `{}` ({}): {}",
                    c.name(),
                    c.status().as_u16(),
                    c.meaning()
                )
            })
            .collect();
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(Code::ALL.iter().map(|c| c.name())))
            .description(Some(format!(
                "A stable code clients match on, with the HTTP status of a problem with it:\n{}",
                meanings.join("\n")
            )))
            .into()
    }
}

impl utoipa::ToSchema for Code {}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Code {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Code, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Code::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown code '{name}'")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_one_name_that_reads_back_and_an_error_status() {
        let mut names: Vec<&str> = Code::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Code::ALL.len(), "names are unique");
        for &code in Code::ALL {
            assert_eq!(Code::from_name(code.name()), Some(code));
            assert!(code.status().is_client_error() || code.status().is_server_error());
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(serde_json::from_str::<Code>(&json).unwrap(), code);
        }
        assert!(serde_json::from_str::<Code>("\"NO_SUCH_CODE\"").is_err());
    }

    #[test]
    fn every_engine_message_code_keeps_its_name() {
        for code in MessageCode::ALL {
            assert_eq!(Code::from(code).name(), code.name());
        }
    }
}
