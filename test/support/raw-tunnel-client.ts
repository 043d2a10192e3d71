import { Client, type ClientDuplexStream, credentials } from "@grpc/grpc-js";
import WebSocket from "ws";
import { FrameBatcher } from "../../common/frame-batcher.js";
import type { Hotkey } from "../../common/identity.js";
import { signHello } from "../../common/signing.js";
import {
  type Accept,
  type Challenge,
  ConnectResponse,
  MinerFrame,
  type ModelOffer,
  type Reject,
  type RouterFrame,
  TunnelServiceService,
} from "../../gen/tensorclaw/v1/tunnel.js";

/** Transports a raw client can use. */
export type RawTransport = "grpc" | "ws";

/** Where a hub listens. */
export interface TunnelEndpoints {
  /** host:port of the gRPC server. */
  readonly grpc: string;
  /** ws:// URL of the tunnel path. */
  readonly ws: string;
}

/** How the router ended the stream, as the client saw it. */
export interface RawClosed {
  /** gRPC status code (gRPC transport). */
  readonly grpcCode?: number;
  /** WebSocket close code (WS transport). */
  readonly wsCode?: number;
  readonly reason: string;
}

type RouterKind = NonNullable<RouterFrame["kind"]>;
type KindValue<K extends RouterKind["$case"]> = Extract<RouterKind, { $case: K }>["value"];

/** Options of the scripted hello. */
export interface HelloScript {
  readonly models?: readonly ModelOffer[];
  /** Hotkey named in the hello (default: the signer's). */
  readonly claimedHotkey?: string;
  /** Timestamp signed and sent (default: now). */
  readonly timestampMs?: number;
  /** Router id to sign for (default: the challenge's). */
  readonly routerId?: string;
  /** Replace the signature entirely (replay tests). */
  readonly signature?: Uint8Array;
  readonly protocolVersion?: number;
  /** Hello.channel_binding to send and sign (default: none). */
  readonly channelBinding?: Uint8Array;
}

/**
 * A scripted, possibly hostile, miner-side tunnel client for tests and the
 * benchmark. It speaks raw bytes on either transport (the generated
 * TunnelService path and messages), so tests can send garbage, oversized or
 * out-of-order messages as easily as well-formed frames.
 */
export class RawTunnelClient {
  readonly transport: RawTransport;
  /** Answer pings at once (true by default; false to simulate a hung miner). */
  autoPong = true;
  /** When set, every decoded router frame goes here instead of the queue. */
  onFrame: ((frame: RouterFrame) => void) | undefined;
  /** Resolves once the stream is over. */
  readonly closed: Promise<RawClosed>;
  readonly #sendRaw: (bytes: Uint8Array) => boolean;
  readonly #end: () => void;
  readonly #destroy: () => void;
  readonly #sendText: ((t: string) => void) | undefined;
  readonly #batcher: FrameBatcher<MinerFrame | Uint8Array>;
  readonly #queue: RouterFrame[] = [];
  #waiters: ((f: RouterFrame | undefined) => void)[] = [];
  #isClosed = false;
  #drainWaiters: (() => void)[] = [];
  #resolveClosed!: (c: RawClosed) => void;
  challenge: Challenge | undefined;

  private constructor(
    transport: RawTransport,
    io: {
      send: (b: Uint8Array) => boolean;
      end: () => void;
      destroy: () => void;
      sendText?: (t: string) => void;
    },
    maxMessageBytes: number,
  ) {
    this.transport = transport;
    this.#sendRaw = io.send;
    this.#end = io.end;
    this.#destroy = io.destroy;
    this.#sendText = io.sendText;
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    this.#batcher = new FrameBatcher<MinerFrame | Uint8Array>({
      encode: (f) => (f instanceof Uint8Array ? f : MinerFrame.encode(f).finish()),
      send: (m) => this.#sendRaw(m),
      maxMessageBytes,
    });
  }

  /** Opens a tunnel stream to a hub over `transport`. Resolves once the stream exists (not the handshake). */
  static async open(
    transport: RawTransport,
    endpoints: TunnelEndpoints,
    maxMessageBytes = 4 * 1024 * 1024,
  ): Promise<RawTunnelClient> {
    return transport === "grpc"
      ? RawTunnelClient.#openGrpc(endpoints.grpc, maxMessageBytes)
      : RawTunnelClient.#openWs(endpoints.ws, maxMessageBytes);
  }

  static #openGrpc(address: string, maxMessageBytes: number): RawTunnelClient {
    const client = new Client(address, credentials.createInsecure(), {
      "grpc.max_receive_message_length": -1,
      "grpc.max_send_message_length": -1,
    });
    const call: ClientDuplexStream<Uint8Array, Buffer> = client.makeBidiStreamRequest(
      TunnelServiceService.connect.path,
      (b: Uint8Array) => (Buffer.isBuffer(b) ? b : Buffer.from(b)),
      (b: Buffer) => b,
    );
    const c = new RawTunnelClient(
      "grpc",
      {
        send: (b) => call.write(b),
        end: () => call.end(),
        destroy: () => call.cancel(),
      },
      maxMessageBytes,
    );
    call.on("data", (b: Buffer) => c.#onMessage(b));
    call.on("drain", () => c.#onDrain());
    call.on("error", () => {});
    call.on("status", (s: { code: number; details: string }) => {
      c.#onClosed({ grpcCode: s.code, reason: s.details });
      client.close();
    });
    return c;
  }

  static async #openWs(url: string, maxMessageBytes: number): Promise<RawTunnelClient> {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 0 });
    let unsent = 0;
    const c = new RawTunnelClient(
      "ws",
      {
        send: (b) => {
          if (ws.readyState !== WebSocket.OPEN) return false;
          unsent += b.byteLength;
          ws.send(b, { binary: true }, () => {
            unsent -= b.byteLength;
            if (unsent < 256 * 1024) c.#onDrain();
          });
          return unsent < 1024 * 1024;
        },
        end: () => ws.close(1000, "miner done"),
        destroy: () => ws.terminate(),
        sendText: (t) => ws.send(t),
      },
      maxMessageBytes,
    );
    ws.on("message", (data: Buffer) => c.#onMessage(data));
    ws.on("error", () => {});
    ws.on("close", (code: number, reason: Buffer) =>
      c.#onClosed({ wsCode: code, reason: reason.toString() }),
    );
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    return c;
  }

  /** Sends bytes as one stream message, exactly as given (garbage welcome). */
  sendRaw(bytes: Uint8Array): void {
    this.#sendRaw(bytes);
  }

  /** Sends a WebSocket text message (WS only: a protocol error there). */
  sendText(text: string): void {
    if (this.#sendText === undefined) throw new Error("text messages exist on WebSocket only");
    this.#sendText(text);
  }

  /** Queues frames (or pre-encoded frame bytes) for the next batch. */
  push(frame: MinerFrame | Uint8Array): void {
    this.#batcher.push(frame);
  }

  /** Sends these frames now, as one message. */
  send(...frames: MinerFrame[]): void {
    for (const f of frames) this.#batcher.push(f);
    this.#batcher.flush();
  }

  /** True while the transport asked the sender to wait. */
  get congested(): boolean {
    return this.#batcher.paused;
  }

  /** Resolves when the transport accepts writes again. */
  whenWritable(): Promise<void> {
    if (!this.#batcher.paused) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /** The next router frame (pings are answered and skipped while `autoPong`). Rejects if the stream ends first. */
  next(timeoutMs = 5_000): Promise<RouterFrame> {
    const queued = this.#queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#isClosed) return Promise.reject(new Error("the tunnel is closed"));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new Error(`no router frame within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (f: RouterFrame | undefined) => {
        clearTimeout(timer);
        if (f === undefined) reject(new Error("the tunnel closed while waiting for a frame"));
        else resolve(f);
      };
      this.#waiters.push(waiter);
    });
  }

  /** The next router frame, which must be of kind `kind`. */
  async expect<K extends RouterKind["$case"]>(kind: K, timeoutMs = 5_000): Promise<KindValue<K>> {
    const f = await this.next(timeoutMs);
    if (f.kind?.$case !== kind) throw new Error(`expected ${kind}, got ${f.kind?.$case ?? "empty frame"}`);
    return f.kind.value as KindValue<K>;
  }

  /** Reads the challenge and answers with a signed hello; returns the router's verdict. */
  async handshake(
    key: Hotkey,
    script: HelloScript = {},
  ): Promise<{ accept?: Accept; reject?: Reject; challenge: Challenge }> {
    const challenge = await this.expect("challenge");
    this.challenge = challenge;
    const ts = script.timestampMs ?? Date.now();
    const signature =
      script.signature ??
      signHello(key, challenge.nonce, script.routerId ?? challenge.routerId, ts, script.channelBinding);
    this.send({
      kind: {
        $case: "hello",
        value: {
          hotkey: script.claimedHotkey ?? key.address,
          signature: Buffer.from(signature),
          timestampMs: BigInt(ts),
          models: [...(script.models ?? [{ id: "m1", maxConcurrency: 4, contextLength: 8192, kinds: [] }])],
          softwareVersion: "raw-tunnel-client/test",
          protocolVersion: script.protocolVersion ?? 1,
          channelBinding: Buffer.from(script.channelBinding ?? []),
        },
      },
    });
    const verdict = await this.next();
    if (verdict.kind?.$case === "accept") return { accept: verdict.kind.value, challenge };
    if (verdict.kind?.$case === "reject") return { reject: verdict.kind.value, challenge };
    throw new Error(`expected accept or reject, got ${verdict.kind?.$case ?? "empty frame"}`);
  }

  /** Half-closes (gRPC) or closes with 1000 (WS). */
  end(): void {
    this.#end();
  }

  /** Drops the connection abruptly (a miner that vanishes). */
  destroy(): void {
    this.#destroy();
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  #onMessage(bytes: Uint8Array): void {
    let msg: ConnectResponse;
    try {
      msg = ConnectResponse.decode(bytes);
    } catch {
      this.#onClosed({ reason: "router sent an undecodable message" });
      this.#destroy();
      return;
    }
    for (const f of msg.frames) this.#onFrame(f);
  }

  #onFrame(f: RouterFrame): void {
    if (f.kind?.$case === "ping" && this.autoPong) {
      this.send({ kind: { $case: "pong", value: { seq: f.kind.value.seq } } });
      return;
    }
    if (this.onFrame !== undefined) {
      this.onFrame(f);
      return;
    }
    const w = this.#waiters.shift();
    if (w !== undefined) w(f);
    else this.#queue.push(f);
  }

  #onDrain(): void {
    this.#batcher.resume();
    if (this.#batcher.paused) return;
    const ws = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of ws) w();
  }

  #onClosed(c: RawClosed): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.#batcher.close();
    for (const w of this.#waiters) w(undefined);
    this.#waiters = [];
    for (const w of this.#drainWaiters) w();
    this.#drainWaiters = [];
    this.#resolveClosed(c);
  }
}
