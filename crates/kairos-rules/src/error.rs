use crate::ast::Span;

/// A syntax or type error in an expression, located by byte range in the expression's source.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    pub span: Span,
    pub message: String,
}

impl ExprError {
    pub fn new(span: Span, message: impl Into<String>) -> Self {
        ExprError {
            span,
            message: message.into(),
        }
    }

    /// 1-based line and column (in characters) of the error's start within `src`.
    pub fn line_col(&self, src: &str) -> (usize, usize) {
        let offset = self.span.start.min(src.len());
        let before = src.get(..offset).unwrap_or(src);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }
}

/// Why an evaluation failed. The engine treats any of these as "false" for a condition and
/// counts it; it never reaches a caller as a panic. Kept to two words (messages are boxed):
/// every closure returns it, so its size is paid on every evaluation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("no such field '{0}'")]
    NoSuchField(std::sync::Arc<str>),
    #[error("no such key {0}")]
    NoSuchKey(Box<str>),
    #[error("index {0} is out of range")]
    IndexOutOfRange(i64),
    #[error("division by zero")]
    DivisionByZero,
    #[error("integer overflow")]
    Overflow,
    /// "no operator '+' for string and int"
    #[error("{0}")]
    NoOverload(Box<str>),
    /// "expected bool, found int"
    #[error("{0}")]
    WrongType(Box<str>),
    #[error("{0}")]
    Conversion(Box<str>),
    #[error("the expression took more than {0} comprehension steps")]
    TooCostly(u32),
}
