/**
 * Every error the SDK throws, under one root, shaped like the `@anthropic-ai/sdk` errors.
 *
 *     MultiAgentError                          also: no API key / URL given to the client
 *     └── APIError                             every failure of a request
 *         ├── APIConnectionError               the server could not be reached (retried)
 *         │   └── APITimeoutError              no answer within the timeout (retried)
 *         └── APIStatusError                   the server answered with a problem (RFC 9457), or a
 *             │                                stream's `error` event carried one
 *             ├── BadRequestError              400
 *             │   └── InvalidJSONError         400 invalid-json
 *             ├── AuthenticationError          401 unauthenticated
 *             ├── BudgetExceededError          402 budget-exceeded   (resetAt, limitUsd, spentUsd, window)
 *             ├── PermissionDeniedError        403 forbidden
 *             ├── NotFoundError                404 not-found
 *             ├── ConflictError                409 conflict          (retried)
 *             ├── PayloadTooLargeError         413 payload-too-large (limitBytes)
 *             ├── ValidationError              422 validation-error  (errors; the message names the fields)
 *             ├── RateLimitError               429 rate-limited      (retryAfter seconds, limit; retried)
 *             └── InternalServerError          5xx
 *                 ├── ModelError               502 model-error
 *                 ├── ServiceUnavailableError  503 unavailable       (retryAfter seconds; retried)
 *                 └── GatewayTimeoutError      504 timeout
 *
 * The names of 0.1 (`BudgetExceeded`, `RateLimited`, `ServiceUnavailable`, `GatewayTimeout`,
 * `InvalidJSON`, `PayloadTooLarge`) remain as aliases of the same classes.
 */

export type Problem = {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  request_id?: string;
  [member: string]: unknown;
};

export class MultiAgentError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Every failure of a request. `status` is set when the server answered (see `APIStatusError`). */
export class APIError extends MultiAgentError {
  readonly status: number | undefined;
  readonly headers: Headers | undefined;
  readonly requestId: string | null;

  constructor(message: string, options: { cause?: unknown; status?: number; headers?: Headers; requestId?: string | null } = {}) {
    super(message, { cause: options.cause });
    this.status = options.status;
    this.headers = options.headers;
    this.requestId = options.requestId ?? null;
  }
}

export class APIConnectionError extends APIError {
  declare readonly status: undefined;

  constructor(message = "connection error", options: { cause?: unknown } = {}) {
    super(message, options);
  }
}

export class APITimeoutError extends APIConnectionError {}

export interface FieldError {
  loc: Array<string | number>;
  msg: string;
}

/** ` [body.amount: Input should be greater than 0; ...]` (empty without errors). */
export function describeFieldErrors(errors: FieldError[], limit = 8): string {
  const parts = errors.slice(0, limit).map((e) => `${Array.isArray(e.loc) && e.loc.length ? e.loc.join(".") : "body"}: ${e.msg || "invalid"}`);
  if (errors.length > limit) parts.push(`... ${errors.length - limit} more`);
  return parts.length ? ` [${parts.join("; ")}]` : "";
}

/** The server answered with an error status and a problem+json body (or a stream's `error` event did). */
export class APIStatusError extends APIError {
  declare readonly status: number;
  declare readonly headers: Headers;
  readonly type: string;
  readonly title: string;
  readonly detail: string;
  readonly problem: Problem;

  constructor(status: number, headers: Headers, problem: Problem) {
    const requestId = (problem.request_id as string | undefined) ?? headers.get("x-request-id");
    const title = problem.title ?? "error";
    const detail = problem.detail ?? "";
    const fields = Array.isArray(problem.errors) ? describeFieldErrors(problem.errors as FieldError[]) : "";
    super(`${status} ${title}${detail ? `: ${detail}` : ""}${fields}${requestId ? ` (request id ${requestId})` : ""}`, {
      status,
      headers,
      requestId,
    });
    this.problem = problem;
    this.type = problem.type ?? "about:blank";
    this.title = title;
    this.detail = detail;
  }

  /** The problem type's last segment, e.g. `budget-exceeded`. */
  get slug(): string {
    return this.type.replace(/\/+$/, "").split("/").pop() ?? "";
  }
}

export class BadRequestError extends APIStatusError {}
export class InvalidJSONError extends BadRequestError {}
export class AuthenticationError extends APIStatusError {}

export class BudgetExceededError extends APIStatusError {
  readonly limitUsd: number | null;
  readonly spentUsd: number | null;
  readonly window: string | null;
  /** When the refusing window resets; retrying before then cannot help. */
  readonly resetAt: Date | null;

  constructor(status: number, headers: Headers, problem: Problem) {
    super(status, headers, problem);
    this.limitUsd = typeof problem.limit_usd === "number" ? problem.limit_usd : null;
    this.spentUsd = typeof problem.spent_usd === "number" ? problem.spent_usd : null;
    this.window = typeof problem.window === "string" ? problem.window : null;
    const reset = typeof problem.reset_at === "string" ? new Date(problem.reset_at) : null;
    this.resetAt = reset && !Number.isNaN(reset.getTime()) ? reset : null;
  }
}

export class PermissionDeniedError extends APIStatusError {}
export class NotFoundError extends APIStatusError {}
export class ConflictError extends APIStatusError {}

export class PayloadTooLargeError extends APIStatusError {
  readonly limitBytes: number | null;

  constructor(status: number, headers: Headers, problem: Problem) {
    super(status, headers, problem);
    this.limitBytes = typeof problem.limit_bytes === "number" ? problem.limit_bytes : null;
  }
}

export class ValidationError extends APIStatusError {
  readonly errors: FieldError[];

  constructor(status: number, headers: Headers, problem: Problem) {
    super(status, headers, problem);
    this.errors = Array.isArray(problem.errors) ? (problem.errors as FieldError[]) : [];
  }
}

/** Seconds from `retry-after-ms` / `Retry-After` (seconds or an HTTP date), else the problem's `retry_after_s`. */
export function retryAfterSeconds(headers: Headers, problem: Problem = {}): number | null {
  const ms = headers.get("retry-after-ms");
  if (ms && !Number.isNaN(Number(ms))) return Number(ms) / 1000;
  const raw = headers.get("retry-after");
  if (raw) {
    if (!Number.isNaN(Number(raw))) return Number(raw);
    const date = Date.parse(raw);
    if (!Number.isNaN(date)) return Math.max(0, (date - Date.now()) / 1000);
  }
  return typeof problem.retry_after_s === "number" ? problem.retry_after_s : null;
}

export class RateLimitError extends APIStatusError {
  /** Seconds to wait before retrying. */
  readonly retryAfter: number | null;
  readonly limit: string | null;

  constructor(status: number, headers: Headers, problem: Problem) {
    super(status, headers, problem);
    this.retryAfter = retryAfterSeconds(headers, problem);
    this.limit = typeof problem.limit === "string" ? problem.limit : null;
  }
}

export class InternalServerError extends APIStatusError {}
export class ModelError extends InternalServerError {}

export class ServiceUnavailableError extends InternalServerError {
  /** Seconds to wait before retrying. */
  readonly retryAfter: number | null;

  constructor(status: number, headers: Headers, problem: Problem) {
    super(status, headers, problem);
    this.retryAfter = retryAfterSeconds(headers, problem);
  }
}

export class GatewayTimeoutError extends InternalServerError {}

// the names of 0.1, kept as aliases of the same classes (each name both the class and its type)
export {
  InvalidJSONError as InvalidJSON,
  BudgetExceededError as BudgetExceeded,
  PayloadTooLargeError as PayloadTooLarge,
  RateLimitError as RateLimited,
  ServiceUnavailableError as ServiceUnavailable,
  GatewayTimeoutError as GatewayTimeout,
};

type ErrorClass = new (status: number, headers: Headers, problem: Problem) => APIStatusError;

const BY_SLUG: Record<string, ErrorClass> = {
  "invalid-json": InvalidJSONError,
  unauthenticated: AuthenticationError,
  "budget-exceeded": BudgetExceededError,
  forbidden: PermissionDeniedError,
  "not-found": NotFoundError,
  conflict: ConflictError,
  "payload-too-large": PayloadTooLargeError,
  "validation-error": ValidationError,
  "rate-limited": RateLimitError,
  "model-error": ModelError,
  unavailable: ServiceUnavailableError,
  timeout: GatewayTimeoutError,
};

const BY_STATUS: Record<number, ErrorClass> = {
  400: BadRequestError,
  401: AuthenticationError,
  402: BudgetExceededError,
  403: PermissionDeniedError,
  404: NotFoundError,
  409: ConflictError,
  413: PayloadTooLargeError,
  422: ValidationError,
  429: RateLimitError,
  502: ModelError,
  503: ServiceUnavailableError,
  504: GatewayTimeoutError,
};

/** The typed error for an error answer (problem type first, then status). */
export function errorFor(status: number, headers: Headers, body: unknown): APIStatusError {
  const problem: Problem =
    body && typeof body === "object" && !Array.isArray(body) ? (body as Problem) : { detail: String(body ?? "").slice(0, 500) };
  const slug = String(problem.type ?? "").replace(/\/+$/, "").split("/").pop() ?? "";
  const cls = BY_SLUG[slug] ?? BY_STATUS[status] ?? (status >= 500 ? InternalServerError : APIStatusError);
  return new cls(status, headers, problem);
}

/** The typed error for a stream's `error` event (its status is the problem's). */
export function errorFromProblem(problem: Problem, headers: Headers = new Headers()): APIStatusError {
  return errorFor(typeof problem.status === "number" ? problem.status : 0, headers, problem);
}
