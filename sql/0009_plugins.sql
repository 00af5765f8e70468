-- 0009: Lua plugins (docs/plugins.md). Sources live here and every node
-- loads them; settings.plugins_generation is bumped in the same transaction
-- as every change, and its cache key is invalidated (acknowledged by every
-- peer) before the change is answered, so the next hook on any node sees it.

CREATE TABLE plugins (
    name       text COLLATE "C" PRIMARY KEY,
    source     text NOT NULL,
    updated    timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL
);

-- One row per job with where = "primary": the last claim. A claim is one
-- fenced statement (the claimer holds the primary lease with this token),
-- so a new primary never runs a job twice within its interval, and a run
-- never starts while another is busy (busy_until) on a live node.
CREATE TABLE plugin_jobs (
    plugin     text COLLATE "C" NOT NULL,
    job        text COLLATE "C" NOT NULL,
    last_run   timestamptz NOT NULL DEFAULT now(),
    busy_until timestamptz,
    node       text NOT NULL DEFAULT '',
    token      bigint NOT NULL DEFAULT 0,
    runs       bigint NOT NULL DEFAULT 0,
    last_error text,
    PRIMARY KEY (plugin, job)
);

-- Every claimed run, for audits and tests (the primary trims rows older than a week).
CREATE TABLE plugin_job_runs (
    id       bigserial PRIMARY KEY,
    plugin   text NOT NULL,
    job      text NOT NULL,
    node     text NOT NULL,
    token    bigint NOT NULL,
    started  timestamptz NOT NULL DEFAULT now(),
    finished timestamptz,
    error    text
);
CREATE INDEX plugin_job_runs_started ON plugin_job_runs (started);
