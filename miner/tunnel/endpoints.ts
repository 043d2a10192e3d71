/**
 * Turns the miner's `--router` URLs and `--transport` choice into the list
 * of routers to keep a tunnel to, each with the transports to try in order.
 *
 * A gRPC URL and a WebSocket URL naming the same host are one router with
 * an explicit fallback (`--router grpc://r:50051 --router ws://r:8080/v1/tunnel`).
 * With `auto` and only a gRPC URL, the fallback is the same host on the
 * router's default HTTP port (grpc → ws, grpcs → wss). A WebSocket URL
 * without a path gets `/v1/tunnel`.
 *
 * A URL may pin the router id the miner expects (`?id=<router-id>`, see
 * common/router-id.ts); the query is not part of the address dialled, and
 * a gRPC + WS pair of one router shares the id (naming two is an error).
 */
import { TensorClawError } from "../../common/errors.js";
import { splitRouterUrl } from "../../common/router-id.js";
import type { GrpcTarget } from "./grpc.js";

/** The router's default HTTP port, where the WebSocket fallback lives. */
export const DEFAULT_ROUTER_HTTP_PORT = 8080;
/** The router's default gRPC port. */
export const DEFAULT_ROUTER_GRPC_PORT = 50051;
/** The WebSocket tunnel path. */
export const TUNNEL_PATH = "/v1/tunnel";

/** One way to reach a router. */
export type Endpoint =
  | { readonly transport: "grpc"; readonly target: GrpcTarget; readonly label: string }
  | { readonly transport: "ws"; readonly url: string; readonly label: string };

/** One router and the endpoints to try, preferred first. */
export interface RouterPlan {
  /** For logs: the URLs as given. */
  readonly name: string;
  readonly endpoints: readonly Endpoint[];
  /** The router id its URLs pin (`?id=`), if any: the miner signs a Hello for no other. */
  readonly routerId: string | undefined;
}

/**
 * `host:port` of an endpoint (the port spelled out), which keys the pin of
 * the router id learned there (router-pins.ts).
 */
export function endpointAddress(ep: Endpoint): string {
  if (ep.transport === "grpc") {
    const h = ep.target.host.includes(":") ? `[${ep.target.host}]` : ep.target.host;
    return `${h}:${ep.target.port}`;
  }
  const u = new URL(ep.url);
  return `${u.hostname}:${u.port === "" ? (u.protocol === "wss:" ? 443 : 80) : u.port}`;
}

function bad(url: string, why: string): never {
  throw new TensorClawError("config_invalid", `invalid setting --router: ${why} (${JSON.stringify(url)})`);
}

function grpcEndpoint(u: URL, raw: string): Endpoint {
  const tls = u.protocol === "grpcs:";
  const host = u.hostname.replace(/^\[|\]$/g, "");
  if (host === "") bad(raw, "no host");
  const port = u.port === "" ? DEFAULT_ROUTER_GRPC_PORT : Number(u.port);
  return { transport: "grpc", target: { host, port, tls }, label: `${u.protocol}//${u.host}` };
}

function wsEndpoint(u: URL): Endpoint {
  const copy = new URL(u.href);
  if (copy.pathname === "" || copy.pathname === "/") copy.pathname = TUNNEL_PATH;
  return { transport: "ws", url: copy.href, label: copy.href };
}

function derivedWs(u: URL): Endpoint {
  const scheme = u.protocol === "grpcs:" ? "wss:" : "ws:";
  return wsEndpoint(new URL(`${scheme}//${u.hostname}:${DEFAULT_ROUTER_HTTP_PORT}${TUNNEL_PATH}`));
}

/** The routers to connect to. Throws `config_invalid` when the URLs cannot serve the transport choice. */
export function planRouters(urls: readonly string[], choice: "auto" | "grpc" | "ws"): RouterPlan[] {
  const groups = new Map<string, { grpc?: URL; ws?: URL; raw: string[]; ids: Set<string> }>();
  const order: string[] = [];
  let n = 0;
  for (const raw of urls) {
    let u: URL;
    let routerId: string | undefined;
    try {
      ({ url: u, routerId } = splitRouterUrl(raw, "--router"));
    } catch (err) {
      if (err instanceof TensorClawError) throw err;
      return bad(raw, "not a URL");
    }
    const kind =
      u.protocol === "grpc:" || u.protocol === "grpcs:"
        ? "grpc"
        : u.protocol === "ws:" || u.protocol === "wss:"
          ? "ws"
          : undefined;
    if (kind === undefined) bad(raw, "scheme must be grpc, grpcs, ws or wss");
    // Pair a gRPC and a WS URL of the same host; a second URL of a kind starts a new router.
    let key = u.hostname;
    const g = groups.get(key);
    if (g !== undefined && g[kind] !== undefined) {
      key = `${u.hostname}#${++n}`;
    }
    let group = groups.get(key);
    if (group === undefined) {
      group = { raw: [], ids: new Set() };
      groups.set(key, group);
      order.push(key);
    }
    group[kind] = u;
    group.raw.push(raw);
    if (routerId !== undefined) group.ids.add(routerId);
  }
  const plans: RouterPlan[] = [];
  for (const key of order) {
    const g = groups.get(key);
    if (g === undefined) continue;
    const name = g.raw.join(" + ");
    const endpoints: Endpoint[] = [];
    if (choice !== "ws" && g.grpc !== undefined) endpoints.push(grpcEndpoint(g.grpc, name));
    if (choice !== "grpc") {
      if (g.ws !== undefined) endpoints.push(wsEndpoint(g.ws));
      else if (g.grpc !== undefined) endpoints.push(derivedWs(g.grpc));
    }
    if (endpoints.length === 0)
      bad(
        name,
        `--transport ${choice} needs a ${choice === "grpc" ? "grpc:// or grpcs://" : "ws:// or wss://"} URL`,
      );
    if (g.ids.size > 1) bad(name, "the URLs of one router name different ?id= values");
    const [routerId] = g.ids;
    plans.push({ name, endpoints, routerId });
  }
  return plans;
}
