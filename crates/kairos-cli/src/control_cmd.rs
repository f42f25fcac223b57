//! The CLI against a control plane: `login`, `apply`, `export`, `deploy`, `deployments`,
//! `diff`, `approve`, `reject`, `rollback`, and the administrator's `user add` and
//! `token issue`. Each is one call of the design API; the token comes from `KAIROS_TOKEN`
//! or from `kairos login`, saved under `$KAIROS_CONFIG_DIR` (default `~/.config/kairos`).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use kairos_api::Client;
use kairos_api::control::{
    Applied, ApplyRequest, AuditView, Decision, DeployRequest, Deployed, Diff, Gates, GroupRequest,
    GroupSaved, GroupView, LoggedIn, LoginRequest, ReviewRequest, Reviewed, Role, RollbackRequest,
    RolledBack,
};
use kairos_api::problem::problem_text;
use kairos_api::testrun::{RunState, TestRun, TestRunRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value as J;

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
    /// A named login of its own (`kairos login --context rex`), so that several users or
    /// control planes are used side by side; without it, the default login
    #[arg(long, value_name = "NAME", env = "KAIROS_CONTEXT", value_parser = context_name)]
    pub context: Option<String>,
}

/// A context's name: it names a file.
fn context_name(name: &str) -> Result<String, String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    match valid {
        true => Ok(name.to_string()),
        false => Err("letters, digits, - and _, at most 64".to_string()),
    }
}

impl ControlArgs {
    /// A client of the control plane sending `token`: trusting `--ca-file`, else the CA file
    /// of `saved` (what `kairos login` kept for this control plane), besides the system's
    /// roots.
    fn client(&self, token: Option<String>, saved: Option<&SavedLogin>) -> Result<Client> {
        let ca_file = self
            .ca_file
            .as_deref()
            .or(saved.and_then(|s| s.ca_file.as_deref()));
        Ok(Client::with_ca_file(&self.control, token, ca_file)?)
    }
}

fn config_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KAIROS_CONFIG_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".config").join("kairos")
}

/// Where the login of `context` (or the default one) is kept.
pub fn token_file(context: Option<&str>) -> PathBuf {
    match context {
        Some(name) => config_dir().join("contexts").join(format!("{name}.json")),
        None => config_dir().join("token.json"),
    }
}

/// The user token: `KAIROS_TOKEN`, or the one `kairos login` saved for this control plane.
fn user_token(saved: Option<&SavedLogin>) -> Option<String> {
    if let Ok(token) = std::env::var("KAIROS_TOKEN")
        && !token.is_empty()
    {
        return Some(token);
    }
    saved.map(|s| s.token.clone())
}

/// What `kairos login` keeps under `$KAIROS_CONFIG_DIR`: one login at a time.
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedLogin {
    control: String,
    user: String,
    token: String,
    /// The CA file given at login, for the commands after it.
    #[serde(default)]
    ca_file: Option<PathBuf>,
}

/// What `kairos login` saved last, for whichever control plane.
fn last_login(context: Option<&str>) -> Option<SavedLogin> {
    serde_json::from_slice(&std::fs::read(token_file(context)).ok()?).ok()
}

/// What `kairos login` saved, when it was for this control plane.
fn saved_login(args: &ControlArgs) -> Option<SavedLogin> {
    last_login(args.context.as_deref()).filter(|saved| saved.control == args.control)
}

/// A logged-in connection to the control plane.
pub struct Control {
    client: Client,
}

impl Control {
    pub fn connect(args: &ControlArgs) -> Result<Control> {
        // Read once: it holds both the token and the CA file.
        let saved = saved_login(args);
        let token = user_token(saved.as_ref())
            .ok_or_else(|| crate::exit::NotLoggedIn(args.control.clone()))?;
        Ok(Control {
            client: args.client(Some(token), saved.as_ref())?,
        })
    }

    /// A JSON call, its answer read as `T` (`IgnoredAny` for an answer with no body); a
    /// refusal is an error with the problem's text.
    pub fn call<T: DeserializeOwned>(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T> {
        Ok(self.client.call(method, path, body)?)
    }

    /// A GET, its answer read as `T`.
    pub fn get<T: DeserializeOwned>(&mut self, path: &str) -> Result<T> {
        self.call("GET", path, None::<&()>)
    }

    /// A body that is not JSON (a CSV file), answered with JSON.
    pub fn upload<T: DeserializeOwned>(
        &mut self,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<T> {
        Ok(self.client.upload(path, content_type, body)?)
    }

    /// A text answer (a channel file).
    pub fn text(&mut self, path: &str) -> Result<String> {
        let (status, bytes) = self.client.send("GET", path, None, &[])?;
        if !(200..300).contains(&status) {
            let problem = serde_json::from_slice(&bytes).unwrap_or(J::Null);
            bail!("{}", problem_text(status, &problem));
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Submits a test run to the control plane, which runs it against `group`'s runtime and
    /// records the outcome; follows it to its end, printing its report as it grows and a load
    /// test's progress on a terminal. Succeeds when everything passed.
    pub fn run_tests(&mut self, group: &str, request: &TestRunRequest) -> Result<ExitCode> {
        let mut run: TestRun = self.call(
            "POST",
            &format!("/api/groups/{group}/test-runs"),
            Some(request),
        )?;
        let mut printed = 0;
        let bar = crate::loadtest_cmd::shows_progress();
        loop {
            // The report only grows; print what is new.
            if let Some(new) = run.report.get(printed..) {
                print!("{new}");
                printed = run.report.len();
                std::io::stdout().flush()?;
            }
            if let (true, Some(p)) = (bar, run.progress) {
                crate::loadtest_cmd::draw_progress(p);
            }
            if run.state != RunState::Running {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
            run = self.get(&format!("/api/test-runs/{}", run.id))?;
        }
        if bar && run.progress.is_some() {
            eprintln!();
        }
        for r in &run.results {
            println!(
                "results attached to {} version {} on {group}",
                r.channel, r.version
            );
        }
        Ok(match run.state {
            RunState::Passed => ExitCode::SUCCESS,
            RunState::Error => {
                eprintln!("the control plane could not run the tests; nothing is recorded");
                ExitCode::FAILURE
            }
            _ => ExitCode::FAILURE,
        })
    }
}

/// A secret from an environment variable, or asked for on the terminal without echo.
pub fn secret(env: &str, prompt: &str) -> Result<String> {
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
    let client = args
        .control
        .client(None, saved_login(&args.control).as_ref())?;
    let request = LoginRequest {
        user: args.user.clone(),
        password,
    };
    let logged_in: LoggedIn = client.call("POST", "/api/login", Some(&request))?;
    let context = args.control.context.as_deref();
    let path = token_file(context);
    let dir = path.parent().expect("a login file is in a folder");
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // The CA file as an absolute path: later commands may run from another folder.
    let ca_file = args
        .control
        .ca_file
        .as_ref()
        .map(|f| std::path::absolute(f).unwrap_or_else(|_| f.clone()));
    let saved = SavedLogin {
        control: args.control.control.clone(),
        user: logged_in.user.clone(),
        token: logged_in.token,
        ca_file,
    };
    // One login is kept: say whose this one replaced.
    if let Some(before) =
        last_login(context).filter(|b| b.user != saved.user || b.control != saved.control)
    {
        eprintln!(
            "this replaces the saved login of {} at {} (log in with --context NAME to keep both)",
            before.user, before.control
        );
    }
    std::fs::write(&path, serde_json::to_string(&saved)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
    println!(
        "logged in to {} as {} ({}); token saved in {}",
        args.control.control,
        logged_in.user,
        names(&logged_in.roles),
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
        let request = ApplyRequest {
            file: path.display().to_string(),
            yaml,
        };
        match control.call::<Applied>("POST", "/api/channels/apply", Some(&request)) {
            Ok(applied) => println!(
                "applied {} as channel {} revision {} ({} components)",
                path.display(),
                applied.channel,
                applied.revision,
                applied.components
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
    /// The channel to print
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
    /// The channel to deploy
    #[arg(long)]
    channel: String,
    /// The server group to make it active on
    #[arg(long)]
    group: String,
    /// Deploy this version; without it, the current design is snapshotted as a new version
    #[arg(long)]
    version: Option<i64>,
    /// Why: kept with the version it makes
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
    let request = DeployRequest {
        channel: args.channel.clone(),
        version: args.version,
        note: args.note.clone(),
        override_reason: args.override_reason.clone(),
    };
    let deployed: Deployed = control.call(
        "POST",
        &format!("/api/groups/{}/deployments", args.group),
        Some(&request),
    )?;
    println!(
        "deployed {} version {} (hash {}) to {}",
        args.channel, deployed.version, deployed.hash, args.group
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct AuditArgs {
    /// How many entries, newest first
    #[arg(long, default_value_t = 50)]
    limit: u32,
    #[command(flatten)]
    output: crate::list_cmd::Output,
    #[command(flatten)]
    control: ControlArgs,
}

/// The audit log: who did what, when.
pub fn audit(args: &AuditArgs) -> Result<ExitCode> {
    let mut control = Control::connect(&args.control)?;
    let log: Vec<AuditView> = control.get(&format!("/api/audit?limit={}", args.limit))?;
    args.output.print(&log, |e| {
        format!(
            "{}  {:<10} {:<12} {}{}",
            crate::list_cmd::to_second(&e.at),
            e.actor,
            e.action,
            e.target,
            if e.detail.is_empty() {
                String::new()
            } else {
                format!(" ({})", e.detail)
            }
        )
    })?;
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
    approvals: Option<u32>,
    /// Who may approve for this group: reviewer or manager
    #[arg(long, value_parser = ["reviewer", "manager"])]
    review_role: Option<String>,
    /// The shortest load test that counts for the load-test gate, in seconds
    #[arg(long)]
    min_loadtest_seconds: Option<u32>,
    /// Whether touchpoints may call the group's runtimes without a token
    #[arg(long)]
    open: Option<bool>,
    /// Where its runtimes keep their history (the database of their --database), for reports
    #[arg(long, value_name = "URL")]
    history: Option<String>,
    /// An origin whose pages may call the group's runtimes from a browser (CORS):
    /// https://shop.example.com, or * for any; repeatable, replaces the group's list
    #[arg(
        long = "cors-origin",
        value_name = "ORIGIN",
        conflicts_with = "no_cors"
    )]
    cors_origins: Vec<String>,
    /// Allow no origin (browser pages of other origins cannot call the runtimes)
    #[arg(long)]
    no_cors: bool,
    #[command(flatten)]
    control: ControlArgs,
}

pub fn group(args: &GroupArgs) -> Result<ExitCode> {
    let mut control = Control::connect(&args.control)?;
    let groups: Vec<GroupView> = control.get("/api/groups")?;
    let existing = groups.into_iter().find(|g| g.name == args.name);
    // The gates named are changed, the rest kept.
    let mut gates = existing.as_ref().map(|g| g.gates.clone());
    let changes_gates = args.approvals.is_some()
        || args.review_role.is_some()
        || args.min_loadtest_seconds.is_some();
    if changes_gates {
        let production = args
            .production
            .or(existing.as_ref().map(|g| g.production))
            .unwrap_or(false);
        let g = gates.get_or_insert_with(|| {
            if production {
                Gates::production()
            } else {
                Gates::none()
            }
        });
        if let Some(n) = args.approvals {
            g.approvals = n;
        }
        if let Some(role) = args.review_role.as_deref().and_then(Role::from_name) {
            g.review_role = role;
        }
        if let Some(seconds) = args.min_loadtest_seconds {
            g.min_loadtest_seconds = seconds;
        }
    }
    let data = match (&args.data, args.shared_data) {
        (Some(url), _) => Some(url.clone()),
        (None, true) => None,
        (None, false) => existing.and_then(|g| g.data),
    };
    let request = GroupRequest {
        production: args.production,
        gates,
        open: args.open,
        data,
        history: args.history.clone(),
        cors_origins: match (&args.cors_origins[..], args.no_cors) {
            ([], false) => None,
            (origins, _) => Some(origins.to_vec()),
        },
    };
    let saved: GroupSaved =
        control.call("PUT", &format!("/api/groups/{}", args.name), Some(&request))?;
    println!(
        "group {}: {}{}, gates {}, data {}, history {}, browser origins {}",
        args.name,
        if saved.production { "production, " } else { "" },
        if saved.open { "open" } else { "closed" },
        describe_gates(&saved.gates),
        saved.data.as_deref().unwrap_or("shared"),
        saved.history.as_deref().unwrap_or("not set"),
        if saved.cors_origins.is_empty() {
            "none".to_string()
        } else {
            saved.cors_origins.join(" ")
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// A group's gates in a line: the ones it checks, and who approves.
fn describe_gates(gates: &Gates) -> String {
    let mut parts: Vec<String> = [
        (gates.staged, "staged"),
        (gates.scenarios, "scenarios"),
        (gates.loadtest, "loadtest"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| name.to_string())
    .collect();
    if gates.loadtest {
        parts.push(format!(
            "load tests of {}s or more",
            gates.min_loadtest_seconds
        ));
    }
    if gates.approvals > 0 {
        parts.push(format!(
            "{} approval(s) by a {}",
            gates.approvals,
            gates.review_role.name()
        ));
    }
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(", ")
    }
}

#[derive(clap::Args)]
pub struct DiffArgs {
    /// The channel whose versions to compare
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
    let diff: Diff = control.get(&format!(
        "/api/channels/{}/diff?from={}&to={}",
        args.channel, args.a, args.b
    ))?;
    if diff.changes.is_empty() {
        println!("{} {} and {} are the same", args.channel, args.a, args.b);
    }
    for c in &diff.changes {
        println!("{} {}", c.change, c.path);
        for line in &c.lines {
            println!("    {line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct ReviewArgs {
    /// The channel of the version
    #[arg(long)]
    channel: String,
    #[arg(long)]
    version: i64,
    /// What the reviewer says about it, shown with the review
    #[arg(long, default_value = "")]
    comment: String,
    #[command(flatten)]
    control: ControlArgs,
}

pub fn review(args: &ReviewArgs, decision: Decision) -> Result<ExitCode> {
    let mut control = Control::connect(&args.control)?;
    let request = ReviewRequest {
        decision,
        comment: args.comment.clone(),
    };
    control.call::<Reviewed>(
        "POST",
        &format!(
            "/api/channels/{}/versions/{}/reviews",
            args.channel, args.version
        ),
        Some(&request),
    )?;
    println!(
        "{} version {} of {}",
        if decision == Decision::Approve {
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
    /// The channel to roll back
    #[arg(long)]
    channel: String,
    /// The server group it is rolled back on
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
    let request = RollbackRequest {
        channel: args.channel.clone(),
        to: args.to,
    };
    let back: RolledBack = control.call(
        "POST",
        &format!("/api/groups/{}/rollback", args.group),
        Some(&request),
    )?;
    println!(
        "rolled {} on {} back to version {} (was {})",
        args.channel,
        args.group,
        back.version,
        back.previous
            .map_or_else(|| "none".to_string(), |v| v.to_string())
    );
    Ok(ExitCode::SUCCESS)
}

/// Roles as their names, for people.
pub fn names(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.name())
        .collect::<Vec<_>>()
        .join(", ")
}
