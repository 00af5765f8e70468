-- Remote (caching proxy) and virtual (aggregating) repositories
-- (docs/remote.md). Their settings live in repositories.settings like every
-- format's; this migration widens the rclass check and adds the two tables
-- of the fetch protocol. Additive: a node of the previous version keeps
-- serving its local repositories against this schema.
ALTER TABLE repositories DROP CONSTRAINT repositories_rclass_check;
ALTER TABLE repositories ADD CONSTRAINT repositories_rclass_check
    CHECK (rclass IN ('local', 'remote', 'virtual'));

-- The single-flight ticket: the node fetching a path of a remote repository
-- from its upstream. A node takes a ticket only when there is none or its
-- heartbeat is stale (the fetching node died): every other request for
-- that path, on any node, waits for the fetch to end and serves its result.
CREATE TABLE remote_fetches (
    repo      text NOT NULL REFERENCES repositories (key) ON DELETE CASCADE,
    path      text COLLATE "C" NOT NULL,
    node      text NOT NULL,
    token     bigint NOT NULL,      -- one fetch; its release names it
    started   timestamptz NOT NULL DEFAULT now(),
    heartbeat timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (repo, path)
);
CREATE INDEX remote_fetches_node ON remote_fetches (node);

-- What an upstream answered that is remembered for a while: a 404
-- (missedRetrievalCachePeriodSecs), a file that failed its checksum, and
-- with path '' the upstream as a whole after a connection failure or a 5xx
-- (assumedOfflinePeriodSecs). Rows past `until` mean nothing.
CREATE TABLE remote_misses (
    repo   text NOT NULL REFERENCES repositories (key) ON DELETE CASCADE,
    path   text COLLATE "C" NOT NULL,
    status int NOT NULL,
    reason text NOT NULL,
    until  timestamptz NOT NULL,
    PRIMARY KEY (repo, path)
);
