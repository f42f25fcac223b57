//! Runs every scenario file under `tests/scenarios/<channel>/` in process against that
//! folder's `channel.yaml`, with the CSV tables of `tests/scenarios/` as profile tables.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use kairos_engine::Deployment;
use kairos_engine::inprocess::{InProcess, MemoryTables};
use kairos_engine::scenario::{format_report, run_file};
use kairos_model::scenario::parse_scenarios;
use kairos_model::table::read_csv;

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios")
}

fn tables() -> MemoryTables {
    let mut tables = Vec::new();
    for entry in std::fs::read_dir(scenarios_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "csv") {
            let name = path.file_stem().unwrap().to_str().unwrap().to_string();
            tables.push(
                read_csv(&name, std::fs::File::open(&path).unwrap(), &HashMap::new()).unwrap(),
            );
        }
    }
    MemoryTables::new(tables)
}

#[test]
fn every_scenario_file_passes_in_process() {
    let mut tables = tables();
    let mut ran = 0;
    let mut failures = String::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(scenarios_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("channel.yaml").exists())
        .collect();
    dirs.sort();
    for dir in dirs {
        let channel_file = dir.join("channel.yaml");
        let text = std::fs::read_to_string(&channel_file).unwrap();
        let channel = kairos_model::parse_channel("channel.yaml", &text, &tables.schemas())
            .unwrap_or_else(|e| panic!("{e}"));
        let deployment = Deployment::compile(&channel, &tables.schemas(), 1).unwrap();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".scenarios.yaml"))
            .collect();
        files.sort();
        for file in files {
            let name = file
                .strip_prefix(scenarios_dir())
                .unwrap()
                .display()
                .to_string();
            let scenarios = parse_scenarios(&name, &std::fs::read_to_string(&file).unwrap())
                .unwrap_or_else(|e| panic!("{e}"));
            let now = scenarios
                .now
                .as_ref()
                .expect("test scenarios pin their clock")
                .value
                .at;
            let mut target = InProcess::new(&deployment, &mut tables, now, 1);
            let reports = run_file(&scenarios, &mut target);
            ran += reports.len();
            if reports.iter().any(|r| !r.passed()) {
                failures.push_str(&format_report(&name, &reports));
            }
        }
    }
    assert!(ran >= 25, "the scenario files were found ({ran} scenarios)");
    assert!(failures.is_empty(), "{failures}");
}
