import {
  type handleUnaryCall,
  type Metadata,
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type sendUnaryData,
  status,
} from "@grpc/grpc-js";
import { ReplayCache } from "../../common/replay-cache.js";
import { checkValidatorCall } from "../../common/signing.js";
import {
  ListMinersRequest,
  type ListMinersResponse,
  MinerDirectoryServiceService,
  type MinerSession,
  MinerState,
  Transport,
} from "../../gen/tensorclaw/v1/directory.js";
import {
  ProbeRequest,
  type ProbeResponse,
  ProbeServiceService,
  ReportVerdictsRequest,
  type ReportVerdictsResponse,
  Verdict,
} from "../../gen/tensorclaw/v1/probe.js";
import { RequestKind } from "../../gen/tensorclaw/v1/tunnel.js";
import {
  GetUsageRequest,
  type GetUsageResponse,
  type MinerUsage,
  UsageReportServiceService,
} from "../../gen/tensorclaw/v1/usage.js";

/** How the stand-in answers a probe: a response, a gRPC error, or never. */
export type ProbeAnswer = ProbeResponse | { readonly code: status; readonly details: string } | "never";

/** What the stand-in router serves. Mutable: tests change it between calls. */
export interface RouterScript {
  sessions: MinerSession[];
  usage: MinerUsage[];
  probe: (req: ProbeRequest) => ProbeAnswer | Promise<ProbeAnswer>;
  /** Validator hotkeys allowed; empty means any correctly signed caller. */
  allowed: Set<string>;
  /** ListMinersResponse.serving_since_ms (0: unknown). */
  servingSinceMs: bigint;
  /** GetUsageResponse.free_traffic_counted (a dev router's setting). */
  freeTrafficCounted: boolean;
  /** Awaited before ListMiners and GetUsage answer (a slow router); undefined: answer at once. */
  stall: (() => Promise<void>) | undefined;
}

/** One call the stand-in received and authenticated. */
export interface ReceivedCall {
  readonly method: string;
  readonly hotkey: string;
  readonly request: unknown;
}

/** A running stand-in router. */
export interface RouterStandIn {
  /** `grpc://127.0.0.1:<port>?id=<routerId>`: it serves no tunnel to learn the id from, so the URL names it. */
  readonly url: string;
  /** The router id calls must be signed for. */
  readonly routerId: string;
  readonly script: RouterScript;
  readonly calls: ReceivedCall[];
  /** Calls refused, with the gRPC status sent. */
  readonly refused: { method: string; code: status; detail: string }[];
  /** Probes currently waiting for an answer. */
  readonly inFlight: number;
  readonly maxInFlight: number;
  close(): Promise<void>;
}

interface Raw<T> {
  readonly bytes: Uint8Array;
  readonly msg: T;
}

/** A directory session with sensible defaults. */
export function session(hotkey: string, over: Partial<MinerSession> = {}): MinerSession {
  return {
    hotkey,
    sessionId: `s-${hotkey.slice(0, 6)}`,
    models: [{ id: "m", maxConcurrency: 4, contextLength: 8192, inFlight: 0, kinds: [] }],
    transport: Transport.TRANSPORT_GRPC,
    state: MinerState.MINER_STATE_ACTIVE,
    inFlight: 0,
    latencyMs: 10,
    connectedSinceMs: 1n,
    softwareVersion: "test",
    ...over,
  };
}

/** A passing probe answer. */
export function okProbe(latencyMs: number): ProbeResponse {
  return {
    ok: true,
    ghost: false,
    ttftMs: latencyMs / 2,
    latencyMs,
    completionTokens: 5,
    error: "",
    model: "m",
    sessionId: "s",
    finishedAtMs: 0n,
    content: "Hello there",
    finishReason: 0,
    logprobs: [],
    cut: true,
    livenessMs: latencyMs,
    embeddings: [],
    kind: RequestKind.REQUEST_KIND_CHAT,
  };
}

/** A failed (ghost) probe answer. */
export function ghostProbe(): ProbeResponse {
  return { ...okProbe(8000), ok: false, ghost: true, ttftMs: 0, completionTokens: 0, error: "timeout" };
}

/** The router id every stand-in runs as. */
export const STAND_IN_ROUTER_ID = "router-stand-in";

/**
 * A real gRPC server on 127.0.0.1:0 implementing the generated Directory,
 * UsageReport and Probe server interfaces the way the contract says, and
 * verifying every validator call signature over the exact bytes it received
 * (so a client that signs anything else is refused UNAUTHENTICATED).
 */
export async function startRouterStandIn(script: Partial<RouterScript> = {}): Promise<RouterStandIn> {
  const full: RouterScript = {
    sessions: [],
    usage: [],
    probe: () => okProbe(50),
    allowed: new Set(),
    servingSinceMs: 0n,
    freeTrafficCounted: false,
    stall: undefined,
    ...script,
  };
  const replay = new ReplayCache(20_000);
  const server = new Server();
  const calls: ReceivedCall[] = [];
  const refused: RouterStandIn["refused"] = [];
  const pending = new Set<() => void>();
  const me = { inFlight: 0, maxInFlight: 0 };

  const auth = <T>(method: string, call: ServerUnaryCall<Raw<T>, unknown>, cb: sendUnaryData<never>) => {
    const md: Metadata = call.metadata;
    const get = (k: string) => {
      const v = md.get(k)[0];
      return typeof v === "string" ? v : undefined;
    };
    const res = checkValidatorCall(get, method, call.request.bytes, {
      routerId: STAND_IN_ROUTER_ID,
      nowMs: Date.now(),
      freshnessMs: 10_000,
      replay,
    });
    if (!res.ok) {
      refused.push({ method, code: status.UNAUTHENTICATED, detail: res.detail });
      cb({ code: status.UNAUTHENTICATED, details: res.detail });
      return undefined;
    }
    if (full.allowed.size > 0 && !full.allowed.has(res.hotkey)) {
      refused.push({ method, code: status.PERMISSION_DENIED, detail: res.hotkey });
      cb({ code: status.PERMISSION_DENIED, details: "not an allowed validator" });
      return undefined;
    }
    calls.push({ method, hotkey: res.hotkey, request: call.request.msg });
    return res.hotkey;
  };

  const keepRaw =
    <T>(decode: (b: Uint8Array) => T) =>
    (b: Buffer): Raw<T> => ({
      bytes: new Uint8Array(b),
      msg: decode(b),
    });

  const listMiners: handleUnaryCall<Raw<ListMinersRequest>, ListMinersResponse> = async (call, cb) => {
    if (auth(MinerDirectoryServiceService.listMiners.path, call, cb) === undefined) return;
    await full.stall?.();
    cb(null, {
      sessions: full.sessions,
      reportTimeMs: BigInt(Date.now()),
      servingSinceMs: full.servingSinceMs,
    });
  };
  const getUsage: handleUnaryCall<Raw<GetUsageRequest>, GetUsageResponse> = async (call, cb) => {
    if (auth(UsageReportServiceService.getUsage.path, call, cb) === undefined) return;
    await full.stall?.();
    const now = BigInt(Date.now());
    cb(null, {
      reportTimeMs: now,
      windowStartMs: now - 86_400_000n,
      windowEndMs: now,
      bucketMs: 60_000,
      miners: full.usage,
      freeTrafficCounted: full.freeTrafficCounted,
    });
  };
  // Verdicts as a router keeps them: the latest per (hotkey, model); the answer counts the FAILED.
  const verdicts = new Map<string, Verdict>();
  const reportVerdicts: handleUnaryCall<Raw<ReportVerdictsRequest>, ReportVerdictsResponse> = (call, cb) => {
    if (auth(ProbeServiceService.reportVerdicts.path, call, cb) === undefined) return;
    for (const v of call.request.msg.verdicts) verdicts.set(`${v.hotkey}\n${v.model}`, v.verdict);
    cb(null, { excluded: [...verdicts.values()].filter((v) => v === Verdict.VERDICT_FAILED).length });
  };
  const probe: handleUnaryCall<Raw<ProbeRequest>, ProbeResponse> = (call, cb) => {
    if (auth(ProbeServiceService.probe.path, call, cb) === undefined) return;
    me.inFlight++;
    me.maxInFlight = Math.max(me.maxInFlight, me.inFlight);
    const done = () => {
      me.inFlight--;
    };
    Promise.resolve(full.probe(call.request.msg)).then((answer) => {
      if (answer === "never") {
        // Held until the client gives up (its deadline cancels the call) or the server closes.
        const release = () => {
          pending.delete(release);
          done();
        };
        pending.add(release);
        call.on("cancelled", release);
        return;
      }
      done();
      if ("code" in answer) cb({ code: answer.code, details: answer.details });
      else cb(null, answer);
    });
  };

  server.addService(
    {
      ...MinerDirectoryServiceService,
      listMiners: {
        ...MinerDirectoryServiceService.listMiners,
        requestDeserialize: keepRaw((b) => ListMinersRequest.decode(b)),
      },
    },
    { listMiners },
  );
  server.addService(
    {
      ...UsageReportServiceService,
      getUsage: {
        ...UsageReportServiceService.getUsage,
        requestDeserialize: keepRaw((b) => GetUsageRequest.decode(b)),
      },
    },
    { getUsage },
  );
  server.addService(
    {
      ...ProbeServiceService,
      probe: { ...ProbeServiceService.probe, requestDeserialize: keepRaw((b) => ProbeRequest.decode(b)) },
      reportVerdicts: {
        ...ProbeServiceService.reportVerdicts,
        requestDeserialize: keepRaw((b) => ReportVerdictsRequest.decode(b)),
      },
    },
    { probe, reportVerdicts },
  );
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    );
  });
  const standIn: RouterStandIn = {
    url: `grpc://127.0.0.1:${port}?id=${STAND_IN_ROUTER_ID}`,
    routerId: STAND_IN_ROUTER_ID,
    script: full,
    calls,
    refused,
    get inFlight() {
      return me.inFlight;
    },
    get maxInFlight() {
      return me.maxInFlight;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const release of [...pending]) release();
        server.forceShutdown();
        resolve();
      }),
  };
  return standIn;
}
