CREATE TABLE IF NOT EXISTS kairos_history (id BIGSERIAL PRIMARY KEY, kind TEXT NOT NULL, treatment_code TEXT NOT NULL,
    offer TEXT NOT NULL, category TEXT, rule TEXT NOT NULL, segment TEXT, ip TEXT NOT NULL, zone TEXT NOT NULL,
    score DOUBLE PRECISION NOT NULL, deployment BIGINT NOT NULL, session_id TEXT NOT NULL, audience TEXT NOT NULL,
    at BIGINT NOT NULL, issued_at BIGINT NOT NULL, cross_session BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS kairos_history_treatment ON kairos_history (treatment_code);
CREATE TABLE IF NOT EXISTS kairos_audience (audience TEXT PRIMARY KEY, state TEXT NOT NULL,
    updated_at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS kairos_history_at ON kairos_history (at);
