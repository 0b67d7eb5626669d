// Unit tests without a server: field-name mapping, error mapping, retry rules with a scripted fetch.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  BudgetExceeded,
  MultiAgentFramework,
  RateLimited,
  ServiceUnavailable,
  ValidationError,
  errorFor,
  fromWire,
  shouldRetry,
  toWire,
} from "../dist/index.js";

const problem = (status, slug, extra = {}) => ({ type: `/problems/${slug}`, title: slug, status, detail: slug, ...extra });

function scriptedFetch(answers) {
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url: String(url), init });
    const next = answers.shift();
    if (next instanceof Error) throw next;
    return new Response(JSON.stringify(next.body), { status: next.status, headers: next.headers ?? {} });
  };
  return { fetch, calls };
}

const okBody = {
  id: "req_1",
  team: "finance",
  operation: "analyze_investment",
  model: "offline",
  duration_ms: 3,
  usage: { input_tokens: 1, output_tokens: 2, cost_usd: 0 },
  output: {
    summary: "s",
    allocation: [{ asset_class: "bonds", percent: 100, amount: 1, rationale: "r" }],
    expected_annual_return_low_percent: 1,
  },
};

test("camelCase input becomes wire names, nested models included, and back", () => {
  const wire = toWire({ riskTolerance: "low", amount: 5, horizonYears: 3 }, "FinanceAnalyzeInvestmentInput");
  assert.deepEqual(wire, { risk_tolerance: "low", amount: 5, horizon_years: 3 });
  const out = fromWire(okBody.output, "FinanceAnalyzeInvestmentOutput");
  assert.equal(out.expectedAnnualReturnLowPercent, 1);
  assert.equal(out.allocation[0].assetClass, "bonds");
});

test("errors map by problem type", () => {
  const headers = new Headers({ "retry-after": "7" });
  assert.ok(errorFor(402, headers, problem(402, "budget-exceeded", { reset_at: "2030-01-01T00:00:00Z" })) instanceof BudgetExceeded);
  assert.equal(errorFor(429, headers, problem(429, "rate-limited")).retryAfter, 7);
  assert.deepEqual(errorFor(422, headers, problem(422, "validation-error", { errors: [{ loc: ["body"], msg: "m" }] })).errors, [{ loc: ["body"], msg: "m" }]);
  assert.ok(errorFor(503, headers, "<html>") instanceof ServiceUnavailable);
});

test("retry rules: x-should-retry wins, 402 never, 429/503 yes, 502 no", () => {
  const h = (o) => new Headers(o);
  assert.equal(shouldRetry({ status: 402, headers: h({}) }), false);
  assert.equal(shouldRetry({ status: 503, headers: h({}) }), true);
  assert.equal(shouldRetry({ status: 429, headers: h({ "x-should-retry": "false" }) }), false);
  assert.equal(shouldRetry({ status: 502, headers: h({}) }), false);
  assert.equal(shouldRetry({ status: 500, headers: h({ "x-should-retry": "true" }) }), true);
});

test("a 503 is retried with the same idempotency key and Retry-After honoured", async () => {
  const { fetch, calls } = scriptedFetch([
    { status: 503, body: problem(503, "unavailable"), headers: { "retry-after": "0.05", "x-should-retry": "true" } },
    { status: 200, body: okBody },
  ]);
  const framework = new MultiAgentFramework({ apiUrl: "http://x", apiKey: "k", fetch });
  const out = await framework.teams.finance.analyzeInvestment({ riskTolerance: "low", amount: 1 });
  assert.equal(calls.length, 2);
  assert.equal(out.raw.retries, 1);
  assert.equal(calls[0].init.headers["idempotency-key"], calls[1].init.headers["idempotency-key"]);
  assert.equal(JSON.parse(calls[0].init.body).risk_tolerance, "low");
  assert.equal(JSON.stringify(out).includes("raw"), false);
});

test("a 402 is never retried; network errors are", async () => {
  const { fetch, calls } = scriptedFetch([
    new TypeError("fetch failed"),
    { status: 402, body: problem(402, "budget-exceeded"), headers: { "x-should-retry": "false" } },
  ]);
  const framework = new MultiAgentFramework({ apiUrl: "http://x", apiKey: "k", fetch, retry: { initialRetryDelayMs: 1 } });
  await assert.rejects(framework.teams.finance.ask({ question: "q" }), BudgetExceeded);
  assert.equal(calls.length, 2);
});

test("a 429 beyond maxRetryAfterMs falls back to backoff and gives up after maxRetries", async () => {
  const limited = () => ({ status: 429, body: problem(429, "rate-limited"), headers: { "retry-after": "60", "x-should-retry": "true" } });
  const { fetch, calls } = scriptedFetch([limited(), limited(), limited()]);
  const framework = new MultiAgentFramework({ apiUrl: "http://x", fetch, retry: { initialRetryDelayMs: 1, maxRetryDelayMs: 2, maxRetryAfterMs: 10 } });
  const err = await framework.teams.finance.ask({ question: "q" }).catch((e) => e);
  assert.ok(err instanceof RateLimited);
  assert.equal(err.retryAfter, 60);
  assert.equal(calls.length, 3);
});

test("validation errors carry the field list", async () => {
  const { fetch } = scriptedFetch([{ status: 422, body: problem(422, "validation-error", { errors: [{ loc: ["body", "amount"], msg: "x" }] }) }]);
  const err = await new MultiAgentFramework({ apiUrl: "http://x", fetch }).teams.finance.ask({ question: "q" }).catch((e) => e);
  assert.ok(err instanceof ValidationError);
  assert.deepEqual(err.errors[0].loc, ["body", "amount"]);
});
