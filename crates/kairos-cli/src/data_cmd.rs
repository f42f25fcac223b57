//! `kairos data import --table NAME --key FIELD FILE.csv`: create or replace a profile or
//! dimension table in the database the runtimes read.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use kairos_model::table::{ColumnType, read_csv};
use kairos_store::ProfileStore;

#[derive(clap::Subcommand)]
pub enum DataCommand {
    /// Create or replace a profile or dimension table from a CSV file
    Import(ImportArgs),
}

#[derive(clap::Args)]
pub struct ImportArgs {
    /// The table's name, as channels name it (profile_table, dimensions)
    #[arg(long)]
    table: String,
    /// The column rows are looked up by (the audience ID field, or a dimension's key)
    #[arg(long)]
    key: String,
    /// Column types instead of inferring them: COLUMN:TYPE,... (int, double, bool, timestamp, string)
    #[arg(long)]
    schema: Option<String>,
    /// The database: sqlite://PATH or postgres://...
    #[arg(long, default_value = "sqlite://./kairos-data/kairos.db")]
    database: String,
    /// The CSV file, with a header row
    file: PathBuf,
}

fn declared(spec: Option<&str>) -> Result<HashMap<String, ColumnType>> {
    let mut types = HashMap::new();
    for item in spec
        .into_iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.trim().is_empty())
    {
        let Some((column, ty)) = item.split_once(':') else {
            bail!("--schema takes COLUMN:TYPE pairs separated by commas, got '{item}'");
        };
        let Some(ty) = ColumnType::from_name(ty.trim()) else {
            bail!("--schema: '{ty}' is not a type; use int, double, bool, timestamp or string");
        };
        types.insert(column.trim().to_string(), ty);
    }
    Ok(types)
}

pub fn run(command: DataCommand) -> Result<ExitCode> {
    let DataCommand::Import(args) = command;
    let input = std::fs::File::open(&args.file)
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    let table = read_csv(&args.table, input, &declared(args.schema.as_deref())?)
        .with_context(|| args.file.display().to_string())?;
    if let Some(path) = args.database.strip_prefix("sqlite://")
        && let Some(dir) = std::path::Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let rows = tokio.block_on(async {
        let store = ProfileStore::open(&args.database).await?;
        store.import(&table, &args.key).await
    })?;
    let columns: Vec<String> = table
        .schema
        .columns
        .iter()
        .map(|c| format!("{} {}", c.name, c.ty.name()))
        .collect();
    println!(
        "imported {rows} rows into table {} ({}), keyed by {}",
        args.table,
        columns.join(", "),
        args.key
    );
    Ok(ExitCode::SUCCESS)
}
