/* tern-demo: GET /dashboard (one HTML page, its charts drawn by the script
 * below on <canvas>, nothing loaded from elsewhere) and GET
 * /dashboard/events, a Server-Sent Events stream of the /stats figures
 * once per interval. */
#include <stdio.h>
#include <string.h>

#include <tern.h>

#include "demo.h"

/* ---- the stream ------------------------------------------------------------------ */

#define EVENT_INTERVAL_MS 1000

static int send_figures(tern_ctx *ctx, tern_server *s, uint64_t seq) {
    tern_stats st;
    if (tern_stats_read(s, &st) < 0) return -1;
    char buf[768];
    int n = snprintf(buf, sizeof buf,
                     "id: %llu\ndata: {\"requests\":%llu,\"rps\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
                     "\"p50_10s_ms\":%.3f,\"p99_10s_ms\":%.3f,\"connections\":%llu,\"in_flight\":%llu,"
                     "\"rss_bytes\":%llu,\"cpu_percent\":%.1f,\"loop_lag_p99_ms\":%.3f,"
                     "\"loop_lag_max_ms\":%.3f,\"shed_503\":%llu,\"client_closed\":%llu,"
                     "\"status_5xx\":%llu,\"workers\":%d,\"uptime_s\":%.1f}\n\n",
                     (unsigned long long)seq, (unsigned long long)st.total_requests, st.throughput_rps,
                     st.p50_ms, st.p99_ms, st.latency_10s.p50_ms, st.latency_10s.p99_ms,
                     (unsigned long long)st.active_connections, (unsigned long long)st.in_flight,
                     (unsigned long long)st.memory_rss_bytes, st.cpu_usage_percent, st.loop_lag_p99_ms,
                     st.loop_lag_max_ms, (unsigned long long)st.shed_503,
                     (unsigned long long)st.client_closed, (unsigned long long)st.status_5xx, st.workers,
                     st.uptime_seconds);
    if (n < 0 || (size_t)n >= sizeof buf) return -1;
    return tern_resp_stream_write(ctx, buf, (size_t)n);
}

/* One figure line per interval until the client leaves or the server
 * drains (a stream must not hold the drain up to its deadline). A client
 * that does not ask for an event stream (EventSource sends
 * "Accept: text/event-stream"; curl does not) gets one event: a snapshot. */
static void events(tern_ctx *ctx) {
    tern_server *s = tern_ctx_server(ctx);
    const char *accept = tern_req_header(ctx, "Accept");
    int snapshot = !accept || !strstr(accept, "text/event-stream");
    tern_resp_set_header(ctx, "Content-Type", "text/event-stream");
    tern_resp_set_header(ctx, "Cache-Control", "no-store");
    if (tern_resp_stream_start(ctx, -1) < 0) return;
    static const char hello[] = "retry: 1000\n\n";
    if (tern_resp_stream_write(ctx, hello, sizeof hello - 1) < 0) return;
    for (uint64_t seq = 1; !tern_server_draining(s); seq++) {
        if (send_figures(ctx, s, seq) < 0) return;
        if (snapshot) break;
        if (tern_sleep(EVENT_INTERVAL_MS) < 0) return; /* cancelled: the client went away */
    }
    tern_resp_stream_end(ctx);
}

/* ---- the page --------------------------------------------------------------------- */

static const char page[] =
    "<!doctype html>\n<html lang=en><head><meta charset=utf-8>\n"
    "<meta name=viewport content='width=device-width,initial-scale=1'>\n"
    "<title>tern dashboard</title>\n<link rel=icon href='data:,'>\n<style>\n"
    "body{font:14px system-ui,sans-serif;margin:16px;background:#fafafa;color:#222}\n"
    "h1{font-size:18px;margin:0 0 12px}#state{font-weight:normal;color:#666;font-size:13px}\n"
    ".grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:12px}\n"
    ".card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 10px}\n"
    ".card h2{font-size:13px;margin:0;color:#555;font-weight:600}\n"
    ".v{font:600 20px ui-monospace,monospace;margin:2px 0 4px}.v small{font-size:12px;color:#888}\n"
    "canvas{width:100%;height:90px;display:block}\n</style></head><body>\n"
    "<h1>tern <span id=state>connecting…</span></h1>\n<div class=grid>\n"
    "<div class=card><h2>requests/s</h2><div class=v><span id=v-rps>–</span> "
    "<small>total <span id=v-requests>–</span></small></div><canvas id=c-rps></canvas></div>\n"
    "<div class=card><h2>latency p50 / p99 (10 s), ms</h2><div class=v><span id=v-p50>–</span> / "
    "<span id=v-p99>–</span></div><canvas id=c-lat></canvas></div>\n"
    "<div class=card><h2>connections / in flight</h2><div class=v><span id=v-conns>–</span> / "
    "<span id=v-inflight>–</span></div><canvas id=c-conns></canvas></div>\n"
    "<div class=card><h2>RSS, MiB</h2><div class=v id=v-rss>–</div><canvas id=c-rss></canvas></div>\n"
    "<div class=card><h2>CPU, % of one core</h2><div class=v id=v-cpu>–</div><canvas id=c-cpu></canvas></div>\n"
    "<div class=card><h2>loop lag p99 / max, ms</h2><div class=v><span id=v-lag>–</span> / "
    "<span id=v-lagmax>–</span></div><canvas id=c-lag></canvas></div>\n"
    "<div class=card><h2>shed (503) per s</h2><div class=v><span id=v-shedrate>–</span> "
    "<small>total <span id=v-shed>–</span></small></div><canvas id=c-shed></canvas></div>\n"
    "</div>\n<script>\n"
    "'use strict';\n"
    "const N = 120, series = {};\n"
    "function push(name, v) { const s = series[name] || (series[name] = []); s.push(v);"
    " if (s.length > N) s.shift(); }\n"
    /* a line chart: y from 0 to the visible maximum, newest sample on the right */
    "function draw(id, names, colors) {\n"
    "  const c = document.getElementById(id), r = window.devicePixelRatio || 1;\n"
    "  const w = c.clientWidth, h = c.clientHeight;\n"
    "  if (c.width !== w * r) { c.width = w * r; c.height = h * r; }\n"
    "  const g = c.getContext('2d'); g.setTransform(r, 0, 0, r, 0, 0); g.clearRect(0, 0, w, h);\n"
    "  let max = 0; for (const n of names) for (const v of series[n] || []) max = Math.max(max, v);\n"
    "  max = max > 0 ? max * 1.1 : 1;\n"
    "  g.strokeStyle = '#eee'; g.beginPath();\n"
    "  for (let i = 1; i < 4; i++) { g.moveTo(0, h * i / 4); g.lineTo(w, h * i / 4); } g.stroke();\n"
    "  g.fillStyle = '#999'; g.font = '10px sans-serif'; g.fillText(fmt(max), 2, 10);\n"
    "  names.forEach((n, k) => { const s = series[n] || []; g.strokeStyle = colors[k];"
    " g.lineWidth = 1.5; g.beginPath();\n"
    "    s.forEach((v, i) => { const x = w - (s.length - 1 - i) * w / (N - 1), y = h - v / max * h;"
    " i ? g.lineTo(x, y) : g.moveTo(x, y); }); g.stroke(); });\n"
    "}\n"
    "function fmt(v) { return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3); }\n"
    "function set(id, text) { document.getElementById(id).textContent = text; }\n"
    "let last = null, updates = 0;\n"
    "function update(d) {\n"
    "  const shedRate = last ? Math.max(0, d.shed_503 - last.shed_503) : 0; last = d;\n"
    "  push('rps', d.rps); push('p50', d.p50_10s_ms); push('p99', d.p99_10s_ms);\n"
    "  push('conns', d.connections); push('inflight', d.in_flight);\n"
    "  push('rss', d.rss_bytes / 1048576); push('cpu', Math.max(0, d.cpu_percent));\n"
    "  push('lag', d.loop_lag_p99_ms); push('lagmax', d.loop_lag_max_ms); push('shed', shedRate);\n"
    "  set('v-rps', fmt(d.rps)); set('v-requests', String(d.requests));\n"
    "  set('v-p50', fmt(d.p50_10s_ms)); set('v-p99', fmt(d.p99_10s_ms));\n"
    "  set('v-conns', String(d.connections)); set('v-inflight', String(d.in_flight));\n"
    "  set('v-rss', fmt(d.rss_bytes / 1048576)); set('v-cpu', fmt(Math.max(0, d.cpu_percent)));\n"
    "  set('v-lag', fmt(d.loop_lag_p99_ms)); set('v-lagmax', fmt(d.loop_lag_max_ms));\n"
    "  set('v-shed', String(d.shed_503)); set('v-shedrate', String(shedRate));\n"
    "  draw('c-rps', ['rps'], ['#1f77b4']); draw('c-lat', ['p50', 'p99'], ['#2ca02c', '#d62728']);\n"
    "  draw('c-conns', ['conns', 'inflight'], ['#1f77b4', '#ff7f0e']);\n"
    "  draw('c-rss', ['rss'], ['#9467bd']); draw('c-cpu', ['cpu'], ['#8c564b']);\n"
    "  draw('c-lag', ['lag', 'lagmax'], ['#17becf', '#bcbd22']); draw('c-shed', ['shed'], ['#d62728']);\n"
    "  updates++; document.body.dataset.updates = updates;\n"
    "  set('state', d.workers + ' workers, up ' + d.uptime_s.toFixed(0) + ' s, update ' + updates);\n"
    "}\n"
    "const es = new EventSource('/dashboard/events');\n"
    "es.onmessage = (e) => { try { update(JSON.parse(e.data)); } catch (err) {"
    " set('state', 'bad event: ' + err); } };\n"
    "es.onerror = () => set('state', 'reconnecting…');\n"
    "</script></body></html>\n";

static void dashboard(tern_ctx *ctx) {
    tern_resp_set_header(ctx, "Content-Type", "text/html; charset=utf-8");
    /* only this page's own script and styles; no other origin */
    tern_resp_set_header(ctx, "Content-Security-Policy",
                         "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:");
    tern_resp_set_body_static(ctx, page, sizeof page - 1);
}

int demo_register_dashboard(tern_server *s) {
    int r = tern_route(s, TERN_GET, "/dashboard", dashboard);
    if (r < 0) return r;
    return tern_route(s, TERN_GET, "/dashboard/events", events);
}
