//! From the channel model back to a channel file. The output re-reads to an equal channel
//! (the round-trip property test holds us to it) and is meant for people and git diffs:
//! block style for objects, flow style for short lists and small mappings, expressions quoted.

use std::fmt::Write;

use crate::model::*;

/// A YAML value as the writer lays it out.
pub(crate) enum Y {
    Str(String),
    /// Always quoted: expressions read best that way, as the channel format shows them.
    Expr(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    List(Vec<Y>),
    Map(Vec<(String, Y)>),
}

/// The channel as a YAML document.
pub fn to_yaml(channel: &Channel) -> String {
    let mut out = String::new();
    if let Y::Map(entries) = channel_to_y(channel) {
        write_entries(&mut out, &entries, 0);
    }
    out
}

struct MapBuilder(Vec<(String, Y)>);

impl MapBuilder {
    fn new() -> Self {
        MapBuilder(Vec::new())
    }
    fn put(&mut self, key: &str, value: Y) -> &mut Self {
        self.0.push((key.to_string(), value));
        self
    }
    fn opt(&mut self, key: &str, value: Option<Y>) -> &mut Self {
        if let Some(v) = value {
            self.put(key, v);
        }
        self
    }
    /// Lists and mappings are written only when they hold something.
    fn non_empty(&mut self, key: &str, value: Y) -> &mut Self {
        let empty = matches!(&value, Y::List(l) if l.is_empty())
            || matches!(&value, Y::Map(m) if m.is_empty());
        if !empty {
            self.put(key, value);
        }
        self
    }
    fn build(&mut self) -> Y {
        Y::Map(std::mem::take(&mut self.0))
    }
}

fn name(n: &Name) -> Y {
    Y::Str(n.value.clone())
}

fn names(ns: &[Name]) -> Y {
    Y::List(ns.iter().map(name).collect())
}

/// Whole numbers print without a fraction (`score: 80`); the decoder reads either form.
fn number(n: f64) -> Y {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        Y::Int(n as i64)
    } else {
        Y::Float(n)
    }
}

fn duration(d: Duration) -> Y {
    let s = d.seconds;
    let text = [(86_400, "d"), (3_600, "h"), (60, "m")]
        .iter()
        .find(|(unit, _)| s % unit == 0)
        .map_or_else(
            || format!("{s}s"),
            |(unit, suffix)| format!("{}{suffix}", s / unit),
        );
    Y::Str(text)
}

fn hold(h: &Hold) -> Y {
    match h {
        Hold::Forever => Y::Str("forever".into()),
        Hold::For(d) => duration(*d),
    }
}

fn date(d: &Date) -> Y {
    Y::Str(d.text.clone())
}

fn expr(e: &Expression) -> Y {
    Y::Expr(e.src.clone())
}

fn attributes(attrs: &[Attribute]) -> Y {
    Y::Map(
        attrs
            .iter()
            .map(|a| {
                let v = match &a.value.value {
                    Scalar::Bool(b) => Y::Bool(*b),
                    Scalar::Int(i) => Y::Int(*i),
                    Scalar::Float(f) => Y::Float(*f),
                    Scalar::String(s) => Y::Str(s.clone()),
                };
                (a.name.value.clone(), v)
            })
            .collect(),
    )
}

fn target(m: &mut MapBuilder, t: &Target) {
    match t {
        Target::Offers(codes) if codes.len() == 1 => m.put("offer", name(&codes[0])),
        Target::Offers(codes) => m.put("offers", names(codes)),
        Target::Category(c) => m.put("category", name(c)),
    };
}

pub(crate) fn channel_to_y(c: &Channel) -> Y {
    let mut m = MapBuilder::new();
    m.put("channel", name(&c.name));
    m.opt("description", c.description.clone().map(Y::Str));
    m.opt(
        "default_audience_level",
        c.default_audience_level.as_ref().map(name),
    );
    m.non_empty(
        "audience_levels",
        Y::Map(
            c.audience_levels
                .iter()
                .map(|l| (l.name.value.clone(), audience_level(l)))
                .collect(),
        ),
    );
    m.opt(
        "max_offer_contacts_per_visit",
        c.max_offer_contacts_per_visit.map(|v| Y::Int(v.value)),
    );
    m.opt(
        "control_group_percent",
        c.control_group_percent.map(|v| number(v.value)),
    );
    m.non_empty(
        "zones",
        Y::Map(
            c.zones
                .iter()
                .map(|z| (z.name.value.clone(), zone(z)))
                .collect(),
        ),
    );
    m.non_empty("categories", names(&c.categories));
    m.non_empty(
        "offers",
        Y::Map(
            c.offers
                .iter()
                .map(|o| (o.code.value.clone(), offer(o)))
                .collect(),
        ),
    );
    m.non_empty(
        "segments",
        Y::Map(
            c.segments
                .iter()
                .map(|s| (s.name.value.clone(), expr(&s.expr)))
                .collect(),
        ),
    );
    m.non_empty(
        "flowcharts",
        Y::Map(
            c.flowcharts
                .iter()
                .map(|f| {
                    let mut fm = MapBuilder::new();
                    fm.opt("audience_level", f.audience_level.as_ref().map(name));
                    fm.put("steps", steps(&f.steps));
                    (f.name.value.clone(), fm.build())
                })
                .collect(),
        ),
    );
    m.non_empty("rules", Y::List(c.rules.iter().map(rule).collect()));
    m.non_empty(
        "events",
        Y::Map(
            c.events
                .iter()
                .map(|e| {
                    (
                        e.name.value.clone(),
                        MapBuilder::new()
                            .put("actions", actions(&e.actions))
                            .build(),
                    )
                })
                .collect(),
        ),
    );
    m.non_empty(
        "event_patterns",
        Y::Map(
            c.event_patterns
                .iter()
                .map(|p| (p.name.value.clone(), pattern(p)))
                .collect(),
        ),
    );
    m.non_empty(
        "constraints",
        Y::List(
            c.constraints
                .iter()
                .map(|k| {
                    let mut km = MapBuilder::new();
                    target(&mut km, &k.target);
                    km.put("max_contacts", Y::Int(k.max_contacts.value));
                    km.opt("per", k.per.map(|p| duration(p.value)));
                    km.build()
                })
                .collect(),
        ),
    );
    if let Some(l) = &c.learning {
        let mut lm = MapBuilder::new();
        lm.put(
            "mode",
            Y::Str(match l.mode.value {
                LearningMode::Off => "off".into(),
                LearningMode::Thompson => "thompson".into(),
            }),
        );
        lm.opt(
            "explore_percent",
            l.explore_percent.map(|v| number(v.value)),
        );
        lm.opt("min_contacts", l.min_contacts.map(|v| Y::Int(v.value)));
        m.put("learning", lm.build());
    }
    m.build()
}

fn audience_level(l: &AudienceLevel) -> Y {
    let mut m = MapBuilder::new();
    m.put("id_fields", names(&l.id_fields));
    m.opt("profile_table", l.profile_table.as_ref().map(name));
    m.non_empty(
        "dimensions",
        Y::Map(
            l.dimensions
                .iter()
                .map(|d| {
                    (
                        d.name.value.clone(),
                        MapBuilder::new()
                            .put("table", name(&d.table))
                            .put("key", name(&d.key))
                            .build(),
                    )
                })
                .collect(),
        ),
    );
    m.build()
}

fn zone(z: &Zone) -> Y {
    let ips = z
        .interaction_points
        .iter()
        .map(|ip| {
            (
                ip.name.value.clone(),
                MapBuilder::new()
                    .opt("default", ip.default.clone().map(Y::Str))
                    .build(),
            )
        })
        .collect();
    MapBuilder::new()
        .put("interaction_points", Y::Map(ips))
        .build()
}

fn offer(o: &Offer) -> Y {
    let mut m = MapBuilder::new();
    m.opt("name", o.name.clone().map(Y::Str));
    m.opt("description", o.description.clone().map(Y::Str));
    m.opt("category", o.category.as_ref().map(name));
    m.non_empty("attributes", attributes(&o.attributes));
    m.opt("effective", o.effective.as_ref().map(|d| date(&d.value)));
    m.opt("expires", o.expires.as_ref().map(|d| date(&d.value)));
    if let Some(s) = &o.suppression {
        let mut sm = MapBuilder::new();
        sm.opt(
            "after_accept",
            s.after_accept.as_ref().map(|h| hold(&h.value)),
        );
        sm.opt(
            "after_reject",
            s.after_reject.as_ref().map(|h| hold(&h.value)),
        );
        sm.opt("max_contacts", s.max_contacts.map(|v| Y::Int(v.value)));
        sm.opt("within", s.within.map(|d| duration(d.value)));
        m.put("suppression", sm.build());
    }
    m.build()
}

fn steps(list: &[Step]) -> Y {
    Y::List(list.iter().map(step).collect())
}

fn step(s: &Step) -> Y {
    let (key, value) = match &s.kind {
        StepKind::Populate(segment) => ("populate", name(segment)),
        StepKind::Select(when) => ("select", MapBuilder::new().put("when", expr(when)).build()),
        StepKind::Decision(d) => {
            let mut m = MapBuilder::new();
            m.opt(
                "mode",
                d.mode.map(|mode| {
                    Y::Str(match mode.value {
                        DecisionMode::First => "first".into(),
                        DecisionMode::All => "all".into(),
                    })
                }),
            );
            m.put(
                "branches",
                Y::List(
                    d.branches
                        .iter()
                        .map(|b| {
                            MapBuilder::new()
                                .put("when", expr(&b.when))
                                .put("steps", steps(&b.steps))
                                .build()
                        })
                        .collect(),
                ),
            );
            m.opt("else", d.otherwise.as_deref().map(steps));
            ("decision", m.build())
        }
        StepKind::Sample(sample) => {
            let mut m = MapBuilder::new();
            m.opt("seed", sample.seed.clone().map(Y::Str));
            m.put(
                "splits",
                Y::Map(
                    sample
                        .splits
                        .iter()
                        .map(|s| (s.name.value.clone(), number(s.percent.value)))
                        .collect(),
                ),
            );
            m.put(
                "steps",
                Y::Map(
                    sample
                        .splits
                        .iter()
                        .map(|s| (s.name.value.clone(), steps(&s.steps)))
                        .collect(),
                ),
            );
            ("sample", m.build())
        }
    };
    MapBuilder::new().put(key, value).build()
}

fn rule(r: &Rule) -> Y {
    let mut m = MapBuilder::new();
    m.put("id", name(&r.id))
        .put("segment", name(&r.segment))
        .put("zone", name(&r.zone));
    match &r.offers {
        RuleOffers::One(code) => m.put("offer", name(code)),
        RuleOffers::List(codes) => m.put("offers", names(codes)),
    };
    m.opt(
        "pick",
        r.pick.map(|p| {
            Y::Str(match p.value {
                Pick::Best => "best".into(),
                Pick::Random => "random".into(),
            })
        }),
    );
    m.opt("score", r.score.map(|s| number(s.value)));
    m.opt("eligibility", r.eligibility.as_ref().map(expr));
    m.opt("score_expr", r.score_expr.as_ref().map(expr));
    m.non_empty("attributes", attributes(&r.attributes));
    m.opt("effective", r.effective.as_ref().map(|d| date(&d.value)));
    m.opt("expires", r.expires.as_ref().map(|d| date(&d.value)));
    m.opt("enabled", r.enabled.map(|e| Y::Bool(e.value)));
    m.build()
}

fn actions(list: &[Action]) -> Y {
    Y::List(list.iter().map(action).collect())
}

fn action(a: &Action) -> Y {
    let simple = match &a.kind {
        ActionKind::Resegment => Some("resegment"),
        ActionKind::LogContact => Some("log_contact"),
        ActionKind::LogAccept => Some("log_accept"),
        ActionKind::LogReject => Some("log_reject"),
        _ => None,
    };
    if let (Some(kind), None) = (simple, &a.when) {
        return Y::Str(kind.into());
    }
    let mut m = MapBuilder::new();
    match &a.kind {
        ActionKind::Set { field, expr: e } => m.put(
            "set",
            MapBuilder::new()
                .put("field", Y::Str(field.value.clone()))
                .put("expr", expr(e))
                .build(),
        ),
        ActionKind::Fire(event) => m.put("fire", name(event)),
        ActionKind::Suppress {
            target: t,
            duration: d,
        } => {
            let mut sm = MapBuilder::new();
            target(&mut sm, t);
            sm.put("for", duration(d.value));
            m.put("suppress", sm.build())
        }
        _ => m.put(simple.unwrap_or_default(), Y::Map(Vec::new())),
    };
    m.opt("when", a.when.as_ref().map(expr));
    m.build()
}

fn pattern(p: &EventPattern) -> Y {
    let mut m = MapBuilder::new();
    m.put(
        "kind",
        Y::Str(match p.kind.value {
            PatternKind::All => "all".into(),
            PatternKind::Counter => "counter".into(),
            PatternKind::Weighted => "weighted".into(),
        }),
    );
    m.put(
        "events",
        match &p.events {
            PatternEvents::List(list) => names(list),
            PatternEvents::Weighted(pairs) => Y::Map(
                pairs
                    .iter()
                    .map(|(n, w)| (n.value.clone(), number(w.value)))
                    .collect(),
            ),
        },
    );
    m.opt("count", p.count.map(|c| number(c.value)));
    m.opt("window", p.window.map(|w| duration(w.value)));
    m.opt("rolling", p.rolling.map(Y::Bool));
    m.non_empty("actions", actions(&p.actions));
    m.build()
}

/// The same value as JSON: the design API's form of a component.
pub(crate) fn to_json(y: Y) -> serde_json::Value {
    use serde_json::Value as J;
    match y {
        Y::Str(s) | Y::Expr(s) => J::String(s),
        Y::Int(i) => J::from(i),
        Y::Float(f) => J::from(f),
        Y::Bool(b) => J::Bool(b),
        Y::List(items) => J::Array(items.into_iter().map(to_json).collect()),
        Y::Map(entries) => J::Object(entries.into_iter().map(|(k, v)| (k, to_json(v))).collect()),
    }
}

// ---- layout ---------------------------------------------------------------------------------

const FLOW_WIDTH: usize = 72;

fn is_scalar(y: &Y) -> bool {
    !matches!(y, Y::List(_) | Y::Map(_))
}

/// The one-line form of a value, when it has a readable one.
fn flow(y: &Y) -> Option<String> {
    match y {
        Y::List(items) if items.iter().all(is_scalar) => Some(format!(
            "[{}]",
            items.iter().map(scalar).collect::<Vec<_>>().join(", ")
        )),
        Y::Map(entries) if entries.is_empty() => Some("{}".into()),
        Y::Map(entries)
            if entries
                .iter()
                .all(|(_, v)| is_scalar(v) || matches!(v, Y::Map(m) if m.is_empty())) =>
        {
            let inner: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{k}: {}", flow(v).unwrap_or_else(|| scalar(v))))
                .collect();
            let text = format!("{{ {} }}", inner.join(", "));
            (text.len() <= FLOW_WIDTH).then_some(text)
        }
        Y::List(_) | Y::Map(_) => None,
        other => Some(scalar(other)),
    }
}

fn scalar(y: &Y) -> String {
    match y {
        Y::Str(s) => quote_if_needed(s),
        Y::Expr(s) => quote(s),
        Y::Int(i) => i.to_string(),
        Y::Float(f) => format!("{f:?}"),
        Y::Bool(b) => b.to_string(),
        Y::List(_) | Y::Map(_) => unreachable!("only scalars reach scalar()"),
    }
}

fn write_entries(out: &mut String, entries: &[(String, Y)], indent: usize) {
    for (key, value) in entries {
        let _ = write!(out, "{:indent$}{key}:", "");
        write_value(out, value, indent);
    }
}

/// Writes a value after `key:` (or `- `), ending the line.
fn write_value(out: &mut String, value: &Y, indent: usize) {
    if let Some(text) = flow(value) {
        let _ = writeln!(out, " {text}");
        return;
    }
    out.push('\n');
    match value {
        Y::Map(entries) => write_entries(out, entries, indent + 2),
        Y::List(items) => write_items(out, items, indent + 2),
        _ => unreachable!("scalars always have a flow form"),
    }
}

fn write_items(out: &mut String, items: &[Y], indent: usize) {
    for item in items {
        let _ = write!(out, "{:indent$}-", "");
        match item {
            Y::Map(entries) if !entries.is_empty() => {
                // The first entry shares the dash's line; the rest align under it.
                let (first_key, first_value) = &entries[0];
                let _ = write!(out, " {first_key}:");
                write_value(out, first_value, indent + 2);
                write_entries(out, &entries[1..], indent + 2);
            }
            other => write_value(out, other, indent),
        }
    }
}

fn quote(s: &str) -> String {
    let needs_escapes = s.chars().any(|c| c.is_control() || c == '\\');
    if !needs_escapes && !s.contains('"') {
        return format!("\"{s}\"");
    }
    if !needs_escapes {
        return format!("'{}'", s.replace('\'', "''"));
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn quote_if_needed(s: &str) -> String {
    let reserved = [
        "true", "false", "True", "False", "TRUE", "FALSE", "null", "Null", "NULL", "~", "y", "Y",
        "n", "N", "yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
    ];
    let needs = s.is_empty()
        || s.starts_with(|c: char| c.is_whitespace() || "&*?|-<>=!%@`'\"#.{}[],:".contains(c))
        || s.ends_with(char::is_whitespace)
        || s.contains(|c: char| c.is_control() || "{}[],#:'\"\\`".contains(c))
        || reserved.contains(&s)
        || s.starts_with("0x")
        || s.parse::<f64>().is_ok()
        || s.parse::<i64>().is_ok();
    if needs { quote(s) } else { s.to_string() }
}
