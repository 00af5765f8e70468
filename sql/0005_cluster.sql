-- 0005: cluster membership, cache leases, and the primary lease (docs/cluster.md).
-- Migrations stay additive so that a node one version older keeps working
-- during a rolling upgrade.

CREATE TABLE cluster_nodes (
    id                text PRIMARY KEY,
    public_url        text NOT NULL,
    cluster_url       text NOT NULL DEFAULT '',
    bus_endpoint      text NOT NULL DEFAULT '',
    zone              text NOT NULL DEFAULT 'default',
    version           text NOT NULL,
    state             text NOT NULL DEFAULT 'active'
                      CHECK (state IN ('active', 'draining', 'down')),
    preferred_primary boolean NOT NULL DEFAULT false,
    started           timestamptz NOT NULL DEFAULT now(),
    heartbeat         timestamptz NOT NULL DEFAULT now(),
    -- the node may serve from its cache while its own clock says this has
    -- not passed; writers that get no acknowledgement wait for it (by the
    -- database clock) or for the node to confirm a flush
    lease_expiry      timestamptz NOT NULL DEFAULT now(),
    flush_epoch       bigint NOT NULL DEFAULT 0, -- bumped by a writer that got no ack
    flushed_epoch     bigint NOT NULL DEFAULT 0, -- set by the node after dropping its cache
    cache_hits        bigint NOT NULL DEFAULT 0,
    cache_misses      bigint NOT NULL DEFAULT 0
);

-- Named leases; 'primary' is held by the node that runs cluster tasks. The
-- token grows at every change of holder: tasks check it (fencing).
CREATE TABLE cluster_leases (
    name   text PRIMARY KEY,
    holder text NOT NULL,
    token  bigint NOT NULL,
    expiry timestamptz NOT NULL
);
