-- 0010: users, groups, permission targets, access tokens and the audit log
-- (docs/security.md).

ALTER TABLE users ADD COLUMN email text NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN password_changed timestamptz NOT NULL DEFAULT now();

CREATE TABLE groups (
    name        text PRIMARY KEY,
    description text NOT NULL DEFAULT '',
    auto_join   boolean NOT NULL DEFAULT false,
    admin       boolean NOT NULL DEFAULT false,
    created     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE group_members (
    group_name text NOT NULL REFERENCES groups (name) ON DELETE CASCADE,
    user_name  text NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    PRIMARY KEY (group_name, user_name)
);
CREATE INDEX group_members_user ON group_members (user_name);

-- A permission target: repositories (keys, or the words ANY / ANY LOCAL),
-- Ant-style include and exclude patterns (comma-separated), and per user
-- and per group a set of actions (letters: r read, n annotate, w write,
-- d delete, m manage).
CREATE TABLE permission_targets (
    name         text PRIMARY KEY,
    repositories text[] NOT NULL DEFAULT '{}',
    includes     text NOT NULL DEFAULT '**',
    excludes     text NOT NULL DEFAULT '',
    modified     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE permission_grants (
    target    text NOT NULL REFERENCES permission_targets (name) ON DELETE CASCADE,
    kind      char(1) NOT NULL CHECK (kind IN ('u', 'g')),
    principal text NOT NULL,
    actions   text NOT NULL CHECK (actions ~ '^[rnwdm]*$'),
    PRIMARY KEY (target, kind, principal)
);
CREATE INDEX permission_grants_principal ON permission_grants (kind, principal);

-- Anonymous users may read everything when anonymous access is on
-- (Artifactory's default "Anything" target).
INSERT INTO permission_targets (name, repositories) VALUES ('Anything', '{ANY}');
INSERT INTO permission_grants VALUES ('Anything', 'u', 'anonymous', 'r');

-- Access tokens: only the sha256 of the token (and of its refresh token) is kept.
CREATE TABLE access_tokens (
    id             text PRIMARY KEY,
    token_sha256   text NOT NULL UNIQUE,
    refresh_sha256 text UNIQUE,
    user_name      text NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    scope          text NOT NULL,
    description    text NOT NULL DEFAULT '',
    created        timestamptz NOT NULL DEFAULT now(),
    expires        timestamptz,
    revoked        boolean NOT NULL DEFAULT false
);
CREATE INDEX access_tokens_user ON access_tokens (user_name);

-- npm login tokens become access tokens (same hash of the same string).
INSERT INTO access_tokens (id, token_sha256, user_name, scope, description, created)
    SELECT 'npm-' || substr(token_sha256, 1, 24), token_sha256, user_name,
           'applied-permissions/user', 'npm login', created
    FROM npm_tokens;

CREATE TABLE audit_log (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    user_name text NOT NULL,
    client    text NOT NULL DEFAULT '',
    node      text NOT NULL DEFAULT '',
    action    text NOT NULL,
    repo      text NOT NULL DEFAULT '',
    path      text NOT NULL DEFAULT '',
    detail    text NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_user_at ON audit_log (user_name, at);
CREATE INDEX audit_log_action_at ON audit_log (action, at);
