/* The demo's options (options.h): flags and --config file lines go through
 * demo_opts_set, so both accept the same keys with the same checks. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"
#include "options.h"

struct demo_string {
    demo_string *next;
    char text[];
};

/* Every option, by its long name; tern_config_set takes those marked LIB. */
enum demo_opt_owner { DEMO_OWN, LIB };
static const struct {
    const char *name;
    int has_arg;
    enum demo_opt_owner owner;
} demo_options[] = {
    {"config", required_argument, DEMO_OWN},     {"host", required_argument, DEMO_OWN},
    {"port", required_argument, LIB},            {"workers", required_argument, LIB},
    {"reuse-port", no_argument, LIB},            {"upstream", required_argument, DEMO_OWN},
    {"db", required_argument, DEMO_OWN},         {"budget-mb", required_argument, DEMO_OWN},
    {"log-file", required_argument, DEMO_OWN},   {"drain-delay", required_argument, DEMO_OWN},
    {"tls-cert", required_argument, DEMO_OWN},   {"tls-key", required_argument, DEMO_OWN},
    {"tls-client-ca", required_argument, DEMO_OWN}, {"upstream-ca", required_argument, DEMO_OWN},
    {"backlog", required_argument, LIB},         {"max-request-head", required_argument, LIB},
    {"max-target", required_argument, LIB},      {"max-headers", required_argument, LIB},
    {"max-body", required_argument, LIB},        {"stack-size", required_argument, LIB},
    {"max-connections", required_argument, LIB}, {"max-in-flight", required_argument, LIB},
    {"keepalive-timeout", required_argument, LIB}, {"header-timeout", required_argument, LIB},
    {"body-timeout", required_argument, LIB},    {"min-body-rate", required_argument, LIB},
    {"write-timeout", required_argument, LIB},   {"drain-timeout", required_argument, LIB},
    {"adaptive-target", required_argument, LIB}, {"adaptive-interval", required_argument, LIB},
    {"handshake-timeout", required_argument, LIB}, {"max-handshakes", required_argument, LIB},
    {"unix", required_argument, DEMO_OWN},       {"unix-mode", required_argument, DEMO_OWN},
    {"unix-owner", required_argument, DEMO_OWN}, {"tcp", required_argument, DEMO_OWN},
    {"user", required_argument, DEMO_OWN},       {"allow-root", no_argument, DEMO_OWN},
    {"proxy-protocol", no_argument, DEMO_OWN},   {"trusted-proxies", required_argument, DEMO_OWN},
    {"pg", required_argument, DEMO_OWN},         {"pg-pool", required_argument, DEMO_OWN},
    {"pg-shared-pool", no_argument, DEMO_OWN},   {"access-log", required_argument, DEMO_OWN},
    {"access-log-format", required_argument, DEMO_OWN}, {"api-rate", required_argument, DEMO_OWN},
    {"no-api", no_argument, DEMO_OWN},           {"static", required_argument, DEMO_OWN},
    {"static-offload", no_argument, DEMO_OWN},   {"no-compression", no_argument, DEMO_OWN},
};
#define DEMO_NOPTIONS (sizeof demo_options / sizeof demo_options[0])
#define OPT_HELP 999

/* A value from the file lives as long as the options. */
static const char *keep(demo_opts *o, const char *value) {
    size_t n = strlen(value) + 1;
    demo_string *s = malloc(sizeof *s + n);
    if (!s) return NULL;
    memcpy(s->text, value, n);
    s->next = o->owned;
    o->owned = s;
    return s->text;
}

static int set_uint(const char *value, unsigned long lo, unsigned long hi, unsigned long *out,
                    char *err, size_t errlen) {
    if (demo_parse_uint(value, lo, hi, out) == 0) return 0;
    snprintf(err, errlen, "bad value '%s' (%lu-%lu)", value, lo, hi);
    return -EINVAL;
}

static int add_pem(demo_opts *o, const char **list, int *n, const char *v, char *err, size_t errlen) {
    if (*n >= DEMO_MAX_CERTS) {
        snprintf(err, errlen, "at most %d --tls-cert/--tls-key pairs", DEMO_MAX_CERTS);
        return -EINVAL;
    }
    list[(*n)++] = v;
    (void)o;
    return 0;
}

static int set_switch(const char *v, int *out, char *err, size_t errlen) {
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(v, yes[i]) == 0 || strcmp(v, no[i]) == 0) {
            *out = strcmp(v, yes[i]) == 0;
            return 0;
        }
    }
    snprintf(err, errlen, "bad value '%s' (true or false)", v);
    return -EINVAL;
}

/* Octal permission bits, as chmod takes them: 0660, 660, 0777 at most. */
static int set_mode(const char *v, int *out, char *err, size_t errlen) {
    long m = 0;
    for (const char *p = v; *p >= '0' && *p <= '7' && m <= 0777; p++) m = m * 8 + (*p - '0');
    if (!*v || strlen(v) > 4 || m > 0777 || strspn(v, "01234567") != strlen(v)) {
        snprintf(err, errlen, "bad value '%s' (octal 0-0777)", v);
        return -EINVAL;
    }
    *out = (int)m;
    return 0;
}

/* The keys of the optional parts: PostgreSQL, middleware and the access
 * log, static files and compression. 1: not one of them. */
static int set_parts(demo_opts *o, const char *key, const char *v, char *err, size_t errlen) {
    if (strcmp(key, "pg") == 0) o->pg_dsn = v;
    else if (strcmp(key, "pg-pool") == 0) return set_uint(v, 1, 1024, &o->pg_pool, err, errlen);
    else if (strcmp(key, "pg-shared-pool") == 0) return set_switch(v, &o->pg_shared_pool, err, errlen);
    else if (strcmp(key, "access-log") == 0) o->access_log = v;
    else if (strcmp(key, "access-log-format") == 0) {
        if (strcmp(v, "combined") != 0 && strcmp(v, "json") != 0) {
            snprintf(err, errlen, "bad value '%s' (combined or json)", v);
            return -EINVAL;
        }
        o->access_format = v[0] == 'j' ? TERN_ACCESS_LOG_JSON : TERN_ACCESS_LOG_COMBINED;
    } else if (strcmp(key, "api-rate") == 0) return set_uint(v, 1, 1000000, &o->api_rate, err, errlen);
    else if (strcmp(key, "no-api") == 0) return set_switch(v, &o->no_api, err, errlen);
    else if (strcmp(key, "static") == 0) o->static_dir = v;
    else if (strcmp(key, "static-offload") == 0) return set_switch(v, &o->static_offload, err, errlen);
    else if (strcmp(key, "no-compression") == 0) return set_switch(v, &o->no_compression, err, errlen);
    else return 1;
    return 0;
}

/* The keys of listening like a service (listen.h). */
static int set_service(demo_opts *o, const char *key, const char *v, char *err, size_t errlen) {
    if (strcmp(key, "unix") == 0) o->unix_path = v;
    else if (strcmp(key, "unix-owner") == 0) o->unix_owner = v;
    else if (strcmp(key, "user") == 0) o->user = v;
    else if (strcmp(key, "unix-mode") == 0) return set_mode(v, &o->unix_mode, err, errlen);
    else if (strcmp(key, "tcp") == 0) return set_switch(v, &o->tcp, err, errlen);
    else if (strcmp(key, "allow-root") == 0) return set_switch(v, &o->allow_root, err, errlen);
    else if (strcmp(key, "proxy-protocol") == 0) return set_switch(v, &o->proxy_protocol, err, errlen);
    else if (strcmp(key, "trusted-proxies") == 0) {
        /* checked here, so a bad list is an error naming its line */
        tern_server *probe = tern_server_new();
        int r = probe ? tern_server_trust_proxies(probe, v) : -ENOMEM;
        tern_server_free(probe);
        if (r < 0) {
            snprintf(err, errlen, "bad value '%s' (addresses, CIDR blocks, \"unix\")", v);
            return -EINVAL;
        }
        o->trusted_proxies = v;
    }
    else return 1;
    return 0;
}

int demo_opts_set(void *arg, const char *key, const char *value, char *err, size_t errlen) {
    demo_opts *o = arg;
    const char *v = keep(o, value);
    if (!v) return -ENOMEM;
    unsigned long n;
    int r = 0;
    if (strcmp(key, "host") == 0) o->host = v;
    else if (strcmp(key, "upstream") == 0) o->upstream_url = v;
    else if (strcmp(key, "db") == 0) o->db = v;
    else if (strcmp(key, "log-file") == 0) o->log_file = v;
    else if (strcmp(key, "tls-client-ca") == 0) o->tls_client_ca = v;
    else if (strcmp(key, "upstream-ca") == 0) o->upstream_ca = v;
    else if (strcmp(key, "tls-cert") == 0) r = add_pem(o, o->tls_certs, &o->ncerts, v, err, errlen);
    else if (strcmp(key, "tls-key") == 0) r = add_pem(o, o->tls_keys, &o->nkeys, v, err, errlen);
    else if (strcmp(key, "budget-mb") == 0)
        r = set_uint(v, DEMO_BUDGET_MB_MIN, DEMO_BUDGET_MB_MAX, &o->budget_mb, err, errlen);
    else if (strcmp(key, "drain-delay") == 0) {
        r = set_uint(v, 0, 86400000, &n, err, errlen);
        if (r == 0) o->drain_delay_ms = (unsigned)n;
    } else if (strcmp(key, "config") == 0) {
        snprintf(err, errlen, "only on the command line");
        r = -EINVAL;
    } else if ((r = set_service(o, key, v, err, errlen)) == 1 && (r = set_parts(o, key, v, err, errlen)) == 1)
        r = tern_config_set(&o->cfg, key, value, err, errlen);
    return r;
}

static void defaults(demo_opts *o) {
    memset(o, 0, sizeof *o);
    tern_config_init(&o->cfg);
    o->host = "0.0.0.0";
    o->budget_mb = DEMO_BUDGET_MB_DEFAULT;
    o->unix_mode = -1;
    o->tcp = 1;
    o->api_rate = 100;
    o->access_format = TERN_ACCESS_LOG_COMBINED;
    const char *allow = getenv("TERN_ALLOW_ROOT");
    o->allow_root = allow && strcmp(allow, "1") == 0;
}

/* --config FILE or --config=FILE, found before the other flags are read so
 * that they override the file whatever their order. */
static const char *find_config(int argc, char **argv) {
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) break;
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) path = argv[++i];
        else if (strncmp(argv[i], "--config=", 9) == 0) path = argv[i] + 9;
    }
    return path;
}

static int read_flags(demo_opts *o, int argc, char **argv, void (*usage)(FILE *)) {
    struct option longopts[DEMO_NOPTIONS + 2];
    for (size_t i = 0; i < DEMO_NOPTIONS; i++)
        longopts[i] = (struct option){demo_options[i].name, demo_options[i].has_arg, NULL, (int)i + 1000};
    longopts[DEMO_NOPTIONS] = (struct option){"help", no_argument, NULL, OPT_HELP};
    longopts[DEMO_NOPTIONS + 1] = (struct option){NULL, 0, NULL, 0};
    int opt;
    opterr = 0;
    optind = 0; /* a fresh scan (GNU getopt): SIGHUP reads the flags again */
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt == OPT_HELP) {
            if (usage) usage(stdout);
            return 1;
        }
        if (opt < 1000 || opt >= 1000 + (int)DEMO_NOPTIONS) {
            fprintf(stderr, "tern-demo: unknown or incomplete option '%s'\n", argv[optind - 1]);
            if (usage) usage(stderr);
            return 2;
        }
        const char *name = demo_options[opt - 1000].name;
        if (strcmp(name, "config") == 0) continue;
        char err[256] = "";
        if (demo_opts_set(o, name, optarg ? optarg : "true", err, sizeof err) < 0) {
            fprintf(stderr, "tern-demo: --%s: %s\n", name, err);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tern-demo: unexpected argument '%s'\n", argv[optind]);
        if (usage) usage(stderr);
        return 2;
    }
    return 0;
}

int demo_opts_load(demo_opts *o, int argc, char **argv, void (*usage)(FILE *)) {
    defaults(o);
    o->config = find_config(argc, argv);
    if (o->config) {
        char err[512];
        if (tern_config_parse_file(o->config, demo_opts_set, o, err, sizeof err) < 0) {
            fprintf(stderr, "tern-demo: %s\n", err);
            return 2;
        }
    }
    int r = read_flags(o, argc, argv, usage);
    if (r) return r;
    if (o->ncerts != o->nkeys || (o->tls_client_ca && !o->ncerts)) {
        fprintf(stderr, "tern-demo: --tls-cert and --tls-key come in pairs (and --tls-client-ca needs them)\n");
        return 2;
    }
    return 0;
}

void demo_opts_free(demo_opts *o) {
    while (o->owned) {
        demo_string *next = o->owned->next;
        free(o->owned);
        o->owned = next;
    }
}
