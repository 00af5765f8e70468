/*
 * import.h - `granaryctl import`: copy a directory tree (NFS, a disk) or a
 * checksum-named filestore into a granary repository over the HTTP API,
 * verified, resumable and idempotent (docs/import.md).
 */
#ifndef CTL_IMPORT_H
#define CTL_IMPORT_H

#include <stdio.h>

/*
 * Run the import; argv[0] is "import". Returns the process exit status:
 * 0 when every file is in the repository, 1 when a file failed or was
 * corrupt, the server refused the pre-flight check or the run was
 * interrupted, 2 for bad arguments or inputs (nothing was imported).
 */
int imp_main(int argc, char **argv);

/* Write the import's part of `granaryctl help` to f. */
void imp_usage(FILE *f);

#endif
