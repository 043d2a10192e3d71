import type {
  handleUnaryCall,
  Metadata,
  ServerUnaryCall,
  ServiceDefinition,
  sendUnaryData,
  UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { TensorClawError } from "../errors.js";
import { sendGrpcFailure } from "../grpc-unary.js";
import type { Logger } from "../logger.js";
import { silentLogger } from "../logger.js";
import { ReplayCache } from "../replay-cache.js";
import { checkValidatorCall, VALIDATOR_METADATA } from "../signing.js";

/**
 * Validator-call authentication for the Probe, UsageReport and
 * MinerDirectory services, exactly as probe.proto documents it: the
 * signature covers the method path, the x-tc-* metadata and a hash of the
 * request bytes AS RECEIVED (captured by a custom `requestDeserialize`
 * before any decoding, so re-encoding differences cannot matter).
 *
 * Order of checks: metadata well-formed, signed for this router, timestamp
 * fresh, signature valid (UNAUTHENTICATED otherwise); then `authorize(hotkey)` (PERMISSION_DENIED);
 * then the request id is remembered (UNAUTHENTICATED when replayed). Only
 * authorised validators can fill the replay cache, so strangers cannot
 * evict real entries from it.
 */

/** Decides whether a verified hotkey may call; may consult the chain. */
export type ValidatorAuthorizer = (hotkey: string) => boolean | Promise<boolean>;

/** Options of the validator-call check. */
export interface ValidatorAuthOptions {
  /** This router's id (--router-id): calls signed for another router are refused UNAUTHENTICATED. */
  readonly routerId: string;
  /** The allow-list / permit check. */
  readonly authorize: ValidatorAuthorizer;
  readonly clock?: () => number;
  /** Largest accepted |now - timestamp| (default 10,000 ms, as probe.proto says). */
  readonly freshnessMs?: number;
  readonly logger?: Logger;
}

/** Default freshness window of validator calls. */
export const DEFAULT_FRESHNESS_MS = 10_000;

/** An authorizer that admits exactly the listed hotkeys. */
export function allowList(hotkeys: readonly string[]): ValidatorAuthorizer {
  const set = new Set(hotkeys);
  return (hotkey) => set.has(hotkey);
}

/** What the capturing deserializer hands to the wrapped handler. */
interface Captured {
  readonly bytes: Buffer;
  readonly decode: () => unknown;
}

/** Where a wrapped call carries the hotkey that signed it (a symbol: no client field can spoof it). */
const VERIFIED_HOTKEY: unique symbol = Symbol("tensorclaw.validator-call.hotkey");

/**
 * The validator hotkey whose signature a {@link ValidatorAuth}-wrapped
 * handler's call carried, verified and authorised; undefined for a call that
 * did not go through the wrapper. Handlers that act per validator (a probe's
 * synthetic user, verdict logs) read it here.
 */
export function verifiedValidator(call: object): string | undefined {
  const v = (call as { [VERIFIED_HOTKEY]?: unknown })[VERIFIED_HOTKEY];
  return typeof v === "string" ? v : undefined;
}

/** Verifies signatures only: replay is checked after authorisation. */
class NoReplay extends ReplayCache {
  override remember(): boolean {
    return true;
  }
}

/** Wraps unary grpc-js services so every call must carry a valid validator signature. */
export class ValidatorAuth {
  readonly #authorize: ValidatorAuthorizer;
  readonly #routerId: string;
  readonly #clock: () => number;
  readonly #freshnessMs: number;
  readonly #replay: ReplayCache;
  readonly #noReplay = new NoReplay(1);
  readonly #log: Logger;

  constructor(options: ValidatorAuthOptions) {
    this.#authorize = options.authorize;
    this.#routerId = options.routerId;
    this.#clock = options.clock ?? Date.now;
    this.#freshnessMs = options.freshnessMs ?? DEFAULT_FRESHNESS_MS;
    // A timestamp may be up to one window old or ahead, so an id must be
    // remembered for two windows.
    this.#replay = new ReplayCache(2 * this.#freshnessMs);
    this.#log = options.logger ?? silentLogger();
  }

  /**
   * Checks one call. Resolves to the caller's hotkey, or rejects with a
   * TensorClawError (`unauthenticated`, `permission_denied`, `unavailable`).
   */
  async verify(metadata: Metadata, path: string, bytes: Uint8Array): Promise<string> {
    const get = (key: string) => {
      const values = metadata.get(key);
      // Two values for one entry is ambiguous: treat as malformed.
      if (values.length !== 1) return undefined;
      const v = values[0];
      return typeof v === "string" ? v : undefined;
    };
    const now = this.#clock();
    const res = checkValidatorCall(get, path, bytes, {
      routerId: this.#routerId,
      nowMs: now,
      freshnessMs: this.#freshnessMs,
      replay: this.#noReplay,
    });
    if (!res.ok) throw new TensorClawError("unauthenticated", res.detail);
    let allowed: boolean;
    try {
      allowed = await this.#authorize(res.hotkey);
    } catch (cause) {
      // Logged with its cause by the gRPC adapter (sendGrpcFailure).
      throw new TensorClawError("unavailable", "cannot check validator permits right now", { cause });
    }
    if (!allowed) {
      throw new TensorClawError("permission_denied", `hotkey ${res.hotkey} is not an allowed validator`);
    }
    const requestId = get(VALIDATOR_METADATA.requestId) as string;
    if (!this.#replay.remember(`call:${res.hotkey}:${requestId}`, this.#clock())) {
      throw new TensorClawError("unauthenticated", "this request id was already used");
    }
    return res.hotkey;
  }

  /**
   * Returns a copy of a unary service definition whose request deserializer
   * keeps the exact bytes, and an implementation that verifies each call
   * before decoding it and handing it to `implementation`. Register both
   * with `server.addService(definition, implementation)`.
   */
  wrap(
    definition: ServiceDefinition,
    implementation: UntypedServiceImplementation,
  ): { definition: ServiceDefinition; implementation: UntypedServiceImplementation } {
    const def: Record<string, unknown> = {};
    const impl: UntypedServiceImplementation = {};
    for (const [name, method] of Object.entries(definition)) {
      if (method.requestStream || method.responseStream) {
        throw new Error(`validator auth wraps unary methods only (${method.path})`);
      }
      const inner = implementation[name] as handleUnaryCall<unknown, unknown> | undefined;
      if (inner === undefined) throw new Error(`no handler for ${method.path}`);
      def[name] = {
        ...method,
        requestDeserialize: (bytes: Buffer): Captured => ({
          bytes,
          decode: () => method.requestDeserialize(bytes),
        }),
      };
      impl[name] = (call: ServerUnaryCall<Captured, unknown>, callback: sendUnaryData<unknown>) => {
        const captured = call.request;
        this.verify(call.metadata, method.path, captured.bytes).then(
          (hotkey) => {
            let message: unknown;
            try {
              message = captured.decode();
            } catch (cause) {
              const err = new TensorClawError("invalid_request", "the request message is malformed", {
                cause,
              });
              sendGrpcFailure(callback, err, method.path, this.#log);
              return;
            }
            // The handler sees the decoded message, as without the wrapper.
            (call as { request: unknown }).request = message;
            (call as { [VERIFIED_HOTKEY]?: string })[VERIFIED_HOTKEY] = hotkey;
            inner(call as ServerUnaryCall<unknown, unknown>, callback);
          },
          (err: unknown) => sendGrpcFailure(callback, err, method.path, this.#log),
        );
      };
    }
    return { definition: def as ServiceDefinition, implementation: impl };
  }
}
