//! `kairos up`: Kairos on one machine. The control plane on 127.0.0.1:7700, the `staging`
//! runtime on 127.0.0.1:7701 and the `production` runtime on 127.0.0.1:7702 (three ports from
//! `--ports`), each runtime following its group like any other; storage embedded in `--data`. On first start: the
//! `admin` user and, unless `--no-demo`, the demo channel with its profiles, on staging.
//!
//! `kairos control --listen ADDR --database URL` is the control plane alone.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use kairos_api::control::TokenKind;
use kairos_control::ControlPlane;
use kairos_model::table::read_csv;
use kairos_runtime::profiles::StoreProfiles;
use kairos_runtime::{Config, Runtime};
use kairos_store::{HistoryStore, ProfileStore};

use crate::demo;
use crate::logging::LogArgs;
use crate::tls_args::TlsArgs;
use kairos_runtime::follow::Follow;

const DEMO_CHANNEL: &str = include_str!("../../../examples/bank/channel.yaml");
const CONTROL: &str = "127.0.0.1:7700";

#[derive(clap::Args)]
pub struct Args {
    /// Where the embedded store keeps everything
    #[arg(long, value_name = "DIR", default_value = "./kairos-data")]
    data: PathBuf,
    /// Start without the demo channel and its profiles
    #[arg(long)]
    no_demo: bool,
    /// The control plane's port; staging listens on the next one, production on the one
    /// after
    #[arg(long, value_name = "PORT", default_value_t = 7700, value_parser = clap::value_parser!(u16).range(1..65534))]
    ports: u16,
    #[command(flatten)]
    log: LogArgs,
}

impl Args {
    /// The control plane's address, staging's and production's.
    fn addresses(&self) -> [String; 3] {
        [0, 1, 2].map(|n| format!("127.0.0.1:{}", self.ports + n))
    }
}

#[derive(clap::Args)]
pub struct ControlArgs {
    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value = CONTROL)]
    listen: SocketAddr,
    /// The design repository, and the profile tables: sqlite://PATH or postgres://...
    #[arg(
        long,
        value_name = "URL",
        default_value = "sqlite://./kairos-data/kairos.db"
    )]
    database: String,
    #[command(flatten)]
    tls: TlsArgs,
    #[command(flatten)]
    log: LogArgs,
}

fn tokio() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

pub fn run(args: Args) -> Result<ExitCode> {
    args.log.init()?;
    tokio()?.block_on(up(args))
}

pub fn run_control(args: ControlArgs) -> Result<ExitCode> {
    args.log.init()?;
    tokio()?.block_on(async {
        if let Some(path) = args.database.strip_prefix("sqlite://")
            && let Some(dir) = std::path::Path::new(path).parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let control = open_control(&args.database).await?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let address = listener.local_addr()?;
        let shutdown = crate::runtime_cmd::shutdown_signal();
        println!("kairos control plane on {}://{address}", args.tls.scheme());
        println!("  design repository: {}", args.database);
        match args.tls.listener(listener)? {
            Ok(tls) => {
                control.set_serves_tls();
                kairos_control::run(tls, control, shutdown).await?;
            }
            Err(plain) => kairos_control::run(plain, control, shutdown).await?,
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// The control plane over `database`, with the `admin` user: its password from
/// `KAIROS_ADMIN_PASSWORD`, or generated and printed this once.
async fn open_control(database: &str) -> Result<Arc<ControlPlane>> {
    let control = ControlPlane::open(database, kairos_api::wall_clock)
        .await
        .with_context(|| format!("cannot open {database}"))?;
    let given = std::env::var("KAIROS_ADMIN_PASSWORD").ok();
    let password = given
        .clone()
        .unwrap_or_else(kairos_control::auth::new_password);
    match (control.ensure_admin(&password).await?, given) {
        (true, Some(_)) => println!("created user admin (password from KAIROS_ADMIN_PASSWORD)"),
        (true, None) => println!(
            "created user admin with password {password} (shown once; set KAIROS_ADMIN_PASSWORD to choose it)"
        ),
        // The admin exists: its password is what it was set to, not this variable's.
        (false, Some(_)) => eprintln!(
            "KAIROS_ADMIN_PASSWORD is ignored: user admin exists already with its own password \
             (to change it, stop kairos and run: kairos user reset-password admin)"
        ),
        (false, None) => {}
    }
    Ok(Arc::new(control))
}

/// Imports the demo's profile tables once; later starts keep what is there.
async fn load_demo_tables(profiles: &ProfileStore, args: &Args) -> Result<()> {
    let marker = args.data.join("demo-tables-imported");
    if marker.exists() {
        return Ok(());
    }
    let (customers, accounts) = demo::profiles(demo::DEFAULT_SEED, demo::DEFAULT_CUSTOMERS);
    for (name, csv) in [("customers", customers), ("accounts", accounts)] {
        let table = read_csv(name, csv.as_bytes(), &HashMap::new())?;
        profiles
            .import(&table, "customer_id")
            .await
            .with_context(|| format!("cannot import the demo table {name}"))?;
    }
    std::fs::write(&marker, "the demo's profile tables were imported\n")?;
    Ok(())
}

/// Where `group`'s runtime keeps its contact and response history.
fn history_url(args: &Args, group: &str) -> String {
    format!(
        "sqlite://{}",
        args.data.join(format!("{group}.db")).display()
    )
}

/// One runtime of `group`, following it through the control plane on this machine.
async fn group_runtime(
    args: &Args,
    control: &ControlPlane,
    group: &str,
    address: &str,
    database: &str,
) -> Result<Arc<Runtime>> {
    let [control_address, ..] = args.addresses();
    let history = history_url(args, group);
    let store = HistoryStore::open(&history)
        .await
        .with_context(|| format!("cannot open {history}"))?;
    let profiles = StoreProfiles::open(ProfileStore::open(database).await?).await?;
    let runtime = Arc::new(Runtime::new(store, Box::new(profiles), Config::default()));
    runtime.warm().await?;
    // The runtimes of the last start are gone: their tokens go with them.
    control
        .revoke_tokens(TokenKind::Runtime, group, "kairos up")
        .await?;
    let (token, _) = control
        .issue_token(TokenKind::Runtime, group, "kairos up", "admin", None)
        .await?;
    let follow = Follow {
        control: format!("http://{control_address}"),
        ca_file: None,
        token: Some(token),
        group: group.to_string(),
        instance: format!("{group}-1"),
        address: address.to_string(),
        cache: args.data.join("cache"),
        database: database.to_string(),
    };
    follow.serve_cached(&runtime).await;
    follow.spawn(runtime.clone(), tokio::runtime::Handle::current());
    Ok(runtime)
}

async fn bind(address: &str) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))
}

async fn up(args: Args) -> Result<ExitCode> {
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("cannot create {}", args.data.display()))?;
    let database = format!("sqlite://{}", args.data.join("kairos.db").display());
    let [control_address, staging_address, production_address] = args.addresses();
    let control_listener = bind(&control_address).await?;
    let staging_listener = bind(&staging_address).await?;
    let production_listener = bind(&production_address).await?;
    println!("kairos up: data in {}", args.data.display());
    let control = open_control(&database).await?;
    if !args.no_demo {
        load_demo_tables(&ProfileStore::open(&database).await?, &args).await?;
        control
            .seed_channel("examples/bank/channel.yaml", DEMO_CHANNEL, "staging")
            .await
            .map_err(|p| anyhow::anyhow!("cannot deploy the demo: {}", p.detail))?;
    }
    for group in ["staging", "production"] {
        control
            .set_history(group, &history_url(&args, group))
            .await
            .map_err(|p| anyhow::anyhow!("cannot configure {group}: {}", p.detail))?;
    }
    let staging = group_runtime(&args, &control, "staging", &staging_address, &database).await?;
    let production = group_runtime(
        &args,
        &control,
        "production",
        &production_address,
        &database,
    )
    .await?;

    println!("  design UI           http://{control_address}/   (log in as admin)");
    println!(
        "  control plane API   http://{control_address}/api/   (described at /api/openapi.json)"
    );
    println!("  staging runtime     http://{staging_address}");
    println!("  production runtime  http://{production_address}");
    // The runtime API's contract: a set-up that runs open says so.
    let groups = control
        .groups()
        .await
        .map_err(|p| anyhow::anyhow!("cannot read the server groups: {}", p.detail))?;
    let access: Vec<String> = groups
        .iter()
        .map(|g| format!("{} {}", g.name, if g.open { "open" } else { "closed" }))
        .collect();
    println!(
        "  touchpoint tokens   {} (an open group takes calls without a token; \
         kairos token issue --touchpoint CHANNEL)",
        access.join(", ")
    );
    println!();
    println!("Try it:");
    if args.ports != 7700 {
        println!("  export KAIROS_CONTROL=http://{control_address}");
    }
    println!("  kairos login --user admin");
    println!("  kairos deployments --channel web");
    if !args.no_demo {
        println!(
            "  curl -s http://{staging_address}/v1/sessions -H 'content-type: application/json' \\"
        );
        println!(
            "       -d '{{\"channel\":\"web\",\"audience_id\":{{\"customer_id\":1001}},\"debug\":true}}'"
        );
        println!(
            "  curl -s 'http://{staging_address}/v1/sessions/SESSION_ID/offers?ip=hero&count=2'"
        );
        println!("  kairos test examples/bank/staging.scenarios.yaml --group staging");
    }

    // One Ctrl-C (or SIGTERM) stops everything, each runtime writing what its sessions hold.
    let (stop, _) = tokio::sync::broadcast::channel::<()>(1);
    let stopped = |stop: &tokio::sync::broadcast::Sender<()>| {
        let mut rx = stop.subscribe();
        async move {
            let _ = rx.recv().await;
        }
    };
    let (on_control, on_staging, on_production) = (stopped(&stop), stopped(&stop), stopped(&stop));
    tokio::spawn(async move {
        crate::runtime_cmd::shutdown_signal().await;
        let _ = stop.send(());
    });
    let (a, b, c) = tokio::join!(
        kairos_control::run(control_listener, control, on_control),
        kairos_runtime::run(staging_listener, staging, on_staging),
        kairos_runtime::run(production_listener, production, on_production),
    );
    a?;
    b?;
    c?;
    println!("kairos stopped; history flushed");
    Ok(ExitCode::SUCCESS)
}
