import { expect } from "chai";
import type { ModelKind } from "../../common/request-kinds.js";
import { MinerState } from "../../gen/tensorclaw/v1/directory.js";
import { RequestKind } from "../../gen/tensorclaw/v1/tunnel.js";
import { pick } from "../../router/routing/picker.js";
import { toMinerSession } from "../../router/services/directory.js";
import { probeTargets } from "../../router/services/probe.js";
import type { SessionView } from "../../router/tunnel/types.js";
import { offeredKinds, probeableModels } from "../../validator/prober.js";

function view(
  sessionId: string,
  hotkey: string,
  models: [string, readonly ModelKind[] | undefined][],
): SessionView {
  return {
    sessionId,
    hotkey,
    transport: "grpc",
    state: "active",
    models: models.map(([id, kinds]) => ({
      id,
      maxConcurrency: 4,
      contextLength: 0,
      inFlight: 0,
      ...(kinds === undefined ? {} : { kinds }),
    })),
    inFlight: 0,
    latencyMs: 0,
    connectedSinceMs: 0,
    softwareVersion: "",
  };
}

/** hk-chat serves m for chat (no kinds: chat only); hk-embed serves m for embeddings only. */
const SESSIONS = [view("s1", "hk-chat", [["m", undefined]]), view("s2", "hk-embed", [["m", ["embedding"]]])];

describe("request kinds in routing, probes and the directory", () => {
  it("the picker chooses only tunnels whose model offers the request's kind", () => {
    const random = () => 0.5;
    for (let i = 0; i < 20; i++) {
      expect(pick(SESSIONS, new Map(), "m", random)?.hotkey).to.equal("hk-chat");
      expect(pick(SESSIONS, new Map(), "m", random, new Set(), undefined, "embedding")?.hotkey).to.equal(
        "hk-embed",
      );
    }
    expect(pick(SESSIONS, new Map(), "m", random, new Set(), undefined, "completion")).to.equal(undefined);
  });

  it("probes reach every model, as the kind it serves; validators audit each as the kind it is probed as", () => {
    const mixed = view("s3", "hk", [
      ["chat", ["chat", "embedding"]],
      ["embed", ["embedding"]],
    ]);
    expect(probeTargets([mixed], "hk", "").map((t) => [t.model, t.kind])).to.deep.equal([
      ["chat", "chat"],
      ["embed", "embedding"],
    ]);
    const nothingKnown = view("s4", "hk", [["future", []]]);
    expect(probeTargets([nothingKnown], "hk", "")).to.deep.equal([]);
    const listed = [toMinerSession(mixed), toMinerSession(SESSIONS[0] as SessionView)];
    expect(listed[0]?.models.map((m) => m.kinds)).to.deep.equal([
      [RequestKind.REQUEST_KIND_CHAT, RequestKind.REQUEST_KIND_EMBEDDING],
      [RequestKind.REQUEST_KIND_EMBEDDING],
    ]);
    // Chat only goes on the wire as the empty list older validators understand.
    expect(listed[1]?.models[0]?.kinds).to.deep.equal([]);
    expect(listed[0]?.state).to.equal(MinerState.MINER_STATE_ACTIVE);
    expect(probeableModels(listed, "hk")).to.deep.equal(["chat", "embed"]);
    // Validators probe and audit a model as every kind it is offered as.
    expect([...offeredKinds(listed, "hk")]).to.deep.equal([
      ["chat", ["chat", "embedding"]],
      ["embed", ["embedding"]],
    ]);
    expect([...offeredKinds(listed, "hk-chat")]).to.deep.equal([["m", ["chat"]]]);
    // Kinds of the same model on two tunnels add up; a kind this build does not know is left out.
    const other = view("s5", "hk", [["embed", ["completion"]]]);
    const both = [...listed, toMinerSession(other)];
    const proto = both[2]?.models[0];
    if (proto !== undefined) proto.kinds = [...proto.kinds, 42 as RequestKind];
    expect(offeredKinds(both, "hk").get("embed")).to.deep.equal(["completion", "embedding"]);
  });
});
