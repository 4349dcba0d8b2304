// Opens /ws, /chat and /sse from a page in headless Chromium (playwright-core,
// Debian's chromium): node push_browser.js BASE_URL USER_DATA_DIR. Prints one
// JSON line with what the browser's own WebSocket and EventSource saw.
'use strict';
const { chromium } = require('playwright-core');

(async () => {
  const [base, dataDir] = process.argv.slice(2);
  const out = { console_errors: [], page_errors: [] };
  const ctx = await chromium.launchPersistentContext(dataDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const page = ctx.pages()[0] || await ctx.newPage();
    page.on('console', (m) => { if (m.type() === 'error') out.console_errors.push(m.text()); });
    page.on('pageerror', (e) => out.page_errors.push(String(e)));
    await page.goto(base + '/plaintext', { waitUntil: 'load' }); // same origin for the sockets
    out.result = await page.evaluate(async (base) => {
      const wsBase = base.replace(/^http/, 'ws');
      const timeout = (ms, what) => new Promise((_, rej) => setTimeout(() => rej(new Error(what + ': timeout')), ms));
      const echo = (path) => Promise.race([timeout(10000, path), new Promise((res, rej) => {
        const ws = new WebSocket(wsBase + path, ['echo']);
        const got = [];
        ws.onopen = () => { ws.send('hello, tern'); ws.send(new Uint8Array([1, 2, 3, 255])); };
        ws.binaryType = 'arraybuffer';
        ws.onmessage = (e) => {
          got.push(typeof e.data === 'string' ? e.data : Array.from(new Uint8Array(e.data)).join(','));
          if (got.length === 2) ws.close(1000, 'done');
        };
        ws.onclose = (e) => res({ got, code: e.code, protocol: ws.protocol });
        ws.onerror = () => rej(new Error(path + ': error'));
      })]);
      const chat = () => Promise.race([timeout(10000, 'chat'), new Promise((res, rej) => {
        const a = new WebSocket(wsBase + '/chat'), b = new WebSocket(wsBase + '/chat');
        let open = 0;
        const onopen = () => { if (++open === 2) setTimeout(() => a.send('hi from a'), 100); };
        a.onopen = onopen; b.onopen = onopen;
        b.onmessage = (e) => { if (String(e.data).includes('hi from a')) { a.close(); b.close(); res(String(e.data)); } };
        a.onerror = b.onerror = () => rej(new Error('chat: error'));
      })]);
      const sse = () => Promise.race([timeout(10000, 'sse'), new Promise((res, rej) => {
        const es = new EventSource(base + '/sse?count=3&interval_ms=50');
        const events = [];
        es.onmessage = (e) => { events.push({ id: e.lastEventId, data: e.data }); };
        es.addEventListener('clock', (e) => { events.push({ id: e.lastEventId, event: 'clock', data: e.data }); });
        es.onerror = () => { es.close(); res(events); }; // the stream ends after count events
      })]);
      return { ws: await echo('/ws'), ws_callback: await echo('/ws/callback'), chat: await chat(), sse: await sse() };
    }, base);
  } catch (e) {
    out.fatal = String(e && e.stack || e);
  } finally {
    await ctx.close();
  }
  console.log(JSON.stringify(out));
})();
