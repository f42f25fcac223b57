//! A YAML document as a tree of located nodes, so that every model error can point at the
//! line and column it comes from.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::loc::Loc;

#[derive(Clone, Debug)]
pub struct Node {
    pub kind: NodeKind,
    pub loc: Loc,
}

#[derive(Clone, Debug)]
pub enum NodeKind {
    Scalar { text: String, style: ScalarStyle },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarStyle {
    Plain,
    /// Single or double quoted: always a string, and its text starts one column after `loc`.
    Quoted,
    /// A `|` or `>` block: always a string, starting on a later line.
    Block,
}

impl Node {
    /// A plain `null`, `~` or empty scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { text, style: ScalarStyle::Plain } if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    pub fn describe(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar { .. } if self.is_null() => "nothing",
            NodeKind::Scalar { .. } => "a value",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }
}

/// A YAML syntax error with its location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub loc: Loc,
    pub message: String,
}

pub fn parse(text: &str) -> Result<Node, Vec<SyntaxError>> {
    let mut builder = Builder {
        budget: expansion_budget(text),
        ..Builder::default()
    };
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, true) {
        let loc = loc_of(e.marker());
        return Err(vec![SyntaxError {
            loc,
            message: format!("invalid YAML: {}", e.info()),
        }]);
    }
    if !builder.errors.is_empty() {
        return Err(builder.errors);
    }
    match builder.documents.len() {
        0 => Err(vec![SyntaxError {
            loc: Loc::new(1, 1),
            message: "the file is empty".into(),
        }]),
        1 => Ok(builder.documents.pop().expect("one document")),
        _ => Err(vec![SyntaxError {
            loc: builder.documents[1].loc,
            message:
                "a channel file holds one YAML document; split the others into their own files"
                    .into(),
        }]),
    }
}

fn loc_of(m: &Marker) -> Loc {
    // yaml-rust2 counts lines from 1 and columns from 0.
    Loc::new(m.line() as u32, m.col() as u32 + 1)
}

/// Deeper documents are rejected: every later pass walks the tree recursively.
const MAX_DEPTH: usize = 64;

/// What a document may weigh once its aliases are expanded, in the units of [`weight`]: about
/// twice what the same text could hold without aliases, so an alias saves typing but a few
/// hundred bytes of nested aliases cannot expand into gigabytes.
fn expansion_budget(text: &str) -> usize {
    2 * text.len() + 1024
}

/// A node's size for the expansion budget: one per node plus its scalars' text.
fn weight(node: &Node) -> usize {
    1 + match &node.kind {
        NodeKind::Scalar { text, .. } => text.len(),
        NodeKind::Seq(items) => items.iter().map(weight).sum(),
        NodeKind::Map(entries) => entries.iter().map(|(k, v)| weight(k) + weight(v)).sum(),
    }
}

#[derive(Default)]
struct Builder {
    /// Open collections: the node being filled and, for maps, a pending key.
    stack: Vec<(Node, Option<Node>)>,
    documents: Vec<Node>,
    /// Anchored nodes with their [`weight`].
    anchors: HashMap<usize, (Node, usize)>,
    /// What aliases may still add: see [`expansion_budget`].
    budget: usize,
    over_budget: bool,
    /// Anchor ids of the open collections, to register them when they close.
    open_anchors: Vec<usize>,
    /// Collections opened past [`MAX_DEPTH`], skipped until they close.
    too_deep: usize,
    errors: Vec<SyntaxError>,
}

impl Builder {
    fn push_value(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.documents.push(node),
            Some((parent, pending_key)) => match &mut parent.kind {
                NodeKind::Seq(items) => items.push(node),
                NodeKind::Map(entries) => match pending_key.take() {
                    None => *pending_key = Some(node),
                    Some(key) => {
                        if let NodeKind::Scalar { text, .. } = &key.kind
                            && entries.iter().any(|(k, _)| matches!(&k.kind, NodeKind::Scalar { text: t, .. } if t == text))
                        {
                            self.errors.push(SyntaxError {
                                loc: key.loc,
                                message: format!("duplicate key '{text}'"),
                            });
                        }
                        entries.push((key, node));
                    }
                },
                NodeKind::Scalar { .. } => unreachable!("scalars are never open"),
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let loc = loc_of(&mark);
        match ev {
            Event::Scalar(text, style, anchor, _tag) => {
                let style = match style {
                    TScalarStyle::Plain => ScalarStyle::Plain,
                    TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted => ScalarStyle::Quoted,
                    TScalarStyle::Literal | TScalarStyle::Folded => ScalarStyle::Block,
                };
                let node = Node {
                    kind: NodeKind::Scalar { text, style },
                    loc,
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, (node.clone(), weight(&node)));
                }
                self.push_value(node);
            }
            Event::SequenceStart(..) | Event::MappingStart(..) if self.stack.len() >= MAX_DEPTH => {
                self.errors.push(SyntaxError {
                    loc,
                    message: format!("the file nests deeper than {MAX_DEPTH} levels"),
                });
                self.too_deep += 1;
            }
            Event::SequenceEnd | Event::MappingEnd if self.too_deep > 0 => self.too_deep -= 1,
            _ if self.too_deep > 0 => {}
            Event::SequenceStart(anchor, _) => {
                self.open_anchors.push(anchor);
                self.stack.push((
                    Node {
                        kind: NodeKind::Seq(Vec::new()),
                        loc,
                    },
                    None,
                ));
            }
            Event::MappingStart(anchor, _) => {
                self.open_anchors.push(anchor);
                self.stack.push((
                    Node {
                        kind: NodeKind::Map(Vec::new()),
                        loc,
                    },
                    None,
                ));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (mut node, _) = self.stack.pop().expect("balanced events");
                // A block mapping's start event is marked after its first key; point at the key.
                if let NodeKind::Map(entries) = &node.kind
                    && let Some((first, _)) = entries.first()
                    && (first.loc.line, first.loc.col) < (node.loc.line, node.loc.col)
                {
                    node.loc = first.loc;
                }
                let anchor = self.open_anchors.pop().unwrap_or(0);
                if anchor > 0 {
                    self.anchors.insert(anchor, (node.clone(), weight(&node)));
                }
                self.push_value(node);
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                // Reported once, at the first alias over the budget; later ones are dropped.
                Some(_) if self.over_budget => {}
                Some((_, weight)) if *weight > self.budget => {
                    self.over_budget = true;
                    self.errors.push(SyntaxError {
                        loc,
                        message: "aliases expand this file to more than twice its size; \
                                  write the repeated parts out or use fewer nested aliases"
                            .into(),
                    });
                }
                Some((node, weight)) => {
                    self.budget -= weight;
                    let mut node = node.clone();
                    node.loc = loc;
                    self.push_value(node);
                }
                None => self.errors.push(SyntaxError {
                    loc,
                    message: "unknown alias".into(),
                }),
            },
            Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd
            | Event::Nothing => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_carry_one_based_positions() {
        let doc = parse("channel: web\nzones:\n  home:\n    x: 'q'\n").unwrap();
        let NodeKind::Map(entries) = &doc.kind else {
            panic!()
        };
        assert_eq!((entries[0].0.loc.line, entries[0].0.loc.col), (1, 1));
        assert_eq!((entries[0].1.loc.line, entries[0].1.loc.col), (1, 10));
        let NodeKind::Map(zones) = &entries[1].1.kind else {
            panic!()
        };
        assert_eq!((zones[0].0.loc.line, zones[0].0.loc.col), (3, 3));
        let NodeKind::Map(home) = &zones[0].1.kind else {
            panic!()
        };
        assert!(matches!(
            &home[0].1.kind,
            NodeKind::Scalar {
                style: ScalarStyle::Quoted,
                ..
            }
        ));
        assert_eq!((home[0].1.loc.line, home[0].1.loc.col), (4, 8));
    }

    #[test]
    fn duplicate_keys_and_bad_syntax_are_located() {
        let errors = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(errors[0].message, "duplicate key 'a'");
        assert_eq!((errors[0].loc.line, errors[0].loc.col), (3, 1));
        let errors = parse("a: [1, 2\n").unwrap_err();
        assert!(errors[0].message.starts_with("invalid YAML"), "{errors:?}");
    }

    #[test]
    fn aliases_expand_but_never_beyond_twice_the_file() {
        let doc = parse("a: &x [1, 2]\nb: *x\n").unwrap();
        let NodeKind::Map(entries) = &doc.kind else {
            panic!()
        };
        assert!(matches!(&entries[1].1.kind, NodeKind::Seq(items) if items.len() == 2));
        // A billion laughs: nine levels of ten aliases each would be 10^9 scalars.
        let mut laughs =
            String::from("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for level in 1..10 {
            let refs = vec![format!("*l{}", level - 1); 10].join(", ");
            laughs.push_str(&format!("l{level}: &l{level} [{refs}]\n"));
        }
        let errors = parse(&laughs).unwrap_err();
        assert!(
            errors[0].message.contains("more than twice its size"),
            "{errors:?}"
        );
        assert!(errors[0].loc.line > 1, "located at the alias: {errors:?}");
    }

    #[test]
    fn absurd_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        let errors = parse(&deep).unwrap_err();
        assert!(
            errors[0].message.contains("nests deeper than 64 levels"),
            "{errors:?}"
        );
    }

    #[test]
    fn aliases_resolve_to_their_anchor() {
        let doc = parse("a: &x { k: 1 }\nb: *x\n").unwrap();
        let NodeKind::Map(entries) = &doc.kind else {
            panic!()
        };
        assert!(matches!(&entries[1].1.kind, NodeKind::Map(m) if m.len() == 1));
    }
}
