-- The schema (columns and types) of every imported profile or dimension table.
CREATE TABLE IF NOT EXISTS kairos_tables (name TEXT PRIMARY KEY, schema TEXT NOT NULL);
