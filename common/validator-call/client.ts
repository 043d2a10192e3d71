import { type Client, Metadata } from "@grpc/grpc-js";
import type { Hotkey } from "../identity.js";
import { signValidatorCall } from "../signing.js";

/*
 * The validator's half of a signed validator call (probe.proto documents
 * the contract): serialise once, sign exactly those bytes, send exactly
 * those bytes. The router's half, which checks it, is ./server.ts.
 */

/** The parts of a generated method definition a signed call needs. */
export interface UnaryMethod<Req, Res> {
  readonly path: string;
  readonly requestSerialize: (value: Req) => Buffer;
  readonly responseDeserialize: (value: Buffer) => Res;
}

/** Options of one signed call. */
export interface SignedCallOptions {
  /** Signing time (default now). */
  readonly nowMs?: number;
  /** Request id (default a fresh random one). */
  readonly requestId?: string;
  /** Call deadline in ms from now (default 10,000). */
  readonly timeoutMs?: number;
}

/**
 * Makes a unary call signed by a validator hotkey for the router
 * `routerId` (its --router-id; any other router refuses the call):
 * serializes the request once, signs exactly those bytes and sends exactly
 * those bytes.
 */
export function signedCall<Req, Res>(
  client: Client,
  method: UnaryMethod<Req, Res>,
  request: Req,
  key: Hotkey,
  routerId: string,
  options: SignedCallOptions = {},
): Promise<Res> {
  const bytes = method.requestSerialize(request);
  const entries = signValidatorCall(
    key,
    routerId,
    method.path,
    bytes,
    options.nowMs ?? Date.now(),
    options.requestId,
  );
  const md = new Metadata();
  for (const [k, v] of Object.entries(entries)) md.set(k, v);
  return rawUnaryCall(client, method, bytes, md, options.timeoutMs);
}

/** Deadline of a validator call unless the caller gives one. */
export const DEFAULT_CALL_TIMEOUT_MS = 10_000;

/** Sends pre-serialized request bytes with the given metadata (signed or not). */
export function rawUnaryCall<Res>(
  client: Client,
  method: Pick<UnaryMethod<unknown, Res>, "path" | "responseDeserialize">,
  bytes: Buffer,
  metadata: Metadata,
  timeoutMs = DEFAULT_CALL_TIMEOUT_MS,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      method.path,
      () => bytes,
      method.responseDeserialize,
      bytes,
      metadata,
      { deadline: Date.now() + timeoutMs },
      (err, value) => {
        if (err !== null || value === undefined) reject(err ?? new Error("empty response"));
        else resolve(value);
      },
    );
  });
}
