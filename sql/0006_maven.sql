-- 0006: Maven repository settings (docs/maven.md), under Artifactory's names
-- in the repository JSON. Defaults are Artifactory's for a local Maven
-- repository; other package types ignore them. maven-metadata.xml is not
-- stored: it is computed from the artifact rows on every request.
ALTER TABLE repositories
    ADD COLUMN handle_releases boolean NOT NULL DEFAULT true,
    ADD COLUMN handle_snapshots boolean NOT NULL DEFAULT true,
    -- 0: keep every unique snapshot build
    ADD COLUMN max_unique_snapshots int NOT NULL DEFAULT 0 CHECK (max_unique_snapshots >= 0),
    ADD COLUMN suppress_pom_consistency_checks boolean NOT NULL DEFAULT false,
    -- granary's name: Artifactory has no such flag (overwriting needs the
    -- Delete/Overwrite permission there)
    ADD COLUMN allow_release_redeploy boolean NOT NULL DEFAULT false;
