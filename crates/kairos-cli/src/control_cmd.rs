//! The CLI against a control plane: `login`, `apply`, `export`, `deploy`, `deployments`,
//! `diff`, `approve`, `reject`, `rollback`, and the administrator's `user add` and
//! `token issue`. Each is one call of the design API; the token comes from `KAIROS_TOKEN`
//! or from `kairos login`, saved under `$KAIROS_CONFIG_DIR` (default `~/.config/kairos`).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use kairos_api::Client;
use kairos_api::problem::problem_text;
use kairos_control::{freshest_address, items};
use serde_json::{Value as J, json};

#[derive(clap::Args, Clone)]
pub struct ControlArgs {
    /// The control plane
    #[arg(
        long,
        value_name = "URL",
        env = "KAIROS_CONTROL",
        default_value = "http://127.0.0.1:7700"
    )]
    pub control: String,
    /// A PEM file of the CA that signed the control plane's certificate (a private CA); the
    /// one given at `kairos login` is kept for later commands
    #[arg(long, value_name = "FILE", env = "KAIROS_CA_FILE")]
    pub ca_file: Option<PathBuf>,
}

impl ControlArgs {
    /// A client of the control plane: trusting `--ca-file`, else the CA file `kairos login`
    /// saved for this control plane, besides the system's roots.
    pub fn client(&self, token: Option<String>) -> Result<Client> {
        let saved =
            saved_login(&self.control).and_then(|s| s["ca_file"].as_str().map(PathBuf::from));
        let ca_file = self.ca_file.clone().or(saved);
        Ok(Client::with_ca_file(
            &self.control,
            token,
            ca_file.as_deref(),
        )?)
    }
}

fn config_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KAIROS_CONFIG_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".config").join("kairos")
}

fn token_file() -> PathBuf {
    config_dir().join("token.json")
}

/// The user token: `KAIROS_TOKEN`, or the one `kairos login` saved for this control plane.
pub fn user_token(control: &str) -> Option<String> {
    if let Ok(token) = std::env::var("KAIROS_TOKEN")
        && !token.is_empty()
    {
        return Some(token);
    }
    saved_login(control)?["token"].as_str().map(str::to_string)
}

/// What `kairos login` saved, when it was for this control plane.
fn saved_login(control: &str) -> Option<J> {
    let saved: J = serde_json::from_slice(&std::fs::read(token_file()).ok()?).ok()?;
    (saved["control"] == control).then_some(saved)
}

/// A logged-in connection to the control plane.
pub struct Control {
    client: Client,
}

impl Control {
    pub fn connect(args: &ControlArgs) -> Result<Control> {
        let token = user_token(&args.control).with_context(|| {
            format!(
                "not logged in to {}: run kairos login --user NAME (or set KAIROS_TOKEN)",
                args.control
            )
        })?;
        Ok(Control {
            client: args.client(Some(token))?,
        })
    }

    /// One exchange; an answer other than 2xx is an error with the problem's text.
    fn exchange(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Vec<u8>> {
        let (status, bytes) = self.client.send(method, path, content_type, body)?;
        if !(200..300).contains(&status) {
            let problem = serde_json::from_slice(&bytes).unwrap_or(J::Null);
            bail!("{}", problem_text(status, &problem));
        }
        Ok(bytes)
    }

    /// A JSON call (2xx with no body gives `null`).
    pub fn call(&mut self, method: &str, path: &str, body: Option<&J>) -> Result<J> {
        let text = body.map(J::to_string);
        let content_type = text.as_ref().map(|_| "application/json");
        let bytes = self.exchange(
            method,
            path,
            content_type,
            text.as_deref().unwrap_or_default().as_bytes(),
        )?;
        Ok(serde_json::from_slice(&bytes).unwrap_or(J::Null))
    }

    /// A body that is not JSON (a CSV file), answered with JSON.
    pub fn upload(&mut self, path: &str, content_type: &str, body: &[u8]) -> Result<J> {
        let bytes = self.exchange("POST", path, Some(content_type), body)?;
        Ok(serde_json::from_slice(&bytes).unwrap_or(J::Null))
    }

    pub fn text(&mut self, path: &str) -> Result<String> {
        let bytes = self.exchange("GET", path, None, &[])?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The version of `channel` active on `group`, if any.
    pub fn active_version(&mut self, group: &str, channel: &str) -> Result<Option<i64>> {
        let groups = self.call("GET", "/api/groups", None)?;
        let group = groups
            .as_array()
            .into_iter()
            .flatten()
            .find(|g| g["name"] == group)
            .with_context(|| format!("there is no server group '{group}'"))?;
        Ok(group["active"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| {
                a["channel"]
                    .as_str()
                    .is_some_and(|c| c.eq_ignore_ascii_case(channel))
            })
            .and_then(|a| a["version"].as_i64()))
    }

    /// The address of the group's instance that reported last.
    pub fn group_address(&mut self, group: &str) -> Result<Option<String>> {
        let groups = self.call("GET", "/api/groups", None)?;
        Ok(freshest_address(&groups, group).map(|a| format!("http://{a}")))
    }

    /// Attaches a test result to the version of `channel` active on `group`; says where.
    pub fn attach(
        &mut self,
        group: &str,
        channel: &str,
        kind: &str,
        passed: bool,
        summary: J,
    ) -> Result<String> {
        let version = self
            .active_version(group, channel)?
            .with_context(|| format!("no version of {channel} is active on {group}"))?;
        self.call(
            "POST",
            &format!("/api/channels/{channel}/versions/{version}/results"),
            Some(&json!({ "group": group, "kind": kind, "passed": passed, "summary": summary })),
        )?;
        Ok(format!("{channel} version {version}"))
    }
}

/// A secret from an environment variable, or asked for on the terminal without echo.
fn secret(env: &str, prompt: &str) -> Result<String> {
    if let Ok(value) = std::env::var(env) {
        return Ok(value);
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!("set {env}: there is no terminal to ask for it");
    }
    eprint!("{prompt}: ");
    std::io::stderr().flush()?;
    let echo_off = std::process::Command::new("stty")
        .arg("-echo")
        .status()
        .is_ok();
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if echo_off {
        let _ = std::process::Command::new("stty").arg("echo").status();
        eprintln!();
    }
    read?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

#[derive(clap::Args)]
pub struct LoginArgs {
    /// The user name
    #[arg(long)]
    user: String,
    #[command(flatten)]
    control: ControlArgs,
}

pub fn login(args: &LoginArgs) -> Result<ExitCode> {
    let password = secret("KAIROS_PASSWORD", "password")?;
    let client = args.control.client(None)?;
    let (status, body) = client.request(
        "POST",
        "/api/login",
        Some(&json!({ "user": args.user, "password": password })),
    )?;
    if status != 200 {
        bail!("{}", problem_text(status, &body));
    }
    let path = token_file();
    std::fs::create_dir_all(config_dir())
        .with_context(|| format!("cannot create {}", config_dir().display()))?;
    // The CA file as an absolute path: later commands may run from another folder.
    let ca_file = args
        .control
        .ca_file
        .as_ref()
        .map(|f| std::path::absolute(f).unwrap_or_else(|_| f.clone()));
    let saved = json!({ "control": args.control.control, "user": args.user, "token": body["token"], "ca_file": ca_file });
    std::fs::write(&path, saved.to_string())
        .with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
    let roles: Vec<&str> = body["roles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(J::as_str)
        .collect();
    println!(
        "logged in to {} as {} ({}); token saved in {}",
        args.control.control,
        args.user,
        roles.join(", "),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct ApplyArgs {
    /// Channel files to import, each as a new revision of its channel
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    control: ControlArgs,
}

pub fn apply(args: &ApplyArgs) -> Result<ExitCode> {
    let mut control = Control::connect(&args.control)?;
    for path in &args.files {
        let yaml = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let body = json!({ "file": path.display().to_string(), "yaml": yaml });
        match control.call("POST", "/api/channels/apply", Some(&body)) {
            Ok(applied) => println!(
                "applied {} as channel {} revision {} ({} components)",
                path.display(),
                applied["channel"].as_str().unwrap_or_default(),
                applied["revision"],
                applied["components"]
            ),
            Err(e) => {
                println!("{e}");
                println!("{} was rejected whole; nothing changed", path.display());
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct ExportArgs {
    #[arg(long)]
    channel: String,
    /// A deployed version instead of the current design
    #[arg(long)]
    version: Option<i64>,
    #[command(flatten)]
    control: ControlArgs,
}

pub fn export(args: &ExportArgs) -> Result<ExitCode> {
    let mut control = Control::connect(&args.control)?;
    let query = args
        .version
        .map_or_else(String::new, |v| format!("?version={v}"));
    print!(
        "{}",
        control.text(&format!("/api/channels/{}/export{query}", args.channel))?
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct DeployArgs {
    #[arg(long)]
    channel: String,
    #[arg(long)]
    group: String,
    /// Deploy this version; without it, the current design is snapshotted as a new version
    #[arg(long)]
    version: Option<i64>,
    #[arg(long, default_value = "")]
    note: String,
    /// Administrators only: deploy past failed gates, recording this reason
    #[arg(long = "override", value_name = "REASON")]
    override_reason: Option<String>,
    #[command(flatten)]
    control: ControlArgs,
}

pub fn deploy(args: &DeployArgs) -> Result<ExitCode> {
    let mut control = Control::connect(&args.control)?;
    let body = json!({
        "channel": args.channel,
        "version": args.version,
        "note": args.note,
        "override_reason": args.override_reason,
    });
    let deployed = control.call(
        "POST",
        &format!("/api/groups/{}/deployments", args.group),
        Some(&body),
    )?;
    println!(
        "deployed {} version {} (hash {}) to {}",
        args.channel,
        deployed["version"],
        deployed["hash"].as_str().unwrap_or_default(),
        args.group
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct ChannelArgs {
    #[arg(long)]
    channel: String,
    #[command(flatten)]
    control: ControlArgs,
}

pub fn deployments(args: &ChannelArgs) -> Result<ExitCode> {
    let mut control = Control::connect(&args.control)?;
    let versions = control.call(
        "GET",
        &format!("/api/channels/{}/versions", args.channel),
        None,
    )?;
    if items(&versions).is_empty() {
        println!(
            "{} has no versions yet (kairos deploy snapshots one)",
            args.channel
        );
    }
    for v in items(&versions) {
        let active: Vec<&str> = items(&v["active_in"])
            .iter()
            .filter_map(|g| g.as_str())
            .collect();
        println!(
            "version {}  {}  by {}  hash {}{}",
            v["number"],
            v["created_at"].as_str().unwrap_or_default(),
            v["author"].as_str().unwrap_or_default(),
            v["hash"].as_str().unwrap_or_default(),
            if active.is_empty() {
                String::new()
            } else {
                format!("  ACTIVE on {}", active.join(", "))
            }
        );
        if let Some(note) = v["note"].as_str().filter(|n| !n.is_empty()) {
            println!("  note: {note}");
        }
        for d in items(&v["deployments"]) {
            println!(
                "  {} to {} by {} at {}{}",
                d["action"].as_str().unwrap_or_default(),
                d["group"].as_str().unwrap_or_default(),
                d["by"].as_str().unwrap_or_default(),
                d["at"].as_str().unwrap_or_default(),
                d["reason"]
                    .as_str()
                    .map_or_else(String::new, |r| format!(" ({r})"))
            );
        }
        for r in items(&v["results"]) {
            println!(
                "  {} on {}: {} ({})",
                r["kind"].as_str().unwrap_or_default(),
                r["group"].as_str().unwrap_or_default(),
                if r["passed"] == true {
                    "passed"
                } else {
                    "FAILED"
                },
                r["summary"]["text"].as_str().unwrap_or_default()
            );
        }
        for r in items(&v["reviews"]) {
            println!(
                "  {} by {}: {}",
                r["decision"].as_str().unwrap_or_default(),
                r["reviewer"].as_str().unwrap_or_default(),
                r["comment"].as_str().unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn groups(args: &ControlArgs) -> Result<ExitCode> {
    let mut control = Control::connect(args)?;
    for g in items(&control.call("GET", "/api/groups", None)?) {
        let active: Vec<String> = items(&g["active"])
            .iter()
            .map(|a| {
                format!(
                    "{} v{}",
                    a["channel"].as_str().unwrap_or_default(),
                    a["version"]
                )
            })
            .collect();
        println!(
            "{}{}: {}",
            g["name"].as_str().unwrap_or_default(),
            if g["production"] == true {
                " (production)"
            } else {
                ""
            },
            if active.is_empty() {
                "nothing active".to_string()
            } else {
                active.join(", ")
            }
        );
        for i in items(&g["instances"]) {
            let running: Vec<String> = i["running"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(c, v)| format!("{c} v{}", v["version"]))
                .collect();
            println!(
                "  instance {} at {}: runs {}; last seen {}s ago",
                i["instance"].as_str().unwrap_or_default(),
                i["address"].as_str().unwrap_or_default(),
                if running.is_empty() {
                    "nothing".to_string()
                } else {
                    running.join(", ")
                },
                i["seconds_since_seen"]
            );
        }
    }
    let unknown = control.call("GET", "/api/unknown-names", None)?;
    if !items(&unknown).is_empty() {
        println!("names touchpoints called that their channel does not define:");
        for u in items(&unknown) {
            println!(
                "  {} {} in {}: {} call(s), last at {}",
                u["kind"].as_str().unwrap_or_default().replace('_', " "),
                u["name"].as_str().unwrap_or_default(),
                u["channel"].as_str().unwrap_or_default(),
                u["calls"],
                u["last_at"].as_str().unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct AuditArgs {
    /// How many entries, newest first
    #[arg(long, default_value_t = 50)]
    limit: u32,
    #[command(flatten)]
    control: ControlArgs,
}

/// The audit log: who did what, when.
pub fn audit(args: &AuditArgs) -> Result<ExitCode> {
    let mut control = Control::connect(&args.control)?;
    let log = control.call("GET", &format!("/api/audit?limit={}", args.limit), None)?;
    for e in items(&log) {
        let detail = e["detail"].as_str().unwrap_or_default();
        println!(
            "{}  {:<10} {:<12} {}{}",
            e["at"].as_str().unwrap_or_default(),
            e["actor"].as_str().unwrap_or_default(),
            e["action"].as_str().unwrap_or_default(),
            e["target"].as_str().unwrap_or_default(),
            if detail.is_empty() {
                String::new()
            } else {
                format!(" ({detail})")
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct GroupArgs {
    /// The server group to create or change
    name: String,
    /// Whether it is a production group (production groups check gates)
    #[arg(long)]
    production: Option<bool>,
    /// Its own data source for profile tables (sqlite://PATH or postgres://...)
    #[arg(long, conflicts_with = "shared_data")]
    data: Option<String>,
    /// Share the default data source again
    #[arg(long)]
    shared_data: bool,
    /// Approvals a version needs before it may go to this group
    #[arg(long)]
    approvals: Option<u64>,
    /// Where its runtimes keep their history (the database of their --database), for reports
    #[arg(long, value_name = "URL")]
    history: Option<String>,
    #[command(flatten)]
    control: ControlArgs,
}

pub fn group(args: &GroupArgs) -> Result<ExitCode> {
    let mut control = Control::connect(&args.control)?;
    let groups = control.call("GET", "/api/groups", None)?;
    let existing = items(&groups)
        .into_iter()
        .find(|g| g["name"] == args.name.as_str());
    let mut gates = existing.map_or(J::Null, |g| g["gates"].clone());
    if let Some(n) = args.approvals {
        if !gates.is_object() {
            gates = json!({});
        }
        gates["approvals"] = json!(n);
    }
    let data = match (&args.data, args.shared_data) {
        (Some(url), _) => J::String(url.clone()),
        (None, true) => J::Null,
        (None, false) => existing.map_or(J::Null, |g| g["data"].clone()),
    };
    let mut body = json!({ "production": args.production, "data": data, "history": args.history });
    if gates.is_object() {
        body["gates"] = gates;
    }
    let saved = control.call("PUT", &format!("/api/groups/{}", args.name), Some(&body))?;
    println!(
        "group {}: {}gates {}, data {}, history {}",
        args.name,
        if saved["production"] == true {
            "production, "
        } else {
            ""
        },
        saved["gates"],
        saved["data"].as_str().unwrap_or("shared"),
        saved["history"].as_str().unwrap_or("not set")
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct DiffArgs {
    #[arg(long)]
    channel: String,
    /// A version number, or `design`
    a: String,
    /// A version number, or `design` (the default)
    #[arg(default_value = "design")]
    b: String,
    #[command(flatten)]
    control: ControlArgs,
}

pub fn diff(args: &DiffArgs) -> Result<ExitCode> {
    let mut control = Control::connect(&args.control)?;
    let diff = control.call(
        "GET",
        &format!(
            "/api/channels/{}/diff?from={}&to={}",
            args.channel, args.a, args.b
        ),
        None,
    )?;
    let changes = items(&diff["changes"]);
    if changes.is_empty() {
        println!("{} {} and {} are the same", args.channel, args.a, args.b);
    }
    for c in changes {
        println!(
            "{} {}",
            c["change"].as_str().unwrap_or_default(),
            c["path"].as_str().unwrap_or_default()
        );
        for line in items(&c["lines"]) {
            println!("    {}", line.as_str().unwrap_or_default());
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct ReviewArgs {
    #[arg(long)]
    channel: String,
    #[arg(long)]
    version: i64,
    #[arg(long, default_value = "")]
    comment: String,
    #[command(flatten)]
    control: ControlArgs,
}

pub fn review(args: &ReviewArgs, decision: &str) -> Result<ExitCode> {
    let mut control = Control::connect(&args.control)?;
    control.call(
        "POST",
        &format!(
            "/api/channels/{}/versions/{}/reviews",
            args.channel, args.version
        ),
        Some(&json!({ "decision": decision, "comment": args.comment })),
    )?;
    println!(
        "{} version {} of {}",
        if decision == "approve" {
            "approved"
        } else {
            "rejected"
        },
        args.version,
        args.channel
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct RollbackArgs {
    #[arg(long)]
    channel: String,
    #[arg(long)]
    group: String,
    /// The version to return to; without it, the one active before the current one
    #[arg(long)]
    to: Option<i64>,
    #[command(flatten)]
    control: ControlArgs,
}

pub fn rollback(args: &RollbackArgs) -> Result<ExitCode> {
    let mut control = Control::connect(&args.control)?;
    let back = control.call(
        "POST",
        &format!("/api/groups/{}/rollback", args.group),
        Some(&json!({ "channel": args.channel, "to": args.to })),
    )?;
    println!(
        "rolled {} on {} back to version {} (was {})",
        args.channel, args.group, back["version"], back["previous"]
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Subcommand)]
pub enum UserCommand {
    /// Create or replace a user (password from KAIROS_NEW_PASSWORD or a prompt)
    Add {
        name: String,
        /// designer, administrator, data_administrator, reviewer, manager (repeatable)
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        #[command(flatten)]
        control: ControlArgs,
    },
}

pub fn user(command: &UserCommand) -> Result<ExitCode> {
    let UserCommand::Add {
        name,
        roles,
        control,
    } = command;
    let password = secret("KAIROS_NEW_PASSWORD", &format!("password for {name}"))?;
    Control::connect(control)?.call(
        "POST",
        "/api/users",
        Some(&json!({ "name": name, "password": password, "roles": roles })),
    )?;
    println!("user {name} has roles {}", roles.join(", "));
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Subcommand)]
pub enum TokenCommand {
    /// Issue a token and print it once: for a touchpoint calling a channel, or for a
    /// group's runtimes
    Issue {
        /// A touchpoint token for this channel
        #[arg(long, conflicts_with = "runtime", required_unless_present = "runtime")]
        touchpoint: Option<String>,
        /// A runtime token for this server group
        #[arg(long)]
        runtime: Option<String>,
        #[arg(long, default_value = "")]
        label: String,
        #[command(flatten)]
        control: ControlArgs,
    },
}

pub fn token(command: &TokenCommand) -> Result<ExitCode> {
    let TokenCommand::Issue {
        touchpoint,
        runtime,
        label,
        control,
    } = command;
    let (kind, subject) = match (touchpoint, runtime) {
        (Some(channel), _) => ("touchpoint", channel),
        (None, Some(group)) => ("runtime", group),
        (None, None) => bail!("give --touchpoint CHANNEL or --runtime GROUP"),
    };
    let issued = Control::connect(control)?.call(
        "POST",
        "/api/tokens",
        Some(&json!({ "kind": kind, "for": subject, "label": label })),
    )?;
    println!("{}", issued["token"].as_str().unwrap_or_default());
    eprintln!("a {kind} token for {subject}: shown once, keep it safe");
    Ok(ExitCode::SUCCESS)
}
