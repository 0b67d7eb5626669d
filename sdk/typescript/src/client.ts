/**
 * `MultiAgentFramework`: the client. Zero runtime dependencies: Node 20's `fetch`.
 *
 * Retry rules (the Anthropic and OpenAI SDK conventions the server follows):
 * 1. `x-should-retry: true|false` from the server decides when present;
 * 2. 402 `budget-exceeded` is never retried;
 * 3. otherwise network errors, timeouts, 408, 409, 429 and 503 are retried (500, 502 and 504
 *    are not: the model may already have been paid for);
 * 4. the wait is `retry-after-ms` / `Retry-After` when at most `maxRetryAfterMs`, else
 *    exponential backoff with up to 25 % jitter.
 * Every POST carries one `Idempotency-Key` per logical call, reused by its retries, so a
 * retried call is charged once.
 */

import { APIConnectionError, APITimeoutError, MultiAgentError, errorFor, retryAfterSeconds } from "./errors.js";
import { FIELD_MAPS, Teams } from "./generated.js";
import { EventStream, type StreamConnection } from "./streaming.js";
import type { CallOptions, RawResponse, Requester, TeamInfo, WithRaw } from "./team.js";

export const VERSION = "0.1.0";

export interface RetryPolicy {
  maxRetries: number;
  initialRetryDelayMs: number;
  maxRetryDelayMs: number;
  /** A server `Retry-After` longer than this is replaced by the backoff. */
  maxRetryAfterMs: number;
}

export interface ClientOptions {
  /** Default: `MULTIAGENT_API_URL` (an error when neither is set). */
  apiUrl?: string;
  /** Default: `MULTIAGENT_API_KEY` (an error when neither is set). */
  apiKey?: string;
  /** Per-attempt timeout (default 300 000 ms). */
  timeoutMs?: number;
  /** Default 2. */
  maxRetries?: number;
  retry?: Partial<RetryPolicy>;
  defaultHeaders?: Record<string, string>;
  /** A `fetch` to use instead of the global one (tests, proxies). */
  fetch?: typeof fetch;
}

export interface RequestOptions {
  /** A JSON body (serialised). */
  body?: unknown;
  /** A raw body, sent as is. */
  rawBody?: string | Uint8Array;
  query?: Record<string, string | number | undefined>;
  headers?: Record<string, string>;
  idempotencyKey?: string;
  timeoutMs?: number;
  maxRetries?: number;
  signal?: AbortSignal;
}

export interface APIResponse<T = unknown> {
  status: number;
  headers: Headers;
  data: T;
  retries: number;
  idempotencyKey: string | null;
}

export interface UsageRow {
  team?: string;
  day?: string;
  model?: string;
  calls: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

export interface UsageReport {
  tenantId: string;
  spentUsd: { day: number; month: number };
  reservedUsd?: Record<string, number>;
  limits: Record<string, unknown>;
  byTeam: UsageRow[];
  byDay?: UsageRow[];
  byModel?: UsageRow[];
}

export interface AuditEvent {
  at: string;
  type: string;
  requestId: string;
  team?: string;
  operation?: string;
  status?: number;
  detail?: Record<string, unknown>;
}

export interface AuditPage {
  events: AuditEvent[];
  next?: string;
}

export interface Run {
  id: string;
  status: string;
  plan?: unknown;
  steps?: Array<Record<string, unknown>>;
  answer?: string | null;
  usage?: { inputTokens: number; outputTokens: number; costUsd: number };
}

const RETRYABLE = new Set([408, 409, 429, 503]);
const env = (name: string): string | undefined =>
  (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[name];

export const API_URL_ENV = "MULTIAGENT_API_URL";
export const API_KEY_ENV = "MULTIAGENT_API_KEY";

/** `apiUrl`, else `MULTIAGENT_API_URL`; a clear error when neither gives an http(s) URL. */
export function resolveApiUrl(apiUrl?: string): string {
  const url = (apiUrl || env(API_URL_ENV) || "").trim();
  if (!url) {
    throw new MultiAgentError(
      `no API URL: pass { apiUrl } to MultiAgentFramework or set ${API_URL_ENV} (e.g. ${API_URL_ENV}=http://127.0.0.1:8080 for \`multiagent serve\`)`,
    );
  }
  if (!/^https?:\/\//i.test(url)) throw new MultiAgentError(`${apiUrl ? "apiUrl" : API_URL_ENV} must be an http:// or https:// URL, got "${url}"`);
  return url.replace(/\/+$/, "");
}

/** `apiKey`, else `MULTIAGENT_API_KEY`; a clear error when neither gives one. */
export function resolveApiKey(apiKey?: string): string {
  const key = (apiKey || env(API_KEY_ENV) || "").trim();
  if (!key) {
    throw new MultiAgentError(`no API key: pass { apiKey } to MultiAgentFramework or set ${API_KEY_ENV} (\`multiagent tenants create NAME\` prints one)`);
  }
  return key;
}

const pascal = (name: string): string => name.replace(/(^|[-_])([a-z0-9])/g, (_m, _s, c: string) => c.toUpperCase());

/** Options of a streamed call: those of any call; `timeoutMs` is the longest quiet gap (the server sends keep-alives). */
export type StreamOptions = CallOptions;

const camel = (name: string): string => name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());

/** Deep snake_case -> camelCase of object keys (not of the values under `skip` keys). */
export function camelizeKeys(value: unknown, skip: ReadonlySet<string> = new Set()): unknown {
  if (Array.isArray(value)) return value.map((v) => camelizeKeys(v, skip));
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([k, v]) => [camel(k), skip.has(k) ? v : camelizeKeys(v, skip)]),
    );
  }
  return value;
}

type FieldMap = Record<string, readonly [string, string?]>;
const reverseMaps = new Map<string, FieldMap>();

function reverse(model: string): FieldMap | undefined {
  const forward = FIELD_MAPS[model];
  if (!forward) return undefined;
  let map = reverseMaps.get(model);
  if (!map) {
    map = Object.fromEntries(Object.entries(forward).map(([camelName, [wire, ref]]) => [wire, [camelName, ref] as const]));
    reverseMaps.set(model, map);
  }
  return map;
}

function convert(value: unknown, model: string | undefined, direction: "toWire" | "fromWire"): unknown {
  if (Array.isArray(value)) return value.map((v) => convert(v, model, direction));
  if (!model || value === null || typeof value !== "object") return value;
  const map = direction === "toWire" ? FIELD_MAPS[model] : reverse(model);
  if (!map) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    const entry = map[key];
    if (entry) out[entry[0]] = convert(v, entry[1], direction);
    else out[key] = v; // unknown fields pass through unchanged (wire names already, or a newer server's)
  }
  return out;
}

/** camelCase input -> wire (snake_case) body, following the generated field maps. */
export const toWire = (value: unknown, model: string): unknown => convert(value, model, "toWire");
/** wire output -> camelCase, following the generated field maps. */
export const fromWire = (value: unknown, model: string): unknown => convert(value, model, "fromWire");

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => (clearTimeout(timer), reject(signal.reason)), { once: true });
  });

function randomKey(): string {
  return "sdk_" + globalThis.crypto.randomUUID().replace(/-/g, "");
}

function num(raw: string | null): number | null {
  if (raw === null || raw === "" || Number.isNaN(Number(raw))) return null;
  return Number(raw);
}

export class MultiAgentFramework implements Requester {
  readonly apiUrl: string;
  readonly apiKey: string;
  readonly timeoutMs: number;
  readonly retry: RetryPolicy;
  readonly teams: Teams;
  private readonly defaultHeaders: Record<string, string>;
  private readonly fetchImpl: typeof fetch;

  constructor(options: ClientOptions = {}) {
    this.apiUrl = resolveApiUrl(options.apiUrl);
    this.apiKey = resolveApiKey(options.apiKey);
    this.timeoutMs = options.timeoutMs ?? 300_000;
    this.retry = {
      maxRetries: 2,
      initialRetryDelayMs: 500,
      maxRetryDelayMs: 8_000,
      maxRetryAfterMs: 60_000,
      ...options.retry,
      ...(options.maxRetries !== undefined ? { maxRetries: options.maxRetries } : {}),
    };
    this.defaultHeaders = options.defaultHeaders ?? {};
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.teams = new Teams(this);
  }

  /** `GET /v1/usage`: the calling tenant's spend and limits. */
  async usage(): Promise<UsageReport> {
    const res = await this.request("GET", "/v1/usage");
    return camelizeKeys(res.data, new Set(["team_daily_usd", "reserved_usd"])) as UsageReport;
  }

  /** `GET /v1/audit`: the calling tenant's audit events, newest first. */
  async audit(params: { limit?: number; before?: string } = {}): Promise<AuditPage> {
    const res = await this.request("GET", "/v1/audit", { query: params });
    return camelizeKeys(res.data, new Set(["detail"])) as AuditPage;
  }

  /** `POST /v1/runs`: an orchestrated multi-team run. */
  async createRun(run: { task: string; teams?: string[]; maxUsd?: number; deadlineS?: number }, options: CallOptions = {}): Promise<Run> {
    const body = { task: run.task, teams: run.teams, max_usd: run.maxUsd, deadline_s: run.deadlineS };
    const res = await this.request("POST", "/v1/runs", { body, ...options });
    return camelizeKeys(res.data, new Set(["plan", "output"])) as Run;
  }

  /** `GET /v1/runs/{id}`. */
  async getRun(id: string): Promise<Run> {
    return camelizeKeys((await this.request("GET", `/v1/runs/${encodeURIComponent(id)}`)).data, new Set(["plan", "output"])) as Run;
  }

  /** `DELETE /v1/runs/{id}`. */
  async cancelRun(id: string): Promise<Run> {
    return camelizeKeys((await this.request("DELETE", `/v1/runs/${encodeURIComponent(id)}`)).data, new Set(["plan", "output"])) as Run;
  }

  /**
   * `POST /v1/teams/{team}/{operation}` as Server-Sent Events. The input may use camelCase (converted
   * with the operation's generated field map) or wire names. The request is sent when iteration starts;
   * retries apply until the stream begins; an `error` event is thrown as its typed error.
   */
  stream(team: string, operation: string, input: Record<string, unknown> = {}, options: StreamOptions = {}): EventStream {
    const model = `${pascal(team)}${pascal(operation)}Input`;
    const body = FIELD_MAPS[model] ? toWire(input, model) : input;
    const headers: Record<string, string> = { ...options.headers };
    if (options.sessionId) headers["x-session-id"] = options.sessionId;
    return new EventStream(() =>
      this.openStream(`/v1/teams/${encodeURIComponent(team)}/${encodeURIComponent(operation)}`, body, { ...options, headers }),
    );
  }

  /** `POST /v1/runs` as Server-Sent Events: every step's events, then `done` with the run (wire names). */
  streamRun(run: { task: string; teams?: string[]; maxUsd?: number; deadlineS?: number }, options: StreamOptions = {}): EventStream {
    const body = { task: run.task, teams: run.teams, max_usd: run.maxUsd, deadline_s: run.deadlineS };
    const headers: Record<string, string> = { ...options.headers };
    if (options.sessionId) headers["x-session-id"] = options.sessionId;
    return new EventStream(() => this.openStream("/v1/runs", body, { ...options, headers }));
  }

  private async openStream(path: string, body: unknown, options: StreamOptions): Promise<StreamConnection> {
    const sent = await this.send("POST", path, {
      body,
      headers: { ...options.headers, accept: "text/event-stream" },
      idempotencyKey: options.idempotencyKey,
      timeoutMs: options.timeoutMs,
      maxRetries: options.maxRetries,
      signal: options.signal,
    }, true);
    return {
      response: sent.response,
      retries: sent.retries,
      abort: sent.abort,
      idleTimeoutMs: options.timeoutMs ?? this.timeoutMs,
      url: this.apiUrl + path,
    };
  }

  async listTeams(): Promise<TeamInfo[]> {
    const res = await this.request<{ teams: unknown[] }>("GET", "/v1/teams");
    return res.data.teams.map((t) => camelizeKeys(t, new Set(["input_schema", "output_schema"])) as TeamInfo);
  }

  async retrieveTeam(name: string): Promise<TeamInfo> {
    const res = await this.request("GET", `/v1/teams/${encodeURIComponent(name)}`);
    return camelizeKeys(res.data, new Set(["input_schema", "output_schema"])) as TeamInfo;
  }

  async invokeOperation<T>(
    team: string,
    operation: string,
    input: unknown,
    inputModel: string | null,
    outputModel: string | null,
    options: CallOptions = {},
  ): Promise<WithRaw<T>> {
    const body = inputModel ? toWire(input, inputModel) : input;
    const extra: Record<string, string> = { ...options.headers };
    if (options.sessionId) extra["x-session-id"] = options.sessionId;
    const res = await this.request<Record<string, unknown>>("POST", `/v1/teams/${encodeURIComponent(team)}/${encodeURIComponent(operation)}`, {
      body,
      headers: extra,
      idempotencyKey: options.idempotencyKey,
      timeoutMs: options.timeoutMs,
      maxRetries: options.maxRetries,
      signal: options.signal,
    });
    const data = res.data;
    const output = (outputModel ? fromWire(data.output, outputModel) : data.output) as Record<string, unknown>;
    const usage = (data.usage ?? {}) as Record<string, number>;
    const raw: RawResponse = {
      status: res.status,
      headers: res.headers,
      body: data,
      id: String(data.id ?? ""),
      requestId: res.headers.get("x-request-id") ?? (data.id as string | undefined) ?? null,
      team: String(data.team ?? team),
      operation: String(data.operation ?? operation),
      model: String(data.model ?? ""),
      usage: { inputTokens: usage.input_tokens ?? 0, outputTokens: usage.output_tokens ?? 0, costUsd: usage.cost_usd ?? 0 },
      durationMs: Number(data.duration_ms ?? 0),
      retries: res.retries,
      idempotencyKey: res.idempotencyKey,
      replayed: res.headers.get("idempotent-replayed") === "true",
      budgetRemainingUsd: num(res.headers.get("x-budget-remaining-usd")),
      ratelimitRemainingRequests: num(res.headers.get("x-ratelimit-remaining-requests")),
      ratelimitRemainingTokens: num(res.headers.get("x-ratelimit-remaining-tokens")),
    };
    Object.defineProperty(output, "raw", { value: raw, enumerable: false });
    return output as WithRaw<T>;
  }

  /** Any request with the client's auth, retries and typed errors; resolves with the 2xx answer. */
  async request<T = unknown>(method: string, path: string, init: RequestOptions = {}): Promise<APIResponse<T>> {
    const sent = await this.send(method, path, init, false);
    return { status: sent.response.status, headers: sent.response.headers, data: sent.data as T, retries: sent.retries, idempotencyKey: sent.idempotencyKey };
  }

  /** Sends with retries; a 2xx answer is read (and parsed) unless `stream`, then it is handed back unread. */
  private async send(
    method: string,
    path: string,
    init: RequestOptions,
    stream: boolean,
  ): Promise<{ response: Response; data: unknown; retries: number; idempotencyKey: string | null; abort: (reason: unknown) => void }> {
    method = method.toUpperCase();
    const url = new URL(this.apiUrl + path);
    for (const [k, v] of Object.entries(init.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = {
      accept: "application/json",
      "user-agent": `multiagent-sdk-typescript/${VERSION}`,
      ...this.defaultHeaders,
    };
    headers.authorization = `Bearer ${this.apiKey}`;
    let idempotencyKey: string | null = null;
    if (method === "POST") headers["idempotency-key"] = idempotencyKey = init.idempotencyKey ?? randomKey();
    let body: string | Uint8Array | undefined;
    if (init.rawBody !== undefined) body = init.rawBody;
    else if (init.body !== undefined) body = JSON.stringify(init.body);
    if (body !== undefined) headers["content-type"] = "application/json";
    Object.assign(headers, init.headers);
    const maxRetries = init.maxRetries ?? this.retry.maxRetries;
    const timeoutMs = init.timeoutMs ?? this.timeoutMs;

    for (let retries = 0; ; retries++) {
      const controller = new AbortController();
      const onAbort = () => controller.abort(init.signal?.reason);
      init.signal?.addEventListener("abort", onAbort, { once: true });
      const timer = setTimeout(() => controller.abort(new APITimeoutError(`no answer from ${url} within ${timeoutMs} ms`)), timeoutMs);
      const done = () => {
        clearTimeout(timer);
        init.signal?.removeEventListener("abort", onAbort);
      };
      let response: Response;
      try {
        response = await this.fetchImpl(url, { method, headers, body: body as BodyInit | undefined, signal: controller.signal });
      } catch (err) {
        done();
        if (init.signal?.aborted) throw init.signal.reason;
        const timedOut = controller.signal.reason instanceof APITimeoutError;
        const error = timedOut
          ? (controller.signal.reason as APITimeoutError)
          : new APIConnectionError(`cannot reach ${url}: ${(err as Error)?.message ?? err}`, { cause: err });
        if (retries >= maxRetries) throw error;
        await sleep(this.retryDelayMs(retries, null), init.signal);
        continue;
      }
      if (stream && response.status < 400) {
        clearTimeout(timer); // the stream has its own idle timeout; the caller's signal still cancels it
        return { response, data: null, retries, idempotencyKey, abort: (reason) => controller.abort(reason) };
      }
      let text: string;
      try {
        text = await response.text();
      } catch (err) {
        done();
        if (init.signal?.aborted) throw init.signal.reason;
        const cut = controller.signal.reason instanceof APITimeoutError
          ? (controller.signal.reason as APITimeoutError)
          : new APIConnectionError(`the answer from ${url} was cut: ${err}`, { cause: err });
        if (retries >= maxRetries) throw cut;
        await sleep(this.retryDelayMs(retries, null), init.signal);
        continue;
      }
      done();
      let data: unknown = text;
      try {
        data = text ? JSON.parse(text) : null;
      } catch {
        /* not JSON: keep the text */
      }
      if (response.status >= 400) {
        if (retries < maxRetries && shouldRetry(response)) {
          await sleep(this.retryDelayMs(retries, response.headers), init.signal);
          continue;
        }
        throw errorFor(response.status, response.headers, data);
      }
      return { response, data, retries, idempotencyKey, abort: (reason) => controller.abort(reason) };
    }
  }

  /** Milliseconds to wait before retry number `retriesTaken + 1`. */
  retryDelayMs(retriesTaken: number, headers: Headers | null): number {
    if (headers) {
      const hinted = retryAfterSeconds(headers);
      if (hinted !== null && hinted >= 0 && hinted * 1000 <= this.retry.maxRetryAfterMs) return hinted * 1000;
    }
    const delay = Math.min(this.retry.initialRetryDelayMs * 2 ** retriesTaken, this.retry.maxRetryDelayMs);
    return delay * (1 - 0.25 * Math.random());
  }
}

/** Whether an error answer may be retried (rules 1-3). */
export function shouldRetry(response: { status: number; headers: Headers }): boolean {
  const hint = (response.headers.get("x-should-retry") ?? "").toLowerCase();
  if (hint === "true") return true;
  if (hint === "false" || response.status === 402) return false;
  return RETRYABLE.has(response.status);
}
