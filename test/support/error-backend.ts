/**
 * A tiny OpenAI-style backend whose chat endpoint answers whatever error the
 * test sets (status, body, content type), for the "errors that say why"
 * tests. `/v1/models` lists its models; every chat request's headers are
 * kept, so a test can read the `x-request-id` the miner sent.
 */
import { once } from "node:events";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** The answer to every chat request. */
export interface ErrorAnswer {
  readonly status: number;
  readonly body: string;
  readonly contentType?: string;
}

export class ErrorBackend {
  /** Headers of each chat request, in arrival order. */
  readonly chatHeaders: IncomingHttpHeaders[] = [];
  answer: ErrorAnswer = { status: 500, body: '{"error":{"message":"unset"}}' };
  readonly #server: Server;
  readonly url: string;

  private constructor(server: Server, url: string) {
    this.#server = server;
    this.url = url;
  }

  static async start(models: readonly string[]): Promise<ErrorBackend> {
    const server = createServer();
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const b = new ErrorBackend(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`);
    server.on("request", (req, res) => {
      req.resume();
      req.on("end", () => {
        if (req.url === "/v1/models") {
          res.writeHead(200, { "content-type": "application/json" });
          res.end(JSON.stringify({ object: "list", data: models.map((id) => ({ id, object: "model" })) }));
          return;
        }
        b.chatHeaders.push(req.headers);
        const a = b.answer;
        res.writeHead(a.status, { "content-type": a.contentType ?? "application/json" });
        res.end(a.body);
      });
    });
    return b;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
