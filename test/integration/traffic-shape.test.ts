import { credentials, type ServiceError, status } from "@grpc/grpc-js";
import { expect } from "chai";
import OpenAI from "openai";
import type { Hotkey } from "../../common/identity.js";
import { signedCall } from "../../common/validator-call/client.js";
import {
  GetTrafficShapeRequest,
  type GetTrafficShapeResponse,
  ProbeRequest,
  type ProbeResponse,
  ProbeServiceClient,
  ProbeServiceService,
} from "../../gen/tensorclaw/v1/probe.js";
import { ModelCatalogue } from "../../router/catalogue/catalogue.js";
import { checkEntry, defaultEntry } from "../../router/catalogue/entry.js";
import { TrafficShapeRecorder } from "../../router/services/traffic-shape.js";
import { type MinerProcess, type RouterUnderTest, startMiner, startRouter } from "../support/api-harness.js";
import { throwawayHotkey } from "../support/keys.js";
import { type OpenAIBackend, startOpenAIBackend } from "../support/openai-backend.js";

const MODEL = "shape-model";
const ENTRY = checkEntry({ ...defaultEntry(MODEL), aliases: ["sm"] });

async function grpcStatus(p: Promise<unknown>): Promise<number | undefined> {
  try {
    await p;
  } catch (err) {
    return (err as ServiceError).code;
  }
  throw new Error("expected the call to fail");
}

describe("traffic shape: user requests through a real router, read back over signed gRPC", function () {
  this.timeout(30_000);
  let validator: Hotkey;
  let stranger: Hotkey;
  let recorder: TrafficShapeRecorder;
  let router: RouterUnderTest;
  let backend: OpenAIBackend;
  let miner: MinerProcess;
  let probeClient: ProbeServiceClient;
  let openai: OpenAI;

  before(async () => {
    validator = await throwawayHotkey();
    stranger = await throwawayHotkey();
    recorder = new TrafficShapeRecorder();
    router = await startRouter({
      catalogue: new ModelCatalogue([ENTRY], false),
      trafficShape: recorder,
      validators: [validator.address],
    });
    backend = await startOpenAIBackend({ models: [MODEL] });
    miner = await startMiner(router, backend.url);
    // ProbeService as the router serves it: the same hub, validator-call auth, the same recorder.
    probeClient = new ProbeServiceClient(router.grpcUrl.replace("grpc://", ""), credentials.createInsecure());
    openai = new OpenAI({ apiKey: "unused", baseURL: router.baseURL, maxRetries: 0 });
  });
  after(async () => {
    probeClient?.close();
    await miner?.kill();
    await router?.close();
    await backend?.close();
  });

  const shapeOf = (model: string, key: Hotkey = validator) =>
    signedCall<GetTrafficShapeRequest, GetTrafficShapeResponse>(
      probeClient,
      ProbeServiceService.getTrafficShape,
      GetTrafficShapeRequest.fromPartial({ model }),
      key,
      router.hub.routerId,
    );

  it("reports the shapes of user requests, under the canonical model, common ones only; probes are not counted", async () => {
    // Shape A, five times, asked under the alias: streamed, system prompt, sampling parameters.
    for (let i = 0; i < 5; i++) {
      const stream = await openai.chat.completions.create({
        model: "sm",
        messages: [
          { role: "system", content: "You are terse." },
          { role: "user", content: `Question number ${i}, please answer it well.` },
        ],
        stream: true,
        temperature: 0.72,
        top_p: 0.9,
        max_tokens: 64,
        user: `user-${i}`,
      });
      for await (const _ of stream) {
        // drain
      }
    }
    // Shape B, six times: one message, not streamed, seed and stop sequences.
    for (let i = 0; i < 6; i++) {
      await openai.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: "hi" }],
        seed: i,
        stop: ["\n\n", "END"],
      });
    }
    // Shape C, twice: too rare to report, but counted in `requests`.
    for (let i = 0; i < 2; i++) {
      await openai.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: "hello" }],
        response_format: { type: "json_object" },
      });
    }
    // Refused before it is served (no such model): not user traffic the router served.
    await openai.chat.completions
      .create({ model: "no-such-model", messages: [{ role: "user", content: "x" }] })
      .catch(() => undefined);

    // Probes go to the same miner through the same hub, and must not show up.
    const served = backend.requests.length;
    for (let i = 0; i < 6; i++) {
      const res = await signedCall<ProbeRequest, ProbeResponse>(
        probeClient,
        ProbeServiceService.probe,
        ProbeRequest.fromPartial({
          hotkey: miner.hotkey,
          model: MODEL,
          // Shape B's body: were probes counted, shape B would show 12.
          requestJson: JSON.stringify({
            messages: [{ role: "user", content: "hi" }],
            seed: i,
            stop: ["\n\n", "END"],
          }),
          cutAfterTokens: 5,
        }),
        validator,
        router.hub.routerId,
      );
      expect(res.ok, res.error).to.equal(true);
    }
    expect(backend.requests.length).to.equal(served + 6);

    const rep = await shapeOf(MODEL);
    expect(rep.windowSeconds).to.equal(3600);
    expect(rep.minCount).to.equal(5);
    expect(rep.requests).to.equal(13n);
    expect(Number(rep.reportTimeMs)).to.be.closeTo(Date.now(), 10_000);
    expect(rep.shapes).to.have.length(2);
    const [b, a] = rep.shapes;
    expect(b).to.deep.include({
      count: 6n,
      model: MODEL,
      messages: 1,
      systemPrompt: false,
      stream: false,
      user: false,
      maxTokens: 0,
      temperature: undefined,
      topP: undefined,
      seed: true,
      stop: 2,
      tools: 0,
      responseFormat: "",
      promptTokensLog2: 1,
      logprobs: false,
    });
    expect(a).to.deep.include({
      count: 5n,
      model: MODEL,
      messages: 2,
      systemPrompt: true,
      stream: true,
      user: true,
      maxTokens: 64,
      temperature: 0.7,
      topP: 0.9,
      seed: false,
      stop: 0,
    });
    // Every model at once, and a model with no traffic.
    expect((await shapeOf("")).requests).to.equal(13n);
    expect(await shapeOf("other-model")).to.deep.include({ requests: 0n, shapes: [] });
  });

  it("is served only to signed calls of allowed validators, like Probe", async () => {
    expect(await grpcStatus(shapeOf(MODEL, stranger))).to.equal(status.PERMISSION_DENIED);
    const unsigned = new Promise((resolve, reject) =>
      probeClient.getTrafficShape(GetTrafficShapeRequest.fromPartial({ model: MODEL }), (err, res) =>
        err === null ? resolve(res) : reject(err),
      ),
    );
    expect(await grpcStatus(unsigned)).to.equal(status.UNAUTHENTICATED);
  });
});
