// The README quick start's dashboard step (tests/e2e/test_quickstart.py): opens /dashboard#key=KEY in
// Debian's headless Chromium with playwright-core and reports what a person sees of money: the
// "simulated costs" badge, the budget windows and their bars, the day's spend.
// Usage: node quickstart.cjs URL SCREENSHOT.png   -> one JSON line on stdout
"use strict";
const { chromium } = require("playwright-core");

const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"];

async function collect(page) {
  return page.evaluate(() => {
    const badge = document.getElementById("simulated-badge");
    const shown = (e) => !!e && !e.hidden && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden";
    return {
      state: document.body.dataset.state,
      badge: badge ? { visible: shown(badge), text: badge.textContent, title: badge.title } : null,
      kpiDay: { text: document.getElementById("kpi-day").textContent, value: document.getElementById("kpi-day").dataset.value },
      windows: Array.from(document.querySelectorAll("#budget .window")).map((w) => {
        const fill = w.querySelector("svg rect.fill, svg rect[class^='fill']");
        const track = w.querySelector("svg rect.track");
        return { window: w.dataset.window, remaining: w.dataset.remaining,
          text: w.querySelector("b").textContent, foot: w.querySelector(".foot span").textContent,
          label: w.querySelector("svg").getAttribute("aria-label"),
          fillClass: fill ? fill.getAttribute("class") : null,
          fillFraction: fill && track ? Number(fill.getAttribute("width")) / Number(track.getAttribute("width")) : null };
      }),
    };
  });
}

(async () => {
  const [url, shot] = process.argv.slice(2);
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ARGS });
  const page = await (await browser.newContext({ viewport: { width: 1360, height: 900 } })).newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  try {
    await page.goto(url, { waitUntil: "load" });
    await page.waitForFunction(() => ["ready", "error", "need-key"].includes(document.body.dataset.state), null,
      { timeout: 20000 });
    const data = await collect(page);
    await page.screenshot({ path: shot, fullPage: true });
    process.stdout.write(JSON.stringify({ ok: true, data, errors }) + "\n");
  } catch (e) {
    process.stdout.write(JSON.stringify({ ok: false, error: String(e), errors }) + "\n");
  } finally {
    await browser.close();
  }
})();
