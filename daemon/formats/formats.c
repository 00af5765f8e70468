/*
 * formats.c - the registry: every format granary serves, one line each
 * (git's commands[], nginx's ngx_modules[]). Adding a format is a folder
 * under daemon/formats/ and a line here (docs/architecture.md).
 */
#include "formats/format.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

extern const struct format format_generic;
extern const struct format format_maven;
extern const struct format format_npm;
extern const struct format format_pypi;
extern const struct format format_oci;

const struct format *const formats[] = {
    &format_generic, &format_maven, &format_npm, &format_pypi, &format_oci, NULL,
};

const struct format *format_find(const char *package_type)
{
    for (int i = 0; package_type && formats[i]; i++) {
        if (!strcmp(formats[i]->name, package_type))
            return formats[i];
        for (int k = 0; formats[i]->aliases && formats[i]->aliases[k]; k++)
            if (!strcmp(formats[i]->aliases[k], package_type))
                return formats[i];
    }
    return NULL;
}

static char formats__names[512];
static pthread_once_t formats__names_once = PTHREAD_ONCE_INIT;

static void formats__names_init(void)
{
    size_t n = 0;
    for (int i = 0; formats[i] && n < sizeof(formats__names); i++)
        n += (size_t)snprintf(formats__names + n, sizeof(formats__names) - n, "%s%s", i ? ", " : "",
                              formats[i]->name);
}

const char *format_names(void)
{
    pthread_once(&formats__names_once, formats__names_init);
    return formats__names;
}
