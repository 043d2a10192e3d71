import { expect } from "chai";
import type { ModelKind } from "../../common/request-kinds.js";
import { listModels, perTokenPrice } from "../../router/api/models.js";
import { ModelCatalogue } from "../../router/catalogue/catalogue.js";
import { checkEntry, defaultEntry } from "../../router/catalogue/entry.js";
import type { SessionView } from "../../router/tunnel/types.js";

function session(
  id: string,
  state: SessionView["state"],
  models: [string, number, number][],
  since = 1_700_000_000_000,
  kinds?: readonly ModelKind[],
) {
  return {
    sessionId: id,
    hotkey: `hk-${id}`,
    transport: "grpc",
    state,
    models: models.map(([mid, maxConcurrency, contextLength]) => ({
      id: mid,
      maxConcurrency,
      contextLength,
      inFlight: 0,
      ...(kinds === undefined ? {} : { kinds }),
    })),
    inFlight: 0,
    latencyMs: 0,
    connectedSinceMs: since,
    softwareVersion: "t",
  } satisfies SessionView;
}

const OPEN = ModelCatalogue.empty(true);
const FREE = { prompt: "0", completion: "0" };

describe("api models listing", () => {
  it("is the union over active sessions with miner counts, capacity and the smallest known context", () => {
    const list = listModels(
      [
        session(
          "a",
          "active",
          [
            ["llama", 4, 8192],
            ["qwen", 2, 0],
          ],
          1_700_000_100_000,
        ),
        session("b", "active", [["llama", 8, 4096]], 1_700_000_000_000),
        session("c", "ghost", [["secret", 1, 1]]),
        session("d", "banned", [["llama", 100, 100]]),
        session("e", "draining", [["qwen", 100, 100]]),
      ],
      OPEN,
    );
    expect(list).to.deep.equal([
      {
        id: "llama",
        object: "model",
        created: 1_700_000_000,
        owned_by: "tensorclaw",
        context_length: 4096,
        pricing: FREE,
        aliases: [],
        miners: 2,
        max_concurrency: 12,
        endpoints: ["/v1/chat/completions", "/v1/responses"],
      },
      {
        id: "qwen",
        object: "model",
        created: 1_700_000_100,
        owned_by: "tensorclaw",
        context_length: null,
        pricing: FREE,
        aliases: [],
        miners: 1,
        max_concurrency: 2,
        endpoints: ["/v1/chat/completions", "/v1/responses"],
      },
    ]);
  });

  it("lists the endpoints that reach a model: the union of the kinds its active miners offer", () => {
    const list = listModels(
      [
        session("a", "active", [["m", 1, 0]], 1_700_000_000_000, ["completion"]),
        session("b", "active", [["m", 1, 0]], 1_700_000_000_000, ["chat"]),
        session("c", "active", [["e", 1, 0]], 1_700_000_000_000, ["embedding"]),
        session("d", "ghost", [["e", 1, 0]], 1_700_000_000_000, ["chat"]),
      ],
      OPEN,
    );
    expect(list.map((m) => [m.id, m.endpoints])).to.deep.equal([
      ["e", ["/v1/embeddings"]],
      ["m", ["/v1/chat/completions", "/v1/responses", "/v1/completions"]],
    ]);
  });

  it("is empty without active sessions on an open router with an empty catalogue", () => {
    expect(listModels([session("g", "ghost", [["m", 1, 1]])], OPEN)).to.deep.equal([]);
  });

  it("lists every catalogue model with its context and per-token prices, live or not", () => {
    const catalogue = new ModelCatalogue(
      [
        checkEntry({
          ...defaultEntry("llama"),
          contextLength: 131_072,
          pricePromptPerM: 0.2,
          priceCompletionPerM: 0.6,
          aliases: ["l3"],
        }),
        defaultEntry("idle", 2),
      ],
      false,
    );
    const list = listModels([session("a", "active", [["llama", 4, 8192]], 1_700_000_000_000)], catalogue);
    expect(
      list.map((m) => [m.id, m.context_length, m.pricing, m.aliases, m.miners, m.created]),
    ).to.deep.equal([
      ["idle", null, FREE, [], 0, 0],
      ["llama", 131_072, { prompt: "0.0000002", completion: "0.0000006" }, ["l3"], 1, 1_700_000_000],
    ]);
  });

  it("writes prices per token as plain decimals", () => {
    expect([0, 0.2, 15, 1_000_000, 0.000001].map(perTokenPrice)).to.deep.equal([
      "0",
      "0.0000002",
      "0.000015",
      "1",
      "0.000000000001",
    ]);
  });
});
