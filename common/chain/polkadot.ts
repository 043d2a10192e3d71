import { ApiPromise, WsProvider } from "@polkadot/api";
import type { SubmittableExtrinsic } from "@polkadot/api/types";
import type { ProviderInterface } from "@polkadot/rpc-provider/types";
import type { Codec, ISubmittableResult } from "@polkadot/types/types";
import { u8aToHex } from "@polkadot/util";
import { encodeAddress } from "@polkadot/util-crypto";
import { TensorClawError } from "../errors.js";
import type { Hotkey } from "../identity.js";
import { SS58_PREFIX } from "../identity.js";
import type { Logger } from "../logger.js";
import type { Chain, ExtrinsicOutcome, Metagraph, Neuron } from "./chain.js";

/** Longest wait for a submitted extrinsic to land in a block, unless told otherwise. */
export const DEFAULT_INCLUSION_TIMEOUT_MS = 120_000;
/** Longest wait for the first connection, unless told otherwise. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
/** Delay before the provider re-dials a dropped connection. */
export const RECONNECT_DELAY_MS = 2500;

/** How to reach Subtensor and who signs. */
export interface PolkadotChainOptions {
  /** ws:// or wss:// endpoint; ignored when `provider` is given. */
  readonly endpoint?: string;
  /** A ready provider (tests use an in-process one). */
  readonly provider?: ProviderInterface;
  /** Signs weight extrinsics; absent for a read-only client (the router's admission). */
  readonly signer?: Hotkey;
  readonly logger: Logger;
  /** Longest wait for a submitted extrinsic to land in a block. */
  readonly inclusionTimeoutMs?: number;
  /** Longest wait for the first connection. */
  readonly connectTimeoutMs?: number;
}

type Query = (...args: unknown[]) => Promise<Codec>;

function toNum(c: Codec | undefined): number {
  return c === undefined ? 0 : Number(c.toString());
}

function upperFirst(s: string): string {
  return s.length === 0 ? s : s.charAt(0).toUpperCase() + s.slice(1);
}

/** Subtensor through `@polkadot/api`: metagraph reads and signed weight writes. */
export class PolkadotChain implements Chain {
  readonly #api: ApiPromise;
  readonly #signer: Hotkey | undefined;
  readonly #log: Logger;
  readonly #inclusionTimeoutMs: number;

  constructor(api: ApiPromise, opts: PolkadotChainOptions) {
    this.#api = api;
    this.#signer = opts.signer;
    this.#log = opts.logger;
    this.#inclusionTimeoutMs = opts.inclusionTimeoutMs ?? DEFAULT_INCLUSION_TIMEOUT_MS;
  }

  /** The underlying API (for decoding in tools and tests). */
  get api(): ApiPromise {
    return this.#api;
  }

  #tx(name: string): (...args: unknown[]) => SubmittableExtrinsic<"promise"> {
    const tx = this.#api.tx.subtensorModule?.[name];
    if (tx === undefined) throw new Error(`runtime has no SubtensorModule.${name} call`);
    return tx as unknown as (...args: unknown[]) => SubmittableExtrinsic<"promise">;
  }

  async readMetagraph(netuid: number): Promise<Metagraph> {
    // Read everything at one block so the snapshot is consistent.
    const header = await this.#api.rpc.chain.getHeader();
    const block = header.number.toNumber();
    const at = await this.#api.at(header.hash);
    const sm = at.query.subtensorModule as unknown as Record<string, Query | undefined> | undefined;
    const q = (name: string): Query => {
      const fn = sm?.[name];
      if (fn === undefined) throw new Error(`runtime has no SubtensorModule.${name} storage`);
      return fn;
    };
    // One round trip for every per-subnet value.
    const names = [
      "subnetworkN",
      "validatorPermit",
      "lastUpdate",
      "commitRevealWeightsEnabled",
      "weightsSetRateLimit",
      "weightsVersionKey",
      "tempo",
      "revealPeriodEpochs",
      "minAllowedWeights",
    ] as const;
    const values = await at.queryMulti(
      names.map((n) => [q(n), netuid]) as unknown as Parameters<typeof at.queryMulti>[0],
    );
    const get = (n: (typeof names)[number]) => values[names.indexOf(n)];
    const n = toNum(get("subnetworkN"));
    const timelock = await this.#timelockCapability(sm);
    const permits = (get("validatorPermit") as unknown as { toJSON(): unknown }).toJSON() as boolean[];
    const lastUpdate = (get("lastUpdate") as unknown as Codec[] | undefined) ?? [];
    const keysQ = q("keys") as unknown as { multi(args: unknown[]): Promise<Codec[]> };
    const keys =
      n === 0 ? [] : await keysQ.multi(Array.from({ length: n }, (_, uid) => [netuid, uid] as const));
    const neurons: Neuron[] = keys.map((k, uid) => ({
      uid,
      // Encode with Bittensor's prefix whatever system_properties said.
      hotkey: encodeAddress(k.toU8a(), SS58_PREFIX),
      validatorPermit: permits[uid] === true,
      lastUpdate: toNum(lastUpdate[uid]),
    }));
    return {
      netuid,
      block,
      neurons,
      commitRevealEnabled: (get("commitRevealWeightsEnabled") as unknown as { isTrue: boolean }).isTrue,
      weightsSetRateLimit: toNum(get("weightsSetRateLimit")),
      weightsVersionKey: BigInt(get("weightsVersionKey")?.toString() ?? "0"),
      tempo: toNum(get("tempo")),
      revealPeriodEpochs: toNum(get("revealPeriodEpochs")),
      minAllowedWeights: toNum(get("minAllowedWeights")),
      ...timelock,
    };
  }

  /**
   * The runtime's timelocked commit-reveal version (only when it has the
   * `commit_timelocked_weights` call and the version storage) and its block
   * time (Aura slot duration, else twice Timestamp's minimum period).
   */
  async #timelockCapability(
    sm: Record<string, Query | undefined> | undefined,
  ): Promise<{ commitRevealVersion?: number; blockTimeMs?: number }> {
    const out: { commitRevealVersion?: number; blockTimeMs?: number } = {};
    const consts = this.#api.consts as unknown as Record<
      string,
      Record<string, Codec | undefined> | undefined
    >;
    const slot = consts.aura?.slotDuration;
    const minPeriod = consts.timestamp?.minimumPeriod;
    if (slot !== undefined && toNum(slot) > 0) out.blockTimeMs = toNum(slot);
    else if (minPeriod !== undefined && toNum(minPeriod) > 0) out.blockTimeMs = 2 * toNum(minPeriod);
    const version = sm?.commitRevealWeightsVersion;
    if (this.#api.tx.subtensorModule?.commitTimelockedWeights !== undefined && version !== undefined) {
      out.commitRevealVersion = toNum(await version());
    }
    return out;
  }

  setWeights(
    netuid: number,
    uids: readonly number[],
    values: readonly number[],
    versionKey: bigint,
  ): Promise<ExtrinsicOutcome> {
    return this.#submit(this.#tx("setWeights")(netuid, [...uids], [...values], versionKey));
  }

  commitWeights(netuid: number, commitHash: string): Promise<ExtrinsicOutcome> {
    return this.#submit(this.#tx("commitWeights")(netuid, commitHash));
  }

  commitTimelockedWeights(
    netuid: number,
    commit: Uint8Array,
    revealRound: bigint,
    commitRevealVersion: number,
  ): Promise<ExtrinsicOutcome> {
    return this.#submit(
      // Hex, not the Uint8Array: @polkadot/types reads a Uint8Array given for `Bytes`
      // as already SCALE-encoded (length prefix first); hex is taken as the raw bytes.
      this.#tx("commitTimelockedWeights")(netuid, u8aToHex(commit), revealRound, commitRevealVersion),
    );
  }

  revealWeights(
    netuid: number,
    uids: readonly number[],
    values: readonly number[],
    salt: readonly number[],
    versionKey: bigint,
  ): Promise<ExtrinsicOutcome> {
    return this.#submit(this.#tx("revealWeights")(netuid, [...uids], [...values], [...salt], versionKey));
  }

  async close(): Promise<void> {
    await this.#api.disconnect();
  }

  #submit(tx: SubmittableExtrinsic<"promise">): Promise<ExtrinsicOutcome> {
    const call = `${tx.method.section}.${tx.method.method}`;
    return new Promise<ExtrinsicOutcome>((resolve) => {
      let unsub: (() => void) | undefined;
      let done = false;
      const finish = (o: ExtrinsicOutcome) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        unsub?.();
        this.#log.info({ call, outcome: o }, o.ok ? "extrinsic included" : "extrinsic failed");
        resolve(o);
      };
      const timer = setTimeout(
        () =>
          finish({ ok: false, error: `not included within ${this.#inclusionTimeoutMs} ms`, uncertain: true }),
        this.#inclusionTimeoutMs,
      );
      const onStatus = (r: ISubmittableResult) => {
        const txHash = r.txHash.toHex();
        if (r.status.isInBlock || r.status.isFinalized) {
          const blockHash = (r.status.isInBlock ? r.status.asInBlock : r.status.asFinalized).toHex();
          if (r.dispatchError === undefined) {
            this.#api.rpc.chain
              .getHeader(blockHash)
              .then((h) => finish({ ok: true, blockHash, blockNumber: h.number.toNumber(), txHash }))
              .catch(() => finish({ ok: true, blockHash, blockNumber: -1, txHash }));
            return;
          }
          return finish({ ok: false, error: this.#describe(r.dispatchError), blockHash, txHash });
        }
        if (r.status.isInvalid || r.status.isDropped || r.status.isUsurped || r.status.isRetracted) {
          finish({ ok: false, error: `transaction ${r.status.type.toLowerCase()}`, txHash });
        }
      };
      if (this.#signer === undefined) {
        finish({ ok: false, error: "this chain client is read-only (no signing hotkey)" });
        return;
      }
      tx.signAndSend(this.#signer.pair, { nonce: -1 }, onStatus)
        .then((u) => {
          if (done) u();
          else unsub = u;
        })
        .catch((err: unknown) =>
          finish({ ok: false, error: err instanceof Error ? err.message : String(err) }),
        );
    });
  }

  #describe(e: NonNullable<ISubmittableResult["dispatchError"]>): string {
    if (e.isModule) {
      try {
        const m = this.#api.registry.findMetaError(e.asModule);
        return `${upperFirst(m.section)}.${m.name}`;
      } catch {
        return `module error ${e.asModule.toString()}`;
      }
    }
    return e.type === "Other" ? e.toString() : e.type;
  }
}

/**
 * Connects to Subtensor (or uses the given provider) and returns a ready
 * chain. A first connection that fails is an `unavailable` error naming the
 * endpoint, and the provider is shut so it does not retry in the background.
 */
export async function connectPolkadotChain(opts: PolkadotChainOptions): Promise<PolkadotChain> {
  const provider =
    opts.provider ??
    new WsProvider(
      opts.endpoint,
      RECONNECT_DELAY_MS,
      {},
      opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    );
  try {
    const api = await ApiPromise.create({
      provider,
      noInitWarn: true,
      throwOnConnect: true,
      // Subtensor's own transaction extensions carry no data; declaring them keeps
      // the registry from warning about (and guessing at) unknown extensions.
      signedExtensions: {
        SubtensorTransactionExtension: { extrinsic: {}, payload: {} },
        DrandPriority: { extrinsic: {}, payload: {} },
      },
    });
    return new PolkadotChain(api, opts);
  } catch (err) {
    await provider.disconnect().catch(() => {});
    const why = err instanceof Error ? err.message : "connection failed";
    throw new TensorClawError(
      "unavailable",
      `cannot reach Subtensor at ${opts.endpoint ?? "provider"}: ${why}`,
      {
        cause: err,
      },
    );
  }
}
