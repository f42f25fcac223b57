//! The Kairos channel model: every object of an interactive channel, the channel file format
//! (YAML, read with positions and written back losslessly), validation with located errors,
//! and profile table schemas.

pub mod components;
mod decode;
mod encode;
mod loc;
pub mod model;
pub mod scenario;
pub mod table;
mod validate;
mod yaml;

pub use encode::to_yaml;
pub use loc::{Diagnostic, Loc, Located, Rejected};
pub use model::Channel;
pub use table::TableSchema;
pub use validate::{Schemas, channel_env, expression_error_loc, validate};

/// Reads and validates one channel file. A file with any error is rejected whole, with every
/// error located as `file:line:column: message`, sorted by position.
pub fn parse_channel(file: &str, text: &str, schemas: &Schemas) -> Result<Channel, Rejected> {
    check_channel(file, text, Some(schemas))
}

/// Reads a channel file's shape only (types, ranges, formats), without checking references
/// or expressions: for tools that handle incomplete channels.
pub fn read_channel(file: &str, text: &str) -> Result<Channel, Rejected> {
    check_channel(file, text, None)
}

/// Errors of `file` as diagnostics sorted by position.
pub(crate) fn located(file: &str, errors: Vec<(Loc, String)>) -> Rejected {
    let mut diagnostics: Vec<Diagnostic> = errors
        .into_iter()
        .map(|(loc, message)| Diagnostic {
            file: file.to_string(),
            line: loc.line,
            column: loc.col,
            message,
        })
        .collect();
    diagnostics.sort_by(|a, b| (a.line, a.column, &a.message).cmp(&(b.line, b.column, &b.message)));
    diagnostics.dedup();
    Rejected(diagnostics)
}

fn check_channel(file: &str, text: &str, schemas: Option<&Schemas>) -> Result<Channel, Rejected> {
    let root = yaml::parse(text).map_err(|errors| {
        located(
            file,
            errors.into_iter().map(|e| (e.loc, e.message)).collect(),
        )
    })?;
    let mut decoder = decode::Decoder::new();
    let channel = decoder.channel(&root);
    let mut errors = decoder.errors;
    if let Some(schemas) = schemas {
        errors.extend(validate(&channel, schemas));
    }
    if errors.is_empty() {
        Ok(channel)
    } else {
        Err(located(file, errors))
    }
}
