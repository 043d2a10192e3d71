import { expect } from "chai";
import { DEFAULT_INITIAL_LIMIT } from "../../common/aimd-limit.js";
import { TensorClawError } from "../../common/errors.js";
import type { ResponseChunk } from "../../gen/tensorclaw/v1/tunnel.js";
import { attemptOutcome } from "../../router/api/attempt-outcome.js";
import { RoutingBook } from "../../router/routing/book.js";
import { carriesToken } from "../../router/routing/first-token.js";
import { OutcomeWindow, TtftStats } from "../../router/routing/outcome-window.js";
import type { SessionView } from "../../router/tunnel/types.js";
import { seededRandom } from "../support/api-random.js";

const MODEL = "m";

function session(hotkey: string, id = hotkey, maxConcurrency = 8, inFlight = 0): SessionView {
  return {
    sessionId: id,
    hotkey,
    transport: "grpc",
    state: "active",
    models: [{ id: MODEL, maxConcurrency, contextLength: 0, inFlight }],
    inFlight,
    latencyMs: 1,
    connectedSinceMs: 0,
    softwareVersion: "t",
  };
}

function book() {
  const clock = { now: 0 };
  const b = new RoutingBook({ now: () => clock.now, random: seededRandom(1) });
  const stats = (hotkey: string) => b.view().find((v) => v.hotkey === hotkey && v.model === MODEL);
  return { clock, b, stats };
}

const chunk = (over: Partial<ResponseChunk>): ResponseChunk => ({
  requestId: 1,
  contentDelta: "",
  toolCalls: [],
  finishReason: 0,
  choiceIndex: 0,
  systemFingerprint: "",
  embeddings: [],
  reasoningDelta: "",
  logprobs: [],
  ...over,
});

describe("routing: first token", () => {
  it("counts content, reasoning and tool-call fragments, never an empty chunk", () => {
    expect(carriesToken(chunk({}))).to.equal(false);
    expect(carriesToken(chunk({ finishReason: 1 }))).to.equal(false);
    expect(
      carriesToken(
        chunk({ toolCalls: [{ index: 0, id: "c", type: "function", functionName: "", argumentsDelta: "" }] }),
      ),
    ).to.equal(false);
    expect(carriesToken(chunk({ contentDelta: "Hi" }))).to.equal(true);
    expect(
      carriesToken(chunk({ choiceIndex: 0, systemFingerprint: "", embeddings: [], reasoningDelta: "hmm" })),
    ).to.equal(true);
    expect(
      carriesToken(
        chunk({ toolCalls: [{ index: 0, id: "", type: "", functionName: "f", argumentsDelta: "" }] }),
      ),
    ).to.equal(true);
    expect(
      carriesToken(
        chunk({ toolCalls: [{ index: 0, id: "", type: "", functionName: "", argumentsDelta: "{" }] }),
      ),
    ).to.equal(true);
  });
});

describe("routing: book", () => {
  it("measures time to first token from dispatch to the first token, per hotkey and model", () => {
    const { clock, b, stats } = book();
    clock.now = 1_000;
    const t = b.started("hk", MODEL);
    clock.now = 1_250;
    b.firstToken(t);
    clock.now = 1_900;
    b.firstToken(t); // only the first one counts
    b.ended(t, "served");
    expect(stats("hk")?.ttftEwmaMs).to.equal(250);
    expect(stats("hk")?.ttftP50Ms).to.equal(250);
    expect(b.routes(MODEL).get("hk")?.ttftMs).to.equal(250);
    expect(b.routes("other").size).to.equal(0);
  });

  it("a request that never answered pushes the estimate up; one that failed fast does not pull it down", () => {
    const { clock, b, stats } = book();
    const ok = b.started("hk", MODEL);
    clock.now = 200;
    b.firstToken(ok);
    b.ended(ok, "served");
    const fast = b.started("hk", MODEL);
    clock.now = 205;
    b.ended(fast, "failed_before_output");
    expect(stats("hk")?.ttftEwmaMs).to.equal(200);
    const hung = b.started("hk", MODEL);
    clock.now = 30_205;
    b.ended(hung, "deadline");
    expect(stats("hk")?.ttftEwmaMs).to.be.greaterThan(5_000);
  });

  it("counts every outcome once per ticket, and releases the in-flight slot once", () => {
    const { b, stats } = book();
    const outcomes = [
      "served",
      "failed_before_output",
      "failed_after_output",
      "deadline",
      "cancelled",
      "refused",
    ] as const;
    const tickets = outcomes.map(() => b.started("hk", MODEL));
    expect(stats("hk")?.inFlight).to.equal(outcomes.length);
    outcomes.forEach((o, i) => {
      b.ended(tickets[i] as ReturnType<typeof b.started>, o);
      b.ended(tickets[i] as ReturnType<typeof b.started>, "served");
    });
    expect(stats("hk")?.inFlight).to.equal(0);
    expect(stats("hk")?.outcomes).to.deep.equal({
      served: 1,
      failedBeforeOutput: 1,
      failedAfterOutput: 1,
      deadline: 1,
      cancelled: 1,
      refused: 1,
    });
  });

  it("takes a failing hotkey out of choose() and gives it one trial after the back-off", () => {
    const { clock, b } = book();
    const sessions = [session("bad"), session("good")];
    for (let i = 0; i < 3; i++) b.ended(b.started("bad", MODEL), "failed_before_output");
    for (let i = 0; i < 200; i++) expect(b.choose(sessions, MODEL)?.hotkey).to.equal("good");
    expect(b.choose([session("bad")], MODEL)).to.equal(undefined);
    clock.now = 60_000;
    expect(b.choose([session("bad")], MODEL)?.hotkey).to.equal("bad");
    const trial = b.started("bad", MODEL);
    // While the trial is out nothing else goes there.
    expect(b.choose([session("bad")], MODEL)).to.equal(undefined);
    b.ended(trial, "served");
    expect(b.choose([session("bad")], MODEL)?.hotkey).to.equal("bad");
  });

  it("users going away, refused requests and long answers cut by the deadline do not open the breaker", () => {
    const { clock, b } = book();
    for (let i = 0; i < 10; i++) b.ended(b.started("hk", MODEL), "cancelled");
    for (let i = 0; i < 10; i++) b.ended(b.started("hk", MODEL), "refused");
    for (let i = 0; i < 10; i++) {
      const t = b.started("hk", MODEL);
      clock.now += 100;
      b.firstToken(t);
      clock.now += 120_000;
      b.ended(t, "deadline");
    }
    expect(b.view()[0]?.breaker).to.equal("closed");
    // A deadline with no token at all is a failure.
    for (let i = 0; i < 3; i++) b.ended(b.started("hk", MODEL), "deadline");
    expect(b.view()[0]?.breaker).to.equal("open");
  });

  it("excludes by hotkey: a retry never lands on another tunnel of a hotkey already tried", () => {
    const { b } = book();
    const sessions = [session("a", "a1"), session("a", "a2"), session("a", "a3"), session("b")];
    for (let i = 0; i < 100; i++) expect(b.choose(sessions, MODEL, new Set(["a"]))?.hotkey).to.equal("b");
  });

  it("new hotkeys start at the initial limit; the learned limit grows as the hotkey is used at it", () => {
    const { clock, b, stats } = book();
    expect(b.routes(MODEL).size).to.equal(0);
    for (let round = 0; round < 40; round++) {
      const ts = Array.from({ length: Math.floor(stats("hk")?.limit ?? DEFAULT_INITIAL_LIMIT) }, () =>
        b.started("hk", MODEL),
      );
      clock.now += 200;
      for (const t of ts) b.firstToken(t);
      for (const t of ts) b.ended(t, "served");
    }
    expect(stats("hk")?.usableConcurrency).to.be.greaterThan(DEFAULT_INITIAL_LIMIT + 3);
  });

  it("says whether waiting for a slot can help: a busy miner yes; no miner, ghosts, open breakers, tried or barred hotkeys no", () => {
    const { b } = book();
    const full = session("busy", "busy", 2, 2);
    // Busy: choose finds nobody, but the hotkey serves the model once a slot frees.
    expect(b.choose([full], MODEL)).to.equal(undefined);
    expect(b.wouldServe([full], MODEL)).to.equal(true);
    expect(b.wouldServe([], MODEL)).to.equal(false);
    expect(b.wouldServe([full], "other-model")).to.equal(false);
    expect(b.wouldServe([{ ...full, state: "ghost" }], MODEL)).to.equal(false);
    expect(b.wouldServe([{ ...full, state: "draining" }], MODEL)).to.equal(false);
    expect(b.wouldServe([full], MODEL, new Set(["busy"]))).to.equal(false);
    // A model offered for chat only: an embeddings request has nothing to wait for.
    expect(b.wouldServe([full], MODEL, new Set(), "embedding")).to.equal(false);
    for (let i = 0; i < 3; i++) b.ended(b.started("busy", MODEL), "failed_before_output");
    expect(b.wouldServe([full], MODEL)).to.equal(false);
    const barred = new RoutingBook({
      now: () => 0,
      random: seededRandom(1),
      barred: () => new Set(["busy"]),
    });
    expect(barred.wouldServe([full], MODEL)).to.equal(false);
  });
});

describe("routing: outcome counters", () => {
  it("roll over: old buckets drop out of the horizon and of shorter spans", () => {
    const w = new OutcomeWindow(60_000, 3);
    w.add("served", 0);
    w.add("served", 59_999);
    w.add("failed_before_output", 60_000);
    w.add("deadline", 150_000);
    expect(w.counts(150_000).served).to.equal(2);
    expect(w.counts(150_000, 60_000)).to.include({ served: 0, failedBeforeOutput: 0, deadline: 1 });
    expect(w.counts(150_000, 120_000)).to.include({ served: 0, failedBeforeOutput: 1, deadline: 1 });
    // Three minutes on, the first bucket is gone; its slot is reused without leftovers.
    w.add("served", 180_000);
    expect(w.counts(180_000)).to.include({ served: 1, failedBeforeOutput: 1, deadline: 1 });
    expect(w.counts(10 * 60_000)).to.include({ served: 0, failedBeforeOutput: 0, deadline: 0 });
  });

  it("TTFT median ignores an outlier the average does not", () => {
    const s = new TtftStats(0.2, 5);
    for (const ms of [100, 110, 90, 105, 10_000]) s.observe(ms);
    expect(s.p50Ms).to.equal(105);
    expect(s.ewmaMs).to.be.greaterThan(1_000);
  });
});

describe("routing: attempt outcome", () => {
  const err = (code: ConstructorParameters<typeof TensorClawError>[0]) => new TensorClawError(code);

  it("maps how an attempt ended onto the book's outcomes", () => {
    expect(attemptOutcome({ kind: "done" }, false)).to.equal("served");
    expect(attemptOutcome({ kind: "done" }, true)).to.equal("served");
    expect(attemptOutcome({ kind: "retry", error: err("upstream_error") }, false)).to.equal(
      "failed_before_output",
    );
    expect(attemptOutcome({ kind: "retry", error: err("no_capacity") }, false)).to.equal(
      "failed_before_output",
    );
    expect(attemptOutcome({ kind: "failed", error: err("upstream_error") }, false)).to.equal(
      "failed_after_output",
    );
    expect(attemptOutcome({ kind: "retry", error: err("upstream_timeout") }, false)).to.equal("deadline");
    expect(attemptOutcome({ kind: "failed", error: err("upstream_timeout") }, false)).to.equal("deadline");
    expect(attemptOutcome({ kind: "failed", error: err("cancelled") }, false)).to.equal("cancelled");
    expect(attemptOutcome({ kind: "failed", error: err("upstream_error") }, true)).to.equal("cancelled");
    expect(attemptOutcome({ kind: "failed", error: err("invalid_request") }, false)).to.equal("refused");
    expect(attemptOutcome(undefined, false)).to.equal("cancelled");
  });
});
