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

/// The visitors of an audience level's profile table.
pub struct Population {
    pub level: String,
    pub table: String,
    pub visitors: Vec<(
        kairos_engine::world::AudienceId,
        Option<kairos_engine::world::Profile>,
    )>,
}

/// Every visitor of an audience level's profile table (the rows of a flowchart test run or an
/// impact report), with their profiles. Needs `tables` prepared for `dep`.
pub fn population(
    tables: &MemoryTables,
    dep: &kairos_engine::Deployment,
    level: Option<&str>,
) -> Result<Population> {
    let Some(level) = level.or(dep.default_audience_level()).map(str::to_string) else {
        bail!("the channel has no audience level");
    };
    let Some(source) = dep.profile_tables(&level) else {
        bail!("channel '{}' has no audience level '{level}'", dep.channel);
    };
    let (Some(table), Some(field)) = (source.table, source.id_fields.first()) else {
        bail!("audience level '{level}' has no profile table to run over");
    };
    let ids = tables.column_values(table, field);
    if ids.is_empty() {
        bail!("table '{table}' has no rows (give it with --profiles {table}=FILE.csv)");
    }
    let visitors = ids
        .into_iter()
        .map(|id| {
            let audience = kairos_engine::world::AudienceId {
                level: level.clone(),
                fields: vec![(field.clone(), id)],
            };
            let profile = tables.load_profile(dep, &audience);
            (audience, profile)
        })
        .collect();
    Ok(Population {
        level,
        table: table.to_string(),
        visitors,
    })
}
