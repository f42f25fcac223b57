//! Test runs: the gates' scenario and load test results are facts the control plane
//! observed. A client submits scenario files or a load test plan for a group; the control
//! plane finds the group's runtime serving the version the group has active, runs the work
//! against it (with a touchpoint token of its own, for the run only, when the group is
//! closed) and records each channel's outcome with that version. Runs are kept in memory,
//! the latest [`KEPT_RUNS`], for their submitters to follow; their results are stored.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use kairos_api::control::{InstanceView, TokenKind};
use kairos_api::loadtest;
use kairos_api::remote::Remote;
use kairos_api::testrun::{
    LoadProgress, LoadtestPlan, RecordedResult, ResultKind, RunState, ScenarioSummary, TestRun,
    TestRunRequest,
};
use kairos_api::{Client, Code, Problem};
use kairos_engine::scenario::{FilesRun, run_file, run_files};
use kairos_model::Rejected;
use kairos_model::scenario::{ScenarioFile, parse_scenarios};
use kairos_model::table::TableSchema;
use kairos_rules::Value;
use kairos_rules::time::Timestamp;
use kairos_store::ProfileStore;
use kairos_store::control::{Group, TestResult};
use serde_json::Value as J;

use super::{Caller, ControlPlane, not_found, storage, time, within};
use crate::auth::{self, Role};

/// Finished runs kept for their submitters to read.
const KEPT_RUNS: usize = 64;
/// Runs at once, over every group: each holds connections and threads.
const MOST_RUNNING: usize = 4;
/// Scenario files in one run.
const MOST_FILES: usize = 100;
const LONGEST_LOADTEST_SECONDS: u32 = 600;
const MOST_CONNECTIONS: u32 = 256;
/// How long a run waits for the group's runtime to report the version the group has
/// active (it was just deployed), and then to accept the run's token.
const CATCH_UP: Duration = Duration::from_secs(15);
/// How long a runtime that just started takes to report (it reports on its first poll).
const FIRST_REPORT: Duration = Duration::from_secs(5);
/// How long a run's token outlives the run's planned end, should the control plane stop
/// before revoking it.
const TOKEN_SLACK_SECONDS: i64 = 600;

/// The runs in flight and the latest finished ones.
#[derive(Default)]
pub(super) struct RunBook {
    runs: VecDeque<TestRun>,
}

impl RunBook {
    fn running(&self) -> impl Iterator<Item = &TestRun> {
        self.runs.iter().filter(|r| r.state == RunState::Running)
    }

    fn add(&mut self, run: TestRun) {
        self.runs.push_back(run);
        while self.runs.len() > KEPT_RUNS {
            match self.runs.iter().position(|r| r.state != RunState::Running) {
                Some(oldest) => self.runs.remove(oldest),
                None => break,
            };
        }
    }

    fn update(&mut self, id: &str, change: impl FnOnce(&mut TestRun)) {
        if let Some(run) = self.runs.iter_mut().find(|r| r.id == id) {
            change(run);
        }
    }
}

/// What a run does, checked and parsed at submission.
enum Work {
    Scenarios(Vec<(String, Result<ScenarioFile, Rejected>)>),
    Loadtest(LoadtestPlan),
}

impl Work {
    fn channels(&self) -> Vec<String> {
        let mut channels: Vec<String> = Vec::new();
        let named: Vec<&str> = match self {
            Work::Scenarios(files) => files
                .iter()
                .filter_map(|(_, f)| f.as_ref().ok())
                .map(|f| f.channel.value.as_str())
                .collect(),
            Work::Loadtest(plan) => vec![plan.channel.as_str()],
        };
        for c in named {
            if !channels.iter().any(|k| k.eq_ignore_ascii_case(c)) {
                channels.push(c.to_string());
            }
        }
        channels
    }
}

/// Where a run goes: the runtime's address, and per channel the version it runs.
struct Target {
    url: String,
    versions: Vec<(String, i64)>,
}

/// A result to record, per channel.
struct Outcome {
    kind: ResultKind,
    channel: String,
    passed: bool,
    summary: J,
}

fn checked(request: TestRunRequest) -> Result<Work, Problem> {
    match request {
        TestRunRequest::Scenarios { files } => {
            if files.is_empty() {
                return Err(Problem::bad_request(
                    "files: give at least one scenario file",
                ));
            }
            within("files", files.len(), 1..=MOST_FILES)?;
            Ok(Work::Scenarios(
                files
                    .into_iter()
                    .map(|f| {
                        let parsed = parse_scenarios(&f.name, &f.text);
                        (f.name, parsed)
                    })
                    .collect(),
            ))
        }
        TestRunRequest::Loadtest(plan) => {
            if plan.channel.trim().is_empty() {
                return Err(Problem::bad_request("channel: name the channel to load"));
            }
            within(
                "duration_seconds",
                plan.duration_seconds,
                1..=LONGEST_LOADTEST_SECONDS,
            )?;
            within("concurrency", plan.concurrency, 1..=MOST_CONNECTIONS)?;
            for (name, threshold) in [("max_p99_ms", plan.max_p99_ms), ("min_rps", plan.min_rps)] {
                if threshold.is_some_and(|t| !(t.is_finite() && t > 0.0)) {
                    return Err(Problem::bad_request(format!(
                        "{name}: a threshold is a positive number"
                    )));
                }
            }
            if plan.audience_ids.is_some_and(|ids| ids.first > ids.last) {
                return Err(Problem::bad_request(
                    "audience_ids: first is above last".to_string(),
                ));
            }
            Ok(Work::Loadtest(plan))
        }
    }
}

impl ControlPlane {
    /// Starts a test run against `group`'s runtime; it goes on after the answer. Anyone
    /// with a role may run tests; what they find is recorded as the control plane saw it.
    pub async fn start_test_run(
        self: &Arc<Self>,
        caller: &Caller,
        group: &str,
        request: TestRunRequest,
    ) -> Result<TestRun, Problem> {
        caller.require(&Role::ALL)?;
        let group = self.group_named(group).await?;
        // A test writes its sessions' contacts into the group's history, as a visitor would.
        if group.production {
            return Err(Problem::bad_request(format!(
                "{} is a production group: tests run on a staging group, where their sessions \
                 do not count as customers'",
                group.name
            )));
        }
        let kind = request.kind();
        let work = checked(request)?;
        let run = TestRun {
            id: auth::new_id(),
            group: group.name.clone(),
            kind,
            by: caller.name.clone(),
            started_at: time(self.now()),
            state: RunState::Running,
            runtime: None,
            progress: None,
            report: String::new(),
            results: Vec::new(),
        };
        {
            let mut book = self.book();
            if book.running().count() >= MOST_RUNNING {
                return Err(Problem::new(
                    Code::LimitExceeded,
                    format!("{MOST_RUNNING} test runs are running; wait for one to end"),
                ));
            }
            // Two load tests on one group would measure each other.
            if let Some(other) = book
                .running()
                .find(|r| r.kind == ResultKind::Loadtest && r.group == group.name)
                .filter(|_| kind == ResultKind::Loadtest)
            {
                return Err(Problem::new(
                    Code::Conflict,
                    format!(
                        "{} is running a load test on {} (run {}); wait for it to end",
                        other.by, other.group, other.id
                    ),
                ));
            }
            book.add(run.clone());
        }
        let (cp, id, by) = (self.clone(), run.id.clone(), caller.name.clone());
        tokio::spawn(async move {
            let (state, results) = match cp.execute(&id, &by, &group, work).await {
                Ok(results) if results.iter().all(|r| r.passed) && !results.is_empty() => {
                    (RunState::Passed, results)
                }
                Ok(results) => (RunState::Failed, results),
                Err(why) => {
                    cp.report(&id, &format!("{why}\n"));
                    (RunState::Error, Vec::new())
                }
            };
            cp.book().update(&id, |r| {
                r.state = state;
                r.results = results;
            });
        });
        Ok(run)
    }

    /// A test run, as far as it has got.
    pub fn test_run(&self, caller: &Caller, id: &str) -> Result<TestRun, Problem> {
        caller.may_read()?;
        let book = self.book();
        book.runs
            .iter()
            .find(|r| r.id == id)
            .cloned()
            .ok_or_else(|| {
                not_found(format!(
                    "there is no test run '{id}' (this control plane keeps the latest {KEPT_RUNS})"
                ))
            })
    }

    /// The runs, whatever a thread that panicked while holding them left: each change to
    /// them is whole.
    fn book(&self) -> std::sync::MutexGuard<'_, RunBook> {
        self.runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn report(&self, id: &str, text: &str) {
        self.book().update(id, |r| r.report.push_str(text));
    }

    /// Runs the work and records what it found; an error says why it could not run.
    async fn execute(
        self: &Arc<Self>,
        id: &str,
        by: &str,
        group: &Group,
        work: Work,
    ) -> Result<Vec<RecordedResult>, String> {
        let channels = work.channels();
        let target = self.target(group, &channels).await?;
        self.book()
            .update(id, |r| r.runtime = Some(target.url.clone()));
        // A load test's visitors are those of the group's data source.
        let profiles = match &work {
            Work::Loadtest(_) => Some(
                self.profiles_for(Some(&group.name))
                    .await
                    .map_err(|p| p.detail)?,
            ),
            Work::Scenarios(_) => None,
        };
        let token = match group.open {
            true => None,
            false => Some(self.run_token(id, by, &channels, &work, &target).await?),
        };
        let secret = token.as_ref().map(|(secret, _)| secret.clone());
        let cp = self.clone();
        let (run_id, url) = (id.to_string(), target.url.clone());
        let outcomes = match work {
            Work::Scenarios(files) => {
                tokio::task::spawn_blocking(move || {
                    Ok(cp.run_scenarios(&run_id, &url, secret, &files))
                })
                .await
            }
            Work::Loadtest(plan) => {
                let handle = tokio::runtime::Handle::current();
                tokio::task::spawn_blocking(move || {
                    let mut read_ids = profiles.map(|profiles| {
                        move |table: &str, column: &str, limit: usize| {
                            handle.block_on(column_values(&profiles, table, column, limit))
                        }
                    });
                    let read_ids = read_ids.as_mut().map(|r| r as loadtest::ReadIds);
                    cp.run_loadtest(&run_id, &url, secret, &plan, read_ids)
                })
                .await
            }
        }
        .map_err(|e| format!("the run failed: {e}"))?;
        if let Some((_, token_id)) = token {
            self.end_token(&token_id).await;
        }
        let outcomes = outcomes?;
        if self.stopping.load(Ordering::Relaxed) {
            return Err("the control plane shut down during the run; nothing recorded".into());
        }
        let mut recorded = Vec::new();
        for o in outcomes {
            let (_, version) = target
                .versions
                .iter()
                .find(|(c, _)| c.eq_ignore_ascii_case(&o.channel))
                .cloned()
                .ok_or_else(|| format!("channel '{}' was not among the run's", o.channel))?;
            self.record(by, group, &o, version)
                .await
                .map_err(|p| format!("the result could not be recorded: {}", p.detail))?;
            recorded.push(RecordedResult {
                channel: o.channel,
                version,
                passed: o.passed,
            });
        }
        Ok(recorded)
    }

    /// The runtime of `group` that serves, for each of `channels`, the version the group has
    /// active; waits a little for one that was just deployed to be reported.
    async fn target(&self, group: &Group, channels: &[String]) -> Result<Target, String> {
        let active = self
            .store
            .active(&group.name)
            .await
            .map_err(|e| e.to_string())?;
        let mut versions = Vec::new();
        let mut hashes = Vec::new();
        for channel in channels {
            let (name, number) = active
                .iter()
                .find(|(c, _)| c.eq_ignore_ascii_case(channel))
                .ok_or_else(|| {
                    format!(
                        "server group {} runs no version of channel '{channel}'",
                        group.name
                    )
                })?;
            let version = self
                .stored_version(name, *number)
                .await
                .map_err(|p| p.detail)?;
            versions.push((name.clone(), *number));
            hashes.push((name.to_ascii_lowercase(), version.hash));
        }
        let deadline = tokio::time::Instant::now() + CATCH_UP;
        loop {
            let views = self.groups().await.map_err(|p| p.detail)?;
            let view = views
                .into_iter()
                .find(|g| g.name == group.name)
                .ok_or_else(|| format!("there is no server group '{}'", group.name))?;
            let fresh: Vec<_> = view.instances.iter().filter(|i| i.is_live()).collect();
            let serving = fresh
                .iter()
                .filter(|i| {
                    hashes.iter().all(|(channel, hash)| {
                        i.running
                            .iter()
                            .any(|(c, r)| c.eq_ignore_ascii_case(channel) && r.hash == *hash)
                    })
                })
                .min_by_key(|i| i.seconds_since_seen);
            if let Some(instance) = serving {
                return Ok(Target {
                    url: instance.url(),
                    versions,
                });
            }
            // With no runtime at all, wait only as long as a starting one takes to report.
            let now = tokio::time::Instant::now();
            if now >= deadline || (fresh.is_empty() && now >= deadline - CATCH_UP + FIRST_REPORT) {
                let wanted: Vec<String> = versions
                    .iter()
                    .map(|(c, n)| format!("{c} version {n}"))
                    .collect();
                return Err(match fresh.is_empty() {
                    true => format!(
                        "no runtime of server group {} has reported in the last {} s",
                        group.name,
                        InstanceView::LIVE_SECONDS
                    ),
                    false => format!(
                        "no runtime of server group {} serves {} yet; try again when it does",
                        group.name,
                        wanted.join(" and ")
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// A touchpoint token for the run's channels, which the runtime accepts before this
    /// returns; its secret and ID.
    async fn run_token(
        &self,
        id: &str,
        by: &str,
        channels: &[String],
        work: &Work,
        target: &Target,
    ) -> Result<(String, String), String> {
        let lasts = match work {
            Work::Loadtest(plan) => i64::from(plan.duration_seconds),
            Work::Scenarios(_) => 0,
        };
        let expires = Timestamp(self.now().0 + (lasts + TOKEN_SLACK_SECONDS) * 1_000_000_000);
        let (secret, token) = self
            .issue_token(
                TokenKind::Touchpoint,
                &channels.join(","),
                &format!("test run {id}"),
                by,
                Some(expires),
            )
            .await
            .map_err(|e| e.to_string())?;
        let token_id = token.id().to_string();
        let (url, probe) = (target.url.clone(), format!("/v1/channels/{}", channels[0]));
        let key = secret.clone();
        let accepted = tokio::task::spawn_blocking(move || {
            let client = Client::new(&url, Some(key))?;
            let deadline = std::time::Instant::now() + CATCH_UP;
            loop {
                match client.call::<serde::de::IgnoredAny>("GET", &probe, None::<&()>) {
                    Err(_) if std::time::Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(250));
                    }
                    answer => return answer.map(|_| ()),
                }
            }
        })
        .await
        .map_err(|e| e.to_string())?;
        if let Err(e) = accepted {
            self.end_token(&token_id).await;
            return Err(format!(
                "the runtime at {} did not accept the run's token: {e}",
                target.url
            ));
        }
        Ok((secret, token_id))
    }

    async fn end_token(&self, token_id: &str) {
        if let Err(e) = self.store.revoke_token(token_id).await {
            tracing::error!(token = %token_id, "cannot revoke the test run's token: {e}");
            return;
        }
        if self.store.touch_groups().await.is_ok() {
            self.signal();
        }
    }

    fn run_scenarios(
        &self,
        id: &str,
        url: &str,
        token: Option<String>,
        files: &[(String, Result<ScenarioFile, Rejected>)],
    ) -> Vec<Outcome> {
        let totals: FilesRun = run_files(
            files,
            &mut |file, _| {
                let client = Client::new(url, token.clone()).map_err(|e| e.to_string())?;
                Ok(run_file(
                    file,
                    &mut Remote::new(client, &file.channel.value),
                ))
            },
            &mut |text| self.report(id, text),
        );
        totals
            .channels
            .iter()
            .map(|t| {
                let summary = ScenarioSummary {
                    passed: t.passed,
                    failed: t.failed,
                    files: files
                        .iter()
                        .filter(|(_, f)| {
                            f.as_ref()
                                .is_ok_and(|f| f.channel.value.eq_ignore_ascii_case(&t.channel))
                        })
                        .map(|(name, _)| name.clone())
                        .collect(),
                    text: format!("{} passed, {} failed", t.passed, t.failed),
                    run: Some(id.to_string()),
                };
                Outcome {
                    kind: ResultKind::Scenarios,
                    channel: t.channel.clone(),
                    // A file that did not parse or run fails every channel's result, and
                    // running no scenario proves nothing.
                    passed: t.failed == 0 && totals.failed == 0 && t.passed > 0,
                    summary: serde_json::to_value(summary).expect("a summary is JSON"),
                }
            })
            .collect()
    }

    fn run_loadtest(
        &self,
        id: &str,
        url: &str,
        token: Option<String>,
        plan: &LoadtestPlan,
        read_ids: Option<loadtest::ReadIds>,
    ) -> Result<Vec<Outcome>, String> {
        let mut progress = |p: LoadProgress| {
            self.book().update(id, |r| r.progress = Some(p));
        };
        let measured = loadtest::drive(
            url,
            token.as_deref(),
            plan,
            read_ids,
            &mut progress,
            &self.stopping,
        )
        .map_err(|e| e.to_string())?;
        self.report(id, &measured.report);
        let mut summary = measured.summary;
        summary.run = Some(id.to_string());
        Ok(vec![Outcome {
            kind: ResultKind::Loadtest,
            channel: plan.channel.clone(),
            passed: summary.failures.is_empty(),
            summary: serde_json::to_value(summary).expect("a summary is JSON"),
        }])
    }

    async fn record(
        &self,
        by: &str,
        group: &Group,
        outcome: &Outcome,
        version: i64,
    ) -> Result<(), Problem> {
        let result = TestResult {
            group: group.name.clone(),
            kind: outcome.kind.name().to_string(),
            passed: outcome.passed,
            summary: outcome.summary.clone(),
            by: by.to_string(),
            at: self.now(),
        };
        self.store
            .add_result(&outcome.channel, version, &result)
            .await
            .map_err(storage)?;
        self.audit(
            by,
            "test result",
            &format!("{} v{version}", outcome.channel),
            format!(
                "{} on {}: {}",
                result.kind,
                result.group,
                if result.passed { "passed" } else { "failed" }
            ),
        )
        .await
    }
}

/// Up to `limit` values of `column` in `table`: a load test's audience IDs.
async fn column_values(
    profiles: &ProfileStore,
    table: &str,
    column: &str,
    limit: usize,
) -> Result<Vec<J>, String> {
    let schema = profiles
        .schemas()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|s| s.name.eq_ignore_ascii_case(table))
        .ok_or_else(|| format!("table {table} is not imported"))?;
    let key = schema
        .column(column)
        .ok_or_else(|| format!("table {table} has no column {column}"))?
        .clone();
    let narrowed = TableSchema {
        name: schema.name,
        columns: vec![key],
    };
    let rows = profiles
        .table(&narrowed, limit as i64)
        .await
        .map_err(|e| e.to_string())?
        .rows;
    Ok(rows
        .into_iter()
        .filter_map(|mut row| row.pop().flatten())
        .map(|value| match value {
            Value::Int(n) => n.into(),
            Value::Double(d) => d.into(),
            Value::Bool(b) => b.into(),
            Value::String(s) => s.to_string().into(),
            other => other.to_string().into(),
        })
        .collect())
}
