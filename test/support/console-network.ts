/**
 * A small real network for the console's tests: the router program
 * in-process on an embedded ledger (its own data dir), a priced catalogue
 * model served by a scripted miner over gRPC, a second miner over WebSocket
 * offering a model whose id is markup (the router runs an open catalogue,
 * as the dev network does), and a metered API key with $1 of credit.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Hotkey } from "../../common/identity.js";
import { silentLogger } from "../../common/logger.js";
import { RequestErrorCode } from "../../gen/tensorclaw/v1/tunnel.js";
import { ApiKeys, FileApiKeyStore } from "../../router/api/keys.js";
import { EmbeddedBilling } from "../../router/billing/embedded.js";
import { MICROS_PER_USD } from "../../router/billing/money.js";
import { checkEntry } from "../../router/catalogue/entry.js";
import { catalogueFileIn } from "../../router/catalogue/open-store.js";
import { FileCatalogueStore } from "../../router/catalogue/store-file.js";
import { ROUTER_DEFAULTS, type RouterConfig } from "../../router/config.js";
import { type RunningRouter, routerPaths, startRouter } from "../../router/router.js";
import { waitForSessions } from "./hub-sessions.js";
import { throwawayHotkey } from "./keys.js";
import { RawTunnelClient } from "./raw-tunnel-client.js";
import { FakeMiner, type RequestPlan } from "./tunnel-fake-miner.js";

/** The catalogue model, with its prices (USD per million tokens). */
export const PRICED_MODEL = "priced-model";
export const PRICE_PROMPT = 5;
export const PRICE_COMPLETION = 20;
/**
 * A model id a hostile miner offers: markup that would run script if a page
 * parsed it (an image with an empty source fails at once and runs its
 * onerror). Without whitespace: an open catalogue does not route ids with
 * whitespace, such as `<img src=x onerror=...>`, at all.
 */
export const MARKUP_MODEL = "<img/src/onerror=window.__consoleXss=1>";

/** An error text the markup miner sends back: markup again, for the page to show as text. */
export const MARKUP_ERROR = "bad prompt <img/src/onerror=window.__consoleXss=2>";

/** What the priced miner answers (one chunk per scheduling turn, so it streams). */
export const ANSWER_CHUNKS = ["Hello", " from", " the", " console", " miner."];

export interface ConsoleNetwork {
  readonly router: RunningRouter;
  readonly origin: string;
  readonly apiKey: string;
  readonly priced: { readonly hotkey: Hotkey; readonly miner: FakeMiner };
  readonly markup: { readonly hotkey: Hotkey; readonly miner: FakeMiner };
  close(): Promise<void>;
}

/** Settings of {@link startConsoleNetwork}. */
export interface ConsoleNetworkOptions {
  /** Router settings over the defaults (ports 0, the data dir and an open catalogue are set). */
  readonly router?: Partial<RouterConfig>;
  /** The priced miner's plan per request (default: ANSWER_CHUNKS, honest usage). */
  readonly plan?: (prompt: string) => RequestPlan;
}

function lastUserText(messages: readonly { role: string; content?: unknown }[]): string {
  const m = [...messages].reverse().find((x) => x.role === "user");
  return typeof m?.content === "string" ? m.content : JSON.stringify(m?.content ?? "");
}

export async function startConsoleNetwork(opts: ConsoleNetworkOptions = {}): Promise<ConsoleNetwork> {
  const dir = await mkdtemp(join(tmpdir(), "tc-console-"));
  const tunnels: RawTunnelClient[] = [];
  let router: RunningRouter | undefined;
  try {
    const paths = routerPaths(dir);
    const now = Date.now();
    await new FileCatalogueStore(catalogueFileIn(dir)).set(
      checkEntry({
        id: PRICED_MODEL,
        tier: 1,
        tokenizer: "o200k_base",
        contextLength: 8192,
        pricePromptPerM: PRICE_PROMPT,
        priceCompletionPerM: PRICE_COMPLETION,
        aliases: [],
      }),
      now,
    );
    const keys = new ApiKeys(new FileApiKeyStore(paths.keys));
    const created = await keys.create("console", { requestsPerMinute: 0, tokensPerMinute: 0 }, now);
    await EmbeddedBilling.configureOffline(
      paths.billing,
      created.record.id,
      { metered: true, budgetDailyMicros: null },
      now,
    );
    await EmbeddedBilling.creditOffline(paths.billing, {
      id: "test:console",
      keyId: created.record.id,
      amountMicros: MICROS_PER_USD,
      note: "test",
      source: "operator",
      atMs: now,
    });
    router = await startRouter(
      { ...ROUTER_DEFAULTS, httpPort: 0, grpcPort: 0, dataDir: dir, openCatalogue: true, ...opts.router },
      silentLogger(),
    );
    const started = router;
    const endpoints = {
      grpc: `127.0.0.1:${started.grpcPort}`,
      ws: `ws://127.0.0.1:${started.httpPort}/v1/tunnel`,
    };
    const connect = async (transport: "grpc" | "ws", model: string, plan: (p: string) => RequestPlan) => {
      const hotkey = await throwawayHotkey();
      const tunnel = await RawTunnelClient.open(transport, endpoints);
      tunnels.push(tunnel);
      const verdict = await tunnel.handshake(hotkey, {
        models: [{ id: model, maxConcurrency: 4, contextLength: 4096, kinds: [] }],
      });
      if (verdict.accept === undefined) throw new Error(`miner refused: ${verdict.reject?.message}`);
      const miner = new FakeMiner(tunnel, { plan: (req) => plan(lastUserText(req.chat?.messages ?? [])) });
      await waitForSessions(started.hub, (s) => s.some((x) => x.hotkey === hotkey.address), "the miner");
      return { hotkey, miner };
    };
    const honest = (): RequestPlan => ({ chunks: ANSWER_CHUNKS, end: { usage: [12, ANSWER_CHUNKS.length] } });
    const priced = await connect("grpc", PRICED_MODEL, opts.plan ?? honest);
    // The markup miner also stalls on request, for the Stop button, and fails with markup for an error's text.
    const markup = await connect("ws", MARKUP_MODEL, (p) =>
      p.includes("hang")
        ? { chunks: ["partial"], end: "hang" }
        : p.includes("fail")
          ? {
              chunks: [],
              end: {
                error: RequestErrorCode.REQUEST_ERROR_CODE_INVALID_REQUEST,
                message: MARKUP_ERROR,
                httpStatus: 400,
              },
            }
          : honest(),
    );
    return {
      router: started,
      origin: `http://127.0.0.1:${started.httpPort}`,
      apiKey: created.key,
      priced,
      markup,
      close: async () => {
        for (const t of tunnels) t.destroy();
        await started.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    for (const t of tunnels) t.destroy();
    await router?.close();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
