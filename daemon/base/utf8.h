/* utf8.h - UTF-8 validation shared by every layer that checks client text. */
#ifndef GR_UTF8_H
#define GR_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when s[0..len) is valid UTF-8 without overlongs or surrogates. */
bool gr_utf8_valid(const char *s, size_t len);

#endif
