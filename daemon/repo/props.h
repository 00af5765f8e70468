/*
 * props.h - artifact and folder properties (multi-valued key/value pairs on
 * a path), stored in the `properties` table of sql/0002_storage_api.sql.
 */
#ifndef REPO_PROPS_H
#define REPO_PROPS_H

struct db_conn;

/*
 * Inside the open transaction of c: set the properties given as matrix
 * parameters on a deploy ("k=v;k2=v2;k=v3", raw and percent-encoded, as
 * received after the path's first ';'), replacing those keys on the path.
 * NULL or "" does nothing. GR_EINVAL for malformed parameters, GR_EDB.
 */
int props_apply_matrix(struct db_conn *c, const char *repo, const char *path, const char *matrix)
    __attribute__((warn_unused_result));

#endif
