import { once } from "node:events";
import { createServer, get, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { expect } from "chai";
import { SseWriter } from "../../router/api/sse.js";

/** A real HTTP server whose one response is written by `write`; resolves with the body a client read. */
async function served(write: (res: ServerResponse) => Promise<void>): Promise<string> {
  let done: Promise<void> = Promise.resolve();
  const server: Server = createServer((_req, res) => {
    done = write(res);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  try {
    const { port } = server.address() as AddressInfo;
    const res = await new Promise<import("node:http").IncomingMessage>((resolve, reject) =>
      get(`http://127.0.0.1:${port}/`, resolve).on("error", reject),
    );
    let body = "";
    res.setEncoding("utf8");
    for await (const piece of res) body += piece;
    await done;
    return body;
  } finally {
    server.close();
  }
}

describe("SSE writer", () => {
  it("sends a turn's first event at once and holds the rest of the turn for one socket write", async () => {
    const seen: { afterFirst: number; afterThird: number; nextTurn: number } = {
      afterFirst: -1,
      afterThird: -1,
      nextTurn: -1,
    };
    const body = await served(async (res) => {
      const w = new SseWriter(res, "req-1", 0);
      const socket = res.socket;
      if (socket === null) throw new Error("no socket");
      void w.data('{"n":1}');
      // Already handed to the kernel: nothing of it waits in the socket's buffer.
      seen.afterFirst = socket.writableLength;
      void w.data('{"n":2}');
      void w.data('{"n":3}');
      // The same turn's later events wait, together, for the turn to end.
      seen.afterThird = socket.writableLength;
      await new Promise((r) => setImmediate(r));
      seen.nextTurn = socket.writableLength;
      void w.data('{"n":4}');
      w.done();
    });
    expect(seen.afterFirst).to.equal(0);
    expect(seen.afterThird).to.be.greaterThan(0);
    expect(seen.nextTurn).to.equal(0);
    expect(body).to.equal(
      'data: {"n":1}\n\ndata: {"n":2}\n\ndata: {"n":3}\n\ndata: {"n":4}\n\ndata: [DONE]\n\n',
    );
  });
});
