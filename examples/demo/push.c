/* Push endpoints: /ws (WebSocket echo), /chat (a WebSocket room that spans
 * every worker) and /sse (Server-Sent Events: a clock and live figures). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "demo.h"

/* ---- /ws ------------------------------------------------------------------- */

static const char *const echo_protocols[] = {"echo", NULL};

static void ws_echo(tern_ctx *ctx) {
    unsigned long ping_ms;
    if (demo_query_uint(ctx, "ping_ms", 30000, 10, 3600000, &ping_ms) < 0) return;
    tern_ws_opts opts = {.protocols = echo_protocols,
                         .max_message = 16u << 20,
                         .ping_interval_ms = (unsigned)ping_ms,
                         .permessage_deflate = 1};
    tern_ws *ws = tern_ws_accept(ctx, &opts);
    if (!ws) return; /* not an upgrade: the 400/426 is set */
    tern_ws_msg m;
    while (tern_ws_recv(ws, &m) == 0)
        if (tern_ws_send(ws, m.type, m.data, m.len) < 0) break;
}

/* The same echo in callback mode: between messages the connection holds
 * no coroutine (bench/ws_idle_rss.py measures both). */
static void echo_message(tern_ws *ws, const tern_ws_msg *m, void *user) {
    (void)user;
    tern_ws_send(ws, m->type, m->data, m->len);
}

static void ws_echo_callback(tern_ctx *ctx) {
    tern_ws_opts opts = {
        .protocols = echo_protocols, .max_message = 16u << 20, .permessage_deflate = 1};
    tern_ws *ws = tern_ws_accept(ctx, &opts);
    if (ws) tern_ws_on_message(ws, echo_message, NULL, NULL);
}

/* ---- /chat ----------------------------------------------------------------- */

static int room_join(demo_room *r, tern_ws *ws) {
    pthread_mutex_lock(&r->lock);
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        tern_ws **m = realloc(r->members, cap * sizeof *m);
        if (!m) {
            pthread_mutex_unlock(&r->lock);
            return -ENOMEM;
        }
        r->members = m;
        r->cap = cap;
    }
    r->members[r->n++] = ws;
    pthread_mutex_unlock(&r->lock);
    return 0;
}

/* After leaving, nobody sends to ws any more: the handler may return. */
static void room_leave(demo_room *r, tern_ws *ws) {
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->n; i++) {
        if (r->members[i] == ws) {
            r->members[i] = r->members[--r->n];
            break;
        }
    }
    if (r->n == 0) {
        free(r->members);
        r->members = NULL;
        r->cap = 0;
    }
    pthread_mutex_unlock(&r->lock);
}

/* Queues text to every member but `self` (sends to others never park, so
 * the lock is held only briefly), then writes it to self directly. */
static void room_broadcast(demo_room *r, tern_ws *self, const char *text) {
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->n; i++)
        if (r->members[i] != self) tern_ws_send_text(r->members[i], text); /* a full queue drops */
    pthread_mutex_unlock(&r->lock);
    if (self) tern_ws_send_text(self, text);
}

/* A member's line, prefixed with its worker, to everyone. */
static void chat_relay(demo_room *room, tern_ws *ws, const tern_ws_msg *m) {
    if (m->type != TERN_WS_TEXT) return; /* text only */
    size_t n = m->len < 200 ? m->len : 200;
    char *out = malloc(n + 32);
    if (!out) return;
    int k = snprintf(out, 32, "w%d: ", tern_worker_id());
    memcpy(out + k, m->data, n);
    out[(size_t)k + n] = 0;
    room_broadcast(room, ws, out); /* a line cut mid-character is refused (-EINVAL) */
    free(out);
}

static void chat_message(tern_ws *ws, const tern_ws_msg *m, void *room) {
    chat_relay(room, ws, m);
}
static void chat_close(tern_ws *ws, void *room) {
    room_leave(room, ws);
}

static void chat(tern_ctx *ctx) {
    demo_room *room = &demo_app_of(ctx)->chat;
    unsigned long stackless;
    if (demo_query_uint(ctx, "stackless", 0, 0, 1, &stackless) < 0) return;
    /* compression without context takeover: a chat room holds many idle
     * members, and a compressor kept per member would cost ~256 KiB each */
    tern_ws_opts opts = {.max_message = 64u << 10,
                         .ping_interval_ms = 30000,
                         .permessage_deflate = 1,
                         .deflate_no_context_takeover = 1};
    tern_ws *ws = tern_ws_accept(ctx, &opts);
    if (!ws) return;
    if (room_join(room, ws) < 0) {
        tern_ws_close(ws, 1013, "try again later");
        return;
    }
    char line[256];
    snprintf(line, sizeof line, "* someone joined on worker %d", tern_worker_id());
    room_broadcast(room, ws, line);
    if (stackless) {
        /* the handler returns; the room's messages arrive by callback */
        if (tern_ws_on_message(ws, chat_message, chat_close, room) < 0) room_leave(room, ws);
        return;
    }
    tern_ws_msg m;
    while (tern_ws_recv(ws, &m) == 0) chat_relay(room, ws, &m);
    room_leave(room, ws);
}

/* ---- /sse ------------------------------------------------------------------ */

static void sse(tern_ctx *ctx) {
    unsigned long count, interval;
    if (demo_query_uint(ctx, "count", 0, 0, 1000000, &count) < 0) return;
    if (demo_query_uint(ctx, "interval_ms", 1000, 10, 60000, &interval) < 0) return;
    unsigned long heartbeat;
    if (demo_query_uint(ctx, "heartbeat_ms", 15000, 10, 600000, &heartbeat) < 0) return;
    /* a reconnecting browser sends the last id it saw: carry on from there */
    unsigned long next = 1, last;
    const char *lei = tern_sse_last_event_id(ctx);
    if (lei && demo_parse_uint(lei, 0, 1000000000, &last) == 0) next = last + 1;
    if (tern_sse_start(ctx) < 0) return;
    tern_sse_retry(ctx, 2000);
    tern_sse_heartbeat(ctx, (unsigned)heartbeat);
    for (unsigned long sent = 0; count == 0 || sent < count; sent++, next++) {
        tern_stats st;
        memset(&st, 0, sizeof st);
        tern_stats_read(tern_ctx_server(ctx), &st);
        char now[32], id[24], data[256];
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
        snprintf(id, sizeof id, "%lu", next);
        snprintf(
            data, sizeof data,
            "{\"time\":\"%s\",\"requests\":%llu,\"active_connections\":%llu,\"in_flight\":%llu,"
            "\"rss_bytes\":%llu,\"rps\":%.1f}",
            now, (unsigned long long)st.total_requests, (unsigned long long)st.active_connections,
            (unsigned long long)st.in_flight, (unsigned long long)st.memory_rss_bytes,
            st.throughput_rps);
        if (tern_sse_event(ctx, "clock", id, data) < 0) return;
        if (count && sent + 1 == count) return;
        /* -ECANCELED here is the client going away: the stream ends */
        if (tern_sse_wait(ctx, interval) < 0) return;
    }
}

int demo_register_push(tern_server *s) {
    int r = tern_route(s, TERN_GET, "/ws", ws_echo);
    if (r == 0) r = tern_route(s, TERN_GET, "/ws/callback", ws_echo_callback);
    if (r == 0) r = tern_route(s, TERN_GET, "/chat", chat);
    if (r == 0) r = tern_route(s, TERN_GET, "/sse", sse);
    return r;
}
