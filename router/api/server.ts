import { randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import type { Registry } from "prom-client";
import { TensorClawError, toHttpError, toTensorClawError } from "../../common/errors.js";
import { type AccessRecord, logAccess } from "./access-log.js";
import { anonymousKeyBody, generationBody, keyBody } from "./account.js";
import { type Caller, type ChatDeps, ChatEndpoint, type ChatOptions } from "./chat.js";
import { billingStoreError } from "./chat-billing.js";
import { CompletionsEndpoint } from "./completions.js";
import { EmbeddingsEndpoint } from "./embeddings.js";
import { baseHeaders, boundSlowClients, DEFAULT_MAX_BODY_BYTES, sendError, sendJson } from "./http.js";
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
  modelMemoryMs: 10 * 60_000,
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
 * Request ids: 16 random hex characters fixed per process, then a counter.
 * Unique across restarts and replicas (64 random bits per process) without
 * paying for a UUID per request; always 32 hex characters.
 */
export function requestIdGenerator(): () => string {
  const prefix = randomBytes(8).toString("hex");
  let n = 0;
  return () => prefix + (++n).toString(16).padStart(16, "0");
}

/** Longest generation id looked up (ids are 32 hex characters; anything else is simply unknown). */
const MAX_GENERATION_ID = 128;
/** Where OpenRouter clients expect the API: `/api/v1/...` is served as `/v1/...`. */
const OPENROUTER_PREFIX = "/api/v1/";

/** Headers a preflight allows when it names none: what clients of an OpenAI-style API send. */
const DEFAULT_ALLOWED_HEADERS = "authorization, content-type, x-request-id, openai-organization";
/** Longest `access-control-request-headers` echoed back. */
const MAX_REQUESTED_HEADERS_CHARS = 2048;
/** An HTTP header name (RFC 9110 token), lower case as browsers send it. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;

/**
 * What a CORS preflight allows: every header it asks for, when the list is
 * made of well-formed header names, so a browser app can send whatever its
 * SDK adds (the `openai` SDK's `x-stainless-*`, OpenRouter's `http-referer`
 * and `x-title`); the API authenticates by its bearer key, never by cookie,
 * so no header grants anything by itself. Anything malformed or overlong
 * gets the default list.
 */
export function allowedHeaders(requested: string | undefined): string {
  if (requested === undefined || requested.length > MAX_REQUESTED_HEADERS_CHARS)
    return DEFAULT_ALLOWED_HEADERS;
  const names = requested
    .split(",")
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== "");
  if (names.length === 0 || !names.every((h) => HEADER_NAME.test(h))) return DEFAULT_ALLOWED_HEADERS;
  return names.join(", ");
}

/** Request handler for the router's HTTP port (the WSS tunnel attaches to the same server's upgrades). */
export type ApiHandler = (req: IncomingMessage, res: ServerResponse) => void;

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
export function createApiHandler(deps: ApiDeps): ApiHandler {
  const chat = new ChatEndpoint(deps);
  const embeddings = new EmbeddingsEndpoint(deps, chat.billing);
  const completions = new CompletionsEndpoint(deps, chat.billing);
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

  async function route(req: IncomingMessage, res: ServerResponse, id: string): Promise<number> {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const raw = q === -1 ? url : url.slice(0, q);
    const path = raw.startsWith(OPENROUTER_PREFIX) ? raw.slice(4) : raw;
    const method = req.method ?? "GET";
    if (method === "OPTIONS") {
      res.writeHead(204, {
        ...baseHeaders(id),
        "access-control-allow-methods": "GET, POST, OPTIONS",
        "access-control-allow-headers": allowedHeaders(req.headers["access-control-request-headers"]),
        "access-control-max-age": "86400",
      });
      res.end();
      return 204;
    }
    if (path === "/v1/chat/completions" || path === "/chat/completions") {
      if (method !== "POST") throw new TensorClawError("not_found", "Use POST for /v1/chat/completions.");
      return chat.handle(req, res, id, await caller(req), access.get(req));
    }
    if (path === "/v1/embeddings" || path === "/embeddings") {
      if (method !== "POST") throw new TensorClawError("not_found", "Use POST for /v1/embeddings.");
      return embeddings.handle(req, res, id, await caller(req), access.get(req));
    }
    if (path === "/v1/completions" || path === "/completions") {
      if (method !== "POST") throw new TensorClawError("not_found", "Use POST for /v1/completions.");
      return completions.handle(req, res, id, await caller(req), access.get(req));
    }
    if (method !== "GET" && method !== "HEAD")
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
        res.writeHead(200, { ...baseHeaders(id), "content-type": deps.registry.contentType });
        res.end(text);
        return 200;
      }
      case "/v1/key":
      case "/v1/auth/key":
        return describeKey(req, res, id);
      case "/v1/generation":
        return describeGeneration(req, res, id, q === -1 ? "" : url.slice(q + 1));
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
      const modelId = decodeURIComponent(path.slice("/v1/models/".length));
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
        sendError(res, e, id);
        // A body we refused to read must not be parsed as the next request.
        if (e.code === "payload_too_large" || e.code === "cancelled") res.once("finish", () => req.destroy());
      })
      .catch((err: unknown) => log.error({ err, requestId: id }, "response failed"));
  };
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
  close(): Promise<void>;
}

/**
 * Starts a node:http server with the API handler, slow clients bounded
 * (`boundSlowClients`).
 */
export async function startApiServer(deps: ApiDeps, host: string, port: number): Promise<RunningApiServer> {
  const server = createServer(createApiHandler(deps));
  boundSlowClients(server);
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
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
