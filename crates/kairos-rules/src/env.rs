//! What an expression may refer to, and where each attribute lives at run time.
//!
//! Every `root.field` an expression reads is given a slot: an index into the per-root value
//! arrays the engine keeps (profile columns, session parameters, event parameters, offer
//! attributes, pattern states). Slots are assigned once, at compile time, so evaluation never
//! looks a name up.

use std::collections::HashMap;

use crate::time::Timestamp;
use crate::value::{Type, Value};

/// The variables of the rule language that hold fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Root {
    Profile,
    Session,
    Event,
    Offer,
    Patterns,
}

impl Root {
    pub const ALL: [Root; 5] = [
        Root::Profile,
        Root::Session,
        Root::Event,
        Root::Offer,
        Root::Patterns,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Root::Profile => "profile",
            Root::Session => "session",
            Root::Event => "event",
            Root::Offer => "offer",
            Root::Patterns => "patterns",
        }
    }

    pub fn from_name(name: &str) -> Option<Root> {
        Root::ALL.into_iter().find(|r| r.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One root's fields: name -> slot, in slot order.
#[derive(Clone, Debug, Default)]
struct Fields {
    slots: Vec<(String, Type)>,
    by_name: HashMap<String, u32>,
    /// Closed roots reject fields that were not declared (a profile with a known schema).
    closed: bool,
}

/// Which roots an expression may use where it appears.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    /// Event actions and their `when`: `event.<param>`.
    pub event: bool,
    /// Rule eligibility and score: `offer.<attr>`.
    pub offer: bool,
}

/// The compile-time environment shared by all expressions of one channel.
#[derive(Clone, Debug, Default)]
pub struct Env {
    roots: [Fields; 5],
    /// Known segment names (lowercase) -> index; `None` accepts any name.
    segments: Option<HashMap<String, u32>>,
    segment_order: Vec<String>,
}

impl Env {
    /// Every root open: any field is accepted with type `dyn`.
    pub fn new() -> Self {
        Env::default()
    }

    /// Declares a field with its type, returning its slot.
    pub fn declare(&mut self, root: Root, name: &str, ty: Type) -> u32 {
        let fields = &mut self.roots[root.index()];
        if let Some(&slot) = fields.by_name.get(name) {
            fields.slots[slot as usize].1 = ty;
            return slot;
        }
        let slot = fields.slots.len() as u32;
        fields.slots.push((name.to_string(), ty));
        fields.by_name.insert(name.to_string(), slot);
        slot
    }

    /// From now on, fields of `root` that were not declared are errors.
    pub fn close(&mut self, root: Root) {
        self.roots[root.index()].closed = true;
    }

    pub fn is_closed(&self, root: Root) -> bool {
        self.roots[root.index()].closed
    }

    /// Restricts `'name' in segments` to these segment names; their order gives the indices
    /// passed to [`Activation::has_segment`].
    pub fn set_segments<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) {
        self.segment_order = names.into_iter().map(str::to_ascii_lowercase).collect();
        let map = self
            .segment_order
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as u32))
            .collect();
        self.segments = Some(map);
    }

    /// The segment with index `i`, lowercase.
    pub fn segment_name(&self, i: u32) -> Option<&str> {
        self.segment_order.get(i as usize).map(String::as_str)
    }

    pub fn segment_index(&self, name: &str) -> Option<Option<u32>> {
        match &self.segments {
            None => Some(None),
            Some(map) => map.get(&name.to_ascii_lowercase()).map(|&i| Some(i)),
        }
    }

    /// The fields of a root in slot order, with their types.
    pub fn slots(&self, root: Root) -> &[(String, Type)] {
        &self.roots[root.index()].slots
    }

    pub fn slot_of(&self, root: Root, name: &str) -> Option<u32> {
        self.roots[root.index()].by_name.get(name).copied()
    }

    /// The slot and type of `root.name`, allocating one for an open root.
    pub(crate) fn resolve(&mut self, root: Root, name: &str) -> Result<(u32, Type), String> {
        let fields = &self.roots[root.index()];
        if let Some(&slot) = fields.by_name.get(name) {
            return Ok((slot, fields.slots[slot as usize].1.clone()));
        }
        if fields.closed {
            let known: Vec<&str> = fields.slots.iter().map(|(n, _)| n.as_str()).collect();
            return Err(match crate::suggest::closest(name, known.iter().copied()) {
                Some(s) => format!(
                    "{} has no field '{name}' (did you mean '{s}'?)",
                    root.name()
                ),
                None if known.is_empty() => format!("{} has no fields", root.name()),
                None => format!("{} has no field '{name}'", root.name()),
            });
        }
        Ok((self.declare(root, name, Type::Dyn), Type::Dyn))
    }
}

/// What a compiled expression reads at run time. The engine implements it over a session.
pub trait Activation {
    /// The value in a slot, `None` when the field is absent for this visitor.
    fn get(&self, root: Root, slot: u32) -> Option<&Value>;
    /// Whether the visitor is in the segment with this index (see [`Env::set_segments`]).
    fn has_segment(&self, segment: u32) -> bool;
    /// The visitor's segments as a list of strings.
    fn segments(&self) -> Value;
    /// Also used for a name not known at compile time (no segment list was set).
    fn has_segment_named(&self, name: &str) -> bool;
    fn now(&self) -> Timestamp;
}
