/**
 * An incremental parser for `text/event-stream` bodies as OpenAI-compatible
 * servers send them. It follows the WHATWG event-stream rules that matter
 * for LLM backends: lines end in LF, CRLF or a lone CR (split across reads
 * or not); `data:` lines of one event are joined with "\n"; a blank line
 * dispatches the event; lines starting with ":" are comments (keep-alives);
 * one optional space after the colon is dropped; an event still open at the
 * end of the stream is discarded. Only `data` and `event` fields are kept.
 *
 * The backend is not trusted with memory: an event (or a line) that grows
 * past `maxEventBytes` makes `push` throw instead of buffering without end.
 */

/** One dispatched server-sent event. */
export interface SseEvent {
  /** The `event:` field, "message" when absent. */
  readonly event: string;
  /** The joined `data:` lines. */
  readonly data: string;
}

/** Thrown when the stream breaks the parser's limits. */
export class SseLimitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SseLimitError";
  }
}

/** Default bound on one event: 8 MiB, far above any real chunk. */
export const DEFAULT_MAX_EVENT_BYTES = 8 * 1024 * 1024;

/** Parses an event stream fed in arbitrary pieces. */
export class SseParser {
  readonly #decoder = new TextDecoder("utf-8");
  readonly #maxEventBytes: number;
  #buffer = "";
  // A CR ended the previous piece: a LF at the start of the next one belongs to it.
  #pendingCr = false;
  #data: string[] = [];
  #dataLength = 0;
  #hasData = false;
  #event = "";

  constructor(maxEventBytes = DEFAULT_MAX_EVENT_BYTES) {
    this.#maxEventBytes = maxEventBytes;
  }

  /** Feeds bytes (UTF-8, possibly split mid-character) or text; returns the events completed by them. */
  push(piece: Uint8Array | string): SseEvent[] {
    let text = typeof piece === "string" ? piece : this.#decoder.decode(piece, { stream: true });
    if (this.#pendingCr && text.startsWith("\n")) text = text.slice(1);
    this.#pendingCr = false;
    const out: SseEvent[] = [];
    let start = 0;
    const buf = this.#buffer + text;
    // Searching from the old buffer's end: earlier bytes hold no line break.
    const breaks = /\r\n|\r|\n/g;
    breaks.lastIndex = this.#buffer.length;
    for (let m = breaks.exec(buf); m !== null; m = breaks.exec(buf)) {
      // A CR at the very end may be the first half of a CRLF split across pieces.
      if (m[0] === "\r" && m.index === buf.length - 1) this.#pendingCr = true;
      this.#line(buf.slice(start, m.index), out);
      start = m.index + m[0].length;
    }
    this.#buffer = buf.slice(start);
    if (this.#buffer.length + this.#dataLength > this.#maxEventBytes) {
      throw new SseLimitError(`server-sent event larger than ${this.#maxEventBytes} bytes`);
    }
    return out;
  }

  /** Ends the stream; returns nothing (an unterminated event is dropped, per the standard). */
  end(): SseEvent[] {
    this.#buffer = "";
    this.#reset();
    return [];
  }

  #reset(): void {
    this.#data = [];
    this.#dataLength = 0;
    this.#hasData = false;
    this.#event = "";
  }

  #line(line: string, out: SseEvent[]): void {
    if (line === "") {
      if (this.#hasData)
        out.push({ event: this.#event === "" ? "message" : this.#event, data: this.#data.join("\n") });
      this.#reset();
      return;
    }
    if (line.charCodeAt(0) === 58) return; // ":" comment
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === "data") {
      this.#data.push(value);
      this.#dataLength += value.length + 1;
      this.#hasData = true;
      if (this.#dataLength > this.#maxEventBytes) {
        throw new SseLimitError(`server-sent event larger than ${this.#maxEventBytes} bytes`);
      }
    } else if (field === "event") {
      this.#event = value;
    }
  }
}
