/* path.c - percent-decoding and validation of artifact paths. */
#include "http/path.h"

#include "base/err.h"
#include "base/pct.h"
#include "base/utf8.h"

#include <string.h>

bool http_utf8_valid(const char *str, size_t len)
{
    return gr_utf8_valid(str, len);
}

int http_query_decode(const char *raw, size_t rawlen, char *out, size_t outsz)
{
    size_t o = 0;
    if (outsz == 0)
        return GR_ETOOBIG;
    for (size_t i = 0; i < rawlen; i++) {
        char c = raw[i];
        if (c == '%') {
            if (i + 2 >= rawlen)
                return GR_EINVAL;
            int h = gr_hex_digit(raw[i + 1]), l = gr_hex_digit(raw[i + 2]);
            if (h < 0 || l < 0)
                return GR_EINVAL;
            c = (char)(h * 16 + l);
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (c == '\0')
            return GR_EINVAL;
        if (o + 1 >= outsz)
            return GR_ETOOBIG;
        out[o++] = c;
    }
    out[o] = '\0';
    return GR_OK;
}

int http_path_normalize(const char *raw, size_t rawlen, char *out, size_t outsz, bool *trailing)
{
    size_t o = 0, seg_start = 0;
    *trailing = false;
    if (outsz <= HTTP_PATH_MAX)
        return GR_EINVAL;
    for (size_t i = 0; i < rawlen; i++) {
        unsigned char c = (unsigned char)raw[i];
        if (c == '%') {
            if (i + 2 >= rawlen)
                return GR_EINVAL;
            int h = gr_hex_digit(raw[i + 1]), l = gr_hex_digit(raw[i + 2]);
            if (h < 0 || l < 0)
                return GR_EINVAL;
            c = (unsigned char)(h * 16 + l);
            i += 2;
        }
        if (c < 0x20 || c == 0x7f || c == '\\')
            return GR_EINVAL;
        if (o >= HTTP_PATH_MAX)
            return GR_ETOOBIG;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    if (!http_utf8_valid(out, o))
        return GR_EINVAL;
    if (o > 0 && out[o - 1] == '/') {
        *trailing = true;
        out[--o] = '\0';
        if (o == 0)
            return GR_EINVAL; /* "/" alone: an empty segment */
    }
    /* check every segment */
    for (size_t i = 0; i <= o; i++) {
        if (i == o || out[i] == '/') {
            size_t n = i - seg_start;
            const char *seg = out + seg_start;
            if (n == 0 && o > 0)
                return GR_EINVAL;
            if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
                return GR_EINVAL;
            if (n > HTTP_SEGMENT_MAX)
                return GR_ETOOBIG;
            seg_start = i + 1;
        }
    }
    return GR_OK;
}
