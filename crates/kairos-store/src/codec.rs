//! Audience state as JSON: one document per audience ID, the same in every backend.

use kairos_engine::world::{AudienceState, OfferHistory, PatternState, TimedSuppression};
use kairos_rules::time::Timestamp;
use serde_json::{Map, Value as J, json};

use crate::StoreError;

fn ts(t: Option<Timestamp>) -> J {
    t.map_or(J::Null, |t| J::from(t.0))
}

pub fn encode(state: &AudienceState) -> String {
    let offers: Map<String, J> = state
        .offers
        .iter()
        .map(|(code, h)| {
            let recent: Vec<i64> = h.recent_contacts.iter().map(|t| t.0).collect();
            let doc = json!({ "recent": recent, "total": h.total_contacts, "accept": ts(h.last_accept), "reject": ts(h.last_reject) });
            (code.clone(), doc)
        })
        .collect();
    let patterns: Map<String, J> = state
        .patterns
        .iter()
        .map(|(name, p)| {
            let hits: Vec<J> = p.hits.iter().map(|(e, at, w)| json!([e, at.0, w])).collect();
            let doc = json!({ "start": ts(p.window_start), "sum": p.sum, "seen": p.seen, "hits": hits, "matched": p.matched });
            (name.clone(), doc)
        })
        .collect();
    let suppressions: Vec<J> = state
        .suppressions
        .iter()
        .map(|s| json!({ "offers": s.offers, "category": s.category, "until": s.until.0 }))
        .collect();
    json!({ "offers": offers, "patterns": patterns, "suppressions": suppressions }).to_string()
}

fn bad(what: &str) -> StoreError {
    StoreError::Corrupt(format!("audience state: {what}"))
}

fn time(v: &J) -> Option<Timestamp> {
    v.as_i64().map(Timestamp)
}

pub fn decode(text: &str) -> Result<AudienceState, StoreError> {
    let doc: J = serde_json::from_str(text).map_err(|e| bad(&e.to_string()))?;
    let mut state = AudienceState::default();
    for (code, h) in doc["offers"].as_object().ok_or_else(|| bad("offers"))? {
        let history = OfferHistory {
            recent_contacts: h["recent"]
                .as_array()
                .ok_or_else(|| bad("recent"))?
                .iter()
                .filter_map(time)
                .collect(),
            total_contacts: h["total"].as_u64().ok_or_else(|| bad("total"))?,
            last_accept: time(&h["accept"]),
            last_reject: time(&h["reject"]),
        };
        state.offers.insert(code.clone(), history);
    }
    for (name, p) in doc["patterns"].as_object().ok_or_else(|| bad("patterns"))? {
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
    for s in doc["suppressions"]
        .as_array()
        .ok_or_else(|| bad("suppressions"))?
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
}
