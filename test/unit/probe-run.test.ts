import { expect } from "chai";
import { DEFAULT_ENCODING, Encodings, type TokenCount } from "../../common/tokens/encodings.js";
import { FinishReason, type TokenLogprob } from "../../gen/tensorclaw/v1/chat.js";
import { RequestErrorCode, type ResponseChunk } from "../../gen/tensorclaw/v1/tunnel.js";
import {
  LIVENESS_MS,
  MAX_PROBE_LOGPROBS,
  type ProbeRunResult,
  runProbe,
  USER_DISCONNECT_REASON,
} from "../../router/services/probe-run.js";
import type { InferenceCall, RelayedText, TunnelEvent } from "../../router/tunnel/types.js";
import { FakeClock } from "../support/fake-clock.js";

/** An InferenceCall the test feeds by hand, relaying text as TunnelCall does (on read). */
class ScriptedCall implements InferenceCall {
  readonly cancels: string[] = [];
  #queue: TunnelEvent[] = [];
  #waiter: (() => void) | undefined;
  #ended = false;
  #text = "";
  #bytes = 0;

  push(e: TunnelEvent): void {
    if (this.#ended) return;
    this.#queue.push(e);
    this.#waiter?.();
  }
  chunk(text: string, over: Partial<ResponseChunk> = {}): void {
    this.push({
      type: "chunk",
      chunk: {
        requestId: 1,
        contentDelta: text,
        toolCalls: [],
        finishReason: 0,
        choiceIndex: 0,
        systemFingerprint: "",
        embeddings: [],
        reasoningDelta: "",
        logprobs: [],
        ...over,
      },
    });
  }
  usage(): void {
    this.push({ type: "usage", promptTokens: 1, completionTokens: 1 });
  }
  error(code: RequestErrorCode, message: string): void {
    this.push({ type: "error", code, message });
  }

  readonly relayedBytes = (): number => this.#bytes;
  readonly relayedText = (): RelayedText => ({ content: this.#text, reasoning: "", tools: "" });
  readonly relayedChoices = () => [{ ...this.relayedText(), bytes: this.#bytes }];

  cancel(reason: string): void {
    if (this.#ended) return;
    this.cancels.push(reason);
    this.#queue = [{ type: "error", code: RequestErrorCode.REQUEST_ERROR_CODE_CANCELLED, message: reason }];
    this.#waiter?.();
  }

  get events(): AsyncIterable<TunnelEvent> {
    const self = this;
    return {
      async *[Symbol.asyncIterator]() {
        for (;;) {
          while (self.#queue.length === 0) await new Promise<void>((r) => (self.#waiter = r));
          self.#waiter = undefined;
          const e = self.#queue.shift() as TunnelEvent;
          if (e.type === "chunk") {
            self.#text += e.chunk.contentDelta;
            self.#bytes += Buffer.byteLength(e.chunk.contentDelta);
          }
          yield e;
          if (e.type !== "chunk") {
            self.#ended = true;
            return;
          }
        }
      },
    };
  }
}

const WORDS = [" one", " two", " three", " four", " five", " six", " seven"];

describe("probe run: liveness, cut and what the answer keeps", () => {
  let count: TokenCount;
  let clock: FakeClock;
  before(async () => {
    const e = new Encodings();
    count = await e.load(DEFAULT_ENCODING);
  });
  beforeEach(() => {
    clock = new FakeClock();
  });

  const run = (call: ScriptedCall, cutAfterTokens: number): Promise<ProbeRunResult> =>
    runProbe(call, clock.now(), {
      cutAfterTokens,
      livenessMs: LIVENESS_MS,
      count,
      now: () => clock.now(),
      clock,
    });

  it("cuts once N tokens arrived, with the user-disconnect reason, and keeps the text up to the cut", async () => {
    const call = new ScriptedCall();
    const probing = run(call, 5);
    await clock.advance(120);
    for (const w of WORDS) call.chunk(w);
    const r = await probing;
    expect(call.cancels).to.deep.equal([USER_DISCONNECT_REASON]);
    expect(r).to.deep.include({ ok: true, cut: true, error: "", ttftMs: 120, latencyMs: 120 });
    expect(r.content).to.equal(WORDS.slice(0, 5).join(""));
    expect(r.completionTokens).to.equal(5);
    expect(r.finishReason).to.equal(FinishReason.FINISH_REASON_UNSPECIFIED);
  });

  it("counts tokens, not chunks: one chunk of six tokens reaches a cut of five", async () => {
    const call = new ScriptedCall();
    const probing = run(call, 5);
    call.chunk("");
    call.chunk(WORDS.slice(0, 6).join(""));
    call.chunk(" never");
    const r = await probing;
    expect(r).to.deep.include({ ok: true, cut: true, completionTokens: 6 });
    expect(r.content).to.equal(WORDS.slice(0, 6).join(""));
  });

  it("needs only the cut's tokens when the cut is below five", async () => {
    const call = new ScriptedCall();
    const probing = run(call, 2);
    for (const w of WORDS) call.chunk(w);
    expect(await probing).to.deep.include({ ok: true, cut: true, completionTokens: 2 });
  });

  it("passes an answer shorter than five tokens that finishes cleanly, but not an empty one", async () => {
    const short = new ScriptedCall();
    const p1 = run(short, 5);
    short.chunk("Hi", { finishReason: FinishReason.FINISH_REASON_STOP });
    short.usage();
    expect(await p1).to.deep.include({
      ok: true,
      cut: false,
      content: "Hi",
      finishReason: FinishReason.FINISH_REASON_STOP,
    });
    const empty = new ScriptedCall();
    const p2 = run(empty, 5);
    empty.chunk("");
    empty.usage();
    expect(await p2).to.deep.include({ ok: false, error: "no token", ttftMs: 0 });
  });

  it("fails on an error before the liveness tokens; a cut probe ignores one after them", async () => {
    const early = new ScriptedCall();
    const p1 = run(early, 10);
    for (const w of WORDS.slice(0, 4)) early.chunk(w);
    early.error(RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_ERROR, "oom");
    expect(await p1).to.deep.include({
      ok: false,
      error: "REQUEST_ERROR_CODE_BACKEND_ERROR: oom",
      cut: false,
    });
    const late = new ScriptedCall();
    const p2 = run(late, 10);
    for (const w of WORDS.slice(0, 6)) late.chunk(w);
    late.error(RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_ERROR, "oom");
    expect(await p2).to.deep.include({ ok: true, error: "", cut: false });
    expect(late.cancels).to.deep.equal([]);
  });

  it("without a cut relays everything and needs a clean finish", async () => {
    const clean = new ScriptedCall();
    const p1 = run(clean, 0);
    for (const w of WORDS) clean.chunk(w);
    clean.usage();
    expect(await p1).to.deep.include({ ok: true, cut: false, content: WORDS.join(""), completionTokens: 7 });
    expect(clean.cancels).to.deep.equal([]);
    const broken = new ScriptedCall();
    const p2 = run(broken, 0);
    for (const w of WORDS) broken.chunk(w);
    broken.error(RequestErrorCode.REQUEST_ERROR_CODE_TIMEOUT, "deadline of 120000 ms exceeded");
    expect(await p2).to.deep.include({
      ok: false,
      error: "REQUEST_ERROR_CODE_TIMEOUT: deadline of 120000 ms exceeded",
    });
  });

  it("times liveness at the fifth token, so an audit's long tail is not its response time", async () => {
    const call = new ScriptedCall();
    const probing = run(call, 0);
    await clock.advance(100);
    for (const w of WORDS.slice(0, 5)) call.chunk(w);
    await clock.advance(400);
    for (const w of WORDS.slice(5)) call.chunk(w);
    await clock.advance(50);
    call.usage();
    const r = await probing;
    expect(r).to.deep.include({ ok: true, cut: false, ttftMs: 100, livenessMs: 100, latencyMs: 550 });
    const dead = new ScriptedCall();
    const p2 = run(dead, 5);
    await clock.advance(LIVENESS_MS);
    expect(await p2).to.deep.include({ ok: false, livenessMs: 0 });
  });

  it("gives up at the liveness deadline as a user disconnect would, whatever was relayed", async () => {
    const call = new ScriptedCall();
    const probing = run(call, 0);
    for (const w of WORDS.slice(0, 4)) call.chunk(w);
    await clock.advance(LIVENESS_MS - 1);
    expect(call.cancels).to.deep.equal([]);
    await clock.advance(1);
    const r = await probing;
    expect(call.cancels).to.deep.equal([USER_DISCONNECT_REASON]);
    expect(r).to.deep.include({
      ok: false,
      latencyMs: LIVENESS_MS,
      error: "fewer than 5 tokens within the liveness deadline",
      completionTokens: 4,
    });
    // A probe that was live in time is not cancelled by the timer.
    const live = new ScriptedCall();
    const p2 = run(live, 0);
    for (const w of WORDS) live.chunk(w);
    await clock.advance(LIVENESS_MS * 2);
    live.usage();
    expect(await p2).to.deep.include({ ok: true });
    expect(live.cancels).to.deep.equal([]);
    expect(clock.scheduled()).to.deep.equal([]);
  });

  it("keeps logprobs within their caps", async () => {
    const call = new ScriptedCall();
    const probing = run(call, 0);
    const lp = (i: number): TokenLogprob => ({
      token: "x",
      logprob: -i,
      topLogprobs: Array.from({ length: 30 }, (_, k) => ({ token: `t${k}`, logprob: -k })),
    });
    for (let i = 0; i < MAX_PROBE_LOGPROBS + 5; i++) call.chunk("x", { logprobs: [lp(i)] });
    call.usage();
    const r = await probing;
    expect(r.logprobs).to.have.length(MAX_PROBE_LOGPROBS);
    expect(r.logprobs[3]?.logprob).to.equal(-3);
    expect(r.logprobs[3]?.topLogprobs).to.have.length(20);
  });
});
