import { once } from "node:events";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { expect } from "chai";
import { ChatRequest } from "../../gen/tensorclaw/v1/chat.js";
import type { BackendEvent } from "../../miner/backend/backend.js";
import { OpenAIHttpBackend } from "../../miner/backend/openai.js";
import { pollUntil } from "../support/poll.js";

/** Events of 10 KB each: 2,000 of them are 20 MB, far more than loopback socket buffers hold. */
const EVENTS = 2_000;
const PIECE = "x".repeat(10_000);

/** Resolves on the response's next drain or its close, leaving no listener behind. */
function drainOrClose(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.once("drain", done);
    res.once("close", done);
  });
}

describe("OpenAI HTTP backend adapter: flow control and connection reuse", function () {
  this.timeout(20_000);
  let server: Server;
  let written = 0;
  let connections = 0;
  let backend: OpenAIHttpBackend;

  before(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on("end", async () => {
        res.writeHead(200, { "content-type": "text/event-stream" });
        for (let i = 0; i < EVENTS; i++) {
          const finish = i === EVENTS - 1 ? '"stop"' : "null";
          const ok = res.write(
            `data: {"choices":[{"index":0,"delta":{"content":"${PIECE}"},"finish_reason":${finish}}]}\n\n`,
          );
          written++;
          if (!ok) await drainOrClose(res);
          if (res.destroyed) return;
        }
        res.end("data: [DONE]\n\n");
      });
    });
    server.on("connection", () => connections++);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    backend = new OpenAIHttpBackend({
      baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    });
  });
  after(async () => {
    backend.close();
    server.close();
  });

  const chat = ChatRequest.fromPartial({ messages: [{ role: "user", content: "hi" }], stream: true });

  it("stops reading the backend while the consumer does not pull, and reads it all once it does", async () => {
    written = 0;
    const events = backend.chat("m", chat, new AbortController().signal)[Symbol.asyncIterator]();
    expect((await events.next()).done).to.equal(false);
    // The server's writes stall once the socket buffers are full (a client that kept reading
    // would let it write everything). No event marks "nothing more was read", so this polls
    // until 100 ms pass without a write.
    let seen = -1;
    await pollUntil(
      () => {
        const stalled = written === seen;
        seen = written;
        return stalled;
      },
      { what: "the server's writes to stall", timeoutMs: 10_000, intervalMs: 100 },
    );
    // Paused: what is written is what the socket buffers hold, not the whole answer.
    const whilePaused = written;
    expect(whilePaused).to.be.below(EVENTS / 2);
    let n = 1;
    let last: BackendEvent | undefined;
    for (let e = await events.next(); e.done !== true; e = await events.next()) {
      n++;
      last = e.value;
    }
    expect(n).to.equal(EVENTS);
    expect(written).to.equal(EVENTS);
    expect(last?.type === "delta" && last.content).to.equal(PIECE);
  });

  it("reuses the connection of a stream read to [DONE], and drops one left early", async () => {
    const before = connections;
    for (let i = 0; i < 3; i++) {
      for await (const _ of backend.chat("m", chat, new AbortController().signal)) {
        // read to the end
      }
    }
    expect(connections - before).to.be.at.most(1);
    // Leaving a stream early cuts its connection: the next request needs a new one.
    for await (const _ of backend.chat("m", chat, new AbortController().signal)) break;
    const afterEarly = connections;
    for await (const _ of backend.chat("m", chat, new AbortController().signal)) {
      // read to the end
    }
    expect(connections).to.equal(afterEarly + 1);
  });
});
