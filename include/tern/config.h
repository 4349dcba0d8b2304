/* tern configuration files and run-time reconfiguration.
 *
 * The file format, one setting a line:
 *
 *     # a comment (a line whose first non-blank character is '#')
 *     key = value
 *     max-connections = 10000      # no: '#' after a value is part of it
 *
 * Keys are the long option names without "--" (letters, digits, '-');
 * blanks around the key and the value are ignored; a value may be wrapped
 * in double quotes to keep blanks at its ends. A key may repeat when its
 * option repeats (tls-cert). Blank lines are ignored; anything else is an
 * error that names the file and line. No sections, no includes, no
 * escapes: it stays greppable and obviously equal to the command line.
 *
 * tern_config_set knows the keys of tern_config (the table in README.md
 * lists them with their units and defaults); a program adds its own keys
 * and passes the rest to it, as the demo does. */
#ifndef TERN_CONFIG_H
#define TERN_CONFIG_H

#include <tern/api.h>

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct tern_config;
struct tern_server;

/* One setting: 0, or a negative errno with a reason written to err
 * ("unknown key", "must be 0-65535"...). -ENOENT means an unknown key. */
typedef int (*tern_config_fn)(void *arg, const char *key, const char *value, char *err,
                              size_t errlen);

/* Reads `path` and calls fn for each setting in file order. Stops at the
 * first error: returns fn's error or -EINVAL (a malformed line), -ENOENT /
 * -EACCES (the file), with "PATH:LINE: reason" in err. */
TERN_API int tern_config_parse_file(const char *path, tern_config_fn fn, void *arg, char *err,
                                    size_t errlen);

/* Sets the field of cfg that `key` names from its text `value`: decimal
 * numbers with the field's range, "true"/"false" (also yes/no, on/off,
 * 1/0) for switches. Keys: port, workers, backlog, max-request-head,
 * max-target, max-headers, max-body, stack-size, max-connections,
 * max-in-flight, keepalive-timeout, header-timeout, body-timeout,
 * min-body-rate, write-timeout, drain-timeout, adaptive-target,
 * adaptive-interval, reuse-port, handshake-timeout, max-handshakes.
 * Returns 0, -ENOENT (not one of these) or -EINVAL (bad value); err says
 * why. Usable as a tern_config_fn with cfg as arg. */
TERN_API int tern_config_set(void *cfg, const char *key, const char *value, char *err,
                             size_t errlen);

/* Applies to a running server the settings of cfg that can change at run
 * time: max-connections, max-in-flight (between non-zero values),
 * keepalive-, header-, body-, write-, drain- and handshake-timeout,
 * min-body-rate, max-body, max-handshakes. Connections and requests read
 * the new values from their next step on. Each change is logged to stderr
 * ("tern: reload: max-connections 0 -> 100"), as is each differing
 * setting that needs a restart. Returns how many settings changed. */
TERN_API int tern_server_reconfigure(struct tern_server *s, const struct tern_config *cfg);

/* fn(s, arg) runs on the thread that called tern_server_run when SIGHUP
 * arrives, before the TLS certificates are reloaded: the place to re-read
 * a configuration file, reopen a log file and call
 * tern_server_reconfigure. With a hook (or TLS) SIGHUP means reload;
 * without either it keeps its default meaning. 0, or -EBUSY once running. */
typedef void (*tern_reload_fn)(struct tern_server *s, void *arg);
TERN_API int tern_server_on_reload(struct tern_server *s, tern_reload_fn fn, void *arg);

#ifdef __cplusplus
}
#endif
#endif
