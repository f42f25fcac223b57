//! Events and their actions, event patterns, constraints, learning.

use super::*;

impl Decoder {
    pub(super) fn event(&mut self, name: Name, node: &Node) -> Option<Event> {
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

    pub(super) fn actions(&mut self, node: &Node) -> Vec<Action> {
        self.list(node, "actions", Self::action)
    }

    pub(super) fn action(&mut self, node: &Node) -> Option<Action> {
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

    pub(super) fn unknown_action(&mut self, loc: Loc, name: &str) {
        let message = match kairos_rules::closest(name, ActionKind::NAMES) {
            Some(s) => format!("unknown action '{name}' (did you mean '{s}'?)"),
            None => format!(
                "unknown action '{name}'; actions are {}",
                ActionKind::NAMES.join(", ")
            ),
        };
        self.error(loc, message);
    }

    pub(super) fn set_action(&mut self, node: &Node) -> Option<ActionKind> {
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
    pub(super) fn target<'a>(
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

    pub(super) fn suppress_action(&mut self, node: &Node) -> Option<ActionKind> {
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

    pub(super) fn pattern(&mut self, name: Name, node: &Node) -> Option<EventPattern> {
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

    pub(super) fn constraint(&mut self, node: &Node) -> Option<Constraint> {
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

    pub(super) fn learning(&mut self, node: &Node) -> Option<Learning> {
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
