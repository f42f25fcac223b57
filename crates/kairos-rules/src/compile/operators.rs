//! The operators' types and their evaluation: literals, equality and order, arithmetic (ints
//! and doubles mixed), membership, the short-circuit logic that absorbs errors as CEL does,
//! and indexing.

use std::cmp::Ordering;

use super::{Compiled, wrong_type};
use crate::ast::{BinaryOp, Literal};
use crate::error::EvalError;
use crate::value::{Type, Value};

pub(super) fn literal(lit: &Literal) -> (Type, Compiled) {
    let (ty, v) = match lit {
        Literal::Null => (Type::Null, Value::Null),
        Literal::Bool(b) => (Type::Bool, Value::Bool(*b)),
        Literal::Int(i) => (Type::Int, Value::Int(*i)),
        Literal::Double(d) => (Type::Double, Value::Double(*d)),
        Literal::String(s) => (Type::String, Value::string(s.as_str())),
    };
    (ty, Compiled::Const(v))
}

pub(super) fn equatable(a: &Type, b: &Type) -> bool {
    a.fits(b) || (a.is_numeric() && b.is_numeric()) || *a == Type::Null || *b == Type::Null
}

pub(super) fn orderable(a: &Type, b: &Type) -> bool {
    match (a, b) {
        (Type::Dyn, _) | (_, Type::Dyn) => true,
        _ if a.is_numeric() && b.is_numeric() => true,
        (Type::String, Type::String)
        | (Type::Bool, Type::Bool)
        | (Type::Timestamp, Type::Timestamp)
        | (Type::Duration, Type::Duration) => true,
        _ => false,
    }
}

pub(super) fn arithmetic_type(op: BinaryOp, a: &Type, b: &Type) -> Option<Type> {
    use Type::*;
    Some(match (op, a, b) {
        (_, Dyn, _) | (_, _, Dyn) => Dyn,
        (BinaryOp::Rem, Int, Int) => Int,
        (BinaryOp::Rem, _, _) => return None,
        (_, Int, Int) => Int,
        (_, Double, Double) | (_, Int, Double) | (_, Double, Int) => Double,
        (BinaryOp::Add, String, String) => String,
        (BinaryOp::Add, List(x), List(y)) => List(Box::new(x.join(y))),
        (BinaryOp::Add, Timestamp, Duration) | (BinaryOp::Add, Duration, Timestamp) => Timestamp,
        (BinaryOp::Add | BinaryOp::Sub, Duration, Duration) => Duration,
        (BinaryOp::Sub, Timestamp, Timestamp) => Duration,
        (BinaryOp::Sub, Timestamp, Duration) => Timestamp,
        _ => return None,
    })
}

pub(super) fn no_overload(op: &'static str, a: &Value, b: &Value) -> EvalError {
    EvalError::NoOverload(
        format!("no operator '{op}' for {} and {}", a.type_of(), b.type_of()).into(),
    )
}

pub(super) fn arithmetic(op: BinaryOp, a: &Value, b: &Value) -> Result<Value, EvalError> {
    use Value::*;
    let checked = |r: Option<i64>| r.map(Int).ok_or(EvalError::Overflow);
    match (op, a, b) {
        (BinaryOp::Add, Int(x), Int(y)) => checked(x.checked_add(*y)),
        (BinaryOp::Sub, Int(x), Int(y)) => checked(x.checked_sub(*y)),
        (BinaryOp::Mul, Int(x), Int(y)) => checked(x.checked_mul(*y)),
        (BinaryOp::Div | BinaryOp::Rem, Int(_), Int(0)) => Err(EvalError::DivisionByZero),
        (BinaryOp::Div, Int(x), Int(y)) => checked(x.checked_div(*y)),
        (BinaryOp::Rem, Int(x), Int(y)) => checked(x.checked_rem(*y)),
        (
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div,
            Int(_) | Double(_),
            Int(_) | Double(_),
        ) => {
            let (x, y) = (as_double(a), as_double(b));
            Ok(Double(match op {
                BinaryOp::Add => x + y,
                BinaryOp::Sub => x - y,
                BinaryOp::Mul => x * y,
                _ => x / y,
            }))
        }
        (BinaryOp::Add, String(x), String(y)) => Ok(Value::string(format!("{x}{y}"))),
        (BinaryOp::Add, List(x), List(y)) => Ok(Value::list(x.iter().chain(y.iter()).cloned())),
        (BinaryOp::Add, Timestamp(t), Duration(d)) | (BinaryOp::Add, Duration(d), Timestamp(t)) => {
            t.0.checked_add(d.0)
                .map(|n| Timestamp(crate::time::Timestamp(n)))
                .ok_or(EvalError::Overflow)
        }
        (BinaryOp::Sub, Timestamp(t), Duration(d)) => {
            t.0.checked_sub(d.0)
                .map(|n| Timestamp(crate::time::Timestamp(n)))
                .ok_or(EvalError::Overflow)
        }
        (BinaryOp::Sub, Timestamp(x), Timestamp(y)) => {
            x.0.checked_sub(y.0)
                .map(|n| Duration(crate::time::Duration(n)))
                .ok_or(EvalError::Overflow)
        }
        (BinaryOp::Add, Duration(x), Duration(y)) => {
            x.0.checked_add(y.0)
                .map(|n| Duration(crate::time::Duration(n)))
                .ok_or(EvalError::Overflow)
        }
        (BinaryOp::Sub, Duration(x), Duration(y)) => {
            x.0.checked_sub(y.0)
                .map(|n| Duration(crate::time::Duration(n)))
                .ok_or(EvalError::Overflow)
        }
        _ => Err(no_overload(op.symbol(), a, b)),
    }
}

pub(super) fn as_double(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Double(d) => *d,
        _ => f64::NAN,
    }
}

pub(super) fn ordered<A>(l: Compiled, r: Compiled, symbol: &'static str, accept: A) -> Compiled
where
    A: Fn(Ordering) -> bool + Copy + Send + Sync + 'static,
{
    let compare = move |a: &Value, b: &Value| match a.compare(b) {
        Some(ord) => Ok(Value::Bool(accept(ord))),
        // NaN is unordered: every comparison with it is false.
        None if matches!((a, b), (Value::Double(_), _) | (_, Value::Double(_))) => {
            Ok(Value::Bool(false))
        }
        None => Err(no_overload(symbol, a, b)),
    };
    // The commonest rule shape, `profile.age > 30`: compare the borrowed slot with the integer.
    if let (Compiled::Slot(slot), Compiled::Const(Value::Int(c))) = (&l, &r) {
        let (slot, c) = (slot.clone(), *c);
        return Compiled::Node(Box::new(move |ctx| match slot.read(ctx)? {
            Value::Int(a) => Ok(Value::Bool(accept(a.cmp(&c)))),
            other => compare(other, &Value::Int(c)),
        }));
    }
    l.binary(r, compare)
}

/// `lhs in rhs`, with a fast path for a constant list of strings (`country in ['US', 'CA']`).
pub(super) fn membership(l: Compiled, r: Compiled) -> Compiled {
    if let Compiled::Const(Value::List(items)) = &r
        && items.iter().all(|v| matches!(v, Value::String(_)))
    {
        let strings: Vec<Box<str>> = items
            .iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(Box::from(&**s)),
                _ => None,
            })
            .collect();
        return l.unary(move |v| match v {
            Value::String(s) => Ok(Value::Bool(strings.iter().any(|c| **c == **s))),
            _ => Ok(Value::Bool(false)),
        });
    }
    l.binary(r, |needle, haystack| match haystack {
        Value::List(items) => Ok(Value::Bool(items.iter().any(|v| v == needle))),
        Value::Map(_) => Ok(Value::Bool(haystack.map_get(needle).is_some())),
        other => Err(wrong_type("list or map", other)),
    })
}

/// `&&` and `||` with CEL's commutative error handling: `false && error` and
/// `error && false` are both false.
pub(super) fn logical(is_and: bool, l: Compiled, r: Compiled) -> Compiled {
    let decisive = !is_and;
    if let Compiled::Const(Value::Bool(b)) = l {
        return if b == decisive {
            Compiled::Const(Value::Bool(decisive))
        } else {
            r.unary(|v| match v {
                Value::Bool(b) => Ok(Value::Bool(*b)),
                other => Err(wrong_type("bool", other)),
            })
        };
    }
    let (l, r) = (l.into_node(), r.into_node());
    Compiled::Node(Box::new(move |ctx| {
        let left = match l(ctx) {
            Ok(Value::Bool(b)) if b == decisive => return Ok(Value::Bool(decisive)),
            Ok(Value::Bool(_)) => None,
            Ok(other) => Some(wrong_type("bool", &other)),
            Err(e) => Some(e),
        };
        match (r(ctx), left) {
            (Ok(Value::Bool(b)), _) if b == decisive => Ok(Value::Bool(decisive)),
            (_, Some(e)) => Err(e),
            (Ok(Value::Bool(b)), None) => Ok(Value::Bool(b)),
            (Ok(other), None) => Err(wrong_type("bool", &other)),
            (Err(e), None) => Err(e),
        }
    }))
}

pub(super) fn index_value(target: &Value, index: &Value) -> Result<Value, EvalError> {
    match (target, index) {
        (Value::List(items), Value::Int(i)) => usize::try_from(*i)
            .ok()
            .and_then(|i| items.get(i))
            .cloned()
            .ok_or(EvalError::IndexOutOfRange(*i)),
        (Value::List(items), Value::Double(d)) if d.fract() == 0.0 => {
            index_value(&Value::List(items.clone()), &Value::Int(*d as i64))
        }
        (Value::Map(_), key) => target
            .map_get(key)
            .cloned()
            .ok_or_else(|| EvalError::NoSuchKey(key.to_string().into())),
        (other, _) => Err(wrong_type("list or map", other)),
    }
}
