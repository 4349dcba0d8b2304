/* Testing handlers without managing sockets: a request goes through the
 * server's real routes, middleware and a real worker, and the answer comes
 * back as status, headers and body. Usable from any C test framework: each
 * call blocks the calling thread until the worker has answered.
 *
 *     tern_server *s = tern_server_new();
 *     tern_route(s, TERN_GET, "/hello", hello);
 *     tern_test_response resp;
 *     tern_test_request req = {.method = "GET", .target = "/hello"};
 *     if (tern_test_do(s, &req, &resp) == 0 && resp.status == 200) ...
 *     tern_test_response_free(&resp);
 *     tern_test_stop(s);     // then tern_server_free(s)
 *
 * The first call starts the server's workers on a background thread (bound
 * to 127.0.0.1, a free port: nothing outside the process is reached); each
 * request is written into one end of a socketpair(AF_UNIX) whose other end
 * a worker adopts as a connection, so the exchange is the one real clients
 * get (parsing, limits, pipelining rules, streaming). Plain HTTP only: a
 * server with TLS certificates would expect a handshake on it. */
#ifndef TERN_TESTING_H
#define TERN_TESTING_H

#include <stddef.h>

#include <tern/api.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tern_server tern_server;

typedef struct tern_test_request {
    const char *method;         /* default "GET" */
    const char *target;         /* default "/" */
    const char *const *headers; /* "Name: value" strings, NULL-terminated list, or NULL */
    const void *body;           /* sent with Content-Length when body_len > 0, as is
                                   when headers has Transfer-Encoding or Content-Length */
    size_t body_len;
} tern_test_request;

typedef struct tern_test_response {
    int status;
    size_t num_headers;
    char **header_names; /* as received */
    char **header_values;
    char *body; /* de-chunked, NUL-terminated (body_len excludes the NUL) */
    size_t body_len;
} tern_test_response;

/* Runs req through s and fills resp (free it with tern_test_response_free).
 * Starts the server on first use. 0, or -errno: -ETIMEDOUT when no answer
 * came within 30 s, -EPROTO when the answer was malformed. */
TERN_API int tern_test_do(tern_server *s, const tern_test_request *req, tern_test_response *resp);
/* Header value from a response (case-insensitive name), NULL when absent. */
TERN_API const char *tern_test_header(const tern_test_response *resp, const char *name);
TERN_API void tern_test_response_free(tern_test_response *resp);
/* Stops the workers tern_test_do started (waits for them); 0 when none ran.
 * tern_server_free calls it too. */
TERN_API int tern_test_stop(tern_server *s);

#ifdef __cplusplus
}
#endif

#endif
