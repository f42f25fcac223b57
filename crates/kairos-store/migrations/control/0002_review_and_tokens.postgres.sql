-- Who changed which component when: a version's authors are read from it.
CREATE TABLE kc_changes (id BIGSERIAL PRIMARY KEY, channel TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, by_user TEXT NOT NULL, at BIGINT NOT NULL);
CREATE INDEX kc_changes_channel ON kc_changes (channel, at);
-- What is known of the past: each component's last change.
INSERT INTO kc_changes (channel, kind, name, by_user, at) SELECT channel, kind, name, updated_by, updated_at FROM kc_components;
ALTER TABLE kc_users ADD COLUMN disabled BIGINT NOT NULL DEFAULT 0;
ALTER TABLE kc_tokens ADD COLUMN expires_at BIGINT;
ALTER TABLE kc_groups ADD COLUMN open BIGINT NOT NULL DEFAULT 0;
UPDATE kc_groups SET open = 1 WHERE production = 0;
