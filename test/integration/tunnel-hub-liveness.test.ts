import { status as GrpcStatus } from "@grpc/grpc-js";
import { expect } from "chai";
import type { Hotkey } from "../../common/identity.js";
import { RequestErrorCode } from "../../gen/tensorclaw/v1/tunnel.js";
import type { TunnelHub } from "../../router/tunnel/hub.js";
import type { TunnelEvent } from "../../router/tunnel/types.js";
import { FakeClock } from "../support/fake-clock.js";
import { waitForSessions } from "../support/hub-sessions.js";
import { throwawayHotkey } from "../support/keys.js";
import { chat, collect, connectMiner, type HubHarness, startHub } from "../support/tunnel-hub-harness.js";

function last(events: readonly TunnelEvent[]): TunnelEvent | undefined {
  return events[events.length - 1];
}

/** Resolves after the hub's next change (subscribe before causing it). */
function nextChange(hub: TunnelHub): Promise<void> {
  return new Promise((resolve) => {
    const off = hub.onChange(() => {
      off();
      resolve();
    });
  });
}

for (const transport of ["grpc", "ws"] as const) {
  describe(`tunnel hub liveness and drain over ${transport}`, () => {
    let key: Hotkey;
    let h: HubHarness | undefined;

    before(async () => {
      key = await throwawayHotkey();
    });

    afterEach(async () => {
      await h?.close();
      h = undefined;
    });

    it("pings on the advertised interval and turns pong round trips into a latency estimate", async () => {
      const clock = new FakeClock(Date.now()); // miners sign their hello with the real time
      h = await startHub({ clock, timings: { pingIntervalMs: 100, maxMissedPongs: 2 } });
      const m = await connectMiner(h, transport, key);
      m.client.autoPong = false;
      const hub = h.hub;
      const pings: number[] = [];
      let onPing: (() => void) | undefined;
      m.client.onFrame = (f) => {
        if (f.kind?.$case !== "ping") return;
        pings.push(f.kind.value.seq);
        onPing?.();
      };
      const nextPing = () => new Promise<void>((resolve) => (onPing = resolve));
      const pong = (seq: number) => m.client.send({ kind: { $case: "pong", value: { seq } } });
      await clock.advance(99);
      expect(pings, "no ping before the interval").to.deep.equal([]);
      let pinged = nextPing();
      await clock.advance(1);
      await pinged;
      await clock.advance(40); // the round trip as the router's clock sees it
      pong(1);
      // The first sample sets the estimate...
      await waitForSessions(hub, (s) => s[0]?.latencyMs === 40, "a 40 ms estimate");
      pinged = nextPing();
      await clock.advance(60);
      await pinged;
      await clock.advance(90);
      pong(2);
      // ...later ones blend in with weight 0.2: 40 + 0.2 * (90 - 40).
      await waitForSessions(hub, (s) => s[0]?.latencyMs === 50, "a 50 ms estimate");
      expect(pings).to.deep.equal([1, 2]);
      hub.observeLatency(m.sessionId, 140);
      expect(hub.sessions()[0]?.latencyMs).to.equal(68);
      expect(m.client.isClosed).to.equal(false);
    });

    it("closes a tunnel that misses its pongs and fails its in-flight calls", async () => {
      const clock = new FakeClock(Date.now()); // miners sign their hello with the real time
      h = await startHub({ clock, timings: { pingIntervalMs: 100, maxMissedPongs: 2 } });
      const alive = await connectMiner(h, transport, key);
      const hung = await connectMiner(h, transport, key, undefined, {
        plan: () => ({ chunks: [], end: "hang" }),
      });
      hung.client.autoPong = false;
      const call = h.hub.dispatch(hung.sessionId, "m1", chat(), { deadlineMs: 30_000 });
      const pending = collect(call);
      // Two pings go out; only the live miner's pong comes back (the hub's only change each time).
      for (let i = 0; i < 2; i++) {
        const ponged = nextChange(h.hub);
        await clock.advance(100);
        await ponged;
        expect(h.hub.sessions(), `after ping ${i + 1}`).to.have.length(2);
      }
      // The third tick finds two pings unanswered.
      await clock.advance(100);
      const events = await pending;
      expect(last(events)).to.deep.include({
        type: "error",
        code: RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_UNAVAILABLE,
      });
      const closed = await hung.client.closed;
      if (transport === "grpc") expect(closed.grpcCode).to.equal(GrpcStatus.DEADLINE_EXCEEDED);
      else expect(closed.wsCode).to.equal(1008);
      expect(closed.reason).to.match(/pings unanswered/);
      // The tunnel that answers keeps working.
      expect(h.hub.sessions().map((s) => s.sessionId)).to.deep.equal([alive.sessionId]);
      expect(
        last(await collect(h.hub.dispatch(alive.sessionId, "m1", chat(), { deadlineMs: 5_000 }))),
      ).to.deep.include({ type: "usage" });
    });

    it("drain sends Drain, stops dispatching, lets in-flight requests finish, then closes", async () => {
      h = await startHub({ timings: { drainReconnectAfterMs: 2_500 } });
      let release: (() => void) | undefined;
      const m = await connectMiner(h, transport, key, undefined, {
        plan: () => ({ chunks: ["a", "b"], end: "hang" }),
      });
      const call = h.hub.dispatch(m.sessionId, "m1", chat(), { deadlineMs: 10_000 });
      const it = call.events[Symbol.asyncIterator]();
      const seen: string[] = [];
      for (let i = 0; i < 2; i++) seen.push((await it.next()).value?.type ?? "done");
      const drainFrames: string[] = [];
      const prev = m.client.onFrame;
      m.client.onFrame = (f) => {
        if (f.kind?.$case === "drain") {
          drainFrames.push(`${f.kind.value.reconnectAfterMs}:${f.kind.value.reason}`);
          release?.();
        }
        prev?.(f);
      };
      const hub = h.hub;
      const sawDrain = new Promise<void>((resolve) => {
        release = resolve;
      });
      let drained = false;
      const draining = hub.drain("maintenance").then(() => {
        drained = true;
      });
      await sawDrain;
      expect(drainFrames).to.deep.equal(["2500:maintenance"]);
      expect(hub.sessions()[0]?.state).to.equal("draining");
      expect(() => hub.dispatch(m.sessionId, "m1", chat(), { deadlineMs: 1_000 })).to.throw(
        /not taking requests/,
      );
      expect(drained).to.equal(false);
      // The miner finishes its request; the tunnel then closes normally.
      const requestId = m.miner.requests[0]?.requestId ?? 0;
      m.client.send({
        kind: { $case: "usage", value: { requestId, promptTokens: 1n, completionTokens: 2n } },
      });
      seen.push((await it.next()).value?.type ?? "done");
      expect(seen).to.deep.equal(["chunk", "chunk", "usage"]);
      expect((await it.next()).done).to.equal(true);
      await draining;
      const closed = await m.client.closed;
      if (transport === "grpc") expect(closed.grpcCode).to.equal(GrpcStatus.OK);
      else expect(closed.wsCode).to.equal(1000);
      expect(hub.openCount).to.equal(0);
    });

    it("drain closes the tunnel after the grace even if requests are still running, failing them", async () => {
      const clock = new FakeClock(Date.now()); // miners sign their hello with the real time
      h = await startHub({ clock, timings: { drainGraceMs: 100 } });
      const m = await connectMiner(h, transport, key, undefined, {
        plan: () => ({ chunks: [], end: "hang" }),
      });
      const call = h.hub.dispatch(m.sessionId, "m1", chat(), { deadlineMs: 30_000 });
      await m.miner.until(() => m.miner.requests.length === 1);
      let drained = false;
      const draining = h.hub.drain().then(() => {
        drained = true;
      });
      await clock.advance(99);
      expect(drained, "closed before the grace ran out").to.equal(false);
      expect(h.hub.openCount).to.equal(1);
      await clock.advance(1);
      await draining;
      expect(last(await collect(call))).to.deep.include({
        type: "error",
        code: RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_UNAVAILABLE,
      });
      const closed = await m.client.closed;
      if (transport === "grpc") expect(closed.grpcCode).to.equal(GrpcStatus.UNAVAILABLE);
      else expect(closed.wsCode).to.equal(1001);
    });
  });
}
