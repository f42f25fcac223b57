//! `kairos up`: Kairos on one machine, with the embedded store and the demo channel.
//!
//! This build runs the two runtimes of the default server groups: `staging` on 127.0.0.1:7701,
//! serving the demo channel with its profiles, and `production` on 127.0.0.1:7702, with
//! nothing deployed until a version is promoted. The control plane (design UI and deployment
//! API on 127.0.0.1:7700) is not part of this build yet.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use kairos_engine::Deployment;
use kairos_model::table::read_csv;
use kairos_server::profiles::StoreProfiles;
use kairos_server::{Config, Runtime, channel_hash};
use kairos_store::{HistoryStore, ProfileStore};

use crate::demo;

const DEMO_CHANNEL: &str = include_str!("../../../examples/bank/channel.yaml");
const STAGING: &str = "127.0.0.1:7701";
const PRODUCTION: &str = "127.0.0.1:7702";

#[derive(clap::Args)]
pub struct Args {
    /// Where the embedded store keeps everything
    #[arg(long, value_name = "DIR", default_value = "./kairos-data")]
    data: PathBuf,
    /// Start without the demo channel and its profiles
    #[arg(long)]
    no_demo: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(up(args))
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

async fn group(args: &Args, name: &str, profiles_url: &str) -> Result<Arc<Runtime>> {
    let history = format!(
        "sqlite://{}",
        args.data.join(format!("{name}.db")).display()
    );
    let store = HistoryStore::open(&history)
        .await
        .with_context(|| format!("cannot open {history}"))?;
    let profiles = StoreProfiles::open(ProfileStore::open(profiles_url).await?).await?;
    let runtime = Runtime::new(store, Box::new(profiles), Config::default());
    runtime.warm().await?;
    Ok(Arc::new(runtime))
}

async fn up(args: Args) -> Result<ExitCode> {
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("cannot create {}", args.data.display()))?;
    let profiles_url = format!("sqlite://{}", args.data.join("kairos.db").display());
    let profile_store = ProfileStore::open(&profiles_url)
        .await
        .with_context(|| format!("cannot open {profiles_url}"))?;
    if !args.no_demo {
        load_demo_tables(&profile_store, &args).await?;
    }
    let staging = group(&args, "staging", &profiles_url).await?;
    let production = group(&args, "production", &profiles_url).await?;
    if !args.no_demo {
        let schemas = StoreProfiles::open(profile_store).await?.schemas();
        let channel = kairos_model::parse_channel("demo channel", DEMO_CHANNEL, &schemas)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        staging.deploy(
            Deployment::compile(&channel, &schemas, 1)?,
            channel_hash(&channel),
        );
    }
    let staging_listener = tokio::net::TcpListener::bind(STAGING)
        .await
        .with_context(|| format!("cannot listen on {STAGING}"))?;
    let production_listener = tokio::net::TcpListener::bind(PRODUCTION)
        .await
        .with_context(|| format!("cannot listen on {PRODUCTION}"))?;

    println!("kairos up: data in {}", args.data.display());
    println!(
        "  staging runtime     http://{STAGING}   {}",
        if args.no_demo {
            "(nothing deployed)"
        } else {
            "serving the demo channel 'web'"
        }
    );
    println!("  production runtime  http://{PRODUCTION}   (nothing deployed yet)");
    println!("  control plane       not part of this build yet (127.0.0.1:7700)");
    println!("  open: the runtimes require no touchpoint token");
    if !args.no_demo {
        println!();
        println!("Try it:");
        println!("  curl -s http://{STAGING}/v1/sessions -H 'content-type: application/json' \\");
        println!(
            "       -d '{{\"channel\":\"web\",\"audience_id\":{{\"customer_id\":1001}},\"debug\":true}}'"
        );
        println!("  curl -s 'http://{STAGING}/v1/sessions/SESSION_ID/offers?ip=hero&count=2'");
        println!("  API description: http://{STAGING}/openapi.json");
    }

    // One Ctrl-C (or SIGTERM) stops both runtimes, each writing what its sessions hold.
    let (stop, _) = tokio::sync::broadcast::channel::<()>(1);
    let (mut stop_staging, mut stop_production) = (stop.subscribe(), stop.subscribe());
    tokio::spawn(async move {
        crate::runtime_cmd::shutdown_signal().await;
        let _ = stop.send(());
    });
    let (a, b) = tokio::join!(
        kairos_server::run(staging_listener, staging, async move {
            let _ = stop_staging.recv().await;
        }),
        kairos_server::run(production_listener, production, async move {
            let _ = stop_production.recv().await;
        }),
    );
    a?;
    b?;
    println!("kairos stopped; history flushed");
    Ok(ExitCode::SUCCESS)
}
