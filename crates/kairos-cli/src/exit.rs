//! The CLI's exit codes: 0 success, 1 a check failed (validation, scenarios, a load test's
//! thresholds), 2 a usage error, 3 refused by the server (a gate, a role, a conflict), 4
//! the server cannot be reached or will not take the credentials.

use std::process::ExitCode;

use kairos_api::ClientError;

pub const USAGE: u8 = 2;
pub const REFUSED: u8 = 3;
pub const UNREACHABLE: u8 = 4;

/// No saved login and no `KAIROS_TOKEN`: the server cannot be asked anything.
#[derive(Debug)]
pub struct NotLoggedIn(pub String);

impl std::fmt::Display for NotLoggedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "not logged in to {}: run kairos login --user NAME (or set KAIROS_TOKEN)",
            self.0
        )
    }
}

impl std::error::Error for NotLoggedIn {}

/// The exit code an error the CLI stops with means.
pub fn code_of(error: &anyhow::Error) -> ExitCode {
    let code = error.chain().find_map(|cause| {
        if cause.downcast_ref::<NotLoggedIn>().is_some() {
            return Some(UNREACHABLE);
        }
        Some(match cause.downcast_ref::<ClientError>()? {
            ClientError::Refused { status: 401, .. } => UNREACHABLE,
            ClientError::Refused { status: 400, .. } => USAGE,
            ClientError::Refused { status, .. } if *status >= 500 => UNREACHABLE,
            ClientError::Refused { .. } => REFUSED,
            ClientError::Unexpected { .. } | ClientError::Method(_) => USAGE,
            ClientError::Url(_)
            | ClientError::CaFile { .. }
            | ClientError::CaPem { .. }
            | ClientError::Build(_)
            | ClientError::Unreachable { .. } => UNREACHABLE,
        })
    });
    ExitCode::from(code.unwrap_or(USAGE))
}
