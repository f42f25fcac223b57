//! A plain [`Activation`]: slot arrays filled by name. Tools (validation previews, the CLI,
//! tests, benchmarks) use it; the engine keeps its own session-backed activation.

use crate::env::{Activation, Env, Root};
use crate::time::Timestamp;
use crate::value::Value;

#[derive(Clone, Debug, Default)]
pub struct Bindings {
    values: [Vec<Option<Value>>; 5],
    segments: Vec<String>,
    segment_names: Vec<String>,
    now: Option<Timestamp>,
}

impl Bindings {
    /// Empty bindings sized for every slot `env` has allocated so far.
    pub fn new(env: &Env) -> Self {
        let mut b = Bindings::default();
        for root in Root::ALL {
            b.values[root as usize] = vec![None; env.slots(root).len()];
        }
        b.segment_names = env_segment_names(env);
        b
    }

    /// Sets `root.name`; a name the compiled programs never read is ignored.
    pub fn set(&mut self, env: &Env, root: Root, name: &str, value: Value) {
        if let Some(slot) = env.slot_of(root, name) {
            let values = &mut self.values[root as usize];
            if values.len() <= slot as usize {
                values.resize(slot as usize + 1, None);
            }
            values[slot as usize] = Some(value);
        }
    }

    pub fn set_segments(&mut self, segments: impl IntoIterator<Item = String>) {
        self.segments = segments.into_iter().collect();
    }

    pub fn set_now(&mut self, now: Timestamp) {
        self.now = Some(now);
    }
}

fn env_segment_names(env: &Env) -> Vec<String> {
    // Indices handed out by `Env::set_segments` follow the order of the names given.
    let mut names = Vec::new();
    let mut i = 0;
    while let Some(name) = env.segment_name(i) {
        names.push(name.to_string());
        i += 1;
    }
    names
}

impl Activation for Bindings {
    fn get(&self, root: Root, slot: u32) -> Option<&Value> {
        self.values[root as usize].get(slot as usize)?.as_ref()
    }

    fn has_segment(&self, segment: u32) -> bool {
        self.segment_names
            .get(segment as usize)
            .is_some_and(|name| self.has_segment_named(name))
    }

    fn segments(&self) -> Value {
        Value::list(self.segments.iter().map(|s| Value::string(s.as_str())))
    }

    fn has_segment_named(&self, name: &str) -> bool {
        self.segments.iter().any(|s| s.eq_ignore_ascii_case(name))
    }

    fn now(&self) -> Timestamp {
        self.now.unwrap_or(Timestamp(0))
    }
}
