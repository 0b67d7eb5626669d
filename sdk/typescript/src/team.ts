/** Bases of the generated team classes, and the shapes they return. */

import type { EventStream } from "./streaming.js";

/** Per-call options (the second argument of every operation method). */
export interface CallOptions {
  /** Reused by this call's retries; one is generated when absent. */
  idempotencyKey?: string;
  /** Conversation memory (`X-Session-Id`). */
  sessionId?: string;
  /** Per-attempt timeout in milliseconds. */
  timeoutMs?: number;
  /** Overrides the client's `maxRetries` for this call. */
  maxRetries?: number;
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** Cancels the call (and its retries). */
  signal?: AbortSignal;
}

export interface Usage {
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

/** Everything about an operation's answer besides its output: `result.raw`. */
export interface RawResponse {
  status: number;
  headers: Headers;
  /** The whole JSON body, wire names. */
  body: Record<string, unknown>;
  id: string;
  requestId: string | null;
  team: string;
  operation: string;
  model: string;
  usage: Usage;
  durationMs: number;
  retries: number;
  idempotencyKey: string | null;
  /** True when this is the stored result of an earlier call with the same Idempotency-Key. */
  replayed: boolean;
  budgetRemainingUsd: number | null;
  ratelimitRemainingRequests: number | null;
  ratelimitRemainingTokens: number | null;
}

/** An operation's output with a non-enumerable `raw` (so `JSON.stringify(output)` is just the output). */
export type WithRaw<T> = T & { readonly raw: RawResponse };

export interface OperationInfo {
  name: string;
  description: string;
  /** JSON Schema of the input (wire names). */
  inputSchema: Record<string, unknown>;
  /** JSON Schema of the output (wire names). */
  outputSchema: Record<string, unknown>;
}

export interface TeamInfo {
  name: string;
  description: string;
  operations: OperationInfo[];
}

/** What a team needs from the client. */
export interface Requester {
  invokeOperation<T>(
    team: string,
    operation: string,
    input: unknown,
    inputModel: string | null,
    outputModel: string | null,
    options?: CallOptions,
  ): Promise<WithRaw<T>>;
  listTeams(): Promise<TeamInfo[]>;
  retrieveTeam(name: string): Promise<TeamInfo>;
  stream(team: string, operation: string, input?: Record<string, unknown>, options?: CallOptions): EventStream;
}

/** One team; the generated subclasses add one typed method per operation. */
export abstract class TeamBase {
  abstract readonly name: string;

  constructor(protected readonly client: Requester) {}

  protected invoke<T>(operation: string, input: unknown, inputModel: string, outputModel: string, options?: CallOptions): Promise<WithRaw<T>> {
    return this.client.invokeOperation<T>(this.name, operation, input, inputModel, outputModel, options);
  }

  /** Call an operation by name with a wire-shaped (snake_case) input; the output is untyped and left as sent. */
  call(operation: string, input: Record<string, unknown> = {}, options?: CallOptions): Promise<WithRaw<Record<string, unknown>>> {
    return this.client.invokeOperation<Record<string, unknown>>(this.name, operation, input, null, null, options);
  }

  /** The operation's Server-Sent Events (`for await (const event of team.stream("ask", { question }))`). */
  stream(operation: string, input: Record<string, unknown> = {}, options?: CallOptions): EventStream {
    return this.client.stream(this.name, operation, input, options);
  }

  /** `GET /v1/teams/{team}`. */
  describe(): Promise<TeamInfo> {
    return this.client.retrieveTeam(this.name);
  }
}

/** A team the SDK has no generated class for (called by name). */
export class DynamicTeam extends TeamBase {
  constructor(
    client: Requester,
    readonly name: string,
  ) {
    super(client);
  }
}

const camel = (name: string): string => name.replace(/[-_]([a-z0-9])/g, (_m, c: string) => c.toUpperCase());

/** `framework.teams`: the generated subclass adds one property per team. */
export class TeamsBase {
  constructor(protected readonly client: Requester) {}

  /** `GET /v1/teams`: every team with its operations. */
  list(): Promise<TeamInfo[]> {
    return this.client.listTeams();
  }

  /** `GET /v1/teams/{team}`. */
  retrieve(name: string): Promise<TeamInfo> {
    return this.client.retrieveTeam(name);
  }

  /** The team called `name` (`"customer-service"`): its typed class when the SDK knows it. */
  get(name: string): TeamBase {
    const known = (this as unknown as Record<string, unknown>)[camel(name)];
    return known instanceof TeamBase ? known : new DynamicTeam(this.client, name);
  }
}
