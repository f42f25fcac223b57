//! `--profiles TABLE=FILE.csv` arguments, shared by validate, test and runtime.

use std::collections::HashMap;

use anyhow::{Context, Result, bail};
use kairos_engine::inprocess::MemoryTables;
use kairos_model::table::read_csv;

/// Reads `TABLE=FILE.csv` arguments into in-memory tables.
pub fn read_tables(specs: &[String]) -> Result<MemoryTables> {
    let mut tables = Vec::new();
    for spec in specs {
        let Some((table, file)) = spec.split_once('=') else {
            bail!("--profiles takes TABLE=FILE.csv, got '{spec}'");
        };
        let input = std::fs::File::open(file).with_context(|| format!("cannot open {file}"))?;
        tables.push(read_csv(table, input, &HashMap::new()).with_context(|| file.to_string())?);
    }
    Ok(MemoryTables::new(tables))
}

/// Reads, validates and compiles a channel file as deployment `version`; a file with errors
/// fails with every one of them located.
pub fn compile_channel_file(
    path: &std::path::Path,
    schemas: &kairos_model::Schemas,
    version: u64,
) -> Result<(kairos_engine::Deployment, kairos_model::Channel)> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {shown}"))?;
    let channel = kairos_model::parse_channel(&shown, &text, schemas)
        .map_err(|rejected| anyhow::anyhow!("{rejected}"))?;
    let deployment = kairos_engine::Deployment::compile(&channel, schemas, version)?;
    Ok((deployment, channel))
}
