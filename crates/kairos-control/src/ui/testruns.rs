//! Test runs from the UI: scenario files and load tests the control plane runs against a
//! staging group's runtime and records for the gates, and a page following a run (it
//! reloads itself while the run goes on: no script).

use kairos_api::testrun::{LoadtestPlan, RunState, SubmittedFile, TestRun, TestRunRequest};

use super::*;

/// The forms on a channel's versions page that test what a staging group runs.
pub(super) fn forms(channel: &str, groups: &[GroupView]) -> String {
    let staging: Vec<&GroupView> = groups.iter().filter(|g| !g.production).collect();
    if staging.is_empty() {
        return String::new();
    }
    let mut options = String::new();
    for g in &staging {
        let _ = write!(options, r#"<option value="{0}">{0}</option>"#, esc(&g.name));
    }
    let action = format!("/ui/channels/{}/test-runs", enc(channel));
    format!(
        r#"<section class="card" aria-labelledby="tests"><h2 id="tests">Test what a staging group runs</h2><p class="muted">The control plane runs these against the group's runtime and records the outcome with the version of {channel} it runs, for the production gates.</p><form method="post" action="{action}"><input type="hidden" name="kind" value="scenarios"><label for="scenario-group">Scenario file, run on</label><select id="scenario-group" name="group">{options}</select><label for="scenario-text">Scenario file (YAML)</label><textarea id="scenario-text" name="scenarios" rows="8" required></textarea><button type="submit">Run the scenarios</button></form><form method="post" action="{action}"><input type="hidden" name="kind" value="loadtest"><label for="load-group">Load test on</label><select id="load-group" name="group">{options}</select><div><span class="inline"><label for="load-seconds">Seconds</label><input id="load-seconds" name="duration_seconds" type="text" inputmode="numeric" value="30" size="4"></span><span class="inline"><label for="load-concurrency">Sessions at once</label><input id="load-concurrency" name="concurrency" type="text" inputmode="numeric" value="8" size="4"></span><span class="inline"><label for="load-p99">Most p99 (ms)</label><input id="load-p99" name="max_p99_ms" type="text" inputmode="decimal" value="50" size="6"></span><span class="inline"><label for="load-rps">Fewest requests/s</label><input id="load-rps" name="min_rps" type="text" inputmode="decimal" size="6"></span></div><button type="submit">Run the load test</button></form></section>"#,
        channel = esc(channel),
    )
}

#[derive(Deserialize)]
pub(super) struct RunForm {
    group: String,
    kind: String,
    scenarios: Option<String>,
    duration_seconds: Option<String>,
    concurrency: Option<String>,
    max_p99_ms: Option<String>,
    min_rps: Option<String>,
}

/// A form field as a number; empty is none.
fn number<T: std::str::FromStr>(label: &str, text: Option<&str>) -> Result<Option<T>, String> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => t
            .parse()
            .map(Some)
            .map_err(|_| format!("{label}: '{t}' is not a number")),
    }
}

fn request(channel: &str, f: RunForm) -> Result<TestRunRequest, String> {
    if f.kind == "scenarios" {
        return Ok(TestRunRequest::Scenarios {
            files: vec![SubmittedFile {
                name: "scenarios from the UI".to_string(),
                text: f.scenarios.unwrap_or_default(),
            }],
        });
    }
    Ok(TestRunRequest::Loadtest(LoadtestPlan {
        channel: channel.to_string(),
        duration_seconds: number("seconds", f.duration_seconds.as_deref())?.unwrap_or(30),
        concurrency: number("sessions at once", f.concurrency.as_deref())?.unwrap_or(8),
        max_p99_ms: number("most p99", f.max_p99_ms.as_deref())?,
        min_rps: number("fewest requests/s", f.min_rps.as_deref())?,
        audience_ids: None,
    }))
}

pub(super) async fn run_submit(
    State(cp): Shared,
    Signed(caller): Signed,
    Path(channel): Path<String>,
    Form(f): Form<RunForm>,
) -> Response {
    let back = format!("/ui/channels/{}/versions", enc(&channel));
    let group = f.group.clone();
    let started = match request(&channel, f) {
        Ok(request) => cp.start_test_run(&caller, &group, request).await,
        Err(why) => return with_flash(&back, "error", &why),
    };
    match started {
        Ok(run) => redirect(&format!("/ui/test-runs/{}", enc(&run.id))),
        Err(p) => with_flash(&back, "error", &problem_message(&p)),
    }
}

fn state_text(run: &TestRun) -> (&'static str, &'static str) {
    match run.state {
        RunState::Running => ("muted", "running"),
        RunState::Passed => ("pass", "passed"),
        RunState::Failed => ("fail", "failed"),
        RunState::Error => ("fail", "could not run"),
    }
}

pub(super) async fn run_page(
    State(cp): Shared,
    Signed(caller): Signed,
    Path(id): Path<String>,
) -> Response {
    let run = match cp.test_run(&caller, &id) {
        Ok(run) => run,
        Err(p) => return error_page(&caller, &p),
    };
    let (class, state) = state_text(&run);
    let mut body = format!(
        r#"<p role="status">{} on {} <span class="{class}">{state}</span> <span class="muted">started by {} at {}{}</span></p>"#,
        run.kind.name(),
        esc(&run.group),
        esc(&run.by),
        when(&run.started_at),
        run.runtime
            .as_deref()
            .map_or(String::new(), |r| format!(", against {}", esc(r)))
    );
    if let Some(p) = run.progress {
        let _ = write!(
            body,
            r#"<p><label for="progress">{:.0} of {:.0} s, {} requests</label><progress id="progress" max="{:.0}" value="{:.0}"></progress></p>"#,
            p.elapsed_seconds,
            p.duration_seconds,
            p.requests,
            p.duration_seconds,
            p.elapsed_seconds
        );
    }
    if !run.report.is_empty() {
        let _ = write!(
            body,
            r#"<pre class="card scroll">{}</pre>"#,
            esc(&run.report)
        );
    }
    for r in &run.results {
        let _ = write!(
            body,
            r#"<p>Recorded with <a href="/ui/channels/{}/versions">{} version {}</a>: <span class="{}">{}</span></p>"#,
            enc(&r.channel),
            esc(&r.channel),
            r.version,
            if r.passed { "pass" } else { "fail" },
            if r.passed { "passed" } else { "failed" }
        );
    }
    if run.state == RunState::Error {
        body.push_str("<p>Nothing was recorded.</p>");
    }
    let title = format!("Test run {}", run.id);
    match run.state {
        RunState::Running => page_refreshing(&caller, &title, &body, 1),
        _ => page(Some(&caller), &title, &body),
    }
}
