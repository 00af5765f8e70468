-- 0001: the foundation schema: settings, users, repositories, binaries, artifacts.
-- Paths use the C collation so that prefix scans (LIKE 'a/b/%') use the
-- (repo, path) index whatever the database's locale.

CREATE TABLE settings (
    key   text PRIMARY KEY,
    value text NOT NULL
);

-- Bumped by every metadata mutation in its own transaction: a node whose
-- cache recorded the value at a clean stop keeps the cache only if the
-- value is unchanged when it starts again (docs/cache.md).
CREATE TABLE change_counter (
    id    int PRIMARY KEY CHECK (id = 1),
    value bigint NOT NULL
);
INSERT INTO change_counter VALUES (1, 0);

CREATE TABLE users (
    name          text PRIMARY KEY,
    password_hash text NOT NULL,
    admin         boolean NOT NULL DEFAULT false,
    disabled      boolean NOT NULL DEFAULT false,
    created       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE repositories (
    key              text PRIMARY KEY,
    rclass           text NOT NULL CHECK (rclass IN ('local')),
    package_type     text NOT NULL,
    description      text NOT NULL DEFAULT '',
    includes_pattern text NOT NULL DEFAULT '**/*',
    excludes_pattern text NOT NULL DEFAULT '',
    created          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE binaries (
    sha256  text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    sha1    text NOT NULL,
    md5     text NOT NULL,
    size    bigint NOT NULL CHECK (size >= 0),
    created timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX binaries_sha1 ON binaries (sha1);
CREATE INDEX binaries_md5 ON binaries (md5);

CREATE TABLE artifacts (
    id          bigserial PRIMARY KEY,
    repo        text NOT NULL REFERENCES repositories (key) ON DELETE CASCADE,
    path        text COLLATE "C" NOT NULL,
    sha256      text NOT NULL REFERENCES binaries (sha256),
    size        bigint NOT NULL,
    created     timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL,
    modified    timestamptz NOT NULL DEFAULT now(),
    modified_by text NOT NULL,
    updated     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (repo, path)
);
-- UNIQUE (repo, path) also serves exact lookups and prefix scans of folders.
CREATE INDEX artifacts_sha256 ON artifacts (sha256);
