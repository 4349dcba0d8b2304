/* PROXY protocol v1/v2, trusted proxies, Forwarded / X-Forwarded-For
 * (see tern/proxy.h). */
#include "server/proxy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/un.h>
#include <unistd.h>

#include "http/ctx.h"
#include "server/server.h"
#include "server/worker.h"
#include "tern/proxy.h"

/* ---- trusted sources --------------------------------------------------------------- */

/* ::ffff:a.b.c.d (an IPv4 client on a dual-stack socket) compares as IPv4. */
static void normalise(const struct sockaddr *sa, int *family, unsigned char addr[16]) {
    *family = sa->sa_family;
    if (sa->sa_family == AF_INET) {
        memcpy(addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            *family = AF_INET;
            memcpy(addr, a->s6_addr + 12, 4);
        } else {
            memcpy(addr, a->s6_addr, 16);
        }
    }
}

static int prefix_match(const unsigned char *a, const unsigned char *b, unsigned bits) {
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0) return 0;
    if (!rest) return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

int tern__proxy_trusted(const tern_server *s, const struct sockaddr *sa) {
    if (sa->sa_family == AF_UNIX) return s->trust_unix;
    int family;
    unsigned char addr[16];
    normalise(sa, &family, addr);
    for (int i = 0; i < s->ntrusted; i++)
        if (s->trusted[i].family == family && prefix_match(addr, s->trusted[i].addr, s->trusted[i].bits))
            return 1;
    return 0;
}

static int parse_cidr(const char *text, tern__cidr *out) {
    char buf[64];
    if (strlen(text) >= sizeof buf) return -EINVAL;
    strcpy(buf, text);
    char *slash = strchr(buf, '/');
    if (slash) *slash++ = 0;
    int family = strchr(buf, ':') ? AF_INET6 : AF_INET;
    unsigned max = family == AF_INET ? 32 : 128;
    if (inet_pton(family, buf, out->addr) != 1) return -EINVAL;
    unsigned long bits = max;
    if (slash) {
        char *end;
        bits = strtoul(slash, &end, 10);
        if (!*slash || *end || bits > max) return -EINVAL;
    }
    out->family = family;
    out->bits = (unsigned)bits;
    return 0;
}

int tern_server_trust_proxies(tern_server *s, const char *list) {
    if (s->workers) return -EBUSY;
    tern__cidr parsed[TERN__MAX_TRUSTED];
    int n = 0, trust_unix = 0;
    const char *p = list ? list : "";
    while (*p) {
        size_t len = strcspn(p, ", \t");
        if (len) {
            char item[64];
            if (len >= sizeof item) return -EINVAL;
            memcpy(item, p, len);
            item[len] = 0;
            if (strcmp(item, "unix") == 0) {
                trust_unix = 1;
            } else {
                if (n == TERN__MAX_TRUSTED) return -ENOSPC;
                if (parse_cidr(item, &parsed[n]) < 0) return -EINVAL;
                n++;
            }
        }
        p += len;
        p += strspn(p, ", \t");
    }
    memcpy(s->trusted, parsed, (size_t)n * sizeof parsed[0]);
    s->ntrusted = n;
    s->trust_unix = trust_unix;
    return 0;
}

int tern_server_set_proxy_protocol(tern_server *s, int enabled) {
    if (s->workers) return -EBUSY;
    s->proxy_protocol = enabled ? 1 : 0;
    return 0;
}

/* ---- the PROXY header -------------------------------------------------------------- */

static const unsigned char v2_signature[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                               0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

static int set_inet(int family, const char *host, const char *port, struct sockaddr_storage *addr,
                    socklen_t *len) {
    char *end;
    unsigned long p = strtoul(port, &end, 10);
    if (!*port || *end || p > 65535 || strspn(port, "0123456789") != strlen(port)) return -EPROTO;
    memset(addr, 0, sizeof *addr);
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)addr;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)p);
        if (inet_pton(AF_INET, host, &in->sin_addr) != 1) return -EPROTO;
        *len = sizeof *in;
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)addr;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)p);
        if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1) return -EPROTO;
        *len = sizeof *in6;
    }
    return 0;
}

/* "PROXY TCP4 src dst sport dport\r\n" (at most 107 bytes, spec §2.1). */
static int parse_v1(const char *buf, size_t n, struct sockaddr_storage *addr, socklen_t *len) {
    const char *eol = memchr(buf, '\n', n < 107 ? n : 107);
    if (!eol) return n >= 107 ? -EPROTO : 0;
    if (eol == buf || eol[-1] != '\r') return -EPROTO;
    char line[108];
    size_t l = (size_t)(eol - 1 - buf);
    memcpy(line, buf, l);
    line[l] = 0;
    int used = (int)(eol - buf) + 1;
    char *f[7] = {0};
    int nf = 0;
    for (char *save = NULL, *tok = strtok_r(line, " ", &save); tok && nf < 7; tok = strtok_r(NULL, " ", &save))
        f[nf++] = tok;
    if (nf < 2 || strcmp(f[0], "PROXY") != 0) return -EPROTO;
    if (strcmp(f[1], "UNKNOWN") == 0) {
        *len = 0;
        return used;
    }
    if (nf != 6) return -EPROTO;
    int family = strcmp(f[1], "TCP4") == 0 ? AF_INET : strcmp(f[1], "TCP6") == 0 ? AF_INET6 : 0;
    if (!family) return -EPROTO;
    struct sockaddr_storage dst;
    socklen_t dlen;
    if (set_inet(family, f[3], f[5], &dst, &dlen) < 0) return -EPROTO;
    return set_inet(family, f[2], f[4], addr, len) < 0 ? -EPROTO : used;
}

static int parse_v2(const unsigned char *buf, size_t n, struct sockaddr_storage *addr, socklen_t *len) {
    if (n < 16) return 0;
    unsigned ver_cmd = buf[12], fam = buf[13];
    size_t body = (size_t)buf[14] << 8 | buf[15];
    if ((ver_cmd & 0xf0) != 0x20 || (ver_cmd & 0x0f) > 1) return -EPROTO;
    if (body > TERN__PROXY_MAX - 16) return -EPROTO;
    if (n < 16 + body) return 0;
    int used = (int)(16 + body);
    *len = 0;
    if ((ver_cmd & 0x0f) == 0) return used; /* LOCAL: the proxy's own connection */
    memset(addr, 0, sizeof *addr);
    if (fam == 0x11 && body >= 12) {
        struct sockaddr_in *in = (struct sockaddr_in *)addr;
        in->sin_family = AF_INET;
        memcpy(&in->sin_addr, buf + 16, 4);
        memcpy(&in->sin_port, buf + 24, 2);
        *len = sizeof *in;
    } else if (fam == 0x21 && body >= 36) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)addr;
        in6->sin6_family = AF_INET6;
        memcpy(&in6->sin6_addr, buf + 16, 16);
        memcpy(&in6->sin6_port, buf + 48, 2);
        *len = sizeof *in6;
    } else if (fam != 0x00 && (fam & 0xf0) != 0x30) {
        return -EPROTO; /* a family it says it carries but does not */
    }
    return used; /* UNSPEC and AF_UNIX sources: keep the socket's peer */
}

int tern__proxy_parse(const void *data, size_t n, struct sockaddr_storage *addr, socklen_t *len) {
    const unsigned char *buf = data;
    size_t cmp = n < 12 ? n : 12;
    if (memcmp(buf, v2_signature, cmp) == 0) return cmp < 12 ? 0 : parse_v2(buf, n, addr, len);
    cmp = n < 6 ? n : 6;
    if (memcmp(buf, "PROXY ", cmp) != 0) return -EPROTO;
    return cmp < 6 ? 0 : parse_v1(data, n, addr, len);
}

/* Reads the header off the socket, exactly its bytes (what follows is TLS
 * or HTTP for the exchange): peek, parse, then consume. 0, or -errno: close. */
int tern__proxy_read(tern__worker *w, int fd, tern__transport *t) {
    tern__client_addr *ca = &w->client[fd];
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    if (getpeername(fd, (struct sockaddr *)&peer, &plen) < 0) return -errno;
    if (!tern__proxy_trusted(w->server, (struct sockaddr *)&peer)) return -EPERM;
    uint64_t deadline = tern__h1_deadline_after(w->server->cfg.header_timeout_ms);
    unsigned char buf[TERN__PROXY_MAX];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_PEEK);
        if (n == 0) return -ECONNRESET;
        if (n < 0 && errno != EAGAIN) return -errno;
        if (n > 0) {
            int used = tern__proxy_parse(buf, (size_t)n, &ca->addr, &ca->len);
            if (used < 0) return used;
            if (used > 0) {
                if (recv(fd, buf, (size_t)used, 0) != used) return -EIO;
                ca->state = TERN__CLIENT_KNOWN;
                return 0;
            }
        }
        /* edge-triggered: more bytes arrive as a new edge */
        int r = tern__transport_wait(t, EPOLLIN, deadline);
        if (r < 0) return r;
    }
}

/* ---- the client a request came from ---------------------------------------------- */

/* One address of a Forwarded for= or X-Forwarded-For element: 1.2.3.4,
 * 1.2.3.4:80, [::1], "[::1]:80", ::1 (XFF). */
static int parse_forwarded_addr(const char *p, size_t n, struct sockaddr_storage *addr, socklen_t *len) {
    while (n && (*p == ' ' || *p == '\t' || *p == '"')) p++, n--;
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '"')) n--;
    char host[64];
    const char *port = "0";
    char portbuf[8];
    if (n && *p == '[') {
        const char *close = memchr(p, ']', n);
        if (!close || (size_t)(close - p - 1) >= sizeof host) return -EINVAL;
        memcpy(host, p + 1, (size_t)(close - p - 1));
        host[close - p - 1] = 0;
        size_t rest = n - (size_t)(close - p) - 1;
        if (rest > 1 && close[1] == ':' && rest - 1 < sizeof portbuf) {
            memcpy(portbuf, close + 2, rest - 1);
            portbuf[rest - 1] = 0;
            port = portbuf;
        }
        return set_inet(AF_INET6, host, port, addr, len) < 0 ? -EINVAL : 0;
    }
    if (n >= sizeof host) return -EINVAL;
    memcpy(host, p, n);
    host[n] = 0;
    if (strchr(host, ':') && strchr(host, ':') == strrchr(host, ':')) { /* v4:port */
        char *c = strchr(host, ':');
        *c = 0;
        port = c + 1;
    }
    int family = strchr(host, ':') ? AF_INET6 : AF_INET;
    return set_inet(family, host, port, addr, len) < 0 ? -EINVAL : 0;
}

/* The next element from the right of a comma list: [*start, end). */
static int prev_element(const char *v, size_t *end, const char **start, size_t *n) {
    if (*end == 0) return 0;
    size_t e = *end, b = e;
    while (b > 0 && v[b - 1] != ',') b--;
    *start = v + b;
    *n = e - b;
    *end = b ? b - 1 : 0;
    return 1;
}

/* Forwarded: the for= parameter of one element ("for=1.2.3.4;proto=https"). */
static int element_for(const char *el, size_t n, const char **p, size_t *len) {
    for (size_t i = 0; i + 4 <= n; i++) {
        if ((i == 0 || el[i - 1] == ';' || el[i - 1] == ' ') && strncasecmp(el + i, "for=", 4) == 0) {
            size_t j = i + 4;
            while (j < n && el[j] != ';') j++;
            *p = el + i + 4;
            *len = j - i - 4;
            return 1;
        }
    }
    return 0;
}

/* Walks a forwarding chain from the right: each hop that is a trusted
 * proxy passes the question to the one before it. */
static int from_chain(const tern_server *s, const char *v, int forwarded, struct sockaddr_storage *addr,
                      socklen_t *len) {
    size_t end = strlen(v);
    const char *el;
    size_t n;
    int found = 0;
    while (prev_element(v, &end, &el, &n)) {
        const char *a = el;
        size_t alen = n;
        if (forwarded && !element_for(el, n, &a, &alen)) return found ? 0 : -ENOENT;
        struct sockaddr_storage hop;
        socklen_t hlen;
        if (parse_forwarded_addr(a, alen, &hop, &hlen) < 0) return found ? 0 : -ENOENT; /* "unknown", junk */
        *addr = hop;
        *len = hlen;
        found = 1;
        if (!tern__proxy_trusted(s, (struct sockaddr *)&hop)) return 0;
    }
    return found ? 0 : -ENOENT;
}

int tern__proxy_peer(void *drv, const tern_ctx *ctx, int fd, struct sockaddr_storage *addr, socklen_t *len) {
    tern__worker *w = drv;
    tern_server *s = w->server;
    if (w->client && w->client[fd].state == TERN__CLIENT_KNOWN && w->client[fd].len) {
        *addr = w->client[fd].addr;
        *len = w->client[fd].len;
    } else {
        *len = sizeof *addr;
        if (getpeername(fd, (struct sockaddr *)addr, len) < 0) return -errno;
    }
    if (!s->ntrusted && !s->trust_unix) return 0;
    if (!tern__proxy_trusted(s, (struct sockaddr *)addr)) return 0;
    const char *fwd = tern_req_header(ctx, "Forwarded");
    if (fwd && from_chain(s, fwd, 1, addr, len) == 0) return 0;
    const char *xff = tern_req_header(ctx, "X-Forwarded-For");
    if (xff) (void)from_chain(s, xff, 0, addr, len);
    return 0;
}
