// Against a live `multiagent serve` on the fake Messages API. tests/e2e/test_typescript_sdk.py starts the
// servers, makes the tenants and runs `npm test` with these variables; without them these tests are skipped.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  APIConnectionError,
  APIError,
  AuthenticationError,
  BudgetExceeded,
  BudgetExceededError,
  GatewayTimeout,
  InvalidJSON,
  ModelError,
  MultiAgentError,
  MultiAgentFramework,
  NotFoundError,
  PayloadTooLarge,
  PermissionDeniedError,
  RateLimited,
  ServiceUnavailable,
  TEAM_NAMES,
  ValidationError,
} from "../dist/index.js";

const env = process.env;
const live = Boolean(env.MULTIAGENT_API_URL && env.MA_TEST_FAKE_URL);
const apiUrl = env.MULTIAGENT_API_URL;
const behaviours = live ? JSON.parse(env.MA_TEST_BEHAVIOURS) : {};
const fast = { initialRetryDelayMs: 10, maxRetryDelayMs: 50, maxRetryAfterMs: 5_000 };

const camel = (name) => name.replace(/[-_]([a-z0-9])/g, (_m, c) => c.toUpperCase());

async function fake(path, body) {
  const res = await fetch(env.MA_TEST_FAKE_URL + path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.equal(res.status, 200);
}
const push = (...names) => fake("/_fake/script", { script: names.map((n) => behaviours[n]), append: true });

function counting(extra) {
  const requests = [];
  const fetchImpl = async (url, init) => {
    requests.push({ url: String(url), init });
    return extra ? extra(url, init, requests.length) : fetch(url, init);
  };
  return { fetchImpl, requests };
}

const client = (opts = {}) => new MultiAgentFramework({ apiUrl, apiKey: env.MULTIAGENT_API_KEY, retry: fast, ...opts });

describe("live server", { skip: !live && "MULTIAGENT_API_URL / MA_TEST_FAKE_URL not set (run through pytest)" }, () => {
  test("every team is reachable through its typed property", async () => {
    await fake("/_fake/reset");
    const framework = client();
    const teams = await framework.teams.list();
    assert.deepEqual(teams.map((t) => t.name).sort(), [...TEAM_NAMES].sort());
    const answers = await Promise.all(TEAM_NAMES.map((name) => framework.teams[camel(name)].ask({ question: `hello ${name}` })));
    answers.forEach((answer, i) => {
      assert.equal(typeof answer.answer, "string");
      assert.equal(answer.raw.team, TEAM_NAMES[i]);
      assert.ok(answer.raw.usage.costUsd > 0);
    });
  });

  test("typed outputs in camelCase, with raw usage and headers", async () => {
    const framework = client();
    const campaign = await framework.teams.marketing.analyzeCampaign({ target: "developers", budget: 5000 });
    assert.equal(typeof campaign.summary, "string");
    assert.equal(campaign.raw.operation, "analyze_campaign");
    const analysis = await framework.teams.finance.analyzeInvestment({ riskTolerance: "medium", amount: 100000 });
    assert.equal(typeof analysis.expectedAnnualReturnLowPercent, "number");
    assert.equal(typeof analysis.allocation[0].assetClass, "string");
    assert.equal("expected_annual_return_low_percent" in analysis, false);
    const raw = analysis.raw;
    assert.ok(raw.usage.inputTokens > 0 && raw.usage.costUsd > 0);
    assert.match(raw.model, /^claude-/);
    assert.equal(raw.requestId, raw.headers.get("x-request-id"));
    assert.ok(raw.budgetRemainingUsd !== null && raw.ratelimitRemainingRequests !== null);
    assert.equal(raw.retries, 0);
    const byName = await framework.teams.get("customer-service").ask({ question: "refunds?" });
    assert.equal(typeof byName.answer, "string");
    const usage = await framework.usage();
    assert.ok(usage.spentUsd.day > 0);
    assert.ok(usage.byTeam.some((row) => row.team === "finance" && row.costUsd > 0));
  });

  test("AuthenticationError", async () => {
    await assert.rejects(client({ apiKey: "mak_wrong" }).teams.finance.ask({ question: "hi" }), AuthenticationError);
  });

  test("PermissionDeniedError for a team outside the allow-list", async () => {
    const err = await client({ apiKey: env.MA_TEST_MARKETING_ONLY_KEY }).teams.finance.ask({ question: "hi" }).catch((e) => e);
    assert.ok(err instanceof PermissionDeniedError);
    assert.equal(err.status, 403);
  });

  test("NotFoundError for an unknown team", async () => {
    await assert.rejects(client().teams.get("no-such-team").call("ask", { question: "hi" }), NotFoundError);
  });

  test("ValidationError lists the fields", async () => {
    const err = await client().teams.finance.analyzeInvestment({ riskTolerance: "extreme", amount: -1 }).catch((e) => e);
    assert.ok(err instanceof ValidationError);
    const locs = err.errors.map((e) => e.loc.join("."));
    assert.ok(locs.includes("body.risk_tolerance") && locs.includes("body.amount"), locs.join(","));
  });

  test("InvalidJSON", async () => {
    await assert.rejects(client().request("POST", "/v1/teams/finance/ask", { rawBody: "{not json" }), InvalidJSON);
  });

  test("PayloadTooLarge", async () => {
    const err = await client().teams.finance.ask({ question: "x".repeat(300_000) }).catch((e) => e);
    assert.ok(err instanceof PayloadTooLarge);
    assert.equal(err.limitBytes, 256 * 1024);
  });

  test("BudgetExceeded is never retried", async () => {
    const { fetchImpl, requests } = counting();
    const err = await client({ apiKey: env.MA_TEST_POOR_KEY, fetch: fetchImpl })
      .teams.finance.analyzeInvestment({ riskTolerance: "high", amount: 10 })
      .catch((e) => e);
    assert.ok(err instanceof BudgetExceeded);
    assert.equal(requests.length, 1);
    assert.ok(err.resetAt instanceof Date && err.resetAt.getTime() > Date.now());
    assert.equal(err.window, "day");
    assert.equal(err.headers.get("x-should-retry"), "false");
  });

  test("RateLimited is retried, then thrown with retryAfter", async () => {
    const { fetchImpl, requests } = counting();
    const framework = client({ apiKey: env.MA_TEST_SLOW_KEY, fetch: fetchImpl, retry: { ...fast, maxRetryAfterMs: 1000 } });
    await framework.teams.sales.ask({ question: "the one request of this minute" });
    const err = await framework.teams.sales.ask({ question: "again" }).catch((e) => e);
    assert.ok(err instanceof RateLimited, String(err));
    assert.equal(requests.length, 1 + 3);
    const keys = new Set(requests.slice(1).map((r) => r.init.headers["idempotency-key"]));
    assert.equal(keys.size, 1);
    assert.ok(err.retryAfter > 1);
  });

  test("ServiceUnavailable is retried after Retry-After and then succeeds", async () => {
    await push("overloaded", "overloaded", "overloaded");
    const { fetchImpl, requests } = counting();
    const started = Date.now();
    const answer = await client({ fetch: fetchImpl }).teams.research.ask({ question: "news?" });
    assert.equal(answer.raw.retries, 1);
    assert.equal(requests.length, 2);
    assert.ok(Date.now() - started >= 1000, "waited Retry-After: 1");
  });

  test("ServiceUnavailable when retries are off", async () => {
    await push("overloaded", "overloaded", "overloaded");
    const err = await client({ maxRetries: 0 }).teams.research.ask({ question: "news?" }).catch((e) => e);
    assert.ok(err instanceof ServiceUnavailable);
    assert.equal(err.retryAfter, 1);
  });

  test("ModelError is not retried", async () => {
    await push("bad_request");
    const { fetchImpl, requests } = counting();
    await assert.rejects(client({ fetch: fetchImpl }).teams.strategy.ask({ question: "now?" }), ModelError);
    assert.equal(requests.length, 1);
  });

  test("GatewayTimeout past the server's deadline", async () => {
    await push("slow");
    await assert.rejects(client().teams.operations.ask({ question: "slow?" }), GatewayTimeout);
  });

  test("a retried idempotent call is charged once", async () => {
    let dropped = false;
    const { fetchImpl, requests } = counting(async (url, init) => {
      const res = await fetch(url, init);
      if (init.method === "POST" && !dropped) {
        dropped = true;
        await res.text();
        throw new TypeError("fetch failed: connection reset after the server answered");
      }
      return res;
    });
    const framework = client({ apiKey: env.MA_TEST_IDEM_KEY, fetch: fetchImpl });
    const out = await framework.teams.marketing.analyzeCampaign({ target: "developers", budget: 5000 });
    const posts = requests.filter((r) => r.init.method === "POST");
    assert.equal(posts.length, 2);
    assert.equal(posts[0].init.headers["idempotency-key"], posts[1].init.headers["idempotency-key"]);
    assert.ok(out.raw.replayed);
    assert.equal(out.raw.retries, 1);
    const usage = await framework.usage();
    assert.ok(Math.abs(usage.spentUsd.day - out.raw.usage.costUsd) < 1e-6, `${usage.spentUsd.day} vs ${out.raw.usage.costUsd}`);
  });

  test("connection errors are APIErrors under the root class", async () => {
    const err = await new MultiAgentFramework({ apiUrl: "http://127.0.0.1:9", retry: fast }).usage().catch((e) => e);
    assert.ok(err instanceof APIConnectionError && err instanceof APIError && err instanceof MultiAgentError, String(err));
  });

  test("stream of an operation: events as they happen, then done with the JSON answer's body", async () => {
    await fake("/_fake/reset");
    const stream = client().stream("finance", "analyze_investment", { riskTolerance: "low", amount: 1000 });
    const events = [];
    for await (const event of stream) events.push(event);
    const names = events.map((e) => e.event);
    assert.equal(names[0], "step.started");
    assert.deepEqual(names.slice(-2), ["step.completed", "done"]);
    assert.ok(names.includes("model.delta") && names.includes("usage"), names.join(","));
    const done = await stream.final();
    assert.equal(done.team, "finance");
    assert.equal(typeof done.output.expected_annual_return_low_percent, "number");
    assert.ok(done.usage.cost_usd > 0);
    assert.deepEqual(events.at(-2).data.output, done.output);
    assert.equal(stream.requestId, done.id);
  });

  test("stream of a run over two teams through the team helper and streamRun", async () => {
    await fake("/_fake/reset");
    const asked = await client().teams.get("customer-service").stream("ask", { question: "refunds?" }).final();
    assert.equal(typeof asked.output.answer, "string");
    const run = client().streamRun({ task: "Launch a budgeting app", teams: ["marketing", "finance"] });
    const names = [];
    for await (const event of run) names.push(event.event);
    assert.equal(names.at(-1), "done");
    assert.equal(names.filter((n) => n === "step.started").length >= 2, true, names.join(","));
    assert.equal(run.done.status, "succeeded");
    assert.ok(run.done.usage.cost_usd > 0);
  });

  test("an error event in a stream throws its typed error", async () => {
    const seen = [];
    const err = await (async () => {
      for await (const event of client({ apiKey: env.MA_TEST_POOR_KEY }).stream("finance", "ask", { question: "q" })) seen.push(event.event);
    })().catch((e) => e);
    assert.ok(err instanceof BudgetExceededError, String(err));
    assert.equal(err.status, 402);
    assert.match(err.message, /budget/i);
    assert.deepEqual(seen, ["step.started"]);
  });
});
