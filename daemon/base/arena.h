/*
 * arena.h - one memory pool per request, with cleanup callbacks.
 *
 * Everything a request allocates comes from its arena and is freed at once
 * by gr_arena_free(). Resources that are not memory (fds, PGresults, LMDB
 * read transactions, temp files) register a cleanup that runs, last
 * registered first, before the memory is released, so an early return
 * leaks nothing. An arena is owned by one thread at a time.
 */
#ifndef GR_ARENA_H
#define GR_ARENA_H

#include <stdarg.h>
#include <stddef.h>

struct gr_arena;

typedef void (*gr_cleanup_fn)(void *arg);

/* A new arena. NULL means out of memory. Free with gr_arena_free(). */
struct gr_arena *gr_arena_new(void);

/*
 * n bytes aligned for any type, valid until gr_arena_free(). Never returns
 * NULL: on allocation failure the process aborts (a request cannot go on
 * without memory, and a half-built answer is worse).
 */
void *gr_arena_alloc(struct gr_arena *a, size_t n);

/* As gr_arena_alloc(), zero-filled. */
void *gr_arena_calloc(struct gr_arena *a, size_t n);

/* A NUL-terminated copy of s (or of its first n bytes) in the arena. */
char *gr_arena_strdup(struct gr_arena *a, const char *s);
char *gr_arena_strndup(struct gr_arena *a, const char *s, size_t n);

/* printf into the arena. */
char *gr_arena_printf(struct gr_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Register fn(arg) to run when the arena is freed (or reset), in reverse
 * order of registration. Returns a handle that gr_arena_cleanup_cancel()
 * accepts, to drop a cleanup once ownership of the resource moved on.
 */
void *gr_arena_cleanup(struct gr_arena *a, gr_cleanup_fn fn, void *arg);
void gr_arena_cleanup_cancel(struct gr_arena *a, void *handle);

/* Run the cleanups and free everything. a may be NULL. */
void gr_arena_free(struct gr_arena *a);

#endif
