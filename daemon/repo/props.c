/* props.c - placeholder: properties land with issue 3. */
#include "repo/props.h"

#include "base/err.h"

int props_apply_matrix(struct db_conn *c, const char *repo, const char *path, const char *matrix)
{
    (void)c;
    (void)repo;
    (void)path;
    return matrix && *matrix ? GR_EINVAL : GR_OK;
}
