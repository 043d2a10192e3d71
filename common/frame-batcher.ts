/**
 * Collects the frames produced in one event-loop turn and sends them as ONE
 * stream message (`ConnectRequest` / `ConnectResponse`, whose only field is
 * `repeated frames = 1`). grpc-js pays tens of microseconds per message, so
 * sending token chunks one by one caps a tunnel far below what batching
 * reaches.
 *
 * Each frame is encoded once, on `push`; the envelope is built by
 * concatenating `tag(1, LEN) + varint(length) + frame` per frame, which is
 * exactly the protobuf encoding of the repeated field. So batch sizes are
 * known exactly without encoding twice, and a message is split before it
 * would exceed `maxMessageBytes`.
 *
 * With `firstAtOnce`, the first frame of a turn is sent at once, alone, and
 * only the frames that follow it in the same turn wait for the flush: a
 * lone request or token does not wait for the rest of the turn (at one
 * stream that wait for the end of the turn was 0.07-0.13 ms per hop
 * here), while a busy turn still goes out in one more message.
 *
 * On gRPC the batched rest waits longer than the turn: Node's HTTP/2
 * session sends what was written from a native immediate that runs before
 * the JS ones, so a flush from `setImmediate` leaves only after the next
 * turn's I/O callbacks (a WebSocket writes to its socket at once). Flushing
 * at the end of every I/O callback instead (a microtask) took bench:api's
 * non-streaming throughput from 3,045 to 1,883 req/s in runs one after the
 * other (grpc-js pays per message, and there were many more); a flush
 * every 8 or 16 frames did not move throughput, nor a flush after 0.5 ms of
 * a turn the time to first token, beyond this machine's noise.
 *
 * Back-pressure: when `send` returns false the batcher holds further frames
 * (they keep accumulating into bigger batches) until `resume()` is called
 * from the transport's drain signal. Producers read `pendingBytes` /
 * `paused` to decide whether to stop producing.
 */
export class FrameBatcher<F> {
  readonly #encode: (frame: F) => Uint8Array;
  readonly #send: (message: Uint8Array) => boolean;
  readonly #maxMessageBytes: number;
  readonly #maxFrames: number;
  readonly #schedule: (task: () => void) => void;
  readonly #firstAtOnce: boolean;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #scheduled = false;
  #paused = false;
  #closed = false;

  constructor(opts: FrameBatcherOptions<F>) {
    this.#encode = opts.encode;
    this.#send = opts.send;
    this.#maxMessageBytes = opts.maxMessageBytes;
    this.#maxFrames = opts.maxFrames ?? DEFAULT_MAX_FRAMES_PER_MESSAGE;
    this.#schedule = opts.schedule ?? setImmediate;
    this.#firstAtOnce = opts.firstAtOnce ?? false;
    if (!(this.#maxMessageBytes >= 16)) throw new RangeError("maxMessageBytes must be at least 16");
  }

  /**
   * Encodes `frame` and queues it for the next flush (scheduled on the first
   * frame of a turn). Throws a RangeError when the frame alone, with its
   * envelope, would exceed `maxMessageBytes`; nothing is queued then.
   * Frames pushed after `close()` are dropped.
   */
  push(frame: F): void {
    if (this.#closed) return;
    const bytes = this.#encode(frame);
    if (envelopedSize(bytes.length) > this.#maxMessageBytes) {
      throw new RangeError(
        `frame of ${bytes.length} bytes exceeds the ${this.#maxMessageBytes}-byte message limit`,
      );
    }
    this.#pending.push(bytes);
    this.#pendingBytes += envelopedSize(bytes.length);
    if (!this.#scheduled && !this.#paused) {
      this.#scheduled = true;
      this.#schedule(this.#onTick);
      if (this.#firstAtOnce) this.#sendPending();
    }
  }

  /**
   * Sends every pending frame now, in as few messages as the limits allow.
   * Stops early (keeping the rest) when the transport asks to wait.
   */
  flush(): void {
    this.#scheduled = false;
    this.#sendPending();
  }

  #sendPending(): void {
    while (!this.#paused && !this.#closed && this.#pending.length > 0) {
      const message = this.#takeMessage();
      if (!this.#send(message)) this.#paused = true;
    }
  }

  /** The transport drained: send what was held back. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.flush();
  }

  /** Drops pending frames; later pushes are ignored. */
  close(): void {
    this.#closed = true;
    this.#pending = [];
    this.#pendingBytes = 0;
  }

  /** True while the transport asked to wait (after `send` returned false, before `resume`). */
  get paused(): boolean {
    return this.#paused;
  }

  /** Bytes queued but not yet handed to the transport (including envelopes). */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** Frames queued but not yet handed to the transport. */
  get pendingFrames(): number {
    return this.#pending.length;
  }

  readonly #onTick = (): void => {
    this.flush();
  };

  /** Removes from the queue the longest prefix that fits one message and serializes it. */
  #takeMessage(): Uint8Array {
    let count = 0;
    let total = 0;
    for (const frame of this.#pending) {
      const size = envelopedSize(frame.length);
      if (count > 0 && (total + size > this.#maxMessageBytes || count >= this.#maxFrames)) break;
      total += size;
      count++;
    }
    const out = Buffer.allocUnsafe(total);
    let at = 0;
    for (let i = 0; i < count; i++) {
      const frame = this.#pending[i] as Uint8Array;
      out[at++] = 0x0a; // field 1, wire type 2 (length-delimited)
      at = writeVarint(out, at, frame.length);
      out.set(frame, at);
      at += frame.length;
    }
    this.#pending = count === this.#pending.length ? [] : this.#pending.slice(count);
    this.#pendingBytes -= total;
    return out;
  }
}

/** Most frames per stream message unless told otherwise: bounds the receiver's work per message. */
export const DEFAULT_MAX_FRAMES_PER_MESSAGE = 16_384;

/** Options of a FrameBatcher. */
export interface FrameBatcherOptions<F> {
  /** Serializes one frame (e.g. `(f) => MinerFrame.encode(f).finish()`). */
  encode(frame: F): Uint8Array;
  /**
   * Hands one serialized stream message to the transport; returns false
   * when the transport wants the sender to wait for its drain signal.
   */
  send(message: Uint8Array): boolean;
  /** Largest stream message to produce, in bytes (the peer's `max_message_bytes`). */
  maxMessageBytes: number;
  /** Most frames per message (default 16384), to bound the receiver's work per message. */
  maxFrames?: number;
  /** How a flush is deferred to the end of the turn (default `setImmediate`). */
  schedule?: (task: () => void) => void;
  /** Send the first frame of each turn at once, batching only the frames after it (default false). */
  firstAtOnce?: boolean;
}

/** Bytes a frame of `length` bytes takes inside the envelope (tag + length prefix + body). */
export function envelopedSize(length: number): number {
  return 1 + varintSize(length) + length;
}

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function writeVarint(out: Uint8Array, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  out[at++] = n;
  return at;
}
