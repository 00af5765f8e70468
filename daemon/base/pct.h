/* pct.h - percent-decoding shared by the path normaliser and the formats. */
#ifndef GR_PCT_H
#define GR_PCT_H

#include "base/arena.h"

#include <stddef.h>

/* The value of a hex digit, or -1. */
int gr_hex_digit(char c);

/*
 * Percent-decode s[0..n) into the arena (NUL-terminated). NULL for a
 * malformed escape, %00 or a raw NUL: such text can never name anything.
 * '+' stays '+'.
 */
char *gr_pct_decode(struct gr_arena *a, const char *s, size_t n);

#endif
