//! The real `kairos` binary, as a user runs it.

mod common;

use common::{kairos, repo, temp_file};

#[test]
fn the_demo_channel_validates_with_its_profiles() {
    let out = kairos()
        .current_dir(repo())
        .args(["validate", "examples/bank/channel.yaml"])
        .args(["--profiles", "customers=examples/bank/customers.csv"])
        .args(["--profiles", "accounts=examples/bank/accounts.csv"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("examples/bank/channel.yaml: ok (channel web:"),
        "{stdout}"
    );
}

#[test]
fn a_bad_file_prints_every_error_located_and_exits_1() {
    let path = temp_file(
        "bad.yaml",
        "channel: web\nzones:\n  home: { interaction_points: { hero: {} } }\nrules:\n  - { id: r1, segment: \"*\", zone: hom, offer: NOPE, score: 120 }\n",
    );
    let out = kairos().arg("validate").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let shown = path.display().to_string();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            format!("{shown}:5:35: unknown zone 'hom' (did you mean 'home'?)"),
            format!("{shown}:5:47: unknown offer 'NOPE': the channel defines none"),
            format!("{shown}:5:60: score must be between 0 and 100, found 120"),
        ]
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("3 error(s) in 1 file(s)"));
}

#[test]
fn json_format_gives_machine_readable_errors() {
    let path = temp_file("bad2.yaml", "channel: 9lives\n");
    let out = kairos()
        .args(["validate", "--format", "json"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], false);
    let error = &report["errors"][0];
    assert_eq!(
        (error["line"].as_u64(), error["column"].as_u64()),
        (Some(1), Some(10))
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("'9lives' is not a valid name")
    );
}

#[test]
fn a_missing_file_is_one_clear_line() {
    let out = kairos()
        .args(["validate", "no/such/file.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: cannot read no/such/file.yaml"),
        "{stderr}"
    );
}

/// `kairos SUBCOMMAND` run from the repository with the scenario suite's profile tables.
fn with_shop_profiles(subcommand: &str) -> std::process::Command {
    let mut command = kairos();
    command.current_dir(repo()).arg(subcommand).args([
        "--profiles",
        "people=tests/scenarios/people.csv",
        "--profiles",
        "orders=tests/scenarios/orders.csv",
    ]);
    command
}

/// `kairos test FILE` in process against the shop channel of the scenario suite.
fn test_on_shop(file: &str) -> (Option<i32>, String) {
    let out = with_shop_profiles("test")
        .args([file, "--channel-file", "tests/scenarios/shop/channel.yaml"])
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

#[test]
fn scenario_failures_are_reported_with_expected_actual_and_explain() {
    let scenarios = temp_file(
        "failing.scenarios.yaml",
        "channel: shop\nnow: 2026-06-15T12:00:00Z\nscenarios:\n  - name: wrong on purpose\n    start: { audience_id: { customer_id: 2 } }\n    steps:\n      - get_offers: { ip: hero, count: 1 }\n        expect: { codes: [ SILVER ] }\n",
    );
    let (code, stdout) = test_on_shop(&scenarios.display().to_string());
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("FAIL"), "{stdout}");
    assert!(
        stdout.contains(":7: step 1 (get_offers): expect codes: expected [SILVER], got [GOLD]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("GOLD (rule gold_vip) score 88.00: served"),
        "explain is shown: {stdout}"
    );
    assert!(
        stdout.contains("SILVER (rule silver_home) score 60.00: removed by below_top_n"),
        "{stdout}"
    );
    assert!(
        stdout.trim_end().ends_with("scenarios: 0 passed, 1 failed"),
        "{stdout}"
    );
}

/// An expectation naming an offer or a segment the channel lacks, or a call to an interaction
/// point it lacks (typos), would pass vacuously: each fails, naming the name.
#[test]
fn steps_naming_what_the_channel_lacks_fail() {
    let scenarios = temp_file(
        "typo.scenarios.yaml",
        "channel: shop\nnow: 2026-06-15T12:00:00Z\nscenarios:\n  - name: typos\n    start: { audience_id: { customer_id: 2 } }\n    steps:\n      - get_offers: { ip: hero, count: 1 }\n        expect: { absent: [ SLIVER ], contains: [ gold ] }\n      - get_offers: { ip: heroo, count: 1 }\n      - post_event: { event: page_view }\n        expect: { segments: [ vipp ] }\n      - get_offers: { ip: promo_strip, count: 1 }\n        expect: { default: true, warnings: [ UNKNOWN_INTERACTION_POINT ] }\n",
    );
    let (code, stdout) = test_on_shop(&scenarios.display().to_string());
    assert_eq!(code, Some(1), "{stdout}");
    for failure in [
        ":7: step 1 (get_offers): expect names: expected offer of the channel, got no such offer: SLIVER",
        ":9: step 2 (get_offers): expect names: expected interaction point of the channel, got no such interaction point: heroo",
        ":10: step 3 (post_event): expect names: expected segment of the channel, got no such segment: vipp",
    ] {
        assert!(stdout.contains(failure), "{failure}\n{stdout}");
    }
    assert!(
        !stdout.contains("step 4"),
        "a step that expects the unknown point's warning tests it: {stdout}"
    );
}

#[test]
fn the_shop_scenarios_pass_through_the_binary() {
    let (code, stdout) = test_on_shop("tests/scenarios/shop/arbitration.scenarios.yaml");
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.trim_end().ends_with("scenarios: 6 passed, 0 failed"),
        "{stdout}"
    );
}

#[test]
fn the_demo_scenarios_pass() {
    let out = kairos()
        .current_dir(repo())
        .args([
            "test",
            "examples/bank/scenarios.yaml",
            "--channel-file",
            "examples/bank/channel.yaml",
        ])
        .args([
            "--profiles",
            "customers=examples/bank/customers.csv",
            "--profiles",
            "accounts=examples/bank/accounts.csv",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.trim_end().ends_with("scenarios: 4 passed, 0 failed"),
        "{stdout}"
    );
}

#[test]
fn a_flowchart_test_run_counts_segments_and_paths() {
    let out = with_shop_profiles("segments")
        .args(["--channel-file", "tests/scenarios/shop/channel.yaml"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.starts_with(
            "flowchart test run of channel shop: 9 visitors of level customer (table people)"
        ),
        "{stdout}"
    );
    // The nine people of the suite: one under 30, two VIPs, two in the US, one senior.
    let row = |label: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(label))
            .map(|l| l.split_whitespace().rev().nth(1).unwrap().to_string())
    };
    assert_eq!(row("regular ").as_deref(), Some("8"));
    assert_eq!(row("vip ").as_deref(), Some("2"));
    assert_eq!(row("main › profile.age < 30 → young").as_deref(), Some("1"));
    assert_eq!(row("main › else → regular").as_deref(), Some("8"));
    assert_eq!(
        row("main › profile.country == 'US' → domestic").as_deref(),
        Some("2")
    );
    assert_eq!(
        row("main › select profile.age >= 65 → senior").as_deref(),
        Some("1")
    );
}

#[test]
fn an_impact_report_shows_what_a_candidate_changes() {
    let current =
        std::fs::read_to_string(repo().join("tests/scenarios/shop/channel.yaml")).unwrap();
    // The candidate stops both GOLD rules and raises the high-value threshold.
    let candidate = current
        .replace(
            "offer: GOLD, score: 80 }",
            "offer: GOLD, score: 80, enabled: false }",
        )
        .replace(
            "offer: GOLD, score: 88 }",
            "offer: GOLD, score: 88, enabled: false }",
        )
        .replace("profile.balance >= 10000", "profile.balance >= 25000");
    assert_ne!(candidate, current);
    let candidate = temp_file("candidate.yaml", &candidate);
    let impact = |file: &std::path::Path| {
        let out = with_shop_profiles("impact")
            .arg("--channel-file")
            .arg(file)
            .args(["--current", "tests/scenarios/shop/channel.yaml"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let stdout = impact(&candidate);
    let row = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
    };
    assert_eq!(row("GOLD").as_deref(), Some("2 0 -2"), "{stdout}");
    assert_eq!(row("high_value").as_deref(), Some("2 1 -1"), "{stdout}");
    let same = impact(&repo().join("tests/scenarios/shop/channel.yaml"));
    assert!(
        same.ends_with("no offer and no segment changes reach\n"),
        "{same}"
    );
}

/// An administrator who lost their password sets a new one on the database directly: the
/// old password and every token of theirs stop working, and the audit log says it ran.
#[test]
fn reset_password_works_on_the_database_with_the_server_stopped() {
    let dir = std::env::temp_dir().join(format!("kairos-reset-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let database = format!("sqlite://{}", dir.join("kairos.db").display());
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let open = || {
        tokio.block_on(kairos_control::ControlPlane::open(
            &database,
            kairos_api::wall_clock,
        ))
    };
    let login = |cp: &kairos_control::ControlPlane, password: &str| {
        tokio.block_on(cp.login(
            kairos_api::control::LoginRequest {
                user: "admin".into(),
                password: password.into(),
            },
            None,
        ))
    };
    let cp = open().unwrap();
    tokio.block_on(cp.ensure_admin("lost-password")).unwrap();
    let old_token = login(&cp, "lost-password").unwrap().token;
    drop(cp);

    let out = kairos()
        .args(["user", "reset-password", "admin", "--data"])
        .arg(&dir)
        .env("KAIROS_NEW_PASSWORD", "found-again")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cp = open().unwrap();
    assert!(login(&cp, "lost-password").is_err());
    assert!(login(&cp, "found-again").is_ok());
    assert!(
        tokio.block_on(cp.caller(&old_token)).is_err(),
        "the old login ended"
    );
    let log = tokio.block_on(cp.audit_log(10)).unwrap();
    assert!(log.iter().any(|e| e.action == "reset password"));

    let missing = kairos()
        .args(["user", "reset-password", "admin", "--data"])
        .arg(dir.join("nowhere"))
        .env("KAIROS_NEW_PASSWORD", "found-again")
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("there is no"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn completion_scripts_name_every_command() {
    for (shell, marker) in [
        ("bash", "_kairos()"),
        ("zsh", "#compdef kairos"),
        ("fish", "complete -c kairos"),
    ] {
        let out = kairos().args(["completion", shell]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(marker), "{shell}: {script}");
        for command in ["loadtest", "deployments", "completion"] {
            assert!(script.contains(command), "{shell} completes {command}");
        }
    }
    let out = kairos().args(["completion", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error");
}
