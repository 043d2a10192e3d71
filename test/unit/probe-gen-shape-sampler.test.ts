import { expect } from "chai";
import { promptBytesOf, promptTokensFromBytes, quantiseRequestShape } from "../../common/request-shape.js";
import type { RequestShape } from "../../gen/tensorclaw/v1/probe.js";
import { parseChatBody } from "../../router/api/openai-request.js";
import { ProbeCorpus } from "../../validator/probe-gen/corpus.js";
import { DEFAULT_SHAPE_MIX } from "../../validator/probe-gen/shape-defaults.js";
import { drawProbeBody, makeUserPool, sampleShape } from "../../validator/probe-gen/shape-sampler.js";
import { seededRandom } from "../support/api-random.js";

const MODEL = "org/model-7b";

function rs(over: Partial<RequestShape> = {}): RequestShape {
  return {
    count: 10n,
    model: MODEL,
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
    promptTokensLog2: 8,
    logprobs: false,
    ...over,
  };
}

const show = (s: RequestShape) => JSON.stringify({ ...s, count: String(s.count) });

const shapeOf = (body: Record<string, unknown>) =>
  quantiseRequestShape(body, MODEL, promptTokensFromBytes(promptBytesOf(body)));

/** A shape with every field drawn, sized so it can be met. */
function randomShape(random: () => number): RequestShape {
  const of = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)] as T;
  const tools = of([0, 0, 0, 1, 3, 16]);
  return rs({
    messages: of([1, 1, 2, 3, 4, 7, 12]),
    systemPrompt: random() < 0.5,
    stream: random() < 0.5,
    user: random() < 0.3,
    maxTokens: of([0, 16, 256, 1000]),
    temperature: of([undefined, 0, 0.3, 0.7, 1, 1.5, 2]),
    topP: of([undefined, 0, 0.05, 0.5, 0.9, 0.95, 1]),
    seed: random() < 0.3,
    stop: of([0, 0, 1, 2, 4]),
    tools,
    responseFormat: of(["", "", "text", "json_object", "json_schema"]),
    promptTokensLog2: tools === 16 ? of([13, 14]) : of([9, 10, 11, 12, 13]),
    logprobs: random() < 0.2,
  });
}

describe("probe-gen: shape sampler", () => {
  it("draws shapes in proportion to their counts, preferring the probed model's", () => {
    const shapes = [
      rs({ count: 1n, stop: 1 }),
      rs({ count: 3n, stop: 3 }),
      rs({ count: 100n, model: "other", stop: 4 }),
    ];
    const random = seededRandom(1);
    const stops = new Map<number, number>();
    for (let i = 0; i < 8000; i++) {
      const s = sampleShape(shapes, MODEL, random);
      expect(s.model).to.equal(MODEL);
      stops.set(s.stop, (stops.get(s.stop) ?? 0) + 1);
    }
    expect(stops.get(4)).to.equal(undefined);
    expect((stops.get(3) ?? 0) / 8000).to.be.closeTo(0.75, 0.03);
    // A model nobody asked for takes the whole report's mix, under its own name.
    const elsewhere = sampleShape(
      { windowSeconds: 3600, requests: 104n, shapes, minCount: 1, reportTimeMs: 0n, tail: [] },
      "new",
      random,
    );
    expect(elsewhere).to.deep.include({ model: "new" });
  });

  it("falls back to the built-in mix, in proportion to its weights", () => {
    const random = seededRandom(2);
    const total = DEFAULT_SHAPE_MIX.reduce((n, w) => n + w.weight, 0);
    const top = DEFAULT_SHAPE_MIX[0];
    let topDrawn = 0;
    for (let i = 0; i < 5000; i++) {
      const s = sampleShape(i % 2 === 0 ? undefined : [], MODEL, random);
      const { model, ...rest } = s;
      expect(model).to.equal(MODEL);
      expect(DEFAULT_SHAPE_MIX.some((w) => JSON.stringify(w.shape) === JSON.stringify(rest))).to.equal(true);
      if (JSON.stringify(rest) === JSON.stringify(top?.shape)) topDrawn++;
    }
    expect(topDrawn / 5000).to.be.closeTo((top?.weight ?? 0) / total, 0.03);
  });

  it("writes bodies the router accepts, whose shape is the one sampled", () => {
    const random = seededRandom(3);
    let sized = 0;
    let exact = 0;
    for (let i = 0; i < 400; i++) {
      const shape = randomShape(random);
      const { body, shape: drawn } = drawProbeBody({ shapes: [shape], model: MODEL, random });
      const { count: _c, ...want } = shape;
      expect(drawn).to.deep.equal(want);
      const got = shapeOf(body);
      expect({ ...got, promptTokensLog2: 0 }, show(shape)).to.deep.equal({
        ...want,
        promptTokensLog2: 0,
      });
      expect(Math.abs(got.promptTokensLog2 - want.promptTokensLog2), show(shape)).to.be.at.most(1);
      sized++;
      if (got.promptTokensLog2 === want.promptTokensLog2) exact++;
      // The router parses it as a user's request, and counts its prompt as the validator did.
      // (`logprobs` is left out until the router's parser accepts it: another part of this issue.)
      const { logprobs: _l, ...rest } = body;
      const parsed = parseChatBody(rest, { userSalt: "s", account: "v" });
      expect(parsed.prompt.bytes).to.equal(promptBytesOf(rest));
      expect(body.model).to.equal(MODEL);
    }
    expect(exact / sized).to.be.at.least(0.85);
  });

  it("sends the round values of the shape's sampling buckets, as people type them", () => {
    const random = seededRandom(4);
    for (let i = 0; i < 200; i++) {
      const { body } = drawProbeBody({
        shapes: [rs({ temperature: 0.7, topP: 0.95 })],
        model: MODEL,
        random,
      });
      expect(body.temperature).to.equal(0.7);
      expect(body.top_p).to.equal(0.95);
    }
  });

  it("draws audits from the deterministic traffic, keeping its fields", () => {
    const random = seededRandom(5);
    const sampled = rs({ count: 90n, stream: true, temperature: 1.2, maxTokens: 700, stop: 2, user: true });
    const greedy = rs({
      count: 10n,
      systemPrompt: true,
      messages: 2,
      temperature: 0,
      seed: true,
      maxTokens: 300,
    });
    for (let i = 0; i < 50; i++) {
      const { body } = drawProbeBody({
        shapes: [sampled, greedy],
        model: MODEL,
        random,
        audit: true,
        gradedShare: 0,
      });
      expect(body.temperature).to.equal(0);
      expect(body.seed).to.be.a("number");
      expect(body.max_tokens).to.equal(300);
      expect(shapeOf(body)).to.deep.include({ messages: 2, systemPrompt: true, stream: false, user: false });
    }
    // With no deterministic traffic at all, an audit keeps a user's shape made deterministic; no
    // seed or max_tokens that the shape does not have.
    for (let i = 0; i < 50; i++) {
      const { body } = drawProbeBody({
        shapes: [rs({ temperature: 0.7 })],
        model: MODEL,
        random,
        audit: true,
      });
      expect(body.temperature).to.equal(0);
      expect(body.seed).to.equal(undefined);
      expect(body.max_tokens).to.equal(undefined);
    }
  });

  it("gives all probes together the users' share of deterministic requests", () => {
    const random = seededRandom(9);
    // Users: 30 % at temperature 0. One probe in five is an audit (always temperature 0).
    const shapes = [rs({ count: 70n, temperature: 0.7 }), rs({ count: 30n, temperature: 0 })];
    let det = 0;
    const n = 6000;
    for (let i = 0; i < n; i++) {
      const audit = random() < 0.2;
      const { body } = drawProbeBody({
        shapes,
        model: MODEL,
        random,
        audit,
        verifyShare: 0.2,
        gradedShare: 0,
      });
      if (body.temperature === 0) det++;
    }
    expect(det / n).to.be.closeTo(0.3, 0.02);
  });

  it("draws the unlisted share of traffic field by field from the tail counts", () => {
    const random = seededRandom(10);
    const report = {
      windowSeconds: 3600,
      requests: 200n,
      minCount: 5,
      reportTimeMs: 0n,
      // Half the traffic is one common shape...
      shapes: [rs({ count: 100n, stream: false, maxTokens: 0 })],
      // ...the other half rare shapes: all streamed, max_tokens 128 or 1024, a quarter with a `user`.
      tail: [
        { model: MODEL, field: "stream", value: "true", count: 100n },
        { model: MODEL, field: "max_tokens", value: "128", count: 60n },
        { model: MODEL, field: "max_tokens", value: "1024", count: 40n },
        { model: MODEL, field: "user", value: "true", count: 25n },
        { model: MODEL, field: "user", value: "false", count: 75n },
        { model: "other", field: "stream", value: "true", count: 900n },
      ],
    };
    const n = 4000;
    let streamed = 0;
    let m128 = 0;
    let users = 0;
    for (let i = 0; i < n; i++) {
      const s = sampleShape(report, MODEL, random);
      if (s.stream) {
        streamed++;
        if (s.maxTokens === 128) m128++;
        if (s.user) users++;
      } else expect(s.maxTokens).to.equal(0);
    }
    expect(streamed / n).to.be.closeTo(0.5, 0.03);
    expect(m128 / streamed).to.be.closeTo(0.6, 0.04);
    expect(users / streamed).to.be.closeTo(0.25, 0.04);
  });

  it("gives a share of audits a graded prompt, and never a liveness probe", () => {
    const random = seededRandom(6);
    const shapes = [rs({ messages: 3, systemPrompt: true })];
    let graded = 0;
    for (let i = 0; i < 400; i++) {
      const p = drawProbeBody({ shapes, model: MODEL, random, audit: true });
      if (p.graded === undefined) continue;
      graded++;
      expect(p.graded.grade(p.graded.expected)).to.equal(true);
      const messages = p.body.messages as { role: string; content: string }[];
      expect(messages).to.have.length(3);
      const last = messages[2]?.content ?? "";
      if (p.graded.kind === "extract") expect(last).to.include(p.graded.expected);
      if (p.graded.kind === "reverse") expect(last).to.include([...p.graded.expected].reverse().join(""));
      if (p.graded.kind === "letters") expect(last).to.match(/How many|Count the/);
      if (p.graded.kind === "arithmetic") expect(last).to.match(/\d+\D+\d+/);
    }
    expect(graded / 400).to.be.closeTo(0.25, 0.06);
    for (let i = 0; i < 100; i++) {
      expect(drawProbeBody({ shapes, model: MODEL, random, gradedShare: 1 }).graded).to.equal(undefined);
      expect(drawProbeBody({ shapes, model: MODEL, random, audit: true, gradedShare: 0 }).graded).to.equal(
        undefined,
      );
      expect(
        drawProbeBody({ shapes, model: MODEL, random, audit: true, gradedShare: 1 }).graded,
      ).to.not.equal(undefined);
    }
  });

  it("sends the corpus conversation that fits the shape best, whole", () => {
    const line = (messages: { role: string; content: string }[], extra: object = {}) =>
      JSON.stringify({ messages, ...extra });
    const corpus = ProbeCorpus.parse(
      [
        line([{ role: "user", content: "alone" }]),
        line([
          { role: "system", content: "Operator system prompt." },
          { role: "user", content: "with system" },
        ]),
        line(
          [
            { role: "user", content: "u1" },
            { role: "assistant", content: "a1" },
            { role: "user", content: "u2" },
          ],
          {
            tools: [{ type: "function", function: { name: "private_tool", parameters: { type: "object" } } }],
          },
        ),
      ].join("\n"),
      "c",
    );
    const random = seededRandom(7);
    const draw = (over: Partial<RequestShape>) =>
      drawProbeBody({ shapes: [rs(over)], model: MODEL, random, source: corpus }).body;
    for (let i = 0; i < 20; i++) {
      expect(draw({ messages: 1 }).messages).to.deep.equal([{ role: "user", content: "alone" }]);
      expect(draw({ messages: 2, systemPrompt: true }).messages).to.deep.equal([
        { role: "system", content: "Operator system prompt." },
        { role: "user", content: "with system" },
      ]);
      expect(draw({ messages: 3 }).messages).to.have.length(3);
      // Nothing fits nine messages: the closest conversation goes as it is, never cut or padded.
      expect(draw({ messages: 9 }).messages).to.have.length(3);
    }
    const withTools = draw({ messages: 3, tools: 3 });
    expect((withTools.tools as { function: { name: string } }[]).map((t) => t.function.name)[0]).to.equal(
      "private_tool",
    );
    expect(withTools.tools).to.have.length(3);
  });

  it("sets `user` from the validator's pool only when the shape has one", () => {
    const pool = makeUserPool(seededRandom(8), 12);
    expect(new Set(pool).size).to.equal(12);
    expect(makeUserPool(seededRandom(8), 12)).to.deep.equal(pool);
    expect(makeUserPool(seededRandom(9), 12)).to.not.deep.equal(pool);
    const random = seededRandom(10);
    for (let i = 0; i < 50; i++) {
      expect(pool).to.include(
        drawProbeBody({ shapes: [rs({ user: true })], model: MODEL, random, userPool: pool }).body.user,
      );
      expect(
        drawProbeBody({ shapes: [rs()], model: MODEL, random, userPool: pool }).body,
      ).to.not.have.property("user");
    }
  });

  it("is deterministic for a seeded random source", () => {
    const opts = (seed: number) => ({
      shapes: [randomShape(seededRandom(1)), rs()],
      model: MODEL,
      random: seededRandom(seed),
      audit: true,
    });
    const a = drawProbeBody(opts(11));
    const b = drawProbeBody(opts(11));
    expect(JSON.stringify(a.body)).to.equal(JSON.stringify(b.body));
    expect(a.graded?.expected).to.equal(b.graded?.expected);
    expect(JSON.stringify(drawProbeBody(opts(12)).body)).to.not.equal(JSON.stringify(a.body));
  });
});
