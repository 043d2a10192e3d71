/**
 * Bounds the HTTP connections a router holds, so one host cannot take every
 * file descriptor with idle keep-alive sockets (20,000 of them made every new
 * connection, health checks included, fail). Two caps: per remote address and
 * in total. When a new connection would pass a cap, the connection idle the
 * longest (no request in progress) under that cap is closed to make room; when
 * none is idle, the new connection is refused (closed at once) and a warning
 * is logged, at most once per LOG_EVERY_MS. Sockets upgraded to a WebSocket
 * tunnel are handed over (`release`): the tunnel's own caps govern them.
 */
import { readFileSync } from "node:fs";
import type { Server } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { Logger } from "../../common/logger.js";

/** The caps. */
export interface ConnectionLimits {
  /** Connections one remote address may hold. */
  readonly perAddress: number;
  /** Connections the server holds in all. */
  readonly total: number;
}

/** Per-address default: plenty for one busy client or a NAT, far below any descriptor limit. */
export const DEFAULT_CONNECTIONS_PER_ADDRESS = 256;
/** Total default, unless the process's descriptor limit is lower (defaultConnectionLimits). */
export const DEFAULT_CONNECTIONS_TOTAL = 8192;
/** Warnings about refused connections are logged at most this often. */
const LOG_EVERY_MS = 10_000;

interface Tracked {
  readonly address: string;
  /** Requests in progress on the socket (HTTP/1.1 answers them one at a time). */
  busy: number;
  /** When the socket last finished a request (or connected): the longest idle goes first. */
  idleSinceMs: number;
}

/**
 * The default caps: DEFAULT_CONNECTIONS_TOTAL, or three quarters of the
 * process's open-files limit when that is lower (the rest is left for Redis,
 * the gRPC port, tunnels and files).
 */
export function defaultConnectionLimits(openFilesLimit = readOpenFilesLimit()): ConnectionLimits {
  const total =
    openFilesLimit === undefined
      ? DEFAULT_CONNECTIONS_TOTAL
      : Math.max(64, Math.min(DEFAULT_CONNECTIONS_TOTAL, Math.floor(openFilesLimit * 0.75)));
  return { perAddress: Math.min(DEFAULT_CONNECTIONS_PER_ADDRESS, total), total };
}

/** The soft open-files limit from /proc (Linux); undefined elsewhere or when unlimited. */
function readOpenFilesLimit(): number | undefined {
  try {
    const line = readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"));
    const soft = line?.split(/\s{2,}/)[1];
    const n = Number(soft);
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** What limitConnections gives back. */
export interface ConnectionTracker {
  /** Stops counting a socket that left HTTP (upgraded to a WebSocket tunnel). */
  release(socket: Duplex): void;
  /** Connections counted now (for tests and metrics). */
  readonly open: number;
  /** Of those, the ones with a request in progress. */
  readonly busy: number;
}

/**
 * Applies `limits` to `server`. `event` is where new sockets show up:
 * "connection" for plain HTTP, "secureConnection" for HTTPS (so the socket
 * counted is the one requests run on).
 */
export function limitConnections(
  server: Server,
  limits: ConnectionLimits,
  logger: Logger,
  event: "connection" | "secureConnection" = "connection",
  now: () => number = Date.now,
): ConnectionTracker {
  const sockets = new Map<Socket, Tracked>();
  const byAddress = new Map<string, Set<Socket>>();
  let refused = 0;
  let lastLogMs = Number.NEGATIVE_INFINITY;

  const forget = (socket: Socket): void => {
    const t = sockets.get(socket);
    if (t === undefined) return;
    sockets.delete(socket);
    const set = byAddress.get(t.address);
    set?.delete(socket);
    if (set?.size === 0) byAddress.delete(t.address);
  };

  /** Closes the longest-idle socket among `pool`; false when all are busy. */
  const evictIdle = (pool: Iterable<Socket>): boolean => {
    let victim: Socket | undefined;
    let since = Number.POSITIVE_INFINITY;
    for (const s of pool) {
      const t = sockets.get(s);
      if (t !== undefined && t.busy === 0 && t.idleSinceMs < since) {
        victim = s;
        since = t.idleSinceMs;
      }
    }
    if (victim === undefined) return false;
    forget(victim);
    victim.destroy();
    return true;
  };

  const refuse = (socket: Socket, address: string, why: string): void => {
    socket.destroy();
    refused++;
    const t = now();
    if (t - lastLogMs >= LOG_EVERY_MS) {
      logger.warn(
        { peer: address, refused, perAddress: limits.perAddress, total: limits.total, open: sockets.size },
        `refusing HTTP connections: ${why}`,
      );
      lastLogMs = t;
      refused = 0;
    }
  };

  server.on(event, (socket: Socket) => {
    const address = socket.remoteAddress ?? "unknown";
    const mine = byAddress.get(address);
    if (mine !== undefined && mine.size >= limits.perAddress && !evictIdle(mine)) {
      refuse(
        socket,
        address,
        `${address} holds ${mine.size} busy connections (at most ${limits.perAddress})`,
      );
      return;
    }
    if (sockets.size >= limits.total && !evictIdle(sockets.keys())) {
      refuse(socket, address, `${sockets.size} busy connections (at most ${limits.total})`);
      return;
    }
    sockets.set(socket, { address, busy: 0, idleSinceMs: now() });
    let set = byAddress.get(address);
    if (set === undefined) {
      set = new Set();
      byAddress.set(address, set);
    }
    set.add(socket);
    socket.once("close", () => forget(socket));
  });

  server.on("request", (req, res) => {
    const t = sockets.get(req.socket as Socket);
    if (t === undefined) return;
    t.busy++;
    res.once("close", () => {
      t.busy--;
      t.idleSinceMs = now();
    });
  });

  return {
    release: (socket) => forget(socket as Socket),
    get open() {
      return sockets.size;
    },
    get busy() {
      let n = 0;
      for (const t of sockets.values()) if (t.busy > 0) n++;
      return n;
    },
  };
}
