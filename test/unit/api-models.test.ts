import { expect } from "chai";
import { listModels } from "../../router/api/models.js";
import type { SessionView } from "../../router/tunnel/types.js";

function session(
  id: string,
  state: SessionView["state"],
  models: [string, number, number][],
  since = 1_700_000_000_000,
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
    })),
    inFlight: 0,
    latencyMs: 0,
    connectedSinceMs: since,
    softwareVersion: "t",
  } satisfies SessionView;
}

describe("api models listing", () => {
  it("is the union over active sessions with miner counts, capacity and the smallest known context", () => {
    const list = listModels([
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
    ]);
    expect(list).to.deep.equal([
      {
        id: "llama",
        object: "model",
        created: 1_700_000_000,
        owned_by: "tensorclaw",
        context_length: 4096,
        miners: 2,
        max_concurrency: 12,
      },
      {
        id: "qwen",
        object: "model",
        created: 1_700_000_100,
        owned_by: "tensorclaw",
        context_length: null,
        miners: 1,
        max_concurrency: 2,
      },
    ]);
  });

  it("is empty without active sessions", () => {
    expect(listModels([session("g", "ghost", [["m", 1, 1]])])).to.deep.equal([]);
  });
});
