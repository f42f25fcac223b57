//! A control plane serving https:// with a certificate of a private CA: the CLI logs in and
//! works with `--ca-file` (kept by the login for later commands), a group's runtime follows it
//! with `--ca-file`, and without the CA nothing is sent.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::{KillOnDrop, free_port, http, kairos, repo};
use kairos_api::runtime::VersionAnswer;

/// A CA, and a certificate it signed for 127.0.0.1 and localhost: (ca.pem, cert.pem, key.pem).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Kairos test CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let server_params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server = server_params.signed_by(&server_key, &issuer).unwrap();
    let files = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&files.0, ca.pem()).unwrap();
    std::fs::write(&files.1, server.pem()).unwrap();
    std::fs::write(&files.2, server_key.serialize_pem()).unwrap();
    files
}

/// A `kairos` command against `control`, its login saved under `config`.
fn cli(config: &Path, control: &str, args: &[&str]) -> Output {
    kairos()
        .current_dir(repo())
        .env("KAIROS_CONFIG_DIR", config)
        .env("KAIROS_CONTROL", control)
        .env("KAIROS_PASSWORD", "tls-admin-password")
        .env_remove("KAIROS_TOKEN")
        .env_remove("KAIROS_CA_FILE")
        .args(args)
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn the_cli_and_a_runtime_talk_to_a_control_plane_over_tls() {
    let dir = std::env::temp_dir().join(format!("kairos-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, cert, key) = certificates(&dir);
    let port = free_port();
    let _control = KillOnDrop(
        kairos()
            .current_dir(repo())
            .args(["control", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--database")
            .arg(format!("sqlite://{}", dir.join("control.db").display()))
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .env("KAIROS_ADMIN_PASSWORD", "tls-admin-password")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let control = format!("https://127.0.0.1:{port}");
    let ca = ca.to_str().unwrap();

    // Not plain HTTP, and not trusted without the CA: the login fails and says why.
    let deadline = Instant::now() + Duration::from_secs(30);
    let untrusted = loop {
        let out = cli(&dir.join("no-ca"), &control, &["login", "--user", "admin"]);
        if !text(&out).contains("Connection refused") || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!untrusted.status.success());
    assert!(
        text(&untrusted).to_lowercase().contains("certificate"),
        "{}",
        text(&untrusted)
    );
    assert_eq!(
        http(port, "GET", "/healthz", ""),
        None,
        "no plain HTTP answer on the TLS port"
    );

    // With the CA: login, then commands that find the CA in the saved login.
    let config = dir.join("config");
    let login = cli(
        &config,
        &control,
        &["login", "--user", "admin", "--ca-file", ca],
    );
    assert!(login.status.success(), "{}", text(&login));
    let apply = cli(&config, &control, &["apply", "examples/bank/channel.yaml"]);
    assert!(apply.status.success(), "{}", text(&apply));
    let deploy = cli(
        &config,
        &control,
        &["deploy", "--channel", "web", "--group", "staging"],
    );
    assert!(deploy.status.success(), "{}", text(&deploy));

    // A runtime of the group follows the control plane over TLS and serves what it runs.
    let token = cli(
        &config,
        &control,
        &["token", "issue", "--runtime", "staging"],
    );
    assert!(token.status.success(), "{}", text(&token));
    let runtime_token = String::from_utf8_lossy(&token.stdout).trim().to_string();
    let runtime_port = free_port();
    let _runtime = KillOnDrop(
        kairos()
            .current_dir(repo())
            .args(["runtime", "--group", "staging", "--control", &control])
            .args(["--ca-file", ca, "--control-token", &runtime_token])
            .args(["--listen", &format!("127.0.0.1:{runtime_port}")])
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .arg("--data")
            .arg(dir.join("runtime"))
            .arg("--database")
            .arg(format!("sqlite://{}", dir.join("control.db").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // It serves https:// too: touchpoints trusting the CA call it, plain HTTP gets nothing.
    let touchpoint = kairos_api::Client::with_ca_file(
        &format!("https://127.0.0.1:{runtime_port}"),
        None,
        Some(Path::new(ca)),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let version = touchpoint.call::<VersionAnswer>("GET", "/v1/version", None::<&()>);
        if let Ok(answer) = &version
            && answer.channels.get("web").map(|c| c.deployment) == Some(1)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the runtime did not serve the staged version: {version:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(http(runtime_port, "GET", "/healthz", ""), None);
    // The control plane knows to call it by https.
    let groups = cli(&config, &control, &["groups"]);
    assert!(
        text(&groups).contains(&format!("at https://127.0.0.1:{runtime_port}")),
        "{}",
        text(&groups)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
