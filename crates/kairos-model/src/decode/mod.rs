//! From a located YAML tree to the channel model. Shape and range errors are collected, never
//! returned early: the author sees every problem of the file at once.

use kairos_rules::time::{parse_duration, parse_instant};

use crate::loc::{Loc, Located};
use crate::model::*;
use crate::yaml::{Node, NodeKind, ScalarStyle};

mod events;
mod objects;

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
