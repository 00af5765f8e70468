-- 0002: the storage API: properties, the trash can, and search indexes.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Properties hang on a path (a file or a folder; "" is the repository root)
-- and are multi-valued: one row per (key, value).
CREATE TABLE properties (
    repo  text NOT NULL REFERENCES repositories (key) ON DELETE CASCADE,
    path  text COLLATE "C" NOT NULL,
    key   text NOT NULL,
    value text NOT NULL,
    PRIMARY KEY (repo, path, key, value)
);
-- /api/search/prop?k=v: equality on (key, value)
CREATE INDEX properties_key_value ON properties (key, value);

-- Deleted artifacts, kept for trash_retention_days (settings); the binary
-- stays referenced (and so safe from garbage collection) while a row is here.
CREATE TABLE trash (
    id          bigserial PRIMARY KEY,
    repo        text NOT NULL,
    path        text COLLATE "C" NOT NULL,
    sha256      text NOT NULL REFERENCES binaries (sha256),
    size        bigint NOT NULL,
    created     timestamptz NOT NULL,
    created_by  text NOT NULL,
    modified    timestamptz NOT NULL,
    modified_by text NOT NULL,
    deleted     timestamptz NOT NULL DEFAULT now(),
    deleted_by  text NOT NULL,
    properties  jsonb NOT NULL DEFAULT '{}',
    UNIQUE (repo, path)
);
CREATE INDEX trash_deleted ON trash (deleted);
CREATE INDEX trash_sha256 ON trash (sha256);

-- /api/search/artifact?name=*.jar: the file name, trigram-indexed so that
-- wildcards on either side use an index.
ALTER TABLE artifacts ADD COLUMN name text COLLATE "C"
    GENERATED ALWAYS AS (regexp_replace(path, '^.*/', '')) STORED;
CREATE INDEX artifacts_name_trgm ON artifacts USING gin (name gin_trgm_ops);
CREATE INDEX artifacts_name ON artifacts (name);
-- /api/search/dates
CREATE INDEX artifacts_created ON artifacts (created);
CREATE INDEX artifacts_modified ON artifacts (modified);
