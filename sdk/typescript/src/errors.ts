/**
 * Every error the SDK throws, under one root.
 *
 *     MultiAgentError
 *     ├── APIConnectionError               the server could not be reached (retried)
 *     │   └── APITimeoutError              no answer within the timeout (retried)
 *     └── APIError                         the server answered with a problem (RFC 9457)
 *         ├── BadRequestError              400
 *         │   └── InvalidJSON              400 invalid-json
 *         ├── AuthenticationError          401 unauthenticated
 *         ├── BudgetExceeded               402 budget-exceeded   (resetAt, limitUsd, spentUsd, window)
 *         ├── PermissionDeniedError        403 forbidden
 *         ├── NotFoundError                404 not-found
 *         ├── ConflictError                409 conflict          (retried)
 *         ├── PayloadTooLarge              413 payload-too-large (limitBytes)
 *         ├── ValidationError              422 validation-error  (errors)
 *         ├── RateLimited                  429 rate-limited      (retryAfter seconds, limit; retried)
 *         └── InternalServerError          5xx
 *             ├── ModelError               502 model-error
 *             ├── ServiceUnavailable       503 unavailable       (retryAfter seconds; retried)
 *             └── GatewayTimeout           504 timeout
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

export class APIConnectionError extends MultiAgentError {}

export class APITimeoutError extends APIConnectionError {}

export class APIError extends MultiAgentError {
  readonly status: number;
  readonly requestId: string | null;
  readonly type: string;
  readonly title: string;
  readonly detail: string;
  readonly problem: Problem;
  readonly headers: Headers;

  constructor(status: number, headers: Headers, problem: Problem) {
    const requestId = (problem.request_id as string | undefined) ?? headers.get("x-request-id");
    const title = problem.title ?? "error";
    const detail = problem.detail ?? "";
    super(`${status} ${title}${detail ? `: ${detail}` : ""}${requestId ? ` (request id ${requestId})` : ""}`);
    this.status = status;
    this.headers = headers;
    this.problem = problem;
    this.requestId = requestId ?? null;
    this.type = problem.type ?? "about:blank";
    this.title = title;
    this.detail = detail;
  }

  /** The problem type's last segment, e.g. `budget-exceeded`. */
  get slug(): string {
    return this.type.replace(/\/+$/, "").split("/").pop() ?? "";
  }
}

export class BadRequestError extends APIError {}
export class InvalidJSON extends BadRequestError {}
export class AuthenticationError extends APIError {}

export class BudgetExceeded extends APIError {
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

export class PermissionDeniedError extends APIError {}
export class NotFoundError extends APIError {}
export class ConflictError extends APIError {}

export class PayloadTooLarge extends APIError {
  readonly limitBytes: number | null;

  constructor(status: number, headers: Headers, problem: Problem) {
    super(status, headers, problem);
    this.limitBytes = typeof problem.limit_bytes === "number" ? problem.limit_bytes : null;
  }
}

export interface FieldError {
  loc: Array<string | number>;
  msg: string;
}

export class ValidationError extends APIError {
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

export class RateLimited extends APIError {
  /** Seconds to wait before retrying. */
  readonly retryAfter: number | null;
  readonly limit: string | null;

  constructor(status: number, headers: Headers, problem: Problem) {
    super(status, headers, problem);
    this.retryAfter = retryAfterSeconds(headers, problem);
    this.limit = typeof problem.limit === "string" ? problem.limit : null;
  }
}

export class InternalServerError extends APIError {}
export class ModelError extends InternalServerError {}

export class ServiceUnavailable extends InternalServerError {
  /** Seconds to wait before retrying. */
  readonly retryAfter: number | null;

  constructor(status: number, headers: Headers, problem: Problem) {
    super(status, headers, problem);
    this.retryAfter = retryAfterSeconds(headers, problem);
  }
}

export class GatewayTimeout extends InternalServerError {}

type ErrorClass = new (status: number, headers: Headers, problem: Problem) => APIError;

const BY_SLUG: Record<string, ErrorClass> = {
  "invalid-json": InvalidJSON,
  unauthenticated: AuthenticationError,
  "budget-exceeded": BudgetExceeded,
  forbidden: PermissionDeniedError,
  "not-found": NotFoundError,
  conflict: ConflictError,
  "payload-too-large": PayloadTooLarge,
  "validation-error": ValidationError,
  "rate-limited": RateLimited,
  "model-error": ModelError,
  unavailable: ServiceUnavailable,
  timeout: GatewayTimeout,
};

const BY_STATUS: Record<number, ErrorClass> = {
  400: BadRequestError,
  401: AuthenticationError,
  402: BudgetExceeded,
  403: PermissionDeniedError,
  404: NotFoundError,
  409: ConflictError,
  413: PayloadTooLarge,
  422: ValidationError,
  429: RateLimited,
  502: ModelError,
  503: ServiceUnavailable,
  504: GatewayTimeout,
};

/** The typed error for an error answer (problem type first, then status). */
export function errorFor(status: number, headers: Headers, body: unknown): APIError {
  const problem: Problem =
    body && typeof body === "object" && !Array.isArray(body) ? (body as Problem) : { detail: String(body ?? "").slice(0, 500) };
  const slug = String(problem.type ?? "").replace(/\/+$/, "").split("/").pop() ?? "";
  const cls = BY_SLUG[slug] ?? BY_STATUS[status] ?? (status >= 500 ? InternalServerError : APIError);
  return new cls(status, headers, problem);
}
