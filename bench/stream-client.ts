/**
 * The measuring instrument of the TTFT runs: a keep-alive HTTP/1.1 client on
 * a bare socket that parses only what it needs (status line, content-length
 * or chunked framing) and scans the raw bytes for the first content token.
 *
 * node:http's client (IncomingMessage streams, a string and a regex per
 * data event) cost the load process ~65 % of a core at 100 paced streams,
 * which on a 2-core machine queues the servers it is measuring. This one
 * does the same job for a fraction of that, so the figure says more about
 * the servers and less about the client. It is for our own servers in a
 * benchmark, not a general HTTP client: no trailers, no 1xx, no pipelining.
 */
import { connect, type Socket } from "node:net";

/** What one request/response exchange measured. */
export interface Exchange {
  readonly status: number;
  /** ms from sending the request to the first `"content":"<text>` byte; undefined when none came. */
  readonly firstContentMs: number | undefined;
}

const CRLF = Buffer.from("\r\n");
const HEAD_END = Buffer.from("\r\n\r\n");
/** A delta with text: `"content":"` followed by anything but the closing quote. */
const CONTENT = Buffer.from('"content":"');
const QUOTE = 0x22;

type State = "head" | "length" | "size" | "data" | "data-crlf" | "trailer";

export class RawHttpConnection {
  readonly #socket: Socket;
  #buf: Buffer = Buffer.alloc(0);
  #state: State = "head";
  #remaining = 0;
  #status = 0;
  #t0 = 0;
  #first: number | undefined;
  #done: ((e: Exchange) => void) | undefined;
  #fail: ((err: Error) => void) | undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on("data", (b: Buffer) => this.#onData(b));
    const broken = (err?: Error) => this.#fail?.(err ?? new Error("connection closed mid-response"));
    socket.on("error", broken);
    socket.on("close", () => broken());
  }

  static open(host: string, port: number): Promise<RawHttpConnection> {
    return new Promise((resolve, reject) => {
      const s = connect({ host, port });
      s.once("connect", () => resolve(new RawHttpConnection(s)));
      s.once("error", reject);
    });
  }

  /** Sends `request` (head and body, already serialized) and resolves when its response ended. */
  exchange(request: Buffer): Promise<Exchange> {
    return new Promise((resolve, reject) => {
      this.#state = "head";
      this.#first = undefined;
      this.#done = resolve;
      this.#fail = reject;
      this.#t0 = performance.now();
      this.#socket.write(request);
    });
  }

  close(): void {
    this.#socket.destroy();
  }

  #onData(b: Buffer): void {
    if (this.#first === undefined && this.#state !== "head") this.#scan(b, 0);
    this.#buf = this.#buf.length === 0 ? b : Buffer.concat([this.#buf, b]);
    let at = 0;
    for (;;) {
      const buf = this.#buf;
      if (this.#state === "head") {
        const end = buf.indexOf(HEAD_END, at);
        if (end === -1) break;
        this.#head(buf.toString("latin1", at, end));
        at = end + 4;
        // Bytes after the head arrived with it: scan them now.
        if (this.#first === undefined) this.#scan(buf, at);
      } else if (this.#state === "length" || this.#state === "data") {
        const take = Math.min(this.#remaining, buf.length - at);
        this.#remaining -= take;
        at += take;
        if (this.#remaining > 0) break;
        if (this.#state === "length") this.#finish();
        else this.#state = "data-crlf";
      } else {
        // size line, the CRLF after a chunk's data, or the (empty) trailer.
        const eol = buf.indexOf(CRLF, at);
        if (eol === -1) break;
        const line = buf.toString("latin1", at, eol);
        at = eol + 2;
        if (this.#state === "size") {
          const size = Number.parseInt(line, 16);
          if (!Number.isInteger(size) || size < 0)
            throw new Error(`bad chunk size line ${JSON.stringify(line)}`);
          this.#remaining = size;
          this.#state = size === 0 ? "trailer" : "data";
        } else if (this.#state === "data-crlf") {
          this.#state = "size";
        } else if (line === "") {
          this.#finish();
        }
      }
      if (this.#done === undefined) break;
    }
    this.#buf = at >= this.#buf.length ? Buffer.alloc(0) : this.#buf.subarray(at);
  }

  #head(text: string): void {
    this.#status = Number(text.slice(9, 12));
    const lower = text.toLowerCase();
    if (lower.includes("\r\ntransfer-encoding: chunked")) {
      this.#state = "size";
      return;
    }
    const m = /\r\ncontent-length: *(\d+)/.exec(lower);
    this.#remaining = m === null ? 0 : Number(m[1]);
    this.#state = "length";
    if (this.#remaining === 0) this.#finish();
  }

  #scan(b: Buffer, from: number): void {
    for (let i = b.indexOf(CONTENT, from); i !== -1; i = b.indexOf(CONTENT, i + 1)) {
      const next = i + CONTENT.length;
      if (next < b.length && b[next] !== QUOTE) {
        this.#first = performance.now() - this.#t0;
        return;
      }
    }
  }

  #finish(): void {
    const done = this.#done;
    this.#done = undefined;
    this.#fail = undefined;
    this.#state = "head";
    done?.({ status: this.#status, firstContentMs: this.#first });
  }
}
