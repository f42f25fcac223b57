//! Test runs for the gates: scenario files and load tests submitted to the control plane
//! (`POST /api/groups/{group}/test-runs`), which runs them against the group's runtime
//! itself and records the outcome with the version the group runs. Clients submit work and
//! read its progress; they never post a result.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a test result is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResultKind {
    /// Scenario files against the group's runtime.
    Scenarios,
    /// Realistic sessions at a concurrency for a duration, against thresholds.
    Loadtest,
}

impl ResultKind {
    pub fn name(self) -> &'static str {
        match self {
            ResultKind::Scenarios => "scenarios",
            ResultKind::Loadtest => "loadtest",
        }
    }
}

/// What a scenario run's result says, in its `summary`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ScenarioSummary {
    pub passed: usize,
    pub failed: usize,
    #[serde(default)]
    pub files: Vec<String>,
    #[serde(default)]
    pub text: String,
    /// The control plane's test run that observed it; a result without one was posted by
    /// a client (an earlier version allowed that) and passes no gate.
    #[serde(default)]
    pub run: Option<String>,
}

/// What a load test's result says, in its `summary`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct LoadtestSummary {
    pub requests: u64,
    pub requests_per_second: f64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The thresholds it ran with; a load test with neither passes no gate.
    pub max_p99_ms: Option<f64>,
    pub min_rps: Option<f64>,
    /// How long it ran; shorter than the group's `min_loadtest_seconds` passes no gate.
    pub duration_seconds: f64,
    #[serde(default)]
    pub failures: Vec<String>,
    #[serde(default)]
    pub text: String,
    /// As [`ScenarioSummary::run`].
    #[serde(default)]
    pub run: Option<String>,
}

/// The audience IDs a load test's sessions draw from, both included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdRange {
    pub first: u64,
    pub last: u64,
}

/// A load test: sessions (start, get offers, a contact event, end) one after another on
/// `concurrency` connections for `duration_seconds`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadtestPlan {
    #[schema(min_length = 1)]
    pub channel: String,
    #[schema(minimum = 1, maximum = 600)]
    pub duration_seconds: u32,
    #[serde(default = "default_concurrency")]
    #[schema(minimum = 1, maximum = 256)]
    pub concurrency: u32,
    /// Fails when the 99th percentile latency is above this, in milliseconds.
    #[serde(default)]
    pub max_p99_ms: Option<f64>,
    /// Fails when fewer requests per second were served.
    #[serde(default)]
    pub min_rps: Option<f64>,
    /// Numbers to draw audience IDs from; absent, the IDs of the channel's profile table
    /// (up to the first 10,000 of its rows).
    #[serde(default)]
    pub audience_ids: Option<IdRange>,
}

fn default_concurrency() -> u32 {
    8
}

/// A scenario file as submitted: its name (for reports) and its YAML text.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmittedFile {
    pub name: String,
    pub text: String,
}

/// `POST /api/groups/{group}/test-runs`: what to run against the group's runtime.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TestRunRequest {
    /// Scenario files; each names its channel, and each channel's result is recorded with
    /// the version of it the group runs.
    Scenarios {
        files: Vec<SubmittedFile>,
    },
    Loadtest(LoadtestPlan),
}

impl TestRunRequest {
    pub fn kind(&self) -> ResultKind {
        match self {
            TestRunRequest::Scenarios { .. } => ResultKind::Scenarios,
            TestRunRequest::Loadtest(_) => ResultKind::Loadtest,
        }
    }
}

/// Where a test run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Running,
    /// It ran and everything passed.
    Passed,
    /// It ran and something failed; the failure is recorded.
    Failed,
    /// It could not run (no runtime, the runtime does not run the group's version yet,
    /// unreachable); nothing is recorded.
    Error,
}

/// How far a load test is.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct LoadProgress {
    pub elapsed_seconds: f64,
    pub duration_seconds: f64,
    pub requests: u64,
}

/// A result the run recorded, for the gates.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RecordedResult {
    pub channel: String,
    pub version: i64,
    pub passed: bool,
}

/// A test run the control plane runs or ran (`GET /api/test-runs/{id}`).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TestRun {
    pub id: String,
    pub group: String,
    pub kind: ResultKind,
    pub by: String,
    pub started_at: String,
    pub state: RunState,
    /// The runtime instance it runs against, once chosen.
    pub runtime: Option<String>,
    /// A load test's progress while it runs.
    pub progress: Option<LoadProgress>,
    /// What it found, for people: each scenario's outcome and failures, or the load
    /// test's figures; why it could not run.
    pub report: String,
    pub results: Vec<RecordedResult>,
}
