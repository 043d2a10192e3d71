import { unaryHandler } from "../../common/grpc-unary.js";
import { type Logger, silentLogger } from "../../common/logger.js";
import { CHAT_ONLY, kindsToProto } from "../../common/request-kinds.js";
import {
  type ListMinersRequest,
  type ListMinersResponse,
  type MinerDirectoryServiceServer,
  MinerDirectoryServiceService,
  type MinerSession,
  MinerState,
  Transport,
} from "../../gen/tensorclaw/v1/directory.js";
import type { SessionState, SessionView, TransportKind } from "../tunnel/types.js";

const TRANSPORTS: Readonly<Record<TransportKind, Transport>> = {
  grpc: Transport.TRANSPORT_GRPC,
  ws: Transport.TRANSPORT_WEBSOCKET,
};

const STATES: Readonly<Record<SessionState, MinerState>> = {
  active: MinerState.MINER_STATE_ACTIVE,
  ghost: MinerState.MINER_STATE_GHOST,
  banned: MinerState.MINER_STATE_BANNED,
  draining: MinerState.MINER_STATE_DRAINING,
};

/** What the MinerDirectory service reads. */
export interface DirectoryServiceDeps {
  /** The tunnel hub's session snapshot. */
  readonly sessions: () => readonly SessionView[];
  readonly clock?: () => number;
  /** When this router started accepting tunnels (Unix ms); 0 when unknown. */
  readonly servingSinceMs?: number;
  readonly logger?: Logger;
}

/** One session as the directory shows it. */
export function toMinerSession(s: SessionView): MinerSession {
  return {
    hotkey: s.hotkey,
    sessionId: s.sessionId,
    models: s.models.map((m) => ({
      id: m.id,
      maxConcurrency: m.maxConcurrency,
      contextLength: m.contextLength,
      inFlight: m.inFlight,
      kinds: kindsToProto(m.kinds ?? CHAT_ONLY),
    })),
    transport: TRANSPORTS[s.transport] ?? Transport.TRANSPORT_UNSPECIFIED,
    state: STATES[s.state] ?? MinerState.MINER_STATE_UNSPECIFIED,
    inFlight: s.inFlight,
    latencyMs: s.latencyMs,
    connectedSinceMs: BigInt(Math.trunc(s.connectedSinceMs)),
    softwareVersion: s.softwareVersion,
  };
}

/** The directory for a snapshot: sessions ordered by hotkey then session id (directory.proto). */
export function listMiners(
  sessions: readonly SessionView[],
  nowMs: number,
  servingSinceMs = 0,
): ListMinersResponse {
  const ordered = [...sessions].sort((a, b) =>
    a.hotkey !== b.hotkey
      ? a.hotkey < b.hotkey
        ? -1
        : 1
      : a.sessionId < b.sessionId
        ? -1
        : a.sessionId > b.sessionId
          ? 1
          : 0,
  );
  return {
    sessions: ordered.map(toMinerSession),
    reportTimeMs: BigInt(nowMs),
    servingSinceMs: BigInt(Math.trunc(servingSinceMs)),
  };
}

/** The MinerDirectoryService implementation (wrap it with ValidatorAuth before registering). */
export function directoryService(deps: DirectoryServiceDeps): MinerDirectoryServiceServer {
  const clock = deps.clock ?? Date.now;
  return {
    listMiners: unaryHandler<ListMinersRequest, ListMinersResponse>(
      MinerDirectoryServiceService.listMiners.path,
      deps.logger ?? silentLogger(),
      () => listMiners(deps.sessions(), clock(), deps.servingSinceMs),
    ),
  };
}
