/*
 * embedded.h - a private PostgreSQL under the data directory, for a single
 * node started without a database URL (`make run`, appliance single-node).
 *
 * Layout under pgdir (normally <data-dir>/pg):
 *   data/              the cluster (initdb on first start, superuser granary)
 *   run/               the unix socket; mode 0700, the only way in
 *   postgresql.log     initdb and server output (rotated once at 10 MiB)
 * No TCP port is opened (listen_addresses=''). Authentication is trust: the
 * socket directory's permissions are the access control (see README.md).
 *
 * Caveats
 * - Run as root, initdb and postgres run as the `postgres` system user and
 *   pgdir is chowned to it; otherwise they run as the current user.
 * - The server gets SIGINT (fast shutdown) when the thread that called
 *   db_embedded_start() exits (PR_SET_PDEATHSIG): call it from the main
 *   thread, which lives as long as the process.
 * - The caller must hold the data directory's lock: a live postmaster found
 *   in pgdir/data is taken for one left over by a crashed granaryd and stopped.
 * - The server is a child process: do not reap it with waitpid(-1) or set
 *   SIGCHLD to SIG_IGN, or db_embedded_stop() cannot report its exit status.
 */
#ifndef DB_EMBEDDED_H
#define DB_EMBEDDED_H

#include <sys/types.h>

struct db_embedded;

/*
 * Start (after initdb if needed) the private server under pgdir and return
 * once it accepts connections and database `granary` exists. Binaries come
 * from $GRANARY_PG_BINDIR, else the /usr/lib/postgresql/<N>/bin matching an
 * existing cluster, else `pg_config --bindir`, else the newest
 * /usr/lib/postgresql/<N>/bin.
 *
 * @param[in] pgdir  directory to use; created if missing (its parent must
 *                   exist)
 * @param[out] out   the running server; stop with db_embedded_stop()
 * @return GR_OK;
 *         GR_EINVAL no binaries, no `postgres` user when root, a directory on
 *                   the way that user cannot traverse, a cluster of another
 *                   major version, a socket path too long, pgdir owned by
 *                   another user (each logged with the path concerned);
 *         GR_EIO    a directory or file could not be made or chowned, or
 *                   initdb failed (its output is in postgresql.log, whose
 *                   tail is logged);
 *         GR_EDB    the server exited or did not accept connections within
 *                   60 s (tail of postgresql.log logged);
 *         GR_ENOMEM.
 */
int db_embedded_start(const char *pgdir, struct db_embedded **out)
    __attribute__((warn_unused_result));

/*
 * The connection string of the running server:
 * "host='<pgdir>/run' dbname=granary user=granary". Owned by e, valid until
 * db_embedded_stop().
 */
const char *db_embedded_conninfo(const struct db_embedded *e);

/* The postmaster's process id. */
pid_t db_embedded_pid(const struct db_embedded *e);

/*
 * Fast shutdown (SIGINT; open sessions are ended, transactions rolled
 * back), wait up to 30 s, then SIGQUIT (immediate shutdown, crash recovery
 * at next start), 10 s more, then SIGKILL. Frees e (may be NULL).
 * @return GR_OK if the server exited cleanly; GR_EIO otherwise (logged).
 */
int db_embedded_stop(struct db_embedded *e);

#endif
