-- History ids without AUTOINCREMENT: the writer gives each id itself (one past the highest, or
-- the row's time if later), so no insert reads and rewrites an id counter, and a time range is
-- an id range: no index on `at` (it was a page more in every commit's log, 14% of its frames).
CREATE TABLE IF NOT EXISTS kairos_history (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, treatment_code TEXT NOT NULL,
    offer TEXT NOT NULL, category TEXT, rule TEXT NOT NULL, segment TEXT, ip TEXT NOT NULL, zone TEXT NOT NULL,
    score DOUBLE PRECISION NOT NULL, deployment BIGINT NOT NULL, session_id TEXT NOT NULL, audience TEXT NOT NULL,
    at BIGINT NOT NULL, issued_at BIGINT NOT NULL, cross_session BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS kairos_history_treatment ON kairos_history (treatment_code);
-- One b-tree keyed by audience: every logged event rewrites one row at a random place, and a
-- rowid table would dirty two random pages (the row and its key's index entry) where this
-- dirties one.
CREATE TABLE IF NOT EXISTS kairos_audience (audience TEXT PRIMARY KEY, state TEXT NOT NULL,
    updated_at BIGINT NOT NULL) WITHOUT ROWID;
