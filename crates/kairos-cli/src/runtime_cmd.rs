//! `kairos runtime --channel-file FILE... --listen ADDR`: a runtime serving channel files
//! directly (offline mode), reloading them when they change.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use kairos_engine::Deployment;
use kairos_engine::inprocess::MemoryTables;
use kairos_server::{Config, Runtime, channel_hash};
use kairos_store::HistoryStore;

use crate::tables::read_tables;

#[derive(clap::Args)]
pub struct Args {
    /// Serve these channel files directly, without a control plane (offline mode)
    #[arg(long = "channel-file", value_name = "FILE", required = true)]
    channel_files: Vec<PathBuf>,
    /// Profile and dimension tables: TABLE=FILE.csv (repeatable)
    #[arg(long = "profiles", value_name = "TABLE=FILE.csv")]
    profiles: Vec<String>,
    /// Where history and audience state are kept (SQLite)
    #[arg(long, default_value = "./kairos-data")]
    data: PathBuf,
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:7701")]
    listen: SocketAddr,
    /// A touchpoint token to accept (repeatable); without any the runtime runs open
    #[arg(long = "token", value_name = "TOKEN")]
    tokens: Vec<String>,
    /// Minutes a session may stay idle before it expires
    #[arg(long, default_value_t = 30)]
    idle_minutes: u64,
}

/// Reads, validates and compiles every channel file with the given tables.
fn load(args: &Args, version: u64) -> Result<(Vec<(Deployment, String)>, MemoryTables)> {
    let mut tables = read_tables(&args.profiles)?;
    let schemas = tables.schemas();
    let mut deployments = Vec::new();
    for path in &args.channel_files {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {shown}"))?;
        let channel = kairos_model::parse_channel(&shown, &text, &schemas)
            .map_err(|rejected| anyhow::anyhow!("{rejected}"))?;
        let deployment = Deployment::compile(&channel, &schemas, version)?;
        tables.prepare(&deployment);
        deployments.push((deployment, channel_hash(&channel)));
    }
    Ok((deployments, tables))
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
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    tokio.block_on(serve(args))
}

async fn serve(args: Args) -> Result<ExitCode> {
    let (deployments, tables) = load(&args, 1)?;
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("cannot create {}", args.data.display()))?;
    let db = args.data.join("runtime.db");
    let store = HistoryStore::open(&format!("sqlite://{}", db.display()))
        .await
        .with_context(|| format!("cannot open {}", db.display()))?;
    let config = Config {
        tokens: args.tokens.clone(),
        idle_timeout: Duration::from_secs(args.idle_minutes * 60),
        ..Config::default()
    };
    let runtime = Arc::new(Runtime::new(store, Box::new(tables), config));
    runtime
        .warm()
        .await
        .context("cannot read history to warm learning statistics")?;
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
        "kairos runtime (offline) serving {} on http://{}",
        names.join(", "),
        listener.local_addr()?
    );
    println!("  history and state: {}", db.display());
    if args.tokens.is_empty() {
        println!("  open: no touchpoint token is required (give --token to require one)");
    }
    println!("  watching the channel and profile files; edits are validated and swapped in live");
    tokio::spawn(watch(args, runtime.clone()));
    kairos_server::run(listener, runtime, shutdown_signal()).await?;
    println!("kairos runtime stopped; history flushed");
    Ok(ExitCode::SUCCESS)
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
        match load(&args, version + 1) {
            Ok((deployments, tables)) => {
                version += 1;
                runtime.set_profiles(Box::new(tables));
                for (deployment, hash) in deployments {
                    println!("reloaded {} as version {version}", deployment.channel);
                    runtime.deploy(deployment, hash);
                }
            }
            Err(e) => eprintln!("not reloaded, still serving version {version}: {e:#}"),
        }
    }
}

async fn shutdown_signal() {
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
