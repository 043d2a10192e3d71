// Errors of the demo model server: every refusal is an OpenAI error body
// with the right status, type, code and (for bad input) the field named.
import { expect } from "chai";
import OpenAI, { APIError } from "openai";
import { DEMO_MODEL_ID } from "../../common/demo-model/model.js";
import { type DemoModelServer, startDemoModelServer } from "../../common/demo-model/server.js";

async function apiError(p: Promise<unknown>): Promise<APIError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).to.be.instanceOf(APIError);
  return err as APIError;
}

describe("demo model server errors (OpenAI error bodies)", () => {
  let server: DemoModelServer;
  let client: OpenAI;
  const post = (path: string, body: string) => fetch(`${server.url}${path}`, { method: "POST", body });

  beforeEach(async () => {
    server = await startDemoModelServer({ host: "127.0.0.1", port: 0 });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
  });
  afterEach(async () => {
    await server.close();
  });

  it("refuses an unknown model with 404 model_not_found", async () => {
    const e = await apiError(
      client.chat.completions.create({ model: "gpt-9", messages: [{ role: "user", content: "x" }] }),
    );
    expect(e.status).to.equal(404);
    expect(e.code).to.equal("model_not_found");
    const t = await post("/tokenize", JSON.stringify({ model: "gpt-9", prompt: "x" }));
    expect(t.status).to.equal(404);
  });

  it("refuses bad input with 400 naming the field", async () => {
    const cases: [Promise<unknown>, string][] = [
      [client.chat.completions.create({ model: DEMO_MODEL_ID, messages: [] }), "messages"],
      [
        client.chat.completions.create({
          model: DEMO_MODEL_ID,
          messages: [{ role: "user", content: "x" }],
          top_logprobs: 2,
        }),
        "top_logprobs",
      ],
      [
        client.chat.completions.create({
          model: DEMO_MODEL_ID,
          messages: [{ role: "user", content: "x" }],
          temperature: 3,
        }),
        "temperature",
      ],
      [
        client.chat.completions.create({
          model: DEMO_MODEL_ID,
          messages: [{ role: "user", content: "x" }],
          max_tokens: 9000,
        }),
        "max_tokens",
      ],
      [client.completions.create({ model: DEMO_MODEL_ID, prompt: [1, 2, 199_998] }), "prompt"],
      [client.completions.create({ model: DEMO_MODEL_ID, prompt: "x", logprobs: 21 }), "logprobs"],
      [client.completions.create({ model: DEMO_MODEL_ID, prompt: "x", stream: true }), "stream"],
      [client.completions.create({ model: DEMO_MODEL_ID, prompt: ["a", "b"] }), "prompt"],
    ];
    for (const [p, param] of cases) {
      const e = await apiError(p);
      expect(e.status, param).to.equal(400);
      expect(e.param, param).to.equal(param);
      expect(e.type, param).to.equal("invalid_request_error");
    }
  });

  it("answers invalid JSON with 400, an oversized body with 413, an unknown path with 404", async () => {
    const bad = await post("/v1/chat/completions", "{not json");
    expect(bad.status).to.equal(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).to.equal("invalid_json");
    // A small cap keeps the bodies inside socket buffers, so the early close races nothing.
    const small = await startDemoModelServer({ host: "127.0.0.1", port: 0, maxBodyBytes: 1000 });
    try {
      const huge = await fetch(`${small.url}/v1/completions`, {
        method: "POST",
        body: JSON.stringify({ model: DEMO_MODEL_ID, prompt: "a".repeat(2000) }),
      });
      expect(huge.status).to.equal(413);
      expect(((await huge.json()) as { error: { code: string } }).error.code).to.equal("payload_too_large");
      // Chunked, with no content-length: cut off once it passes the cap.
      const chunked = new ReadableStream({
        start(c) {
          for (let i = 0; i < 4; i++) c.enqueue(new TextEncoder().encode(" ".repeat(500)));
          c.close();
        },
      });
      const cut = await fetch(`${small.url}/tokenize`, {
        method: "POST",
        body: chunked,
        duplex: "half",
      } as RequestInit);
      expect(cut.status).to.equal(413);
      expect((await fetch(`${small.url}/health`)).status).to.equal(200);
    } finally {
      await small.close();
    }
    const none = await fetch(`${server.url}/v1/audio/speech`, { method: "POST", body: "{}" });
    expect(none.status).to.equal(404);
    expect(((await none.json()) as { error: { code: string } }).error.code).to.equal("not_found");
  });
});
