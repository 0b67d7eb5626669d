// Unit tests without a server: field-name mapping, error mapping, retry rules with a scripted fetch.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  APIConnectionError,
  APIError,
  APIStatusError,
  APITimeoutError,
  BudgetExceeded,
  BudgetExceededError,
  GatewayTimeout,
  GatewayTimeoutError,
  InvalidJSON,
  InvalidJSONError,
  ModelError,
  MultiAgentError,
  MultiAgentFramework,
  PayloadTooLarge,
  PayloadTooLargeError,
  RateLimitError,
  RateLimited,
  SSEDecoder,
  ServiceUnavailable,
  ServiceUnavailableError,
  ValidationError,
  errorFor,
  fromWire,
  shouldRetry,
  toWire,
} from "../dist/index.js";
import * as sdk from "../dist/index.js";

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
  const framework = new MultiAgentFramework({ apiUrl: "http://x", apiKey: "k", fetch, retry: { initialRetryDelayMs: 1, maxRetryDelayMs: 2, maxRetryAfterMs: 10 } });
  const err = await framework.teams.finance.ask({ question: "q" }).catch((e) => e);
  assert.ok(err instanceof RateLimited);
  assert.equal(err.retryAfter, 60);
  assert.equal(calls.length, 3);
});

test("validation errors carry the field list", async () => {
  const { fetch } = scriptedFetch([{ status: 422, body: problem(422, "validation-error", { errors: [{ loc: ["body", "amount"], msg: "x" }] }) }]);
  const err = await new MultiAgentFramework({ apiUrl: "http://x", apiKey: "k", fetch }).teams.finance.ask({ question: "q" }).catch((e) => e);
  assert.ok(err instanceof ValidationError);
  assert.deepEqual(err.errors[0].loc, ["body", "amount"]);
  assert.match(err.message, /\[body\.amount: x\]/);
});

test("the error hierarchy is the anthropic SDK's: connection and timeout errors are APIErrors", () => {
  assert.ok(new APITimeoutError("t") instanceof APIConnectionError);
  assert.ok(new APIConnectionError("c") instanceof APIError);
  assert.ok(new APIError("e") instanceof MultiAgentError);
  const status = errorFor(502, new Headers(), problem(502, "model-error"));
  assert.ok(status instanceof ModelError && status instanceof APIStatusError && status instanceof APIError);
  assert.equal(status.name, "ModelError");
  assert.equal(new APIConnectionError("c").status, undefined);
  // every exported error class is named ...Error; the 0.1 names are the same classes
  const classes = Object.entries(sdk).filter(([, v]) => typeof v === "function" && v.prototype instanceof Error);
  assert.ok(classes.length >= 20);
  for (const [exported, cls] of classes) assert.match(cls.name, /Error$/, exported);
  assert.equal(BudgetExceeded, BudgetExceededError);
  assert.equal(RateLimited, RateLimitError);
  assert.equal(ServiceUnavailable, ServiceUnavailableError);
  assert.equal(GatewayTimeout, GatewayTimeoutError);
  assert.equal(InvalidJSON, InvalidJSONError);
  assert.equal(PayloadTooLarge, PayloadTooLargeError);
});

test("a network failure is caught as APIError", async () => {
  const { fetch } = scriptedFetch([new TypeError("fetch failed")]);
  const err = await new MultiAgentFramework({ apiUrl: "http://x", apiKey: "k", fetch, maxRetries: 0 }).usage().catch((e) => e);
  assert.ok(err instanceof APIError && err instanceof APIConnectionError, String(err));
});

test("URL and key come from MULTIAGENT_API_URL / MULTIAGENT_API_KEY, else a clear error", () => {
  const saved = { url: process.env.MULTIAGENT_API_URL, key: process.env.MULTIAGENT_API_KEY };
  try {
    process.env.MULTIAGENT_API_URL = "http://from-env:1/";
    process.env.MULTIAGENT_API_KEY = "mak_env";
    const framework = new MultiAgentFramework();
    assert.equal(framework.apiUrl, "http://from-env:1");
    assert.equal(framework.apiKey, "mak_env");
    delete process.env.MULTIAGENT_API_KEY;
    assert.throws(() => new MultiAgentFramework(), (e) => e instanceof MultiAgentError && /MULTIAGENT_API_KEY/.test(e.message));
    delete process.env.MULTIAGENT_API_URL;
    assert.throws(() => new MultiAgentFramework({ apiKey: "k" }), (e) => e instanceof MultiAgentError && /MULTIAGENT_API_URL/.test(e.message));
    assert.throws(() => new MultiAgentFramework({ apiUrl: "localhost:8080", apiKey: "k" }), /apiUrl must be an http/);
  } finally {
    for (const [name, value] of [["MULTIAGENT_API_URL", saved.url], ["MULTIAGENT_API_KEY", saved.key]]) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
});

test("the SSE decoder: multi-line data, comments, ids", () => {
  const decoder = new SSEDecoder();
  const lines = [": keep-alive", "", "id: 1", "event: model.delta", "data: {\"a\":", "data: 1}", "", "data: plain", ""];
  const events = lines.map((l) => decoder.feed(l)).filter(Boolean);
  assert.deepEqual(events, [
    { event: "model.delta", data: { a: 1 }, id: "1" },
    { event: "message", data: "plain", id: "1" },
  ]);
});

const sse = (...events) => events.map(([name, data], i) => `id: ${i + 1}\nevent: ${name}\ndata: ${JSON.stringify(data)}\n\n`).join("");

function streamingFetch(answers) {
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url: String(url), init });
    const next = answers.shift();
    if (typeof next === "string") return new Response(next, { status: 200, headers: { "content-type": "text/event-stream", "x-request-id": "req_s" } });
    return new Response(JSON.stringify(next.body), { status: next.status, headers: next.headers ?? {} });
  };
  return { fetch, calls };
}

test("stream: camelCase input goes out as wire names, events come back until done", async () => {
  const { fetch, calls } = streamingFetch([sse(["step.started", { team: "finance" }], ["usage", { cost_usd: 0.1 }], ["done", okBody])]);
  const framework = new MultiAgentFramework({ apiUrl: "http://x", apiKey: "k", fetch });
  const stream = framework.stream("finance", "analyze_investment", { riskTolerance: "low", amount: 5 });
  assert.equal(calls.length, 0, "nothing is sent before iteration");
  const names = [];
  for await (const event of stream) names.push(event.event);
  assert.deepEqual(names, ["step.started", "usage", "done"]);
  assert.deepEqual(JSON.parse(calls[0].init.body), { risk_tolerance: "low", amount: 5 });
  assert.equal(calls[0].init.headers.accept, "text/event-stream");
  assert.ok(calls[0].init.headers["idempotency-key"]);
  assert.equal(stream.done.id, "req_1");
  assert.equal(stream.requestId, "req_s");
});

test("stream: a 503 before the stream is retried; an error event throws its typed error", async () => {
  const { fetch, calls } = streamingFetch([
    { status: 503, body: problem(503, "unavailable"), headers: { "retry-after": "0", "x-should-retry": "true" } },
    sse(["step.started", {}], ["error", problem(402, "budget-exceeded", { reset_at: "2030-01-01T00:00:00Z" })]),
  ]);
  const framework = new MultiAgentFramework({ apiUrl: "http://x", apiKey: "k", fetch });
  const seen = [];
  const err = await (async () => {
    for await (const event of framework.teams.finance.stream("ask", { question: "q" })) seen.push(event.event);
  })().catch((e) => e);
  assert.equal(calls.length, 2);
  assert.deepEqual(seen, ["step.started"]);
  assert.ok(err instanceof BudgetExceededError, String(err));
  assert.equal(err.status, 402);
  assert.equal(err.resetAt.getUTCFullYear(), 2030);
});

test("stream: an end before done is an APIConnectionError; final() returns the done body", async () => {
  const { fetch } = streamingFetch([sse(["step.started", {}]), sse(["done", { id: "run_1", status: "succeeded" }])]);
  const framework = new MultiAgentFramework({ apiUrl: "http://x", apiKey: "k", fetch });
  await assert.rejects(framework.stream("finance", "ask", { question: "q" }).final(), APIConnectionError);
  assert.deepEqual(await framework.streamRun({ task: "t" }).final(), { id: "run_1", status: "succeeded" });
});
