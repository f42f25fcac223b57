//! The design UI in Debian's Chromium, driven by playwright-core (`tests/browser/ui.mjs`)
//! against a real `kairos up`. Needs `/usr/bin/chromium` and `npm ci --prefix tests/browser`;
//! `.ci/run` installs both, so under CI the test must run.

mod common;

use std::process::Command;

use common::{kairos_up, repo};

#[test]
fn the_design_ui_works_in_a_browser() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let playwright = repo().join("tests/browser/node_modules/playwright-core");
    if !std::path::Path::new(&chromium).exists() || !playwright.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install chromium and run npm ci --prefix tests/browser"
        );
        // Written past the test harness's capture: a skip shows in every run, passed or not.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"SKIPPED no chromium or playwright-core: the browser test\n",
        );
        return;
    }
    let data = std::env::temp_dir().join(format!("kairos-browser-{}", std::process::id()));
    let password = "browser-admin-secret";
    let up = kairos_up(&data, password);
    let screenshots = repo().join("tests/browser/screenshots");
    let out = Command::new("node")
        .current_dir(repo())
        .arg("tests/browser/ui.mjs")
        .arg(up.control_url())
        .arg(&screenshots)
        .env("KAIROS_ADMIN_PASSWORD", password)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node runs");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{output}");
    assert!(output.contains("browser tests passed"), "{output}");
}
