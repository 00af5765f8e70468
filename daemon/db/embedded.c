/*
 * embedded.c - initdb, start, wait for and stop a private PostgreSQL under
 * the data directory, reachable only through a unix socket in a 0700
 * directory. Processes are spawned with fork + exec (no shell); when root,
 * they run as the `postgres` system user.
 */
#include "db/embedded.h"
#include "db/db_internal.h"

#include "base/err.h"
#include "base/log.h"

#include <libpq-fe.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EMB_USER "postgres"        /* system user that runs the server when we are root */
#define EMB_DB "granary"           /* database created for granaryd */
#define EMB_ROLE "granary"         /* superuser made by initdb */
#define EMB_SOCKET ".s.PGSQL.5432" /* socket file name in run/ */
#define EMB_READY_MS 60000
#define EMB_STOP_FAST_MS 30000
#define EMB_STOP_QUICK_MS 10000
#define EMB_LOG_ROTATE (10L * 1024 * 1024)
#define EMB_MAX_GROUPS 64

struct db_embedded {
    char pgdir[PATH_MAX]; /* absolute */
    char datadir[PATH_MAX];
    char rundir[PATH_MAX];
    char logpath[PATH_MAX];
    char bindir[PATH_MAX];
    char conninfo[PATH_MAX + 64];
    pid_t pid; /* postmaster, our child */
    bool drop; /* children switch to uid/gid/groups below */
    /*
     * The postgres user cannot traverse an ancestor of pgdir (a clone in a
     * 0700 directory, say): children then get pgdir opened as fd
     * EMB_DIR_FD before they drop privileges, and every path they are given
     * starts with "/proc/self/fd/<EMB_DIR_FD>", which resolves through the
     * open directory without looking at its ancestors.
     */
    bool via_fd;
    uid_t uid;
    gid_t gid;
    gid_t groups[EMB_MAX_GROUPS];
    int ngroups;
    char *envp[6]; /* prepared before fork: children only exec */
};

#define EMB_DIR_FD 3
#define EMB_FD_BASE "/proc/self/fd/3"

/* ---- small helpers -------------------------------------------------------- */

static int64_t emb__ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void emb__sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int emb__join(char *out, const char *dir, const char *name)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
    if (n < 0 || n >= PATH_MAX) {
        gr_error("db: path too long: %s/%s", dir, name);
        return GR_EINVAL;
    }
    return GR_OK;
}

static bool emb__is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool emb__is_exec(const char *dir, const char *name)
{
    char path[PATH_MAX];
    return emb__join(path, dir, name) == GR_OK && access(path, X_OK) == 0;
}

/* Log the last lines of the server log, to explain a failure. */
static void emb__log_tail(const struct db_embedded *e)
{
    char buf[4096];
    int fd = open(e->logpath, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    off_t end = lseek(fd, 0, SEEK_END);
    off_t start = end > (off_t)sizeof(buf) - 1 ? end - (off_t)sizeof(buf) + 1 : 0;
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, start);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    char *line = buf;
    if (start > 0) { /* skip the partial first line */
        char *nl = strchr(buf, '\n');
        line = nl ? nl + 1 : buf;
    }
    gr_error("db: last lines of %s:", e->logpath);
    for (char *save = NULL, *l = strtok_r(line, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        gr_error("postgresql: %s", l);
}

/* ---- processes ------------------------------------------------------------ */

/* For the forked child only: a fixed message on stderr (the log file). */
static void emb__child_fail(const char *what)
{
    static const char pre[] = "granaryd: embedded postgresql: ";
    ssize_t w = write(STDERR_FILENO, pre, sizeof(pre) - 1);
    w = write(STDERR_FILENO, what, strlen(what));
    w = write(STDERR_FILENO, "\n", 1);
    (void)w;
    _exit(127);
}

/*
 * fork + exec argv[0] with stdout/stderr on outfd, stdin on /dev/null, a
 * clean signal state, its own session, as e's user if e->drop, and SIGINT
 * when this thread dies. Only async-signal-safe calls after fork.
 */
static int emb__spawn(const struct db_embedded *e, char *const argv[], int outfd, pid_t *pid)
{
    int nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (nullfd < 0) {
        gr_error("db: cannot open /dev/null: %s", strerror(errno));
        return GR_EIO;
    }
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0) {
        gr_error("db: fork: %s", strerror(errno));
        close(nullfd);
        return GR_EIO;
    }
    if (child == 0) {
        sigset_t none;
        struct sigaction dfl;
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        for (int sig = 1; sig < NSIG; sig++)
            if (sig != SIGKILL && sig != SIGSTOP)
                sigaction(sig, &dfl, NULL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setsid(); /* a ^C on granaryd's terminal must not reach the server */
        if (dup2(nullfd, STDIN_FILENO) < 0 || dup2(outfd, STDOUT_FILENO) < 0 ||
            dup2(outfd, STDERR_FILENO) < 0)
            _exit(127);
        if (close_range(3, ~0U, 0) != 0)
            for (int fd = 3; fd < 1024; fd++)
                close(fd);
        if (e->via_fd) { /* opened while still root: see struct db_embedded */
            int dfd = open(e->pgdir, O_RDONLY | O_DIRECTORY);
            if (dfd < 0 || (dfd != EMB_DIR_FD && dup2(dfd, EMB_DIR_FD) != EMB_DIR_FD))
                emb__child_fail("cannot open the pg directory");
            if (dfd != EMB_DIR_FD)
                close(dfd);
        }
        if (e->drop) {
            if (setgroups((size_t)e->ngroups, e->groups) != 0)
                emb__child_fail("setgroups failed");
            if (setgid(e->gid) != 0)
                emb__child_fail("setgid failed");
            if (setuid(e->uid) != 0 || getuid() != e->uid || geteuid() != e->uid)
                emb__child_fail("setuid failed");
        }
        /* after the uid change, which would clear it */
        if (prctl(PR_SET_PDEATHSIG, SIGINT) != 0)
            emb__child_fail("prctl(PR_SET_PDEATHSIG) failed");
        if (getppid() != parent)
            _exit(127); /* granaryd died before the death signal was armed */
        if (e->via_fd ? fchdir(EMB_DIR_FD) != 0 : chdir(e->pgdir) != 0)
            emb__child_fail("cannot chdir to the pg directory");
        umask(077);
        execve(argv[0], argv, e->envp);
        emb__child_fail("exec failed");
    }
    close(nullfd);
    *pid = child;
    return GR_OK;
}

/*
 * Wait up to timeout_ms for our child pid to exit (timeout_ms < 0: forever).
 * True if it did, with its wait status in *status.
 */
static bool emb__wait_child(pid_t pid, int64_t timeout_ms, int *status)
{
    int64_t deadline = emb__ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(pid, status, timeout_ms < 0 ? 0 : WNOHANG);
        if (r == pid)
            return true;
        if (r < 0 && errno == ECHILD) {
            /* reaped elsewhere (SIGCHLD ignored): fall back to polling */
            if (kill(pid, 0) != 0 && errno == ESRCH) {
                *status = 0;
                return true;
            }
        } else if (r < 0 && errno != EINTR) {
            return false;
        }
        if (timeout_ms >= 0 && emb__ms() >= deadline)
            return false;
        emb__sleep_ms(20);
    }
}

/* Wait up to timeout_ms for a process that is not our child to go away. */
static bool emb__wait_gone(pid_t pid, int64_t timeout_ms)
{
    int64_t deadline = emb__ms() + timeout_ms;
    while (kill(pid, 0) == 0 || errno != ESRCH) {
        if (emb__ms() >= deadline)
            return false;
        emb__sleep_ms(50);
    }
    return true;
}

/*
 * Run argv (as the current user) and capture the first line of its stdout
 * into out. For `pg_config --bindir` and `postgres -V`.
 */
static int emb__capture(char *const argv[], char *out, size_t len)
{
    int pfd[2];
    out[0] = '\0';
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return GR_EIO;
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return GR_EIO;
    }
    if (pid == 0) {
        int nullfd = open("/dev/null", O_RDWR);
        if (dup2(pfd[1], STDOUT_FILENO) < 0 || (nullfd >= 0 && dup2(nullfd, STDERR_FILENO) < 0))
            _exit(127);
        char *const envp[] = {(char *)"PATH=/usr/bin:/bin", (char *)"LC_ALL=C", NULL};
        execve(argv[0], argv, envp);
        _exit(127);
    }
    close(pfd[1]);
    size_t got = 0;
    ssize_t n;
    while (got + 1 < len && (n = read(pfd[0], out + got, len - 1 - got)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        got += (size_t)n;
    }
    out[got] = '\0';
    close(pfd[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    out[strcspn(out, "\n")] = '\0';
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 && out[0] ? GR_OK : GR_EIO;
}

/* ---- binaries and versions ------------------------------------------------ */

/* The major version a postgres binary reports ("15"), or GR_EIO. */
static int emb__binary_major(const char *bindir, char *major, size_t len)
{
    char path[PATH_MAX], line[256];
    if (emb__join(path, bindir, "postgres") != GR_OK)
        return GR_EINVAL;
    char *const argv[] = {path, (char *)"-V", NULL};
    if (emb__capture(argv, line, sizeof(line)) != GR_OK)
        return GR_EIO;
    /* "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)" */
    const char *v = strstr(line, ") ");
    if (!v)
        return GR_EIO;
    v += 2;
    size_t n = strspn(v, "0123456789");
    if (n == 0 || n >= len)
        return GR_EIO;
    memcpy(major, v, n);
    major[n] = '\0';
    return GR_OK;
}

/* The major version in datadir/PG_VERSION, or "" if there is no cluster. */
static void emb__cluster_major(const char *datadir, char *major, size_t len)
{
    char path[PATH_MAX];
    major[0] = '\0';
    if (emb__join(path, datadir, "PG_VERSION") != GR_OK)
        return;
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    if (fgets(major, (int)len, f))
        major[strcspn(major, "\n")] = '\0';
    else
        major[0] = '\0';
    fclose(f);
}

/* The highest /usr/lib/postgresql/<N>/bin that has a postgres binary. */
static bool emb__newest_bindir(char *out)
{
    DIR *d = opendir("/usr/lib/postgresql");
    long best = -1;
    if (!d)
        return false;
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end, dir[PATH_MAX];
        long v = strtol(de->d_name, &end, 10);
        if (*end || end == de->d_name || v <= best)
            continue;
        snprintf(dir, sizeof(dir), "/usr/lib/postgresql/%ld/bin", v);
        if (emb__is_exec(dir, "postgres") && emb__is_exec(dir, "initdb")) {
            best = v;
            snprintf(out, PATH_MAX, "%s", dir);
        }
    }
    closedir(d);
    return best >= 0;
}

/* Search PATH for name; true with the full path in out. */
static bool emb__which(const char *name, char *out)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        size_t n = strcspn(path, ":");
        if (n > 0 && n < PATH_MAX - 64) {
            snprintf(out, PATH_MAX, "%.*s/%s", (int)n, path, name);
            if (access(out, X_OK) == 0)
                return true;
        }
        path += n;
        if (*path == ':')
            path++;
    }
    return false;
}

/* Pick e->bindir (see db_embedded_start()) and check it against the cluster. */
static int emb__find_bindir(struct db_embedded *e)
{
    char cluster[16], bin[16], dir[PATH_MAX], pgc[PATH_MAX];
    const char *env = getenv("GRANARY_PG_BINDIR");
    bool found = false;

    emb__cluster_major(e->datadir, cluster, sizeof(cluster));
    if (env && *env) {
        snprintf(e->bindir, sizeof(e->bindir), "%s", env);
        found = true;
    }
    if (!found && cluster[0]) {
        snprintf(dir, sizeof(dir), "/usr/lib/postgresql/%s/bin", cluster);
        if (emb__is_exec(dir, "postgres")) {
            snprintf(e->bindir, sizeof(e->bindir), "%s", dir);
            found = true;
        }
    }
    if (!found && emb__which("pg_config", pgc)) {
        char *const argv[] = {pgc, (char *)"--bindir", NULL};
        if (emb__capture(argv, dir, sizeof(dir)) == GR_OK && emb__is_exec(dir, "postgres")) {
            snprintf(e->bindir, sizeof(e->bindir), "%s", dir);
            found = true;
        }
    }
    if (!found)
        found = emb__newest_bindir(e->bindir);
    if (!found) {
        gr_error("db: no postgresql server binaries found (install postgresql or set "
                 "GRANARY_PG_BINDIR)");
        return GR_EINVAL;
    }
    if (!emb__is_exec(e->bindir, "postgres") || !emb__is_exec(e->bindir, "initdb")) {
        gr_error("db: %s has no postgres and initdb", e->bindir);
        return GR_EINVAL;
    }
    if (emb__binary_major(e->bindir, bin, sizeof(bin)) != GR_OK) {
        gr_error("db: cannot run %s/postgres -V", e->bindir);
        return GR_EINVAL;
    }
    if (cluster[0] && strcmp(cluster, bin) != 0) {
        gr_error("db: %s was made by postgresql %s but %s is postgresql %s; install version %s "
                 "or upgrade the cluster with pg_upgrade",
                 e->datadir, cluster, e->bindir, bin, cluster);
        return GR_EINVAL;
    }
    gr_info("db: embedded postgresql %s from %s", bin, e->bindir);
    return GR_OK;
}

/* ---- users and directories ------------------------------------------------ */

/* When root: look up the postgres user and the groups its children get. */
static int emb__pick_user(struct db_embedded *e)
{
    if (geteuid() != 0) {
        e->drop = false;
        e->uid = geteuid();
        e->gid = getegid();
        return GR_OK;
    }
    struct passwd *pw = getpwnam(EMB_USER);
    if (!pw) {
        gr_error("db: running as root, the embedded postgresql needs a '%s' system user "
                 "(PostgreSQL refuses to run as root)",
                 EMB_USER);
        return GR_EINVAL;
    }
    e->drop = true;
    e->uid = pw->pw_uid;
    e->gid = pw->pw_gid;
    e->ngroups = EMB_MAX_GROUPS;
    if (getgrouplist(pw->pw_name, pw->pw_gid, e->groups, &e->ngroups) < 0) {
        e->groups[0] = pw->pw_gid;
        e->ngroups = 1;
    }
    return GR_OK;
}

/* Can e's user search (x) directory st? Plain mode bits; ACLs are not consulted. */
static bool emb__can_traverse(const struct db_embedded *e, const struct stat *st)
{
    if (!e->drop || e->uid == 0)
        return true;
    if (st->st_uid == e->uid)
        return st->st_mode & S_IXUSR;
    for (int i = 0; i < e->ngroups; i++)
        if (e->groups[i] == st->st_gid)
            return st->st_mode & S_IXGRP;
    return st->st_mode & S_IXOTH;
}

/*
 * Make sure the postgres user can reach e->pgdir: its parent (granary's data
 * directory) is made 0711-traversable if needed; any other directory on the
 * way that is not traversable is an error naming it.
 */
static int emb__check_path(struct db_embedded *e)
{
    char prefix[PATH_MAX];
    struct stat st;
    if (!e->drop)
        return GR_OK;
    const char *slash = strrchr(e->pgdir, '/');
    size_t parent_len = slash ? (size_t)(slash - e->pgdir) : 0;
    /* "/", then each ancestor of pgdir down to its parent */
    for (size_t i = 1; i <= parent_len || i == 1; i++) {
        if (i > 1 && i < parent_len && e->pgdir[i] != '/')
            continue;
        if (i == 1) {
            strcpy(prefix, "/");
        } else {
            memcpy(prefix, e->pgdir, i);
            prefix[i] = '\0';
        }
        if (stat(prefix, &st) != 0) {
            gr_error("db: cannot stat %s: %s", prefix, strerror(errno));
            return GR_EIO;
        }
        if (emb__can_traverse(e, &st))
            continue;
        if (i > 1 && i == parent_len) { /* granary's data directory: ours to open up */
            mode_t mode = (st.st_mode & 07777) | S_IXGRP | S_IXOTH;
            if (chmod(prefix, mode) != 0) {
                gr_error("db: cannot chmod %s: %s", prefix, strerror(errno));
                return GR_EIO;
            }
            gr_info("db: made %s traversable (mode %04o) so that user %s can reach %s", prefix,
                    (unsigned)mode, EMB_USER, e->pgdir);
            continue;
        }
        /* someone else's directory: reach pgdir through an open descriptor */
        gr_info("db: user %s cannot traverse %s: the embedded server gets %s as an open "
                "directory",
                EMB_USER, prefix, e->pgdir);
        e->via_fd = true;
        return GR_OK;
    }
    return GR_OK;
}

/* What emb__walk() does to each entry of a tree. */
enum emb__walk_op { EMB_CHOWN, EMB_REMOVE };

/*
 * Apply op to name (relative to directory fd at) and, for a directory, to everything
 * under it, without following symlinks. Best effort on errors: the first one
 * is returned.
 */
static int emb__walk(int at, const char *name, enum emb__walk_op op, uid_t uid, gid_t gid)
{
    struct stat st;
    int rc = GR_OK;
    if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? GR_OK : GR_EIO;
    if (op == EMB_CHOWN && (st.st_uid != uid || st.st_gid != gid) &&
        fchownat(at, name, uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
        rc = GR_EIO;
    if (S_ISDIR(st.st_mode)) {
        int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d) {
            if (fd >= 0)
                close(fd);
            return GR_EIO;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            int r = emb__walk(dirfd(d), de->d_name, op, uid, gid);
            if (rc == GR_OK)
                rc = r;
        }
        closedir(d);
    }
    if (op == EMB_REMOVE && unlinkat(at, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) != 0 &&
        rc == GR_OK)
        rc = GR_EIO;
    return rc;
}

/* mkdir path with mode if missing; in any case make its mode exactly mode. */
static int emb__mkdir(const char *path, mode_t mode)
{
    if (mkdir(path, mode) != 0 && errno != EEXIST) {
        gr_error("db: cannot create %s: %s", path, strerror(errno));
        return GR_EIO;
    }
    if (!emb__is_dir(path)) {
        gr_error("db: %s is not a directory", path);
        return GR_EIO;
    }
    if (chmod(path, mode) != 0) {
        gr_error("db: cannot chmod %s: %s", path, strerror(errno));
        return GR_EIO;
    }
    return GR_OK;
}

/* Create pgdir, run/ and fill in e's paths; hand the tree to the server's user. */
static int emb__prepare_dirs(struct db_embedded *e, const char *pgdir)
{
    char abs[PATH_MAX];
    struct stat st;
    int rc;

    if (mkdir(pgdir, 0700) != 0 && errno != EEXIST) {
        gr_error("db: cannot create %s: %s", pgdir, strerror(errno));
        return GR_EIO;
    }
    if (!realpath(pgdir, abs)) {
        gr_error("db: cannot resolve %s: %s", pgdir, strerror(errno));
        return GR_EIO;
    }
    snprintf(e->pgdir, sizeof(e->pgdir), "%s", abs);
    if ((rc = emb__join(e->datadir, e->pgdir, "data")) != GR_OK ||
        (rc = emb__join(e->rundir, e->pgdir, "run")) != GR_OK ||
        (rc = emb__join(e->logpath, e->pgdir, "postgresql.log")) != GR_OK)
        return rc;
    if (strlen(e->rundir) + 1 + strlen(EMB_SOCKET) >= 108) {
        gr_error("db: socket path %s/%s is longer than unix sockets allow (107 bytes); use a "
                 "shorter data directory path",
                 e->rundir, EMB_SOCKET);
        return GR_EINVAL;
    }
    if (stat(e->pgdir, &st) != 0)
        return GR_EIO;
    if (!e->drop && st.st_uid != e->uid) {
        gr_error("db: %s belongs to uid %u, not to this user (uid %u); run granaryd as that "
                 "user or as root, or chown it",
                 e->pgdir, (unsigned)st.st_uid, (unsigned)e->uid);
        return GR_EINVAL;
    }
    if ((rc = emb__check_path(e)) != GR_OK)
        return rc;
    if ((rc = emb__mkdir(e->pgdir, 0700)) != GR_OK || (rc = emb__mkdir(e->rundir, 0700)) != GR_OK)
        return rc;
    if (e->drop && emb__walk(AT_FDCWD, e->pgdir, EMB_CHOWN, e->uid, e->gid) != GR_OK) {
        gr_error("db: cannot chown %s to user %s", e->pgdir, EMB_USER);
        return GR_EIO;
    }
    return GR_OK;
}

/* Open (rotating once past EMB_LOG_ROTATE) the log, owned by the server's user. */
static int emb__open_log(const struct db_embedded *e, int *fd)
{
    struct stat st;
    char old[PATH_MAX + 8];
    if (stat(e->logpath, &st) == 0 && st.st_size > EMB_LOG_ROTATE) {
        snprintf(old, sizeof(old), "%s.1", e->logpath);
        if (rename(e->logpath, old) != 0)
            gr_warn("db: cannot rotate %s: %s", e->logpath, strerror(errno));
    }
    *fd = open(e->logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (*fd < 0) {
        gr_error("db: cannot open %s: %s", e->logpath, strerror(errno));
        return GR_EIO;
    }
    if (e->drop && fchown(*fd, e->uid, e->gid) != 0) {
        gr_error("db: cannot chown %s: %s", e->logpath, strerror(errno));
        close(*fd);
        return GR_EIO;
    }
    return GR_OK;
}

/* ---- cluster -------------------------------------------------------------- */

/*
 * A postmaster left running by a granaryd that died (its pid in
 * data/postmaster.pid, alive, and working in our data directory): stop it.
 * A stale postmaster.pid naming some other live process is removed, since
 * PostgreSQL would refuse to start because of it.
 */
static int emb__stop_leftover(const struct db_embedded *e)
{
    char path[PATH_MAX], proc[64], cwd[PATH_MAX], real[PATH_MAX];
    if (emb__join(path, e->datadir, "postmaster.pid") != GR_OK)
        return GR_EINVAL;
    FILE *f = fopen(path, "re");
    if (!f)
        return GR_OK;
    long pid = 0;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    if (pid <= 1 || pid == getpid() || (kill((pid_t)pid, 0) != 0 && errno == ESRCH))
        return GR_OK; /* dead: PostgreSQL itself ignores a stale pid file */
    snprintf(proc, sizeof(proc), "/proc/%ld/cwd", pid);
    ssize_t n = readlink(proc, cwd, sizeof(cwd) - 1);
    if (n < 0)
        return GR_OK; /* cannot tell: leave it to PostgreSQL's own check */
    cwd[n] = '\0';
    if (!realpath(e->datadir, real))
        snprintf(real, sizeof(real), "%s", e->datadir);
    if (strcmp(cwd, real) != 0) {
        gr_warn("db: removing stale %s (pid %ld is another process)", path, pid);
        unlink(path);
        return GR_OK;
    }
    gr_warn("db: stopping postgresql pid %ld left running in %s by a previous granaryd", pid,
            e->datadir);
    kill((pid_t)pid, SIGINT);
    if (emb__wait_gone((pid_t)pid, EMB_STOP_FAST_MS))
        return GR_OK;
    kill((pid_t)pid, SIGQUIT);
    if (emb__wait_gone((pid_t)pid, EMB_STOP_QUICK_MS))
        return GR_OK;
    gr_error("db: postgresql pid %ld in %s does not stop", pid, e->datadir);
    return GR_EDB;
}

/*
 * initdb into data.init, then rename it to data: a crash half way leaves
 * only data.init, which the next start removes and redoes.
 */
static int emb__initdb(const struct db_embedded *e, int logfd)
{
    char tmp[PATH_MAX], initdb[PATH_MAX];
    char version[PATH_MAX];
    int status, rc;

    if (emb__join(version, e->datadir, "PG_VERSION") != GR_OK)
        return GR_EINVAL;
    if (access(version, F_OK) == 0)
        return GR_OK;
    if (emb__is_dir(e->datadir) && rmdir(e->datadir) != 0) {
        gr_error("db: %s exists but holds no database cluster; move it away", e->datadir);
        return GR_EINVAL;
    }
    if ((rc = emb__join(tmp, e->pgdir, "data.init")) != GR_OK ||
        (rc = emb__join(initdb, e->bindir, "initdb")) != GR_OK)
        return rc;
    if (emb__walk(AT_FDCWD, tmp, EMB_REMOVE, 0, 0) != GR_OK) {
        gr_error("db: cannot remove %s", tmp);
        return GR_EIO;
    }
    if ((rc = emb__mkdir(tmp, 0700)) != GR_OK)
        return rc;
    if (e->drop && chown(tmp, e->uid, e->gid) != 0) {
        gr_error("db: cannot chown %s: %s", tmp, strerror(errno));
        return GR_EIO;
    }
    gr_info("db: creating a postgresql cluster in %s", e->datadir);
    char *const argv[] = {initdb,
                          (char *)"-D",
                          e->via_fd ? (char *)EMB_FD_BASE "/data.init" : tmp,
                          (char *)"-U",
                          (char *)EMB_ROLE,
                          (char *)"--auth-local=trust",
                          (char *)"--auth-host=reject",
                          (char *)"-E",
                          (char *)"UTF8",
                          (char *)"--no-locale",
                          NULL};
    pid_t pid;
    if ((rc = emb__spawn(e, argv, logfd, &pid)) != GR_OK)
        return rc;
    emb__wait_child(pid, -1, &status);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        gr_error("db: initdb failed (status %d)", status);
        emb__log_tail(e);
        emb__walk(AT_FDCWD, tmp, EMB_REMOVE, 0, 0);
        return GR_EIO;
    }
    if (rename(tmp, e->datadir) != 0) {
        gr_error("db: cannot rename %s to %s: %s", tmp, e->datadir, strerror(errno));
        return GR_EIO;
    }
    int dfd = open(e->pgdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return GR_OK;
}

/* Quote v for a libpq key=value string: 'v' with \ and ' escaped. */
static void emb__quote(char *out, size_t len, const char *v)
{
    size_t o = 0;
    if (len < 3) {
        out[0] = '\0';
        return;
    }
    out[o++] = '\'';
    for (; *v && o + 3 < len; v++) {
        if (*v == '\\' || *v == '\'')
            out[o++] = '\\';
        out[o++] = *v;
    }
    out[o++] = '\'';
    out[o] = '\0';
}

/* Poll until the server answers, it exits, or EMB_READY_MS pass. */
static int emb__wait_ready(struct db_embedded *e)
{
    const char *keys[] = {"host", "dbname", "user", "connect_timeout", NULL};
    const char *vals[] = {e->rundir, "postgres", EMB_ROLE, "2", NULL};
    int64_t deadline = emb__ms() + EMB_READY_MS;
    int status;
    for (;;) {
        if (PQpingParams(keys, vals, 0) == PQPING_OK)
            return GR_OK;
        if (emb__wait_child(e->pid, 0, &status)) {
            gr_error("db: postgresql exited during start-up (status %d)", status);
            e->pid = 0;
            emb__log_tail(e);
            return GR_EDB;
        }
        if (emb__ms() >= deadline) {
            gr_error("db: postgresql did not accept connections within %d s", EMB_READY_MS / 1000);
            emb__log_tail(e);
            return GR_EDB;
        }
        emb__sleep_ms(50);
    }
}

/* CREATE DATABASE granary unless it exists, connected to `postgres`. */
static int emb__create_db(const struct db_embedded *e)
{
    const char *keys[] = {"host", "dbname", "user", "application_name", NULL};
    const char *vals[] = {e->rundir, "postgres", EMB_ROLE, "granary", NULL};
    int rc = GR_EDB;
    PGconn *pg = PQconnectdbParams(keys, vals, 0);
    if (!pg || PQstatus(pg) != CONNECTION_OK) {
        gr_error("db: cannot connect to the embedded postgresql: %s",
                 pg ? PQerrorMessage(pg) : "out of memory");
        goto out_finish;
    }
    db__count_query();
    PGresult *r = PQexec(pg, "SELECT 1 FROM pg_database WHERE datname = '" EMB_DB "'");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        gr_error("db: cannot list databases: %s", PQresultErrorMessage(r));
        PQclear(r);
        goto out_finish;
    }
    bool exists = PQntuples(r) == 1;
    PQclear(r);
    if (!exists) {
        db__count_query();
        r = PQexec(pg, "CREATE DATABASE " EMB_DB);
        const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (PQresultStatus(r) != PGRES_COMMAND_OK && !(st && strcmp(st, "42P04") == 0)) {
            gr_error("db: cannot create database %s: %s", EMB_DB, PQresultErrorMessage(r));
            PQclear(r);
            goto out_finish;
        }
        PQclear(r);
        gr_info("db: created database %s", EMB_DB);
    }
    rc = GR_OK;
out_finish:
    PQfinish(pg);
    return rc;
}

/* Environment of initdb and postgres: nothing of granaryd's (PGDATA, PGPORT...). */
static int emb__make_env(struct db_embedded *e)
{
    const char *home = e->pgdir;
    const char *tz = getenv("TZ");
    struct passwd *pw = e->drop ? getpwuid(e->uid) : NULL;
    if (pw && pw->pw_dir && *pw->pw_dir)
        home = pw->pw_dir;
    int n = 0;
    if (asprintf(&e->envp[n++], "PATH=%s:/usr/bin:/bin", e->bindir) < 0 ||
        asprintf(&e->envp[n++], "HOME=%s", home) < 0 || asprintf(&e->envp[n++], "LC_ALL=C") < 0 ||
        (tz && asprintf(&e->envp[n++], "TZ=%s", tz) < 0))
        return GR_ENOMEM;
    e->envp[n] = NULL;
    return GR_OK;
}

static void emb__free(struct db_embedded *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < sizeof(e->envp) / sizeof(e->envp[0]); i++)
        free(e->envp[i]);
    free(e);
}

/* ---- API ------------------------------------------------------------------ */

int db_embedded_start(const char *pgdir, struct db_embedded **out)
{
    char postgres[PATH_MAX], sockdirs[PATH_MAX + 64], host[PATH_MAX + 16];
    int logfd = -1, rc;
    int64_t t0 = emb__ms();

    *out = NULL;
    struct db_embedded *e = calloc(1, sizeof(*e));
    if (!e)
        return GR_ENOMEM;
    if ((rc = emb__pick_user(e)) != GR_OK || (rc = emb__prepare_dirs(e, pgdir)) != GR_OK ||
        (rc = emb__find_bindir(e)) != GR_OK || (rc = emb__make_env(e)) != GR_OK)
        goto out_free;
    if ((rc = emb__stop_leftover(e)) != GR_OK)
        goto out_free;
    if ((rc = emb__open_log(e, &logfd)) != GR_OK)
        goto out_free;
    if ((rc = emb__initdb(e, logfd)) != GR_OK)
        goto out_close;

    /* socket directory as a quoted list entry: "dir" with " doubled */
    size_t o = 0;
    sockdirs[o++] = '"';
    for (const char *s = e->via_fd ? EMB_FD_BASE "/run" : e->rundir; *s && o + 3 < sizeof(sockdirs);
         s++) {
        if (*s == '"')
            sockdirs[o++] = '"';
        sockdirs[o++] = *s;
    }
    sockdirs[o++] = '"';
    sockdirs[o] = '\0';
    char sockopt[sizeof(sockdirs) + 32];
    snprintf(sockopt, sizeof(sockopt), "unix_socket_directories=%s", sockdirs);
    if ((rc = emb__join(postgres, e->bindir, "postgres")) != GR_OK)
        goto out_close;
    char *const argv[] = {postgres,
                          (char *)"-D",
                          e->via_fd ? (char *)EMB_FD_BASE "/data" : e->datadir,
                          (char *)"-c",
                          (char *)"listen_addresses=",
                          (char *)"-c",
                          sockopt,
                          (char *)"-c",
                          (char *)"unix_socket_permissions=0700",
                          (char *)"-c",
                          (char *)"logging_collector=off",
                          NULL};
    if ((rc = emb__spawn(e, argv, logfd, &e->pid)) != GR_OK)
        goto out_close;
    close(logfd);
    logfd = -1;
    if ((rc = emb__wait_ready(e)) != GR_OK || (rc = emb__create_db(e)) != GR_OK)
        goto out_stop;

    emb__quote(host, sizeof(host), e->rundir);
    snprintf(e->conninfo, sizeof(e->conninfo), "host=%s dbname=%s user=%s", host, EMB_DB, EMB_ROLE);
    gr_info("db: embedded postgresql ready in %" PRId64 " ms (pid %d, socket in %s)",
            emb__ms() - t0, (int)e->pid, e->rundir);
    *out = e;
    return GR_OK;

out_stop:
    if (e->pid > 0) {
        (void)db_embedded_stop(e);
        return rc;
    }
out_close:
    if (logfd >= 0)
        close(logfd);
out_free:
    emb__free(e);
    return rc;
}

const char *db_embedded_conninfo(const struct db_embedded *e)
{
    return e->conninfo;
}

pid_t db_embedded_pid(const struct db_embedded *e)
{
    return e->pid;
}

int db_embedded_stop(struct db_embedded *e)
{
    int status = 0, rc = GR_OK;
    if (!e)
        return GR_OK;
    if (e->pid <= 0)
        goto out_free;
    int64_t t0 = emb__ms();
    kill(e->pid, SIGINT);
    if (!emb__wait_child(e->pid, EMB_STOP_FAST_MS, &status)) {
        gr_warn("db: postgresql pid %d still running after %d s; immediate shutdown", (int)e->pid,
                EMB_STOP_FAST_MS / 1000);
        kill(e->pid, SIGQUIT);
        if (!emb__wait_child(e->pid, EMB_STOP_QUICK_MS, &status)) {
            gr_error("db: postgresql pid %d ignores SIGQUIT; killing it", (int)e->pid);
            kill(e->pid, SIGKILL);
            emb__wait_child(e->pid, -1, &status);
        }
        rc = GR_EIO;
    }
    if (rc == GR_OK && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
        gr_error("db: postgresql exited with status %d", status);
        rc = GR_EIO;
    }
    if (rc == GR_OK)
        gr_info("db: embedded postgresql stopped in %" PRId64 " ms", emb__ms() - t0);
out_free:
    emb__free(e);
    return rc;
}
