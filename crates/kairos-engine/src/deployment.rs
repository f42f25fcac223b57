//! Compile on deploy: a validated channel becomes an immutable [`Deployment`] where names are
//! indices, expressions are closures, dates are instants, and rules are indexed by zone and
//! segment. Nothing on the request path parses or looks a name up by string.

use std::collections::HashMap;
use std::sync::Arc;

use kairos_model::model::{self as m, ActionKind, Channel, Hold, Pick, StepKind, Target};
use kairos_model::{Loc, Schemas, channel_env, validate};
use kairos_rules::time::{NANOS_PER_SECOND, Timestamp};
use kairos_rules::{Env, Expected, Program, Root, Scope, Type, Value};

use crate::world::Origin;

#[derive(Debug, thiserror::Error)]
#[error("the channel is not valid: {}", .0.iter().map(|(l, m)| format!("{}:{}: {m}", l.line, l.col)).collect::<Vec<_>>().join("; "))]
pub struct CompileError(pub Vec<(Loc, String)>);

pub(crate) struct Level {
    pub name: String,
    pub id_fields: Vec<String>,
    pub profile_table: Option<String>,
    pub dimensions: Vec<m::Dimension>,
}

pub(crate) struct Ip {
    pub name: Arc<str>,
    pub zone: usize,
    pub default: Option<String>,
}

pub(crate) enum HoldFor {
    Forever,
    Seconds(i64),
}

pub(crate) struct Offer {
    pub code: Arc<str>,
    pub name: Option<Arc<str>>,
    pub category: Option<usize>,
    pub attributes: Vec<(String, Value)>,
    /// Values of the `offer.` slots (built-ins and attributes), for rule expressions.
    pub slots: Vec<Option<Value>>,
    pub effective: Option<Timestamp>,
    /// The first instant the offer is no longer valid.
    pub expires: Option<Timestamp>,
    pub after_accept: Option<HoldFor>,
    pub after_reject: Option<HoldFor>,
    pub max_contacts: Option<(u64, Option<i64>)>,
}

/// One offer as one rule serves it, fixed at deploy: every answer serving it shares it.
#[derive(Clone, Debug, PartialEq)]
pub struct Placement {
    /// Its position in [`Deployment::placements`], for callers keeping something per placement.
    pub index: usize,
    pub origin: Arc<Origin>,
    pub name: Option<Arc<str>>,
    /// The offer's attributes with the rule's overrides.
    pub attributes: Vec<(String, Value)>,
}

pub(crate) struct Rule {
    pub id: Arc<str>,
    pub segment: Option<usize>,
    pub offers: Vec<usize>,
    pub pick: Pick,
    pub score: f64,
    pub eligibility: Option<Program>,
    pub score_expr: Option<Program>,
    /// Attribute overrides by offer slot, for expressions.
    pub slot_overrides: Vec<(u32, Value)>,
    /// Per offer of `offers`: what serving it shows and logs.
    pub placements: Vec<Arc<Placement>>,
    pub effective: Option<Timestamp>,
    pub expires: Option<Timestamp>,
    pub enabled: bool,
}

/// The rules that can propose offers in one zone.
#[derive(Default)]
pub(crate) struct ZoneRules {
    /// Rules for every visitor (`segment: "*"`), in file order.
    pub any_segment: Vec<usize>,
    /// Rules per segment index, in file order.
    pub by_segment: Vec<Vec<usize>>,
}

pub(crate) enum Step {
    Decision {
        all: bool,
        branches: Vec<(Program, Vec<Step>)>,
        otherwise: Vec<Step>,
    },
    /// Splits as cumulative upper bounds in [0, 100].
    Sample {
        seed: String,
        splits: Vec<(f64, Vec<Step>)>,
    },
    Select(Program),
    /// Populate a segment; `branch` indexes [`Deployment::branches`], the path that led here.
    Populate {
        segment: usize,
        branch: usize,
    },
}

pub(crate) struct Flowchart {
    pub level: Option<usize>,
    pub steps: Vec<Step>,
}

pub(crate) enum Action {
    Resegment,
    LogContact,
    LogAccept,
    LogReject,
    SetSession {
        slot: u32,
        name: String,
        expr: Program,
    },
    SetProfile {
        slot: u32,
        name: String,
        expr: Program,
    },
    Fire(usize),
    Suppress {
        offers: Vec<String>,
        category: Option<String>,
        seconds: i64,
    },
}

pub(crate) struct GuardedAction {
    pub action: Action,
    pub when: Option<Program>,
}

pub(crate) struct Event {
    pub name: String,
    pub actions: Vec<GuardedAction>,
}

pub(crate) struct Pattern {
    pub name: String,
    pub kind: m::PatternKind,
    /// Event index -> weight (1 for all and counter).
    pub events: Vec<(usize, f64)>,
    pub event_names: Vec<String>,
    pub threshold: f64,
    pub window: Option<i64>,
    pub rolling: bool,
    pub actions: Vec<GuardedAction>,
}

pub(crate) struct Constraint {
    pub offers: Vec<usize>,
    pub max_contacts: u64,
    pub per_seconds: Option<i64>,
}

impl Constraint {
    /// Since when contacts count against this constraint at `now`: its period back, or
    /// forever without one.
    pub fn since(&self, now: Timestamp) -> Timestamp {
        match self.per_seconds {
            Some(s) => Timestamp(now.0.saturating_sub(s.saturating_mul(NANOS_PER_SECOND))),
            None => Timestamp(i64::MIN),
        }
    }
}

pub(crate) struct Learning {
    pub thompson: bool,
    /// Share of requests served with pure exploration, in [0, 1].
    pub explore: f64,
    pub min_contacts: u64,
}

/// A compiled, immutable version of one channel. Shared read-only by every request.
pub struct Deployment {
    pub channel: String,
    pub version: u64,
    pub(crate) env: Env,
    pub(crate) levels: Vec<Level>,
    pub(crate) default_level: Option<usize>,
    pub(crate) zones: Vec<Arc<str>>,
    pub(crate) ips: Vec<Ip>,
    pub(crate) ip_index: NameIndex,
    pub(crate) categories: Vec<Arc<str>>,
    pub(crate) offers: Vec<Offer>,
    pub(crate) segments: Vec<Arc<str>>,
    pub(crate) segment_exprs: Vec<(usize, Program)>,
    pub(crate) flowcharts: Vec<Flowchart>,
    pub(crate) rules: Vec<Rule>,
    pub(crate) zone_rules: Vec<ZoneRules>,
    pub(crate) events: Vec<Event>,
    pub(crate) event_index: NameIndex,
    pub(crate) patterns: Vec<Pattern>,
    pub(crate) patterns_by_event: Vec<Vec<usize>>,
    pub(crate) constraints: Vec<Constraint>,
    pub(crate) constraints_by_offer: Vec<Vec<usize>>,
    pub(crate) learning: Learning,
    pub(crate) control_group_percent: f64,
    pub(crate) max_contacts_per_visit: Option<u64>,
    /// The most offers one rule proposes: the size of arbitration's per-rule buffer.
    pub(crate) max_offers_per_rule: usize,
    /// Flowchart paths ending in a populate step, for segment-count reports.
    pub(crate) branches: Vec<String>,
}

impl std::fmt::Debug for Deployment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deployment")
            .field("channel", &self.channel)
            .field("version", &self.version)
            .field("offers", &self.offers.len())
            .field("rules", &self.rules.len())
            .finish_non_exhaustive()
    }
}

fn lower(s: &str) -> String {
    s.to_ascii_lowercase()
}

/// Names looked up case-insensitively: keys are stored lowercased, and a name already in
/// lowercase (the usual case on the request path) is found without copying it. The keys are
/// the channel's, fixed at deploy, so callers' names cannot flood one bucket: a fast fixed
/// hash serves (a lookup took 245 instructions with SipHash, 112 with it).
pub(crate) struct NameIndex(HashMap<String, usize, foldhash::fast::FixedState>);

impl NameIndex {
    pub(crate) fn find(&self, name: &str) -> Option<usize> {
        self.0
            .get(name)
            .or_else(|| self.0.get(&lower(name)))
            .copied()
    }
}

impl<'a> FromIterator<&'a str> for NameIndex {
    fn from_iter<I: IntoIterator<Item = &'a str>>(names: I) -> Self {
        NameIndex(
            names
                .into_iter()
                .enumerate()
                .map(|(i, n)| (lower(n), i))
                .collect(),
        )
    }
}

fn start_of(date: &Option<kairos_model::Located<m::Date>>) -> Option<Timestamp> {
    date.as_ref().map(|d| d.value.at)
}

/// A date alone means "through that day": the offer stops at the next midnight (UTC).
fn end_of(date: &Option<kairos_model::Located<m::Date>>) -> Option<Timestamp> {
    date.as_ref().map(|d| {
        if d.value.date_only {
            Timestamp(d.value.at.0.saturating_add(86_400 * NANOS_PER_SECOND))
        } else {
            d.value.at
        }
    })
}

fn hold(h: &Option<kairos_model::Located<Hold>>) -> Option<HoldFor> {
    h.as_ref().map(|h| match h.value {
        Hold::Forever => HoldFor::Forever,
        Hold::For(d) => HoldFor::Seconds(d.seconds),
    })
}

fn scalar_value(s: &m::Scalar) -> Value {
    match s {
        m::Scalar::Bool(b) => Value::Bool(*b),
        m::Scalar::Int(i) => Value::Int(*i),
        m::Scalar::Float(f) => Value::Double(*f),
        m::Scalar::String(s) => Value::string(s.as_str()),
    }
}

struct Compiler<'c> {
    env: Env,
    channel: &'c Channel,
    /// Labels of the flowchart paths that end in a populate step, for segment-count reports.
    branches: Vec<String>,
}

impl Compiler<'_> {
    fn expr(
        &mut self,
        e: &m::Expression,
        scope: Scope,
        expected: Expected,
    ) -> Result<Program, CompileError> {
        kairos_rules::compile(&e.src, &mut self.env, scope, expected).map_err(|err| {
            let located = kairos_model::expression_error_loc(e, &err);
            CompileError(vec![located])
        })
    }

    fn index_of(names: &[String], name: &str) -> usize {
        names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(name))
            .expect("validated reference")
    }

    /// Compiles a step list; `path` names where it sits ("main › profile.age < 30"). A select
    /// narrows the path of the steps after it.
    fn steps(
        &mut self,
        steps: &[m::Step],
        segments: &[String],
        path: &str,
    ) -> Result<Vec<Step>, CompileError> {
        let visitor = Scope::default();
        let mut path = path.to_string();
        let mut compiled = Vec::with_capacity(steps.len());
        for step in steps {
            compiled.push(match &step.kind {
                StepKind::Populate(name) => {
                    self.branches.push(format!("{path} → {}", name.value));
                    Step::Populate {
                        segment: Self::index_of(segments, &name.value),
                        branch: self.branches.len() - 1,
                    }
                }
                StepKind::Select(when) => {
                    path = format!("{path} › select {}", when.src);
                    Step::Select(self.expr(when, visitor, Expected::Bool)?)
                }
                StepKind::Decision(d) => {
                    let mut branches = Vec::with_capacity(d.branches.len());
                    for b in &d.branches {
                        let when = self.expr(&b.when, visitor, Expected::Bool)?;
                        branches.push((
                            when,
                            self.steps(&b.steps, segments, &format!("{path} › {}", b.when.src))?,
                        ));
                    }
                    let otherwise = match &d.otherwise {
                        Some(steps) => self.steps(steps, segments, &format!("{path} › else"))?,
                        None => Vec::new(),
                    };
                    Step::Decision {
                        all: d
                            .mode
                            .is_some_and(|mode| mode.value == m::DecisionMode::All),
                        branches,
                        otherwise,
                    }
                }
                StepKind::Sample(sample) => {
                    let mut upper = 0.0;
                    let mut splits = Vec::new();
                    for split in &sample.splits {
                        upper += split.percent.value;
                        let label =
                            format!("{path} › {}% {}", split.percent.value, split.name.value);
                        splits.push((upper, self.steps(&split.steps, segments, &label)?));
                    }
                    let seed = sample
                        .seed
                        .clone()
                        .unwrap_or_else(|| self.channel.name.value.clone());
                    Step::Sample { seed, splits }
                }
            });
        }
        Ok(compiled)
    }

    fn actions(
        &mut self,
        actions: &[m::Action],
        events: &[String],
    ) -> Result<Vec<GuardedAction>, CompileError> {
        let scope = Scope {
            event: true,
            offer: false,
        };
        actions
            .iter()
            .map(|a| {
                let when = a
                    .when
                    .as_ref()
                    .map(|w| self.expr(w, scope, Expected::Bool))
                    .transpose()?;
                let action = match &a.kind {
                    ActionKind::Resegment => Action::Resegment,
                    ActionKind::LogContact => Action::LogContact,
                    ActionKind::LogAccept => Action::LogAccept,
                    ActionKind::LogReject => Action::LogReject,
                    ActionKind::Fire(target) => Action::Fire(Self::index_of(events, &target.value)),
                    ActionKind::Set { field, expr } => {
                        let program = self.expr(expr, scope, Expected::Any)?;
                        let (root, name) = field.value.split_once('.').expect("validated field");
                        let root = if root == "profile" {
                            Root::Profile
                        } else {
                            Root::Session
                        };
                        let slot = match self.env.slot_of(root, name) {
                            Some(slot) => slot,
                            None => self.env.declare(root, name, Type::Dyn),
                        };
                        match root {
                            Root::Profile => Action::SetProfile {
                                slot,
                                name: name.to_string(),
                                expr: program,
                            },
                            _ => Action::SetSession {
                                slot,
                                name: name.to_string(),
                                expr: program,
                            },
                        }
                    }
                    ActionKind::Suppress { target, duration } => {
                        let (offers, category) = match target {
                            Target::Offers(codes) => {
                                (codes.iter().map(|c| lower(&c.value)).collect(), None)
                            }
                            Target::Category(c) => (Vec::new(), Some(lower(&c.value))),
                        };
                        Action::Suppress {
                            offers,
                            category,
                            seconds: duration.value.seconds,
                        }
                    }
                };
                Ok(GuardedAction { action, when })
            })
            .collect()
    }
}

/// The channel's audience levels, in file order.
fn levels(channel: &Channel) -> Vec<Level> {
    channel
        .audience_levels
        .iter()
        .map(|l| Level {
            name: l.name.value.clone(),
            id_fields: l.id_fields.iter().map(|f| f.value.clone()).collect(),
            profile_table: l.profile_table.as_ref().map(|t| t.value.clone()),
            dimensions: l.dimensions.clone(),
        })
        .collect()
}

/// Every interaction point, zone by zone, with its zone's index.
fn interaction_points(channel: &Channel) -> Vec<Ip> {
    let mut ips = Vec::new();
    for (zi, zone) in channel.zones.iter().enumerate() {
        for ip in &zone.interaction_points {
            ips.push(Ip {
                name: ip.name.value.as_str().into(),
                zone: zi,
                default: ip.default.clone(),
            });
        }
    }
    ips
}

/// An offer's `offer.` values in the slots `env` gives them.
fn offer_slots(
    env: &Env,
    code: &str,
    name: &Option<String>,
    category: &Option<String>,
    attributes: &[(String, Value)],
) -> Vec<Option<Value>> {
    let mut slots = vec![None; env.slots(Root::Offer).len()];
    let mut put = |field: &str, value: Value| {
        if let Some(slot) = env.slot_of(Root::Offer, field) {
            slots[slot as usize] = Some(value);
        }
    };
    put("code", Value::string(code));
    if let Some(name) = name {
        put("name", Value::string(name.as_str()));
    }
    if let Some(category) = category {
        put("category", Value::string(category.as_str()));
    }
    for (attr, value) in attributes {
        put(attr, value.clone());
    }
    slots
}

/// The channel's offers: dates as instants, suppression settings, `offer.` slot values.
fn offers(channel: &Channel, env: &Env, categories: &[String]) -> Vec<Offer> {
    channel
        .offers
        .iter()
        .map(|o| {
            let attributes: Vec<(String, Value)> = o
                .attributes
                .iter()
                .map(|a| (a.name.value.clone(), scalar_value(&a.value.value)))
                .collect();
            let category = o
                .category
                .as_ref()
                .map(|cat| Compiler::index_of(categories, &cat.value));
            let category_name = category.map(|i| categories[i].clone());
            let suppression = o.suppression.clone().unwrap_or_default();
            Offer {
                slots: offer_slots(env, &o.code.value, &o.name, &category_name, &attributes),
                code: o.code.value.as_str().into(),
                name: o.name.as_deref().map(Arc::from),
                category,
                attributes,
                effective: start_of(&o.effective),
                expires: end_of(&o.expires),
                after_accept: hold(&suppression.after_accept),
                after_reject: hold(&suppression.after_reject),
                max_contacts: suppression
                    .max_contacts
                    .map(|n| (n.value as u64, suppression.within.map(|w| w.value.seconds))),
            }
        })
        .collect()
}

impl Deployment {
    /// Validates and compiles `channel` as deployment number `version`.
    pub fn compile(
        channel: &Channel,
        schemas: &Schemas,
        version: u64,
    ) -> Result<Deployment, CompileError> {
        let errors = validate(channel, schemas);
        if !errors.is_empty() {
            return Err(CompileError(errors));
        }
        let segments: Vec<String> = channel
            .segment_names()
            .iter()
            .map(|n| n.value.clone())
            .collect();
        let segment_refs: Vec<&str> = segments.iter().map(String::as_str).collect();
        let mut c = Compiler {
            env: channel_env(channel, schemas, &segment_refs),
            channel,
            branches: Vec::new(),
        };

        let levels = levels(channel);
        let level_names: Vec<String> = levels.iter().map(|l| l.name.clone()).collect();
        let default_level = match &channel.default_audience_level {
            Some(name) => Some(Compiler::index_of(&level_names, &name.value)),
            None if levels.is_empty() => None,
            None => Some(0),
        };

        let zones: Vec<String> = channel.zones.iter().map(|z| z.name.value.clone()).collect();
        let ips = interaction_points(channel);
        let ip_index = ips.iter().map(|ip| &*ip.name).collect();
        let categories: Vec<String> = channel.categories.iter().map(|c| c.value.clone()).collect();

        let offers = offers(channel, &c.env, &categories);
        let offer_codes: Vec<String> = offers.iter().map(|o| o.code.to_string()).collect();

        let visitor = Scope::default();
        let mut segment_exprs = Vec::new();
        for s in &channel.segments {
            let program = c.expr(&s.expr, visitor, Expected::Bool)?;
            segment_exprs.push((Compiler::index_of(&segments, &s.name.value), program));
        }
        let mut flowcharts = Vec::new();
        for f in &channel.flowcharts {
            flowcharts.push(Flowchart {
                level: f
                    .audience_level
                    .as_ref()
                    .map(|l| Compiler::index_of(&level_names, &l.value)),
                steps: c.steps(&f.steps, &segments, &f.name.value)?,
            });
        }

        let category_names: Vec<Arc<str>> =
            categories.iter().map(|c| Arc::from(c.as_str())).collect();
        let segment_names: Vec<Arc<str>> = segments.iter().map(|n| Arc::from(n.as_str())).collect();
        let rule_scope = Scope {
            event: false,
            offer: true,
        };
        let mut placement_count = 0;
        let mut rules = Vec::new();
        let mut zone_rules: Vec<ZoneRules> = (0..zones.len())
            .map(|_| ZoneRules {
                any_segment: Vec::new(),
                by_segment: vec![Vec::new(); segments.len()],
            })
            .collect();
        for (ri, r) in channel.rules.iter().enumerate() {
            let segment =
                (r.segment.value != "*").then(|| Compiler::index_of(&segments, &r.segment.value));
            let zone = (r.zone.value != "*").then(|| Compiler::index_of(&zones, &r.zone.value));
            let attribute_overrides: Vec<(String, Value)> = r
                .attributes
                .iter()
                .map(|a| (a.name.value.clone(), scalar_value(&a.value.value)))
                .collect();
            let slot_overrides = attribute_overrides
                .iter()
                .filter_map(|(name, v)| {
                    c.env
                        .slot_of(Root::Offer, name)
                        .map(|slot| (slot, v.clone()))
                })
                .collect();
            let offer_indices: Vec<usize> = r
                .offers
                .codes()
                .iter()
                .map(|code| Compiler::index_of(&offer_codes, &code.value))
                .collect();
            let id: Arc<str> = r.id.value.as_str().into();
            // What each offer is served with: its attributes, then the rule's overrides.
            let placements = offer_indices
                .iter()
                .map(|&o| {
                    let offer = &offers[o];
                    let mut attributes = offer.attributes.clone();
                    for (name, value) in &attribute_overrides {
                        match attributes.iter_mut().find(|(n, _)| n == name) {
                            Some(slot) => slot.1 = value.clone(),
                            None => attributes.push((name.clone(), value.clone())),
                        }
                    }
                    let index = placement_count;
                    placement_count += 1;
                    Arc::new(Placement {
                        index,
                        origin: Arc::new(Origin {
                            offer: offer.code.clone(),
                            category: offer.category.map(|i| category_names[i].clone()),
                            rule: id.clone(),
                            segment: segment.map(|s| segment_names[s].clone()),
                        }),
                        name: offer.name.clone(),
                        attributes,
                    })
                })
                .collect();
            rules.push(Rule {
                id,
                segment,
                offers: offer_indices,
                pick: r.pick.map_or(Pick::Best, |p| p.value),
                score: r.score.map_or(DEFAULT_SCORE, |s| s.value),
                eligibility: r
                    .eligibility
                    .as_ref()
                    .map(|e| c.expr(e, rule_scope, Expected::Bool))
                    .transpose()?,
                score_expr: r
                    .score_expr
                    .as_ref()
                    .map(|e| c.expr(e, rule_scope, Expected::Number))
                    .transpose()?,
                slot_overrides,
                placements,
                effective: start_of(&r.effective),
                expires: end_of(&r.expires),
                enabled: r.enabled.is_none_or(|e| e.value),
            });
            for (zi, zr) in zone_rules.iter_mut().enumerate() {
                if zone.is_none_or(|z| z == zi) {
                    match segment {
                        None => zr.any_segment.push(ri),
                        Some(s) => zr.by_segment[s].push(ri),
                    }
                }
            }
        }

        let event_names: Vec<String> = channel
            .events
            .iter()
            .map(|e| e.name.value.clone())
            .collect();
        let mut events = Vec::new();
        for e in &channel.events {
            events.push(Event {
                name: e.name.value.clone(),
                actions: c.actions(&e.actions, &event_names)?,
            });
        }
        let event_index = event_names.iter().map(String::as_str).collect();
        let mut patterns = Vec::new();
        let mut patterns_by_event = vec![Vec::new(); events.len()];
        for (pi, p) in channel.event_patterns.iter().enumerate() {
            let pattern_events: Vec<(usize, f64)> = match &p.events {
                m::PatternEvents::List(names) => names
                    .iter()
                    .map(|n| (Compiler::index_of(&event_names, &n.value), 1.0))
                    .collect(),
                m::PatternEvents::Weighted(pairs) => pairs
                    .iter()
                    .map(|(n, w)| (Compiler::index_of(&event_names, &n.value), w.value))
                    .collect(),
            };
            for (event, _) in &pattern_events {
                patterns_by_event[*event].push(pi);
            }
            patterns.push(Pattern {
                name: p.name.value.clone(),
                kind: p.kind.value,
                threshold: p.count.map_or(pattern_events.len() as f64, |c| c.value),
                event_names: pattern_events
                    .iter()
                    .map(|(e, _)| event_names[*e].clone())
                    .collect(),
                events: pattern_events,
                window: p.window.map(|w| w.value.seconds),
                rolling: p.rolling.unwrap_or(false),
                actions: c.actions(&p.actions, &event_names)?,
            });
        }

        let constraints: Vec<Constraint> = channel
            .constraints
            .iter()
            .map(|k| Constraint {
                offers: match &k.target {
                    Target::Offers(codes) => codes
                        .iter()
                        .map(|code| Compiler::index_of(&offer_codes, &code.value))
                        .collect(),
                    Target::Category(cat) => {
                        let ci = Compiler::index_of(&categories, &cat.value);
                        (0..offers.len())
                            .filter(|&o| offers[o].category == Some(ci))
                            .collect()
                    }
                },
                max_contacts: k.max_contacts.value as u64,
                per_seconds: k.per.map(|p| p.value.seconds),
            })
            .collect();
        let mut constraints_by_offer = vec![Vec::new(); offers.len()];
        for (ki, k) in constraints.iter().enumerate() {
            for &o in &k.offers {
                constraints_by_offer[o].push(ki);
            }
        }
        let learning = match &channel.learning {
            Some(l) if l.mode.value == m::LearningMode::Thompson => Learning {
                thompson: true,
                explore: l.explore_percent.map_or(0.0, |p| p.value / 100.0),
                min_contacts: l
                    .min_contacts
                    .map_or(DEFAULT_MIN_CONTACTS, |n| n.value as u64),
            },
            _ => Learning {
                thompson: false,
                explore: 0.0,
                min_contacts: DEFAULT_MIN_CONTACTS,
            },
        };

        let max_offers_per_rule = rules.iter().map(|r| r.offers.len()).max().unwrap_or(0);
        Ok(Deployment {
            channel: channel.name.value.clone(),
            version,
            env: c.env,
            levels,
            default_level,
            zones: zones.iter().map(|z| Arc::from(z.as_str())).collect(),
            ips,
            ip_index,
            categories: category_names,
            offers,
            segments: segment_names,
            segment_exprs,
            flowcharts,
            rules,
            zone_rules,
            events,
            event_index,
            patterns,
            patterns_by_event,
            constraints,
            constraints_by_offer,
            learning,
            control_group_percent: channel.control_group_percent.map_or(0.0, |p| p.value),
            max_contacts_per_visit: channel.max_offer_contacts_per_visit.map(|n| n.value as u64),
            max_offers_per_rule,
            branches: c.branches,
        })
    }

    /// The level a session gets when the caller names none.
    pub fn default_audience_level(&self) -> Option<&str> {
        self.default_level.map(|i| self.levels[i].name.as_str())
    }

    /// The audience levels' names, in channel order.
    pub fn audience_levels(&self) -> impl Iterator<Item = &str> {
        self.levels.iter().map(|l| l.name.as_str())
    }

    /// The tables a level's sessions load their profile from.
    pub fn profile_tables(&self, level: &str) -> Option<ProfileTables<'_>> {
        let l = self
            .levels
            .iter()
            .find(|l| l.name.eq_ignore_ascii_case(level))?;
        Some(ProfileTables {
            table: l.profile_table.as_deref(),
            id_fields: &l.id_fields,
            dimensions: l
                .dimensions
                .iter()
                .map(|d| DimensionTable {
                    name: &d.name.value,
                    table: &d.table.value,
                    key: &d.key.value,
                })
                .collect(),
        })
    }

    /// Where `audience`'s profile is: its row in the level's profile table by the first ID
    /// field, then its dimension rows. `None` for a level without a profile table.
    pub fn profile_query(&self, audience: &crate::world::AudienceId) -> Option<ProfileQuery<'_>> {
        let tables = self.profile_tables(&audience.level)?;
        let id_field = tables.id_fields.first()?;
        let (_, value) = audience
            .fields
            .iter()
            .find(|(f, _)| f.eq_ignore_ascii_case(id_field))?;
        Some(ProfileQuery {
            table: tables.table?,
            id_field,
            id: crate::world::id_text(value),
            dimensions: tables.dimensions,
        })
    }

    /// Every offer of every rule as served, in index order.
    pub fn placements(&self) -> impl Iterator<Item = &Arc<Placement>> {
        self.rules.iter().flat_map(|r| &r.placements)
    }

    pub fn has_interaction_point(&self, name: &str) -> bool {
        self.ip_index.find(name).is_some()
    }

    pub fn has_event(&self, name: &str) -> bool {
        self.event_index.find(name).is_some()
    }

    /// The offers' codes, in channel order.
    pub fn offer_codes(&self) -> impl Iterator<Item = &str> {
        self.offers.iter().map(|o| &*o.code)
    }

    /// The segments (defined, and populated by flowcharts), in deployment order.
    pub fn segment_names(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().map(|s| &**s)
    }

    /// The interaction points, in channel order.
    pub fn interaction_points(&self) -> impl Iterator<Item = &str> {
        self.ips.iter().map(|ip| &*ip.name)
    }

    /// The events, in channel order, each with whether it logs a contact (directly).
    pub fn events(&self) -> impl Iterator<Item = (&str, bool)> {
        self.events.iter().map(|e| {
            (
                e.name.as_str(),
                e.actions
                    .iter()
                    .any(|a| matches!(a.action, Action::LogContact)),
            )
        })
    }

    pub fn offer_count(&self) -> usize {
        self.offers.len()
    }

    /// Every (offer, since) whose contact count a get offers at `now` may ask of
    /// [`World::offer_contacts_since`](crate::world::World::offer_contacts_since): one per
    /// offer of each global constraint. A shell that keeps these counts away from the process
    /// (shared by a server group) fetches them before deciding.
    pub fn constraint_windows(&self, now: Timestamp) -> impl Iterator<Item = (&str, Timestamp)> {
        self.constraints.iter().flat_map(move |k| {
            let since = k.since(now);
            k.offers
                .iter()
                .map(move |&o| (&*self.offers[o].code, since))
        })
    }
}

/// Where a level's profile comes from: one row of `table` by audience ID, plus dimension rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileTables<'a> {
    pub table: Option<&'a str>,
    pub id_fields: &'a [String],
    pub dimensions: Vec<DimensionTable<'a>>,
}

/// How to load one visitor's profile (see [`Deployment::profile_query`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileQuery<'a> {
    pub table: &'a str,
    pub id_field: &'a str,
    /// The ID value as text, whatever type it arrived as.
    pub id: String,
    pub dimensions: Vec<DimensionTable<'a>>,
}

/// Rows of `table` whose `key` column equals the audience ID, joined as the list `name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DimensionTable<'a> {
    pub name: &'a str,
    pub table: &'a str,
    pub key: &'a str,
}

/// A rule without `score` proposes its offers at the middle of the 0..100 scale.
pub const DEFAULT_SCORE: f64 = 50.0;
/// Learning leaves an offer's order alone until it has this many contacts.
pub const DEFAULT_MIN_CONTACTS: u64 = 50;

#[cfg(test)]
mod tests {
    use super::NameIndex;

    #[test]
    fn names_are_found_whatever_their_case() {
        let index: NameIndex = ["Hero", "sidebar"].into_iter().collect();
        assert_eq!(index.find("hero"), Some(0));
        assert_eq!(index.find("HERO"), Some(0));
        assert_eq!(index.find("Sidebar"), Some(1));
        assert_eq!(index.find("sidebar"), Some(1));
        assert_eq!(index.find("footer"), None);
    }
}
