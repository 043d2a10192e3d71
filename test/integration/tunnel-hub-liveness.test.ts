import { status as GrpcStatus } from "@grpc/grpc-js";
import { expect } from "chai";
import type { Hotkey } from "../../common/identity.js";
import { RequestErrorCode } from "../../gen/tensorclaw/v1/tunnel.js";
import type { TunnelEvent } from "../../router/tunnel/types.js";
import { throwawayHotkey } from "../support/keys.js";
import { chat, collect, connectMiner, type HubHarness, startHub } from "../support/tunnel-hub-harness.js";

function last(events: readonly TunnelEvent[]): TunnelEvent | undefined {
  return events[events.length - 1];
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
      let now = Date.now();
      // The interval is long enough that a pong always lands before the next ping.
      h = await startHub({ clock: { now: () => now }, timings: { pingIntervalMs: 100, maxMissedPongs: 2 } });
      const m = await connectMiner(h, transport, key);
      m.client.autoPong = false;
      let pings = 0;
      const hub = h.hub;
      const pong = new Promise<void>((resolve) => {
        m.client.onFrame = (f) => {
          if (f.kind?.$case !== "ping") return;
          pings++;
          now += 40; // the round trip as the router's clock sees it
          m.client.send({ kind: { $case: "pong", value: { seq: f.kind.value.seq } } });
          if (pings === 2) resolve();
        };
      });
      await pong;
      await new Promise<void>((resolve) => {
        const poll = () => ((hub.sessions()[0]?.latencyMs ?? 0) > 0 ? resolve() : setTimeout(poll, 5));
        poll();
      });
      // Every sample was 40 ms, so the smoothed estimate is 40 ms.
      expect(hub.sessions()[0]?.latencyMs).to.equal(40);
      hub.observeLatency(m.sessionId, 140);
      expect(hub.sessions()[0]?.latencyMs).to.equal(60);
      expect(m.client.isClosed).to.equal(false);
    });

    it("closes a tunnel that misses its pongs and fails its in-flight calls", async () => {
      h = await startHub({ timings: { pingIntervalMs: 100, maxMissedPongs: 2 } });
      const alive = await connectMiner(h, transport, key);
      const hung = await connectMiner(h, transport, key, undefined, {
        plan: () => ({ chunks: [], end: "hang" }),
      });
      hung.client.autoPong = false;
      const call = h.hub.dispatch(hung.sessionId, "m1", chat(), { deadlineMs: 30_000 });
      const events = await collect(call);
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
      h = await startHub({ timings: { drainGraceMs: 100 } });
      const m = await connectMiner(h, transport, key, undefined, {
        plan: () => ({ chunks: [], end: "hang" }),
      });
      const call = h.hub.dispatch(m.sessionId, "m1", chat(), { deadlineMs: 30_000 });
      await m.miner.until(() => m.miner.requests.length === 1);
      const t0 = Date.now();
      await h.hub.drain();
      expect(Date.now() - t0).to.be.at.least(90);
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
