//! The Kairos rule language: CEL syntax, parsed and type-checked by our own compiler and
//! compiled once into closures over slot-indexed attributes.
//!
//! ```
//! use kairos_rules::{Bindings, Env, Expected, Root, Scope, Type, Value, compile};
//!
//! let mut env = Env::new();
//! env.declare(Root::Profile, "age", Type::Int);
//! let program = compile("profile.age >= 18", &mut env, Scope::default(), Expected::Bool).unwrap();
//! let mut bindings = Bindings::new(&env);
//! bindings.set(&env, Root::Profile, "age", Value::Int(30));
//! assert!(program.eval_bool(&bindings).unwrap());
//! ```

mod ast;
mod bindings;
mod compile;
mod env;
mod error;
mod lexer;
mod parser;
mod suggest;
pub mod time;
mod value;

pub use ast::{BinaryOp, Expr, ExprKind, Literal, Span, UnaryOp};
pub use bindings::Bindings;
pub use compile::{Expected, Program, compile};
pub use env::{Activation, Env, Root, Scope};
pub use error::{EvalError, ExprError};
pub use parser::{MAX_EXPRESSION_LENGTH, MAX_NESTING_DEPTH, parse};
pub use suggest::closest;
pub use value::{Type, Value};
