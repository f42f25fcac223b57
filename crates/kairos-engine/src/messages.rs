//! Advisory messages returned with every runtime response.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Warning,
    Error,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// What a message is about: a stable code clients can match on. The runtime API spells each
/// as its [`name`](MessageCode::name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageCode {
    /// A get offers named an interaction point the channel lacks.
    UnknownInteractionPoint,
    /// A posted event the channel lacks.
    UnknownEvent,
    /// A contact, accept or reject without the treatment code of the offer it is about.
    MissingTreatmentCode,
    /// A generic event's response type code is none Kairos knows.
    UnknownResponseType,
    /// A treatment code this session, and the history, never issued.
    UnknownTreatmentCode,
    /// No profile row for the audience ID: the session runs on an empty profile.
    ProfileNotFound,
    /// An audience level the channel lacks.
    InvalidAudienceLevel,
    /// An audience ID without the level's ID fields, or with values of the wrong type.
    InvalidAudienceId,
    /// The profile could not be loaded; the session starts without it.
    ProfileUnavailable,
    /// The profile did not load within the store budget; the session starts without it.
    ProfileTimeout,
    /// Suppression and pattern state could not be loaded; the session starts without it.
    HistoryUnavailable,
    /// Suppression and pattern state did not load within the store budget.
    HistoryTimeout,
}

impl MessageCode {
    pub const ALL: [MessageCode; 12] = [
        MessageCode::UnknownInteractionPoint,
        MessageCode::UnknownEvent,
        MessageCode::MissingTreatmentCode,
        MessageCode::UnknownResponseType,
        MessageCode::UnknownTreatmentCode,
        MessageCode::ProfileNotFound,
        MessageCode::InvalidAudienceLevel,
        MessageCode::InvalidAudienceId,
        MessageCode::ProfileUnavailable,
        MessageCode::ProfileTimeout,
        MessageCode::HistoryUnavailable,
        MessageCode::HistoryTimeout,
    ];

    pub fn name(self) -> &'static str {
        match self {
            MessageCode::UnknownInteractionPoint => "UNKNOWN_INTERACTION_POINT",
            MessageCode::UnknownEvent => "UNKNOWN_EVENT",
            MessageCode::MissingTreatmentCode => "MISSING_TREATMENT_CODE",
            MessageCode::UnknownResponseType => "UNKNOWN_RESPONSE_TYPE",
            MessageCode::UnknownTreatmentCode => "UNKNOWN_TREATMENT_CODE",
            MessageCode::ProfileNotFound => "PROFILE_NOT_FOUND",
            MessageCode::InvalidAudienceLevel => "INVALID_AUDIENCE_LEVEL",
            MessageCode::InvalidAudienceId => "INVALID_AUDIENCE_ID",
            MessageCode::ProfileUnavailable => "PROFILE_UNAVAILABLE",
            MessageCode::ProfileTimeout => "PROFILE_TIMEOUT",
            MessageCode::HistoryUnavailable => "HISTORY_UNAVAILABLE",
            MessageCode::HistoryTimeout => "HISTORY_TIMEOUT",
        }
    }
}

impl std::fmt::Display for MessageCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `{ "code": "UNKNOWN_INTERACTION_POINT", "level": "warning", "message": "..." }`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub code: MessageCode,
    pub level: Level,
    pub message: String,
}

impl Message {
    pub fn warning(code: MessageCode, message: impl Into<String>) -> Self {
        Message {
            code,
            level: Level::Warning,
            message: message.into(),
        }
    }

    pub fn error(code: MessageCode, message: impl Into<String>) -> Self {
        Message {
            code,
            level: Level::Error,
            message: message.into(),
        }
    }
}
