import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import OpenAI from "openai";
import { ApiKeys, FileApiKeyStore } from "../../router/api/keys.js";
import { apiError } from "../support/api-error.js";
import { type RouterUnderTest, startRouter } from "../support/api-harness.js";
import { FakeClock } from "../support/fake-clock.js";

/** Raw HTTP against the router, for what the openai client cannot send. */
async function raw(r: RouterUnderTest, path: string, init: RequestInit = {}) {
  const res = await fetch(`http://127.0.0.1:${r.api.port}${path}`, init);
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return {
    res,
    text,
    json: json as { error?: { type: string; code: string; param: string | null; message: string } },
  };
}

const MSG = [{ role: "user" as const, content: "hi" }];

describe("api http: requests that never reach a miner", () => {
  let router: RouterUnderTest;
  let key: string;
  let revokedKey: string;
  let client: OpenAI;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-api-http-"));
    const store = new FileApiKeyStore(join(dir, "keys.json"));
    router = await startRouter({
      keyStore: store,
      chat: { maxBodyBytes: 2048 },
      corsOrigins: ["https://app.example"],
    });
    const keys = new ApiKeys(store);
    key = (await keys.create("ok", { requestsPerMinute: 0, tokensPerMinute: 0 }, Date.now())).key;
    const r = await keys.create("gone", { requestsPerMinute: 0, tokensPerMinute: 0 }, Date.now());
    revokedKey = r.key;
    await keys.revoke(r.record.id, Date.now());
    client = new OpenAI({ apiKey: key, baseURL: router.baseURL, maxRetries: 0 });
  });
  after(async () => {
    await router.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("answers a CORS preflight allowing every header the official openai SDK sends, and only well-formed names", async () => {
    // What the SDK really sends: its request to a bare server, headers and all.
    let sent: string[] = [];
    const capture = createServer((req, res) => {
      sent = Object.keys(req.headers);
      res.writeHead(401, { "content-type": "application/json" });
      res.end('{"error":{"message":"no","type":"invalid_request_error"}}');
    });
    await new Promise<void>((r) => capture.listen(0, "127.0.0.1", r));
    const port = (capture.address() as AddressInfo).port;
    const sdk = new OpenAI({ apiKey: "k", baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0 });
    await sdk.chat.completions.create({ model: "m", messages: MSG }).catch(() => undefined);
    capture.close();
    const asked = sent.filter(
      (h) => !["host", "connection", "content-length", "accept-encoding"].includes(h),
    );
    expect(asked.filter((h) => h.startsWith("x-stainless-")).length).to.be.above(3);
    const pre = await raw(router, "/v1/chat/completions", {
      method: "OPTIONS",
      headers: {
        origin: "https://app.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": [...asked, "HTTP-Referer", "X-Title"].join(", "),
      },
    });
    expect(pre.res.status).to.equal(204);
    const allowed = (pre.res.headers.get("access-control-allow-headers") ?? "").split(", ");
    for (const h of [...asked, "http-referer", "x-title"]) expect(allowed, h).to.include(h);
    expect(pre.res.headers.get("access-control-allow-origin")).to.equal("https://app.example");
    // A list that is not header names gets the default list back, not an echo.
    const odd = await raw(router, "/v1/chat/completions", {
      method: "OPTIONS",
      headers: {
        origin: "https://app.example",
        "access-control-request-headers": "authorization, bad header",
      },
    });
    expect(odd.res.headers.get("access-control-allow-headers")).to.equal(
      "authorization, content-type, x-request-id, openai-organization",
    );
  });

  it("invalid JSON: 400 invalid_json with an OpenAI error body and x-request-id", async () => {
    const { res, json } = await raw(router, "/v1/chat/completions", {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: "{not json",
    });
    expect(res.status).to.equal(400);
    expect(res.headers.get("x-request-id")).to.match(/^[0-9a-f]{32}$/);
    expect(json.error).to.include({ type: "invalid_request_error", code: "invalid_json", param: null });
  });

  it("missing and invalid fields: 400 naming the field", async () => {
    const e1 = await apiError(
      client.chat.completions.create({
        model: "m",
        messages: [],
      } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming),
    );
    expect(e1.status).to.equal(400);
    expect(e1.param).to.equal("messages");
    const e2 = await apiError(client.chat.completions.create({ model: "m", messages: MSG, temperature: 9 }));
    expect(e2.status).to.equal(400);
    expect(e2.param).to.equal("temperature");
    const e3 = await apiError(client.chat.completions.create({ model: "m", messages: MSG, n: 9 }));
    expect(e3.param).to.equal("n");
    expect(e3.message).to.contain("between 1 and 8");
  });

  it("body over the limit: 413 before reading it, router still healthy", async () => {
    const e = await apiError(
      client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "x".repeat(5000) }] }),
    );
    expect(e.status).to.equal(413);
    expect((e.error as { code: string }).code).to.equal("payload_too_large");
    // Chunked upload without content-length is cut off too.
    const big = new ReadableStream({
      start(c) {
        for (let i = 0; i < 10; i++) c.enqueue(new TextEncoder().encode("y".repeat(1000)));
        c.close();
      },
    });
    const { res } = await raw(router, "/v1/chat/completions", {
      method: "POST",
      headers: { authorization: `Bearer ${key}` },
      body: big,
      duplex: "half",
    } as RequestInit);
    expect(res.status).to.equal(413);
    expect((await raw(router, "/healthz")).res.status).to.equal(200);
  });

  it("unknown model: 404 model_not_found naming `model`", async () => {
    const e = await apiError(client.chat.completions.create({ model: "no-such-model", messages: MSG }));
    expect(e.status).to.equal(404);
    expect(e.param).to.equal("model");
    expect((e.error as { code: string }).code).to.equal("model_not_found");
  });

  it("no key, a wrong key and a revoked key: 401", async () => {
    const noKey = await raw(router, "/v1/chat/completions", { method: "POST", body: "{}" });
    expect(noKey.res.status).to.equal(401);
    expect(noKey.json.error?.code).to.equal("unauthenticated");
    const wrong = new OpenAI({ apiKey: "tc-wrong", baseURL: router.baseURL, maxRetries: 0 });
    const e1 = await apiError(wrong.chat.completions.create({ model: "m", messages: MSG }));
    expect(e1.status).to.equal(401);
    expect(e1.type).to.equal("authentication_error");
    const revoked = new OpenAI({ apiKey: revokedKey, baseURL: router.baseURL, maxRetries: 0 });
    const e2 = await apiError(revoked.chat.completions.create({ model: "m", messages: MSG }));
    expect(e2.status).to.equal(401);
    expect((await apiError(revoked.models.list())).status).to.equal(401);
  });

  it("lists no models when no miner is connected", async () => {
    const page = await client.models.list();
    expect(page.data).to.deep.equal([]);
  });

  it("health, readiness, metrics and unknown routes", async () => {
    const h = await raw(router, "/healthz");
    expect(h.res.status).to.equal(200);
    expect(h.res.headers.get("x-request-id")).to.be.a("string");
    expect((await raw(router, "/readyz")).res.status).to.equal(200);
    const m = await raw(router, "/metrics");
    expect(m.res.status).to.equal(200);
    expect(m.text).to.contain("tensorclaw_api_requests_total");
    expect(m.text).to.match(/tensorclaw_api_requests_total\{model="unknown",status="404"\} [1-9]/);
    expect(m.text).to.contain('tensorclaw_miners{state="active"} 0');
    const nf = await raw(router, "/v2/nothing");
    expect(nf.res.status).to.equal(404);
    expect(nf.json.error?.type).to.equal("invalid_request_error");
  });

  it("asks for the metrics token when one is set: none or a wrong one is 401, the right one 200", async () => {
    const r = await startRouter({ metricsToken: "scrape-secret" });
    try {
      const none = await raw(r, "/metrics");
      expect(none.res.status).to.equal(401);
      expect(none.json.error?.type).to.equal("authentication_error");
      const wrong = await raw(r, "/metrics", { headers: { authorization: "Bearer scrape-secreT" } });
      expect(wrong.res.status).to.equal(401);
      const longer = await raw(r, "/metrics", { headers: { authorization: "Bearer scrape-secret2" } });
      expect(longer.res.status).to.equal(401);
      const right = await raw(r, "/metrics", { headers: { authorization: "Bearer scrape-secret" } });
      expect(right.res.status).to.equal(200);
      expect(right.text).to.contain("tensorclaw_api_requests_total");
      // The rest of the API is not affected by the metrics token.
      expect((await raw(r, "/healthz")).res.status).to.equal(200);
    } finally {
      await r.close();
    }
  });

  it("readiness follows the callback and shows the router's detail figures", async () => {
    let ready = false;
    let depth = 7;
    const r = await startRouter({ ready: () => ready, readyDetail: () => ({ usage_spool_depth: depth }) });
    try {
      const down = await raw(r, "/readyz");
      expect(down.res.status).to.equal(503);
      expect(down.json).to.deep.equal({ status: "not ready", usage_spool_depth: 7 });
      ready = true;
      depth = 0;
      const up = await raw(r, "/readyz");
      expect(up.res.status).to.equal(200);
      expect(up.json).to.deep.equal({ status: "ready", usage_spool_depth: 0 });
    } finally {
      await r.close();
    }
  });

  it("CORS: answers carry allow-origin only for a named origin; a router without --cors-origins allows none", async () => {
    const named = await raw(router, "/healthz", { headers: { origin: "https://app.example" } });
    expect(named.res.headers.get("access-control-allow-origin")).to.equal("https://app.example");
    expect(named.res.headers.get("access-control-expose-headers")).to.include("x-request-id");
    expect(named.res.headers.get("vary")).to.include("origin");
    const stranger = await raw(router, "/healthz", { headers: { origin: "https://evil.example" } });
    expect(stranger.res.headers.get("access-control-allow-origin")).to.equal(null);
    const closed = await startRouter({});
    try {
      const h = await raw(closed, "/healthz", { headers: { origin: "https://app.example" } });
      expect(h.res.status).to.equal(200);
      expect(h.res.headers.get("access-control-allow-origin")).to.equal(null);
      const pre = await raw(closed, "/v1/chat/completions", {
        method: "OPTIONS",
        headers: {
          origin: "https://app.example",
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization, content-type",
        },
      });
      expect(pre.res.status).to.equal(204);
      expect(pre.res.headers.get("access-control-allow-origin")).to.equal(null);
      expect(pre.res.headers.get("access-control-allow-headers")).to.equal(null);
    } finally {
      await closed.close();
    }
  });

  it("just after a restart an open router answers an unknown model 503 with retry-after (its miners may be reconnecting), later 404", async () => {
    const clock = new FakeClock(Date.now());
    const fresh = await startRouter({ clock, chat: { startupGraceMs: 30_000 } });
    try {
      const c = new OpenAI({ apiKey: "none", baseURL: fresh.baseURL, maxRetries: 0 });
      const early = await apiError(
        c.chat.completions.create({ model: "llama-after-restart", messages: MSG }),
      );
      expect(early.status).to.equal(503);
      expect(early.headers?.get("retry-after")).to.match(/^[1-9]/);
      await clock.advance(30_000);
      const later = await apiError(
        c.chat.completions.create({ model: "llama-after-restart", messages: MSG }),
      );
      expect(later.status).to.equal(404);
    } finally {
      await fresh.close();
    }
  });

  it("a body a browser may send without a preflight (text/plain, a form): 415, never parsed", async () => {
    for (const type of [
      "text/plain;charset=UTF-8",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=x",
    ]) {
      const { res, json } = await raw(router, "/v1/chat/completions", {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": type },
        body: JSON.stringify({ model: "m", messages: MSG }),
      });
      expect(res.status, type).to.equal(415);
      expect(json.error?.code).to.equal("unsupported_media_type");
    }
  });

  it("a wrong method on a known path: 405 with allow; unknown paths stay 404", async () => {
    const get = await raw(router, "/v1/chat/completions");
    expect(get.res.status).to.equal(405);
    expect(get.res.headers.get("allow")).to.equal("POST");
    expect(get.json.error?.code).to.equal("method_not_allowed");
    for (const [method, path] of [
      ["PUT", "/v1/chat/completions"],
      ["DELETE", "/v1/chat/completions"],
      ["POST", "/v1/models"],
      ["DELETE", "/healthz"],
      ["POST", "/v1/models/m"],
    ] as const) {
      const r = await raw(router, path, { method, headers: { authorization: `Bearer ${key}` } });
      expect(r.res.status, `${method} ${path}`).to.equal(405);
      expect(r.res.headers.get("allow"), `${method} ${path}`).to.equal(
        path === "/v1/chat/completions" ? "POST" : "GET, HEAD",
      );
    }
    expect((await raw(router, "/v1/nothing", { method: "DELETE" })).res.status).to.equal(404);
  });

  it("a router keeping no accounts lists no generations: 404 with a key, 401 without, 405 for POST", async () => {
    const auth = { authorization: `Bearer ${key}` };
    const none = await raw(router, "/api/v1/key/generations", { headers: auth });
    expect(none.res.status).to.equal(404);
    expect(none.json.error?.code).to.equal("not_found");
    expect((await raw(router, "/api/v1/key/generations")).res.status).to.equal(401);
    const post = await raw(router, "/api/v1/key/generations", { method: "POST", headers: auth });
    expect(post.res.status).to.equal(405);
    expect(post.res.headers.get("allow")).to.equal("GET, HEAD");
  });

  it("a malformed path (a bad percent escape) is a 404, not a 500", async () => {
    const r = await raw(router, "/v1/models/%", { headers: { authorization: `Bearer ${key}` } });
    expect(r.res.status).to.equal(404);
    expect(r.json.error?.code).to.equal("model_not_found");
    const r2 = await raw(router, "/v1/models/%E0%A4%A", { headers: { authorization: `Bearer ${key}` } });
    expect(r2.res.status).to.equal(404);
  });

  it("a body nested deeper than 128 levels: 400 invalid_json", async () => {
    const { res, json } = await raw(router, "/v1/chat/completions", {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: `{"model":"m","messages":${"[".repeat(300)}${"]".repeat(300)}}`,
    });
    expect(res.status).to.equal(400);
    expect(json.error?.code).to.equal("invalid_json");
    expect(json.error?.message).to.match(/deeper than 128/);
  });

  it("a refused request with a large body is answered and its connection closed, the body never read", async () => {
    const net = await import("node:net");
    const sock = net.connect(router.api.port, "127.0.0.1");
    await new Promise((r) => sock.once("connect", r));
    let answer = "";
    sock.on("data", (d: Buffer) => {
      answer += d.toString();
    });
    const ended = new Promise<void>((r) => sock.once("close", () => r()));
    // 3 GiB announced, a few bytes sent: no key, so 401, and the router hangs up instead of reading on.
    sock.write(
      'POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 3221225472\r\n\r\n{"mo',
    );
    await ended;
    expect(answer).to.match(/^HTTP\/1.1 401/);
    expect(answer.toLowerCase()).to.include("connection: close");
    expect((await raw(router, "/healthz")).res.status).to.equal(200);
  });

  it("keeps the router healthy after a client drops mid-upload", async () => {
    const net = await import("node:net");
    const sock = net.connect(router.api.port, "127.0.0.1");
    await new Promise((r) => sock.once("connect", r));
    sock.write(
      `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${key}\r\ncontent-length: 1000\r\n\r\n{"mo`,
    );
    sock.destroy();
    expect((await raw(router, "/healthz")).res.status).to.equal(200);
  });
});
