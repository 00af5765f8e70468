/*
 * proxy.h - `granaryctl proxy-config`: a load balancer's configuration from
 * a running cluster's node list (GET /api/system/cluster over libcurl,
 * written by proxy/proxyconf.h), once or whenever membership changes.
 */
#ifndef CTL_PROXY_H
#define CTL_PROXY_H

#include <stdio.h>

/* argv[0] is "proxy-config". The exit status: 0, 1 (failed), 2 (usage). */
int pxc_main(int argc, char **argv);

/* The options, for granaryctl's help text. */
void pxc_usage(FILE *f);

#endif
