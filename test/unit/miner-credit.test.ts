import { expect } from "chai";
import { MAX_TIMER_MS } from "../../common/clock.js";
import { silentLogger } from "../../common/logger.js";
import { type ChatRequest, FinishReason } from "../../gen/tensorclaw/v1/chat.js";
import {
  type InferenceRequest,
  type RequestError,
  RequestErrorCode,
  type ResponseChunk,
  type Usage,
} from "../../gen/tensorclaw/v1/tunnel.js";
import { type Backend, type BackendEvent, BackendFailure } from "../../miner/backend/backend.js";
import { countTextTokens } from "../../miner/backend/token-counter.js";
import { RequestRunner, type RequestSink } from "../../miner/request-runner.js";
import { CreditWindow } from "../../miner/tunnel/credit-window.js";
import { FakeClock } from "../support/fake-clock.js";

/** A backend that streams given pieces and counts how far the caller pulled. */
class ScriptedBackend implements Backend {
  readonly description = "scripted";
  pulled = 0;
  finalized = false;
  constructor(
    private readonly pieces: string[],
    private readonly usage?: { promptTokens: number; completionTokens: number },
    private readonly hang = false,
  ) {}
  async listModels() {
    return [{ id: "m", contextLength: 0 }];
  }
  async *chat(_model: string, _chat: ChatRequest, signal: AbortSignal): AsyncGenerator<BackendEvent> {
    try {
      if (this.hang) {
        await new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
      }
      for (let i = 0; i < this.pieces.length; i++) {
        this.pulled++;
        const last = i === this.pieces.length - 1;
        yield {
          type: "delta",
          content: this.pieces[i] as string,
          reasoning: "",
          toolCalls: [],
          finishReason: last ? FinishReason.FINISH_REASON_STOP : FinishReason.FINISH_REASON_UNSPECIFIED,
        };
      }
      if (this.usage) yield { type: "usage", ...this.usage };
    } finally {
      this.finalized = true;
    }
  }
}

class RecordingSink implements RequestSink {
  chunks: ResponseChunk[] = [];
  usages: Usage[] = [];
  errors: RequestError[] = [];
  chunk(c: ResponseChunk) {
    this.chunks.push(c);
  }
  usage(u: Usage) {
    this.usages.push(u);
  }
  error(e: RequestError) {
    this.errors.push(e);
  }
  writable() {
    return undefined;
  }
}

function request(initialCreditBytes: number, deadlineMs = 0): InferenceRequest {
  return {
    requestId: 7,
    model: "m",
    completion: undefined,
    embedding: undefined,
    traceId: "",
    chat: {
      messages: [
        { role: "user", content: "hello", contentPartsJson: "", name: "", toolCalls: [], toolCallId: "" },
      ],
      stop: [],
      tools: [],
      toolChoice: undefined,
      responseFormat: undefined,
      user: "",
      extraJson: "",
      stream: true,
    },
    deadlineMs,
    initialCreditBytes,
  };
}

/** Runs every pending callback and microtask (no timers): an in-memory pipeline settles. */
const settle = () => new Promise((r) => setImmediate(r));

describe("miner credit accounting", () => {
  describe("CreditWindow", () => {
    it("lets chunks through while they fit and holds the next one when they do not", () => {
      const w = new CreditWindow(10);
      expect(w.fits(10)).to.equal(true);
      w.spend(6);
      expect(w.fits(4)).to.equal(true);
      expect(w.fits(5)).to.equal(false);
      w.grant(1);
      expect(w.fits(5)).to.equal(true);
      expect(w.fits(0)).to.equal(true);
    });

    it("lets one oversized chunk through only when nothing is outstanding", () => {
      const w = new CreditWindow(8);
      expect(w.fits(100)).to.equal(true);
      w.spend(100);
      expect(w.remaining).to.equal(-92);
      expect(w.fits(1)).to.equal(false);
      w.grant(92);
      expect(w.fits(1)).to.equal(false);
      w.grant(8);
      expect(w.fits(100)).to.equal(true);
    });
  });

  describe("RequestRunner", () => {
    it("stops pulling the backend while out of credit and resumes on Credit", async () => {
      const backend = new ScriptedBackend(Array.from({ length: 10 }, () => "abcde"));
      const sink = new RecordingSink();
      const runner = new RequestRunner(request(10), backend, sink, silentLogger());
      const done = runner.run();
      await settle();
      // Two 5-byte chunks spent the 10 bytes; the third was pulled and is held.
      expect(sink.chunks.length).to.equal(2);
      expect(backend.pulled).to.equal(3);
      runner.grant(5);
      await settle();
      expect(sink.chunks.length).to.equal(3);
      expect(backend.pulled).to.equal(4);
      runner.grant(1000);
      await done;
      expect(sink.chunks.length).to.equal(10);
      expect(sink.chunks.every((c) => c.requestId === 7)).to.equal(true);
      expect(sink.chunks.at(-1)?.finishReason).to.equal(FinishReason.FINISH_REASON_STOP);
      // No usage from the backend: counted with the tokenizer over what was relayed.
      expect(sink.usages).to.deep.equal([
        {
          requestId: 7,
          promptTokens: sink.usages[0]?.promptTokens,
          completionTokens: BigInt(countTextTokens("abcde".repeat(10))),
        },
      ]);
      expect(Number(sink.usages[0]?.promptTokens)).to.be.greaterThan(0);
      expect(sink.errors).to.deep.equal([]);
    });

    it("sends one chunk larger than the window when nothing is outstanding", async () => {
      const backend = new ScriptedBackend(["x".repeat(50), "y"]);
      const sink = new RecordingSink();
      const runner = new RequestRunner(request(8), backend, sink, silentLogger());
      const done = runner.run();
      await settle();
      expect(sink.chunks.map((c) => c.contentDelta)).to.deep.equal(["x".repeat(50)]);
      runner.grant(50);
      await done;
      expect(sink.chunks.map((c) => c.contentDelta)).to.deep.equal(["x".repeat(50), "y"]);
    });

    it("prefers the backend's own usage", async () => {
      const sink = new RecordingSink();
      await new RequestRunner(
        request(1000),
        new ScriptedBackend(["a", "b"], { promptTokens: 11, completionTokens: 22 }),
        sink,
        silentLogger(),
      ).run();
      expect(sink.usages).to.deep.equal([{ requestId: 7, promptTokens: 11n, completionTokens: 22n }]);
    });

    it("answers Cancel with CANCELLED and closes the backend stream", async () => {
      const backend = new ScriptedBackend(Array.from({ length: 10 }, () => "abcde"));
      const sink = new RecordingSink();
      const runner = new RequestRunner(request(5), backend, sink, silentLogger());
      const done = runner.run();
      await settle();
      runner.stop({ kind: "cancel", detail: "client went away" });
      await done;
      expect(sink.errors.map((e) => e.code)).to.deep.equal([RequestErrorCode.REQUEST_ERROR_CODE_CANCELLED]);
      expect(sink.usages).to.deep.equal([]);
      expect(backend.finalized).to.equal(true);
    });

    it("fails with TIMEOUT when the backend outlives the deadline", async () => {
      const backend = new ScriptedBackend(["never"], undefined, true);
      const sink = new RecordingSink();
      const clock = new FakeClock();
      const done = new RequestRunner(request(100, 30), backend, sink, silentLogger(), clock).run();
      await clock.advance(29);
      expect(sink.errors).to.deep.equal([]);
      await clock.advance(1);
      await done;
      expect(sink.errors.map((e) => e.code)).to.deep.equal([RequestErrorCode.REQUEST_ERROR_CODE_TIMEOUT]);
      expect(backend.finalized).to.equal(true);
      expect(clock.pending).to.equal(0);
    });

    it("treats a deadline beyond the timer range as a long budget, not an instant timeout", async () => {
      const sink = new RecordingSink();
      const clock = new FakeClock();
      const backend = new ScriptedBackend(["never"], undefined, true);
      const done = new RequestRunner(request(1000, 0xffffffff), backend, sink, silentLogger(), clock).run();
      // The budget is held for as long as a timer can hold it (2^31-1 ms), then it times out.
      await clock.advance(MAX_TIMER_MS - 1);
      expect(sink.errors).to.deep.equal([]);
      await clock.advance(1);
      await done;
      expect(sink.errors.map((e) => e.code)).to.deep.equal([RequestErrorCode.REQUEST_ERROR_CODE_TIMEOUT]);
    });

    it("clears its deadline when it finishes first", async () => {
      const sink = new RecordingSink();
      const clock = new FakeClock();
      await new RequestRunner(
        request(1000, 30),
        new ScriptedBackend(["a"]),
        sink,
        silentLogger(),
        clock,
      ).run();
      expect(sink.usages).to.have.length(1);
      expect(clock.pending).to.equal(0);
    });

    it("sends no terminal frame when the tunnel is gone", async () => {
      const backend = new ScriptedBackend(Array.from({ length: 10 }, () => "abcde"));
      const sink = new RecordingSink();
      const runner = new RequestRunner(request(5), backend, sink, silentLogger());
      const done = runner.run();
      await settle();
      runner.stop({ kind: "tunnel" });
      await done;
      expect(sink.errors).to.deep.equal([]);
      expect(sink.usages).to.deep.equal([]);
    });

    it("relays a backend failure's code and message, and hides unknown errors", async () => {
      const failing: Backend = {
        description: "failing",
        listModels: async () => [],
        // biome-ignore lint/correctness/useYield: fails before producing anything
        async *chat() {
          throw new BackendFailure(
            RequestErrorCode.REQUEST_ERROR_CODE_OVERLOADED,
            "the backend answered HTTP 429",
          );
        },
      };
      const sink = new RecordingSink();
      await new RequestRunner(request(5), failing, sink, silentLogger()).run();
      expect(sink.errors).to.deep.equal([
        {
          requestId: 7,
          code: RequestErrorCode.REQUEST_ERROR_CODE_OVERLOADED,
          message: "the backend answered HTTP 429",
          httpStatus: 0,
        },
      ]);
      const broken: Backend = {
        description: "broken",
        listModels: async () => [],
        // biome-ignore lint/correctness/useYield: fails before producing anything
        async *chat() {
          throw new Error("secret internal detail at 10.0.0.5");
        },
      };
      const sink2 = new RecordingSink();
      await new RequestRunner(request(5), broken, sink2, silentLogger()).run();
      expect(sink2.errors[0]?.code).to.equal(RequestErrorCode.REQUEST_ERROR_CODE_INTERNAL);
      expect(sink2.errors[0]?.message).not.to.include("10.0.0.5");
    });
  });
});
