//! Interact's name/value pairs: read into rule values by their type (`string`, `numeric`,
//! `datetime`, in any case; a pair without a type is a string), and written from them.

use kairos_api::interact::{Nvp, NvpIn, NvpType, NvpValue};
use kairos_rules::Value;
use kairos_rules::time::{Timestamp, format_timestamp, parse_instant};
use serde_json::Value as J;

/// `pairs` as parameters; `field` names them in errors (`parameters[2].v: ...`).
pub fn values(field: &str, pairs: Option<&[NvpIn]>) -> Result<Vec<(String, Value)>, String> {
    pairs
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, pair)| {
            let name = pair
                .n
                .clone()
                .filter(|n| !n.is_empty())
                .ok_or_else(|| format!("{field}[{i}].n: a name is required"))?;
            let value = value(pair.t.as_deref(), &pair.v)
                .map_err(|why| format!("{field}[{i}].v: {why}"))?;
            Ok((name, value))
        })
        .collect()
}

fn value(kind: Option<&str>, v: &J) -> Result<Value, String> {
    match kind.unwrap_or("string").to_ascii_lowercase().as_str() {
        "numeric" => match v {
            J::Number(n) => Ok(n
                .as_i64()
                .map_or_else(|| Value::Double(n.as_f64().unwrap_or(f64::NAN)), Value::Int)),
            J::String(s) => s
                .trim()
                .parse::<i64>()
                .map(Value::Int)
                .or_else(|_| s.trim().parse::<f64>().map(Value::Double))
                .map_err(|_| format!("'{s}' is not numeric")),
            other => Err(format!("{other} is not numeric")),
        },
        "datetime" => datetime(v).map(Value::Timestamp),
        "string" => Ok(match v {
            J::String(s) => Value::string(s.as_str()),
            J::Null => Value::string(""),
            other => Value::string(other.to_string()),
        }),
        other => Err(format!(
            "the type '{other}' is not string, numeric or datetime"
        )),
    }
}

/// A datetime as Interact clients send it: epoch milliseconds (a number or its digits),
/// RFC 3339 (`2026-12-31T10:00:00Z`; without a zone, UTC), `yyyy-MM-dd[ HH:mm[:ss]]`, or
/// Interact's `MM/dd/yyyy[ HH:mm[:ss]]` (UTC).
pub fn datetime(v: &J) -> Result<Timestamp, String> {
    let text = match v {
        J::Number(n) => {
            return n
                .as_i64()
                .and_then(epoch_millis)
                .ok_or_else(|| format!("{n} is not a datetime"));
        }
        J::String(s) => s.trim(),
        other => return Err(format!("{other} is not a datetime")),
    };
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .ok()
            .and_then(epoch_millis)
            .ok_or_else(|| format!("'{text}' is not a datetime"));
    }
    let (date, time) = text.split_once([' ', 'T', 't']).unwrap_or((text, ""));
    let iso_date = match date.split('/').collect::<Vec<_>>().as_slice() {
        [month, day, year] if year.len() == 4 => format!("{year}-{month:0>2}-{day:0>2}"),
        _ => date.to_string(),
    };
    let iso = match time {
        "" => iso_date,
        time if time.len() == 5 => format!("{iso_date}T{time}:00Z"),
        time if time.ends_with(['Z', 'z']) || time.contains(['+', '-']) => {
            format!("{iso_date}T{time}")
        }
        time => format!("{iso_date}T{time}Z"),
    };
    parse_instant(&iso).map(|p| p.at).map_err(|_| {
        format!(
            "'{text}' is not a datetime: give epoch milliseconds, 2026-12-31T10:00:00Z, \
             2026-12-31 10:00:00 or 12/31/2026 10:00:00"
        )
    })
}

fn epoch_millis(ms: i64) -> Option<Timestamp> {
    ms.checked_mul(1_000_000).map(Timestamp)
}

/// A rule value as an answer's pair.
pub fn nvp(name: &str, value: &Value) -> Nvp {
    let (t, v) = match value {
        Value::Int(i) => (NvpType::Numeric, NvpValue::Int(*i)),
        Value::Double(d) => (NvpType::Numeric, NvpValue::Float(*d)),
        Value::Timestamp(t) => (NvpType::Datetime, NvpValue::Text(format_timestamp(*t))),
        Value::String(s) => (NvpType::String, NvpValue::Text(s.to_string())),
        // Interact has no boolean type: booleans travel as the strings "true" and "false".
        Value::Bool(b) => (NvpType::String, NvpValue::Text(b.to_string())),
        Value::Null => (NvpType::String, NvpValue::Null),
        // Durations, lists (a profile's dimension rows) and maps have no Interact type
        // either: the native API's value as text (JSON text for lists and maps), so that a
        // "string" always holds a string.
        Value::Duration(_) | Value::List(_) | Value::Map(_) => {
            let text = match kairos_api::value_json(value) {
                J::String(text) => text,
                json => json.to_string(),
            };
            (NvpType::String, NvpValue::Text(text))
        }
    };
    Nvp {
        n: name.to_string(),
        t,
        v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn datetimes_read_in_every_form_interact_clients_send() {
        let noon = parse_instant("2026-12-31T10:00:00Z").unwrap().at;
        for v in [
            json!(1_798_711_200_000i64),
            json!("1798711200000"),
            json!("2026-12-31T10:00:00Z"),
            json!("2026-12-31T11:00:00+01:00"),
            json!("2026-12-31 10:00:00"),
            json!("2026-12-31T10:00"),
            json!("12/31/2026 10:00:00"),
            json!("12/31/2026 10:00"),
        ] {
            assert_eq!(datetime(&v), Ok(noon), "{v}");
        }
        let midnight = parse_instant("2026-12-31").unwrap().at;
        assert_eq!(datetime(&json!("12/31/2026")), Ok(midnight));
        for bad in [
            json!("31/12/2026"),
            json!("tomorrow"),
            json!(true),
            json!(""),
        ] {
            assert!(datetime(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pairs_read_by_their_type_in_any_case() {
        let pairs: Vec<NvpIn> = serde_json::from_value(json!([
            { "n": "a", "v": "3", "t": "NUMERIC" },
            { "n": "b", "v": 2.5, "t": "numeric" },
            { "n": "c", "v": "x" },
            { "n": "d", "v": "12/31/2026", "t": "DateTime" }
        ]))
        .unwrap();
        let read = values("parameters", Some(&pairs)).unwrap();
        assert_eq!(read[0], ("a".to_string(), Value::Int(3)));
        assert_eq!(read[1], ("b".to_string(), Value::Double(2.5)));
        assert_eq!(read[2], ("c".to_string(), Value::string("x")));
        assert!(matches!(read[3].1, Value::Timestamp(_)));
        let bad: Vec<NvpIn> =
            serde_json::from_value(json!([{ "n": "a", "v": "x", "t": "numeric" }])).unwrap();
        assert_eq!(
            values("parameters", Some(&bad)),
            Err("parameters[0].v: 'x' is not numeric".to_string())
        );
    }
}
