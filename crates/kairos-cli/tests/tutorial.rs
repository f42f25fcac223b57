//! docs/first-channel.md, run as written: its shell blocks, in order, in an empty folder,
//! against a `kairos up` (on free ports: the tutorial's 7700-7702 are replaced by them), with
//! the `kairos` under test first on the PATH. A newcomer following it reaches production.

mod common;

use std::process::Command;

use common::repo;

/// The ```sh blocks of a Markdown text, in order.
fn shell_blocks(text: &str) -> Vec<&str> {
    text.split("```sh\n")
        .skip(1)
        .map(|rest| rest.split("\n```").next().unwrap())
        .collect()
}

#[test]
fn the_first_channel_tutorial_runs_from_an_empty_folder_to_production() {
    let data = std::env::temp_dir().join(format!("kairos-tutorial-{}", std::process::id()));
    let up = common::kairos_up(&data, "tutorial-password");
    let home = data.with_extension("home");
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).unwrap();
    let text = std::fs::read_to_string(repo().join("docs/first-channel.md")).unwrap();
    let mut script = shell_blocks(&text).join("\n");
    assert!(script.contains("kairos deploy --channel coffee --group production"));
    for (from, to) in [
        ("127.0.0.1:7700", up.port),
        ("127.0.0.1:7701", up.staging()),
        ("127.0.0.1:7702", up.production()),
    ] {
        script = script.replace(from, &format!("127.0.0.1:{to}"));
    }
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_kairos"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(&home)
        .env("PATH", path)
        .env("HOME", &home)
        .env("KAIROS_CONTROL", up.control_url())
        // What a reader types at the password prompts.
        .env("KAIROS_PASSWORD", "tutorial-password")
        .env("KAIROS_NEW_PASSWORD", "tutorial-password")
        .env("NO_COLOR", "1")
        .env_remove("KAIROS_TOKEN")
        .env_remove("KAIROS_CONFIG_DIR")
        .env_remove("KAIROS_CA_FILE")
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the tutorial failed:\n{said}");
    // The last call is the app's, on production, with its token.
    let last = said.trim_end().lines().last().unwrap_or_default();
    assert!(last.contains("\"session_id\""), "{said}");
    assert!(
        said.contains("coffee v1"),
        "kairos groups shows production running it: {said}"
    );
    let _ = std::fs::remove_dir_all(&home);
    let _ = std::fs::remove_dir_all(&data);
}
