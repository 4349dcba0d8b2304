/* Configuration files, tern_config by key, and run-time reconfiguration
 * (see tern/config.h). */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"
#include "tern/config.h"

/* ---- the file ------------------------------------------------------------------- */

/* Longer lines are refused rather than split: a setting cut in two would
 * be read as two settings. */
#define CONFIG_LINE_MAX 4096

static char *trim(char *p) {
    while (*p == ' ' || *p == '\t') p++;
    char *end = p + strlen(p);
    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n')) end--;
    *end = 0;
    return p;
}

static int key_ok(const char *k) {
    if (!*k) return 0;
    for (; *k; k++)
        if (!(isalnum((unsigned char)*k) || *k == '-')) return 0;
    return 1;
}

/* Splits one line into key and value; 0, 1 (nothing on it) or -EINVAL. */
static int parse_line(char *line, char **key, char **value, const char **why) {
    char *p = trim(line);
    if (!*p || *p == '#') return 1;
    char *eq = strchr(p, '=');
    if (!eq) {
        *why = "expected 'key = value'";
        return -EINVAL;
    }
    *eq = 0;
    *key = trim(p);
    *value = trim(eq + 1);
    if (!key_ok(*key)) {
        *why = "bad key (letters, digits and '-')";
        return -EINVAL;
    }
    size_t n = strlen(*value);
    if (n && **value == '"') {
        if (n < 2 || (*value)[n - 1] != '"') {
            *why = "unterminated quote";
            return -EINVAL;
        }
        (*value)[n - 1] = 0;
        (*value)++;
    }
    return 0;
}

int tern_config_parse_file(const char *path, tern_config_fn fn, void *arg, char *err, size_t errlen) {
    FILE *f = fopen(path, "re");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    char line[CONFIG_LINE_MAX + 2];
    int r = 0;
    for (unsigned no = 1; r == 0 && fgets(line, sizeof line, f); no++) {
        const char *why = NULL;
        size_t n = strlen(line);
        if (n && line[n - 1] != '\n' && !feof(f)) {
            why = "line too long";
            r = -EINVAL;
        }
        char *key = NULL, *value = NULL;
        if (r == 0) {
            int p = parse_line(line, &key, &value, &why);
            if (p < 0) r = p;
            if (p != 0) {
                if (r < 0) snprintf(err, errlen, "%s:%u: %s", path, no, why);
                continue;
            }
            char reason[256] = "";
            r = fn(arg, key, value, reason, sizeof reason);
            if (r < 0)
                snprintf(err, errlen, "%s:%u: %s: %s", path, no, key,
                         reason[0] ? reason : r == -ENOENT ? "unknown key" : strerror(-r));
        } else {
            snprintf(err, errlen, "%s:%u: %s", path, no, why);
        }
    }
    if (r == 0 && ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        r = -EIO;
    }
    fclose(f);
    return r;
}

/* ---- tern_config by key ------------------------------------------------------------- */

enum tern__config_kind { KIND_U16, KIND_INT, KIND_UNSIGNED, KIND_SIZE, KIND_BOOL };

typedef struct tern__config_key {
    const char *name;
    size_t offset;
    enum tern__config_kind kind;
    unsigned long long min, max;
    int runtime; /* tern_server_reconfigure applies it */
} tern__config_key;

#define KEY(n, field, kind, lo, hi, rt) {n, offsetof(tern_config, field), kind, lo, hi, rt}
#define MS_MAX 86400000ull /* a day */
static const tern__config_key config_keys[] = {
    KEY("port", port, KIND_U16, 0, 65535, 0),
    KEY("workers", workers, KIND_INT, 1, 1024, 0),
    KEY("backlog", backlog, KIND_INT, 1, 1u << 20, 0),
    KEY("max-request-head", max_request_head, KIND_SIZE, 1024, 1u << 30, 0),
    KEY("max-target", max_target, KIND_SIZE, 16, 1u << 30, 0),
    KEY("max-headers", max_headers, KIND_UNSIGNED, 1, 10000, 0),
    KEY("max-body", max_body, KIND_SIZE, 0, 1ull << 40, 1),
    KEY("stack-size", stack_size, KIND_SIZE, 16384, 1u << 30, 0),
    KEY("max-connections", max_connections, KIND_UNSIGNED, 0, MS_MAX, 1),
    KEY("max-in-flight", max_in_flight, KIND_UNSIGNED, 0, MS_MAX, 1),
    KEY("keepalive-timeout", keepalive_timeout_ms, KIND_UNSIGNED, 0, MS_MAX, 1),
    KEY("header-timeout", header_timeout_ms, KIND_UNSIGNED, 0, MS_MAX, 1),
    KEY("body-timeout", body_timeout_ms, KIND_UNSIGNED, 0, MS_MAX, 1),
    KEY("min-body-rate", min_body_rate, KIND_UNSIGNED, 0, 1u << 30, 1),
    KEY("write-timeout", write_timeout_ms, KIND_UNSIGNED, 0, MS_MAX, 1),
    KEY("drain-timeout", drain_timeout_ms, KIND_UNSIGNED, 0, MS_MAX, 1),
    KEY("adaptive-target", adaptive_target_us, KIND_UNSIGNED, 1, 10000000, 0),
    KEY("adaptive-interval", adaptive_interval_ms, KIND_UNSIGNED, 1, 60000, 0),
    KEY("reuse-port", shared_port, KIND_BOOL, 0, 1, 0),
    KEY("handshake-timeout", handshake_timeout_ms, KIND_UNSIGNED, 1, MS_MAX, 1),
    KEY("max-handshakes", max_handshakes, KIND_UNSIGNED, 0, 1000000, 1),
};
#undef KEY

static int parse_bool(const char *v, unsigned long long *out) {
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(v, yes[i]) == 0) return (int)(*out = 1) - 1;
        if (strcmp(v, no[i]) == 0) return (int)(*out = 0);
    }
    return -EINVAL;
}

/* Strict decimal: digits only, no sign or blanks, no overflow. */
static int parse_decimal(const char *v, unsigned long long *out) {
    if (!*v || strlen(v) > 19) return -EINVAL;
    unsigned long long n = 0;
    for (; *v; v++) {
        if (*v < '0' || *v > '9') return -EINVAL;
        n = n * 10 + (unsigned long long)(*v - '0');
    }
    *out = n;
    return 0;
}

static void store(tern_config *cfg, const tern__config_key *k, unsigned long long v) {
    char *p = (char *)cfg + k->offset;
    switch (k->kind) {
    case KIND_U16: *(uint16_t *)(void *)p = (uint16_t)v; break;
    case KIND_INT:
    case KIND_BOOL: *(int *)(void *)p = (int)v; break;
    case KIND_UNSIGNED: *(unsigned *)(void *)p = (unsigned)v; break;
    case KIND_SIZE: *(size_t *)(void *)p = (size_t)v; break;
    }
}

static unsigned long long load(const tern_config *cfg, const tern__config_key *k) {
    const char *p = (const char *)cfg + k->offset;
    switch (k->kind) {
    case KIND_U16: return *(const uint16_t *)(const void *)p;
    case KIND_INT:
    case KIND_BOOL: return (unsigned long long)*(const int *)(const void *)p;
    case KIND_UNSIGNED: return *(const unsigned *)(const void *)p;
    case KIND_SIZE: return *(const size_t *)(const void *)p;
    }
    return 0;
}

int tern_config_set(void *cfgp, const char *key, const char *value, char *err, size_t errlen) {
    for (size_t i = 0; i < sizeof config_keys / sizeof config_keys[0]; i++) {
        const tern__config_key *k = &config_keys[i];
        if (strcmp(k->name, key) != 0) continue;
        unsigned long long v;
        int r = k->kind == KIND_BOOL ? parse_bool(value, &v) : parse_decimal(value, &v);
        if (r < 0 || v < k->min || v > k->max) {
            if (k->kind == KIND_BOOL)
                snprintf(err, errlen, "bad value '%s' (true or false)", value);
            else
                snprintf(err, errlen, "bad value '%s' (%llu-%llu)", value, k->min, k->max);
            return -EINVAL;
        }
        store(cfgp, k, v);
        return 0;
    }
    snprintf(err, errlen, "unknown key");
    return -ENOENT;
}

/* ---- reload ------------------------------------------------------------------------ */

int tern_server_on_reload(tern_server *s, tern_reload_fn fn, void *arg) {
    if (s->workers) return -EBUSY;
    s->reload_fn = fn;
    s->reload_arg = arg;
    return 0;
}

/* Whether k may change now: max-in-flight counts requests only while it is
 * non-zero, so switching it on or off under way would unbalance the count. */
static int changeable(const tern__config_key *k, unsigned long long from, unsigned long long to) {
    if (!k->runtime) return 0;
    if (k->offset == offsetof(tern_config, max_in_flight)) return from && to;
    return 1;
}

/* The HTTP layer reads its copy of some settings (server.c fills s->h1). */
static void update_h1(tern_server *s) {
    __atomic_store_n(&s->h1.max_body, s->cfg.max_body, __ATOMIC_RELAXED);
    __atomic_store_n(&s->h1.header_timeout_ms, s->cfg.header_timeout_ms, __ATOMIC_RELAXED);
    __atomic_store_n(&s->h1.body_timeout_ms, s->cfg.body_timeout_ms, __ATOMIC_RELAXED);
    __atomic_store_n(&s->h1.min_body_rate, s->cfg.min_body_rate, __ATOMIC_RELAXED);
    __atomic_store_n(&s->h1.write_timeout_ms, s->cfg.write_timeout_ms, __ATOMIC_RELAXED);
}

int tern_server_reconfigure(tern_server *s, const tern_config *cfg) {
    int changed = 0;
    for (size_t i = 0; i < sizeof config_keys / sizeof config_keys[0]; i++) {
        const tern__config_key *k = &config_keys[i];
        unsigned long long from = load(&s->cfg, k), to = load(cfg, k);
        if (from == to) continue;
        if (k->offset == offsetof(tern_config, workers) && !cfg->workers) continue; /* default */
        if (!changeable(k, from, to)) {
            fprintf(stderr, "tern: reload: %s %llu -> %llu needs a restart (kept %llu)\n", k->name, from,
                    to, from);
            continue;
        }
        /* workers read these words without locks: each store is one
         * aligned word, and the next read sees the old or the new value */
        char *p = (char *)&s->cfg + k->offset;
        if (k->kind == KIND_SIZE)
            __atomic_store_n((size_t *)(void *)p, (size_t)to, __ATOMIC_RELAXED);
        else
            __atomic_store_n((unsigned *)(void *)p, (unsigned)to, __ATOMIC_RELAXED);
        fprintf(stderr, "tern: reload: %s %llu -> %llu\n", k->name, from, to);
        changed++;
    }
    if (changed) update_h1(s);
    return changed;
}
