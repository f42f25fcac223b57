//! A channel as separately edited components, the design repository's unit of change: two
//! designers editing different offers both succeed, two editing the same one conflict.
//!
//! A component's body is JSON with the shape of its entry in the channel file (an offer's
//! body is what follows `GOLD_CARD:`). [`assemble`] writes components back into one document
//! (JSON, which is YAML) that the channel reader checks as a whole, and points each error at
//! the component it is in: `offers/GOLD_CARD:3:14: message`, line and column within the body
//! as [`body_text`] lays it out.

use serde_json::{Map, Value};

use crate::encode::{channel_to_y, to_json};
use crate::loc::{Diagnostic, Rejected};
use crate::{Channel, Schemas};

/// What a component is; the names are the channel file's keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// The channel's own settings: description, audience default, caps, categories,
    /// constraints, learning. One per channel, named [`SETTINGS`].
    Settings,
    AudienceLevels,
    Zones,
    Offers,
    Segments,
    Flowcharts,
    Rules,
    Events,
    EventPatterns,
}

/// The name of a channel's one settings component.
pub const SETTINGS: &str = "channel";

impl Kind {
    /// In channel file order.
    pub const ALL: [Kind; 9] = [
        Kind::Settings,
        Kind::AudienceLevels,
        Kind::Zones,
        Kind::Offers,
        Kind::Segments,
        Kind::Flowcharts,
        Kind::Rules,
        Kind::Events,
        Kind::EventPatterns,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Settings => "settings",
            Kind::AudienceLevels => "audience_levels",
            Kind::Zones => "zones",
            Kind::Offers => "offers",
            Kind::Segments => "segments",
            Kind::Flowcharts => "flowcharts",
            Kind::Rules => "rules",
            Kind::Events => "events",
            Kind::EventPatterns => "event_patterns",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Component {
    pub kind: Kind,
    /// Offer code, zone name, rule id...; [`SETTINGS`] for the settings.
    pub name: String,
    pub body: Value,
}

impl Component {
    /// `offers/GOLD_CARD`: how errors and the audit log name it.
    pub fn path(&self) -> String {
        format!("{}/{}", self.kind.name(), self.name)
    }
}

/// A checked channel's components, in file order.
pub fn split(channel: &Channel) -> Vec<Component> {
    let Value::Object(document) = to_json(channel_to_y(channel)) else {
        unreachable!("a channel encodes as a mapping")
    };
    let mut settings = Map::new();
    let mut components = Vec::new();
    for (key, value) in document {
        match (Kind::from_name(&key), value) {
            (Some(Kind::Rules), Value::Array(rules)) => {
                components.extend(rules.into_iter().map(|rule| Component {
                    kind: Kind::Rules,
                    name: rule["id"].as_str().unwrap_or_default().to_string(),
                    body: rule,
                }));
            }
            (Some(kind), Value::Object(entries)) => {
                components.extend(entries.into_iter().map(|(name, body)| Component {
                    kind,
                    name,
                    body,
                }));
            }
            (_, value) if key != "channel" => {
                settings.insert(key, value);
            }
            _ => {}
        }
    }
    components.insert(
        0,
        Component {
            kind: Kind::Settings,
            name: SETTINGS.to_string(),
            body: Value::Object(settings),
        },
    );
    components
}

/// A component's body as [`assemble`] lays it out, so error positions can be found in it.
pub fn body_text(body: &Value) -> String {
    serde_json::to_string_pretty(body).expect("a JSON value always serializes")
}

/// Components written into one channel document, with where each one's body starts.
pub struct Assembled {
    pub text: String,
    /// (first line of the body, last line, component path), 1-based.
    spans: Vec<(u32, u32, String)>,
}

impl Assembled {
    /// Rewrites `document:LINE:COL` errors as `kind/name:LINE:COL` within the component.
    fn locate(&self, rejected: Rejected) -> Rejected {
        Rejected(
            rejected
                .0
                .into_iter()
                .map(
                    |d| match self.spans.iter().find(|s| s.0 <= d.line && d.line <= s.1) {
                        Some((first, _, path)) => Diagnostic {
                            file: path.clone(),
                            line: d.line - first + 1,
                            ..d
                        },
                        None => d,
                    },
                )
                .collect(),
        )
    }
}

fn json_string(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// Writes the components of channel `name` into one document. The settings' keys sit at
/// the top level (a settings body that holds `channel` or a component kind's key is an
/// error of the check, named at that key); each rule gets its name as its `id`.
pub fn assemble(name: &str, components: &[Component]) -> Assembled {
    let mut out = Writer {
        text: String::new(),
        line: 1,
    };
    let mut spans = Vec::new();
    out.push(&format!("{{\n\"channel\": {},\n", json_string(name)));
    for kind in Kind::ALL {
        let of_kind: Vec<&Component> = components.iter().filter(|c| c.kind == kind).collect();
        if of_kind.is_empty() {
            continue;
        }
        if kind == Kind::Settings {
            for component in of_kind {
                let Value::Object(settings) = &component.body else {
                    // Not a mapping: let the reader say where.
                    out.push("\"settings\":\n");
                    let first = out.line;
                    out.push(&format!("{},\n", body_text(&component.body)));
                    spans.push((first, out.line - 1, component.path()));
                    continue;
                };
                for (key, value) in settings {
                    let first = out.line;
                    out.push(&format!("{}: {},\n", json_string(key), body_text(value)));
                    spans.push((first, out.line - 1, component.path()));
                }
            }
            continue;
        }
        let (open, close) = if kind == Kind::Rules {
            ("[", "]")
        } else {
            ("{", "}")
        };
        out.push(&format!("{}: {open}\n", json_string(kind.name())));
        for component in of_kind {
            let mut body = component.body.clone();
            if let (Kind::Rules, Value::Object(rule)) = (kind, &mut body) {
                rule.insert("id".into(), Value::String(component.name.clone()));
            }
            if kind != Kind::Rules {
                out.push(&format!("{}:\n", json_string(&component.name)));
            }
            let first = out.line;
            out.push(&format!("{},\n", body_text(&body)));
            spans.push((first, out.line - 1, component.path()));
        }
        out.push(&format!("{close},\n"));
    }
    out.push("}\n");
    Assembled {
        text: out.text,
        spans,
    }
}

struct Writer {
    text: String,
    line: u32,
}

impl Writer {
    fn push(&mut self, piece: &str) {
        self.line += piece.matches('\n').count() as u32;
        self.text.push_str(piece);
    }
}

/// Assembles and checks a channel: the channel, or every error located in its component.
pub fn check(name: &str, components: &[Component], schemas: &Schemas) -> Result<Channel, Rejected> {
    let assembled = assemble(name, components);
    crate::parse_channel("design", &assembled.text, schemas).map_err(|e| assembled.locate(e))
}

/// How one component differs between two versions of a channel.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    pub path: String,
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
    /// The body's lines, each prefixed `+ `, `- ` or two spaces.
    pub lines: Vec<String>,
}

/// What changed from `old` to `new`, component by component, in file order.
pub fn diff(old: &[Component], new: &[Component]) -> Vec<Change> {
    let find = |list: &[Component], c: &Component| {
        list.iter()
            .find(|o| o.kind == c.kind && o.name == c.name)
            .map(|o| body_text(&o.body))
    };
    let mut changes = Vec::new();
    for c in new {
        let text = body_text(&c.body);
        match find(old, c) {
            None => changes.push(Change {
                path: c.path(),
                change: "added",
                lines: text.lines().map(|l| format!("+ {l}")).collect(),
            }),
            Some(before) if before != text => changes.push(Change {
                path: c.path(),
                change: "changed",
                lines: line_diff(&before, &text),
            }),
            Some(_) => {}
        }
    }
    for c in old {
        if find(new, c).is_none() {
            changes.push(Change {
                path: c.path(),
                change: "removed",
                lines: body_text(&c.body)
                    .lines()
                    .map(|l| format!("- {l}"))
                    .collect(),
            });
        }
    }
    changes
}

/// A line diff by longest common subsequence; component bodies are short.
fn line_diff(old: &str, new: &str) -> Vec<String> {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push(format!("  {}", a[i]));
            (i, j) = (i + 1, j + 1);
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push(format!("+ {}", b[j]));
            j += 1;
        } else {
            out.push(format!("- {}", a[i]));
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BANK: &str = include_str!("../../../examples/bank/channel.yaml");

    fn bank() -> Channel {
        crate::read_channel("bank", BANK).expect("the demo channel reads")
    }

    #[test]
    fn split_then_assemble_gives_the_same_channel() {
        let channel = bank();
        let components = split(&channel);
        assert!(components.iter().any(|c| c.path() == "offers/GOLD_CARD"));
        assert!(
            components
                .iter()
                .any(|c| c.path() == "rules/gold_for_high_value")
        );
        let assembled = assemble("web", &components);
        let again = crate::read_channel("design", &assembled.text).expect("re-reads");
        assert_eq!(again, channel);
    }

    #[test]
    fn an_error_is_located_in_its_component() {
        let mut components = split(&bank());
        let offer = components
            .iter_mut()
            .find(|c| c.path() == "offers/PLATINUM_CARD")
            .unwrap();
        offer.body["category"] = Value::String("gadgets".into());
        let text = body_text(&offer.body);
        let errors = check("web", &components, &Schemas::default())
            .unwrap_err()
            .0;
        assert_eq!(errors.len(), 1, "{errors:?}");
        let line = text.lines().position(|l| l.contains("gadgets")).unwrap() + 1;
        assert_eq!(errors[0].file, "offers/PLATINUM_CARD");
        assert_eq!(errors[0].line as usize, line);
        assert!(
            errors[0].message.contains("gadgets"),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn diff_names_each_added_removed_and_changed_component() {
        let old = split(&bank());
        let mut new = old.clone();
        new.retain(|c| c.path() != "offers/KIDS_SAVER");
        let gold = new
            .iter_mut()
            .find(|c| c.path() == "offers/GOLD_CARD")
            .unwrap();
        gold.body["name"] = Value::String("Gold card".into());
        new.push(Component {
            kind: Kind::Segments,
            name: "students".into(),
            body: Value::String("profile.age < 25".into()),
        });
        let changes = diff(&old, &new);
        let summary: Vec<_> = changes
            .iter()
            .map(|c| (c.path.as_str(), c.change))
            .collect();
        assert_eq!(
            summary,
            [
                ("offers/GOLD_CARD", "changed"),
                ("segments/students", "added"),
                ("offers/KIDS_SAVER", "removed")
            ]
        );
        let changed = &changes[0].lines;
        assert!(
            changed.contains(&"-   \"name\": \"Gold credit card\",".to_string()),
            "{changed:?}"
        );
        assert!(
            changed.contains(&"+   \"name\": \"Gold card\",".to_string()),
            "{changed:?}"
        );
        assert!(changed.iter().filter(|l| !l.starts_with("  ")).count() == 2);
        assert!(diff(&old, &old).is_empty());
    }

    #[test]
    fn a_settings_key_that_is_a_component_kind_is_an_error() {
        let mut components = split(&bank());
        components[0].body["offers"] = serde_json::json!({});
        assert!(check("web", &components, &Schemas::default()).is_err());
    }
}
