//! The real `kairos runtime` killed with SIGKILL in the middle of a load: every event it
//! acknowledged is in the history afterwards.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Runtime, SHOP, http};

#[test]
fn acknowledged_events_survive_sigkill() {
    let data = std::env::temp_dir().join(format!("kairos-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let data_dir = data.display().to_string();
    let mut runtime = Runtime::start(&[&SHOP[..], &["--data", &data_dir]].concat());
    let port = runtime.port;

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
    runtime.child.kill().unwrap();
    runtime.child.wait().unwrap();
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
    let history = common::history_of(&format!("sqlite://{}", data.join("kairos.db").display()));
    let lost = common::lost_contacts(&history, &acknowledged);
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged contacts were lost: {lost:?}",
        lost.len(),
        acknowledged.len()
    );
}
