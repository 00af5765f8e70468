/* storagectl.h - `granaryctl storage ...` (storagectl.c, docs/storage.md). */
#ifndef CTL_STORAGECTL_H
#define CTL_STORAGECTL_H

#include <stdio.h>

void stc_usage(FILE *f);
int stc_main(int argc, char **argv);

#endif
