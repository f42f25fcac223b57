//! Cross-object checks of a decoded channel: unique names, references that resolve, dates in
//! order, `fire` without cycles, and every expression type-checked in the scope it runs in.

use std::collections::{HashMap, HashSet};

use kairos_rules::{Env, Expected, Root, Scope, Type};

use crate::loc::{Loc, Located};
use crate::model::*;
use crate::table::TableSchema;

/// Known table schemas by table name (case-insensitive), for type checking `profile.<field>`.
#[derive(Clone, Debug, Default)]
pub struct Schemas {
    tables: HashMap<String, TableSchema>,
}

impl Schemas {
    pub fn new() -> Self {
        Schemas::default()
    }

    pub fn insert(&mut self, schema: TableSchema) {
        self.tables.insert(schema.name.to_ascii_lowercase(), schema);
    }

    pub fn get(&self, table: &str) -> Option<&TableSchema> {
        self.tables.get(&table.to_ascii_lowercase())
    }
}

/// Names of one kind, for duplicate detection and reference resolution.
struct Names<'c> {
    kind: &'static str,
    by_lower: HashMap<String, &'c Name>,
}

impl<'c> Names<'c> {
    fn collect(
        kind: &'static str,
        names: impl IntoIterator<Item = &'c Name>,
        errors: &mut Vec<(Loc, String)>,
    ) -> Self {
        let mut by_lower: HashMap<String, &'c Name> = HashMap::new();
        for name in names {
            let key = name.value.to_ascii_lowercase();
            match by_lower.get(&key) {
                Some(first) => errors.push((
                    name.loc,
                    format!(
                        "duplicate {kind} '{}' (first defined at line {})",
                        name.value, first.loc.line
                    ),
                )),
                None => {
                    by_lower.insert(key, name);
                }
            }
        }
        Names { kind, by_lower }
    }

    fn contains(&self, name: &str) -> bool {
        self.by_lower.contains_key(&name.to_ascii_lowercase())
    }

    /// Reports a reference to a name of this kind that does not exist.
    fn check(&self, reference: &Name, errors: &mut Vec<(Loc, String)>) {
        if self.contains(&reference.value) {
            return;
        }
        let known = self.by_lower.values().map(|n| n.value.as_str());
        let message = match kairos_rules::closest(&reference.value, known) {
            Some(s) => format!(
                "unknown {} '{}' (did you mean '{s}'?)",
                self.kind, reference.value
            ),
            None if self.by_lower.is_empty() => {
                format!(
                    "unknown {} '{}': the channel defines none",
                    self.kind, reference.value
                )
            }
            None => format!("unknown {} '{}'", self.kind, reference.value),
        };
        errors.push((reference.loc, message));
    }

    fn check_or_any(&self, reference: &Name, errors: &mut Vec<(Loc, String)>) {
        if reference.value != "*" {
            self.check(reference, errors);
        }
    }
}

/// Every problem of the channel, each with its location.
pub fn validate(channel: &Channel, schemas: &Schemas) -> Vec<(Loc, String)> {
    let mut errors = Vec::new();
    let e = &mut errors;

    let levels = Names::collect(
        "audience level",
        channel.audience_levels.iter().map(|l| &l.name),
        e,
    );
    let zones = Names::collect("zone", channel.zones.iter().map(|z| &z.name), e);
    Names::collect(
        "interaction point",
        channel
            .zones
            .iter()
            .flat_map(|z| z.interaction_points.iter().map(|ip| &ip.name)),
        e,
    );
    let categories = Names::collect("category", channel.categories.iter(), e);
    let offers = Names::collect("offer", channel.offers.iter().map(|o| &o.code), e);
    let events = Names::collect("event", channel.events.iter().map(|ev| &ev.name), e);
    Names::collect(
        "event pattern",
        channel.event_patterns.iter().map(|p| &p.name),
        e,
    );
    Names::collect("flowchart", channel.flowcharts.iter().map(|f| &f.name), e);
    Names::collect("rule id", channel.rules.iter().map(|r| &r.id), e);
    let expression_segments =
        Names::collect("segment", channel.segments.iter().map(|s| &s.name), e);

    for level in &channel.audience_levels {
        Names::collect("ID field", level.id_fields.iter(), e);
        Names::collect("dimension", level.dimensions.iter().map(|d| &d.name), e);
    }
    if let Some(default) = &channel.default_audience_level {
        levels.check(default, e);
    }
    for offer in &channel.offers {
        Names::collect("attribute", offer.attributes.iter().map(|a| &a.name), e);
        if let Some(category) = &offer.category {
            categories.check(category, e);
        }
        check_dates(&offer.effective, &offer.expires, e);
    }

    // Segments are defined by expressions or by flowcharts' populate steps.
    let mut populated: Vec<&Name> = Vec::new();
    for chart in &channel.flowcharts {
        if let Some(level) = &chart.audience_level {
            levels.check(level, e);
        }
        walk_steps(&chart.steps, &mut |step| {
            if let StepKind::Populate(segment) = &step.kind {
                populated.push(segment);
            }
        });
    }
    for segment in &populated {
        if let Some(defined) = expression_segments
            .by_lower
            .get(&segment.value.to_ascii_lowercase())
        {
            e.push((
                segment.loc,
                format!(
                    "segment '{}' is defined by an expression (line {}); a flowchart cannot also populate it",
                    segment.value, defined.loc.line
                ),
            ));
        }
    }
    let all_segments = channel.segment_names();
    let segments = Names {
        kind: "segment",
        by_lower: all_segments
            .iter()
            .map(|n| (n.value.to_ascii_lowercase(), *n))
            .collect(),
    };

    for rule in &channel.rules {
        segments.check_or_any(&rule.segment, e);
        zones.check_or_any(&rule.zone, e);
        for code in rule.offers.codes() {
            offers.check(code, e);
        }
        Names::collect("attribute", rule.attributes.iter().map(|a| &a.name), e);
        check_dates(&rule.effective, &rule.expires, e);
    }

    let check_target = |target: &Target, e: &mut Vec<(Loc, String)>| match target {
        Target::Offers(codes) => codes.iter().for_each(|c| offers.check(c, e)),
        Target::Category(c) => categories.check(c, e),
    };
    for constraint in &channel.constraints {
        check_target(&constraint.target, e);
    }
    let all_actions = channel
        .events
        .iter()
        .flat_map(|ev| &ev.actions)
        .chain(channel.event_patterns.iter().flat_map(|p| &p.actions));
    for action in all_actions {
        match &action.kind {
            ActionKind::Fire(target) => events.check(target, e),
            ActionKind::Suppress { target, .. } => check_target(target, e),
            _ => {}
        }
    }
    for pattern in &channel.event_patterns {
        let names = pattern.events.names();
        Names::collect("event in this pattern", names.iter().copied(), e);
        for name in names {
            events.check(name, e);
        }
    }
    check_fire_cycles(channel, &events, e);

    let segment_names: Vec<&str> = all_segments.iter().map(|n| n.value.as_str()).collect();
    check_expressions(channel, schemas, &segment_names, e);
    errors
}

fn check_dates(
    effective: &Option<Located<Date>>,
    expires: &Option<Located<Date>>,
    e: &mut Vec<(Loc, String)>,
) {
    if let (Some(from), Some(to)) = (effective, expires)
        && from.value.at >= to.value.at
        && !(from.value.date_only && to.value.date_only && from.value.at == to.value.at)
    {
        e.push((
            to.loc,
            format!(
                "expires ({}) is not after effective ({})",
                to.value.text, from.value.text
            ),
        ));
    }
}

/// `fire` must not loop: an event that fires itself, directly or through others, would never
/// finish.
fn check_fire_cycles(channel: &Channel, events: &Names<'_>, e: &mut Vec<(Loc, String)>) {
    let edges: HashMap<String, Vec<&Name>> = channel
        .events
        .iter()
        .map(|ev| {
            let fired = ev.actions.iter().filter_map(|a| match &a.kind {
                ActionKind::Fire(target) if events.contains(&target.value) => Some(target),
                _ => None,
            });
            (ev.name.value.to_ascii_lowercase(), fired.collect())
        })
        .collect();
    let mut reported: HashSet<String> = HashSet::new();
    for start in &channel.events {
        let start_key = start.name.value.to_ascii_lowercase();
        // Depth-first search for a path back to `start`.
        let mut stack: Vec<(String, Vec<&Name>)> = vec![(start_key.clone(), Vec::new())];
        let mut visited: HashSet<String> = HashSet::new();
        while let Some((node, path)) = stack.pop() {
            for target in edges.get(&node).into_iter().flatten() {
                let key = target.value.to_ascii_lowercase();
                let mut next_path = path.clone();
                next_path.push(*target);
                if key == start_key {
                    if reported.insert(start_key.clone()) {
                        let chain: Vec<&str> = std::iter::once(start.name.value.as_str())
                            .chain(next_path.iter().map(|n| n.value.as_str()))
                            .collect();
                        e.push((
                            next_path[0].loc,
                            format!(
                                "event '{}' fires itself: {}",
                                start.name.value,
                                chain.join(" -> ")
                            ),
                        ));
                    }
                } else if visited.insert(key.clone()) {
                    stack.push((key, next_path));
                }
            }
        }
    }
}

/// The expression environment of a channel: profile fields from the known table schemas,
/// offer attributes, pattern names and segment names.
pub fn channel_env(channel: &Channel, schemas: &Schemas, segments: &[&str]) -> Env {
    let mut env = Env::new();
    let mut profile_types: HashMap<String, Type> = HashMap::new();
    let mut all_known = !channel.audience_levels.is_empty();
    let mut merge = |name: &str, ty: Type| {
        let joined = match profile_types.get(name) {
            Some(existing) => existing.join(&ty),
            None => ty,
        };
        profile_types.insert(name.to_string(), joined);
    };
    for level in &channel.audience_levels {
        for id in &level.id_fields {
            merge(&id.value, Type::Dyn);
        }
        match level.profile_table.as_ref().map(|t| schemas.get(&t.value)) {
            Some(Some(schema)) => {
                for column in &schema.columns {
                    merge(&column.name, column.ty.expr_type());
                }
            }
            Some(None) => all_known = false,
            None => {}
        }
        for dim in &level.dimensions {
            merge(
                &dim.name.value,
                Type::List(Box::new(Type::Map(
                    Box::new(Type::String),
                    Box::new(Type::Dyn),
                ))),
            );
        }
    }
    // ID fields typed by the schema where one knows them.
    let mut names: Vec<&String> = profile_types.keys().collect();
    names.sort();
    for name in names {
        env.declare(Root::Profile, name, profile_types[name].clone());
    }
    if all_known {
        env.close(Root::Profile);
    }

    let mut attribute_types: HashMap<&str, Type> = HashMap::new();
    let attributes = channel
        .offers
        .iter()
        .flat_map(|o| &o.attributes)
        .chain(channel.rules.iter().flat_map(|r| &r.attributes));
    for attribute in attributes {
        let ty = match &attribute.value.value {
            Scalar::Bool(_) => Type::Bool,
            Scalar::Int(_) => Type::Int,
            Scalar::Float(_) => Type::Double,
            Scalar::String(_) => Type::String,
        };
        let entry = attribute_types
            .entry(&attribute.name.value)
            .or_insert(ty.clone());
        // An attribute written 19 on one offer and 19.9 on another is a number either way.
        *entry = if entry.is_numeric() && ty.is_numeric() && *entry != ty {
            Type::Double
        } else {
            entry.join(&ty)
        };
    }
    for builtin in ["code", "name", "category"] {
        env.declare(Root::Offer, builtin, Type::String);
    }
    let mut attrs: Vec<(&&str, &Type)> = attribute_types.iter().collect();
    attrs.sort_by_key(|(name, _)| **name);
    for (name, ty) in attrs {
        env.declare(Root::Offer, name, ty.clone());
    }
    env.close(Root::Offer);

    for pattern in &channel.event_patterns {
        env.declare(Root::Patterns, &pattern.name.value, Type::Bool);
    }
    env.close(Root::Patterns);
    env.set_segments(segments.iter().copied());
    env
}

/// Where an expression error lands in the file.
pub fn expression_error_loc(expr: &Expression, error: &kairos_rules::ExprError) -> (Loc, String) {
    let (line, col) = error.line_col(&expr.src);
    let single_line = !expr.src.contains('\n');
    match expr.mapping {
        ExprMapping::Plain if single_line => (
            Loc::new(expr.loc.line, expr.loc.col + col as u32 - 1),
            error.message.clone(),
        ),
        ExprMapping::Quoted if single_line => (
            Loc::new(expr.loc.line, expr.loc.col + col as u32),
            error.message.clone(),
        ),
        _ => (
            expr.loc,
            format!(
                "{} (line {line}, column {col} of the expression)",
                error.message
            ),
        ),
    }
}

fn check_expressions(
    channel: &Channel,
    schemas: &Schemas,
    segments: &[&str],
    e: &mut Vec<(Loc, String)>,
) {
    fn check(
        env: &mut Env,
        expr: &Expression,
        scope: Scope,
        expected: Expected,
        e: &mut Vec<(Loc, String)>,
    ) {
        if let Err(error) = kairos_rules::compile(&expr.src, env, scope, expected) {
            e.push(expression_error_loc(expr, &error));
        }
    }
    let env = &mut channel_env(channel, schemas, segments);
    let visitor = Scope::default();
    let event = Scope {
        event: true,
        offer: false,
    };
    let rule = Scope {
        event: false,
        offer: true,
    };
    for segment in &channel.segments {
        check(env, &segment.expr, visitor, Expected::Bool, e);
    }
    for chart in &channel.flowcharts {
        walk_steps(&chart.steps, &mut |step| match &step.kind {
            StepKind::Decision(d) => {
                for branch in &d.branches {
                    check(env, &branch.when, visitor, Expected::Bool, e);
                }
            }
            StepKind::Select(when) => check(env, when, visitor, Expected::Bool, e),
            _ => {}
        });
    }
    for r in &channel.rules {
        if let Some(x) = &r.eligibility {
            check(env, x, rule, Expected::Bool, e);
        }
        if let Some(x) = &r.score_expr {
            check(env, x, rule, Expected::Number, e);
        }
    }
    let actions = channel
        .events
        .iter()
        .flat_map(|ev| &ev.actions)
        .chain(channel.event_patterns.iter().flat_map(|p| &p.actions));
    for action in actions {
        if let Some(when) = &action.when {
            check(env, when, event, Expected::Bool, e);
        }
        if let ActionKind::Set { field, expr } = &action.kind {
            check(env, expr, event, Expected::Any, e);
            // Writing a profile field the profile table does not have is a typo.
            if field.value.starts_with("profile.")
                && let Err(err) = kairos_rules::compile(&field.value, env, visitor, Expected::Any)
            {
                e.push((
                    field.loc,
                    format!("cannot set {}: {}", field.value, err.message),
                ));
            }
        }
    }
}
