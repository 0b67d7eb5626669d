// Drives Debian's headless Chromium through the dashboard with playwright-core (no browser download).
// Usage: node dashboard.cjs URL SCREENSHOT.png [desktop|phone] [tenant-id-to-select]
// Prints one JSON line: what the page shows (data-testid values), the requests it made, any JS errors.
"use strict";
const { chromium } = require("playwright-core");

const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"];

async function collect(page) {
  return page.evaluate(() => {
    const q = (sel) => Array.from(document.querySelectorAll(sel));
    const kpi = (id) => { const e = document.getElementById(id); return { text: e.textContent, value: e.dataset.value }; };
    return {
      state: document.body.dataset.state,
      scope: document.getElementById("scope").textContent,
      status: document.getElementById("status").textContent,
      keyError: document.getElementById("key-error").textContent,
      kpis: Object.fromEntries(["kpi-day", "kpi-month", "kpi-calls", "kpi-errors", "kpi-p95"].map((id) => [id, kpi(id)])),
      windows: q("#budget .window").map((w) => ({ window: w.dataset.window, remaining: w.dataset.remaining,
        text: w.querySelector("b").textContent })),
      days: q("#spend-day g[data-day]").map((g) => ({ day: g.dataset.day, cost: g.dataset.cost })),
      teams: q("#spend-team g[data-key]").map((g) => ({ team: g.dataset.key, cost: g.dataset.value,
        text: g.querySelector("text.val").textContent })),
      latency: q("#latency tbody tr").map((tr) => ({ team: tr.dataset.team,
        p50: tr.querySelector("[data-testid^=p50]").dataset.value, p95: tr.querySelector("[data-testid^=p95]").dataset.value,
        p99: tr.querySelector("[data-testid^=p99]").dataset.value,
        text: Array.from(tr.children).slice(0, 6).map((td) => td.textContent) })),
      errors: q("#errors g[data-key]").map((g) => ({ type: g.dataset.key, count: g.dataset.value,
        text: g.querySelector("text.val").textContent })),
      audit: q("#audit tbody tr").map((tr) => ({ type: tr.dataset.type, cells: Array.from(tr.children).map((td) => td.textContent) })),
      tenants: q("#tenants tbody tr").map((tr) => ({ id: tr.dataset.tenant, cells: Array.from(tr.children).map((td) => td.textContent) })),
      tenantOptions: q("#tenant option").map((o) => o.value),
      budgetHidden: document.getElementById("budget-card").hidden,
      tenantsHidden: document.getElementById("tenants-card").hidden,
      location: location.href,
      overflowX: document.documentElement.scrollWidth > window.innerWidth + 1,
    };
  });
}

(async () => {
  const [url, shot, layout = "desktop", select = ""] = process.argv.slice(2);
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ARGS });
  const phone = layout === "phone";
  const context = await browser.newContext(phone
    ? { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true }
    : { viewport: { width: 1360, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const requests = [];
  const errors = [];
  page.on("request", (r) => requests.push({ url: r.url(), authorization: r.headers()["authorization"] || null }));
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  try {
    await page.goto(url, { waitUntil: "load" });
    await page.waitForFunction(() => ["ready", "error", "need-key"].includes(document.body.dataset.state)
      && document.body.dataset.state !== "loading", null, { timeout: 20000 });
    if (select) {
      await page.selectOption("#tenant", select);
      await page.waitForFunction(() => document.body.dataset.state === "ready"
        && document.getElementById("scope").textContent.includes("tenant "), null, { timeout: 20000 });
    }
    const data = await collect(page);
    await page.screenshot({ path: shot, fullPage: true });
    if (phone) {  // screen by screen, as a person scrolls
      for (let i = 0; i < 3; i++) {
        await page.screenshot({ path: shot.replace(/\.png$/, `-screen${i + 1}.png`), fullPage: true,
          clip: { x: 0, y: i * 844, width: 390, height: 844 } });
      }
    }
    process.stdout.write(JSON.stringify({ ok: true, data, requests, errors }) + "\n");
  } catch (e) {
    try { await page.screenshot({ path: shot, fullPage: true }); } catch (_) { /* ignore */ }
    process.stdout.write(JSON.stringify({ ok: false, error: String(e), requests, errors }) + "\n");
  } finally {
    await browser.close();
  }
})();
