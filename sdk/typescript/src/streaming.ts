/**
 * Server-Sent Events of an operation or a run (`Accept: text/event-stream`).
 *
 * The server sends `step.started`, `model.delta`, `tool.called`, `step.completed` and `usage`
 * events as the work happens, then `done` (the same body as the non-streaming answer) or
 * `error` (a problem+json). Iterating an `EventStream` yields every event up to and including
 * `done`; an `error` event is thrown as its typed `APIStatusError` (`BudgetExceededError`,
 * `ModelError`...), and a stream that ends before either throws `APIConnectionError`.
 * Event data is the server's JSON as sent (snake_case wire names).
 */

import { APIConnectionError, APITimeoutError, errorFromProblem, type Problem } from "./errors.js";

export const EVENT_TYPES = ["step.started", "model.delta", "tool.called", "step.completed", "usage", "done", "error"] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface StreamEvent<T = Record<string, unknown>> {
  /** `step.started`, `model.delta`, `tool.called`, `step.completed`, `usage` or `done`. */
  event: EventType | string;
  data: T;
  id: string | null;
}

/** Turns the lines of a `text/event-stream` body into events (comments and keep-alives skipped). */
export class SSEDecoder {
  private event = "";
  private data: string[] = [];
  private id: string | null = null;

  /** One line (without its end); an event when the line ends one. */
  feed(line: string): StreamEvent<unknown> | null {
    if (line === "") {
      if (!this.data.length && !this.event) return null;
      const raw = this.data.join("\n");
      let data: unknown = raw;
      try {
        data = raw ? JSON.parse(raw) : null;
      } catch {
        /* not JSON: keep the text */
      }
      const event = { event: this.event || "message", data, id: this.id };
      this.event = "";
      this.data = [];
      return event;
    }
    if (line.startsWith(":")) return null;
    const colon = line.indexOf(":");
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (name === "event") this.event = value;
    else if (name === "data") this.data.push(value);
    else if (name === "id") this.id = value;
    return null;
  }
}

/** What `EventStream` needs from the client: a function that sends the request (with retries). */
export interface StreamConnection {
  response: Response;
  retries: number;
  /** Aborts the request; the stream calls it with an `APITimeoutError` when no byte arrives within `idleTimeoutMs`. */
  abort: (reason: unknown) => void;
  idleTimeoutMs: number;
  url: string;
}

/**
 * The events of one streamed operation or run. The request is sent when iteration starts:
 *
 *     for await (const event of framework.stream("finance", "analyze_investment", { riskTolerance: "low", amount: 1000 })) {
 *       console.log(event.event, event.data);
 *     }
 */
export class EventStream<Done = Record<string, unknown>> implements AsyncIterable<StreamEvent> {
  /** The `done` event's body once it arrived (the non-streaming answer). */
  done: Done | null = null;
  /** The streaming response, once the request was sent. */
  response: Response | null = null;
  /** How many retries the request took before the stream began. */
  retries = 0;
  private connection: Promise<StreamConnection> | null = null;
  private started = false;

  constructor(private readonly connect: () => Promise<StreamConnection>) {}

  /** `x-request-id` of the call, once the request was sent. */
  get requestId(): string | null {
    return this.response?.headers.get("x-request-id") ?? null;
  }

  private open(): Promise<StreamConnection> {
    this.connection ??= this.connect().then((c) => {
      this.response = c.response;
      this.retries = c.retries;
      return c;
    });
    return this.connection;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<StreamEvent> {
    if (this.started) throw new Error("an EventStream can be iterated once");
    this.started = true;
    const { response, abort, idleTimeoutMs, url } = await this.open();
    const body = response.body;
    if (!body) throw new APIConnectionError(`the event stream of ${url} has no body`);
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    const decoder = new SSEDecoder();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => abort(new APITimeoutError(`the event stream of ${url} went quiet for ${idleTimeoutMs} ms`)), idleTimeoutMs);
    };
    let buffer = "";
    let finished = false;
    const handle = (event: StreamEvent<unknown> | null): StreamEvent | null => {
      if (!event) return null;
      if (event.event === "error") {
        finished = true;
        const problem = event.data && typeof event.data === "object" ? (event.data as Problem) : { detail: String(event.data) };
        throw errorFromProblem(problem, response.headers);
      }
      if (event.event === "done") {
        finished = true;
        this.done = event.data as Done;
      }
      return event as StreamEvent;
    };
    try {
      while (!finished) {
        arm();
        let chunk: ReadableStreamReadResult<string>;
        try {
          chunk = await reader.read();
        } catch (err) {
          if (err instanceof APITimeoutError) throw err;
          throw new APIConnectionError(`the event stream of ${url} was cut: ${(err as Error)?.message ?? err}`, { cause: err });
        }
        if (chunk.done) {
          const last = handle(decoder.feed(buffer.replace(/\r$/, "")) ?? decoder.feed(""));
          buffer = "";
          if (last) yield last;
          if (!finished) throw new APIConnectionError(`the event stream of ${url} ended before its \`done\` event`);
          break;
        }
        buffer += chunk.value;
        const lines = buffer.split(/\r\n|\r|\n/);
        buffer = lines.pop() ?? "";
        for (const line of lines) {
          const event = handle(decoder.feed(line));
          if (event) yield event;
          if (finished) break;
        }
      }
    } finally {
      clearTimeout(timer);
      if (!finished) abort(new APIConnectionError("the event stream was closed before its end"));
      reader.cancel().catch(() => undefined);
    }
  }

  /** Reads the rest of the stream; the `done` body (an `error` event throws). */
  async final(): Promise<Done> {
    if (!this.started) for await (const _ of this) void _;
    if (this.done === null) throw new APIConnectionError("the event stream ended before its `done` event");
    return this.done;
  }
}
