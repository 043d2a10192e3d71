import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { ApiPromise } from "@polkadot/api";
import type {
  ProviderInterface,
  ProviderInterfaceCallback,
  ProviderInterfaceEmitCb,
} from "@polkadot/rpc-provider/types";
import { u8aToHex } from "@polkadot/util";
import { blake2AsHex, decodeAddress } from "@polkadot/util-crypto";

/** `twox128("System") ++ twox128("Events")`: where a block's events live. */
export const SYSTEM_EVENTS_KEY = "0x26aa394eea5630e07c48ae0c9558cef780d41e5e16056765bc8461851072c9d7";

/** Where the Subtensor metadata fixture is, or why it is not there. */
export function subtensorMetadataPath(
  vars: NodeJS.ProcessEnv = process.env,
): { path: string } | { missing: string } {
  const env = vars.SUBTENSOR_METADATA;
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
  const path =
    env !== undefined && env !== ""
      ? env
      : join(root, "..", "shared", "fixtures", "subtensor", "metadata-v16-devnet.scale");
  return existsSync(path)
    ? { path }
    : {
        missing:
          `Subtensor metadata fixture not found at ${path}: put metadata-v16-devnet.scale ` +
          "there (it ships in shared/fixtures/subtensor/ beside the clone) or set SUBTENSOR_METADATA to its path",
      };
}

/**
 * For a suite's `before`: the fixture's path, or — when it is missing — a
 * skip with a message saying where to put it. Under CI (`CI=true`) a missing
 * fixture fails the run instead, so the chain tests can never skip silently.
 */
export function requireSubtensorMetadata(ctx: Pick<Mocha.Context, "skip">, env = process.env): string {
  const fixture = subtensorMetadataPath(env);
  if ("path" in fixture) return fixture.path;
  if (env.CI === "true") throw new Error(`CI=true and the chain tests cannot run: ${fixture.missing}`);
  console.log(`      skipped: ${fixture.missing}`);
  return ctx.skip();
}

/** One extrinsic the provider received, and the block it was put in. */
export interface SubmittedExtrinsic {
  readonly hex: string;
  readonly blockHash: string;
  readonly blockNumber: number;
}

/** Decides the events hex (`Vec<EventRecord>`) of the block holding a submitted extrinsic. */
export type EventsFor = (extrinsicHex: string, index: number) => string;

interface Block {
  readonly number: number;
  readonly hash: string;
  readonly parentHash: string;
  readonly extrinsics: readonly string[];
  readonly events: string;
}

const ZERO_HASH = `0x${"00".repeat(32)}`;

function hashOfBlock(n: number): string {
  return blake2AsHex(`tensorclaw-test-block-${n}`, 256);
}

/**
 * A JSON-RPC provider that is a tiny in-process Subtensor node: it serves the
 * real runtime metadata, a storage map the test fills, headers, nonces, and
 * `author_submitAndWatchExtrinsic`, which RECORDS each extrinsic, puts it in a
 * new block and reports ready → inBlock, with events chosen by the test.
 */
export class SubtensorTestProvider implements ProviderInterface {
  readonly hasSubscriptions = true;
  readonly isClonable = false;
  readonly isConnected = true;
  /** Every extrinsic submitted, in order. */
  readonly submitted: SubmittedExtrinsic[] = [];
  /** Every RPC method called, in order (for assertions on what was read). */
  readonly calls: string[] = [];
  /** Current best block number; tests move it forward. */
  bestNumber: number;
  /** While true, submitted extrinsics are accepted ("ready") but never put in a block. */
  holdInclusion = false;
  /** While true every RPC fails, as when the node is down. */
  failing = false;
  /** Events of the block of each submitted extrinsic; set by the test once it has a registry. */
  eventsFor: EventsFor = () => "0x00";

  readonly #metadataHex: string;
  readonly #storage = new Map<string, string>();
  readonly #blocks = new Map<string, Block>();
  readonly #nonces = new Map<string, number>();
  #subId = 0;

  constructor(metadataBytes: Uint8Array, bestNumber = 1000) {
    this.#metadataHex = u8aToHex(metadataBytes);
    this.bestNumber = bestNumber;
  }

  /** Reads the fixture (see {@link subtensorMetadataPath}). */
  static fromFixture(path: string, bestNumber?: number): SubtensorTestProvider {
    return new SubtensorTestProvider(readFileSync(path), bestNumber);
  }

  /** Sets one storage value (hex-encoded key and SCALE value). */
  setStorage(key: string, value: string): void {
    this.#storage.set(key.toLowerCase(), value);
  }

  clone(): ProviderInterface {
    throw new Error("not clonable");
  }
  async connect(): Promise<void> {}
  async disconnect(): Promise<void> {}
  on(_type: string, _sub: ProviderInterfaceEmitCb): () => void {
    return () => {};
  }

  #header(n: number): Record<string, unknown> {
    return {
      parentHash: n === 0 ? ZERO_HASH : hashOfBlock(n - 1),
      number: `0x${n.toString(16)}`,
      stateRoot: ZERO_HASH,
      extrinsicsRoot: ZERO_HASH,
      digest: { logs: [] },
    };
  }

  #blockByHash(hash: unknown): Block | undefined {
    return typeof hash === "string" ? this.#blocks.get(hash) : undefined;
  }

  #numberOf(hash: unknown): number {
    if (typeof hash !== "string") return this.bestNumber;
    const b = this.#blocks.get(hash);
    if (b !== undefined) return b.number;
    for (let n = this.bestNumber; n >= 0; n--) if (hashOfBlock(n) === hash) return n;
    return this.bestNumber;
  }

  #get(key: string, at: unknown): string | null {
    const b = this.#blockByHash(at);
    if (key.toLowerCase() === SYSTEM_EVENTS_KEY && b !== undefined) return b.events;
    return this.#storage.get(key.toLowerCase()) ?? null;
  }

  static readonly METHODS = [
    "chain_getBlock",
    "chain_getBlockHash",
    "chain_getFinalizedHead",
    "chain_getHeader",
    "rpc_methods",
    "state_getMetadata",
    "state_getRuntimeVersion",
    "state_getStorage",
    "state_queryStorageAt",
    "state_call",
    "state_subscribeRuntimeVersion",
    "system_accountNextIndex",
    "system_chain",
    "system_properties",
    "author_submitAndWatchExtrinsic",
  ];

  async send<T = unknown>(method: string, params: unknown[]): Promise<T> {
    this.calls.push(method);
    if (this.failing) throw new Error("SubtensorTestProvider: node unavailable");
    return this.#answer(method, params) as T;
  }

  #answer(method: string, params: unknown[]): unknown {
    switch (method) {
      case "rpc_methods":
        return { version: 1, methods: SubtensorTestProvider.METHODS };
      case "chain_getBlockHash": {
        const n = params[0] === undefined || params[0] === null ? this.bestNumber : Number(params[0]);
        return hashOfBlock(n);
      }
      case "chain_getFinalizedHead":
        return hashOfBlock(this.bestNumber);
      case "chain_getHeader":
        return this.#header(this.#numberOf(params[0]));
      case "chain_getBlock": {
        const b = this.#blockByHash(params[0]);
        const n = b?.number ?? this.#numberOf(params[0]);
        return { block: { header: this.#header(n), extrinsics: b?.extrinsics ?? [] }, justifications: null };
      }
      case "state_getMetadata":
        return this.#metadataHex;
      case "state_getRuntimeVersion":
        return {
          specName: "node-subtensor",
          implName: "node-subtensor",
          authoringVersion: 1,
          specVersion: 300,
          implVersion: 1,
          // Metadata API v2: ApiPromise then fetches metadata through state_call, as from a real node.
          apis: [[blake2AsHex("Metadata", 64), 2]],
          transactionVersion: 1,
          stateVersion: 1,
        };
      case "state_getStorage":
        return this.#get(String(params[0]), params[1]);
      case "state_queryStorageAt": {
        const keys = (params[0] as string[]) ?? [];
        return [
          {
            block: hashOfBlock(this.bestNumber),
            changes: keys.map((k) => [k, this.#get(k, params[1])]),
          },
        ];
      }
      case "system_accountNextIndex":
        return this.#nonces.get(u8aToHex(decodeAddress(String(params[0])))) ?? 0;
      case "state_call": {
        // The runtime APIs ApiPromise uses: metadata at start-up, the nonce when signing.
        if (params[0] === "Metadata_metadata_versions") return "0x0410000000";
        if (params[0] === "Metadata_metadata_at_version") {
          const len = (this.#metadataHex.length - 2) / 2;
          const c = ((len << 2) | 2) >>> 0;
          const prefix = [1, c & 0xff, (c >>> 8) & 0xff, (c >>> 16) & 0xff, c >>> 24];
          return u8aToHex(Uint8Array.from(prefix)) + this.#metadataHex.slice(2);
        }
        if (params[0] !== "AccountNonceApi_account_nonce") {
          throw new Error(`SubtensorTestProvider: unsupported runtime call ${String(params[0])}`);
        }
        const nonce = this.#nonces.get(String(params[1]).toLowerCase()) ?? 0;
        return u8aToHex(
          Uint8Array.from([nonce & 0xff, (nonce >>> 8) & 0xff, (nonce >>> 16) & 0xff, nonce >>> 24]),
        );
      }
      case "system_chain":
        return "Bittensor test";
      case "system_properties":
        return { ss58Format: 42, tokenDecimals: 9, tokenSymbol: "TAO" };
      default:
        throw new Error(`SubtensorTestProvider: unsupported RPC ${method}`);
    }
  }

  async subscribe(
    _type: string,
    method: string,
    params: unknown[],
    cb: ProviderInterfaceCallback,
  ): Promise<number | string> {
    this.calls.push(method);
    const id = ++this.#subId;
    if (method === "state_subscribeRuntimeVersion") return id;
    if (method !== "author_submitAndWatchExtrinsic") {
      throw new Error(`SubtensorTestProvider: unsupported subscription ${method}`);
    }
    const hex = String(params[0]);
    if (this.holdInclusion) {
      setImmediate(() => cb(null, "ready"));
      return id;
    }
    this.bestNumber += 1;
    const n = this.bestNumber;
    const block: Block = {
      number: n,
      hash: hashOfBlock(n),
      parentHash: hashOfBlock(n - 1),
      extrinsics: [hex],
      events: this.eventsFor(hex, this.submitted.length),
    };
    this.#blocks.set(block.hash, block);
    this.submitted.push({ hex, blockHash: block.hash, blockNumber: n });
    // Status updates arrive after the subscription id, as from a real node.
    setImmediate(() => {
      cb(null, "ready");
      setImmediate(() => cb(null, { inBlock: block.hash }));
    });
    return id;
  }

  async unsubscribe(): Promise<boolean> {
    return true;
  }

  /** Bumps the nonce an account will be told next. */
  setNonce(address: string, nonce: number): void {
    this.#nonces.set(u8aToHex(decodeAddress(address)), nonce);
  }
}

/** One event of a submitted extrinsic, by pallet and event name with its field values. */
export interface TestEvent {
  readonly pallet: string;
  readonly event: string;
  readonly args: readonly unknown[];
}

function compact(n: number): Uint8Array {
  // Event lists here are tiny: single-byte SCALE compact.
  if (n >= 64) throw new RangeError("too many events for this helper");
  return Uint8Array.of(n << 2);
}

/**
 * SCALE-encodes `Vec<EventRecord>` for events that all belong to extrinsic
 * `index` (phase ApplyExtrinsic), with field types taken from the metadata.
 */
export function encodeEvents(api: ApiPromise, index: number, events: readonly TestEvent[]): string {
  const parts: Uint8Array[] = [compact(events.length)];
  for (const e of events) {
    const pallet = api.registry.metadata.pallets.find((p) => p.name.toString() === e.pallet);
    const section = e.pallet.charAt(0).toLowerCase() + e.pallet.slice(1);
    const meta = api.events[section]?.[e.event]?.meta;
    if (pallet === undefined || meta === undefined) throw new Error(`no event ${e.pallet}.${e.event}`);
    parts.push(Uint8Array.of(0, index & 0xff, (index >>> 8) & 0xff, 0, 0));
    parts.push(Uint8Array.of(pallet.index.toNumber(), meta.index.toNumber()));
    meta.fields.forEach((f, i) => {
      parts.push(api.registry.createType(api.registry.createLookupType(f.type), e.args[i]).toU8a());
    });
    parts.push(compact(0));
  }
  return u8aToHex(Uint8Array.from(parts.flatMap((p) => [...p])));
}

/** The `dispatch_info` every test event carries. */
export const TEST_DISPATCH_INFO = {
  weight: { refTime: 1000, proofSize: 0 },
  class: "Normal",
  paysFee: "Yes",
};

/** Events of a successful extrinsic. */
export function successEvents(api: ApiPromise, index = 0): string {
  return encodeEvents(api, index, [
    { pallet: "System", event: "ExtrinsicSuccess", args: [TEST_DISPATCH_INFO] },
  ]);
}

/** Events of an extrinsic that failed with `SubtensorModule.<error>`. */
export function moduleErrorEvents(api: ApiPromise, error: string, index = 0): string {
  const err = api.errors.subtensorModule?.[error];
  if (err === undefined) throw new Error(`no SubtensorModule error ${error}`);
  const palletIndex = api.registry.metadata.pallets.find(
    (p) => p.name.toString() === "SubtensorModule",
  )?.index;
  const module = { index: palletIndex?.toNumber() ?? 7, error: [err.meta.index.toNumber(), 0, 0, 0] };
  return encodeEvents(api, index, [
    { pallet: "System", event: "ExtrinsicFailed", args: [{ Module: module }, TEST_DISPATCH_INFO] },
  ]);
}

/** Subnet state to write into the provider's storage. */
export interface TestSubnet {
  readonly netuid: number;
  readonly neurons: readonly { hotkey: string; permit: boolean; lastUpdate: number }[];
  readonly commitReveal: boolean;
  readonly rateLimit: number;
  readonly versionKey: bigint;
  readonly tempo: number;
  readonly revealPeriodEpochs: number;
  /** Default 1. */
  readonly minAllowedWeights?: number;
}

/** Writes a subnet's metagraph into storage, SCALE-encoded with the runtime's own types. */
export function writeSubnet(api: ApiPromise, provider: SubtensorTestProvider, s: TestSubnet): void {
  const q = api.query.subtensorModule as unknown as Record<string, { key(...args: unknown[]): string }>;
  const key = (name: string, ...args: unknown[]) => {
    const item = q[name];
    if (item === undefined) throw new Error(`no storage ${name}`);
    return item.key(...args);
  };
  const enc = (type: string, v: unknown) => u8aToHex(api.createType(type, v).toU8a());
  provider.setStorage(key("subnetworkN", s.netuid), enc("u16", s.neurons.length));
  s.neurons.forEach((n, uid) => {
    provider.setStorage(key("keys", s.netuid, uid), enc("AccountId32", n.hotkey));
  });
  provider.setStorage(
    key("validatorPermit", s.netuid),
    enc(
      "Vec<bool>",
      s.neurons.map((n) => n.permit),
    ),
  );
  provider.setStorage(
    key("lastUpdate", s.netuid),
    enc(
      "Vec<u64>",
      s.neurons.map((n) => n.lastUpdate),
    ),
  );
  provider.setStorage(key("commitRevealWeightsEnabled", s.netuid), enc("bool", s.commitReveal));
  provider.setStorage(key("weightsSetRateLimit", s.netuid), enc("u64", s.rateLimit));
  provider.setStorage(key("weightsVersionKey", s.netuid), enc("u64", s.versionKey));
  provider.setStorage(key("tempo", s.netuid), enc("u16", s.tempo));
  provider.setStorage(key("revealPeriodEpochs", s.netuid), enc("u64", s.revealPeriodEpochs));
  provider.setStorage(key("minAllowedWeights", s.netuid), enc("u16", s.minAllowedWeights ?? 1));
}
