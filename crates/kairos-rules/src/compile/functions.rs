//! The functions and methods an expression may call (besides `has` and the comprehensions):
//! each checks its operands' types and compiles to a closure.

use regex::Regex;

use super::{Compiled, Ctx, NoActivation, Operands, err, wrong_type};
use crate::ast::{ExprKind, Literal, Span};
use crate::error::{EvalError, ExprError};
use crate::suggest;
use crate::time::{NANOS_PER_SECOND, Timestamp, format_duration, format_timestamp};
use crate::value::{TWO_POW_63, Type, Value};

type Checked = Result<(Type, Compiled), ExprError>;

impl Operands<'_> {
    /// The call has `n` operands (a method's target counts), or says how many it takes.
    fn arity(&self, n: usize) -> Result<(), ExprError> {
        if self.types.len() == n {
            Ok(())
        } else {
            err(
                self.span,
                format!(
                    "{}() takes {} argument(s)",
                    self.function,
                    n - usize::from(self.method)
                ),
            )
        }
    }

    /// The next operand, compiled (the arity was checked first).
    fn next(&mut self) -> Compiled {
        self.compiled.next().expect("the arity was checked")
    }
}

pub(super) fn size(mut ops: Operands<'_>) -> Checked {
    ops.arity(1)?;
    if !matches!(
        ops.types[0],
        Type::String | Type::List(_) | Type::Map(..) | Type::Dyn
    ) {
        return err(
            ops.span,
            format!("size() needs a string, list or map, not {}", ops.types[0]),
        );
    }
    Ok((
        Type::Int,
        ops.next().unary(|v| match v {
            Value::String(s) => Ok(Value::Int(s.chars().count() as i64)),
            Value::List(l) => Ok(Value::Int(l.len() as i64)),
            Value::Map(m) => Ok(Value::Int(m.len() as i64)),
            other => Err(wrong_type("string, list or map", other)),
        }),
    ))
}

/// `contains`, `startsWith`, `endsWith`: methods of strings.
pub(super) fn string_test(mut ops: Operands<'_>) -> Checked {
    let function = ops.function;
    ops.arity(2)?;
    if !ops.method {
        return err(
            ops.span,
            format!("{function}() is a method: write text.{function}(part)"),
        );
    }
    for t in &ops.types {
        if !t.fits(&Type::String) {
            return err(ops.span, format!("{function}() works on strings, not {t}"));
        }
    }
    let test: fn(&str, &str) -> bool = match function {
        "contains" => |a, b| a.contains(b),
        "startsWith" => |a, b| a.starts_with(b),
        _ => |a, b| a.ends_with(b),
    };
    let (a, b) = (ops.next(), ops.next());
    Ok((
        Type::Bool,
        a.binary(b, move |a, b| match (a, b) {
            (Value::String(a), Value::String(b)) => Ok(Value::Bool(test(a, b))),
            (Value::String(_), other) | (other, _) => Err(wrong_type("string", other)),
        }),
    ))
}

/// `matches`: a literal pattern, compiled once.
pub(super) fn matches(mut ops: Operands<'_>) -> Checked {
    ops.arity(2)?;
    let pattern_expr = ops.exprs[1];
    let ExprKind::Literal(Literal::String(pattern)) = &pattern_expr.kind else {
        return err(
            &pattern_expr.span,
            "matches() needs a literal pattern, compiled once",
        );
    };
    let re = Regex::new(pattern)
        .map_err(|e| ExprError::new(pattern_expr.span.clone(), format!("invalid pattern: {e}")))?;
    if !ops.types[0].fits(&Type::String) {
        return err(
            ops.span,
            format!("matches() works on strings, not {}", ops.types[0]),
        );
    }
    Ok((
        Type::Bool,
        ops.next().unary(move |v| match v {
            Value::String(s) => Ok(Value::Bool(re.is_match(s))),
            other => Err(wrong_type("string", other)),
        }),
    ))
}

/// `int`, `double`, `string`, `timestamp`, `duration`: functions of one value.
pub(super) fn conversion(mut ops: Operands<'_>) -> Checked {
    let function = ops.function;
    ops.arity(1)?;
    if ops.method {
        return err(
            ops.span,
            format!("{function}() is a function: write {function}(value)"),
        );
    }
    let given = &ops.types[0];
    let accepted = match function {
        "int" => matches!(
            given,
            Type::Int | Type::Double | Type::String | Type::Timestamp | Type::Dyn
        ),
        "double" => matches!(given, Type::Int | Type::Double | Type::String | Type::Dyn),
        "string" => !matches!(given, Type::List(_) | Type::Map(..) | Type::Null),
        "timestamp" => matches!(given, Type::String | Type::Timestamp | Type::Dyn),
        _ => matches!(given, Type::String | Type::Duration | Type::Dyn),
    };
    if !accepted {
        return err(ops.span, format!("{function}() cannot convert {given}"));
    }
    type Conversion = fn(&Value) -> Result<Value, EvalError>;
    let (ty, convert): (Type, Conversion) = match function {
        "int" => (Type::Int, to_int),
        "double" => (Type::Double, to_double),
        "string" => (Type::String, to_string),
        "timestamp" => (Type::Timestamp, to_timestamp),
        _ => (Type::Duration, to_duration),
    };
    let compiled = ops.next().unary(convert);
    // A literal that does not convert is a mistake the author should see now.
    if let (ExprKind::Literal(_), Compiled::Node(node)) = (&ops.exprs[0].kind, &compiled)
        && let Err(e) = node(&Ctx {
            act: &NoActivation,
            locals: None,
            steps: &std::cell::Cell::new(super::EVALUATION_STEPS),
        })
    {
        return err(&ops.exprs[0].span, e.to_string());
    }
    Ok((ty, compiled))
}

/// `getFullYear()`, `getHours()`, ...: methods of timestamps, in UTC.
pub(super) fn timestamp_field(mut ops: Operands<'_>) -> Checked {
    let function = ops.function;
    if !ops.method {
        return err(
            ops.span,
            format!("{function}() is a method: write time.{function}()"),
        );
    }
    if ops.types.len() > 1 {
        return err(
            ops.span,
            format!("{function}() takes no time zone: times are in UTC"),
        );
    }
    if !ops.types[0].fits(&Type::Timestamp) {
        return err(
            ops.span,
            format!("{function}() works on timestamps, not {}", ops.types[0]),
        );
    }
    let part = timestamp_part(function);
    Ok((
        Type::Int,
        ops.next().unary(move |v| match v {
            Value::Timestamp(t) => Ok(Value::Int(part(*t))),
            other => Err(wrong_type("timestamp", other)),
        }),
    ))
}

/// A function the language lacks, with the closest it has.
pub(super) fn unknown(function: &str, span: &Span) -> Checked {
    let known = [
        "has",
        "size",
        "contains",
        "startsWith",
        "endsWith",
        "matches",
        "int",
        "double",
        "string",
        "timestamp",
        "duration",
        "exists",
        "all",
        "exists_one",
        "map",
        "filter",
        "getFullYear",
        "getMonth",
        "getDayOfMonth",
        "getDayOfWeek",
        "getHours",
    ];
    match suggest::closest(function, known) {
        Some(s) => err(
            span,
            format!("unknown function '{function}' (did you mean '{s}'?)"),
        ),
        None => err(span, format!("unknown function '{function}'")),
    }
}

fn to_int(v: &Value) -> Result<Value, EvalError> {
    match v {
        Value::Int(i) => Ok(Value::Int(*i)),
        Value::Double(d) => {
            if d.is_finite() && *d >= -TWO_POW_63 && *d < TWO_POW_63 {
                Ok(Value::Int(d.trunc() as i64))
            } else {
                Err(EvalError::Conversion(
                    format!("{d} does not fit in an int").into(),
                ))
            }
        }
        Value::String(s) => s
            .parse()
            .map(Value::Int)
            .map_err(|_| EvalError::Conversion(format!("'{s}' is not an integer").into())),
        Value::Timestamp(t) => Ok(Value::Int(t.unix_seconds())),
        other => Err(wrong_type("number or string", other)),
    }
}

fn to_double(v: &Value) -> Result<Value, EvalError> {
    match v {
        Value::Int(i) => Ok(Value::Double(*i as f64)),
        Value::Double(d) => Ok(Value::Double(*d)),
        Value::String(s) => s
            .parse()
            .map(Value::Double)
            .map_err(|_| EvalError::Conversion(format!("'{s}' is not a number").into())),
        other => Err(wrong_type("number or string", other)),
    }
}

fn to_string(v: &Value) -> Result<Value, EvalError> {
    Ok(Value::string(match v {
        Value::String(s) => return Ok(Value::String(s.clone())),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Double(d) => d.to_string(),
        Value::Timestamp(t) => format_timestamp(*t),
        Value::Duration(d) => format_duration(*d),
        other => return Err(wrong_type("scalar", other)),
    }))
}

fn to_timestamp(v: &Value) -> Result<Value, EvalError> {
    match v {
        Value::Timestamp(t) => Ok(Value::Timestamp(*t)),
        Value::String(s) => crate::time::parse_instant(s)
            .map(|p| Value::Timestamp(p.at))
            .map_err(|e| EvalError::Conversion(e.into())),
        other => Err(wrong_type("string", other)),
    }
}

fn to_duration(v: &Value) -> Result<Value, EvalError> {
    match v {
        Value::Duration(d) => Ok(Value::Duration(*d)),
        Value::String(s) => crate::time::parse_duration(s)
            .map(Value::Duration)
            .map_err(|e| EvalError::Conversion(e.into())),
        other => Err(wrong_type("string", other)),
    }
}

/// CEL's timestamp accessors, in UTC; `getMonth`, `getDayOfMonth` and `getDayOfYear` count
/// from zero as CEL specifies.
fn timestamp_part(function: &str) -> fn(Timestamp) -> i64 {
    fn day_and_secs(t: Timestamp) -> (i64, i64) {
        let secs = t.0.div_euclid(NANOS_PER_SECOND);
        (secs.div_euclid(86_400), secs.rem_euclid(86_400))
    }
    match function {
        "getFullYear" => |t| crate::time::civil_from_days(day_and_secs(t).0).0,
        "getMonth" => |t| i64::from(crate::time::civil_from_days(day_and_secs(t).0).1) - 1,
        "getDayOfMonth" => |t| i64::from(crate::time::civil_from_days(day_and_secs(t).0).2) - 1,
        "getDate" => |t| i64::from(crate::time::civil_from_days(day_and_secs(t).0).2),
        "getDayOfWeek" => |t| (day_and_secs(t).0 + 4).rem_euclid(7),
        "getDayOfYear" => |t| {
            let days = day_and_secs(t).0;
            let (year, _, _) = crate::time::civil_from_days(days);
            days - crate::time::days_from_civil(year, 1, 1)
        },
        "getHours" => |t| day_and_secs(t).1 / 3600,
        "getMinutes" => |t| day_and_secs(t).1 % 3600 / 60,
        _ => |t| day_and_secs(t).1 % 60,
    }
}
