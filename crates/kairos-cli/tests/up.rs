//! `kairos up` on a fresh data folder, and the whole workflow through the CLI against it:
//! the demo on staging, login, users and roles, gates refusing production, scenario and load
//! tests attached to the version, review, promotion, a change, diff, rollback, history.

mod common;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::{KillOnDrop, http, http_with, import_table, kairos, repo, temp_file};

/// The CLI as one user: their own saved login in `config`.
fn as_user(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = kairos();
    command
        .current_dir(repo())
        .env("KAIROS_CONFIG_DIR", config)
        .env_remove("KAIROS_TOKEN")
        .args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn deployed_version(port: u16) -> Option<i64> {
    deployed_version_with(port, None)
}

/// The version of `web` the runtime on `port` serves, asked with `token` (a closed group's
/// runtime answers only a touchpoint).
fn deployed_version_with(port: u16, token: Option<&str>) -> Option<i64> {
    http_with(port, "GET", "/v1/version", token, "")
        .and_then(|(_, v)| v["channels"]["web"]["deployment"].as_i64())
}

fn wait_for_version(port: u16, version: i64) -> Duration {
    wait_for_version_with(port, version, None)
}

fn wait_for_version_with(port: u16, version: i64, token: Option<&str>) -> Duration {
    let started = Instant::now();
    while deployed_version_with(port, token) != Some(version) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "port {port} did not switch to version {version}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

#[test]
fn up_serves_the_demo_and_the_whole_workflow_runs_through_the_cli() {
    let data = std::env::temp_dir().join(format!("kairos-up-{}", std::process::id()));
    let up = common::kairos_up(&data, "admin-secret");
    let (staging, production) = (up.staging(), up.production());
    // Every command below talks to this kairos up's control plane.
    let control = up.control_url();
    let as_user = |config: &Path, args: &[&str], env: &[(&str, &str)]| {
        let mut env = env.to_vec();
        env.push(("KAIROS_CONTROL", &control));
        as_user(config, args, &env)
    };
    let banner = std::fs::read_to_string(data.with_extension("out")).unwrap();
    assert!(
        banner.contains("touchpoint tokens   staging open, production closed"),
        "the banner says which runtimes need a token: {banner}"
    );
    // Its data is its user's alone.
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the data folder");
    assert_eq!(mode(&data.join("kairos.db")), 0o600, "the database");
    let (status, started) = http(
        staging,
        "POST",
        "/v1/sessions",
        r#"{"channel":"web","audience_id":{"customer_id":1001},"debug":true}"#,
    )
    .unwrap();
    assert_eq!(status, 200, "{started}");
    assert_eq!(
        started["messages"],
        serde_json::json!([]),
        "the demo profiles are loaded"
    );
    assert!(
        started["segments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "mortgage_holder"),
        "{started}"
    );
    let id = started["session_id"].as_str().unwrap();
    let (status, offers) = http(
        staging,
        "GET",
        &format!("/v1/sessions/{id}/offers?ip=hero&count=2"),
        "",
    )
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        offers["offer_lists"][0]["offers"].as_array().unwrap().len(),
        2,
        "{offers}"
    );
    assert_eq!(
        http(production, "GET", "/readyz", "").map(|r| r.0),
        Some(503),
        "production has nothing deployed"
    );
    // Scenario files run against the staging group. Counts are large enough that learning's
    // exploration (which reorders offers) cannot change which offers come back.
    let scenarios = temp_file(
        "staging.scenarios.yaml",
        "channel: web\nscenarios:\n  - name: a loan shopper on staging\n    start: { audience_id: { customer_id: 1002 } }\n    steps:\n      - get_offers: { ip: hero, count: 10 }\n        expect: { absent: [ PERSONAL_LOAN ], warnings: [] }\n      - post_event: { event: loan_page_view }\n      - post_event: { event: loan_page_view }\n      - post_event: { event: loan_page_view }\n        expect: { segments: [ card_holder, prime, loan_intent ] }\n      - get_offers: { ip: hero, count: 10 }\n        expect: { contains: [ PERSONAL_LOAN ] }\n      - get_offers: { ip: promo_strip, count: 1 }\n        expect: { default: true, warnings: [ UNKNOWN_INTERACTION_POINT ] }\n      - end_session: {}\n",
    );
    let admin = data.join("config-admin");
    let out = as_user(
        &admin,
        &["login", "--user", "admin"],
        &[("KAIROS_PASSWORD", "wrong")],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("unknown user or wrong password"),
        "{}",
        text(&out)
    );
    let out = as_user(
        &admin,
        &["login", "--user", "admin"],
        &[("KAIROS_PASSWORD", "admin-secret")],
    );
    assert!(out.status.success(), "{}", text(&out));
    for (name, role) in [("dana", "designer"), ("rex", "reviewer")] {
        let out = as_user(
            &admin,
            &["user", "add", name, "--role", role],
            &[("KAIROS_NEW_PASSWORD", &format!("{name}-password"))],
        );
        assert!(out.status.success(), "{}", text(&out));
    }
    let login = |name: &str| {
        let config = data.join(format!("config-{name}"));
        let out = as_user(
            &config,
            &["login", "--user", name],
            &[("KAIROS_PASSWORD", &format!("{name}-password"))],
        );
        assert!(out.status.success(), "{}", text(&out));
        config
    };
    let (dana, rex) = (login("dana"), login("rex"));

    let out = as_user(&admin, &["deployments", "--channel", "web"], &[]);
    assert!(
        text(&out).contains("version 1 ") && text(&out).contains("ACTIVE on staging"),
        "{}",
        text(&out)
    );
    // Every list command takes -o json: the control plane's answer, for scripts.
    let json = |args: &[&str]| {
        let out = as_user(&admin, args, &[]);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    assert_eq!(json(&["channels", "-o", "json"])[0]["name"], "web");
    assert_eq!(
        json(&["deployments", "--channel", "web", "-o", "json"])[0]["active_in"],
        serde_json::json!(["staging"])
    );
    let groups = json(&["groups", "-o", "json"]);
    assert!(
        groups
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "staging"),
        "{groups}"
    );
    let out = as_user(&admin, &["tables"], &[]);
    assert!(
        text(&out).contains("customers: customer_id "),
        "{}",
        text(&out)
    );

    // Roles: a designer cannot deploy, a reviewer cannot edit.
    let out = as_user(
        &dana,
        &["deploy", "--channel", "web", "--group", "staging"],
        &[],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("needs the administrator or manager role"),
        "{}",
        text(&out)
    );
    let bank = repo().join("examples/bank/channel.yaml");
    let bank = bank.to_str().unwrap();
    let out = as_user(&rex, &["apply", bank], &[]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("needs the designer role"),
        "{}",
        text(&out)
    );

    // Tables go through the control plane, for data administrators only.
    let import = [
        "data",
        "import",
        "--table",
        "customers",
        "--key",
        "customer_id",
        "examples/bank/customers.csv",
    ];
    let out = as_user(&dana, &import, &[]);
    assert_eq!(out.status.code(), Some(3), "a role refused: {}", text(&out));
    assert!(
        text(&out).contains("needs the data_administrator role"),
        "{}",
        text(&out)
    );
    // A server that cannot be reached, or no login: 4.
    let out = as_user(&dana, &["groups", "--control", "http://127.0.0.1:9"], &[]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let nobody = data.join("nobody");
    let out = as_user(&nobody, &["groups"], &[]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("not logged in"), "{}", text(&out));
    let out = as_user(&admin, &import, &[]);
    assert!(
        text(&out).starts_with("imported 3000 rows into table customers ("),
        "{}",
        text(&out)
    );

    // Gates refuse production: no tests, no approval yet.
    let promote = [
        "deploy",
        "--channel",
        "web",
        "--group",
        "production",
        "--version",
        "1",
    ];
    let out = as_user(&admin, &promote, &[]);
    assert_eq!(out.status.code(), Some(3), "a refusal: {}", text(&out));
    let refused = text(&out);
    assert!(
        refused.contains("3 gate(s) failed") && refused.contains("approvals:"),
        "{refused}"
    );

    // Scenario tests the control plane runs against the staging group, recorded with the
    // version it runs.
    let out = as_user(
        &admin,
        &["test", scenarios.to_str().unwrap(), "--group", "staging"],
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("scenarios: 1 passed, 0 failed"), "{stdout}");
    assert!(
        stdout.contains("results attached to web version 1 on staging"),
        "{stdout}"
    );
    let out = as_user(
        &admin,
        &["test", scenarios.to_str().unwrap(), "--group", "qa"],
        &[],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out).contains("there is no server group 'qa'"),
        "{}",
        text(&out)
    );
    // A load test on the staging group: realistic sessions, thresholds decide the exit code.
    // This test's load tests run 2 s; production asks 10 s unless its gates say otherwise.
    let out = as_user(
        &admin,
        &["group", "production", "--min-loadtest-seconds", "2"],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let load = |extra: &[&str]| {
        kairos()
            .env("KAIROS_CONFIG_DIR", &admin)
            .env("KAIROS_CONTROL", &control)
            .args([
                "loadtest",
                "--group",
                "staging",
                "--channel",
                "web",
                "--duration",
                "2s",
                "--concurrency",
                "2",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = load(&["--max-p99-ms", "2000"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(", 0 errors")
            && stdout.contains("latency p50")
            && stdout.contains("loadtest passed\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("results attached to web version 1"),
        "{stdout}"
    );
    let out = load(&["--min-rps", "100000000"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("is below the minimum of 100000000"));
    // That failed load test is now the latest: production still refuses.
    let out = as_user(&admin, &promote, &[]);
    assert!(
        text(&out).contains("loadtest: the last load test on staging failed"),
        "{}",
        text(&out)
    );
    let out = load(&["--max-p99-ms", "2000"]);
    assert!(out.status.success());

    // Review, then promotion: production serves version 1 within moments.
    let out = as_user(
        &rex,
        &[
            "approve",
            "--channel",
            "web",
            "--version",
            "1",
            "--comment",
            "impact checked",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = as_user(&admin, &promote, &[]);
    assert!(out.status.success(), "{}", text(&out));
    // Production is closed: its touchpoints call with a token.
    let out = as_user(&admin, &["token", "issue", "--touchpoint", "web"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let production_token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let live_after = wait_for_version_with(production, 1, Some(&production_token));
    assert_eq!(
        http(production, "GET", "/v1/version", "").map(|r| r.0),
        Some(401),
        "production takes no call without a token"
    );
    assert!(live_after < Duration::from_secs(10), "{live_after:?}");

    // A change by the designer, staged as version 2: diff, then rollback.
    let changed = temp_file(
        "changed.yaml",
        &std::fs::read_to_string(repo().join("examples/bank/channel.yaml"))
            .unwrap()
            .replace("name: Gold credit card", "name: Gold card, new look")
            .replace(
                "offer: PLATINUM_CARD, score: 85 }",
                "offer: PLATINUM_CARD, score: 85, enabled: false }",
            ),
    );
    let out = as_user(&dana, &["apply", changed.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let out = as_user(
        &admin,
        &[
            "deploy",
            "--channel",
            "web",
            "--group",
            "staging",
            "--note",
            "new gold name",
        ],
        &[],
    );
    assert!(
        text(&out).contains("deployed web version 2"),
        "{}",
        text(&out)
    );
    wait_for_version(staging, 2);
    let out = as_user(&rex, &["diff", "--channel", "web", "1", "2"], &[]);
    let diff = text(&out);
    assert!(diff.starts_with("changed offers/GOLD_CARD\n"), "{diff}");
    assert!(
        diff.contains("+   \"name\": \"Gold card, new look\","),
        "{diff}"
    );
    let out = as_user(
        &admin,
        &["rollback", "--channel", "web", "--group", "staging"],
        &[],
    );
    assert!(
        text(&out).contains("back to version 1 (was 2)"),
        "{}",
        text(&out)
    );
    wait_for_version(staging, 1);
    let out = as_user(&admin, &["deployments", "--channel", "web"], &[]);
    let history = text(&out);
    for expected in [
        "rollback to staging by admin",
        "deploy to production by admin",
        "approved by rex: impact checked",
        "scenarios on staging: passed",
        "loadtest on staging: FAILED",
        "note: new gold name",
    ] {
        assert!(history.contains(expected), "{expected} in:\n{history}");
    }
    let out = as_user(&rex, &["audit"], &[]);
    let audit = text(&out);
    for expected in [
        " rex        approve      web v1 (impact checked)",
        " dana       apply        web",
    ] {
        assert!(audit.contains(expected), "{expected} in:\n{audit}");
    }
    let out = as_user(&admin, &["export", "--channel", "web"], &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("name: \"Gold card, new look\""));

    // A bad file is rejected whole, every error located.
    let bad = temp_file(
        "bad.yaml",
        &std::fs::read_to_string(&changed)
            .unwrap()
            .replace("score: 85", "score: high"),
    );
    let out = as_user(&dana, &["apply", bad.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("bad.yaml:") && text(&out).contains("rejected whole"),
        "{}",
        text(&out)
    );
}

/// A process killed when dropped, started once its port answers.
fn spawn_ready(args: &[&str], env: &[(&str, &str)], port: u16, path: &str) -> KillOnDrop {
    let mut command = kairos();
    command
        .current_dir(repo())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    let child = KillOnDrop(command.spawn().unwrap());
    common::wait_until_ready(port, path, &format!("{args:?}"));
    child
}

#[test]
fn a_group_runtime_keeps_serving_when_the_control_plane_is_down_even_after_a_restart() {
    let data = std::env::temp_dir().join(format!("kairos-follow-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).unwrap();
    let database = format!("sqlite://{}", data.join("kairos.db").display());
    let (control_port, runtime_port) = (common::free_port(), common::free_port());
    let url = format!("http://127.0.0.1:{control_port}");
    let start_control = || {
        spawn_ready(
            &[
                "control",
                "--listen",
                &format!("127.0.0.1:{control_port}"),
                "--database",
                &database,
            ],
            &[("KAIROS_ADMIN_PASSWORD", "admin-secret")],
            control_port,
            "/healthz",
        )
    };
    let mut control = start_control();
    let config = data.join("config");
    let cli = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--control", &url]);
        let out = as_user(&config, &all, &[("KAIROS_PASSWORD", "admin-secret")]);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    cli(&["login", "--user", "admin"]);
    for table in ["customers", "accounts"] {
        let out = import_table(&database, table, &format!("examples/bank/{table}.csv"));
        assert!(out.status.success(), "{}", text(&out));
    }
    cli(&["apply", "examples/bank/channel.yaml"]);
    cli(&["deploy", "--channel", "web", "--group", "staging"]);
    let qa = cli(&[
        "group",
        "qa",
        "--approvals",
        "2",
        "--history",
        &database,
        "--cors-origin",
        "https://QA.example.com/",
    ]);
    assert_eq!(
        qa.trim(),
        format!(
            "group qa: open, gates 2 approval(s) by a reviewer, data shared, history {database}, \
             browser origins https://qa.example.com"
        )
    );
    assert!(cli(&["groups"]).contains("qa: nothing active"));
    let token = cli(&["token", "issue", "--runtime", "staging"])
        .trim()
        .to_string();
    let runtime_data = data.join("runtime");
    let runtime_args = [
        "runtime",
        "--group",
        "staging",
        "--control",
        &url,
        "--control-token",
        &token,
        "--listen",
        &format!("127.0.0.1:{runtime_port}"),
        "--data",
        runtime_data.to_str().unwrap(),
        "--database",
        &database,
        "--instance",
        "host-a",
    ];
    let mut runtime = spawn_ready(&runtime_args, &[], runtime_port, "/readyz");
    assert_eq!(deployed_version(runtime_port), Some(1));
    let start = r#"{"channel":"web","audience_id":{"customer_id":1001}}"#;
    assert_eq!(
        http(runtime_port, "POST", "/v1/sessions", start).unwrap().0,
        200
    );
    // The control plane shows the instance and what it runs.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let groups = cli(&["groups"]);
        if groups.contains("instance host-a at http://127.0.0.1:") && groups.contains("runs web v1")
        {
            break;
        }
        assert!(Instant::now() < deadline, "{groups}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // A touchpoint calls an event the channel lacks: the design team sees it listed.
    let (_, session) = http(runtime_port, "POST", "/v1/sessions", start).unwrap();
    let id = session["session_id"].as_str().unwrap();
    http(
        runtime_port,
        "POST",
        &format!("/v1/sessions/{id}/events"),
        r#"{"event":"basket_viewed"}"#,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let groups = cli(&["groups"]);
        if groups.contains("event basket_viewed in web: 1 call(s)") {
            break;
        }
        assert!(Instant::now() < deadline, "{groups}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The control plane goes down: the runtime serves on, and after its own restart too.
    drop(control);
    assert_eq!(
        http(runtime_port, "POST", "/v1/sessions", start).unwrap().0,
        200
    );
    drop(runtime);
    runtime = spawn_ready(&runtime_args, &[], runtime_port, "/readyz");
    assert_eq!(
        deployed_version(runtime_port),
        Some(1),
        "served from its cache"
    );
    assert_eq!(
        http(runtime_port, "POST", "/v1/sessions", start).unwrap().0,
        200
    );

    // Back up: a new version reaches the runtime, and so does a touchpoint token.
    control = start_control();
    let changed = temp_file(
        "follow-changed.yaml",
        &std::fs::read_to_string(repo().join("examples/bank/channel.yaml"))
            .unwrap()
            .replace("score: 85", "score: 86"),
    );
    cli(&["apply", changed.to_str().unwrap()]);
    cli(&["deploy", "--channel", "web", "--group", "staging"]);
    wait_for_version(runtime_port, 2);
    // Closing the group and issuing a token reach the runtime within a poll.
    cli(&["group", "staging", "--open", "false"]);
    let touchpoint = cli(&["token", "issue", "--touchpoint", "web"])
        .trim()
        .to_string();
    // One request with the touchpoint token: the status line and the body.
    let with_token = |method: &str, path: &str, body: &str| {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nhost: k\r\nconnection: close\r\nauthorization: Bearer {touchpoint}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", runtime_port)).unwrap();
        std::io::Write::write_all(&mut stream, request.as_bytes()).unwrap();
        let mut response = String::new();
        std::io::Read::read_to_string(&mut stream, &mut response).unwrap();
        response
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    while http(runtime_port, "POST", "/v1/sessions", start).unwrap().0 != 401 {
        assert!(
            Instant::now() < deadline,
            "closing the group never reached the runtime"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    while !with_token("POST", "/v1/sessions", start).starts_with("HTTP/1.1 200") {
        assert!(
            Instant::now() < deadline,
            "the touchpoint token never reached the runtime"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // A damaged cache is reported and skipped: the control plane's answer replaces it.
    drop(runtime);
    std::fs::write(runtime_data.join("cache/staging.json"), "{ not json").unwrap();
    let runtime = spawn_ready(&runtime_args, &[], runtime_port, "/readyz");
    let version = with_token("GET", "/v1/version", "");
    assert!(version.contains(r#""deployment":2"#), "{version}");

    // A revoked token fails on the runtime within its poll.
    let tokens: serde_json::Value =
        serde_json::from_str(&cli(&["token", "list", "-o", "json"])).unwrap();
    let id = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == "touchpoint")
        .map(|t| t["id"].as_str().unwrap().to_string())
        .unwrap();
    assert_eq!(
        cli(&["token", "revoke", &id]).trim(),
        format!("token {id} is revoked")
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    while with_token("POST", "/v1/sessions", start).starts_with("HTTP/1.1 200") {
        assert!(
            Instant::now() < deadline,
            "the revoked token still works after 2 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop((runtime, control));
}
