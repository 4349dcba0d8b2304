/* The demo's options: one table for the command line and the --config file,
 * so every flag can also come from the file (and SIGHUP re-reads both). */
#ifndef DEMO_OPTIONS_H
#define DEMO_OPTIONS_H

#include <stddef.h>

#include <tern.h>

#define DEMO_MAX_CERTS 16

typedef struct demo_string demo_string;

typedef struct demo_opts {
    tern_config cfg; /* the library's keys (tern_config_set) */
    const char *host;
    const char *tls_certs[DEMO_MAX_CERTS], *tls_keys[DEMO_MAX_CERTS];
    int ncerts, nkeys;
    const char *tls_client_ca, *upstream_url, *upstream_ca, *db, *log_file, *config;
    unsigned long budget_mb;
    unsigned drain_delay_ms;
    const char *unix_path, *unix_owner, *user; /* --unix, --unix-owner USER[:GROUP], --user */
    int unix_mode;   /* --unix-mode, octal; -1: the umask's */
    int tcp;         /* --tcp false: only --unix / systemd sockets */
    const char *trusted_proxies; /* --trusted-proxies LIST */
    int proxy_protocol;          /* --proxy-protocol */
    int allow_root;  /* --allow-root (default: $TERN_ALLOW_ROOT=1) */
    /* PostgreSQL (pg.c): --pg DSN, --pg-pool N, --pg-shared-pool */
    const char *pg_dsn;
    unsigned long pg_pool;
    int pg_shared_pool;
    /* middleware (api.c): --access-log FILE, --access-log-format, --api-rate N, --no-api */
    const char *access_log;
    tern_access_log_format access_format;
    unsigned long api_rate;
    int no_api;
    /* static files and compression: --static DIR, --static-offload, --no-compression */
    const char *static_dir;
    int static_offload, no_compression;
    demo_string *owned; /* copies of values read from the file */
} demo_opts;

/* Defaults, then the --config file (if any), then the other flags: the
 * command line wins. 0 to run, 1 after printing --help, 2 after reporting
 * an error on stderr. */
int demo_opts_load(demo_opts *o, int argc, char **argv, void (*usage)(FILE *));
/* One setting by its long option name (a tern_config_fn). */
int demo_opts_set(void *o, const char *key, const char *value, char *err, size_t errlen);
void demo_opts_free(demo_opts *o);

#endif
