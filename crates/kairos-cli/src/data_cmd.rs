//! `kairos data import --table NAME --key FIELD FILE.csv`: create or replace a profile or
//! dimension table in the data source the runtimes read: through the control plane (the
//! data administrator's role checked, `--group G` for a group's own data source), or
//! straight into a database with `--database URL`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use kairos_control::declared_types;
use kairos_model::table::read_csv;
use kairos_store::ProfileStore;

use kairos_api::control::Imported;

use crate::control_cmd::{Control, ControlArgs};

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
    /// Into this server group's own data source (staging on test data)
    #[arg(long, conflicts_with = "database")]
    group: Option<String>,
    /// Straight into this database (sqlite://PATH or postgres://...), not through the
    /// control plane
    #[arg(long)]
    database: Option<String>,
    #[command(flatten)]
    control: ControlArgs,
    /// The CSV file, with a header row
    file: PathBuf,
}

pub fn run(command: DataCommand) -> Result<ExitCode> {
    let DataCommand::Import(args) = command;
    let Some(database) = &args.database else {
        return through_control(&args);
    };
    let input = std::fs::File::open(&args.file)
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    let types = declared_types(args.schema.as_deref()).map_err(anyhow::Error::msg)?;
    let table =
        read_csv(&args.table, input, &types).with_context(|| args.file.display().to_string())?;
    if let Some(path) = database.strip_prefix("sqlite://")
        && let Some(dir) = std::path::Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let rows = tokio.block_on(async {
        let store = ProfileStore::open(database).await?;
        store.import(&table, &args.key).await
    })?;
    let columns: Vec<(String, String)> = table
        .schema
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.ty.name().to_string()))
        .collect();
    report(&args, rows, &columns);
    Ok(ExitCode::SUCCESS)
}

fn report(args: &ImportArgs, rows: usize, columns: &[(String, String)]) {
    let columns: Vec<String> = columns.iter().map(|(n, t)| format!("{n} {t}")).collect();
    println!(
        "imported {rows} rows into table {} ({}), keyed by {}{}",
        args.table,
        columns.join(", "),
        args.key,
        args.group
            .as_deref()
            .map_or_else(String::new, |g| format!(", for group {g}"))
    );
}

/// The CSV sent to the control plane, which checks the role and imports it.
fn through_control(args: &ImportArgs) -> Result<ExitCode> {
    let csv = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let mut path = format!("/api/tables/{}?key={}", args.table, args.key);
    if let Some(group) = &args.group {
        path.push_str(&format!("&group={group}"));
    }
    if let Some(schema) = &args.schema {
        // Spaces around the pairs mean nothing and would break the query string.
        path.push_str(&format!("&schema={}", schema.replace(' ', "")));
    }
    let imported: Imported = Control::connect(&args.control)?.upload(&path, "text/csv", &csv)?;
    let columns: Vec<(String, String)> = imported
        .columns
        .into_iter()
        .map(|c| (c.name, c.ty))
        .collect();
    let rows = imported.rows as usize;
    report(args, rows, &columns);
    Ok(ExitCode::SUCCESS)
}
