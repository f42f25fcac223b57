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
