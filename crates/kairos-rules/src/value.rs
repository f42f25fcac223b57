//! Run-time values and static types of the rule language.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use crate::time::{Duration, Timestamp, format_duration, format_timestamp};

/// A value an expression reads or produces. Cloning is cheap: strings, lists and maps are shared.
#[derive(Clone, Debug)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    String(Arc<str>),
    Timestamp(Timestamp),
    Duration(Duration),
    List(Arc<[Value]>),
    /// Small maps (dimension rows, literals): a list of pairs searched in order.
    Map(Arc<[(Value, Value)]>),
}

impl Value {
    pub fn string(s: impl Into<Arc<str>>) -> Self {
        Value::String(s.into())
    }

    pub fn list(items: impl IntoIterator<Item = Value>) -> Self {
        Value::List(items.into_iter().collect())
    }

    pub fn map(pairs: impl IntoIterator<Item = (Value, Value)>) -> Self {
        Value::Map(pairs.into_iter().collect())
    }

    pub fn type_of(&self) -> Type {
        match self {
            Value::Null => Type::Null,
            Value::Bool(_) => Type::Bool,
            Value::Int(_) => Type::Int,
            Value::Double(_) => Type::Double,
            Value::String(_) => Type::String,
            Value::Timestamp(_) => Type::Timestamp,
            Value::Duration(_) => Type::Duration,
            Value::List(_) => Type::List(Box::new(Type::Dyn)),
            Value::Map(_) => Type::Map(Box::new(Type::Dyn), Box::new(Type::Dyn)),
        }
    }

    /// The value under `key` when this is a map.
    pub fn map_get(&self, key: &Value) -> Option<&Value> {
        match self {
            Value::Map(pairs) => pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Numeric view used for cross-type comparison (`1 < 1.5`).
    fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Double(d) => Some(*d),
            _ => None,
        }
    }

    /// CEL ordering: numbers across int/double, strings, bools, timestamps, durations.
    /// `None` when the two values are not ordered relative to each other.
    pub fn compare(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
            (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            (Value::Timestamp(a), Value::Timestamp(b)) => Some(a.cmp(b)),
            (Value::Duration(a), Value::Duration(b)) => Some(a.cmp(b)),
            (Value::Int(a), Value::Double(b)) => compare_int_double(*a, *b),
            (Value::Double(a), Value::Int(b)) => compare_int_double(*b, *a).map(Ordering::reverse),
            _ => self
                .as_f64()
                .zip(other.as_f64())
                .and_then(|(a, b)| a.partial_cmp(&b)),
        }
    }
}

/// 2^63: doubles at or beyond it (or below its negation) are out of i64's range.
pub(crate) const TWO_POW_63: f64 = (1u64 << 63) as f64;

/// Exact int/double comparison: casting a large i64 to f64 would round.
fn compare_int_double(i: i64, d: f64) -> Option<Ordering> {
    if d.is_nan() {
        return None;
    }
    if d >= TWO_POW_63 {
        return Some(Ordering::Less);
    }
    if d < -TWO_POW_63 {
        return Some(Ordering::Greater);
    }
    let truncated = d.trunc();
    match i.cmp(&(truncated as i64)) {
        Ordering::Equal => 0.0f64.partial_cmp(&(d - truncated)),
        other => Some(other),
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::List(a), Value::List(b)) => a == b,
            (Value::Map(a), Value::Map(b)) => {
                a.len() == b.len() && a.iter().all(|(k, v)| other.map_get(k) == Some(v))
            }
            _ => self.compare(other) == Some(Ordering::Equal),
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<f64> for Value {
    fn from(d: f64) -> Self {
        Value::Double(d)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.into())
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Double(d) => write!(f, "{d}"),
            Value::String(s) => write!(f, "{s:?}"),
            Value::Timestamp(t) => write!(f, "timestamp({:?})", format_timestamp(*t)),
            Value::Duration(d) => write!(f, "duration({:?})", format_duration(*d)),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Value::Map(pairs) => {
                f.write_str("{")?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// The static type of an expression. `Dyn` is "not known until run time": a profile field
/// without a schema, a session parameter, an event parameter.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    Null,
    Bool,
    Int,
    Double,
    String,
    Timestamp,
    Duration,
    List(Box<Type>),
    Map(Box<Type>, Box<Type>),
    Dyn,
}

impl Type {
    pub fn is_dyn(&self) -> bool {
        matches!(self, Type::Dyn)
    }

    pub fn is_numeric(&self) -> bool {
        matches!(self, Type::Int | Type::Double)
    }

    /// Whether a value of type `self` may appear where `other` is expected (dyn fits anything).
    pub fn fits(&self, other: &Type) -> bool {
        match (self, other) {
            (Type::Dyn, _) | (_, Type::Dyn) => true,
            (Type::List(a), Type::List(b)) => a.fits(b),
            (Type::Map(ka, va), Type::Map(kb, vb)) => ka.fits(kb) && va.fits(vb),
            _ => self == other,
        }
    }

    /// The common type of two branches or list elements: equal types stay, otherwise dyn.
    pub fn join(&self, other: &Type) -> Type {
        if self == other {
            self.clone()
        } else {
            Type::Dyn
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Null => f.write_str("null"),
            Type::Bool => f.write_str("bool"),
            Type::Int => f.write_str("int"),
            Type::Double => f.write_str("double"),
            Type::String => f.write_str("string"),
            Type::Timestamp => f.write_str("timestamp"),
            Type::Duration => f.write_str("duration"),
            Type::List(t) => write!(f, "list({t})"),
            Type::Map(k, v) => write!(f, "map({k}, {v})"),
            Type::Dyn => f.write_str("dyn"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_across_int_and_double() {
        assert_eq!(Value::Int(1), Value::Double(1.0));
        assert!(Value::Int(1).compare(&Value::Double(1.5)) == Some(Ordering::Less));
        assert!(Value::Int(i64::MAX).compare(&Value::Double(9.3e18)) == Some(Ordering::Less));
        assert_eq!(Value::Double(f64::NAN).compare(&Value::Int(1)), None);
        assert_ne!(Value::from("1"), Value::Int(1));
    }

    #[test]
    fn maps_are_equal_regardless_of_order() {
        let a = Value::map([
            (Value::from("x"), Value::Int(1)),
            (Value::from("y"), Value::Int(2)),
        ]);
        let b = Value::map([
            (Value::from("y"), Value::Int(2)),
            (Value::from("x"), Value::Int(1)),
        ]);
        assert_eq!(a, b);
    }
}
