/* arena.c - bump allocator in growing blocks plus a cleanup stack. */
#include "arena.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK 4096
#define ARENA_ALIGN 16

struct arena__block {
    struct arena__block *next;
    size_t used, cap;
    _Alignas(ARENA_ALIGN) unsigned char data[];
};

struct arena__cleanup {
    struct arena__cleanup *next;
    gr_cleanup_fn fn;
    void *arg;
};

struct gr_arena {
    struct arena__block *blocks;
    struct arena__cleanup *cleanups;
};

static struct arena__block *arena__block_new(size_t cap)
{
    struct arena__block *b = malloc(sizeof(*b) + cap);
    if (!b) {
        fputs("granary: out of memory\n", stderr);
        abort();
    }
    b->next = NULL;
    b->used = 0;
    b->cap = cap;
    return b;
}

struct gr_arena *gr_arena_new(void)
{
    struct gr_arena *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->blocks = arena__block_new(ARENA_BLOCK - sizeof(struct arena__block));
    return a;
}

void *gr_arena_alloc(struct gr_arena *a, size_t n)
{
    if (n > SIZE_MAX / 2) {
        fputs("granary: arena allocation too large\n", stderr);
        abort();
    }
    size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    struct arena__block *b = a->blocks;
    if (need == 0)
        need = ARENA_ALIGN;
    if (b->cap - b->used < need) {
        size_t cap = need > ARENA_BLOCK * 4 ? need : ARENA_BLOCK * 4;
        struct arena__block *nb = arena__block_new(cap);
        if (need > ARENA_BLOCK) {
            /* big allocation: own block behind the current one */
            nb->next = b->next;
            b->next = nb;
            nb->used = need;
            return nb->data;
        }
        nb->next = b;
        a->blocks = nb;
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += need;
    return p;
}

void *gr_arena_calloc(struct gr_arena *a, size_t n)
{
    void *p = gr_arena_alloc(a, n);
    memset(p, 0, n);
    return p;
}

char *gr_arena_strndup(struct gr_arena *a, const char *s, size_t n)
{
    char *p = gr_arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *gr_arena_strdup(struct gr_arena *a, const char *s)
{
    return gr_arena_strndup(a, s, strlen(s));
}

char *gr_arena_printf(struct gr_arena *a, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    char *p = gr_arena_alloc(a, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

void *gr_arena_cleanup(struct gr_arena *a, gr_cleanup_fn fn, void *arg)
{
    struct arena__cleanup *c = gr_arena_alloc(a, sizeof(*c));
    c->fn = fn;
    c->arg = arg;
    c->next = a->cleanups;
    a->cleanups = c;
    return c;
}

void gr_arena_cleanup_cancel(struct gr_arena *a, void *handle)
{
    (void)a;
    struct arena__cleanup *c = handle;
    if (c)
        c->fn = NULL;
}

void gr_arena_free(struct gr_arena *a)
{
    if (!a)
        return;
    for (struct arena__cleanup *c = a->cleanups; c; c = c->next)
        if (c->fn)
            c->fn(c->arg);
    struct arena__block *b = a->blocks;
    while (b) {
        struct arena__block *n = b->next;
        free(b);
        b = n;
    }
    free(a);
}
