//! The get offers answer, written by hand into one buffer: it is the hot path. Each
//! placement's fixed text is rendered once per deployment ([`OfferFragments`], kept with the
//! deployment the runtime serves); an answer copies it and writes what varies.

use std::sync::Arc;

use kairos_api::runtime::{self as wire, CandidateView, IpExplainView};
use kairos_api::value_json;
use kairos_engine::{Deployment, IpExplain, Message, OffersResponse, Placement};
use kairos_rules::Value;
use serde::Serialize;
use serde_json::Value as J;

/// The engine's messages as the API's.
pub fn messages(messages: &[Message]) -> Vec<wire::Message> {
    messages
        .iter()
        .map(|m| wire::Message {
            code: m.code.into(),
            level: m.level.name().to_string(),
            message: m.message.clone(),
        })
        .collect()
}

fn explain(explain: &[IpExplain]) -> Vec<IpExplainView> {
    explain
        .iter()
        .map(|ip| IpExplainView {
            ip: ip.ip.to_string(),
            control_group: ip.control_group,
            explored: ip.explored,
            candidates: ip
                .candidates
                .iter()
                .map(|c| CandidateView {
                    offer: c.offer.to_string(),
                    rule: c.rule.to_string(),
                    removed_by: c.removed_by.map(|f| f.name().to_string()),
                    detail: c.detail.clone(),
                    score: c.score,
                    final_score: c.final_score,
                })
                .collect(),
        })
        .collect()
}

/// A value serialized as JSON without building a `serde_json::Value` first.
struct ValueOut<'a>(&'a Value);

impl Serialize for ValueOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Double(d) if d.is_finite() => s.serialize_f64(*d),
            Value::String(text) => s.serialize_str(text),
            other => value_json(other).serialize(s),
        }
    }
}

/// Each placement's part of the get offers answer that is the same in every answer: the
/// text before the treatment code and the text after the score, rendered at deploy. An answer
/// then copies two slices per offer instead of writing a dozen fields.
#[derive(Default)]
pub struct OfferFragments(Vec<(Arc<Placement>, Fragment)>);

struct Fragment {
    head: Box<[u8]>,
    tail: Box<[u8]>,
}

impl OfferFragments {
    pub fn new(dep: &Deployment) -> Self {
        OfferFragments(
            dep.placements()
                .map(|p| (p.clone(), Fragment::of(p)))
                .collect(),
        )
    }

    /// Rendered fragments serve only the placements they were rendered from.
    fn get(&self, placement: &Arc<Placement>) -> Option<&Fragment> {
        self.0
            .get(placement.index)
            .filter(|(p, _)| Arc::ptr_eq(p, placement))
            .map(|(_, f)| f)
    }
}

impl Fragment {
    fn of(p: &Placement) -> Fragment {
        let mut head = b"{\"code\":".to_vec();
        write_str(&mut head, &p.origin.offer);
        head.extend_from_slice(b",\"name\":");
        write_optional_str(&mut head, p.name.as_deref());
        head.extend_from_slice(b",\"category\":");
        write_optional_str(&mut head, p.origin.category.as_deref());
        head.extend_from_slice(b",\"treatment_code\":");
        let mut tail = b",\"attributes\":{".to_vec();
        for (k, (name, value)) in p.attributes.iter().enumerate() {
            if k > 0 {
                tail.push(b',');
            }
            write_str(&mut tail, name);
            tail.push(b':');
            write_serde(&mut tail, &ValueOut(value));
        }
        tail.extend_from_slice(b"}}");
        Fragment {
            head: head.into(),
            tail: tail.into(),
        }
    }
}

/// The get offers answer, written straight into bytes: it is the hot path, and through
/// serde's derive a fifth of a call's instructions went to serializing it, most of that to
/// escaping names that need none. `fragments` are the answering deployment's.
pub fn offers_body(r: &OffersResponse, fragments: &OfferFragments) -> Vec<u8> {
    let served: usize = r.offer_lists.iter().map(|l| l.offers.len()).sum();
    let mut out = Vec::with_capacity(128 + 96 * r.offer_lists.len() + 256 * served);
    out.extend_from_slice(b"{\"offer_lists\":[");
    for (i, list) in r.offer_lists.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"ip\":");
        write_str(&mut out, &list.ip);
        out.extend_from_slice(b",\"default\":");
        write_optional_str(&mut out, list.default.as_deref());
        out.extend_from_slice(b",\"offers\":[");
        for (j, offer) in list.offers.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            let rendered;
            let fragment = match fragments.get(&offer.placement) {
                Some(fragment) => fragment,
                None => {
                    rendered = Fragment::of(&offer.placement);
                    &rendered
                }
            };
            out.extend_from_slice(&fragment.head);
            write_str(&mut out, &offer.treatment_code);
            out.extend_from_slice(b",\"score\":");
            write_serde(&mut out, &offer.score);
            out.extend_from_slice(&fragment.tail);
        }
        out.extend_from_slice(b"]}");
    }
    out.extend_from_slice(b"],\"messages\":");
    if r.messages.is_empty() {
        out.extend_from_slice(b"[]");
    } else {
        write_serde(&mut out, &messages(&r.messages));
    }
    if let Some(explain) = &r.explain {
        out.extend_from_slice(b",\"explain\":");
        write_serde(&mut out, &self::explain(explain));
    }
    out.push(b'}');
    out
}

fn write_str(out: &mut Vec<u8>, text: &str) {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        write_serde(out, text);
    }
}

fn write_optional_str(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => write_str(out, text),
        None => out.extend_from_slice(b"null"),
    }
}

fn write_serde(out: &mut Vec<u8>, value: &(impl Serialize + ?Sized)) {
    serde_json::to_writer(out, value).expect("serializing into memory cannot fail");
}

/// The get offers answer as a JSON document (batch answers embed it).
pub fn offers_json(r: &OffersResponse, fragments: &OfferFragments) -> J {
    serde_json::from_slice(&offers_body(r, fragments)).expect("offers_body writes valid JSON")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kairos_engine::world::Origin;
    use kairos_engine::{Message, MessageCode, OfferList, OffersResponse, Placement, ServedOffer};
    use kairos_rules::Value;
    use serde_json::json;

    use super::{Fragment, OfferFragments, offers_body, offers_json};

    #[test]
    fn the_hand_written_offers_answer_is_valid_json_with_every_field() {
        let placement = Arc::new(Placement {
            index: 0,
            origin: Arc::new(Origin {
                offer: Arc::from("GOLD"),
                category: None,
                rule: Arc::from("r1"),
                segment: None,
            }),
            name: Some(Arc::from("Gold \"plus\"\ncard \u{e9}")),
            attributes: vec![
                ("price".to_string(), Value::Int(12)),
                ("label".to_string(), Value::string("a\\b")),
                ("ratio".to_string(), Value::Double(f64::NAN)),
            ],
        });
        let offer = ServedOffer {
            placement: placement.clone(),
            treatment_code: "0123abcd".into(),
            score: 1.5,
        };
        let response = OffersResponse {
            offer_lists: vec![
                OfferList {
                    ip: Arc::from("hero"),
                    default: Some("none today".to_string()),
                    offers: vec![
                        offer.clone(),
                        ServedOffer {
                            score: -0.25,
                            ..offer
                        },
                    ],
                },
                OfferList {
                    ip: Arc::from("side"),
                    default: None,
                    offers: Vec::new(),
                },
            ],
            messages: vec![Message::warning(
                MessageCode::UnknownInteractionPoint,
                "no 'side'",
            )],
            explain: None,
        };
        let gold = |score: f64| {
            json!({ "code": "GOLD", "name": "Gold \"plus\"\ncard \u{e9}", "category": null,
                    "treatment_code": "0123abcd", "score": score,
                    "attributes": { "price": 12, "label": "a\\b", "ratio": null } })
        };
        let expected = json!({
            "offer_lists": [
                { "ip": "hero", "default": "none today", "offers": [gold(1.5), gold(-0.25)] },
                { "ip": "side", "default": null, "offers": [] },
            ],
            "messages": [{ "code": "UNKNOWN_INTERACTION_POINT", "level": "warning", "message": "no 'side'" }],
        });
        let rendered = OfferFragments(vec![(placement.clone(), Fragment::of(&placement))]);
        assert_eq!(offers_json(&response, &rendered), expected);
        // The hand-written bytes are the answer the API document describes.
        let typed: kairos_api::runtime::OffersAnswer =
            serde_json::from_slice(&offers_body(&response, &rendered)).unwrap();
        assert_eq!(serde_json::to_value(&typed).unwrap(), expected);
        // Fragments rendered from another deployment's placement are not used.
        let other = Arc::new(Placement {
            name: None,
            attributes: Vec::new(),
            ..Placement::clone(&placement)
        });
        let stale = OfferFragments(vec![(other.clone(), Fragment::of(&other))]);
        assert_eq!(offers_json(&response, &stale), expected);
        assert_eq!(offers_json(&response, &OfferFragments::default()), expected);
    }
}
