/**
 * Router identity as the other two programs name it. A router's id
 * (`--router-id`) is what miners sign their Hello for and what validators
 * sign their calls for, so both pin it: a `--router` URL may carry the id
 * it expects as `?id=<router-id>` (grpc://, grpcs://, ws:// and wss://
 * alike). The query names the router, not a resource: it is removed from
 * the address that is dialled.
 */
import { TensorClawError } from "./errors.js";

/** The id a router uses when its operator set none; shared by every such router, so pins cannot tell them apart. */
export const DEFAULT_ROUTER_ID = "tensorclaw-router";

/**
 * A valid router id: 1 to 128 visible ASCII characters. It travels in gRPC
 * metadata (no spaces or control characters there) and as one line of
 * signed text (no newline may shift the lines after it).
 */
export const ROUTER_ID_RE = /^[\x21-\x7e]{1,128}$/;

/** True when `id` can be a router id. */
export function isValidRouterId(id: string): boolean {
  return ROUTER_ID_RE.test(id);
}

/** A `--router` URL split into the address to dial and the router id it expects. */
export interface PinnedRouterUrl {
  /** The URL without its `?id=` query (what is dialled and logged). */
  readonly url: URL;
  /** The router id the URL pins, or undefined when it names none. */
  readonly routerId: string | undefined;
}

/**
 * Splits `?id=<router-id>` off a router URL. Any other query parameter, an
 * id given twice or an id that is not a valid router id is a `config_invalid`
 * error naming `setting`, since a typo here would silently pin nothing.
 */
export function splitRouterUrl(raw: string, setting: string): PinnedRouterUrl {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TensorClawError(
      "config_invalid",
      `invalid setting ${setting}: not a URL (${JSON.stringify(raw)})`,
    );
  }
  const bad = (why: string) =>
    new TensorClawError("config_invalid", `invalid setting ${setting}: ${why} (${JSON.stringify(raw)})`);
  const keys = [...url.searchParams.keys()];
  const other = keys.find((k) => k !== "id");
  if (other !== undefined)
    throw bad(`unknown query parameter ${JSON.stringify(other)} (only ?id=<router-id>)`);
  const ids = url.searchParams.getAll("id");
  if (ids.length > 1) throw bad("?id= given twice");
  const routerId = ids[0];
  if (routerId !== undefined && !isValidRouterId(routerId)) {
    throw bad("?id= must be 1-128 visible ASCII characters");
  }
  const bare = new URL(url.href);
  bare.search = "";
  return { url: bare, routerId };
}
