//! Source positions, and the errors that point at them.

use std::fmt;

/// A 1-based line and column in a channel file.
///
/// Equality deliberately ignores positions: a location is provenance, not content, so two
/// channels with the same content are equal wherever they were read from (the round-trip
/// tests compare a channel with its re-read export).
#[derive(Clone, Copy, Debug, Default, Eq)]
pub struct Loc {
    pub line: u32,
    pub col: u32,
}

impl Loc {
    pub fn new(line: u32, col: u32) -> Self {
        Loc { line, col }
    }

    /// Same position, compared for real.
    pub fn same_as(self, other: Loc) -> bool {
        (self.line, self.col) == (other.line, other.col)
    }
}

impl PartialEq for Loc {
    fn eq(&self, _: &Loc) -> bool {
        true
    }
}

/// A value and where it was written.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Located<T> {
    pub value: T,
    pub loc: Loc,
}

impl<T> Located<T> {
    pub fn new(value: T, loc: Loc) -> Self {
        Located { value, loc }
    }

    /// For values made in code rather than read from a file.
    pub fn unlocated(value: T) -> Self {
        Located {
            value,
            loc: Loc::default(),
        }
    }
}

/// One problem found in a channel file: `file:line:column: message`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// A channel file that was rejected, with every problem found in it.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{} error(s) in the channel file:\n{}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct Rejected(pub Vec<Diagnostic>);
