//! The real `kairos runtime` killed with SIGKILL in the middle of a load: every event it
//! acknowledged is in the history afterwards.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kairos_engine::world::ResponseKind;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One request on its own connection; `None` when the server is gone.
fn http(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, serde_json::Value)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: k\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.get(9..12)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1;
    Some((
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    ))
}

#[test]
fn acknowledged_events_survive_sigkill() {
    let data = std::env::temp_dir().join(format!("kairos-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kairos"))
        .current_dir(repo())
        .args([
            "runtime",
            "--channel-file",
            "tests/scenarios/shop/channel.yaml",
        ])
        .args([
            "--profiles",
            "people=tests/scenarios/people.csv",
            "--profiles",
            "orders=tests/scenarios/orders.csv",
        ])
        .arg("--data")
        .arg(&data)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http(port, "GET", "/readyz", "").map(|r| r.0) != Some(200) {
        assert!(
            Instant::now() < deadline,
            "the runtime did not become ready"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (acknowledged, stop) = (acknowledged.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let start = format!("{{\"channel\":\"shop\",\"audience_id\":{{\"customer_id\":{}}}}}", 1 + w % 8);
                    let Some((200, started)) = http(port, "POST", "/v1/sessions", &start) else { return };
                    let id = started["session_id"].as_str().unwrap().to_string();
                    let Some((200, offers)) = http(port, "GET", &format!("/v1/sessions/{id}/offers?ip=upsell&count=3"), "") else { return };
                    for offer in offers["offer_lists"][0]["offers"].as_array().unwrap() {
                        let code = offer["treatment_code"].as_str().unwrap();
                        let event = format!("{{\"event\":\"offer_shown\",\"params\":{{\"treatment_code\":\"{code}\"}}}}");
                        match http(port, "POST", &format!("/v1/sessions/{id}/events"), &event) {
                            Some((200, _)) => acknowledged.lock().unwrap().push(code.to_string()),
                            _ => return,
                        }
                    }
                }
            })
        })
        .collect();
    // Let the load run, then kill the process without warning.
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }

    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 50,
        "the load produced events: {}",
        acknowledged.len()
    );
    let history = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = kairos_store::HistoryStore::open(&format!(
            "sqlite://{}",
            data.join("runtime.db").display()
        ))
        .await
        .unwrap();
        store.history().await.unwrap()
    });
    let stored: std::collections::HashSet<&str> = history
        .iter()
        .filter(|r| r.kind == ResponseKind::Contact)
        .map(|r| r.treatment.code.as_str())
        .collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|c| !stored.contains(c.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged contacts were lost: {lost:?}",
        lost.len(),
        acknowledged.len()
    );
}
