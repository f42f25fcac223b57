//! Profile and dimension tables: their schemas (which feed expression type checking) and CSV
//! loading with type inference.

use std::collections::HashMap;
use std::io::Read;

use kairos_rules::time::parse_instant;
use kairos_rules::{Type, Value};

/// The type of one column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    Int,
    Double,
    Bool,
    Timestamp,
    String,
}

impl ColumnType {
    pub fn expr_type(self) -> Type {
        match self {
            ColumnType::Int => Type::Int,
            ColumnType::Double => Type::Double,
            ColumnType::Bool => Type::Bool,
            ColumnType::Timestamp => Type::Timestamp,
            ColumnType::String => Type::String,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Int => "int",
            ColumnType::Double => "double",
            ColumnType::Bool => "bool",
            ColumnType::Timestamp => "timestamp",
            ColumnType::String => "string",
        }
    }

    pub fn from_name(name: &str) -> Option<ColumnType> {
        [
            ColumnType::Int,
            ColumnType::Double,
            ColumnType::Bool,
            ColumnType::Timestamp,
            ColumnType::String,
        ]
        .into_iter()
        .find(|t| t.name() == name)
    }

    /// Parses one cell; an empty cell is a missing value.
    pub fn parse(self, cell: &str) -> Result<Option<Value>, String> {
        if cell.is_empty() {
            return Ok(None);
        }
        let bad = || format!("'{cell}' is not {}", self.name());
        Ok(Some(match self {
            ColumnType::Int => Value::Int(cell.parse().map_err(|_| bad())?),
            ColumnType::Double => Value::Double(cell.parse().map_err(|_| bad())?),
            ColumnType::Bool => match cell {
                "true" | "TRUE" | "True" => Value::Bool(true),
                "false" | "FALSE" | "False" => Value::Bool(false),
                _ => return Err(bad()),
            },
            ColumnType::Timestamp => Value::Timestamp(parse_instant(cell).map_err(|_| bad())?.at),
            ColumnType::String => Value::string(cell),
        }))
    }

    /// The narrowest type every non-empty cell fits.
    fn infer<'a>(cells: impl Iterator<Item = &'a str> + Clone) -> ColumnType {
        let non_empty = cells.filter(|c| !c.is_empty());
        [
            ColumnType::Int,
            ColumnType::Double,
            ColumnType::Bool,
            ColumnType::Timestamp,
        ]
        .into_iter()
        .find(|t| {
            non_empty.clone().all(|c| t.parse(c).is_ok()) && non_empty.clone().next().is_some()
        })
        .unwrap_or(ColumnType::String)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ColumnType,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TableSchema {
    pub name: String,
    pub columns: Vec<Column>,
}

impl TableSchema {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// A table loaded into memory: its schema and rows (`None` is a missing value).
#[derive(Clone, Debug)]
pub struct Table {
    pub schema: TableSchema,
    pub rows: Vec<Vec<Option<Value>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("cannot read the CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("the CSV has no header row")]
    NoHeader,
    #[error("column '{0}' appears twice in the header")]
    DuplicateColumn(String),
    #[error("column '{0}' is not a valid name: start with a letter, then letters, digits or _")]
    BadColumnName(String),
    #[error("row {row}, column '{column}': {message}")]
    BadCell {
        row: usize,
        column: String,
        message: String,
    },
    #[error("schema names column '{0}', which the CSV does not have")]
    UnknownSchemaColumn(String),
}

/// Reads a CSV with a header row. Column types come from `declared` where given, else are
/// inferred from the cells.
pub fn read_csv(
    name: &str,
    input: impl Read,
    declared: &HashMap<String, ColumnType>,
) -> Result<Table, TableError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(input);
    let header: Vec<String> = reader.headers()?.iter().map(str::to_string).collect();
    if header.is_empty() || header.iter().all(String::is_empty) {
        return Err(TableError::NoHeader);
    }
    for (i, column) in header.iter().enumerate() {
        let valid = column
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && column
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(TableError::BadColumnName(column.clone()));
        }
        if header[..i].contains(column) {
            return Err(TableError::DuplicateColumn(column.clone()));
        }
    }
    if let Some(unknown) = declared.keys().find(|k| !header.contains(k)) {
        return Err(TableError::UnknownSchemaColumn(unknown.clone()));
    }
    let records: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>()?;
    let columns: Vec<Column> = header
        .iter()
        .enumerate()
        .map(|(i, column)| Column {
            name: column.clone(),
            ty: declared.get(column).copied().unwrap_or_else(|| {
                ColumnType::infer(records.iter().map(|r| r.get(i).unwrap_or("")))
            }),
        })
        .collect();
    let rows = records
        .iter()
        .enumerate()
        .map(|(r, record)| {
            columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    c.ty.parse(record.get(i).unwrap_or(""))
                        .map_err(|message| TableError::BadCell {
                            row: r + 2,
                            column: c.name.clone(),
                            message,
                        })
                })
                .collect()
        })
        .collect::<Result<_, _>>()?;
    Ok(Table {
        schema: TableSchema {
            name: name.to_string(),
            columns,
        },
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_the_narrowest_type_per_column() {
        let csv = "id,age,balance,vip,joined,city\n1,30,10.5,true,2024-01-01,Paris\n2,,20,false,2025-03-01T10:00:00Z,\n";
        let t = read_csv("customers", csv.as_bytes(), &HashMap::new()).unwrap();
        let types: Vec<_> = t.schema.columns.iter().map(|c| c.ty).collect();
        use ColumnType::*;
        assert_eq!(types, [Int, Int, Double, Bool, Timestamp, String]);
        assert_eq!(t.rows[1][1], None, "an empty cell is missing");
        assert_eq!(t.rows[1][2], Some(Value::Double(20.0)));
    }

    #[test]
    fn declared_types_win_and_bad_cells_are_located() {
        let declared = HashMap::from([("id".to_string(), ColumnType::String)]);
        let t = read_csv("t", "id\n007\n".as_bytes(), &declared).unwrap();
        assert_eq!(t.rows[0][0], Some(Value::from("007")));
        let declared = HashMap::from([("n".to_string(), ColumnType::Int)]);
        let e = read_csv("t", "n\n1\nx\n".as_bytes(), &declared).unwrap_err();
        assert_eq!(e.to_string(), "row 3, column 'n': 'x' is not int");
        let e = read_csv("t", "a,a\n1,2\n".as_bytes(), &HashMap::new()).unwrap_err();
        assert_eq!(e.to_string(), "column 'a' appears twice in the header");
    }
}
