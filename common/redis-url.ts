/**
 * The `--redis-url` setting of every program: one Redis server or a Redis
 * Cluster, told apart by the scheme.
 *
 * - `redis://[user:password@]host:port[/db]`, `rediss://…` (TLS): one server
 *   (ioredis reads the URL itself).
 * - `redis+cluster://[user:password@]h1:p1,h2:p2[,…]`, `rediss+cluster://…`
 *   (TLS): a Redis Cluster, given by seed nodes; the client learns the rest
 *   of the cluster from them. A cluster has no database number, so no path.
 */

/** The schemes `--redis-url` accepts. */
export const REDIS_URL_SCHEMES = Object.freeze(["redis", "rediss", "redis+cluster", "rediss+cluster"]);

/** One seed node of a cluster. */
export interface RedisNode {
  readonly host: string;
  readonly port: number;
}

/** What a `--redis-url` names. */
export type RedisTarget =
  | { readonly kind: "single"; readonly url: string; readonly where: string }
  | {
      readonly kind: "cluster";
      readonly nodes: readonly RedisNode[];
      readonly username: string | undefined;
      readonly password: string | undefined;
      readonly tls: boolean;
      /** The seed nodes, for messages (never the password). */
      readonly where: string;
    };

/** A malformed `--redis-url`; the message says why (callers name the setting). */
export class RedisUrlError extends Error {}

const NODE = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9._-]+)):(\d{1,5})$/;

function decode(part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new RedisUrlError(`the ${what} is not valid percent-encoding`);
  }
}

function parseNode(text: string): RedisNode {
  const m = NODE.exec(text);
  if (m === null) throw new RedisUrlError(`seed node ${JSON.stringify(text)} is not host:port`);
  const port = Number(m[3]);
  if (port < 1 || port > 65535)
    throw new RedisUrlError(`seed node ${JSON.stringify(text)}: port out of range`);
  return { host: (m[1] ?? m[2]) as string, port };
}

function parseCluster(text: string, tls: boolean): RedisTarget {
  let rest = text.slice(text.indexOf("://") + 3);
  if (rest.endsWith("/")) rest = rest.slice(0, -1);
  if (/[/?#]/.test(rest)) {
    throw new RedisUrlError(
      "a cluster URL takes no path, query or fragment (a cluster has no database number)",
    );
  }
  let username: string | undefined;
  let password: string | undefined;
  const at = rest.lastIndexOf("@");
  if (at !== -1) {
    const auth = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = auth.indexOf(":");
    const user = colon === -1 ? auth : auth.slice(0, colon);
    username = user === "" ? undefined : decode(user, "user name");
    password = colon === -1 ? undefined : decode(auth.slice(colon + 1), "password");
  }
  if (rest === "") throw new RedisUrlError("a cluster URL needs at least one seed node host:port");
  const nodes = rest.split(",").map(parseNode);
  return { kind: "cluster", nodes, username, password, tls, where: rest };
}

/**
 * Parses a `--redis-url`. Throws RedisUrlError saying what is wrong; a
 * plain `redis://` URL is checked the way ioredis will read it.
 */
export function parseRedisUrl(text: string): RedisTarget {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(text)?.[1]?.toLowerCase();
  if (scheme === undefined) throw new RedisUrlError(`not a URL: ${JSON.stringify(text)}`);
  if (scheme === "redis+cluster" || scheme === "rediss+cluster") {
    return parseCluster(text, scheme === "rediss+cluster");
  }
  if (scheme !== "redis" && scheme !== "rediss") {
    throw new RedisUrlError(
      `scheme must be one of ${REDIS_URL_SCHEMES.join(", ")}, got ${JSON.stringify(scheme)}`,
    );
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new RedisUrlError(
      text.includes(",")
        ? "not a URL (several nodes? a cluster is redis+cluster://h1:p1,h2:p2)"
        : `not a URL: ${JSON.stringify(text)}`,
    );
  }
  if (url.hostname === "") throw new RedisUrlError("the URL names no host");
  return { kind: "single", url: text, where: url.host };
}
