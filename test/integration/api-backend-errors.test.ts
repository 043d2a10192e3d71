/**
 * Errors that say why: a backend's own error message reaches the user
 * through a real miner and router, with the backend's status where the user
 * can act on it, scrubbed of the miner's secrets on both ends; and the
 * miner's log line about the failure carries the user's x-request-id.
 */
import { expect } from "chai";
import OpenAI from "openai";
import { TRACE_ID } from "../../common/trace-id.js";
import { ChatRequest } from "../../gen/tensorclaw/v1/chat.js";
import { RequestErrorCode } from "../../gen/tensorclaw/v1/tunnel.js";
import { BackendFailure } from "../../miner/backend/backend.js";
import { OpenAIHttpBackend } from "../../miner/backend/openai.js";
import { RequestStop } from "../../miner/backend/request-stop.js";
import { apiError } from "../support/api-error.js";
import { type MinerProcess, type RouterUnderTest, startMiner, startRouter } from "../support/api-harness.js";
import { ErrorBackend } from "../support/error-backend.js";
import { waitForSessions } from "../support/hub-sessions.js";
import { throwawayHotkey } from "../support/keys.js";
import { pollUntil } from "../support/poll.js";
import { RawTunnelClient } from "../support/raw-tunnel-client.js";
import { FakeMiner } from "../support/tunnel-fake-miner.js";

const MODEL = "err-model";
const CONTEXT_ERROR =
  "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4000 in the messages, 1000 in the completion). Please reduce the length of the messages or completion.";
const LEAKY = "Invalid key sk-secretABCDEF123456 for backend http://10.1.2.3:8000/v1 (host gpu-7:8000)";

function expectNoLeak(text: string): void {
  for (const secret of ["sk-secret", "10.1.2.3", "gpu-7", ":8000"]) expect(text).not.to.contain(secret);
}

describe("errors that say why: backend → miner → router → openai client", function () {
  this.timeout(30_000);
  let router: RouterUnderTest;
  let backend: ErrorBackend;
  let miner: MinerProcess;
  let client: OpenAI;

  before(async () => {
    router = await startRouter({ chat: { requestTimeoutMs: 5000 } });
    backend = await ErrorBackend.start([MODEL]);
    miner = await startMiner(router, backend.url);
    client = new OpenAI({ apiKey: "none", baseURL: router.baseURL, maxRetries: 0 });
  });
  after(async () => {
    await miner?.kill();
    await router?.close();
    await backend?.close();
  });

  function ask(content = "hello"): Promise<unknown> {
    return client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content }] });
  }

  it("a vLLM context-length 400 reaches the user as a 400 with vLLM's words, and one id joins all three logs", async () => {
    backend.answer = {
      status: 400,
      body: JSON.stringify({
        object: "error",
        message: CONTEXT_ERROR,
        type: "BadRequestError",
        param: null,
        code: 400,
      }),
    };
    const e = await apiError(ask());
    expect(e.status).to.equal(400);
    expect(e.message).to.contain(CONTEXT_ERROR);
    expect(e.type).to.equal("invalid_request_error");
    expect(e.code).to.equal("context_length_exceeded");
    const id = e.headers?.get("x-request-id") ?? "";
    expect(id).to.match(TRACE_ID);
    // The backend was told the same id, and the miner's warning about the failure carries it.
    expect(backend.chatHeaders.at(-1)?.["x-request-id"]).to.equal(id);
    await pollUntil(() => miner.stderr().includes(id), { timeoutMs: 5000, what: "the miner's failure line" });
    const line = miner
      .stderr()
      .split("\n")
      .find((l) => l.includes(id));
    const logged = JSON.parse(line ?? "{}") as { traceId?: string; httpStatus?: number; level?: number };
    expect(logged.traceId).to.equal(id);
    expect(logged.httpStatus).to.equal(400);
    expect(logged.level).to.equal(40);
  });

  it("a 422 in plain text keeps its status and text", async () => {
    backend.answer = { status: 422, body: "response_format: schema is not valid", contentType: "text/plain" };
    const e = await apiError(ask());
    expect(e.status).to.equal(422);
    expect(e.message).to.contain("response_format: schema is not valid");
    expect(e.code).to.equal("invalid_request");
  });

  it("a backend message holding a key and addresses is masked before the user sees it", async () => {
    backend.answer = {
      status: 400,
      body: JSON.stringify({ error: { message: LEAKY, type: "invalid_request_error" } }),
    };
    const e = await apiError(ask());
    expect(e.status).to.equal(400);
    expect(e.message).to.contain("Invalid key");
    expect(e.message).to.contain("[redacted]");
    expect(e.message).to.contain("[address]");
    expectNoLeak(JSON.stringify(e.error));
  });

  it("a backend 500 is a 502 that says why", async () => {
    backend.answer = {
      status: 500,
      body: JSON.stringify({
        error: { message: "CUDA out of memory. Tried to allocate 2.00 GiB", type: "server_error" },
      }),
    };
    const e = await apiError(ask());
    expect(e.status).to.equal(502);
    expect(e.code).to.equal("upstream_error");
    expect(e.message).to.contain("CUDA out of memory. Tried to allocate 2.00 GiB");
  });

  it("a backend 401 (the miner's own key) tells the user only that the miner failed", async () => {
    backend.answer = {
      status: 401,
      body: JSON.stringify({ error: { message: `Incorrect API key ${LEAKY}` } }),
    };
    const e = await apiError(ask());
    expect(e.status).to.equal(502);
    expect(e.message).not.to.contain("Incorrect API key");
    expectNoLeak(JSON.stringify(e.error));
  });

  it("the miner scrubs on its own side: its failure carries the masked message and the status", async () => {
    backend.answer = { status: 400, body: JSON.stringify({ error: { message: LEAKY } }) };
    const http = new OpenAIHttpBackend({ baseUrl: backend.url });
    try {
      const chat = ChatRequest.fromPartial({ messages: [{ role: "user", content: "x" }], maxTokens: 8 });
      let failure: unknown;
      try {
        for await (const _ of http.chat(MODEL, chat, new RequestStop(), { traceId: "ab".repeat(16) })) {
          // no events expected
        }
      } catch (err) {
        failure = err;
      }
      expect(failure).to.be.instanceOf(BackendFailure);
      const f = failure as BackendFailure;
      expect(f.code).to.equal(RequestErrorCode.REQUEST_ERROR_CODE_INVALID_REQUEST);
      expect(f.httpStatus).to.equal(400);
      expect(f.message).to.contain("Invalid key");
      expectNoLeak(f.message);
      expect(backend.chatHeaders.at(-1)?.["x-request-id"]).to.equal("ab".repeat(16));
      // A huge error body: its start is read (16 KiB), the rest is not, and the message stays short.
      backend.answer = {
        status: 413,
        body: `prompt too long ${"z ".repeat(100_000)}`,
        contentType: "text/plain",
      };
      let big: unknown;
      try {
        for await (const _ of http.chat(MODEL, chat, new RequestStop(), { traceId: "not a trace id" })) {
          // no events expected
        }
      } catch (err) {
        big = err;
      }
      expect((big as BackendFailure).httpStatus).to.equal(413);
      expect((big as BackendFailure).message.startsWith("prompt too long")).to.equal(true);
      expect((big as BackendFailure).message.length).to.be.at.most(1000);
      // A trace id that is not the router's shape is not passed on.
      expect(backend.chatHeaders.at(-1)).not.to.have.property("x-request-id");
    } finally {
      http.close();
    }
  });
});

describe("errors that say why: a hostile miner's error text and status", function () {
  this.timeout(30_000);
  let router: RouterUnderTest;
  let tunnel: RawTunnelClient;
  let reply: { message: string; httpStatus: number; code: RequestErrorCode };

  before(async () => {
    router = await startRouter({ chat: { requestTimeoutMs: 5000 } });
    tunnel = await RawTunnelClient.open("grpc", { grpc: router.grpcUrl.slice("grpc://".length), ws: "" });
    const verdict = await tunnel.handshake(await throwawayHotkey(), {
      models: [{ id: MODEL, maxConcurrency: 4, contextLength: 0, kinds: [] }],
    });
    if (verdict.accept === undefined) throw new Error(`refused: ${verdict.reject?.message}`);
    new FakeMiner(tunnel, {
      plan: () => ({
        chunks: [],
        end: { error: reply.code, message: reply.message, httpStatus: reply.httpStatus },
      }),
    });
    await waitForSessions(router.hub, (s) => s.length === 1, "the raw miner");
  });
  after(async () => {
    tunnel?.destroy();
    await router?.close();
  });

  async function ask(): Promise<Response> {
    return fetch(`${router.baseURL}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }] }),
    });
  }

  it("masks secrets and addresses a miner sends raw, and cuts the text to 1,000 characters", async () => {
    reply = {
      code: RequestErrorCode.REQUEST_ERROR_CODE_INVALID_REQUEST,
      message: `${LEAKY} ${"\u202e".repeat(10)}${"pad ".repeat(2000)}`,
      httpStatus: 400,
    };
    const res = await ask();
    expect(res.status).to.equal(400);
    const body = (await res.json()) as { error: { message: string; code: string; type: string } };
    expectNoLeak(body.error.message);
    expect(body.error.message).not.to.contain("\u202e");
    expect(body.error.message.length).to.be.at.most(1000);
    expect(body.error.type).to.equal("invalid_request_error");
  });

  it("turns a status that is not a relayable 4xx into a 400", async () => {
    for (const httpStatus of [200, 302, 401, 429, 503, 70000]) {
      reply = { code: RequestErrorCode.REQUEST_ERROR_CODE_INVALID_REQUEST, message: "nope", httpStatus };
      const res = await ask();
      expect(res.status, String(httpStatus)).to.equal(400);
      await res.text();
    }
  });

  it("scrubs the text of a miner's other failures too (502)", async () => {
    reply = { code: RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_ERROR, message: LEAKY, httpStatus: 500 };
    const res = await ask();
    expect(res.status).to.equal(502);
    expectNoLeak(await res.text());
  });
});
