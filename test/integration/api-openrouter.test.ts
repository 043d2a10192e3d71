/**
 * OpenRouter's `models` fallbacks and body fields through a real router and
 * raw tunnel miners, with the official `openai` client: which model serves,
 * what the answer and the usage event say, and what is refused before any
 * miner is touched.
 */
import { expect } from "chai";
import OpenAI, { APIError } from "openai";
import { FinishReason } from "../../gen/tensorclaw/v1/chat.js";
import { RequestErrorCode } from "../../gen/tensorclaw/v1/tunnel.js";
import { type RouterUnderTest, startRouter } from "../support/api-harness.js";
import { waitForSessions } from "../support/hub-sessions.js";
import { throwawayHotkey } from "../support/keys.js";
import { RawTunnelClient } from "../support/raw-tunnel-client.js";
import { FakeMiner } from "../support/tunnel-fake-miner.js";

/** Offered by a miner whose backend fails every request before any output. */
const BROKEN = "broken-model";
/** Offered by a miner whose backend refuses every request as invalid (a 400). */
const REFUSING = "refusing-model";
/** Offered by a miner that answers. */
const GOOD = "good-model";
/** Offered by nobody: on an open router it does not exist. */
const NONE = "no-such-model";

type Body = Record<string, unknown>;

describe("api OpenRouter extensions: models fallbacks and body fields", function () {
  this.timeout(30_000);
  let router: RouterUnderTest;
  const tunnels: RawTunnelClient[] = [];
  const fakes: FakeMiner[] = [];
  let client: OpenAI;

  async function miner(model: string, fails: boolean | "refuses"): Promise<void> {
    const t = await RawTunnelClient.open("grpc", { grpc: router.grpcUrl.slice("grpc://".length), ws: "" });
    tunnels.push(t);
    const key = await throwawayHotkey();
    const v = await t.handshake(key, {
      models: [{ id: model, maxConcurrency: 8, contextLength: 0, kinds: [] }],
    });
    if (v.accept === undefined) throw new Error(`refused: ${v.reject?.message}`);
    fakes.push(
      new FakeMiner(t, {
        plan: () =>
          fails === "refuses"
            ? {
                chunks: [],
                end: {
                  error: RequestErrorCode.REQUEST_ERROR_CODE_INVALID_REQUEST,
                  message: "maximum context length is 2048 tokens",
                  httpStatus: 400,
                },
              }
            : fails
              ? {
                  chunks: [],
                  end: { error: RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_ERROR, message: "GPU fell off" },
                }
              : {
                  chunks: [" one", " two"],
                  end: { usage: [5, 2] },
                  finishReason: FinishReason.FINISH_REASON_STOP,
                },
      }),
    );
    await waitForSessions(router.hub, (s) => s.some((x) => x.hotkey === key.address), `a miner of ${model}`);
  }

  before(async () => {
    router = await startRouter({ chat: { keepAliveMs: 0, requestTimeoutMs: 5000 } });
    await miner(BROKEN, true);
    await miner(GOOD, false);
    await miner(REFUSING, "refuses");
    client = new OpenAI({ apiKey: "none", baseURL: router.baseURL, maxRetries: 0 });
  });
  after(async () => {
    for (const t of tunnels) t.destroy();
    await router?.close();
  });

  /** A chat body as OpenRouter clients send it (the openai client passes unknown fields through). */
  function create(body: Body) {
    return client.chat.completions.create({
      messages: [{ role: "user", content: "hi" }],
      ...body,
    } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming);
  }

  async function refusal(p: Promise<unknown>): Promise<APIError> {
    try {
      await p;
    } catch (err) {
      expect(err).to.be.instanceOf(APIError);
      return err as APIError;
    }
    throw new Error("expected an API error");
  }

  const served = () => fakes.reduce((n, f) => n + f.requests.length, 0);

  it("skips unknown ids and a failing model, and the answer and its usage name the model that served", async () => {
    const before = router.usage.events.length;
    const r = await create({ models: [NONE, BROKEN, GOOD] });
    expect(r.model).to.equal(GOOD);
    expect(r.choices[0]?.message.content).to.equal(" one two");
    const events = await router.usage.waitFor(before + 2);
    const mine = events.slice(before);
    // The broken model's miner failed before output (earns nothing); the good one's answer counts under GOOD.
    expect(mine.map((e) => [e.model, e.outcome])).to.deep.equal([
      [BROKEN, "failed_early"],
      [GOOD, "completed"],
    ]);
  });

  it("streams: every chunk names the fallback that served, and usage.include ends with the usage chunk", async () => {
    const res = await fetch(`${router.baseURL}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: BROKEN,
        models: [GOOD],
        messages: [{ role: "user", content: "hi" }],
        stream: true,
        usage: { include: true },
      }),
    });
    expect(res.status).to.equal(200);
    const chunks = (await res.text())
      .split("\n\n")
      .filter((l) => l.startsWith("data: {"))
      .map(
        (l) => JSON.parse(l.slice("data: ".length)) as { model: string; choices: unknown[]; usage?: unknown },
      );
    expect(chunks.length).to.be.above(2);
    for (const c of chunks) expect(c.model).to.equal(GOOD);
    const last = chunks.at(-1);
    expect(last?.choices).to.deep.equal([]);
    expect(last?.usage).to.deep.include({ completion_tokens: 2 });
  });

  it("moves on to the next model when a backend refuses the request (as OpenRouter does for context errors)", async () => {
    const before = router.usage.events.length;
    const r = await create({ model: REFUSING, models: [GOOD] });
    expect(r.model).to.equal(GOOD);
    const e = await refusal(create({ model: REFUSING }));
    expect(e.status).to.equal(400);
    expect(e.code).to.equal("context_length_exceeded");
    // The refusal is neutral (no usage event for it); the served answer is GOOD's.
    const events = await router.usage.waitFor(before + 1);
    expect(events.slice(before).map((x) => [x.model, x.outcome])).to.deep.equal([[GOOD, "completed"]]);
  });

  it("without fallbacks the failing model is the user's error (502)", async () => {
    const e = await refusal(create({ model: BROKEN }));
    expect(e.status).to.equal(502);
  });

  it("answers 404 naming `models` when none of the ids exists", async () => {
    const e = await refusal(create({ models: [NONE, "other-missing"] }));
    expect(e.status).to.equal(404);
    expect(e.param).to.equal("models");
    expect(e.message).to.contain(NONE);
  });

  it("refuses what it cannot honour with a 400 before any miner is touched", async () => {
    const cases: [Body, string][] = [
      [{ provider: { order: ["anthropic"] } }, "provider.order"],
      [{ provider: { data_collection: "deny" } }, "provider.data_collection"],
      [{ plugins: [{ id: "web" }] }, "plugins"],
      [{ transforms: ["middle-out"] }, "transforms"],
      [{ models: [] }, "models"],
    ];
    const before = served();
    for (const [body, param] of cases) {
      const e = await refusal(create({ model: GOOD, ...body }));
      expect(e.status, param).to.equal(400);
      expect(e.param, param).to.equal(param);
    }
    expect(served()).to.equal(before);
  });

  it("accepts and ignores the harmless ones", async () => {
    const r = await create({
      model: GOOD,
      provider: { allow_fallbacks: false, sort: "throughput" },
      transforms: [],
      route: "fallback",
      usage: { include: true },
    });
    expect(r.model).to.equal(GOOD);
    expect(r.usage?.completion_tokens).to.equal(2);
  });
});
