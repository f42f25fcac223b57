//! The channel model: every object of an interactive channel, as the channel file and the
//! design environment describe it. Names keep their spelling; lookups compare them
//! case-insensitively.

use kairos_rules::time::Timestamp;

use crate::loc::{Loc, Located};

/// An identifier as written (`GOLD_CARD`), with its position.
pub type Name = Located<String>;

/// One touchpoint's whole configuration, deployed as a unit.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Channel {
    pub name: Name,
    pub description: Option<String>,
    pub default_audience_level: Option<Name>,
    pub audience_levels: Vec<AudienceLevel>,
    pub max_offer_contacts_per_visit: Option<Located<i64>>,
    pub control_group_percent: Option<Located<f64>>,
    pub zones: Vec<Zone>,
    pub categories: Vec<Name>,
    pub offers: Vec<Offer>,
    pub segments: Vec<Segment>,
    pub flowcharts: Vec<Flowchart>,
    pub rules: Vec<Rule>,
    pub events: Vec<Event>,
    pub event_patterns: Vec<EventPattern>,
    pub constraints: Vec<Constraint>,
    pub learning: Option<Learning>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AudienceLevel {
    pub name: Name,
    pub id_fields: Vec<Name>,
    pub profile_table: Option<Name>,
    pub dimensions: Vec<Dimension>,
}

/// Rows of `table` whose `key` matches the audience ID, joined into the profile as a list.
#[derive(Clone, Debug, PartialEq)]
pub struct Dimension {
    pub name: Name,
    pub table: Name,
    pub key: Name,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Zone {
    pub name: Name,
    pub interaction_points: Vec<InteractionPoint>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct InteractionPoint {
    pub name: Name,
    /// Served when no offer qualifies.
    pub default: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Offer {
    pub code: Name,
    pub name: Option<String>,
    pub description: Option<String>,
    pub category: Option<Name>,
    pub attributes: Vec<Attribute>,
    pub effective: Option<Located<Date>>,
    pub expires: Option<Located<Date>>,
    pub suppression: Option<Suppression>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Attribute {
    pub name: Name,
    pub value: Located<Scalar>,
}

/// A plain YAML value: offer attributes and their overrides.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
}

/// A calendar date or an instant, as written (`2026-12-31` or `2026-12-31T10:00:00Z`).
#[derive(Clone, Debug, PartialEq)]
pub struct Date {
    pub text: String,
    /// The start of the day for a date alone, else the instant.
    pub at: Timestamp,
    pub date_only: bool,
}

/// A span of time written `30s`, `10m`, `12h` or `30d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Duration {
    pub seconds: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Hold {
    Forever,
    For(Duration),
}

/// Per audience ID, kept across sessions.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Suppression {
    pub after_accept: Option<Located<Hold>>,
    pub after_reject: Option<Located<Hold>>,
    pub max_contacts: Option<Located<i64>>,
    pub within: Option<Located<Duration>>,
}

/// An expression in the rule language, with where its source starts in the file.
/// Equal when the source is: position and quoting are provenance, like [`Loc`].
#[derive(Clone, Debug)]
pub struct Expression {
    pub src: String,
    pub loc: Loc,
    /// Whether `src` starts right at `loc` (plain) or one column later (quoted); block
    /// scalars cannot be mapped column by column and point at their start.
    pub mapping: ExprMapping,
}

impl PartialEq for Expression {
    fn eq(&self, other: &Expression) -> bool {
        self.src == other.src
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExprMapping {
    Plain,
    Quoted,
    Block,
}

/// A segment defined by an expression over the visitor.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub name: Name,
    pub expr: Expression,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Flowchart {
    pub name: Name,
    pub audience_level: Option<Name>,
    pub steps: Vec<Step>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub kind: StepKind,
    pub loc: Loc,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StepKind {
    /// Branch by expression: first match wins, or every match with `mode: all`.
    Decision(Decision),
    /// Deterministic percentage split by hash of seed and audience ID.
    Sample(Sample),
    /// A filter: the steps after it in the same list run only for visitors it selects.
    Select(Expression),
    /// Put the visitor into a segment.
    Populate(Name),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecisionMode {
    First,
    All,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub mode: Option<Located<DecisionMode>>,
    pub branches: Vec<Branch>,
    pub otherwise: Option<Vec<Step>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Branch {
    pub when: Expression,
    pub steps: Vec<Step>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub seed: Option<String>,
    pub splits: Vec<Split>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    pub name: Name,
    pub percent: Located<f64>,
    pub steps: Vec<Step>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    Best,
    Random,
}

/// Segment x zone x offer(s): one treatment rule of the strategy.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub id: Name,
    /// A segment name or `*` (every visitor).
    pub segment: Name,
    /// A zone name or `*` (every zone).
    pub zone: Name,
    pub offers: RuleOffers,
    pub pick: Option<Located<Pick>>,
    pub score: Option<Located<f64>>,
    pub eligibility: Option<Expression>,
    pub score_expr: Option<Expression>,
    pub attributes: Vec<Attribute>,
    pub effective: Option<Located<Date>>,
    pub expires: Option<Located<Date>>,
    pub enabled: Option<Located<bool>>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RuleOffers {
    /// `offer: CODE`
    One(Name),
    /// `offers: [A, B]`
    List(Vec<Name>),
}

impl RuleOffers {
    pub fn codes(&self) -> &[Name] {
        match self {
            RuleOffers::One(code) => std::slice::from_ref(code),
            RuleOffers::List(codes) => codes,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub name: Name,
    pub actions: Vec<Action>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Action {
    pub kind: ActionKind,
    pub when: Option<Expression>,
    pub loc: Loc,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ActionKind {
    Resegment,
    LogContact,
    LogAccept,
    LogReject,
    /// `set: { field: session.cart_value, expr: "event.amount" }`
    Set {
        field: Name,
        expr: Expression,
    },
    /// Fire another event.
    Fire(Name),
    Suppress {
        target: Target,
        duration: Located<Duration>,
    },
}

impl ActionKind {
    pub const NAMES: [&str; 7] = [
        "resegment",
        "log_contact",
        "log_accept",
        "log_reject",
        "set",
        "fire",
        "suppress",
    ];
}

/// Offers named directly or by category.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    Offers(Vec<Name>),
    Category(Name),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatternKind {
    All,
    Counter,
    Weighted,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EventPattern {
    pub name: Name,
    pub kind: Located<PatternKind>,
    pub events: PatternEvents,
    pub count: Option<Located<f64>>,
    pub window: Option<Located<Duration>>,
    pub rolling: Option<bool>,
    pub actions: Vec<Action>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum PatternEvents {
    List(Vec<Name>),
    Weighted(Vec<(Name, Located<f64>)>),
}

impl PatternEvents {
    pub fn names(&self) -> Vec<&Name> {
        match self {
            PatternEvents::List(names) => names.iter().collect(),
            PatternEvents::Weighted(pairs) => pairs.iter().map(|(n, _)| n).collect(),
        }
    }
}

/// A cap across all visitors: at most `max_contacts` logged contacts per period.
#[derive(Clone, Debug, PartialEq)]
pub struct Constraint {
    pub target: Target,
    pub max_contacts: Located<i64>,
    pub per: Option<Located<Duration>>,
    pub loc: Loc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LearningMode {
    Off,
    Thompson,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Learning {
    pub mode: Located<LearningMode>,
    pub explore_percent: Option<Located<f64>>,
    pub min_contacts: Option<Located<i64>>,
}

impl Channel {
    /// Every segment name: expression segments first, then those flowcharts populate, in file
    /// order, each once (case-insensitively). Segment indices everywhere follow this order.
    pub fn segment_names(&self) -> Vec<&Name> {
        let mut names: Vec<&Name> = self.segments.iter().map(|s| &s.name).collect();
        for chart in &self.flowcharts {
            walk_steps(&chart.steps, &mut |step| {
                if let StepKind::Populate(segment) = &step.kind
                    && !names.iter().any(|n| same_name(&n.value, &segment.value))
                {
                    names.push(segment);
                }
            });
        }
        names
    }
}

/// Visits every step of a flowchart, depth first, in file order.
pub(crate) fn walk_steps<'c>(steps: &'c [Step], visit: &mut impl FnMut(&'c Step)) {
    for step in steps {
        visit(step);
        match &step.kind {
            StepKind::Decision(d) => {
                for branch in &d.branches {
                    walk_steps(&branch.steps, visit);
                }
                if let Some(otherwise) = &d.otherwise {
                    walk_steps(otherwise, visit);
                }
            }
            StepKind::Sample(s) => {
                for split in &s.splits {
                    walk_steps(&split.steps, visit);
                }
            }
            StepKind::Select(_) | StepKind::Populate(_) => {}
        }
    }
}

/// Case-insensitive identifier comparison, as the channel format specifies.
pub fn same_name(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}
