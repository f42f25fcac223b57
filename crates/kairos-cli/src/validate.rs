//! `kairos validate FILE...`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use kairos_model::{Diagnostic, parse_channel};

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

pub fn run(args: &Args) -> Result<ExitCode> {
    let schemas = crate::tables::read_tables(&args.profiles)?.schemas();
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
