//! Audience state as JSON: one document per audience ID, the same in every backend.

use std::fmt::Write;

use kairos_engine::world::{AudienceState, OfferHistory, PatternState, TimedSuppression};
use kairos_rules::time::Timestamp;
use serde_json::Value as J;

use crate::StoreError;

/// Writes the state straight to text: it is encoded for every event that changes it, and
/// through serde's derive an encoding took about 5,000 instructions (callgrind, contact
/// load), by hand about 1,500. What [`decode`] reads back as a default is left out (empty
/// sections, a total equal to the recent contacts kept, no accept or reject): the row is
/// rewritten at a random place in the audience table for every logged event, and the less
/// of a page it takes, the fewer pages each commit splits and writes to the log.
pub fn encode(state: &AudienceState) -> String {
    let mut out = String::with_capacity(16 + 48 * state.offers.len());
    out.push('{');
    if !state.offers.is_empty() {
        section(&mut out, "offers");
        out.push('{');
        for (i, (code, h)) in state.offers.iter().enumerate() {
            separate(&mut out, i);
            string(&mut out, code);
            out.push_str(":{\"recent\":[");
            for (j, at) in h.recent_contacts.iter().enumerate() {
                separate(&mut out, j);
                integer(&mut out, at.0);
            }
            out.push(']');
            if h.total_contacts != h.recent_contacts.len() as u64 {
                out.push_str(",\"total\":");
                integer(&mut out, h.total_contacts);
            }
            if let Some(at) = h.last_accept {
                out.push_str(",\"accept\":");
                integer(&mut out, at.0);
            }
            if let Some(at) = h.last_reject {
                out.push_str(",\"reject\":");
                integer(&mut out, at.0);
            }
            out.push('}');
        }
        out.push('}');
    }
    if !state.patterns.is_empty() {
        section(&mut out, "patterns");
        out.push('{');
        for (i, (name, p)) in state.patterns.iter().enumerate() {
            separate(&mut out, i);
            string(&mut out, name);
            out.push_str(":{\"start\":");
            optional_time(&mut out, p.window_start);
            out.push_str(",\"sum\":");
            number(&mut out, p.sum);
            out.push_str(",\"seen\":");
            strings(&mut out, &p.seen);
            // Hits as `[event, time, weight]` triples.
            out.push_str(",\"hits\":[");
            for (j, (event, at, weight)) in p.hits.iter().enumerate() {
                separate(&mut out, j);
                out.push('[');
                string(&mut out, event);
                out.push(',');
                integer(&mut out, at.0);
                out.push(',');
                number(&mut out, *weight);
                out.push(']');
            }
            out.push_str("],\"matched\":");
            out.push_str(if p.matched { "true" } else { "false" });
            out.push('}');
        }
        out.push('}');
    }
    if !state.suppressions.is_empty() {
        section(&mut out, "suppressions");
        out.push('[');
        for (i, s) in state.suppressions.iter().enumerate() {
            separate(&mut out, i);
            out.push_str("{\"offers\":");
            strings(&mut out, &s.offers);
            out.push_str(",\"category\":");
            match &s.category {
                Some(category) => string(&mut out, category),
                None => out.push_str("null"),
            }
            out.push_str(",\"until\":");
            integer(&mut out, s.until.0);
            out.push('}');
        }
        out.push(']');
    }
    out.push('}');
    out
}

/// A section's key, after a comma unless it is the document's first.
fn section(out: &mut String, key: &str) {
    if out.len() > 1 {
        out.push(',');
    }
    out.push('"');
    out.push_str(key);
    out.push_str("\":");
}

fn separate(out: &mut String, index: usize) {
    if index > 0 {
        out.push(',');
    }
}

fn integer(out: &mut String, n: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(n));
}

fn optional_time(out: &mut String, at: Option<Timestamp>) {
    match at {
        Some(at) => integer(out, at.0),
        None => out.push_str("null"),
    }
}

/// A list of strings.
fn strings<'a>(out: &mut String, items: impl IntoIterator<Item = &'a String>) {
    out.push('[');
    for (i, item) in items.into_iter().enumerate() {
        separate(out, i);
        string(out, item);
    }
    out.push(']');
}

/// A finite number in its shortest form that reads back exactly; anything else as `null`,
/// as serde_json writes it.
fn number(out: &mut String, n: f64) {
    if n.is_finite() {
        let _ = write!(out, "{n}");
    } else {
        out.push_str("null");
    }
}

/// A JSON string. Names come from channel files, so they rarely need escaping; those that do
/// are escaped by serde_json, as the server's offers writer (`native::write_str`) does.
fn string(out: &mut String, text: &str) {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(text).expect("a string serializes"));
    }
}

fn bad(what: &str) -> StoreError {
    StoreError::Corrupt(format!("audience state: {what}"))
}

fn time(v: &J) -> Option<Timestamp> {
    v.as_i64().map(Timestamp)
}

/// A section of the document: `None` when left out (empty), an error when not of its type.
fn section_of<'d, T>(
    doc: &'d J,
    key: &str,
    read: impl Fn(&'d J) -> Option<&'d T>,
) -> Result<Option<&'d T>, StoreError> {
    match &doc[key] {
        J::Null => Ok(None),
        value => read(value).map(Some).ok_or_else(|| bad(key)),
    }
}

pub fn decode(text: &str) -> Result<AudienceState, StoreError> {
    let doc: J = serde_json::from_str(text).map_err(|e| bad(&e.to_string()))?;
    let mut state = AudienceState::default();
    for (code, h) in section_of(&doc, "offers", J::as_object)?
        .into_iter()
        .flatten()
    {
        let recent_contacts: Vec<Timestamp> = h["recent"]
            .as_array()
            .ok_or_else(|| bad("recent"))?
            .iter()
            .filter_map(time)
            .collect();
        let total_contacts = match &h["total"] {
            J::Null => recent_contacts.len() as u64,
            total => total.as_u64().ok_or_else(|| bad("total"))?,
        };
        let history = OfferHistory {
            recent_contacts,
            total_contacts,
            last_accept: time(&h["accept"]),
            last_reject: time(&h["reject"]),
        };
        state.offers.insert(code.clone(), history);
    }
    for (name, p) in section_of(&doc, "patterns", J::as_object)?
        .into_iter()
        .flatten()
    {
        let hits = p["hits"]
            .as_array()
            .ok_or_else(|| bad("hits"))?
            .iter()
            .map(|h| {
                Some((
                    h[0].as_str()?.to_string(),
                    Timestamp(h[1].as_i64()?),
                    h[2].as_f64()?,
                ))
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("hit"))?;
        let pattern = PatternState {
            window_start: time(&p["start"]),
            sum: p["sum"].as_f64().ok_or_else(|| bad("sum"))?,
            seen: p["seen"]
                .as_array()
                .ok_or_else(|| bad("seen"))?
                .iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect(),
            hits,
            matched: p["matched"].as_bool().ok_or_else(|| bad("matched"))?,
        };
        state.patterns.insert(name.clone(), pattern);
    }
    for s in section_of(&doc, "suppressions", J::as_array)?
        .into_iter()
        .flatten()
    {
        state.suppressions.push(TimedSuppression {
            offers: s["offers"]
                .as_array()
                .ok_or_else(|| bad("offers"))?
                .iter()
                .filter_map(|o| o.as_str().map(str::to_string))
                .collect(),
            category: s["category"].as_str().map(str::to_string),
            until: time(&s["until"]).ok_or_else(|| bad("until"))?,
        });
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::{btree_map, btree_set, vec};
    use proptest::prelude::*;

    fn times() -> impl Strategy<Value = Timestamp> {
        any::<i64>().prop_map(Timestamp)
    }

    /// Numbers JSON holds exactly in few digits, as pattern weights and sums are: the parser
    /// is only best-effort in the last bit of long fractions.
    fn weights() -> impl Strategy<Value = f64> {
        (-4000i32..4000).prop_map(|n| f64::from(n) / 8.0)
    }

    fn states() -> impl Strategy<Value = AudienceState> {
        // Any text as names: quotes, backslashes, control characters, any script.
        let name = ".{0,12}";
        let offer = (
            vec(times(), 0..4),
            any::<u64>(),
            proptest::option::of(times()),
            proptest::option::of(times()),
        )
            .prop_map(
                |(recent_contacts, total_contacts, last_accept, last_reject)| OfferHistory {
                    recent_contacts,
                    total_contacts,
                    last_accept,
                    last_reject,
                },
            );
        let pattern = (
            proptest::option::of(times()),
            weights(),
            btree_set(name, 0..3),
            vec((name, times(), weights()), 0..3),
            any::<bool>(),
        )
            .prop_map(|(window_start, sum, seen, hits, matched)| PatternState {
                window_start,
                sum,
                seen,
                hits,
                matched,
            });
        let suppression = (vec(name, 0..3), proptest::option::of(name), times()).prop_map(
            |(offers, category, until)| TimedSuppression {
                offers,
                category,
                until,
            },
        );
        (
            btree_map(name, offer, 0..4),
            btree_map(name, pattern, 0..3),
            vec(suppression, 0..3),
        )
            .prop_map(|(offers, patterns, suppressions)| AudienceState {
                offers: offers.into_iter().collect(),
                patterns: patterns.into_iter().collect(),
                suppressions,
            })
    }

    proptest! {
        #[test]
        fn any_state_is_written_as_json_and_read_back_equal(state in states()) {
            let text = encode(&state);
            prop_assert!(serde_json::from_str::<J>(&text).is_ok(), "not JSON: {}", text);
            prop_assert_eq!(decode(&text).unwrap(), state);
        }
    }

    #[test]
    fn state_round_trips() {
        let mut state = AudienceState::default();
        let mut h = OfferHistory {
            last_accept: Some(Timestamp(5)),
            ..OfferHistory::default()
        };
        h.record_contact(Timestamp(3));
        state.offers.insert("GOLD".into(), h);
        state.patterns.insert(
            "p".into(),
            PatternState {
                window_start: Some(Timestamp(1)),
                sum: 2.5,
                seen: ["a".to_string()].into(),
                hits: vec![("a".into(), Timestamp(9), 1.5)],
                matched: true,
            },
        );
        state.suppressions.push(TimedSuppression {
            offers: vec!["gold".into()],
            category: None,
            until: Timestamp(99),
        });
        assert_eq!(decode(&encode(&state)).unwrap(), state);
        assert!(decode("{\"offers\": 3}").is_err());
    }

    #[test]
    fn what_reads_back_as_a_default_is_left_out_and_the_full_form_still_reads() {
        let mut state = AudienceState::default();
        assert_eq!(encode(&state), "{}");
        let mut h = OfferHistory::default();
        h.record_contact(Timestamp(3));
        state.offers.insert("GOLD".into(), h);
        assert_eq!(encode(&state), r#"{"offers":{"GOLD":{"recent":[3]}}}"#);
        // As every state was written before defaults were left out.
        let full = r#"{"offers":{"GOLD":{"recent":[3],"total":1,"accept":null,"reject":null}},"patterns":{},"suppressions":[]}"#;
        assert_eq!(decode(full).unwrap(), state);
        state.suppressions.push(TimedSuppression {
            offers: vec!["GOLD".into()],
            category: None,
            until: Timestamp(9),
        });
        let text = encode(&state);
        assert_eq!(
            text,
            r#"{"offers":{"GOLD":{"recent":[3]}},"suppressions":[{"offers":["GOLD"],"category":null,"until":9}]}"#
        );
        assert_eq!(decode(&text).unwrap(), state);
        assert!(decode(r#"{"suppressions":{}}"#).is_err());
    }

    #[test]
    fn names_that_need_escaping_round_trip() {
        let mut state = AudienceState::default();
        for name in ["say \"hi\"", "back\\slash", "line\nbreak\u{1}", "café ☕"] {
            state.offers.insert(name.into(), OfferHistory::default());
            state.suppressions.push(TimedSuppression {
                offers: vec![name.into()],
                category: Some(name.into()),
                until: Timestamp(-7),
            });
        }
        let text = encode(&state);
        serde_json::from_str::<J>(&text).expect("valid JSON");
        assert_eq!(decode(&text).unwrap(), state);
    }

    #[test]
    fn a_number_json_cannot_hold_is_written_as_null_and_refused_when_read() {
        let mut state = AudienceState::default();
        state.patterns.insert(
            "p".into(),
            PatternState {
                sum: f64::NAN,
                ..PatternState::default()
            },
        );
        let text = encode(&state);
        assert!(text.contains("\"sum\":null"), "{text}");
        assert!(decode(&text).is_err());
    }
}
