// Drives /dashboard in headless Chromium (playwright-core, Debian's chromium):
// node dashboard.js URL SCREENSHOT USER_DATA_DIR. Prints one JSON line with what it saw.
'use strict';
const { chromium } = require('playwright-core');

(async () => {
  const [url, shot, dataDir] = process.argv.slice(2);
  const out = { console_errors: [], page_errors: [], checks: [] };
  const ctx = await chromium.launchPersistentContext(dataDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    bypassCSP: true, // the page's CSP forbids eval, which waitForFunction uses
    viewport: { width: 1280, height: 760 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const page = ctx.pages()[0] || await ctx.newPage();
    page.on('console', (m) => { if (m.type() === 'error') out.console_errors.push(m.text()); });
    page.on('pageerror', (e) => out.page_errors.push(String(e)));
    page.on('requestfailed', (r) => {
      if (!r.url().endsWith('/dashboard/events')) out.console_errors.push('failed: ' + r.url());
    });
    const resp = await page.goto(url, { waitUntil: 'load' });
    out.status = resp.status();
    const updates = () => page.evaluate(() => Number(document.body.dataset.updates || 0));
    await page.waitForFunction(() => Number(document.body.dataset.updates || 0) >= 2, null, { timeout: 20000 });
    const rpsPixels = () => page.evaluate(() => document.getElementById('c-rps').toDataURL());
    const before = await rpsPixels();
    // right after an update, what the page shows against what /stats says now
    const samples = [];
    for (let i = 0; i < 3; i++) {
      const n = await updates();
      await page.waitForFunction((k) => Number(document.body.dataset.updates) > k, n, { timeout: 10000 });
      samples.push(await page.evaluate(async () => {
        const shown = {
          requests: Number(document.getElementById('v-requests').textContent),
          rps: Number(document.getElementById('v-rps').textContent),
          connections: Number(document.getElementById('v-conns').textContent),
        };
        const stats = await (await fetch('/stats')).json();
        return { shown, stats_requests: stats.total_requests, stats_rps: stats.throughput_rps };
      }));
    }
    out.samples = samples;
    out.chart_changed = (await rpsPixels()) !== before;
    out.updates = await updates();
    await page.screenshot({ path: shot, fullPage: true });
  } finally {
    await ctx.close();
  }
  console.log(JSON.stringify(out));
})().catch((e) => { console.log(JSON.stringify({ fatal: String(e && e.stack || e) })); process.exit(1); });
