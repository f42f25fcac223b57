//! `kairos data import` and `kairos runtime` reading profiles from the database; the
//! runtime's limits set on its command line.

mod common;

use common::{Runtime, SHOP, http, import_table, kairos, repo};

#[test]
fn imported_tables_serve_the_runtime_profiles() {
    let data = std::env::temp_dir().join(format!("kairos-import-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let database = format!("sqlite://{}", data.join("kairos.db").display());
    for (table, file) in [
        ("people", "tests/scenarios/people.csv"),
        ("orders", "tests/scenarios/orders.csv"),
    ] {
        let out = import_table(&database, table, file);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.starts_with(&format!("imported 9 rows into table {table}"))
                || stdout.starts_with(&format!("imported 3 rows into table {table}")),
            "{stdout}"
        );
    }
    let bad = kairos()
        .current_dir(repo())
        .args([
            "data",
            "import",
            "--table",
            "people",
            "--key",
            "customer_id",
            "--schema",
            "age:number",
            "--database",
            &database,
        ])
        .arg("tests/scenarios/people.csv")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("'number' is not a type"));

    // No --profiles: the runtime types the channel against, and reads, the imported tables.
    let runtime = Runtime::start(&[
        "--channel-file",
        "tests/scenarios/shop/channel.yaml",
        "--database",
        &database,
    ]);
    let (status, started) = http(
        runtime.port,
        "POST",
        "/v1/sessions",
        r#"{"channel":"shop","audience_id":{"customer_id":2},"debug":true}"#,
    )
    .unwrap();
    assert_eq!(status, 200, "{started}");
    assert_eq!(
        started["segments"],
        serde_json::json!(["high_value", "big_spender", "regular", "vip"])
    );
    assert_eq!(started["messages"], serde_json::json!([]));
}

#[test]
fn the_session_limit_is_set_on_the_command_line() {
    let data = std::env::temp_dir().join(format!("kairos-limit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let data = data.display().to_string();
    let runtime = Runtime::start(&[&SHOP[..], &["--data", &data, "--max-sessions", "2"]].concat());
    let start = |id: &str| {
        let body = format!(
            r#"{{"channel":"shop","session_id":"{id}","audience_id":{{"customer_id":2}}}}"#
        );
        http(runtime.port, "POST", "/v1/sessions", &body).unwrap()
    };
    assert_eq!(start("a").0, 200);
    assert_eq!(start("b").0, 200);
    let (status, refused) = start("c");
    assert_eq!(status, 503, "{refused}");
    assert_eq!(refused["code"], "TOO_MANY_SESSIONS");
    assert_eq!(
        http(runtime.port, "DELETE", "/v1/sessions/a", "")
            .unwrap()
            .0,
        200
    );
    assert_eq!(start("c").0, 200, "an ended session makes room");

    let zero = kairos()
        .current_dir(repo())
        .arg("runtime")
        .args(SHOP)
        .args(["--max-sessions", "0"])
        .output()
        .unwrap();
    assert_eq!(zero.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&zero.stderr).contains("--max-sessions"),
        "{}",
        String::from_utf8_lossy(&zero.stderr)
    );
}

/// SIGTERM, as a container platform sends it: the runtime stops taking connections, writes what
/// its sessions hold, and exits with success.
#[test]
fn sigterm_drains_flushes_and_exits() {
    let data = std::env::temp_dir().join(format!("kairos-sigterm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let port = common::free_port();
    let mut child = kairos()
        .current_dir(repo())
        .arg("runtime")
        .args(SHOP)
        .args(["--data", data.to_str().unwrap()])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    common::wait_until_ready(port, "/readyz", "the runtime");
    let start = r#"{"channel":"shop","audience_id":{"customer_id":2}}"#;
    let (status, started) = http(port, "POST", "/v1/sessions", start).unwrap();
    assert_eq!(status, 200, "{started}");
    let id = started["session_id"].as_str().unwrap().to_string();
    let body = format!(
        r#"{{"session_id":"{id}","commands":[{{"get_offers":{{"requests":[{{"ip":"hero","count":2}}]}}}},{{"post_event":{{"event":"offer_shown"}}}}]}}"#
    );
    let (status, answer) = http(port, "POST", "/v1/batch", &body).unwrap();
    assert_eq!(status, 200, "{answer}");
    // SAFETY: a plain signal to our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let exited = child.wait().unwrap();
    assert!(exited.success(), "{exited:?}");
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(
        out.contains("kairos runtime stopped; history flushed"),
        "{out}"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens after the exit"
    );
    let history = common::history_of(&format!("sqlite://{}", data.join("kairos.db").display()));
    assert_eq!(
        history.len(),
        2,
        "both offers' contacts were written: {history:?}"
    );
    let _ = std::fs::remove_dir_all(&data);
}
