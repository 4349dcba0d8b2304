/* PROXY protocol v1/v2 header parsing (server/proxy.c): complete, partial
 * and malformed headers, LOCAL/UNKNOWN, and the bytes consumed. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "check.h"
#include "server/proxy.h"

static int parse(const void *p, size_t n, struct sockaddr_storage *ss, socklen_t *len) {
    return tern__proxy_parse(p, n, ss, len);
}

static void test_v1(void) {
    struct sockaddr_storage ss;
    socklen_t len;
    const char h[] = "PROXY TCP4 192.168.0.1 10.0.0.1 56324 443\r\nGET /";
    size_t hl = strlen("PROXY TCP4 192.168.0.1 10.0.0.1 56324 443\r\n");
    CHECK_INT(parse(h, sizeof h - 1, &ss, &len), hl);
    CHECK_INT(ss.ss_family, AF_INET);
    CHECK_INT(ntohs(((struct sockaddr_in *)&ss)->sin_port), 56324);
    for (size_t i = 0; i < hl; i++) CHECK_INT(parse(h, i, &ss, &len), 0); /* every prefix: more */
    const char six[] = "PROXY TCP6 2001:db8::1 ::1 1 2\r\n";
    CHECK_INT(parse(six, sizeof six - 1, &ss, &len), sizeof six - 1);
    CHECK_INT(ss.ss_family, AF_INET6);
    const char unk[] = "PROXY UNKNOWN\r\n";
    CHECK_INT(parse(unk, sizeof unk - 1, &ss, &len), sizeof unk - 1);
    CHECK_INT(len, 0);
    static const char *const bad[] = {"GET / HTTP/1.1\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
                                      "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n",
                                      "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "PROXY TCP4 ::1 ::1 1 2\r\n",
                                      "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_INT(parse(bad[i], strlen(bad[i]), &ss, &len), -EPROTO);
    char longline[200];
    memset(longline, 'x', sizeof longline);
    memcpy(longline, "PROXY ", 6);
    CHECK_INT(parse(longline, sizeof longline, &ss, &len), -EPROTO); /* no CRLF within 107 */
}

static void test_v2(void) {
    unsigned char h[64] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
                           0x21, 0x11, 0x00, 0x0c, 9, 8, 7, 6, 1, 1, 1, 1, 0x0d, 0x05, 0x00, 0x50};
    struct sockaddr_storage ss;
    socklen_t len;
    CHECK_INT(parse(h, 28, &ss, &len), 28);
    CHECK_INT(ss.ss_family, AF_INET);
    CHECK_INT(ntohs(((struct sockaddr_in *)&ss)->sin_port), 0x0d05);
    for (size_t i = 0; i < 28; i++) CHECK_INT(parse(h, i, &ss, &len), 0);
    h[12] = 0x20; /* LOCAL: the proxy's own check */
    CHECK_INT(parse(h, 28, &ss, &len), 28);
    CHECK_INT(len, 0);
    h[12] = 0x31; /* version 3 */
    CHECK_INT(parse(h, 28, &ss, &len), -EPROTO);
    h[12] = 0x22; /* command 2 */
    CHECK_INT(parse(h, 28, &ss, &len), -EPROTO);
    h[12] = 0x21;
    h[13] = 0x21; /* TCP6 that carries only 12 bytes */
    CHECK_INT(parse(h, 28, &ss, &len), -EPROTO);
    h[13] = 0x11;
    h[14] = 0xff; /* longer than any header tern reads */
    CHECK_INT(parse(h, 28, &ss, &len), -EPROTO);
}

int main(void) {
    test_v1();
    test_v2();
    return check_done();
}
