//! Scenario files: given this visitor and these calls, these offers come back. The format is
//! specified in `operations.md`; errors are located like a channel file's.

use crate::decode::{Decoder, Entries, has_key};
use crate::loc::{Loc, Located, Rejected};
use crate::model::{Date, Duration, Name, Scalar};
use crate::yaml::{self, Node, NodeKind};

#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioFile {
    pub channel: Name,
    /// The clock the scenarios start at (an extension: by default, the time of the run).
    pub now: Option<Located<Date>>,
    pub scenarios: Vec<Scenario>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub loc: Loc,
    pub start: Option<SessionStart>,
    pub steps: Vec<ScenarioStep>,
}

/// A parameter value: a literal, `$code.OFFER` (the treatment code most recently returned for
/// that offer) or `$last` (the first treatment code of the previous get offers).
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    Value(Scalar),
    Code(String),
    Last,
}

pub type Params = Vec<(String, Param)>;

#[derive(Clone, Debug, PartialEq, Default)]
pub struct SessionStart {
    pub session_id: Option<String>,
    pub audience_level: Option<String>,
    pub audience_id: Params,
    pub params: Params,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StepAction {
    StartSession(SessionStart),
    GetOffers {
        requests: Vec<(String, u32)>,
        params: Params,
        allow_duplicates: bool,
    },
    PostEvent {
        event: String,
        params: Params,
    },
    SetAudience(SessionStart),
    GetProfile,
    EndSession,
    /// Moves the scenario's clock forward (an extension, for suppression and pattern windows).
    Wait(Duration),
}

impl StepAction {
    pub fn name(&self) -> &'static str {
        match self {
            StepAction::StartSession(_) => "start_session",
            StepAction::GetOffers { .. } => "get_offers",
            StepAction::PostEvent { .. } => "post_event",
            StepAction::SetAudience(_) => "set_audience",
            StepAction::GetProfile => "get_profile",
            StepAction::EndSession => "end_session",
            StepAction::Wait(_) => "wait",
        }
    }
}

/// What a step must observe; absent keys are not checked.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Expect {
    /// Exact offer codes in order, across all requested interaction points.
    pub codes: Option<Vec<String>>,
    pub contains: Option<Vec<String>>,
    pub absent: Option<Vec<String>>,
    /// Only default strings came back.
    pub default: Option<bool>,
    /// The session's segments, as an exact set.
    pub segments: Option<Vec<String>>,
    /// Message codes of the response, as an exact set.
    pub warnings: Option<Vec<String>>,
    /// The call fails with this error code (an extension: `start_session` with a bad
    /// audience, for example).
    pub error: Option<String>,
}

impl Expect {
    pub fn is_empty(&self) -> bool {
        *self == Expect::default()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioStep {
    pub action: StepAction,
    pub expect: Expect,
    pub loc: Loc,
}

const STEP_ACTIONS: &[&str] = &[
    "start_session",
    "get_offers",
    "post_event",
    "set_audience",
    "get_profile",
    "end_session",
    "wait",
];

/// Reads a scenario file, rejecting it whole with every error located.
pub fn parse_scenarios(file: &str, text: &str) -> Result<ScenarioFile, Rejected> {
    let root = yaml::parse(text).map_err(|errors| {
        crate::located(
            file,
            errors.into_iter().map(|e| (e.loc, e.message)).collect(),
        )
    })?;
    let mut d = Decoder::new();
    let result = scenario_file(&mut d, &root);
    match result {
        Some(f) if d.errors.is_empty() => Ok(f),
        _ => Err(crate::located(file, d.errors)),
    }
}

fn scenario_file(d: &mut Decoder, root: &Node) -> Option<ScenarioFile> {
    let entries = d.map(root, "a scenario file")?;
    let (mut channel, mut now, mut scenarios) = (None, None, Vec::new());
    for (key, value) in entries {
        match d.key(key) {
            Some("channel") => channel = d.ident(value, "the channel name"),
            Some("now") => now = d.date(value, "now"),
            Some("scenarios") => scenarios = d.list(value, "scenarios", scenario),
            Some(other) => d.unknown_key(
                key.loc,
                other,
                "a scenario file",
                &["channel", "now", "scenarios"],
            ),
            None => {}
        }
    }
    if channel.is_none() && !has_key(entries, "channel") {
        d.error(
            root.loc,
            "a scenario file names its channel: add 'channel: <name>'",
        );
    }
    Some(ScenarioFile {
        channel: channel?,
        now,
        scenarios,
    })
}

fn scenario(d: &mut Decoder, node: &Node) -> Option<Scenario> {
    let entries = d.map(node, "a scenario")?;
    let mut s = Scenario {
        name: String::new(),
        loc: node.loc,
        start: None,
        steps: Vec::new(),
    };
    for (key, value) in entries {
        match d.key(key) {
            Some("name") => s.name = d.string(value, "name").unwrap_or_default(),
            Some("start") => s.start = session_start(d, value, "start"),
            Some("steps") => s.steps = d.list(value, "steps", step),
            Some(other) => d.unknown_key(key.loc, other, "a scenario", &["name", "start", "steps"]),
            None => {}
        }
    }
    if s.name.is_empty() {
        d.error(node.loc, "a scenario needs a name, shown in its report");
    }
    Some(s)
}

fn step(d: &mut Decoder, node: &Node) -> Option<ScenarioStep> {
    let entries = d.map(node, "a step")?;
    let mut action = None;
    let mut expect = Expect::default();
    for (key, value) in entries {
        let Some(k) = d.key(key) else { continue };
        if k == "expect" {
            expect = expectation(d, value);
            continue;
        }
        if !STEP_ACTIONS.contains(&k) {
            d.unknown_key(key.loc, k, "a step", &[STEP_ACTIONS, &["expect"]].concat());
            continue;
        }
        if action.is_some() {
            d.error(
                key.loc,
                "a step does one thing; put each in its own list item",
            );
            continue;
        }
        action = match k {
            "start_session" => session_start(d, value, k).map(StepAction::StartSession),
            "set_audience" => session_start(d, value, k).map(StepAction::SetAudience),
            "get_offers" => get_offers(d, value),
            "post_event" => post_event(d, value),
            "get_profile" => Some(StepAction::GetProfile),
            "end_session" => Some(StepAction::EndSession),
            _ => d.duration(value, "wait").map(|w| StepAction::Wait(w.value)),
        };
    }
    if action.is_none() && !entries.iter().any(|(k, _)| matches!(&k.kind, NodeKind::Scalar { text, .. } if STEP_ACTIONS.contains(&text.as_str()))) {
        d.error(node.loc, format!("a step needs one of {}", STEP_ACTIONS.join(", ")));
    }
    Some(ScenarioStep {
        action: action?,
        expect,
        loc: node.loc,
    })
}

fn params(d: &mut Decoder, node: &Node, what: &str) -> Params {
    let Some(entries) = d.map(node, what) else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|(k, v)| {
            let name = d.key(k)?.to_string();
            let value = d.scalar_value(v, "a parameter value")?;
            let param = match &value.value {
                Scalar::String(s) if s == "$last" => Param::Last,
                Scalar::String(s) if s.starts_with("$code.") => {
                    Param::Code(s["$code.".len()..].to_string())
                }
                _ => Param::Value(value.value),
            };
            Some((name, param))
        })
        .collect()
}

fn session_start(d: &mut Decoder, node: &Node, what: &str) -> Option<SessionStart> {
    let entries = d.map(node, what)?;
    let mut s = SessionStart::default();
    for (key, value) in entries {
        match d.key(key) {
            Some("session_id") => s.session_id = d.string(value, "session_id"),
            Some("audience_level") => {
                s.audience_level = d.ident(value, "audience_level").map(|n| n.value)
            }
            Some("audience_id") => s.audience_id = params(d, value, "audience_id"),
            Some("params") => s.params = params(d, value, "params"),
            Some(other) => d.unknown_key(
                key.loc,
                other,
                what,
                &["session_id", "audience_level", "audience_id", "params"],
            ),
            None => {}
        }
    }
    Some(s)
}

fn get_offers(d: &mut Decoder, node: &Node) -> Option<StepAction> {
    let entries: Entries<'_> = d.map(node, "get_offers")?;
    let (mut ip, mut count, mut requests, mut p, mut dup) =
        (None, 1u32, Vec::new(), Vec::new(), false);
    for (key, value) in entries {
        match d.key(key) {
            Some("ip") => ip = d.ident(value, "an interaction point").map(|n| n.value),
            Some("count") => {
                count = d
                    .int_in(value, "count", 1, 1000)
                    .map_or(1, |c| c.value as u32)
            }
            Some("requests") => {
                requests = d.list(value, "requests", |d, n| {
                    let entries = d.map(n, "a request")?;
                    let (mut ip, mut count) = (None, 1u32);
                    for (k, v) in entries {
                        match d.key(k) {
                            Some("ip") => ip = d.ident(v, "an interaction point").map(|n| n.value),
                            Some("count") => {
                                count = d.int_in(v, "count", 1, 1000).map_or(1, |c| c.value as u32)
                            }
                            Some(other) => {
                                d.unknown_key(k.loc, other, "a request", &["ip", "count"])
                            }
                            None => {}
                        }
                    }
                    Some((ip?, count))
                })
            }
            Some("params") => p = params(d, value, "params"),
            Some("allow_duplicates") => {
                dup = d.bool(value, "allow_duplicates").is_some_and(|b| b.value)
            }
            Some(other) => d.unknown_key(
                key.loc,
                other,
                "get_offers",
                &["ip", "count", "requests", "params", "allow_duplicates"],
            ),
            None => {}
        }
    }
    if let Some(ip) = ip {
        requests.insert(0, (ip, count));
    }
    if requests.is_empty() {
        d.error(node.loc, "get_offers needs 'ip' or 'requests'");
        return None;
    }
    Some(StepAction::GetOffers {
        requests,
        params: p,
        allow_duplicates: dup,
    })
}

fn post_event(d: &mut Decoder, node: &Node) -> Option<StepAction> {
    let entries = d.map(node, "post_event")?;
    let (mut event, mut p) = (None, Vec::new());
    for (key, value) in entries {
        match d.key(key) {
            Some("event") => event = d.ident(value, "an event").map(|n| n.value),
            Some("params") => p = params(d, value, "params"),
            Some(other) => d.unknown_key(key.loc, other, "post_event", &["event", "params"]),
            None => {}
        }
    }
    if event.is_none() && !has_key(entries, "event") {
        d.error(node.loc, "post_event needs 'event'");
    }
    Some(StepAction::PostEvent {
        event: event?,
        params: p,
    })
}

fn expectation(d: &mut Decoder, node: &Node) -> Expect {
    let mut e = Expect::default();
    let Some(entries) = d.map(node, "expect") else {
        return e;
    };
    let names = |d: &mut Decoder, v: &Node, what: &str| {
        Some(d.list(v, what, |d, n| d.string(n, what).or(Some(String::new()))))
    };
    for (key, value) in entries {
        match d.key(key) {
            Some("codes") => e.codes = names(d, value, "codes"),
            Some("contains") => e.contains = names(d, value, "contains"),
            Some("absent") => e.absent = names(d, value, "absent"),
            Some("segments") => e.segments = names(d, value, "segments"),
            Some("warnings") => e.warnings = names(d, value, "warnings"),
            Some("default") => e.default = d.bool(value, "default").map(|b| b.value),
            Some("error") => e.error = d.string(value, "error"),
            Some(other) => d.unknown_key(
                key.loc,
                other,
                "expect",
                &[
                    "codes", "contains", "absent", "default", "segments", "warnings", "error",
                ],
            ),
            None => {}
        }
    }
    e
}
