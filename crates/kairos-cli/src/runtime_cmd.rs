//! `kairos runtime`: one runtime instance. With `--group G --control URL` it serves what the
//! control plane has active for its server group; with `--channel-file FILE...` it serves
//! channel files directly (offline mode), reloading them when they change.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use kairos_api::serve::ConnectionLimits;
use kairos_engine::Deployment;
use kairos_engine::channel_hash;
use kairos_runtime::profiles::StoreProfiles;
use kairos_runtime::shared::RedisSessions;
use kairos_runtime::{Config, Limits, ProfileSource, Runtime};
use kairos_store::{HistoryStore, ProfileStore};

use crate::tables::{compile_channel_file, read_tables};
use kairos_api::tls::TlsListener;
use kairos_runtime::follow::Follow;

use crate::logging::LogArgs;
use crate::tls_args::TlsArgs;

#[derive(clap::Args)]
pub struct Args {
    /// Serve these channel files directly, without a control plane (offline mode)
    #[arg(
        long = "channel-file",
        value_name = "FILE",
        required_unless_present = "group",
        conflicts_with = "group"
    )]
    channel_files: Vec<PathBuf>,
    /// Serve what the control plane has active for this server group
    #[arg(long, requires = "control")]
    group: Option<String>,
    /// The control plane a group's runtime follows
    #[arg(long, value_name = "URL")]
    control: Option<String>,
    /// A PEM file of the CA that signed the control plane's certificate (a private CA)
    #[arg(
        long,
        value_name = "FILE",
        env = "KAIROS_CA_FILE",
        requires = "control"
    )]
    ca_file: Option<PathBuf>,
    /// The runtime token the control plane issued for the group (kairos token issue
    /// --runtime GROUP); without it, the user token of KAIROS_TOKEN or of `kairos login`
    #[arg(long, value_name = "TOKEN", env = "KAIROS_RUNTIME_TOKEN")]
    control_token: Option<String>,
    /// This instance's name on the control plane's status page (default: its address)
    #[arg(long)]
    instance: Option<String>,
    /// Profile and dimension tables: TABLE=FILE.csv (repeatable); without any, profiles are
    /// read from the tables imported into the database (`kairos data import`)
    #[arg(long = "profiles", value_name = "TABLE=FILE.csv")]
    profiles: Vec<String>,
    /// Where history and audience state are kept (SQLite in DIR/kairos.db), and a group's
    /// last versions (DIR/cache)
    #[arg(long, value_name = "DIR", default_value = "./kairos-data")]
    data: PathBuf,
    /// Keep history and read profile tables in this database instead: sqlite://PATH or postgres://...
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7701")]
    listen: SocketAddr,
    /// Where sessions live: memory, or redis://... to share them with the group's other
    /// instances
    #[arg(long, value_name = "URL", default_value = "memory")]
    sessions: String,
    /// A touchpoint token to accept (repeatable); without any the runtime runs open
    #[arg(long = "token", value_name = "TOKEN")]
    tokens: Vec<String>,
    /// An origin whose pages may call from a browser (CORS): https://shop.example.com, or *
    /// for any (repeatable); a followed group's origins are allowed too
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    cors_origins: Vec<String>,
    /// Minutes a session may stay idle before it expires
    #[arg(long, default_value_t = 30)]
    idle_minutes: u64,
    /// The most live sessions; a start session beyond them is refused with 503
    /// TOO_MANY_SESSIONS until sessions end or expire
    #[arg(long, default_value_t = Config::default().max_sessions,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_sessions: usize,
    /// Milliseconds start session waits for the profile and history stores before it answers
    /// with what it has and a warning
    #[arg(long, default_value_t = Config::default().store_budget.as_millis() as u64)]
    store_budget_ms: u64,
    #[command(flatten)]
    tls: TlsArgs,
    #[command(flatten)]
    log: LogArgs,
    #[command(flatten)]
    limits: LimitArgs,
}

/// What one caller can make the runtime hold or answer; a call past a limit is refused with
/// 422 LIMIT_EXCEEDED naming it.
#[derive(clap::Args)]
struct LimitArgs {
    /// The longest session ID a caller may choose, in characters
    #[arg(long, default_value_t = Limits::default().session_id_chars)]
    max_session_id: usize,
    /// The most real-time parameters one session holds
    #[arg(long, default_value_t = Limits::default().params_per_session)]
    max_params: usize,
    /// The largest real-time parameter, its name and text value, in bytes
    #[arg(long, default_value_t = Limits::default().param_bytes)]
    max_param_bytes: usize,
    /// The most commands in one batch
    #[arg(long, default_value_t = Limits::default().batch_commands)]
    max_batch_commands: usize,
    /// The largest answer of one batch, in bytes
    #[arg(long, default_value_t = Limits::default().answer_bytes)]
    max_answer_bytes: usize,
    /// The largest request body, in bytes
    #[arg(long, default_value_t = Config::default().body_limit)]
    max_body_bytes: usize,
    /// The most connections open at once; more wait until one closes
    #[arg(long, default_value_t = ConnectionLimits::default().max_connections)]
    max_connections: usize,
    /// Seconds a client has to send a request's headers
    #[arg(long, default_value_t = ConnectionLimits::default().header_timeout.as_secs())]
    header_timeout_secs: u64,
    /// Seconds a connection may stay idle before it is closed
    #[arg(long, default_value_t = ConnectionLimits::default().idle_timeout.as_secs())]
    keep_alive_secs: u64,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        Limits {
            session_id_chars: self.max_session_id,
            params_per_session: self.max_params,
            param_bytes: self.max_param_bytes,
            batch_commands: self.max_batch_commands,
            answer_bytes: self.max_answer_bytes,
            connections: ConnectionLimits {
                max_connections: self.max_connections,
                header_timeout: Duration::from_secs(self.header_timeout_secs),
                idle_timeout: Duration::from_secs(self.keep_alive_secs),
            },
        }
    }
}

/// The database history, state and (without `--profiles`) profile tables live in.
fn database_url(args: &Args) -> String {
    args.database
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", args.data.join("kairos.db").display()))
}

/// Reads, validates and compiles every channel file against its profile tables: the CSV files
/// given, or else the tables imported into the database.
async fn load(
    args: &Args,
    version: u64,
) -> Result<(Vec<(Deployment, String)>, Box<dyn ProfileSource>)> {
    let mut tables = None;
    let mut from_database = None;
    let schemas = if args.profiles.is_empty() {
        let store = ProfileStore::open(&database_url(args))
            .await
            .context("cannot open the profile tables")?;
        let profiles = StoreProfiles::open(store)
            .await
            .context("cannot read the profile tables")?;
        let schemas = profiles.schemas();
        from_database = Some(profiles);
        schemas
    } else {
        let read = read_tables(&args.profiles)?;
        let schemas = read.schemas();
        tables = Some(read);
        schemas
    };
    let mut deployments = Vec::new();
    for path in &args.channel_files {
        let (deployment, channel) = compile_channel_file(path, &schemas, version)?;
        if let Some(tables) = tables.as_mut() {
            tables.prepare(&deployment);
        }
        deployments.push((deployment, channel_hash(&channel)));
    }
    let source: Box<dyn ProfileSource> = match (tables, from_database) {
        (Some(tables), _) => Box::new(tables),
        (None, Some(profiles)) => Box::new(profiles),
        (None, None) => unreachable!("one source is read above"),
    };
    Ok((deployments, source))
}

fn modified(paths: &[PathBuf]) -> Vec<Option<SystemTime>> {
    paths
        .iter()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

fn watched(args: &Args) -> Vec<PathBuf> {
    let csvs = args
        .profiles
        .iter()
        .filter_map(|s| s.split_once('=').map(|(_, f)| PathBuf::from(f)));
    args.channel_files.iter().cloned().chain(csvs).collect()
}

pub fn run(args: Args) -> Result<ExitCode> {
    args.log.init()?;
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    tokio.block_on(serve(args))
}

/// A runtime over the database's history, with sessions in memory or in Redis under
/// `prefix`, its learning statistics warmed from history.
async fn build_runtime(
    args: &Args,
    profiles: Box<dyn ProfileSource>,
    prefix: &str,
) -> Result<Arc<Runtime>> {
    let db = database_url(args);
    let store = HistoryStore::open(&db)
        .await
        .with_context(|| format!("cannot open {db}"))?;
    let config = Config {
        tokens: args.tokens.clone(),
        cors_origins: args.cors_origins.clone(),
        idle_timeout: Duration::from_secs(args.idle_minutes * 60),
        max_sessions: args.max_sessions,
        store_budget: Duration::from_millis(args.store_budget_ms),
        body_limit: args.limits.max_body_bytes,
        limits: args.limits.limits(),
        ..Config::default()
    };
    let mut runtime = Runtime::new(store, profiles, config);
    if args.sessions != "memory" {
        if !args.sessions.starts_with("redis://") {
            anyhow::bail!(
                "--sessions takes memory or redis://..., got '{}'",
                args.sessions
            );
        }
        let ttl = Duration::from_secs(args.idle_minutes * 60);
        let shared = RedisSessions::connect(&args.sessions, prefix, ttl)
            .await
            .map_err(anyhow::Error::msg)?;
        runtime = runtime.with_shared_sessions(shared);
    }
    let runtime = Arc::new(runtime);
    runtime
        .warm()
        .await
        .context("cannot read history to warm learning statistics")?;
    Ok(runtime)
}

fn print_common(args: &Args, db: &str) {
    println!("  history and state: {db}");
    println!("  sessions: {}", args.sessions);
    if args.tokens.is_empty() {
        println!(
            "  touchpoint tokens: {}",
            if args.group.is_some() {
                "as the control plane says: an open group takes calls without one, a closed one \
                 those issued for the channel called"
            } else {
                "none required (give --token to require one)"
            }
        );
    }
}

async fn serve(args: Args) -> Result<ExitCode> {
    if args.database.is_none() {
        std::fs::create_dir_all(&args.data)
            .with_context(|| format!("cannot create {}", args.data.display()))?;
    }
    if let Some(group) = args.group.clone() {
        return serve_group(args, group).await;
    }
    let db = database_url(&args);
    let (deployments, profiles) = load(&args, 1).await?;
    // Instances serving the same channels share a key space.
    let mut channels: Vec<&str> = deployments
        .iter()
        .map(|(d, _)| d.channel.as_str())
        .collect();
    channels.sort();
    let runtime = build_runtime(&args, profiles, &format!("kairos:{}", channels.join(","))).await?;
    let mut names = Vec::new();
    for (deployment, hash) in deployments {
        names.push(format!(
            "{} (version {})",
            deployment.channel, deployment.version
        ));
        runtime.deploy(deployment, hash);
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    println!(
        "kairos runtime (offline) serving {} on {}://{}",
        names.join(", "),
        args.tls.scheme(),
        listener.local_addr()?
    );
    print_common(&args, &db);
    if args.profiles.is_empty() {
        println!("  profiles: the tables imported into {db} (kairos data import)");
    }
    println!("  watching the channel and profile files; edits are validated and swapped in live");
    let listener = args.tls.listener(listener)?;
    tokio::spawn(watch(args, runtime.clone()));
    run_until_signal(listener, runtime).await
}

/// Serves until Ctrl-C or SIGTERM, through TLS or not, then writes what sessions hold.
async fn run_until_signal(
    listener: Result<TlsListener, tokio::net::TcpListener>,
    runtime: Arc<Runtime>,
) -> Result<ExitCode> {
    match listener {
        Ok(tls) => kairos_runtime::run(tls, runtime, shutdown_signal()).await?,
        Err(plain) => kairos_runtime::run(plain, runtime, shutdown_signal()).await?,
    }
    println!("kairos runtime stopped; history flushed");
    Ok(ExitCode::SUCCESS)
}

/// A runtime of a server group: serves its cached versions at once, then what the control
/// plane says the group runs.
async fn serve_group(args: Args, group: String) -> Result<ExitCode> {
    let db = database_url(&args);
    let store = ProfileStore::open(&db)
        .await
        .context("cannot open the profile tables")?;
    let profiles = StoreProfiles::open(store)
        .await
        .context("cannot read the profile tables")?;
    let runtime =
        build_runtime(&args, Box::new(profiles), &format!("kairos:group:{group}")).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    // Reported with its scheme: the control plane calls it for test runs and the simulator.
    let bound = listener.local_addr()?.to_string();
    let address = format!("{}://{bound}", args.tls.scheme());
    let follow = Follow {
        control: args
            .control
            .clone()
            .expect("clap requires --control with --group"),
        ca_file: args.ca_file.clone(),
        token: args.control_token.clone(),
        group: group.clone(),
        instance: args.instance.clone().unwrap_or(bound),
        address: address.clone(),
        cache: args.data.join("cache"),
        database: db.clone(),
    };
    let cached = follow.serve_cached(&runtime).await;
    println!(
        "kairos runtime of group {group} on {address}, following {}",
        follow.control
    );
    if cached {
        println!("  serving the group's last known versions until the control plane answers");
    }
    print_common(&args, &db);
    follow.spawn(runtime.clone(), tokio::runtime::Handle::current());
    run_until_signal(args.tls.listener(listener)?, runtime).await
}

/// Polls the files; a change that validates is deployed as the next version, one that does
/// not is reported and the running version keeps serving.
async fn watch(args: Args, runtime: Arc<Runtime>) {
    let paths = watched(&args);
    let mut seen = modified(&paths);
    let mut version = 1;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = modified(&paths);
        if now == seen {
            continue;
        }
        seen = now;
        match load(&args, version + 1).await {
            Ok((deployments, profiles)) => {
                version += 1;
                runtime.set_profiles(profiles);
                for (deployment, hash) in deployments {
                    tracing::info!(channel = %deployment.channel, "reloaded as version {version}");
                    runtime.deploy(deployment, hash);
                }
            }
            Err(e) => tracing::warn!("not reloaded, still serving version {version}: {e:#}"),
        }
    }
}

/// Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.unwrap_or(());
}
