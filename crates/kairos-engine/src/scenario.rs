//! Running scenario files: each step is a call against a [`Target`] (in-process here, a server
//! group over HTTP elsewhere), each expectation is checked, and every failure is reported with
//! its scenario, step, expected and actual values, and the explain output of that step.

use std::collections::{BTreeSet, HashMap};

use kairos_model::model::{Duration, Scalar};
use kairos_model::scenario::{
    Expect, Param, Params, Scenario, ScenarioFile, SessionStart, StepAction,
};
use kairos_rules::Value;

/// A session call with its parameters resolved to values.
#[derive(Clone, Debug, PartialEq)]
pub enum Call {
    StartSession {
        session_id: Option<String>,
        audience_level: Option<String>,
        audience_id: Vec<(String, Value)>,
        params: Vec<(String, Value)>,
    },
    GetOffers {
        requests: Vec<(String, u32)>,
        params: Vec<(String, Value)>,
        allow_duplicates: bool,
    },
    PostEvent {
        event: String,
        params: Vec<(String, Value)>,
    },
    SetAudience {
        audience_level: Option<String>,
        audience_id: Vec<(String, Value)>,
        params: Vec<(String, Value)>,
    },
    GetProfile,
    EndSession,
    Wait(Duration),
}

/// What a call returned, as far as expectations look at it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Per requested interaction point: (offer code, treatment code) in order.
    pub offers: Vec<(String, Vec<(String, String)>)>,
    /// Message codes.
    pub messages: Vec<String>,
    /// Readable explain output of a get offers, when the target provides it.
    pub explain: Option<String>,
}

/// Where scenarios run.
pub trait Target {
    fn call(&mut self, call: &Call) -> Result<Outcome, String>;
    /// The current session's segments.
    fn segments(&mut self) -> Result<Vec<String>, String>;
    /// The names the channel defines (asked once per file): an expectation naming another
    /// offer or segment, or a call to an interaction point it lacks (unless the step expects
    /// the `UNKNOWN_INTERACTION_POINT` warning), is a mistake in the scenario, not a pass.
    fn names(&mut self) -> Result<ChannelNames, String>;
}

/// The names a channel defines, as scenario files may name them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChannelNames {
    pub offers: Vec<String>,
    pub segments: Vec<String>,
    pub interaction_points: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// 1-based step number; 0 is the scenario's `start`.
    pub step: usize,
    pub action: &'static str,
    pub line: u32,
    pub expectation: &'static str,
    pub expected: String,
    pub actual: String,
    pub explain: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioReport {
    pub name: String,
    pub steps: usize,
    pub failures: Vec<Failure>,
}

impl ScenarioReport {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

#[derive(Default)]
struct Codes {
    by_offer: HashMap<String, String>,
    last: Option<String>,
}

impl Codes {
    fn resolve(&self, params: &Params) -> Result<Vec<(String, Value)>, String> {
        params
            .iter()
            .map(|(name, p)| {
                let value = match p {
                    Param::Value(s) => scalar(s),
                    Param::Last => Value::string(
                        self.last
                            .clone()
                            .ok_or("$last: no get offers has returned an offer yet")?
                            .as_str(),
                    ),
                    Param::Code(offer) => Value::string(
                        self.by_offer
                            .get(&offer.to_ascii_lowercase())
                            .ok_or_else(|| {
                                format!(
                                    "$code.{offer}: {offer} has not been returned in this scenario"
                                )
                            })?
                            .as_str(),
                    ),
                };
                Ok((name.clone(), value))
            })
            .collect()
    }
}

fn scalar(s: &Scalar) -> Value {
    match s {
        Scalar::Bool(b) => Value::Bool(*b),
        Scalar::Int(i) => Value::Int(*i),
        Scalar::Float(f) => Value::Double(*f),
        Scalar::String(s) => Value::string(s.as_str()),
    }
}

fn start_call(s: &SessionStart, codes: &Codes) -> Result<Call, String> {
    Ok(Call::StartSession {
        session_id: s.session_id.clone(),
        audience_level: s.audience_level.clone(),
        audience_id: codes.resolve(&s.audience_id)?,
        params: codes.resolve(&s.params)?,
    })
}

fn resolve(action: &StepAction, codes: &Codes) -> Result<Call, String> {
    Ok(match action {
        StepAction::StartSession(s) => start_call(s, codes)?,
        StepAction::SetAudience(s) => Call::SetAudience {
            audience_level: s.audience_level.clone(),
            audience_id: codes.resolve(&s.audience_id)?,
            params: codes.resolve(&s.params)?,
        },
        StepAction::GetOffers {
            requests,
            params,
            allow_duplicates,
        } => Call::GetOffers {
            requests: requests.clone(),
            params: codes.resolve(params)?,
            allow_duplicates: *allow_duplicates,
        },
        StepAction::PostEvent { event, params } => Call::PostEvent {
            event: event.clone(),
            params: codes.resolve(params)?,
        },
        StepAction::GetProfile => Call::GetProfile,
        StepAction::EndSession => Call::EndSession,
        StepAction::Wait(d) => Call::Wait(*d),
    })
}

/// Runs every scenario of a file in order against one target (they share its state).
pub fn run_file(file: &ScenarioFile, target: &mut dyn Target) -> Vec<ScenarioReport> {
    let mut known = None;
    file.scenarios
        .iter()
        .map(|s| run_scenario(s, target, &mut known))
        .collect()
}

/// The channel's names in upper case, asked of the target when a step first names one, and
/// kept for the rest of the file once read.
struct Known {
    offers: BTreeSet<String>,
    segments: BTreeSet<String>,
    interaction_points: BTreeSet<String>,
}

type KnownNames = Option<Known>;

/// The names of `kind` that `known` lacks, as a failure.
fn unknown_names(
    kind: &'static str,
    named: &[&String],
    known: &BTreeSet<String>,
) -> Option<(&'static str, String, String)> {
    let unknown: Vec<&str> = named
        .iter()
        .filter(|n| !known.contains(&n.to_ascii_uppercase()))
        .map(|n| n.as_str())
        .collect();
    (!unknown.is_empty()).then(|| {
        (
            "names",
            format!("{kind} of the channel"),
            format!("no such {kind}: {}", unknown.join(", ")),
        )
    })
}

fn run_scenario(
    scenario: &Scenario,
    target: &mut dyn Target,
    known: &mut KnownNames,
) -> ScenarioReport {
    let mut report = ScenarioReport {
        name: scenario.name.clone(),
        steps: scenario.steps.len(),
        failures: Vec::new(),
    };
    let mut codes = Codes::default();
    let fail = |step: usize,
                action: &'static str,
                line: u32,
                what: &'static str,
                expected: String,
                actual: String| Failure {
        step,
        action,
        line,
        expectation: what,
        expected,
        actual,
        explain: None,
    };
    if let Some(start) = &scenario.start {
        let result = start_call(start, &codes).and_then(|call| target.call(&call));
        if let Err(e) = result {
            report.failures.push(fail(
                0,
                "start_session",
                scenario.loc.line,
                "succeeds",
                "success".into(),
                e,
            ));
            return report;
        }
    }
    for (i, step) in scenario.steps.iter().enumerate() {
        let n = i + 1;
        let action = step.action.name();
        let result = resolve(&step.action, &codes).and_then(|call| target.call(&call));
        let outcome = match (result, &step.expect.error) {
            (Ok(outcome), None) => outcome,
            (Err(e), Some(code)) if e.starts_with(code.as_str()) => continue,
            (Ok(_), Some(code)) => {
                report.failures.push(fail(
                    n,
                    action,
                    step.loc.line,
                    "error",
                    code.clone(),
                    "success".into(),
                ));
                continue;
            }
            (Err(e), expected) => {
                let expected = expected.clone().unwrap_or_else(|| "success".into());
                report
                    .failures
                    .push(fail(n, action, step.loc.line, "error", expected, e));
                return report;
            }
        };
        if matches!(step.action, StepAction::GetOffers { .. }) {
            codes.last = outcome
                .offers
                .iter()
                .flat_map(|(_, o)| o.first())
                .map(|(_, t)| t.clone())
                .next();
            for (code, treatment) in outcome.offers.iter().flat_map(|(_, o)| o) {
                codes
                    .by_offer
                    .insert(code.to_ascii_lowercase(), treatment.clone());
            }
        }
        // The step's explain output goes with its first failure only.
        for (i, (what, expected, actual)) in check(&step.expect, &outcome, target, known)
            .into_iter()
            .enumerate()
        {
            let mut f = fail(n, action, step.loc.line, what, expected, actual);
            if i == 0 {
                f.explain = outcome.explain.clone();
            }
            report.failures.push(f);
        }
    }
    report
}

fn list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

fn upper_set(items: &[String]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_ascii_uppercase()).collect()
}

/// The failed expectations of one step: (key, expected, actual).
fn check(
    expect: &Expect,
    outcome: &Outcome,
    target: &mut dyn Target,
    known: &mut KnownNames,
) -> Vec<(&'static str, String, String)> {
    let mut failures = Vec::new();
    let offers: Vec<&String> = [&expect.codes, &expect.contains, &expect.absent]
        .into_iter()
        .flatten()
        .flatten()
        .collect();
    let segments: Vec<&String> = expect.segments.iter().flatten().collect();
    // Asking for a point the channel lacks is a test of that only when it says so.
    let expects_unknown_ip = expect
        .warnings
        .iter()
        .flatten()
        .any(|w| w == "UNKNOWN_INTERACTION_POINT");
    let ips: Vec<&String> = match expects_unknown_ip {
        true => Vec::new(),
        false => outcome.offers.iter().map(|(ip, _)| ip).collect(),
    };
    if !(offers.is_empty() && segments.is_empty() && ips.is_empty()) {
        let read = match known {
            Some(known) => Ok(&*known),
            None => target.names().map(|names| {
                &*known.insert(Known {
                    offers: upper_set(&names.offers),
                    segments: upper_set(&names.segments),
                    interaction_points: upper_set(&names.interaction_points),
                })
            }),
        };
        match read {
            Ok(known) => failures.extend(
                [
                    unknown_names("offer", &offers, &known.offers),
                    unknown_names("segment", &segments, &known.segments),
                    unknown_names("interaction point", &ips, &known.interaction_points),
                ]
                .into_iter()
                .flatten(),
            ),
            Err(e) => failures.push(("names", "the channel's names".to_string(), e)),
        }
    }
    let served: Vec<String> = outcome
        .offers
        .iter()
        .flat_map(|(_, o)| o.iter().map(|(c, _)| c.clone()))
        .collect();
    let served_upper = upper_set(&served);
    if let Some(codes) = &expect.codes
        && !codes
            .iter()
            .map(|c| c.to_ascii_uppercase())
            .eq(served.iter().map(|c| c.to_ascii_uppercase()))
    {
        failures.push(("codes", list(codes), list(&served)));
    }
    if let Some(contains) = &expect.contains {
        let missing: Vec<String> = contains
            .iter()
            .filter(|c| !served_upper.contains(&c.to_ascii_uppercase()))
            .cloned()
            .collect();
        if !missing.is_empty() {
            failures.push((
                "contains",
                list(contains),
                format!("{} (missing {})", list(&served), list(&missing)),
            ));
        }
    }
    if let Some(absent) = &expect.absent {
        let present: Vec<String> = absent
            .iter()
            .filter(|c| served_upper.contains(&c.to_ascii_uppercase()))
            .cloned()
            .collect();
        if !present.is_empty() {
            failures.push((
                "absent",
                format!("none of {}", list(absent)),
                format!("{} (present {})", list(&served), list(&present)),
            ));
        }
    }
    if let Some(default) = expect.default
        && default != served.is_empty()
    {
        let expected = if default {
            "only default strings"
        } else {
            "at least one offer"
        };
        failures.push(("default", expected.into(), list(&served)));
    }
    if let Some(expected) = &expect.warnings {
        let actual: BTreeSet<String> = outcome.messages.iter().cloned().collect();
        let wanted: BTreeSet<String> = expected.iter().cloned().collect();
        if actual != wanted {
            failures.push((
                "warnings",
                list(expected),
                list(&actual.into_iter().collect::<Vec<_>>()),
            ));
        }
    }
    if let Some(expected) = &expect.segments {
        match target.segments() {
            Ok(actual) if upper_set(&actual) == upper_set(expected) => {}
            Ok(actual) => {
                let mut sorted = actual;
                sorted.sort();
                failures.push(("segments", list(expected), list(&sorted)));
            }
            Err(e) => failures.push(("segments", list(expected), e)),
        }
    }
    failures
}

/// A readable report: one line per scenario, the failures in detail.
pub fn format_report(file: &str, reports: &[ScenarioReport]) -> String {
    let mut out = String::new();
    for r in reports {
        let status = if r.passed() { "ok  " } else { "FAIL" };
        out.push_str(&format!("{status} {file}: {}\n", r.name));
        for f in &r.failures {
            let step = if f.step == 0 {
                "start".to_string()
            } else {
                format!("step {} ({})", f.step, f.action)
            };
            out.push_str(&format!(
                "     {file}:{}: {step}: expect {}: expected {}, got {}\n",
                f.line, f.expectation, f.expected, f.actual
            ));
            if let Some(explain) = &f.explain {
                for line in explain.lines() {
                    out.push_str(&format!("       {line}\n"));
                }
            }
        }
    }
    out
}

/// How many scenarios of one channel passed and failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelTally {
    pub channel: String,
    pub passed: usize,
    pub failed: usize,
}

/// What running several scenario files found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilesRun {
    pub passed: usize,
    /// Failed scenarios, and files that did not parse or could not run (one each).
    pub failed: usize,
    /// Per channel, in the order first met.
    pub channels: Vec<ChannelTally>,
}

/// Runs one scenario file (named as shown) somewhere, or says why it cannot.
pub type RunFile<'a> = dyn FnMut(&ScenarioFile, &str) -> Result<Vec<ScenarioReport>, String> + 'a;

/// Runs parsed scenario files, each through `run` (which says why a file cannot run), and
/// writes the report to `out` as it goes, ending with the totals.
pub fn run_files(
    files: &[(String, Result<ScenarioFile, kairos_model::Rejected>)],
    run: &mut RunFile,
    out: &mut dyn FnMut(&str),
) -> FilesRun {
    let mut totals = FilesRun::default();
    for (shown, parsed) in files {
        let file = match parsed {
            Ok(file) => file,
            Err(rejected) => {
                for d in &rejected.0 {
                    out(&format!("{d}\n"));
                }
                totals.failed += 1;
                continue;
            }
        };
        match run(file, shown) {
            Ok(reports) => {
                out(&format_report(shown, &reports));
                let ok = reports.iter().filter(|r| r.passed()).count();
                let bad = reports.len() - ok;
                totals.passed += ok;
                totals.failed += bad;
                let channel = &file.channel.value;
                match totals.channels.iter_mut().find(|t| t.channel == *channel) {
                    Some(t) => (t.passed, t.failed) = (t.passed + ok, t.failed + bad),
                    None => totals.channels.push(ChannelTally {
                        channel: channel.clone(),
                        passed: ok,
                        failed: bad,
                    }),
                }
            }
            Err(e) => {
                out(&format!("{e}\n"));
                totals.failed += 1;
            }
        }
    }
    out(&format!(
        "scenarios: {} passed, {} failed\n",
        totals.passed, totals.failed
    ));
    totals
}
