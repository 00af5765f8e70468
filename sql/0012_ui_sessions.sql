-- 0012: sessions of the web UI (docs/ui.md, docs/security.md). A session is
-- a random cookie value of which only the sha256 is kept, like an access
-- token; it is checked through the cache (`w:<sha256>`) on every node and
-- revoked everywhere before the revoking call answers. A session opened
-- with an access token (token_sha256) lives only as long as that token and
-- carries its scope. Expired rows are purged when sessions are created.
CREATE TABLE ui_sessions (
    id             text PRIMARY KEY,
    session_sha256 text NOT NULL UNIQUE,
    user_name      text NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    scoped         boolean NOT NULL DEFAULT false,
    token_sha256   text,
    client         text NOT NULL DEFAULT '',
    created        timestamptz NOT NULL DEFAULT now(),
    expires        timestamptz NOT NULL,
    revoked        boolean NOT NULL DEFAULT false
);
CREATE INDEX ui_sessions_user ON ui_sessions (user_name);
CREATE INDEX ui_sessions_expires ON ui_sessions (expires);
