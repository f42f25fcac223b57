//! The channel's objects: audience levels, zones, offers, flowcharts, treatment rules.

use super::*;

impl Decoder {
    pub(super) fn audience_level(&mut self, name: Name, node: &Node) -> Option<AudienceLevel> {
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

    pub(super) fn zone(&mut self, name: Name, node: &Node) -> Option<Zone> {
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

    pub(super) fn offer(&mut self, code: Name, node: &Node) -> Option<Offer> {
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

    pub(super) fn hold(&mut self, node: &Node, what: &str) -> Option<Located<Hold>> {
        if let NodeKind::Scalar { text, .. } = &node.kind
            && text == "forever"
        {
            return Some(Located::new(Hold::Forever, node.loc));
        }
        self.duration(node, what)
            .map(|d| Located::new(Hold::For(d.value), d.loc))
    }

    pub(super) fn suppression(&mut self, node: &Node) -> Option<Suppression> {
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

    pub(super) fn flowchart(&mut self, name: Name, node: &Node) -> Option<Flowchart> {
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

    pub(super) fn steps(&mut self, node: &Node) -> Vec<Step> {
        self.list(node, "steps", Self::step)
    }

    pub(super) fn step(&mut self, node: &Node) -> Option<Step> {
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

    pub(super) fn decision(&mut self, node: &Node) -> Option<Decision> {
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

    pub(super) fn sample(&mut self, node: &Node) -> Option<Sample> {
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

    pub(super) fn rule(&mut self, node: &Node) -> Option<Rule> {
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
}
