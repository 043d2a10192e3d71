import { timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import type { Registry } from "prom-client";
import { TensorClawError, toHttpError, toTensorClawError } from "../../common/errors.js";
import { newTraceId } from "../../common/trace-id.js";
import { type AccessRecord, logAccess } from "./access-log.js";
import { anonymousKeyBody, generationBody, generationsBody, generationsLimit, keyBody } from "./account.js";
import { CapacityQueue, DEFAULT_MAX_QUEUE, DEFAULT_QUEUE_TIMEOUT_MS } from "./capacity-queue.js";
import { type Caller, type ChatApi, type ChatDeps, ChatEndpoint, type ChatOptions } from "./chat.js";
import { billingStoreError } from "./chat-billing.js";
import { CompletionsEndpoint } from "./completions.js";
import {
  type ConnectionLimits,
  type ConnectionTracker,
  defaultConnectionLimits,
  limitConnections,
} from "./connection-limits.js";
import { answerPreflight, applyCors, type CorsOrigins } from "./cors.js";
import { EmbeddingsEndpoint } from "./embeddings.js";
import { baseHeaders, boundSlowClients, DEFAULT_MAX_BODY_BYTES, sendError, sendJson } from "./http.js";
import { DEFAULT_MAX_CONCURRENT_PER_KEY, KeyConcurrency } from "./key-concurrency.js";
import { type ApiKeys, bearerKey } from "./keys.js";
import { listModels } from "./models.js";
import { applyReservation } from "./rate-limit-headers.js";

/** Defaults of the Business API. */
export const API_DEFAULTS: Omit<ChatOptions, "userSalt"> = Object.freeze({
  maxBodyBytes: DEFAULT_MAX_BODY_BYTES,
  requestTimeoutMs: 120_000,
  maxAttempts: 3,
  keepAliveMs: 10_000,
  defaultMaxTokens: 4096,
  noCapacityRetryAfterMs: 2000,
  maxQueue: DEFAULT_MAX_QUEUE,
  queueTimeoutMs: DEFAULT_QUEUE_TIMEOUT_MS,
  modelMemoryMs: 10 * 60_000,
  startupGraceMs: 30_000,
  usageDurableWaitMs: 250,
});

/** Everything the HTTP API needs, injected. */
export interface ApiDeps extends ChatDeps {
  /** API keys; undefined serves without authentication (`--no-auth`). */
  readonly keys: ApiKeys | undefined;
  /** Registry rendered at /metrics. */
  readonly registry: Registry;
  /** Whether the router can take traffic (ledger reachable or spooling). */
  readonly ready: () => boolean | Promise<boolean>;
  /** Figures shown in the `/readyz` body beside the status (spool depth, ledger lag). */
  readonly readyDetail?: () => Record<string, number>;
  /** Request id generator (the ledger's idempotency key: must be unique router-wide). */
  readonly newRequestId?: () => string;
  /** Bearer token /metrics asks for; undefined leaves /metrics open. */
  readonly metricsToken?: string;
  /** Web origins allowed to call from a browser (`--cors-origins`); undefined: none (cors.ts). */
  readonly corsOrigins?: CorsOrigins;
  /** Requests one key may have in progress (`--max-concurrent-per-key`; 0: no cap). */
  readonly maxConcurrentPerKey?: number;
  /**
   * The web console's routes (router/console), asked first with the path;
   * undefined when the path is not theirs. Absent with `--no-console`.
   */
  readonly console?: (
    req: IncomingMessage,
    res: ServerResponse,
    id: string,
    path: string,
  ) => Promise<number | undefined>;
}

/** Methods each path answers; any other method gets 405 with `allow`. */
const POST_ONLY = "POST";
const GET_ONLY = "GET, HEAD";

/**
 * Content types a browser may send without a preflight ("simple requests"):
 * refused on POST, so no web page can drive a router behind a user's back
 * by posting a form or text/plain. JSON, or no content type, is accepted.
 */
const SIMPLE_CONTENT_TYPES = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"];

/** Refuses `method` on a path that answers only `allow`: 405 with the `allow` header. */
function checkMethod(res: ServerResponse, method: string, path: string, allow: string): void {
  if (allow.split(", ").includes(method)) return;
  res.setHeader("allow", allow);
  throw new TensorClawError("method_not_allowed", `${method} is not allowed on ${path}; use ${allow}.`);
}

/** Refuses a POST whose body is not JSON (415), before reading it. */
function checkJsonBody(req: IncomingMessage): void {
  const type = (req.headers["content-type"] ?? "").split(";", 1)[0]?.trim().toLowerCase() ?? "";
  if (SIMPLE_CONTENT_TYPES.includes(type)) {
    throw new TensorClawError(
      "unsupported_media_type",
      `The request body must be JSON (content-type: application/json), not ${type}.`,
    );
  }
}

/** A path segment, percent-decoded; a malformed escape is the caller's fault (404), not a 500. */
function pathSegment(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

/** Whether an Authorization header carries `token` as its bearer token (compared in constant time). */
function bearerMatches(authorization: string | undefined, token: string): boolean {
  const key = bearerKey(authorization); // never empty: an empty token matches nothing
  if (key === undefined) return false;
  const given = Buffer.from(key);
  const wanted = Buffer.from(token);
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}

/**
 * Request ids: 32 lower-case hex characters, random per request (common/
 * trace-id.ts). The id now travels to miners (`trace_id`), so it must tell
 * them nothing: not which router or process sent it, not how busy it is,
 * not which requests are probes (they draw theirs the same way). 128 random
 * bits keep it unique router-wide, as the ledger's idempotency key needs.
 */
export function requestIdGenerator(): () => string {
  return () => newTraceId();
}

/** Longest generation id looked up (ids are 32 hex characters; anything else is simply unknown). */
const MAX_GENERATION_ID = 128;
/** Where OpenRouter clients expect the API: `/api/v1/...` is served as `/v1/...`. */
const OPENROUTER_PREFIX = "/api/v1/";

/** Request handler for the router's HTTP port (the WSS tunnel attaches to the same server's upgrades). */
export type ApiHandler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * The router's one capacity queue, shared by chat, completions and
 * embeddings (--max-queue bounds them together) and by probes of full
 * tunnels (router/services/probe-queue.ts).
 */
export function capacityQueue(
  d: Pick<ChatDeps, "dispatcher" | "clock" | "metrics" | "logger" | "options">,
): CapacityQueue {
  return new CapacityQueue(
    { onChange: (l) => d.dispatcher.onChange(l), clock: d.clock, metrics: d.metrics, logger: d.logger },
    d.options,
  );
}

/**
 * The Business API as a node:http request handler: the OpenAI-compatible
 * endpoints, OpenRouter's account endpoints (`/api/v1/key`,
 * `/api/v1/generation`; account.ts), health, readiness and metrics. Every
 * path under `/v1/` is also served under `/api/v1/`, so a client set up for
 * OpenRouter's base URL works too. Every response carries `x-request-id`;
 * every error is an OpenAI error body.
 *
 * With `--no-auth` there is no key: `/api/v1/key` describes an anonymous,
 * unlimited caller charged nothing, and no generation is ever found (records
 * are kept per key).
 */
export function createApiHandler(given: ApiDeps): ApiHandler {
  const queue = given.queue ?? capacityQueue(given);
  const deps: ApiDeps = { ...given, queue };
  const chat = new ChatEndpoint(deps);
  // Other request kinds share the chat endpoint's billing (one set of hold leases per router).
  const kinds = {
    embeddings: new EmbeddingsEndpoint(deps, chat.billing),
    completions: new CompletionsEndpoint(deps, chat.billing),
  };
  const perKey = new KeyConcurrency(deps.maxConcurrentPerKey ?? DEFAULT_MAX_CONCURRENT_PER_KEY);
  const newId = deps.newRequestId ?? requestIdGenerator();
  const log = deps.logger;

  /** Each request's access-log fields, filled in as it goes (access-log.ts). */
  const access = new WeakMap<IncomingMessage, AccessRecord>();

  async function caller(req: IncomingMessage): Promise<Caller> {
    if (deps.keys === undefined) return { key: undefined };
    const key = await deps.keys.authenticate(req.headers.authorization);
    const a = access.get(req);
    if (a !== undefined) a.keyId = key.id;
    return { key };
  }

  /**
   * The caller of a GET endpoint: the call counts as one request (no
   * tokens) against the key's request limit, like any other, and the
   * answer carries the x-ratelimit-* headers.
   */
  async function limitedCaller(req: IncomingMessage, res: ServerResponse): Promise<Caller> {
    const c = await caller(req);
    if (c.key !== undefined) {
      applyReservation(
        res,
        c.key.limits,
        await deps.limiter.reserve(c.key.id, c.key.limits, 0, deps.clock()),
      );
    }
    return c;
  }

  /** `GET /api/v1/key`. */
  async function describeKey(req: IncomingMessage, res: ServerResponse, id: string): Promise<number> {
    const { key } = await limitedCaller(req, res);
    if (key === undefined) {
      sendJson(res, 200, anonymousKeyBody(), id);
      return 200;
    }
    const billing = deps.billing;
    if (billing === undefined) throw new TensorClawError("not_found", "This router keeps no accounts.");
    const account = await readStore(() => billing.account(key.id, deps.clock()));
    // What this router's leases hold beyond their requests is the key's to spend (hold-leases.ts).
    const unused = chat.billing?.unusedMicros(key.id) ?? 0;
    sendJson(
      res,
      200,
      keyBody(key, { ...account, heldMicros: Math.max(0, account.heldMicros - unused) }),
      id,
    );
    return 200;
  }

  /** `GET /api/v1/generation?id=...`: only the key that made a request can read it; others get the same 404. */
  async function describeGeneration(
    req: IncomingMessage,
    res: ServerResponse,
    id: string,
    query: string,
  ): Promise<number> {
    const { key } = await limitedCaller(req, res);
    const wanted = new URLSearchParams(query).get("id");
    if (wanted === null || wanted === "") {
      throw new TensorClawError("invalid_request", "Give the generation's id: ?id=<x-request-id>.", {
        param: "id",
      });
    }
    const billing = deps.billing;
    const record =
      key === undefined || billing === undefined || wanted.length > MAX_GENERATION_ID
        ? undefined
        : await readStore(() => billing.generation(key.id, wanted, deps.clock()));
    if (record === undefined) {
      throw new TensorClawError("not_found", `No generation ${JSON.stringify(wanted)} for this API key.`, {
        param: "id",
      });
    }
    sendJson(res, 200, generationBody(record), id);
    return 200;
  }

  /** `GET /api/v1/key/generations?limit=N`: the calling key's newest generations (account.ts). */
  async function listGenerations(
    req: IncomingMessage,
    res: ServerResponse,
    id: string,
    query: string,
  ): Promise<number> {
    const { key } = await limitedCaller(req, res);
    const limit = generationsLimit(query);
    const billing = deps.billing;
    // Records are kept per key: a router without keys or accounts has none to list.
    if (key === undefined || billing === undefined)
      throw new TensorClawError("not_found", "This router keeps no accounts.");
    const list = await readStore(() => billing.recentGenerations(key.id, limit, deps.clock()));
    sendJson(res, 200, generationsBody(list), id);
    return 200;
  }

  async function route(req: IncomingMessage, res: ServerResponse, id: string): Promise<number> {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const raw = q === -1 ? url : url.slice(0, q);
    const path = raw.startsWith(OPENROUTER_PREFIX) ? raw.slice(4) : raw;
    const method = req.method ?? "GET";
    if (method === "OPTIONS") return answerPreflight(req, res, deps.corsOrigins, id);
    const page = await deps.console?.(req, res, id, raw);
    if (page !== undefined) return page;
    const api = POST_ROUTES.get(path);
    const kind = KIND_ROUTES.get(path);
    if (api !== undefined || kind !== undefined) {
      checkMethod(res, method, path, POST_ONLY);
      const who = await caller(req);
      checkJsonBody(req);
      const release = who.key === undefined ? undefined : perKey.enter(who.key.id);
      try {
        if (kind !== undefined) return await kinds[kind].handle(req, res, id, who, access.get(req));
        return await chat.handle(req, res, id, who, access.get(req), api);
      } finally {
        release?.();
      }
    }
    if (KNOWN_GET_PATHS.has(path) || path.startsWith("/v1/models/")) checkMethod(res, method, path, GET_ONLY);
    else if (method !== "GET" && method !== "HEAD")
      throw new TensorClawError("not_found", `No route for ${method} ${path}.`);
    switch (path) {
      case "/healthz":
        sendJson(res, 200, { status: "ok" }, id);
        return 200;
      case "/readyz": {
        const ready = await deps.ready();
        const body = { status: ready ? "ready" : "not ready", ...deps.readyDetail?.() };
        sendJson(res, ready ? 200 : 503, body, id);
        return ready ? 200 : 503;
      }
      case "/metrics": {
        if (deps.metricsToken !== undefined && !bearerMatches(req.headers.authorization, deps.metricsToken)) {
          throw new TensorClawError(
            "unauthenticated",
            "/metrics wants `Authorization: Bearer <metrics token>`.",
          );
        }
        const text = await deps.registry.metrics();
        res.writeHead(200, { "content-type": deps.registry.contentType, ...baseHeaders(id) });
        res.end(text);
        return 200;
      }
      case "/v1/key":
      case "/v1/auth/key":
        return describeKey(req, res, id);
      case "/v1/generation":
        return describeGeneration(req, res, id, q === -1 ? "" : url.slice(q + 1));
      case "/v1/key/generations":
        return listGenerations(req, res, id, q === -1 ? "" : url.slice(q + 1));
      case "/v1/models":
      case "/models":
        await limitedCaller(req, res);
        sendJson(
          res,
          200,
          { object: "list", data: listModels(deps.dispatcher.sessions(), deps.catalogue()) },
          id,
        );
        return 200;
    }
    if (path.startsWith("/v1/models/")) {
      await limitedCaller(req, res);
      const modelId = pathSegment(path.slice("/v1/models/".length));
      if (modelId === undefined) {
        throw new TensorClawError(
          "model_not_found",
          "The model name in the path is not valid percent-encoding.",
          {
            param: "model",
          },
        );
      }
      const canonical = deps.catalogue().canonical(modelId);
      const entry = listModels(deps.dispatcher.sessions(), deps.catalogue()).find((m) => m.id === canonical);
      if (entry === undefined) {
        throw new TensorClawError("model_not_found", `The model ${JSON.stringify(modelId)} does not exist.`, {
          param: "model",
        });
      }
      sendJson(res, 200, entry, id);
      return 200;
    }
    throw new TensorClawError("not_found", `No route for ${method} ${path}.`);
  }

  return (req, res) => {
    const id = newId();
    applyCors(req, res, deps.corsOrigins);
    const startedAt = performance.now();
    const a: AccessRecord = {};
    access.set(req, a);
    const done = (status: number) => {
      const url = req.url ?? "/";
      const q = url.indexOf("?");
      logAccess(
        log,
        id,
        req.method ?? "GET",
        q === -1 ? url : url.slice(0, q),
        status,
        performance.now() - startedAt,
        a,
      );
    };
    route(req, res, id)
      .then(done, (err: unknown) => {
        done(toHttpError(err).status);
        throw err;
      })
      .catch((err: unknown) => {
        const e = toTensorClawError(err);
        if (e.code === "internal") log.error({ err: e.cause ?? e, requestId: id }, "request failed");
        if (res.destroyed) return;
        // A body we refused to read must not be parsed as the next request, nor read to its end
        // (a refused caller's 3 GiB body is not worth the bandwidth): answer, then close.
        if (!req.complete && CLOSE_AFTER.has(e.code) && !smallBody(req)) {
          if (!res.headersSent) res.setHeader("connection", "close");
          res.once("finish", () => req.destroy());
        }
        sendError(res, e, id);
      })
      .catch((err: unknown) => log.error({ err, requestId: id }, "response failed"));
  };
}

/** The POST endpoints, each served by the chat relay in its own API shape. */
const POST_ROUTES: ReadonlyMap<string, ChatApi> = new Map([
  ["/v1/chat/completions", "chat"],
  ["/chat/completions", "chat"],
  ["/v1/responses", "responses"],
  ["/responses", "responses"],
]);

/** The POST endpoints of the other request kinds (tunnel.proto, RequestKind), each its own relay. */
const KIND_ROUTES: ReadonlyMap<string, "embeddings" | "completions"> = new Map([
  ["/v1/embeddings", "embeddings"],
  ["/embeddings", "embeddings"],
  ["/v1/completions", "completions"],
  ["/completions", "completions"],
]);

/** The GET endpoints (405 for other methods; any other unknown path is a 404). */
const KNOWN_GET_PATHS = new Set([
  "/healthz",
  "/readyz",
  "/metrics",
  "/v1/key",
  "/v1/auth/key",
  "/v1/generation",
  "/v1/key/generations",
  "/v1/models",
  "/models",
]);

/**
 * Errors after which the connection closes instead of reading the rest of
 * the request body (a refused caller's body is never parsed as the next
 * request, nor read to its end).
 */
const CLOSE_AFTER = new Set([
  "payload_too_large",
  "cancelled",
  "unauthenticated",
  "invalid_api_key",
  "unsupported_media_type",
  "method_not_allowed",
]);

/** Bodies up to this size are read and dropped after a refusal, keeping the connection (Node does it). */
const DISCARDED_BODY_BYTES = 64 * 1024;

/**
 * Whether the rest of a refused request's body is small enough to read and
 * drop: closing a socket with unread bytes makes the kernel reset it, and
 * the client may then lose the answer it was sent.
 */
function smallBody(req: IncomingMessage): boolean {
  const declared = Number(req.headers["content-length"] ?? Number.NaN);
  return Number.isFinite(declared) && declared <= DISCARDED_BODY_BYTES;
}

/** Reads the billing store for an account endpoint: a store failure is a retryable 503, not a 500. */
async function readStore<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (cause) {
    throw billingStoreError(cause);
  }
}

/** A listening Business API server. */
export interface RunningApiServer {
  readonly server: Server;
  readonly port: number;
  /** The connection caps' bookkeeping. */
  readonly connections: ConnectionTracker;
  close(): Promise<void>;
}

/**
 * Starts a node:http server with the API handler, slow clients bounded
 * (`boundSlowClients`) and connections capped (`limitConnections`).
 */
export async function startApiServer(
  deps: ApiDeps,
  host: string,
  port: number,
  limits: ConnectionLimits = defaultConnectionLimits(),
): Promise<RunningApiServer> {
  const server = createServer(createApiHandler(deps));
  boundSlowClients(server);
  const connections = limitConnections(server, limits, deps.logger);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
