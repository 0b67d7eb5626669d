// Drives Debian's headless Chromium through /docs (Swagger UI) with playwright-core: authorize with a key,
// open one operation, execute it with the example body the page shows, and read the answer off the page.
// Usage: node docs.cjs DOCS_URL KEY|- TAG OPERATION_ID SHOT_PREFIX
// Prints one JSON line: what the page showed, the requests it made, any JS errors (CSP violations included).
"use strict";
const { chromium } = require("playwright-core");

const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"];

(async () => {
  const [url, key, tag, operationId, shots] = process.argv.slice(2);
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ARGS });
  const page = await (await browser.newContext({ viewport: { width: 1360, height: 1000 } })).newPage();
  const requests = [];
  const errors = [];
  page.on("request", (r) => requests.push({ url: r.url(), method: r.method(),
    authorization: r.headers()["authorization"] || null, apiKey: r.headers()["x-api-key"] || null,
    body: r.postData() || null }));
  page.on("response", (r) => { if (r.status() >= 400) errors.push(`${r.status()} ${r.url()}`); });
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  const out = { ok: false };
  try {
    await page.goto(url, { waitUntil: "load" });
    await page.waitForFunction(() => ["ready", "error"].includes(document.body.dataset.state), null, { timeout: 30000 });
    out.state = await page.evaluate(() => document.body.dataset.state);
    out.intro = await page.textContent("#docs-intro");

    // The key box: Swagger UI's Authorize dialog, `bearer` scheme (KEY "-": type none).
    await page.click("button.btn.authorize");
    const scheme = page.locator(".auth-container", { has: page.locator("h4", { hasText: /^bearer/ }) }).first();
    out.schemes = await page.locator(".modal-ux .auth-container h4").allTextContents();
    if (key !== "-") {
      await scheme.locator("input").fill(key);
      await page.screenshot({ path: `${shots}-authorize.png` });
      await scheme.locator("button.authorize").click();
    }
    await page.click(".modal-ux button.btn-done, .modal-ux button.close-modal");

    // The operation: its description (with the curl line) and the example body in the editor.
    await page.click(`#operations-tag-${tag}`);  // teams start folded
    const op = page.locator(`#operations-${tag}-${operationId}`);
    await op.locator(".opblock-summary").first().click();
    const editor = op.locator("textarea.body-param__text");
    await editor.waitFor({ timeout: 15000 });
    out.exampleBody = await editor.inputValue();
    out.description = await op.locator(".opblock-description-wrapper").first().innerText();
    await op.locator("button.execute").click();
    const status = op.locator(".live-responses-table .response .response-col_status").first();
    await status.waitFor({ timeout: 30000 });
    out.status = (await status.innerText()).trim();
    out.responseBody = await op.locator(".live-responses-table .response-col_description pre").first().innerText();
    out.curl = await op.locator(".curl-command, .request-snippets").first().innerText();
    await op.locator(".live-responses-table").first().scrollIntoViewIfNeeded();
    await page.screenshot({ path: `${shots}.png` });
    out.ok = true;
  } catch (e) {
    out.failure = String(e);
    await page.screenshot({ path: `${shots}-failure.png` }).catch(() => {});
  }
  out.requests = requests;
  out.errors = errors;
  await browser.close();
  console.log(JSON.stringify(out));
})();
