-- The origins whose pages may call the group's runtimes (CORS), one per line.
ALTER TABLE kc_groups ADD COLUMN cors_origins TEXT NOT NULL DEFAULT '';
