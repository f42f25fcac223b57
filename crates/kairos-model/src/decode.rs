//! From a located YAML tree to the channel model. Shape and range errors are collected, never
//! returned early: the author sees every problem of the file at once.

use kairos_rules::time::{parse_duration, parse_instant};

use crate::loc::{Loc, Located};
use crate::model::*;
use crate::yaml::{Node, NodeKind, ScalarStyle};

pub(crate) struct Decoder {
    pub errors: Vec<(Loc, String)>,
}

pub(crate) type Entries<'a> = &'a [(Node, Node)];

impl Decoder {
    pub fn new() -> Self {
        Decoder { errors: Vec::new() }
    }

    pub(crate) fn error(&mut self, loc: Loc, message: impl Into<String>) {
        self.errors.push((loc, message.into()));
    }

    /// Whether errors were reported since the error count was `before`.
    fn failed_since(&self, before: usize) -> bool {
        self.errors.len() > before
    }

    pub fn channel(&mut self, root: &Node) -> Channel {
        let mut channel = Channel::default();
        let Some(entries) = self.map(root, "a channel file") else {
            return channel;
        };
        let mut name = None;
        for (key, value) in entries {
            let Some(k) = self.key(key) else { continue };
            match k {
                "channel" => name = self.ident(value, "the channel name"),
                "description" => channel.description = self.string(value, "description"),
                "default_audience_level" => {
                    channel.default_audience_level = self.ident(value, "default_audience_level")
                }
                "audience_levels" => {
                    channel.audience_levels =
                        self.named_map(value, "audience_levels", Self::audience_level)
                }
                "max_offer_contacts_per_visit" => {
                    channel.max_offer_contacts_per_visit = self.int_in(value, k, 1, i64::MAX)
                }
                "control_group_percent" => channel.control_group_percent = self.percent(value, k),
                "zones" => channel.zones = self.named_map(value, "zones", Self::zone),
                "categories" => {
                    channel.categories =
                        self.list(value, "categories", |d, n| d.ident(n, "a category"))
                }
                "offers" => channel.offers = self.named_map(value, "offers", Self::offer),
                "segments" => {
                    channel.segments = self.named_map(value, "segments", |d, name, node| {
                        d.expression(node, "a segment expression")
                            .map(|expr| Segment { name, expr })
                    })
                }
                "flowcharts" => {
                    channel.flowcharts = self.named_map(value, "flowcharts", Self::flowchart)
                }
                "rules" => channel.rules = self.list(value, "rules", Self::rule),
                "events" => channel.events = self.named_map(value, "events", Self::event),
                "event_patterns" => {
                    channel.event_patterns = self.named_map(value, "event_patterns", Self::pattern)
                }
                "constraints" => {
                    channel.constraints = self.list(value, "constraints", Self::constraint)
                }
                "learning" => channel.learning = self.learning(value),
                other => self.unknown_key(key.loc, other, "a channel", CHANNEL_KEYS),
            }
        }
        match name {
            Some(n) => channel.name = n,
            None if !has_key(entries, "channel") => {
                self.error(root.loc, "the channel needs a name: add 'channel: <name>'")
            }
            None => {}
        }
        channel
    }

    // ---- generic shapes -------------------------------------------------------------------

    pub(crate) fn map<'a>(&mut self, node: &'a Node, what: &str) -> Option<Entries<'a>> {
        match &node.kind {
            NodeKind::Map(entries) => Some(entries),
            _ if node.is_null() => Some(&[]),
            _ => {
                self.error(
                    node.loc,
                    format!("{what} must be a mapping, found {}", node.describe()),
                );
                None
            }
        }
    }

    pub(crate) fn key<'a>(&mut self, key: &'a Node) -> Option<&'a str> {
        match &key.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => {
                self.error(key.loc, "a key must be a plain name");
                None
            }
        }
    }

    pub(crate) fn unknown_key(&mut self, loc: Loc, key: &str, what: &str, known: &[&str]) {
        let message = match kairos_rules::closest(key, known.iter().copied()) {
            Some(s) => format!("unknown key '{key}' in {what} (did you mean '{s}'?)"),
            None => format!(
                "unknown key '{key}' in {what}; expected one of: {}",
                known.join(", ")
            ),
        };
        self.error(loc, message);
    }

    /// A mapping of identifier -> object, decoded in file order.
    pub(crate) fn named_map<T>(
        &mut self,
        node: &Node,
        what: &str,
        mut item: impl FnMut(&mut Self, Name, &Node) -> Option<T>,
    ) -> Vec<T> {
        let Some(entries) = self.map(node, what) else {
            return Vec::new();
        };
        entries
            .iter()
            .filter_map(|(k, v)| {
                let name = self.ident(k, "a name")?;
                item(self, name, v)
            })
            .collect()
    }

    pub(crate) fn list<T>(
        &mut self,
        node: &Node,
        what: &str,
        mut item: impl FnMut(&mut Self, &Node) -> Option<T>,
    ) -> Vec<T> {
        match &node.kind {
            NodeKind::Seq(items) => items.iter().filter_map(|n| item(self, n)).collect(),
            _ if node.is_null() => Vec::new(),
            _ => {
                self.error(
                    node.loc,
                    format!("{what} must be a list, found {}", node.describe()),
                );
                Vec::new()
            }
        }
    }

    pub(crate) fn scalar<'a>(
        &mut self,
        node: &'a Node,
        what: &str,
    ) -> Option<(&'a str, ScalarStyle)> {
        match &node.kind {
            NodeKind::Scalar { text, style } => Some((text, *style)),
            _ => {
                self.error(
                    node.loc,
                    format!("{what} must be a single value, found {}", node.describe()),
                );
                None
            }
        }
    }

    pub(crate) fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        if node.is_null() {
            return None;
        }
        self.scalar(node, what).map(|(s, _)| s.to_string())
    }

    pub(crate) fn ident(&mut self, node: &Node, what: &str) -> Option<Name> {
        let (text, _) = self.scalar(node, what)?;
        let mut chars = text.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            let shown = if text.is_empty() {
                "an empty name".to_string()
            } else {
                format!("'{text}'")
            };
            self.error(node.loc, format!("{shown} is not a valid name for {what}: start with a letter, then letters, digits or _"));
            return None;
        }
        Some(Located::new(text.to_string(), node.loc))
    }

    /// An identifier, or `*` meaning "any".
    fn ident_or_any(&mut self, node: &Node, what: &str) -> Option<Name> {
        if let NodeKind::Scalar { text, .. } = &node.kind
            && text == "*"
        {
            return Some(Located::new("*".into(), node.loc));
        }
        self.ident(node, what)
    }

    pub(crate) fn idents(&mut self, node: &Node, what: &str) -> Vec<Name> {
        self.list(node, what, |d, n| d.ident(n, what))
    }

    pub(crate) fn number(&mut self, node: &Node, what: &str) -> Option<f64> {
        let (text, style) = self.scalar(node, what)?;
        let parsed = if style == ScalarStyle::Plain {
            parse_number(text)
        } else {
            None
        };
        match parsed {
            Some(n) => Some(n),
            None => {
                self.error(node.loc, format!("{what} must be a number, found '{text}'"));
                None
            }
        }
    }

    fn number_in(&mut self, node: &Node, what: &str, min: f64, max: f64) -> Option<Located<f64>> {
        let n = self.number(node, what)?;
        if !(min..=max).contains(&n) {
            self.error(
                node.loc,
                format!("{what} must be between {min} and {max}, found {n}"),
            );
            return None;
        }
        Some(Located::new(n, node.loc))
    }

    fn percent(&mut self, node: &Node, what: &str) -> Option<Located<f64>> {
        self.number_in(node, what, 0.0, 100.0)
    }

    pub(crate) fn int_in(
        &mut self,
        node: &Node,
        what: &str,
        min: i64,
        max: i64,
    ) -> Option<Located<i64>> {
        let (text, style) = self.scalar(node, what)?;
        let parsed = if style == ScalarStyle::Plain {
            text.parse::<i64>().ok()
        } else {
            None
        };
        match parsed {
            Some(n) if (min..=max).contains(&n) => Some(Located::new(n, node.loc)),
            Some(n) if max == i64::MAX => {
                self.error(
                    node.loc,
                    format!("{what} must be at least {min}, found {n}"),
                );
                None
            }
            Some(n) => {
                self.error(
                    node.loc,
                    format!("{what} must be between {min} and {max}, found {n}"),
                );
                None
            }
            None => {
                self.error(
                    node.loc,
                    format!("{what} must be a whole number, found '{text}'"),
                );
                None
            }
        }
    }

    pub(crate) fn bool(&mut self, node: &Node, what: &str) -> Option<Located<bool>> {
        let (text, style) = self.scalar(node, what)?;
        match (text, style) {
            ("true", ScalarStyle::Plain) => Some(Located::new(true, node.loc)),
            ("false", ScalarStyle::Plain) => Some(Located::new(false, node.loc)),
            _ => {
                self.error(
                    node.loc,
                    format!("{what} must be true or false, found '{text}'"),
                );
                None
            }
        }
    }

    pub(crate) fn duration(&mut self, node: &Node, what: &str) -> Option<Located<Duration>> {
        let (text, _) = self.scalar(node, what)?;
        match parse_duration(text) {
            Ok(d) if d.0 > 0 && d.0 % kairos_rules::time::NANOS_PER_SECOND == 0 => {
                Some(Located::new(
                    Duration {
                        seconds: d.seconds(),
                    },
                    node.loc,
                ))
            }
            Ok(_) => {
                self.error(
                    node.loc,
                    format!("{what} must be a positive whole number of seconds, found '{text}'"),
                );
                None
            }
            Err(e) => {
                self.error(node.loc, format!("{what}: {e}"));
                None
            }
        }
    }

    pub(crate) fn date(&mut self, node: &Node, what: &str) -> Option<Located<Date>> {
        let (text, _) = self.scalar(node, what)?;
        match parse_instant(text) {
            Ok(p) => Some(Located::new(
                Date {
                    text: text.to_string(),
                    at: p.at,
                    date_only: p.date_only,
                },
                node.loc,
            )),
            Err(e) => {
                self.error(node.loc, format!("{what}: {e}"));
                None
            }
        }
    }

    fn expression(&mut self, node: &Node, what: &str) -> Option<Expression> {
        let (text, style) = self.scalar(node, what)?;
        if text.trim().is_empty() {
            self.error(node.loc, format!("{what} is empty"));
            return None;
        }
        let mapping = match style {
            ScalarStyle::Plain => ExprMapping::Plain,
            ScalarStyle::Quoted => ExprMapping::Quoted,
            ScalarStyle::Block => ExprMapping::Block,
        };
        Some(Expression {
            src: text.to_string(),
            loc: node.loc,
            mapping,
        })
    }

    pub(crate) fn scalar_value(&mut self, node: &Node, what: &str) -> Option<Located<Scalar>> {
        let (text, style) = self.scalar(node, what)?;
        let value = match style {
            ScalarStyle::Plain => match text {
                "true" => Scalar::Bool(true),
                "false" => Scalar::Bool(false),
                _ => match text.parse::<i64>() {
                    Ok(i) => Scalar::Int(i),
                    Err(_) => match parse_number(text) {
                        Some(f) => Scalar::Float(f),
                        None => Scalar::String(text.to_string()),
                    },
                },
            },
            _ => Scalar::String(text.to_string()),
        };
        Some(Located::new(value, node.loc))
    }

    fn attributes(&mut self, node: &Node) -> Vec<Attribute> {
        self.named_map(node, "attributes", |d, name, v| {
            d.scalar_value(v, "an attribute value")
                .map(|value| Attribute { name, value })
        })
    }

    fn choice<T: Copy>(
        &mut self,
        node: &Node,
        what: &str,
        options: &[(&str, T)],
    ) -> Option<Located<T>> {
        let (text, _) = self.scalar(node, what)?;
        match options.iter().find(|(name, _)| *name == text) {
            Some((_, v)) => Some(Located::new(*v, node.loc)),
            None => {
                let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
                self.error(
                    node.loc,
                    format!("{what} must be one of {}, found '{text}'", names.join(", ")),
                );
                None
            }
        }
    }

    // ---- channel objects ------------------------------------------------------------------

    fn audience_level(&mut self, name: Name, node: &Node) -> Option<AudienceLevel> {
        let entries = self.map(node, "an audience level")?;
        let mut level = AudienceLevel {
            name,
            id_fields: Vec::new(),
            profile_table: None,
            dimensions: Vec::new(),
        };
        for (key, value) in entries {
            let Some(k) = self.key(key) else { continue };
            match k {
                "id_fields" => level.id_fields = self.idents(value, "an ID field"),
                "profile_table" => level.profile_table = self.ident(value, "profile_table"),
                "dimensions" => {
                    level.dimensions = self.named_map(value, "dimensions", |d, name, node| {
                        let entries = d.map(node, "a dimension")?;
                        let (mut table, mut key_field) = (None, None);
                        for (key, value) in entries {
                            match d.key(key) {
                                Some("table") => table = d.ident(value, "a dimension table"),
                                Some("key") => key_field = d.ident(value, "a dimension key"),
                                Some(other) => {
                                    d.unknown_key(key.loc, other, "a dimension", &["table", "key"])
                                }
                                None => {}
                            }
                        }
                        match (table, key_field) {
                            (Some(table), Some(key)) => Some(Dimension { name, table, key }),
                            _ => {
                                if !(has_key(entries, "table") && has_key(entries, "key")) {
                                    d.error(node.loc, "a dimension needs both 'table' and 'key'");
                                }
                                None
                            }
                        }
                    })
                }
                other => self.unknown_key(
                    key.loc,
                    other,
                    "an audience level",
                    &["id_fields", "profile_table", "dimensions"],
                ),
            }
        }
        if level.id_fields.is_empty() {
            self.error(
                level.name.loc,
                format!(
                    "audience level '{}' needs at least one of id_fields",
                    level.name.value
                ),
            );
        }
        Some(level)
    }

    fn zone(&mut self, name: Name, node: &Node) -> Option<Zone> {
        let entries = self.map(node, "a zone")?;
        let mut zone = Zone {
            name,
            interaction_points: Vec::new(),
        };
        for (key, value) in entries {
            match self.key(key) {
                Some("interaction_points") => {
                    zone.interaction_points =
                        self.named_map(value, "interaction_points", |d, name, node| {
                            let entries = d.map(node, "an interaction point")?;
                            let mut ip = InteractionPoint {
                                name,
                                default: None,
                            };
                            for (key, value) in entries {
                                match d.key(key) {
                                    Some("default") => ip.default = d.string(value, "default"),
                                    Some(other) => d.unknown_key(
                                        key.loc,
                                        other,
                                        "an interaction point",
                                        &["default"],
                                    ),
                                    None => {}
                                }
                            }
                            Some(ip)
                        })
                }
                Some(other) => self.unknown_key(key.loc, other, "a zone", &["interaction_points"]),
                None => {}
            }
        }
        Some(zone)
    }

    fn offer(&mut self, code: Name, node: &Node) -> Option<Offer> {
        let entries = self.map(node, "an offer")?;
        let mut offer = Offer {
            code,
            name: None,
            description: None,
            category: None,
            attributes: Vec::new(),
            effective: None,
            expires: None,
            suppression: None,
        };
        for (key, value) in entries {
            let Some(k) = self.key(key) else { continue };
            match k {
                "name" => offer.name = self.string(value, "name"),
                "description" => offer.description = self.string(value, "description"),
                "category" => offer.category = self.ident(value, "category"),
                "attributes" => offer.attributes = self.attributes(value),
                "effective" => offer.effective = self.date(value, "effective"),
                "expires" => offer.expires = self.date(value, "expires"),
                "suppression" => offer.suppression = self.suppression(value),
                other => self.unknown_key(key.loc, other, "an offer", OFFER_KEYS),
            }
        }
        Some(offer)
    }

    fn hold(&mut self, node: &Node, what: &str) -> Option<Located<Hold>> {
        if let NodeKind::Scalar { text, .. } = &node.kind
            && text == "forever"
        {
            return Some(Located::new(Hold::Forever, node.loc));
        }
        self.duration(node, what)
            .map(|d| Located::new(Hold::For(d.value), d.loc))
    }

    fn suppression(&mut self, node: &Node) -> Option<Suppression> {
        let entries = self.map(node, "suppression")?;
        let mut s = Suppression::default();
        for (key, value) in entries {
            let Some(k) = self.key(key) else { continue };
            match k {
                "after_accept" => s.after_accept = self.hold(value, "after_accept"),
                "after_reject" => s.after_reject = self.hold(value, "after_reject"),
                "max_contacts" => s.max_contacts = self.int_in(value, "max_contacts", 1, i64::MAX),
                "within" => s.within = self.duration(value, "within"),
                other => self.unknown_key(
                    key.loc,
                    other,
                    "suppression",
                    &["after_accept", "after_reject", "max_contacts", "within"],
                ),
            }
        }
        if let (Some(within), None) = (&s.within, &s.max_contacts) {
            self.error(within.loc, "'within' limits max_contacts, which is missing");
        }
        Some(s)
    }

    fn flowchart(&mut self, name: Name, node: &Node) -> Option<Flowchart> {
        let entries = self.map(node, "a flowchart")?;
        let mut chart = Flowchart {
            name,
            audience_level: None,
            steps: Vec::new(),
        };
        for (key, value) in entries {
            match self.key(key) {
                Some("audience_level") => {
                    chart.audience_level = self.ident(value, "audience_level")
                }
                Some("steps") => chart.steps = self.steps(value),
                Some(other) => {
                    self.unknown_key(key.loc, other, "a flowchart", &["audience_level", "steps"])
                }
                None => {}
            }
        }
        Some(chart)
    }

    fn steps(&mut self, node: &Node) -> Vec<Step> {
        self.list(node, "steps", Self::step)
    }

    fn step(&mut self, node: &Node) -> Option<Step> {
        let entries = self.map(node, "a step")?;
        let [(key, value)] = entries else {
            self.error(
                node.loc,
                "a step has exactly one of decision, sample, select, populate",
            );
            return None;
        };
        let loc = key.loc;
        let kind = match self.key(key)? {
            "decision" => StepKind::Decision(self.decision(value)?),
            "sample" => StepKind::Sample(self.sample(value)?),
            "select" => {
                let entries = self.map(value, "select")?;
                let mut when = None;
                for (k, v) in entries {
                    match self.key(k) {
                        Some("when") => when = self.expression(v, "a select condition"),
                        Some(other) => self.unknown_key(k.loc, other, "select", &["when"]),
                        None => {}
                    }
                }
                let Some(when) = when else {
                    self.error(value.loc, "select needs a 'when' condition");
                    return None;
                };
                StepKind::Select(when)
            }
            "populate" => StepKind::Populate(self.ident(value, "a segment")?),
            other => {
                self.unknown_key(
                    loc,
                    other,
                    "a step",
                    &["decision", "sample", "select", "populate"],
                );
                return None;
            }
        };
        Some(Step { kind, loc })
    }

    fn decision(&mut self, node: &Node) -> Option<Decision> {
        let entries = self.map(node, "decision")?;
        let mut d = Decision {
            mode: None,
            branches: Vec::new(),
            otherwise: None,
        };
        for (key, value) in entries {
            let Some(k) = self.key(key) else { continue };
            match k {
                "mode" => {
                    d.mode = self.choice(
                        value,
                        "mode",
                        &[("first", DecisionMode::First), ("all", DecisionMode::All)],
                    )
                }
                "branches" => {
                    d.branches = self.list(value, "branches", |dec, n| {
                        let entries = dec.map(n, "a branch")?;
                        let (mut when, mut steps) = (None, Vec::new());
                        for (k, v) in entries {
                            match dec.key(k) {
                                Some("when") => when = dec.expression(v, "a branch condition"),
                                Some("steps") => steps = dec.steps(v),
                                Some(other) => {
                                    dec.unknown_key(k.loc, other, "a branch", &["when", "steps"])
                                }
                                None => {}
                            }
                        }
                        match when {
                            Some(when) => Some(Branch { when, steps }),
                            None => {
                                dec.error(n.loc, "a branch needs a 'when' condition");
                                None
                            }
                        }
                    })
                }
                "else" => d.otherwise = Some(self.steps(value)),
                other => {
                    self.unknown_key(key.loc, other, "decision", &["mode", "branches", "else"])
                }
            }
        }
        if d.branches.is_empty() {
            self.error(node.loc, "a decision needs at least one branch");
        }
        Some(d)
    }

    fn sample(&mut self, node: &Node) -> Option<Sample> {
        let entries = self.map(node, "sample")?;
        let errors_before = self.errors.len();
        let mut seed = None;
        let mut splits: Vec<Split> = Vec::new();
        let mut steps_node = None;
        for (key, value) in entries {
            let Some(k) = self.key(key) else { continue };
            match k {
                "seed" => seed = self.string(value, "seed"),
                "splits" => {
                    splits = self.named_map(value, "splits", |d, name, n| {
                        let percent = d.percent(n, "a split percentage")?;
                        Some(Split {
                            name,
                            percent,
                            steps: Vec::new(),
                        })
                    })
                }
                "steps" => steps_node = Some(value),
                other => self.unknown_key(key.loc, other, "sample", &["seed", "splits", "steps"]),
            }
        }
        if splits.is_empty() && !has_key(entries, "splits") {
            self.error(node.loc, "a sample needs splits, like { a: 50, b: 50 }");
        }
        let total: f64 = splits.iter().map(|s| s.percent.value).sum();
        if !splits.is_empty() && !self.failed_since(errors_before) && (total - 100.0).abs() > 1e-9 {
            self.error(
                node.loc,
                format!("sample splits must add up to 100, they add up to {total}"),
            );
        }
        if let Some(steps_node) = steps_node
            && let Some(entries) = self.map(steps_node, "sample steps")
        {
            for (key, value) in entries {
                let Some(name) = self.ident(key, "a split") else {
                    continue;
                };
                let steps = self.steps(value);
                match splits
                    .iter_mut()
                    .find(|s| same_name(&s.name.value, &name.value))
                {
                    Some(split) => split.steps = steps,
                    None => self.error(
                        name.loc,
                        format!("steps for '{}', which is not one of the splits", name.value),
                    ),
                }
            }
        }
        Some(Sample { seed, splits })
    }

    fn rule(&mut self, node: &Node) -> Option<Rule> {
        let entries = self.map(node, "a rule")?;
        let (mut id, mut segment, mut zone, mut one, mut many) = (None, None, None, None, None);
        let mut rule = Rule {
            id: Name::unlocated(String::new()),
            segment: Name::unlocated(String::new()),
            zone: Name::unlocated(String::new()),
            offers: RuleOffers::List(Vec::new()),
            pick: None,
            score: None,
            eligibility: None,
            score_expr: None,
            attributes: Vec::new(),
            effective: None,
            expires: None,
            enabled: None,
        };
        for (key, value) in entries {
            let Some(k) = self.key(key) else { continue };
            match k {
                "id" => id = self.ident(value, "a rule id"),
                "segment" => segment = self.ident_or_any(value, "a segment"),
                "zone" => zone = self.ident_or_any(value, "a zone"),
                "offer" => one = self.ident(value, "an offer code"),
                "offers" => many = Some((self.idents(value, "an offer code"), value.loc)),
                "pick" => {
                    rule.pick = self.choice(
                        value,
                        "pick",
                        &[("best", Pick::Best), ("random", Pick::Random)],
                    )
                }
                "score" => rule.score = self.number_in(value, "score", 0.0, 100.0),
                "eligibility" => rule.eligibility = self.expression(value, "eligibility"),
                "score_expr" => rule.score_expr = self.expression(value, "score_expr"),
                "attributes" => rule.attributes = self.attributes(value),
                "effective" => rule.effective = self.date(value, "effective"),
                "expires" => rule.expires = self.date(value, "expires"),
                "enabled" => rule.enabled = self.bool(value, "enabled"),
                other => self.unknown_key(key.loc, other, "a rule", RULE_KEYS),
            }
        }
        // A key that is present but invalid was reported already; only absent ones are news.
        for (what, names) in [
            ("id", &["id"][..]),
            ("segment", &["segment"]),
            ("zone", &["zone"]),
            ("offer", &["offer", "offers"]),
        ] {
            if !names.iter().any(|n| has_key(entries, n)) {
                self.error(node.loc, format!("a rule needs '{what}'"));
            }
        }
        let complete = [
            id.is_some(),
            segment.is_some(),
            zone.is_some(),
            one.is_some() || many.is_some(),
        ];
        rule.offers = match (one, many) {
            (Some(_), Some((_, loc))) => {
                self.error(loc, "a rule has either 'offer' or 'offers', not both");
                return None;
            }
            (Some(code), None) => RuleOffers::One(code),
            (None, Some((codes, loc))) => {
                if codes.is_empty() {
                    self.error(loc, "'offers' lists no offer");
                }
                RuleOffers::List(codes)
            }
            (None, None) => RuleOffers::List(Vec::new()),
        };
        if let (Some(pick), RuleOffers::One(_)) = (&rule.pick, &rule.offers) {
            self.error(
                pick.loc,
                "'pick' chooses among 'offers'; this rule names one offer",
            );
        }
        if complete.contains(&false) {
            return None;
        }
        rule.id = id?;
        rule.segment = segment?;
        rule.zone = zone?;
        Some(rule)
    }

    fn event(&mut self, name: Name, node: &Node) -> Option<Event> {
        let entries = self.map(node, "an event")?;
        let mut event = Event {
            name,
            actions: Vec::new(),
        };
        for (key, value) in entries {
            match self.key(key) {
                Some("actions") => event.actions = self.actions(value),
                Some(other) => self.unknown_key(key.loc, other, "an event", &["actions"]),
                None => {}
            }
        }
        Some(event)
    }

    fn actions(&mut self, node: &Node) -> Vec<Action> {
        self.list(node, "actions", Self::action)
    }

    fn action(&mut self, node: &Node) -> Option<Action> {
        let simple = |name: &str| match name {
            "resegment" => Some(ActionKind::Resegment),
            "log_contact" => Some(ActionKind::LogContact),
            "log_accept" => Some(ActionKind::LogAccept),
            "log_reject" => Some(ActionKind::LogReject),
            _ => None,
        };
        if let NodeKind::Scalar { text, .. } = &node.kind {
            return match simple(text) {
                Some(kind) => Some(Action {
                    kind,
                    when: None,
                    loc: node.loc,
                }),
                None => {
                    self.unknown_action(node.loc, text);
                    None
                }
            };
        }
        let entries = self.map(node, "an action")?;
        let mut when = None;
        let mut kind = None;
        for (key, value) in entries {
            let Some(k) = self.key(key) else { continue };
            if k == "when" {
                when = self.expression(value, "an action condition");
                continue;
            }
            if kind.is_some() {
                self.error(
                    key.loc,
                    "an action does one thing; put each in its own list item",
                );
                continue;
            }
            kind = match k {
                "set" => self.set_action(value),
                "fire" => self.ident(value, "an event").map(ActionKind::Fire),
                "suppress" => self.suppress_action(value),
                other => match simple(other) {
                    Some(kind) => {
                        if !value.is_null()
                            && !matches!(&value.kind, NodeKind::Map(m) if m.is_empty())
                        {
                            self.error(value.loc, format!("{other} takes no settings"));
                        }
                        Some(kind)
                    }
                    None => {
                        self.unknown_action(key.loc, other);
                        None
                    }
                },
            }
            .map(|kind| (kind, key.loc));
        }
        let (kind, loc) = kind?;
        Some(Action { kind, when, loc })
    }

    fn unknown_action(&mut self, loc: Loc, name: &str) {
        let message = match kairos_rules::closest(name, ActionKind::NAMES) {
            Some(s) => format!("unknown action '{name}' (did you mean '{s}'?)"),
            None => format!(
                "unknown action '{name}'; actions are {}",
                ActionKind::NAMES.join(", ")
            ),
        };
        self.error(loc, message);
    }

    fn set_action(&mut self, node: &Node) -> Option<ActionKind> {
        let entries = self.map(node, "set")?;
        let (mut field, mut expr) = (None, None);
        for (key, value) in entries {
            match self.key(key) {
                Some("field") => {
                    let (text, _) = self.scalar(value, "field")?;
                    let valid = ["session.", "profile."].iter().any(|p| {
                        text.strip_prefix(p).is_some_and(|rest| {
                            rest.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                                && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        })
                    });
                    if valid {
                        field = Some(Located::new(text.to_string(), value.loc));
                    } else {
                        self.error(
                            value.loc,
                            format!(
                                "'{text}' cannot be set: write session.<name> or profile.<name>"
                            ),
                        );
                    }
                }
                Some("expr") => expr = self.expression(value, "a set expression"),
                Some(other) => self.unknown_key(key.loc, other, "set", &["field", "expr"]),
                None => {}
            }
        }
        match (field, expr) {
            (Some(field), Some(expr)) => Some(ActionKind::Set { field, expr }),
            _ => {
                if !(has_key(entries, "field") && has_key(entries, "expr")) {
                    self.error(node.loc, "set needs both 'field' and 'expr'");
                }
                None
            }
        }
    }

    /// The offers an action or constraint applies to, and the entries left for the caller.
    fn target<'a>(
        &mut self,
        entries: Entries<'a>,
        loc: Loc,
        what: &str,
    ) -> (Option<Target>, Vec<(Loc, &'a str, &'a Node)>) {
        let mut target = None;
        let mut rest = Vec::new();
        for (key, value) in entries {
            let Some(k) = self.key(key) else { continue };
            let found = match k {
                "offer" => self
                    .ident(value, "an offer code")
                    .map(|c| Target::Offers(vec![c])),
                "offers" => Some(Target::Offers(self.idents(value, "an offer code"))),
                "category" => self.ident(value, "a category").map(Target::Category),
                _ => {
                    rest.push((key.loc, k, value));
                    continue;
                }
            };
            if target.is_some() {
                self.error(
                    key.loc,
                    format!("{what} names its offers once: offer, offers or category"),
                );
            } else {
                target = found;
            }
        }
        if target.is_none()
            && !["offer", "offers", "category"]
                .iter()
                .any(|k| has_key(entries, k))
        {
            self.error(loc, format!("{what} needs 'offer', 'offers' or 'category'"));
        }
        (target, rest)
    }

    fn suppress_action(&mut self, node: &Node) -> Option<ActionKind> {
        let entries = self.map(node, "suppress")?;
        let (target, rest) = self.target(entries, node.loc, "suppress");
        let mut duration = None;
        for (key_loc, key, value) in rest {
            match key {
                "for" => duration = self.duration(value, "for"),
                other => self.unknown_key(
                    key_loc,
                    other,
                    "suppress",
                    &["offer", "offers", "category", "for"],
                ),
            }
        }
        let Some(duration) = duration else {
            if !has_key(entries, "for") {
                self.error(node.loc, "suppress needs 'for', like for: 1h");
            }
            return None;
        };
        Some(ActionKind::Suppress {
            target: target?,
            duration,
        })
    }

    fn pattern(&mut self, name: Name, node: &Node) -> Option<EventPattern> {
        let entries = self.map(node, "an event pattern")?;
        let mut kind = None;
        let mut events = None;
        let mut p = EventPattern {
            name,
            kind: Located::unlocated(PatternKind::All),
            events: PatternEvents::List(Vec::new()),
            count: None,
            window: None,
            rolling: None,
            actions: Vec::new(),
        };
        for (key, value) in entries {
            let Some(k) = self.key(key) else { continue };
            match k {
                "kind" => {
                    kind = self.choice(
                        value,
                        "kind",
                        &[
                            ("all", PatternKind::All),
                            ("counter", PatternKind::Counter),
                            ("weighted", PatternKind::Weighted),
                        ],
                    )
                }
                "events" => {
                    events = Some(match &value.kind {
                        NodeKind::Map(_) => PatternEvents::Weighted(self.named_map(
                            value,
                            "events",
                            |d, name, n| {
                                let w = d.number(n, "a weight")?;
                                if w <= 0.0 {
                                    d.error(n.loc, format!("a weight must be positive, found {w}"));
                                    return None;
                                }
                                Some((name, Located::new(w, n.loc)))
                            },
                        )),
                        _ => PatternEvents::List(self.idents(value, "an event")),
                    })
                }
                "count" => {
                    p.count = self.number(value, "count").and_then(|c| {
                        if c > 0.0 {
                            Some(Located::new(c, value.loc))
                        } else {
                            self.error(value.loc, format!("count must be positive, found {c}"));
                            None
                        }
                    })
                }
                "window" => p.window = self.duration(value, "window"),
                "rolling" => p.rolling = self.bool(value, "rolling").map(|b| b.value),
                "actions" => p.actions = self.actions(value),
                other => self.unknown_key(
                    key.loc,
                    other,
                    "an event pattern",
                    &["kind", "events", "count", "window", "rolling", "actions"],
                ),
            }
        }
        let Some(kind) = kind else {
            if !has_key(entries, "kind") {
                self.error(
                    node.loc,
                    "an event pattern needs 'kind': all, counter or weighted",
                );
            }
            return None;
        };
        p.kind = kind;
        match (kind.value, &events) {
            (_, None) if !has_key(entries, "events") => {
                self.error(node.loc, "an event pattern needs 'events'")
            }
            (PatternKind::Weighted, Some(PatternEvents::List(_))) => self.error(
                kind.loc,
                "a weighted pattern gives each event a weight: events: { a: 1, b: 3 }",
            ),
            (PatternKind::All | PatternKind::Counter, Some(PatternEvents::Weighted(_))) => self
                .error(
                    kind.loc,
                    "only a weighted pattern gives events weights; list them: events: [a, b]",
                ),
            _ => {}
        }
        match (kind.value, &p.count) {
            (PatternKind::Counter | PatternKind::Weighted, None) if !has_key(entries, "count") => {
                self.error(
                    kind.loc,
                    "a counter or weighted pattern needs 'count', the threshold",
                )
            }
            (PatternKind::All, Some(count)) => {
                self.error(count.loc, "an 'all' pattern has no count")
            }
            (PatternKind::Counter, Some(count)) if count.value.fract() != 0.0 => {
                self.error(count.loc, "a counter's count is a whole number")
            }
            _ => {}
        }
        if p.rolling.is_some() && p.window.is_none() {
            self.error(node.loc, "'rolling' applies to a window, which is missing");
        }
        p.events = events?;
        Some(p)
    }

    fn constraint(&mut self, node: &Node) -> Option<Constraint> {
        let entries = self.map(node, "a constraint")?;
        let (target, rest) = self.target(entries, node.loc, "a constraint");
        let (mut max_contacts, mut per) = (None, None);
        for (key_loc, key, value) in rest {
            match key {
                "max_contacts" => max_contacts = self.int_in(value, "max_contacts", 1, i64::MAX),
                "per" => per = self.duration(value, "per"),
                other => self.unknown_key(
                    key_loc,
                    other,
                    "a constraint",
                    &["offer", "offers", "category", "max_contacts", "per"],
                ),
            }
        }
        let Some(max_contacts) = max_contacts else {
            if !has_key(entries, "max_contacts") {
                self.error(node.loc, "a constraint needs 'max_contacts'");
            }
            return None;
        };
        Some(Constraint {
            target: target?,
            max_contacts,
            per,
            loc: node.loc,
        })
    }

    fn learning(&mut self, node: &Node) -> Option<Learning> {
        let entries = self.map(node, "learning")?;
        let mut mode = None;
        let mut l = Learning {
            mode: Located::unlocated(LearningMode::Off),
            explore_percent: None,
            min_contacts: None,
        };
        for (key, value) in entries {
            let Some(k) = self.key(key) else { continue };
            match k {
                "mode" => {
                    mode = self.choice(
                        value,
                        "mode",
                        &[
                            ("off", LearningMode::Off),
                            ("thompson", LearningMode::Thompson),
                        ],
                    )
                }
                "explore_percent" => l.explore_percent = self.percent(value, "explore_percent"),
                "min_contacts" => l.min_contacts = self.int_in(value, "min_contacts", 0, i64::MAX),
                other => self.unknown_key(
                    key.loc,
                    other,
                    "learning",
                    &["mode", "explore_percent", "min_contacts"],
                ),
            }
        }
        match mode {
            Some(m) => l.mode = m,
            None if !has_key(entries, "mode") => {
                self.error(node.loc, "learning needs 'mode': off or thompson")
            }
            None => {}
        }
        Some(l)
    }
}

pub(crate) fn has_key(entries: Entries<'_>, name: &str) -> bool {
    entries
        .iter()
        .any(|(k, _)| matches!(&k.kind, NodeKind::Scalar { text, .. } if text == name))
}

fn parse_number(text: &str) -> Option<f64> {
    let looks_numeric = text
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || c == '-' || c == '+' || c == '.');
    if !looks_numeric {
        return None;
    }
    text.parse::<f64>().ok().filter(|n| n.is_finite())
}

const CHANNEL_KEYS: &[&str] = &[
    "channel",
    "description",
    "default_audience_level",
    "audience_levels",
    "max_offer_contacts_per_visit",
    "control_group_percent",
    "zones",
    "categories",
    "offers",
    "segments",
    "flowcharts",
    "rules",
    "events",
    "event_patterns",
    "constraints",
    "learning",
];

const OFFER_KEYS: &[&str] = &[
    "name",
    "description",
    "category",
    "attributes",
    "effective",
    "expires",
    "suppression",
];

const RULE_KEYS: &[&str] = &[
    "id",
    "segment",
    "zone",
    "offer",
    "offers",
    "pick",
    "score",
    "eligibility",
    "score_expr",
    "attributes",
    "effective",
    "expires",
    "enabled",
];
