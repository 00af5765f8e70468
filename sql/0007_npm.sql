-- 0007: the npm registry (docs/npm.md). A packument is never stored as one
-- document: it is assembled per request from these rows, so publishes of
-- different versions through different nodes never overwrite each other.
-- Tarballs are ordinary artifacts of the repository (path {name}/-/{file}).

CREATE TABLE npm_packages (
    repo     text NOT NULL REFERENCES repositories (key) ON DELETE CASCADE,
    name     text COLLATE "C" NOT NULL,
    created  timestamptz NOT NULL DEFAULT now(),
    -- bumped by every change to the package; _rev and the ETag derive from it
    modified timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (repo, name)
);
CREATE INDEX npm_packages_name_trgm ON npm_packages USING gin (name gin_trgm_ops);

-- One row per published version: the manifest as the client sent it (json
-- keeps its key order), dist.tarball rewritten per request.
CREATE TABLE npm_versions (
    repo         text NOT NULL,
    name         text COLLATE "C" NOT NULL,
    version      text COLLATE "C" NOT NULL,
    manifest     json NOT NULL,
    tarball_path text COLLATE "C" NOT NULL, -- the artifact's path in the repository
    sha256       text NOT NULL REFERENCES binaries (sha256),
    published    timestamptz NOT NULL DEFAULT now(),
    published_by text NOT NULL,
    PRIMARY KEY (repo, name, version),
    FOREIGN KEY (repo, name) REFERENCES npm_packages (repo, name) ON DELETE CASCADE
);

CREATE TABLE npm_dist_tags (
    repo    text NOT NULL,
    name    text COLLATE "C" NOT NULL,
    tag     text COLLATE "C" NOT NULL,
    version text COLLATE "C" NOT NULL,
    PRIMARY KEY (repo, name, tag),
    FOREIGN KEY (repo, name) REFERENCES npm_packages (repo, name) ON DELETE CASCADE
);

-- Tokens issued by `npm login` (PUT /-/user/org.couchdb.user:NAME), kept as
-- the sha256 of the token; accepted as "Authorization: Bearer" on the npm
-- routes only, until the security issue brings access tokens.
CREATE TABLE npm_tokens (
    token_sha256 text PRIMARY KEY,
    user_name    text NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    created      timestamptz NOT NULL DEFAULT now()
);
