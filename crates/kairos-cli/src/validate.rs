//! `kairos validate FILE...`

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use kairos_model::table::read_csv;
use kairos_model::{Diagnostic, Schemas, parse_channel};

#[derive(clap::Args)]
pub struct Args {
    /// Channel files (YAML)
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Type-check profile fields against a table read from CSV: TABLE=FILE.csv (repeatable)
    #[arg(long = "profiles", value_name = "TABLE=FILE.csv")]
    profiles: Vec<String>,
    /// Output format: text, or json for tools and the design UI
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
}

/// Reads `TABLE=FILE.csv` arguments into schemas for type checking.
pub fn load_schemas(specs: &[String]) -> Result<Schemas> {
    let mut schemas = Schemas::new();
    for spec in specs {
        let Some((table, file)) = spec.split_once('=') else {
            bail!("--profiles takes TABLE=FILE.csv, got '{spec}'");
        };
        let input = std::fs::File::open(file).with_context(|| format!("cannot open {file}"))?;
        let loaded = read_csv(table, input, &HashMap::new()).with_context(|| file.to_string())?;
        schemas.insert(loaded.schema);
    }
    Ok(schemas)
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let schemas = load_schemas(&args.profiles)?;
    let mut errors: Vec<Diagnostic> = Vec::new();
    let mut summaries = Vec::new();
    for path in &args.files {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {shown}"))?;
        match parse_channel(&shown, &text, &schemas) {
            Ok(channel) => summaries.push(format!(
                "{shown}: ok (channel {}: {} zones, {} interaction points, {} offers, {} rules)",
                channel.name.value,
                channel.zones.len(),
                channel
                    .zones
                    .iter()
                    .map(|z| z.interaction_points.len())
                    .sum::<usize>(),
                channel.offers.len(),
                channel.rules.len()
            )),
            Err(rejected) => errors.extend(rejected.0),
        }
    }
    if args.format == "json" {
        let report = serde_json::json!({ "valid": errors.is_empty(), "errors": errors });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for e in &errors {
            println!("{e}");
        }
        for s in &summaries {
            println!("{s}");
        }
        if !errors.is_empty() {
            let files = errors
                .iter()
                .map(|e| &e.file)
                .collect::<std::collections::HashSet<_>>()
                .len();
            eprintln!("{} error(s) in {files} file(s)", errors.len());
        }
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
