import type { IncomingMessage, ServerResponse } from "node:http";
import { TensorClawError } from "../../common/errors.js";
import { baseHeaders } from "../api/http.js";
import { type ActivitySources, keyActivity } from "./console-account.js";
import { ASSET_PREFIX, type ConsoleAsset, type ConsoleBundle } from "./console-assets.js";
import type { ConsoleData } from "./console-data.js";

/**
 * The console's HTTP routes, called by the Business API before its own
 * (server.ts): the page at `/`, its assets under `/console/`, and the public
 * JSON endpoints the page reads. Resolves to the status sent, or undefined
 * for a path that is not the console's.
 */
export type ConsoleRoutes = (
  req: IncomingMessage,
  res: ServerResponse,
  requestId: string,
  path: string,
) => Promise<number | undefined>;

/**
 * Headers of every console response. The policy allows this origin's own
 * script, style, images and fetches only: no inline script, no eval, no
 * framing, no form posts, no base rewriting; a model id a miner named
 * `<img src=x onerror=...>` cannot run even if some code put it in the DOM
 * as markup (none does: miner text goes in with textContent). No referrer
 * leaves the page, so nothing in it reaches another site.
 */
export const CONSOLE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

function securityHeaders(requestId: string): Record<string, string> {
  return {
    ...baseHeaders(requestId),
    "content-security-policy": CONSOLE_CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
  };
}

const GET = "GET, HEAD";
const NETWORK = "/api/v1/network";
const MODELS = "/api/v1/models/";
const STATS = "/stats";
const MINERS = "/api/v1/miners/";
const ACTIVITY = "/api/v1/key/activity";
/** Longest path segment decoded (model ids are at most 256 characters; hotkeys 48). */
const MAX_SEGMENT = 1024;

/**
 * The console's routes over its bundle (built once, on the first call of
 * `bundle`), its public data and the callers' accounts.
 */
export function consoleRoutes(
  bundle: () => Promise<ConsoleBundle>,
  data: ConsoleData,
  accounts: ActivitySources,
): ConsoleRoutes {
  return async (req, res, requestId, path) => {
    const method = req.method ?? "GET";
    const isPage = path === "/" || path === "/index.html";
    const isAsset = path.startsWith(ASSET_PREFIX);
    const isModelStats =
      path.startsWith(MODELS) && path.endsWith(STATS) && path.length > MODELS.length + STATS.length;
    const isMiner = path.startsWith(MINERS) && path.length > MINERS.length;
    const isActivity = path === ACTIVITY;
    if (!isPage && !isAsset && !isModelStats && !isMiner && !isActivity && path !== NETWORK) return undefined;
    if (method !== "GET" && method !== "HEAD") {
      res.setHeader("allow", GET);
      throw new TensorClawError("method_not_allowed", `${method} is not allowed on ${path}; use ${GET}.`);
    }
    if (isPage || isAsset) {
      const b = await bundle();
      const a = isPage ? b.page : b.assets.get(path);
      if (a === undefined) throw new TensorClawError("not_found", `No console file ${path}.`);
      return sendAsset(req, res, requestId, a);
    }
    if (path === NETWORK) return sendJson(res, requestId, await data.network());
    // The caller's own figures: never stored by a cache on the way (no-store covers it as for the rest).
    if (isActivity) return sendJson(res, requestId, await keyActivity(req, res, accounts));
    if (isModelStats) {
      const id = segment(path.slice(MODELS.length, -STATS.length));
      if (id === undefined) {
        throw new TensorClawError(
          "model_not_found",
          "The model id in the path is not valid percent-encoding.",
          {
            param: "model",
          },
        );
      }
      return sendJson(res, requestId, await data.modelStats(id));
    }
    const hotkey = segment(path.slice(MINERS.length));
    if (hotkey === undefined || hotkey.includes("/")) {
      throw new TensorClawError("not_found", "Give one hotkey: /api/v1/miners/<ss58 hotkey>.");
    }
    return sendJson(res, requestId, await data.miner(hotkey));
  };
}

/** A percent-decoded path segment; undefined when malformed or absurdly long. */
function segment(raw: string): string | undefined {
  if (raw.length === 0 || raw.length > MAX_SEGMENT) return undefined;
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

function sendAsset(req: IncomingMessage, res: ServerResponse, requestId: string, a: ConsoleAsset): number {
  const gzip = /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""));
  const body = gzip ? a.gzip : a.body;
  res.writeHead(200, {
    ...securityHeaders(requestId),
    "content-type": a.contentType,
    "content-length": body.length,
    "cache-control": a.immutable ? "public, max-age=31536000, immutable" : "no-cache",
    vary: "accept-encoding",
    ...(gzip ? { "content-encoding": "gzip" } : {}),
  });
  res.end(body);
  return 200;
}

/** A JSON answer, never stored by a browser or a cache (figures change by the second). */
function sendJson(res: ServerResponse, requestId: string, body: unknown): number {
  const text = JSON.stringify(body);
  res.writeHead(200, {
    ...securityHeaders(requestId),
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
  });
  res.end(text);
  return 200;
}
