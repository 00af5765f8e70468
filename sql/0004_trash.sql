-- 0004: the trash can's folder properties. A deleted file waits in `trash`
-- (0002) with its properties as jsonb; a folder has no artifact row, so the
-- property rows of a deleted folder (and of folders below it) wait here, as
-- {"key": ["value", ...]}, until restored or purged with the files.
CREATE TABLE trash_folders (
    repo       text NOT NULL,
    path       text COLLATE "C" NOT NULL,
    deleted    timestamptz NOT NULL DEFAULT now(),
    deleted_by text NOT NULL,
    properties jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (repo, path)
);
CREATE INDEX trash_folders_deleted ON trash_folders (deleted);
