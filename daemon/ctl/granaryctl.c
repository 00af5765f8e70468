/* granaryctl - offline administration of a granary node. */
#include "base/err.h"
#include "base/log.h"
#include "config.h"
#include "crypto/crypto.h"
#include "db/db.h"
#include "db/migrate.h"
#include "import.h"
#include "lc.h"
#include "proxy.h"
#include "storagectl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

extern char **environ;

static int usage(FILE *f)
{
    fputs("usage: granaryctl COMMAND [options]\n"
          "  help                            this text\n"
          "  version                         print the version\n"
          "  cache-drop --data-dir DIR       empty a stopped node's metadata cache\n"
          "  migrate --database-url URL      apply the schema migrations this build knows\n"
          "  hash-password                   read a password on stdin, print its stored form\n"
          "The options of these are granaryd's (--config FILE, GRANARY_* variables).\n",
          f);
    imp_usage(f);
    pxc_usage(f);
    stc_usage(f);
    return f == stdout ? 0 : 2;
}

static int ctl_cache_drop(struct config *c)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/granary.lock", c->data_dir);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
        fprintf(stderr, "granaryctl: %s: %s\n", c->data_dir,
                fd < 0 ? strerror(errno) : "in use by a running granaryd; stop it first");
        if (fd >= 0)
            close(fd);
        return 1;
    }
    struct lc_env *env;
    snprintf(path, sizeof(path), "%s/cache", c->data_dir);
    int rc = lc_open(path, (size_t)c->cache_size_mb * 1024 * 1024, &env);
    if (rc == LC_OK) {
        rc = lc_drop(env);
        if (rc == LC_OK)
            rc = lc_meta_del(env, "clean_counter");
        lc_close(env);
    }
    close(fd);
    if (rc != LC_OK) {
        fprintf(stderr, "granaryctl: %s: %s\n", path, lc_strerror(rc));
        return 1;
    }
    printf("cache dropped: it is rebuilt from PostgreSQL as requests arrive\n");
    return 0;
}

static int ctl_migrate(struct config *c)
{
    if (!c->database_url[0]) {
        fprintf(stderr, "granaryctl: migrate needs --database-url\n");
        return 2;
    }
    struct db_pool *p;
    if (db_pool_open(c->database_url, 1, &p))
        return 1;
    int from = 0, to = 0;
    int rc = db_migrate(p, db_migrations, db_migrations_count, &from, &to);
    db_pool_close(p);
    if (rc) {
        fprintf(stderr, "granaryctl: migrate: %s\n", gr_strerror(rc));
        return 1;
    }
    printf("schema version %d (was %d)\n", to, from);
    return 0;
}

static int ctl_hash_password(void)
{
    char pw[1024], out[CR_PASSWORD_HASH_MAX];
    if (!fgets(pw, sizeof(pw), stdin))
        return 1;
    pw[strcspn(pw, "\r\n")] = '\0';
    if (cr_password_hash(pw, out))
        return 1;
    printf("%s\n", out);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(stderr);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help"))
        return usage(stdout);
    if (!strcmp(cmd, "import")) /* its own options, over HTTP (import.c) */
        return imp_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "proxy-config")) /* over HTTP too (proxy.c) */
        return pxc_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "storage")) /* over HTTP too (storagectl.c) */
        return stc_main(argc - 1, argv + 1);
    struct config c;
    char err[1024];
    if (config_load(&c, argc - 1, argv + 1, environ, err, sizeof(err))) {
        fprintf(stderr, "granaryctl: %s\n", err);
        return 2;
    }
    gr_log_set_level(GR_LOG_WARN);
    if (!strcmp(cmd, "version")) {
        printf("granaryctl %s\n", GRANARY_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "cache-drop"))
        return ctl_cache_drop(&c);
    if (!strcmp(cmd, "migrate"))
        return ctl_migrate(&c);
    if (!strcmp(cmd, "hash-password"))
        return ctl_hash_password();
    return usage(stderr);
}
