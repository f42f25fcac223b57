//! Shared by the tests that run the real binary: paths, ports, a minimal HTTP client and a
//! runtime process that is killed when dropped.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The real binary.
pub fn kairos() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kairos"))
}

/// `kairos data import` of `file` (relative to the repository) into `table`, keyed by
/// `customer_id`, straight into `database`.
pub fn import_table(database: &str, table: &str, file: &str) -> Output {
    kairos()
        .current_dir(repo())
        .args(["data", "import", "--table", table, "--key", "customer_id"])
        .args(["--database", database, file])
        .output()
        .unwrap()
}

/// A file with this text in a folder of this test process.
pub fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kairos-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One request on its own connection; `None` when the server is gone.
pub fn http(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, serde_json::Value)> {
    http_with(port, method, path, None, body)
}

/// [`http`] with a touchpoint token.
pub fn http_with(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Option<(u16, serde_json::Value)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let auth = token.map_or_else(String::new, |t| format!("authorization: Bearer {t}\r\n"));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: k\r\nconnection: close\r\n{auth}content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
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

/// Waits until `GET path` on `port` answers 200 (30 s at most; `what` names the server).
pub fn wait_until_ready(port: u16, path: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while http(port, "GET", path, "").map(|r| r.0) != Some(200) {
        assert!(Instant::now() < deadline, "{what} did not become ready");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every history record of the database at `url` (a test's own, read after its server
/// stopped or while it runs).
pub fn history_of(url: &str) -> Vec<kairos_engine::world::HistoryRecord> {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = kairos_store::HistoryStore::open(url).await.unwrap();
        store.history().await.unwrap()
    })
}

/// The acknowledged treatment codes whose contact `history` lacks.
pub fn lost_contacts<'a>(
    history: &[kairos_engine::world::HistoryRecord],
    acknowledged: &'a [String],
) -> Vec<&'a String> {
    let stored: std::collections::HashSet<&str> = history
        .iter()
        .filter(|r| r.kind == kairos_engine::world::ResponseKind::Contact)
        .map(|r| &*r.treatment.code)
        .collect();
    acknowledged
        .iter()
        .filter(|c| !stored.contains(c.as_str()))
        .collect()
}

/// A process stopped however the test ends: a leftover would hold its ports.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `kairos up`: the control plane on `port`, staging on `port + 1`, production on
/// `port + 2`. Stopped when dropped.
pub struct Up {
    pub port: u16,
    pub process: KillOnDrop,
}

impl Up {
    pub fn control_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn staging(&self) -> u16 {
        self.port + 1
    }

    pub fn production(&self) -> u16 {
        self.port + 2
    }
}

/// Three consecutive free ports, away from `kairos up`'s own 7700-7702 so that the tests run
/// beside one.
fn free_ports() -> u16 {
    let start = 20_000 + (std::process::id() % 10_000) as u16 * 3;
    (0..1000u16)
        .map(|n| 20_000 + (start - 20_000 + n * 3) % 30_000)
        .find(|&base| {
            (base..base + 3).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        })
        .expect("three free ports")
}

/// `kairos up` over a fresh `data` folder on free ports, with this admin password, once
/// staging serves; what it prints goes to `data` with the extension `out`.
pub fn kairos_up(data: &std::path::Path, admin_password: &str) -> Up {
    let _ = std::fs::remove_dir_all(data);
    let port = free_ports();
    let up = KillOnDrop(
        kairos()
            .current_dir(repo())
            .arg("up")
            .arg("--data")
            .arg(data)
            .arg("--ports")
            .arg(port.to_string())
            .env("KAIROS_ADMIN_PASSWORD", admin_password)
            .stdout(std::fs::File::create(data.with_extension("out")).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut up = Up { port, process: up };
    let deadline = Instant::now() + Duration::from_secs(60);
    while http(up.staging(), "GET", "/readyz", "").map(|r| r.0) != Some(200) {
        assert!(Instant::now() < deadline, "staging did not become ready");
        assert!(
            up.process.0.try_wait().unwrap().is_none(),
            "kairos up exited: did another process take ports {port}-{}?",
            port + 2
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    up
}

/// `kairos runtime` arguments serving the scenario suite's shop channel with its tables.
pub const SHOP: [&str; 6] = [
    "--channel-file",
    "tests/scenarios/shop/channel.yaml",
    "--profiles",
    "people=tests/scenarios/people.csv",
    "--profiles",
    "orders=tests/scenarios/orders.csv",
];

/// `kairos runtime` with these arguments on a free port, ready to serve.
pub struct Runtime {
    pub child: Child,
    pub port: u16,
}

impl Runtime {
    pub fn start(args: &[&str]) -> Runtime {
        let port = free_port();
        let child = kairos()
            .current_dir(repo())
            .arg("runtime")
            .args(args)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_until_ready(port, "/readyz", "the runtime");
        Runtime { child, port }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
