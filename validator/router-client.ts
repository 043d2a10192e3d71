import { credentials, type ServiceError, status } from "@grpc/grpc-js";
import type { Hotkey } from "../common/identity.js";
import type { Logger } from "../common/logger.js";
import { kindToProto, type ModelKind } from "../common/request-kinds.js";
import { splitRouterUrl } from "../common/router-id.js";
import { DEFAULT_CALL_TIMEOUT_MS, signedCall } from "../common/validator-call/client.js";
import {
  ListMinersRequest,
  type ListMinersResponse,
  MinerDirectoryServiceClient,
  MinerDirectoryServiceService,
  type MinerSession,
  MinerState,
} from "../gen/tensorclaw/v1/directory.js";
import {
  GetTrafficShapeRequest,
  type GetTrafficShapeResponse,
  type ModelVerdict,
  ProbeRequest,
  type ProbeResponse,
  ProbeServiceClient,
  ProbeServiceService,
  ReportVerdictsRequest,
} from "../gen/tensorclaw/v1/probe.js";
import { RequestKind, TunnelServiceClient } from "../gen/tensorclaw/v1/tunnel.js";
import {
  GetUsageRequest,
  type GetUsageResponse,
  UsageReportServiceClient,
  UsageReportServiceService,
} from "../gen/tensorclaw/v1/usage.js";
import { PROBE_TIMEOUT_MS } from "./probe-timeout.js";
import { readRouterId } from "./router-identity.js";

/** Default probe deadline (the router's own, see probe.proto). */
export { PROBE_TIMEOUT_MS };
/**
 * Extra time the router gets to report a probe that hit its deadline. Small,
 * because a whole round must end within the deadline + 1 s and signing 256
 * calls (sr25519, a few ms each on a busy machine) eats into that second.
 */
export const PROBE_REPORT_SLACK_MS = 250;

/** Raised when no router replica answered; the round must be skipped, not scored. */
export class RouterUnreachableError extends Error {
  constructor(readonly attempts: readonly string[]) {
    super(`router unreachable: ${attempts.join("; ")}`);
    this.name = "RouterUnreachableError";
  }
}

/**
 * The directory of every replica that answered. `unanswered` names the
 * replicas that did not: a miner missing from the listing may have its
 * tunnel there, so the listing is only complete when it is empty.
 */
export interface DirectoryListing extends ListMinersResponse {
  readonly unanswered?: readonly string[];
}

/** What to probe with. */
export interface ProbeOptions {
  /** Model to probe; empty or absent lets the router draw one the miner offers. */
  readonly model?: string;
  /** The OpenAI chat completion body the router sends (its `model` is ignored). */
  readonly body: Record<string, unknown>;
  /** Cancel, as a user disconnect would, after this many answer tokens; 0 relays the whole answer. */
  readonly cutAfterTokens: number;
  /**
   * How long the router may take before it reports, ms (default PROBE_TIMEOUT_MS,
   * the liveness deadline; an audit without a cut needs the request's deadline).
   */
  readonly timeoutMs?: number;
  /** The kind to send the probe as (ProbeRequest.kind); absent: the router's choice, chat first. */
  readonly kind?: ModelKind;
}

/** Most verdicts in one ReportVerdicts call (probe.proto); longer lists are sent in several. */
export const MAX_VERDICTS_PER_CALL = 4096;

/** What each replica made of a validator's verdicts. */
export interface VerdictReport {
  /** Per replica that answered every call: the (hotkey, model) pairs it now excludes. */
  readonly routers: readonly { readonly url: string; readonly excluded: number }[];
  /** Replicas that failed a call, with why: they may still route to a failed miner. */
  readonly unanswered: readonly string[];
}

/** The outcome of asking for one probe. */
export type ProbeOutcome =
  | { readonly kind: "probed"; readonly response: ProbeResponse }
  /** No replica that listed the miner still holds its tunnel (NOT_FOUND everywhere). */
  | { readonly kind: "absent"; readonly detail: string }
  /** The router (not the miner) failed: nothing to record. */
  | { readonly kind: "router_error"; readonly detail: string };

/** One replica's answer to a probe; `cut`: the call did not get through, so another replica may be asked. */
type AskedProbe =
  | Exclude<ProbeOutcome, { kind: "router_error" }>
  | { readonly kind: "router_error"; readonly detail: string; readonly cut: boolean };

interface Replica {
  readonly url: string;
  readonly probe: ProbeServiceClient;
  readonly usage: UsageReportServiceClient;
  readonly directory: MinerDirectoryServiceClient;
  /** Where the router id is read when the URL names none. */
  readonly tunnel: TunnelServiceClient;
  /** The router id the URL pins (`?id=`), if any: calls are signed for it, never for another. */
  readonly pinnedId: string | undefined;
  /** The id read from the router itself, once asked (forgotten when the router refuses a call as unauthenticated). */
  learnedId: Promise<string> | undefined;
}

type ServiceClient = Replica["probe"] | Replica["usage"] | Replica["directory"];

/** Options of a {@link RouterClient}. */
export interface RouterClientOptions {
  readonly signer: Hotkey;
  readonly logger: Logger;
  /** Unix ms; signatures are timestamped with it. */
  readonly clock?: () => number;
  /** Deadline of Directory and Usage calls. */
  readonly callTimeoutMs?: number;
}

/**
 * Largest probe answer taken from a router. An audit of a model that serves
 * only embeddings carries its vectors back, and the router passes on up to
 * 2048 × 4096 values in one answer (its tunnel's cap), 32 MiB as floats:
 * grpc-js's default of 4 MiB would let a miner with long vectors turn every
 * such audit into a router error, never judged.
 */
export const PROBE_MAX_RECEIVE_BYTES = 48 * 1024 * 1024;

/**
 * `grpc://host:port` or `grpcs://host:port` (with an optional
 * `?id=<router-id>`) → grpc-js target and credentials.
 */
export function routerTarget(url: string): { target: string; secure: boolean } {
  const u = splitRouterUrl(url, "--router").url;
  if (u.protocol !== "grpc:" && u.protocol !== "grpcs:") throw new Error(`not a gRPC router URL: ${url}`);
  const secure = u.protocol === "grpcs:";
  return { target: u.port === "" ? `${u.hostname}:${secure ? 443 : 80}` : u.host, secure };
}

function describe(err: ServiceError): string {
  return `${status[err.code] ?? err.code}: ${err.details || err.message}`;
}

/**
 * The validator's only way to the router: the generated gRPC clients and
 * method definitions, every call signed per probe.proto's validator call
 * scheme through `signedCall`, which serializes the request once with the
 * generated encoder, signs exactly those bytes and sends exactly those
 * bytes. Several replicas that share one ledger are tried in order; the last
 * one that answered is tried first.
 *
 * Each call is signed for one router id, so a router that receives it can
 * not replay it to another: the id its URL pins (`?id=`), else the id the
 * router names in its tunnel Challenge (router-identity.ts).
 */
export class RouterClient {
  readonly #replicas: readonly Replica[];
  readonly #signer: Hotkey;
  readonly #log: Logger;
  readonly #clock: () => number;
  readonly #callTimeoutMs: number;
  #active = 0;
  /** Replica indexes listing each miner (probeable sessions first), from the last listing. */
  #where = new Map<string, number[]>();

  constructor(urls: readonly string[], opts: RouterClientOptions) {
    if (urls.length === 0) throw new Error("at least one router URL is needed");
    this.#replicas = urls.map((url) => {
      const { target, secure } = routerTarget(url);
      const creds = secure ? credentials.createSsl() : credentials.createInsecure();
      return {
        url,
        probe: new ProbeServiceClient(target, creds, {
          "grpc.max_receive_message_length": PROBE_MAX_RECEIVE_BYTES,
        }),
        usage: new UsageReportServiceClient(target, creds),
        directory: new MinerDirectoryServiceClient(target, creds),
        tunnel: new TunnelServiceClient(target, creds),
        pinnedId: splitRouterUrl(url, "--router").routerId,
        learnedId: undefined,
      };
    });
    this.#signer = opts.signer;
    this.#log = opts.logger;
    this.#clock = opts.clock ?? Date.now;
    this.#callTimeoutMs = opts.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  }

  /** URL of the replica currently preferred. */
  get activeRouter(): string {
    return this.#replicas[this.#active]?.url ?? "";
  }

  async #failover<T>(call: (r: Replica) => Promise<T>): Promise<T> {
    const attempts: string[] = [];
    // The order is fixed when the call starts: calls run concurrently (the validator lists and
    // scores beside its probes), and one that moves the preferred replica while this one waits
    // would otherwise send this one back to the replica it just failed on, skipping the others.
    const start = this.#active;
    for (let i = 0; i < this.#replicas.length; i++) {
      const idx = (start + i) % this.#replicas.length;
      const r = this.#replicas[idx] as Replica;
      try {
        const out = await call(r);
        if (idx !== this.#active) this.#log.warn({ router: r.url }, "failed over to another router replica");
        this.#active = idx;
        return out;
      } catch (err) {
        const detail = isServiceError(err) ? describe(err) : String(err);
        this.#log.warn({ router: r.url, err: detail }, "router call failed");
        attempts.push(`${r.url} (${detail})`);
      }
    }
    throw new RouterUnreachableError(attempts);
  }

  /** The id to sign calls to `r` for: pinned by its URL, else asked of the router once. */
  #routerIdOf(r: Replica): Promise<string> {
    if (r.pinnedId !== undefined) return Promise.resolve(r.pinnedId);
    if (r.learnedId === undefined) {
      const learning = readRouterId(r.tunnel, this.#callTimeoutMs);
      r.learnedId = learning;
      learning.then(
        (id) => this.#log.info({ router: r.url, routerId: id }, "router id read from its challenge"),
        () => {
          if (r.learnedId === learning) r.learnedId = undefined;
        },
      );
    }
    return r.learnedId;
  }

  async #sign<Req, Res>(
    r: Replica,
    client: ServiceClient,
    method: Parameters<typeof signedCall<Req, Res>>[1],
    req: Req,
    timeoutMs: number,
  ): Promise<Res> {
    const asked = this.#routerIdOf(r);
    const routerId = await asked;
    try {
      return await signedCall(client, method, req, this.#signer, routerId, {
        nowMs: this.#clock(),
        timeoutMs,
      });
    } catch (err) {
      // The router may have been restarted under another id: ask it again next time.
      if (isServiceError(err) && err.code === status.UNAUTHENTICATED && r.learnedId === asked) {
        r.learnedId = undefined;
      }
      throw err;
    }
  }

  /**
   * Every open session on every replica that answers (a miner's tunnels live
   * on the routers it dialled, so one replica's directory is not the whole
   * picture), ordered by hotkey then session id. Remembers which replica
   * holds each miner, so its probe goes there. Throws RouterUnreachableError
   * only when no replica answers; the replicas that did not answer are named
   * in `unanswered`.
   */
  async listMiners(): Promise<DirectoryListing> {
    const req = ListMinersRequest.create();
    const results = await Promise.allSettled(
      this.#replicas.map((r) =>
        this.#sign(r, r.directory, MinerDirectoryServiceService.listMiners, req, this.#callTimeoutMs),
      ),
    );
    const attempts: string[] = [];
    const listed: { index: number; sessions: readonly MinerSession[] }[] = [];
    let reportTimeMs = 0n;
    // The youngest answering replica: its miners may still be reconnecting.
    let servingSinceMs = 0n;
    results.forEach((res, index) => {
      const url = this.#replicas[index]?.url ?? "";
      if (res.status === "fulfilled") {
        listed.push({ index, sessions: res.value.sessions });
        if (res.value.reportTimeMs > reportTimeMs) reportTimeMs = res.value.reportTimeMs;
        if (res.value.servingSinceMs > servingSinceMs) servingSinceMs = res.value.servingSinceMs;
        return;
      }
      const detail = isServiceError(res.reason) ? describe(res.reason) : String(res.reason);
      this.#log.warn({ router: url, err: detail }, "router directory call failed");
      attempts.push(`${url} (${detail})`);
    });
    const first = listed[0];
    if (first === undefined) throw new RouterUnreachableError(attempts);
    this.#active = first.index;
    // Earlier replicas win, but one where the miner can be probed beats one where it cannot.
    const where = new Map<string, number[]>();
    const probeable = (st: MinerState) =>
      st === MinerState.MINER_STATE_ACTIVE || st === MinerState.MINER_STATE_GHOST;
    for (const pass of [true, false]) {
      for (const l of listed) {
        for (const s of l.sessions) {
          if (pass && !probeable(s.state)) continue;
          const at = where.get(s.hotkey) ?? [];
          if (!at.includes(l.index)) at.push(l.index);
          where.set(s.hotkey, at);
        }
      }
    }
    this.#where = where;
    const sessions = listed.flatMap((l) => l.sessions);
    sessions.sort((a, b) =>
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
    return { sessions, reportTimeMs, servingSinceMs, unanswered: attempts };
  }

  /** Usage over the window (default 24 h), from the first replica that answers. */
  getUsage(windowSeconds = 0, hotkeys: readonly string[] = []): Promise<GetUsageResponse> {
    const req = GetUsageRequest.create({ windowSeconds, hotkeys: [...hotkeys] });
    return this.#failover((r) =>
      this.#sign(r, r.usage, UsageReportServiceService.getUsage, req, this.#callTimeoutMs),
    );
  }

  /**
   * The shape of the user traffic the active replica served over the last
   * hour (all models), which probes are drawn from.
   */
  trafficShape(): Promise<GetTrafficShapeResponse> {
    const req = GetTrafficShapeRequest.create();
    return this.#failover((r) =>
      this.#sign(r, r.probe, ProbeServiceService.getTrafficShape, req, this.#callTimeoutMs),
    );
  }

  /**
   * Probes one miner on a replica whose directory listed it (its tunnel
   * lives there), else the active one; when that replica answers NOT_FOUND
   * (the tunnel closed since the listing) or the call did not get through
   * (UNAVAILABLE, or CANCELLED by a connection torn down: a replica that died
   * since the listing), the next replica that listed it is asked. Never
   * throws: a router fault is reported as such so the miner is not punished
   * for it, and so is a miner absent from the replicas that answered while
   * one that listed it could not be reached (its tunnel may still be there).
   */
  async probe(hotkey: string, opts: ProbeOptions): Promise<ProbeOutcome> {
    const timeoutMs = opts.timeoutMs ?? PROBE_TIMEOUT_MS;
    // `timeout_ms` is ignored by the router (its liveness deadline is its own); sent for older ones.
    const req = ProbeRequest.create({
      hotkey,
      model: opts.model ?? "",
      timeoutMs,
      requestJson: JSON.stringify(opts.body),
      cutAfterTokens: opts.cutAfterTokens,
      kind: opts.kind === undefined ? RequestKind.REQUEST_KIND_UNSPECIFIED : kindToProto(opts.kind),
    });
    const at = this.#where.get(hotkey) ?? [this.#active];
    let outcome: ProbeOutcome = { kind: "absent", detail: "not listed" };
    let unreachable: ProbeOutcome | undefined;
    for (const index of at) {
      const asked = await this.#probeOn(this.#replicas[index] as Replica, req, timeoutMs);
      if (asked.kind === "probed") return asked;
      if (asked.kind === "router_error" && !asked.cut) return asked;
      if (asked.kind === "router_error") unreachable ??= { kind: "router_error", detail: asked.detail };
      else outcome = asked;
    }
    return unreachable ?? outcome;
  }

  /**
   * Sends verdicts to every replica (each router keeps its own, in memory),
   * at most MAX_VERDICTS_PER_CALL per call. Throws RouterUnreachableError
   * only when no replica took them all.
   */
  async reportVerdicts(verdicts: readonly ModelVerdict[]): Promise<VerdictReport> {
    const batches: ReportVerdictsRequest[] = [];
    for (let i = 0; i < verdicts.length; i += MAX_VERDICTS_PER_CALL) {
      batches.push(ReportVerdictsRequest.create({ verdicts: verdicts.slice(i, i + MAX_VERDICTS_PER_CALL) }));
    }
    if (batches.length === 0) batches.push(ReportVerdictsRequest.create({ verdicts: [] }));
    const results = await Promise.allSettled(
      this.#replicas.map(async (r) => {
        let excluded = 0;
        for (const b of batches) {
          const res = await this.#sign(
            r,
            r.probe,
            ProbeServiceService.reportVerdicts,
            b,
            this.#callTimeoutMs,
          );
          excluded = res.excluded;
        }
        return { url: r.url, excluded };
      }),
    );
    const routers: { url: string; excluded: number }[] = [];
    const unanswered: string[] = [];
    results.forEach((res, index) => {
      if (res.status === "fulfilled") {
        routers.push(res.value);
        return;
      }
      const url = this.#replicas[index]?.url ?? "";
      const detail = isServiceError(res.reason) ? describe(res.reason) : String(res.reason);
      this.#log.warn({ router: url, err: detail }, "router did not take the verdicts");
      unanswered.push(`${url} (${detail})`);
    });
    if (routers.length === 0) throw new RouterUnreachableError(unanswered);
    return { routers, unanswered };
  }

  async #probeOn(r: Replica, req: ProbeRequest, timeoutMs: number): Promise<AskedProbe> {
    try {
      const response = await this.#sign(
        r,
        r.probe,
        ProbeServiceService.probe,
        req,
        timeoutMs + PROBE_REPORT_SLACK_MS,
      );
      return { kind: "probed", response };
    } catch (err) {
      const detail = isServiceError(err) ? describe(err) : String(err);
      if (isServiceError(err) && err.code === status.NOT_FOUND) return { kind: "absent", detail };
      // The validator cancels no probe itself (its deadline ends one as DEADLINE_EXCEEDED).
      const cut = isServiceError(err) && (err.code === status.UNAVAILABLE || err.code === status.CANCELLED);
      return { kind: "router_error", detail, cut };
    }
  }

  /** Closes every channel. */
  close(): void {
    for (const r of this.#replicas) {
      r.probe.close();
      r.usage.close();
      r.directory.close();
      r.tunnel.close();
    }
  }
}

function isServiceError(err: unknown): err is ServiceError {
  return typeof err === "object" && err !== null && "code" in err && "details" in err;
}
