/* Listening like a service: systemd's sockets, --unix, --tcp false,
 * --user and the refusal to serve as root (see options.h, tern/listen.h). */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tern.h>

#include "demo.h"
#include "options.h"
#include "service.h"

/* "user", "user:group", ":group" or numeric ids. */
static int parse_owner(const char *spec, uid_t *uid, gid_t *gid) {
    char buf[256];
    if (strlen(spec) >= sizeof buf) return -ENAMETOOLONG;
    strcpy(buf, spec);
    char *group = strchr(buf, ':');
    if (group) *group++ = 0;
    *uid = (uid_t)-1;
    *gid = (gid_t)-1;
    unsigned long n;
    if (*buf) {
        struct passwd *pw = getpwnam(buf);
        if (pw) *uid = pw->pw_uid;
        else if (demo_parse_uint(buf, 0, 0x7fffffff, &n) == 0) *uid = (uid_t)n;
        else return -ENOENT;
    }
    if (group && *group) {
        struct group *gr = getgrnam(group);
        if (gr) *gid = gr->gr_gid;
        else if (demo_parse_uint(group, 0, 0x7fffffff, &n) == 0) *gid = (gid_t)n;
        else return -ENOENT;
    }
    return 0;
}

int demo_listen_setup(tern_server *s, const demo_opts *o) {
    int n = tern_server_listen_systemd(s);
    if (n < 0) {
        fprintf(stderr, "tern-demo: cannot use the sockets systemd passed: %s\n", strerror(-n));
        return -1;
    }
    if (o->unix_path) {
        uid_t uid = (uid_t)-1;
        gid_t gid = (gid_t)-1;
        if (o->unix_owner && parse_owner(o->unix_owner, &uid, &gid) < 0) {
            fprintf(stderr, "tern-demo: --unix-owner %s: no such user or group\n", o->unix_owner);
            return -1;
        }
        int r = tern_server_listen_unix(s, o->unix_path, o->unix_mode, uid, gid);
        if (r < 0) {
            fprintf(stderr, "tern-demo: cannot listen on unix:%s: %s\n", o->unix_path, strerror(-r));
            return -1;
        }
    }
    if (o->trusted_proxies) tern_server_trust_proxies(s, o->trusted_proxies);
    if (o->proxy_protocol) {
        if (!o->trusted_proxies) {
            fprintf(stderr, "tern-demo: --proxy-protocol needs --trusted-proxies\n");
            return -1;
        }
        tern_server_set_proxy_protocol(s, 1);
    }
    /* socket activation: the unit's sockets are the listeners */
    if (n > 0 || !o->tcp) tern_server_set_tcp(s, 0);
    return n;
}

int demo_drop_privileges(const demo_opts *o) {
    if (o->user) {
        int r = tern_drop_privileges(o->user);
        if (r < 0) {
            fprintf(stderr, "tern-demo: cannot switch to --user %s: %s\n", o->user, strerror(-r));
            return -1;
        }
    }
    if ((geteuid() == 0 || getuid() == 0) && !o->allow_root) {
        fprintf(stderr, "tern-demo: refusing to serve as root: pass --user USER to drop privileges "
                        "after binding, or --allow-root (or TERN_ALLOW_ROOT=1)\n");
        return -1;
    }
    return 0;
}

void demo_print_listening(tern_server *s, const demo_opts *o, int https, int inherited) {
    const char *scheme = https ? "https" : "http";
    int workers = tern_server_workers(s);
    if (o->tcp && !inherited) {
        int v6 = strchr(o->host, ':') != NULL;
        printf("tern-demo listening on %s://%s%s%s:%u (%d workers)\n", scheme, v6 ? "[" : "", o->host,
               v6 ? "]" : "", tern_server_port(s), workers);
    } else if (inherited) {
        printf("tern-demo listening on %d inherited socket%s (port %u) (%d workers)\n", inherited,
               inherited == 1 ? "" : "s", tern_server_port(s), workers);
    }
    if (o->unix_path) printf("tern-demo listening on %s+unix:%s (%d workers)\n", scheme, o->unix_path, workers);
    fflush(stdout);
}
