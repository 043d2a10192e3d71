import { expect } from "chai";
import { Registry } from "prom-client";
import { silentLogger } from "../../common/logger.js";
import { CapacityQueue, type SlotRequest, type WaitEnd } from "../../router/api/capacity-queue.js";
import { ApiMetrics } from "../../router/metrics.js";
import { QueuedProbe } from "../../router/services/probe-queue.js";

/** A capacity queue on a hand-driven change signal, with `slots` free slots its requests take. */
function harness(opts: { maxQueue?: number; queueTimeoutMs?: number } = {}) {
  const listeners = new Set<() => void>();
  const registry = new Registry();
  const metrics = new ApiMetrics(registry, { sessions: () => [] });
  const state = { slots: 0, asked: [] as string[], probeTunnelFree: false };
  const changed = () => {
    for (const l of listeners) l();
  };
  const queue = new CapacityQueue(
    {
      onChange: (l) => {
        listeners.add(l);
        return () => listeners.delete(l);
      },
      clock: Date.now,
      metrics,
      logger: silentLogger(),
    },
    { maxQueue: opts.maxQueue ?? 10, queueTimeoutMs: opts.queueTimeoutMs ?? 60_000 },
  );
  /** A request of `account` that takes a slot when one is free (and `suits` it). */
  const request = (account: string, name: string, suits = () => true, picky = false): SlotRequest => ({
    account,
    picky,
    take: () => {
      state.asked.push(name);
      if (state.slots === 0 || !suits()) return false;
      state.slots--;
      // Taking a slot is itself a change the hub reports (synchronously, from dispatch).
      changed();
      return true;
    },
  });
  const metric = async (name: string, labels: Record<string, string>) => {
    const m = await registry.getSingleMetric(name)?.get();
    return m?.values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ?? 0;
  };
  return { queue, state, changed, request, metric };
}

/** Collects how waits ended, in order. */
function ends() {
  const out: string[] = [];
  const track = (name: string, p: Promise<WaitEnd>) => p.then((e) => void out.push(`${name}:${e}`));
  return { out, track };
}

const FAR = Date.now() + 3_600_000;
/** Lets queued microtasks (the queue's drain) run. */
const settle = () => new Promise<void>((r) => setImmediate(r));

describe("CapacityQueue (wake-ups, bound, timeout, leaving)", () => {
  it("hands a freed slot to the waiter whose turn it is, when the hub reports a change, not before", async () => {
    const h = harness();
    const e = ends();
    const a = e.track("a", h.queue.wait("m", "chat", h.request("k1", "a"), FAR));
    const b = e.track("b", h.queue.wait("m", "chat", h.request("k1", "b"), FAR));
    await settle();
    expect(e.out).to.deep.equal([]);
    expect(h.queue.ahead("m", "chat")).to.equal(true);
    expect(h.queue.ahead("m", "completion")).to.equal(false);
    expect(await h.metric("tensorclaw_api_queue_depth", { model: "m" })).to.equal(2);
    h.state.slots = 1;
    h.changed();
    await settle();
    expect(e.out).to.deep.equal(["a:served"]);
    h.state.slots = 1;
    h.changed();
    await Promise.all([a, b]);
    expect(e.out).to.deep.equal(["a:served", "b:served"]);
    expect(await h.metric("tensorclaw_api_queue_depth", { model: "m" })).to.equal(0);
    expect(h.queue.ahead("m", "chat")).to.equal(false);
  });

  it("runs one drain per burst of changes: its own dispatches do not start another, and a stuck head is asked once", async () => {
    const h = harness();
    void h.queue.wait("m", "chat", h.request("k1", "a"), FAR);
    void h.queue.wait("m", "chat", h.request("k2", "b"), FAR);
    await settle();
    h.state.asked.length = 0;
    for (let i = 0; i < 5; i++) h.changed();
    await settle();
    // Nothing free: the head was asked once, and the waiter behind it (not picky) not at all.
    expect(h.state.asked).to.deep.equal(["a"]);
  });

  it("answers 'full' at once past maxQueue, counting the refusal", async () => {
    const h = harness({ maxQueue: 1 });
    void h.queue.wait("m", "chat", h.request("k1", "a"), FAR);
    expect(await h.queue.wait("m", "chat", h.request("k2", "b"), FAR)).to.equal("full");
    expect(await h.metric("tensorclaw_api_queue_rejected_total", { model: "m", reason: "full" })).to.equal(1);
    expect(await h.metric("tensorclaw_api_queue_depth", { model: "m" })).to.equal(1);
  });

  it("ends a wait with 'timeout' at queueTimeoutMs, or at the request's own deadline when sooner", async () => {
    const h = harness({ queueTimeoutMs: 5 });
    expect(await h.queue.wait("m", "chat", h.request("k1", "a"), FAR)).to.equal("timeout");
    const long = harness({ queueTimeoutMs: 3_600_000 });
    expect(await long.queue.wait("m", "chat", long.request("k1", "a"), Date.now() + 5)).to.equal("timeout");
    expect(await h.metric("tensorclaw_api_queue_rejected_total", { model: "m", reason: "timeout" })).to.equal(
      1,
    );
    expect(await h.metric("tensorclaw_api_queue_depth", { model: "m" })).to.equal(0);
  });

  it("takes a request that leaves out of the queue at once: 'cancelled', and the next in line gets the slot", async () => {
    const h = harness();
    const e = ends();
    const a = h.request("k1", "a");
    const gone = e.track("a", h.queue.wait("m", "chat", a, FAR));
    const b = e.track("b", h.queue.wait("m", "chat", h.request("k1", "b"), FAR));
    h.queue.leave(a);
    await gone;
    expect(await h.metric("tensorclaw_api_queue_depth", { model: "m" })).to.equal(1);
    h.state.slots = 1;
    h.changed();
    await b;
    expect(e.out).to.deep.equal(["a:cancelled", "b:served"]);
    expect(h.state.asked).to.not.include("a");
    h.queue.leave(a); // leaving twice is harmless
  });

  it("looks past a picky waiter that the free slot does not suit, to the next account's", async () => {
    const h = harness();
    const e = ends();
    const pickyReq = h.request("k1", "picky", () => false, true);
    const picky = e.track("picky", h.queue.wait("m", "chat", pickyReq, FAR));
    const plain = e.track("plain", h.queue.wait("m", "chat", h.request("k2", "plain"), FAR));
    h.state.slots = 1;
    h.changed();
    await plain;
    expect(e.out).to.deep.equal(["plain:served"]);
    expect(await h.metric("tensorclaw_api_queue_depth", { model: "m" })).to.equal(1);
    h.queue.leave(pickyReq);
    await picky;
    expect(e.out).to.deep.equal(["plain:served", "picky:cancelled"]);
  });
});

describe("QueuedProbe (a probe of a full tunnel waiting with the users)", () => {
  /** A probe whose tunnel has a slot free while `state.probeTunnelFree`; it counts the probes in `probes`. */
  function probeIn(h: ReturnType<typeof harness>, probes: Set<QueuedProbe<string>>, name: string) {
    const p: QueuedProbe<string> = new QueuedProbe(
      h.queue,
      { model: "m", kind: "chat" },
      FAR,
      () => {
        if (!h.state.probeTunnelFree || h.state.slots === 0) return undefined;
        h.state.slots--;
        h.changed();
        return name;
      },
      () => [...probes].filter((x) => x.inLine("m", "chat")).length,
    );
    probes.add(p);
    return p;
  }

  it("takes a slot of its tunnel on its turn while users wait, and passes one elsewhere to them", async () => {
    const h = harness();
    const e = ends();
    const probes = new Set<QueuedProbe<string>>();
    const u1 = e.track("u1", h.queue.wait("m", "chat", h.request("k1", "u1"), FAR));
    const u2 = e.track("u2", h.queue.wait("m", "chat", h.request("k1", "u2"), FAR));
    const p = probeIn(h, probes, "p");
    const probe = e.track("p", p.ended);
    expect(h.queue.waiting("m", "chat")).to.equal(3);
    expect(await h.metric("tensorclaw_api_queue_depth", { model: "m" }), "users only").to.equal(2);
    // The first slot is k1's turn; then the probe's, but the slot is on another tunnel: u2's.
    h.state.slots = 1;
    h.changed();
    await u1;
    h.state.slots = 1;
    h.changed();
    await u2;
    expect(e.out).to.deep.equal(["u1:served", "u2:served"]);
    expect(p.sent).to.equal(undefined);
    // A user waits again, behind the probe: a slot of the probe's tunnel is the probe's.
    const u3 = e.track("u3", h.queue.wait("m", "chat", h.request("k1", "u3"), FAR));
    h.state.probeTunnelFree = true;
    h.state.slots = 1;
    h.changed();
    await probe;
    expect(p.sent).to.equal("p");
    expect(e.out).to.deep.equal(["u1:served", "u2:served", "p:served"]);
    p.leave(); // served: nothing to leave
    h.state.slots = 1;
    h.changed();
    await u3;
  });

  it("takes no slot alone in its line: that would follow its miner's release of a slot", async () => {
    const h = harness();
    const e = ends();
    const probes = new Set<QueuedProbe<string>>();
    const u1 = e.track("u1", h.queue.wait("m", "chat", h.request("k1", "u1"), FAR));
    const p = probeIn(h, probes, "p");
    const probe = e.track("p", p.ended);
    // Another probe in the line is no user: two probes alone take nothing either.
    const q = probeIn(h, probes, "q");
    const other = e.track("q", q.ended);
    h.state.probeTunnelFree = true;
    h.state.slots = 1;
    h.changed();
    await u1;
    h.state.slots = 1;
    h.changed();
    await settle();
    expect(e.out).to.deep.equal(["u1:served"]);
    expect(h.state.slots, "the free slot stays free").to.equal(1);
    expect(await h.metric("tensorclaw_api_queue_depth", { model: "m" }), "no user waits").to.equal(0);
    p.leave();
    q.leave();
    await Promise.all([probe, other]);
    expect(await h.metric("tensorclaw_api_queue_depth", { model: "m" })).to.equal(0);
    expect(e.out).to.deep.equal(["u1:served", "p:cancelled", "q:cancelled"]);
    expect(h.queue.waiting("m", "chat")).to.equal(0);
  });
});
