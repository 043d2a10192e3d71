import { expect } from "chai";
import { silentLogger } from "../../common/logger.js";
import {
  promptBytesOf,
  promptTokensLog2,
  quantiseRequestShape,
  SHAPE_BYTES_PER_TOKEN,
  type ShapeFields,
  shapeFieldValues,
  withFieldValue,
} from "../../common/request-shape.js";
import type { GetTrafficShapeResponse } from "../../gen/tensorclaw/v1/probe.js";
import { parseChatBody } from "../../router/api/openai-request.js";
import { TrafficShapeRecorder, trafficShapeHandler } from "../../router/services/traffic-shape.js";
import { ESTIMATE_BYTES_PER_TOKEN } from "../../router/usage/clamp.js";
import { FAKE_CLOCK_START_MS } from "../support/fake-clock.js";

const T0 = FAKE_CLOCK_START_MS;
const MIN = 60_000;

/** A plain user request body with optional overrides. */
function body(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: "m", messages: [{ role: "user", content: "hello" }], ...over };
}

function shape(over: Partial<ShapeFields> = {}): ShapeFields {
  return { ...quantiseRequestShape(body(), "m", 10), ...over };
}

describe("request shape quantisation (common/request-shape)", () => {
  it("reads every field as the caller sent it", () => {
    const s = quantiseRequestShape(
      {
        model: "alias",
        messages: [
          { role: "developer", content: "be brief" },
          { role: "user", content: "a" },
          { role: "assistant", content: "b" },
          { role: "user", content: "c" },
        ],
        stream: true,
        user: "alice",
        max_tokens: 700,
        max_completion_tokens: 300,
        temperature: 0.74,
        top_p: 0.93,
        seed: 7,
        stop: ["\n\n", "###"],
        tools: [{ type: "function", function: { name: "f" } }],
        response_format: { type: "json_object" },
        logprobs: true,
      },
      "canonical",
      300,
    );
    expect(s).to.deep.equal({
      model: "canonical",
      messages: 4,
      systemPrompt: true,
      stream: true,
      user: true,
      maxTokens: 300,
      temperature: 0.7,
      topP: 0.95,
      seed: true,
      stop: 2,
      tools: 1,
      responseFormat: "json_object",
      promptTokensLog2: 9,
      logprobs: true,
    });
  });

  it("leaves out what was not given: no router defaults leak in", () => {
    const s = quantiseRequestShape(body({ user: "", stop: "" }), "m", 1);
    expect(s).to.deep.equal({
      model: "m",
      messages: 1,
      systemPrompt: false,
      stream: false,
      user: false,
      maxTokens: 0,
      temperature: undefined,
      topP: undefined,
      seed: false,
      stop: 0,
      tools: 0,
      responseFormat: "",
      promptTokensLog2: 0,
      logprobs: false,
    });
  });

  it("rounds temperature to 0.1 and top_p to 0.05, and keeps 0 as given (not absent)", () => {
    const q = (t: number, p: number) => quantiseRequestShape(body({ temperature: t, top_p: p }), "m", 1);
    expect(q(0, 0)).to.include({ temperature: 0, topP: 0 });
    expect(q(0.04, 0.024)).to.include({ temperature: 0, topP: 0 });
    expect(q(0.06, 0.026)).to.include({ temperature: 0.1, topP: 0.05 });
    expect(q(1.26, 0.99)).to.include({ temperature: 1.3, topP: 1 });
    expect(q(2, 0.87)).to.include({ temperature: 2, topP: 0.85 });
  });

  it("caps messages at 64 and tools at 16; a single stop string counts once", () => {
    const messages = Array.from({ length: 100 }, () => ({ role: "user", content: "x" }));
    const tools = Array.from({ length: 20 }, (_, i) => ({ type: "function", function: { name: `f${i}` } }));
    expect(quantiseRequestShape(body({ messages, tools, stop: "END" }), "m", 1)).to.include({
      messages: 64,
      tools: 16,
      stop: 1,
      systemPrompt: false,
    });
  });

  it("puts the prompt size in the smallest power of two holding it", () => {
    expect([0, 1, 2, 3, 4, 5, 8, 9, 1024, 1025].map(promptTokensLog2)).to.deep.equal([
      0, 0, 1, 2, 2, 3, 3, 4, 10, 11,
    ]);
  });

  it("counts prompt bytes exactly as the router's request parser does, with the router's bytes per token", () => {
    expect(SHAPE_BYTES_PER_TOKEN).to.equal(ESTIMATE_BYTES_PER_TOKEN);
    const b = {
      model: "m",
      messages: [
        { role: "system", content: "Tu es un assistant précis. 🚀" },
        { role: "user", name: "ana", content: [{ type: "text", text: "Bonjour" }] },
        {
          role: "assistant",
          content: null,
          tool_calls: [{ id: "c1", type: "function", function: { name: "lookup", arguments: '{"q":"x"}' } }],
        },
        { role: "tool", tool_call_id: "c1", content: '{"ok":true}' },
        { role: "user", content: "Et ensuite ?" },
      ],
      tools: [
        {
          type: "function",
          function: { name: "lookup", description: "Finds", parameters: { type: "object" } },
        },
        { type: "function", function: { name: "bare" } },
      ],
      response_format: { type: "json_schema", json_schema: { name: "r", schema: { type: "object" } } },
    };
    const parsed = parseChatBody(b, { userSalt: "s", account: "a" });
    expect(promptBytesOf(b)).to.equal(parsed.prompt.bytes);
  });
});

describe("TrafficShapeRecorder", () => {
  it("counts shapes per model, reports only those seen min_count times, most frequent first", () => {
    const r = new TrafficShapeRecorder({ minCount: 3 });
    const a = body({ stream: true });
    const b = body({ temperature: 0.7 });
    for (let i = 0; i < 5; i++) r.record(a, "m", 10, T0 + i);
    for (let i = 0; i < 3; i++) r.record(b, "m", 10, T0 + i);
    for (let i = 0; i < 2; i++) r.record(body({ seed: 1 }), "m", 10, T0);
    for (let i = 0; i < 4; i++) r.record(a, "other", 10, T0);
    const rep = r.report("m", T0 + 1000);
    expect(rep.windowSeconds).to.equal(3600);
    expect(rep.minCount).to.equal(3);
    expect(rep.requests).to.equal(10n);
    expect(rep.reportTimeMs).to.equal(BigInt(T0 + 1000));
    expect(rep.shapes.map((s) => [s.count, s.stream, s.temperature])).to.deep.equal([
      [5n, true, undefined],
      [3n, false, 0.7],
    ]);
    expect(rep.shapes[0]).to.deep.equal({ count: 5n, ...quantiseRequestShape(a, "m", 10) });
    const all = r.report("", T0 + 1000);
    expect(all.requests).to.equal(14n);
    expect(all.shapes.map((s) => [s.model, s.count])).to.deep.equal([
      ["m", 5n],
      ["other", 4n],
      ["m", 3n],
    ]);
    expect(r.report("nobody", T0).shapes).to.deep.equal([]);
  });

  it("defaults to min_count 5", () => {
    const r = new TrafficShapeRecorder();
    for (let i = 0; i < 4; i++) r.recordShape(shape(), T0);
    expect(r.report("m", T0).shapes).to.have.length(0);
    r.recordShape(shape(), T0);
    expect(r.report("m", T0).shapes.map((s) => s.count)).to.deep.equal([5n]);
    expect(r.report("m", T0).minCount).to.equal(5);
  });

  it("forgets each minute once it leaves the rolling hour, and sums the minutes inside it", () => {
    const r = new TrafficShapeRecorder({ minCount: 1 });
    r.recordShape(shape({ maxTokens: 1 }), T0);
    r.recordShape(shape({ maxTokens: 2 }), T0 + 30 * MIN);
    r.recordShape(shape({ maxTokens: 2 }), T0 + 59 * MIN);
    const at = (ms: number) => r.report("m", ms);
    expect(at(T0 + 59 * MIN).requests).to.equal(3n);
    expect(at(T0 + 59 * MIN).shapes.map((s) => [s.maxTokens, s.count])).to.deep.equal([
      [2, 2n],
      [1, 1n],
    ]);
    // Minute T0 is 60 minutes old: out of the window.
    expect(at(T0 + 60 * MIN).requests).to.equal(2n);
    expect(at(T0 + 60 * MIN).shapes.map((s) => s.maxTokens)).to.deep.equal([2]);
    expect(at(T0 + 119 * MIN).requests).to.equal(0n);
  });

  it("reuses a bucket for a new minute without keeping the old minute's counts", () => {
    const r = new TrafficShapeRecorder({ minCount: 1, windowMinutes: 2 });
    r.recordShape(shape({ stop: 1 }), T0);
    r.recordShape(shape({ stop: 2 }), T0 + 2 * MIN); // the same slot, two minutes later
    const rep = r.report("m", T0 + 2 * MIN);
    expect(rep.windowSeconds).to.equal(120);
    expect(rep.requests).to.equal(1n);
    expect(rep.shapes.map((s) => s.stop)).to.deep.equal([2]);
  });

  it("ignores minutes ahead of the report time (a clock that stepped back)", () => {
    const r = new TrafficShapeRecorder({ minCount: 1 });
    r.recordShape(shape(), T0 + 5 * MIN);
    expect(r.report("m", T0).requests).to.equal(0n);
    expect(r.report("m", T0 + 5 * MIN).requests).to.equal(1n);
  });

  it("caps distinct shapes per minute: new shapes in a full minute count only in requests", () => {
    const r = new TrafficShapeRecorder({ minCount: 1, maxShapesPerMinute: 3 });
    for (let i = 1; i <= 5; i++) r.recordShape(shape({ maxTokens: i }), T0);
    // Known shapes still count in a full minute.
    r.recordShape(shape({ maxTokens: 1 }), T0);
    // The next minute has room again.
    r.recordShape(shape({ maxTokens: 9 }), T0 + MIN);
    const rep = r.report("m", T0 + MIN);
    expect(rep.requests).to.equal(7n);
    expect(rep.shapes.map((s) => [s.maxTokens, s.count])).to.deep.equal([
      [1, 2n],
      [2, 1n],
      [3, 1n],
      [9, 1n],
    ]);
  });

  it("caps the shapes in one report, keeping the most frequent", () => {
    const r = new TrafficShapeRecorder({ minCount: 1, maxShapes: 2 });
    for (let k = 1; k <= 4; k++) for (let i = 0; i < k; i++) r.recordShape(shape({ tools: k }), T0);
    const rep = r.report("m", T0);
    expect(rep.shapes.map((s) => s.tools)).to.deep.equal([4, 3]);
    expect(rep.requests).to.equal(10n);
  });

  it("describes the unlisted shapes field by field, leaving out values rarer than min_count", () => {
    const r = new TrafficShapeRecorder({ minCount: 3, maxShapes: 1 });
    // Listed: five of one shape. Tail: the second-most common shape (past the report's cap) and
    // rare shapes, each seen under three times, that share a few field values.
    for (let i = 0; i < 5; i++) r.recordShape(shape({ stream: true }), T0);
    for (let i = 0; i < 4; i++) r.recordShape(shape({ maxTokens: 256 }), T0);
    for (const t of [0.2, 0.4, 0.6]) r.recordShape(shape({ maxTokens: 128, temperature: t }), T0);
    r.recordShape(shape({ maxTokens: 7777 }), T0);
    r.recordShape(shape({ maxTokens: 512 }), T0 + 1);
    r.recordShape(shape({ stream: true, tools: 2 }), T0);
    const rep = r.report("m", T0 + 10);
    expect(rep.shapes.map((x) => x.count)).to.deep.equal([5n]);
    const of = (field: string) =>
      rep.tail.filter((t) => t.field === field).map((t) => [t.value, Number(t.count)]);
    // Ten unlisted requests: 4 + 3 + 1 + 1 + 1.
    expect(of("stream")).to.deep.equal([["false", 9]]);
    // 256 (4) and 128 (3) are common enough; 7777, 512 and the 0 of the tools shape are not.
    expect(of("max_tokens")).to.deep.equal([
      ["256", 4],
      ["128", 3],
    ]);
    expect(of("temperature")).to.deep.equal([["", 7]]);
    expect(rep.tail.every((t) => t.model === "m")).to.equal(true);
    // Nothing unlisted, nothing in the tail.
    const plain = new TrafficShapeRecorder({ minCount: 1 });
    plain.recordShape(shape(), T0);
    expect(plain.report("m", T0).tail).to.deep.equal([]);
  });

  it("reads a tail value back into a shape, and ignores one that does not parse", () => {
    const base = shape();
    const back = shapeFieldValues(
      shape({ maxTokens: 300, temperature: 0.7, stop: 2, tools: 3, user: true }),
    ).reduce((acc, [f, v]) => withFieldValue(acc, f, v), base);
    expect(back).to.deep.equal(shape({ maxTokens: 300, temperature: 0.7, stop: 2, tools: 3, user: true }));
    expect(withFieldValue(base, "temperature", "")).to.deep.include({ temperature: undefined });
    for (const [field, value] of [
      ["max_tokens", "-1"],
      ["max_tokens", "1e9"],
      ["temperature", "9"],
      ["top_p", "NaN"],
      ["stop", "5"],
      ["messages", "0"],
      ["stream", "yes"],
      ["response_format", "xml"],
      ["no_such_field", "1"],
    ] as const) {
      expect(withFieldValue(base, field, value), `${field}=${value}`).to.deep.equal(base);
    }
  });

  it("reads the time for the gRPC handler from the injected clock only", () => {
    let now = 123;
    const r = new TrafficShapeRecorder({ clock: () => now });
    expect(r.now()).to.equal(123);
    now = 456;
    expect(r.now()).to.equal(456);
  });

  describe("GetTrafficShape handler", () => {
    /** Calls the grpc-js handler the way the server does and returns what it answered. */
    function call(recorder: TrafficShapeRecorder | undefined, model: string) {
      const handler = trafficShapeHandler(recorder, silentLogger());
      return new Promise<{ err: { code: number } | null; res: GetTrafficShapeResponse | undefined }>(
        (resolve) => {
          const cb = (err: unknown, res?: GetTrafficShapeResponse) =>
            resolve({ err: err as { code: number } | null, res });
          (handler as unknown as (c: unknown, cb: unknown) => void)({ request: { model } }, cb);
        },
      );
    }

    it("reports the recorder's window at the recorder's clock", async () => {
      const r = new TrafficShapeRecorder({ minCount: 1, clock: () => T0 + 5 });
      r.recordShape(shape(), T0);
      const { err, res } = await call(r, "m");
      expect(err).to.equal(null);
      expect(res?.requests).to.equal(1n);
      expect(res?.reportTimeMs).to.equal(BigInt(T0 + 5));
    });

    it("refuses an over-long model filter, and answers UNIMPLEMENTED without a recorder", async () => {
      expect((await call(new TrafficShapeRecorder(), "x".repeat(257))).err?.code).to.equal(3);
      expect((await call(undefined, "m")).err?.code).to.equal(12);
    });
  });
});
