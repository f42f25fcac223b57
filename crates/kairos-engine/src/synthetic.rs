//! A seeded synthetic channel at production scale, for benchmarks (engine and HTTP) and
//! property tests: offers, rules, segments and interaction points in the numbers asked for,
//! with a share of rules carrying eligibility expressions.

use std::fmt::Write;

use kairos_rules::Value;

use crate::random::{Random, SplitMix64};
use crate::world::Profile;

/// The size of a synthetic channel.
#[derive(Clone, Copy, Debug)]
pub struct Size {
    pub offers: usize,
    pub rules: usize,
    pub segments: usize,
    pub interaction_points: usize,
    /// Share of rules with an eligibility expression, in [0, 1].
    pub eligibility_share: f64,
}

impl Size {
    /// The engine benchmark's channel: 1,000 offers, 2,000 rules, 200 segments, 100 IPs, 30% of
    /// rules with an eligibility expression.
    pub const BENCHMARK: Size = Size {
        offers: 1000,
        rules: 2000,
        segments: 200,
        interaction_points: 100,
        eligibility_share: 0.3,
    };
}

const COUNTRIES: [&str; 6] = ["US", "CA", "GB", "DE", "FR", "JP"];
const IPS_PER_ZONE: usize = 5;

/// The channel as a channel file. One offer in 20 has expired, one in 20 is not yet
/// effective, one rule in 25 is disabled. Segment `seg_i` holds visitors whose `tier` is `i % 20` and
/// whose age band matches, so a visitor is in about `segments / 20 / 3` segments.
pub fn channel_yaml(seed: u64, size: Size) -> String {
    let mut rng = SplitMix64(seed);
    let mut y = String::from("channel: synthetic\ndefault_audience_level: customer\n");
    y.push_str(
        "audience_levels:\n  customer: { id_fields: [customer_id], profile_table: customers }\n",
    );
    y.push_str("max_offer_contacts_per_visit: 5\n");
    let zones = size.interaction_points.div_ceil(IPS_PER_ZONE);
    y.push_str("zones:\n");
    for z in 0..zones {
        let _ = writeln!(y, "  zone{z}:\n    interaction_points:");
        for i in 0..IPS_PER_ZONE.min(size.interaction_points - z * IPS_PER_ZONE) {
            let _ = writeln!(
                y,
                "      ip{}: {{ default: \"default {z}\" }}",
                z * IPS_PER_ZONE + i
            );
        }
    }
    y.push_str("categories: [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9]\noffers:\n");
    for o in 0..size.offers {
        // One offer in 20 has ended, one in 20 has not started yet.
        let dates = match o % 20 {
            7 => ", expires: 2020-01-01",
            13 => ", effective: 2040-01-01",
            _ => "",
        };
        let _ = writeln!(
            y,
            "  OFFER{o}: {{ name: \"Offer {o}\", category: c{}, attributes: {{ price: {}, tier: {} }}, suppression: {{ after_accept: 30d, after_reject: 7d, max_contacts: 5, within: 1d }}{dates} }}",
            o % 10,
            rng.next_u64() % 500,
            o % 20
        );
    }
    y.push_str("segments:\n");
    for s in 0..size.segments {
        let band = (s / 20) % 3;
        let (low, high) = [(18, 35), (30, 55), (50, 90)][band];
        let _ = writeln!(
            y,
            "  seg{s}: \"profile.tier == {} && profile.age >= {low} && profile.age < {high}\"",
            s % 20
        );
    }
    y.push_str("flowcharts:\n  main:\n    audience_level: customer\n    steps:\n");
    y.push_str("      - decision:\n          branches:\n            - when: \"profile.balance > 50000\"\n              steps: [ { populate: rich } ]\n          else:\n            - sample: { seed: s, splits: { a: 50, b: 50 }, steps: { a: [ { populate: half_a } ], b: [ { populate: half_b } ] } }\n");
    y.push_str("rules:\n");
    for r in 0..size.rules {
        let segment = if rng.next_u64().is_multiple_of(20) {
            "\"*\"".to_string()
        } else {
            format!("seg{}", rng.next_u64() % size.segments as u64)
        };
        let zone = format!("zone{}", rng.next_u64() % zones as u64);
        let offer = rng.next_u64() % size.offers as u64;
        let score = rng.next_u64() % 100;
        let _ = write!(
            y,
            "  - {{ id: r{r}, segment: {segment}, zone: {zone}, offer: OFFER{offer}, score: {score}"
        );
        if r % 25 == 3 {
            y.push_str(", enabled: false");
        }
        if rng.unit() < size.eligibility_share {
            let expr = match rng.next_u64() % 3 {
                0 => format!("profile.balance > {}", rng.next_u64() % 20_000),
                1 => format!(
                    "offer.price < {} || profile.country in ['US', 'CA']",
                    rng.next_u64() % 500
                ),
                _ => format!(
                    "!has(session.page) || session.page != 'p{}'",
                    rng.next_u64() % 10
                ),
            };
            let _ = write!(y, ", eligibility: \"{expr}\"");
        }
        y.push_str(" }\n");
    }
    y.push_str("events:\n  offer_shown: { actions: [ log_contact ] }\n  offer_clicked: { actions: [ log_accept ] }\n  offer_closed: { actions: [ log_reject ] }\n  page_view: { actions: [ resegment ] }\n");
    y.push_str("learning: { mode: thompson, explore_percent: 5, min_contacts: 50 }\n");
    y
}

/// The profile of synthetic customer `id`: the same id always gives the same profile.
pub fn profile(id: u64) -> Profile {
    let mut rng = SplitMix64(id.wrapping_mul(0x9E37_79B9));
    Profile::from([
        ("customer_id".to_string(), Value::Int(id as i64)),
        (
            "age".to_string(),
            Value::Int(18 + (rng.next_u64() % 70) as i64),
        ),
        ("tier".to_string(), Value::Int((rng.next_u64() % 20) as i64)),
        (
            "balance".to_string(),
            Value::Double((rng.unit() * 80_000.0).round()),
        ),
        (
            "country".to_string(),
            Value::string(COUNTRIES[(rng.next_u64() % 6) as usize]),
        ),
    ])
}

/// The schema of [`profile`], for type checking the synthetic channel.
pub fn profile_schema() -> kairos_model::TableSchema {
    use kairos_model::table::{Column, ColumnType};
    let column = |name: &str, ty| Column {
        name: name.to_string(),
        ty,
    };
    kairos_model::TableSchema {
        name: "customers".into(),
        columns: vec![
            column("customer_id", ColumnType::Int),
            column("age", ColumnType::Int),
            column("tier", ColumnType::Int),
            column("balance", ColumnType::Double),
            column("country", ColumnType::String),
        ],
    }
}

/// The synthetic channel compiled as deployment 1.
pub fn deployment(seed: u64, size: Size) -> crate::Deployment {
    let mut schemas = kairos_model::Schemas::new();
    schemas.insert(profile_schema());
    let channel =
        kairos_model::parse_channel("synthetic.yaml", &channel_yaml(seed, size), &schemas)
            .unwrap_or_else(|e| panic!("the synthetic channel is valid: {e}"));
    crate::Deployment::compile(&channel, &schemas, 1).unwrap_or_else(|e| panic!("{e}"))
}

/// Profiles of customers `0..count` as the CSV of the `customers` table.
pub fn profiles_csv(count: u64) -> String {
    let mut out = String::from("customer_id,age,tier,balance,country\n");
    for id in 0..count {
        let p = profile(id);
        let _ = writeln!(
            out,
            "{id},{},{},{},{}",
            p["age"],
            p["tier"],
            p["balance"],
            p["country"].to_string().trim_matches('"')
        );
    }
    out
}
