//! Data-driven: every `invalid/NAME.yaml` must be rejected with exactly the errors listed in
//! `invalid/NAME.errors`. Run with `UPDATE_EXPECT=1` to rewrite the expectations after an
//! intended change, then review the diff.

use std::collections::HashMap;
use std::path::Path;

use kairos_model::table::read_csv;
use kairos_model::{Schemas, parse_channel};

fn schemas(dir: &Path) -> Schemas {
    let mut schemas = Schemas::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "csv") {
            let table = path.file_stem().unwrap().to_str().unwrap();
            let file = std::fs::File::open(&path).unwrap();
            schemas.insert(read_csv(table, file, &HashMap::new()).unwrap().schema);
        }
    }
    schemas
}

#[test]
fn invalid_channel_files_report_every_error_located() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid");
    let schemas = schemas(&dir);
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 8, "the bad files are there");
    let mut failures = Vec::new();
    for path in paths {
        let name = path.file_name().unwrap().to_str().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let actual = match parse_channel(name, &text, &schemas) {
            Ok(_) => "accepted\n".to_string(),
            Err(rejected) => rejected.0.iter().map(|d| format!("{d}\n")).collect(),
        };
        let expected_path = path.with_extension("errors");
        if update {
            std::fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if actual != expected {
            failures.push(format!(
                "{name}\n--- expected\n{expected}--- actual\n{actual}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
