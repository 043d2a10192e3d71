import { expect } from "chai";
import { TensorClawError } from "../../common/errors.js";
import { offersFor } from "../../miner/model-catalog.js";
import { planRouters } from "../../miner/tunnel/endpoints.js";

describe("miner router endpoints and model offers", () => {
  it("auto with only a gRPC URL falls back to WS on the same host's default HTTP port", () => {
    const [plan, ...rest] = planRouters(["grpc://router.example:50051"], "auto");
    expect(rest).to.deep.equal([]);
    expect(plan?.endpoints).to.deep.equal([
      {
        transport: "grpc",
        target: { host: "router.example", port: 50051, tls: false },
        label: "grpc://router.example:50051",
      },
      {
        transport: "ws",
        url: "ws://router.example:8080/v1/tunnel",
        label: "ws://router.example:8080/v1/tunnel",
      },
    ]);
    const [secure] = planRouters(["grpcs://r.example:443"], "auto");
    expect(secure?.endpoints.map((e) => (e.transport === "ws" ? e.url : e.target))).to.deep.equal([
      { host: "r.example", port: 443, tls: true },
      "wss://r.example:8080/v1/tunnel",
    ]);
  });

  it("pairs a gRPC and a WS URL of the same host into one router with an explicit fallback", () => {
    const plans = planRouters(
      ["grpc://127.0.0.1:1111", "ws://127.0.0.1:2222/v1/tunnel", "grpc://other:3"],
      "auto",
    );
    expect(plans.map((p) => p.endpoints.map((e) => e.label))).to.deep.equal([
      ["grpc://127.0.0.1:1111", "ws://127.0.0.1:2222/v1/tunnel"],
      ["grpc://other:3", "ws://other:8080/v1/tunnel"],
    ]);
  });

  it("keeps two routers on one host apart and honours --transport", () => {
    const plans = planRouters(["grpc://h:1", "grpc://h:2"], "grpc");
    expect(plans.map((p) => p.endpoints.map((e) => e.label))).to.deep.equal([["grpc://h:1"], ["grpc://h:2"]]);
    const ws = planRouters(["grpc://h:1"], "ws");
    expect(ws[0]?.endpoints.map((e) => e.label)).to.deep.equal(["ws://h:8080/v1/tunnel"]);
    const bare = planRouters(["wss://h"], "auto");
    expect(bare[0]?.endpoints.map((e) => e.label)).to.deep.equal(["wss://h/v1/tunnel"]);
  });

  it("refuses a transport the URLs cannot serve, naming --router", () => {
    let caught: unknown;
    try {
      planRouters(["ws://h:8080/v1/tunnel"], "grpc");
    } catch (e) {
      caught = e;
    }
    expect(caught).to.be.instanceOf(TensorClawError);
    expect((caught as TensorClawError).message).to.match(/--router: --transport grpc needs a grpc/);
  });

  it("offers nothing while the backend is down, then the configured or discovered models", () => {
    const policy = { configured: [], maxConcurrency: 4, contextLength: 0 };
    expect(offersFor(undefined, policy)).to.deep.equal([]);
    const discovered = [
      { id: "a", contextLength: 4096 },
      { id: "b", contextLength: 0 },
    ];
    expect(offersFor(discovered, policy)).to.deep.equal([
      { id: "a", maxConcurrency: 4, contextLength: 4096, kinds: [] },
      { id: "b", maxConcurrency: 4, contextLength: 0, kinds: [] },
    ]);
    // --models wins over discovery (aliases the backend may not list) and --context-length over the backend's.
    expect(
      offersFor(discovered, { configured: ["x", "a", "x"], maxConcurrency: 2, contextLength: 0 }),
    ).to.deep.equal([
      { id: "x", maxConcurrency: 2, contextLength: 0, kinds: [] },
      { id: "a", maxConcurrency: 2, contextLength: 4096, kinds: [] },
    ]);
    expect(offersFor(discovered, { configured: ["a"], maxConcurrency: 2, contextLength: 999 })).to.deep.equal(
      [{ id: "a", maxConcurrency: 2, contextLength: 999, kinds: [] }],
    );
  });
});
