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

/// `{ "code": "UNKNOWN_INTERACTION_POINT", "level": "warning", "message": "..." }`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// A stable code clients can match on.
    pub code: &'static str,
    pub level: Level,
    pub message: String,
}

impl Message {
    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Message {
            code,
            level: Level::Warning,
            message: message.into(),
        }
    }

    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Message {
            code,
            level: Level::Error,
            message: message.into(),
        }
    }
}
