import { expect } from "chai";
import { TensorClawError } from "../../common/errors.js";
import type { Hotkey } from "../../common/identity.js";
import { RequestErrorCode } from "../../gen/tensorclaw/v1/tunnel.js";
import type { SessionView, TunnelEvent } from "../../router/tunnel/types.js";
import { waitForSessions } from "../support/hub-sessions.js";
import { throwawayHotkey } from "../support/keys.js";
import { chat, collect, connectMiner, type HubHarness, startHub } from "../support/tunnel-hub-harness.js";

function texts(events: readonly TunnelEvent[]): string {
  return events.map((e) => (e.type === "chunk" ? e.chunk.contentDelta : "")).join("");
}

function last(events: readonly TunnelEvent[]): TunnelEvent | undefined {
  return events[events.length - 1];
}

function expectNoCapacity(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(TensorClawError);
    expect((err as TensorClawError).code).to.equal("no_capacity");
    return;
  }
  expect.fail("dispatch should have thrown no_capacity");
}

for (const transport of ["grpc", "ws"] as const) {
  describe(`tunnel hub requests over ${transport}`, () => {
    let key: Hotkey;
    let h: HubHarness | undefined;

    before(async () => {
      key = await throwawayHotkey();
    });

    afterEach(async () => {
      await h?.close();
      h = undefined;
    });

    it("carries 100 concurrent streamed requests on one tunnel, each complete and in order", async () => {
      h = await startHub();
      const chunkCount = 20;
      const m = await connectMiner(
        h,
        transport,
        key,
        [{ id: "m1", maxConcurrency: 100, contextLength: 0, kinds: [] }],
        {
          plan: (req) => ({
            chunks: Array.from({ length: chunkCount }, (_, i) => `[${req.requestId}:${i}]`),
            end: { usage: [7, chunkCount] },
          }),
        },
      );
      const hub = h.hub;
      const calls = Array.from({ length: 100 }, () =>
        hub.dispatch(m.sessionId, "m1", chat(), { deadlineMs: 10_000 }),
      );
      expect(hub.sessions()[0]?.inFlight).to.equal(100);
      // Record the global arrival order to prove the requests really interleaved.
      const arrival: number[] = [];
      const results = await Promise.all(
        calls.map(async (call, idx) => {
          const events: TunnelEvent[] = [];
          for await (const e of call.events) {
            events.push(e);
            if (e.type === "chunk") arrival.push(idx);
          }
          return events;
        }),
      );
      const ids = m.miner.requests.map((r) => r.requestId);
      expect(new Set(ids).size).to.equal(100);
      results.forEach((events, idx) => {
        const id = ids[idx] as number;
        expect(texts(events)).to.equal(Array.from({ length: chunkCount }, (_, i) => `[${id}:${i}]`).join(""));
        expect(events.filter((e) => e.type === "usage" || e.type === "error")).to.have.length(1);
        expect(last(events)).to.deep.equal({ type: "usage", promptTokens: 7, completionTokens: chunkCount });
        expect(calls[idx]?.relayedBytes()).to.equal(texts(events).length);
      });
      const switches = arrival.filter((v, i) => i > 0 && v !== arrival[i - 1]).length;
      expect(switches).to.be.greaterThan(100);
      expect(m.miner.maxConcurrent).to.equal(100);
      expect(hub.sessions()[0]?.inFlight).to.equal(0);
    });

    it("sends deadline_ms, initial credit, model and chat with each request", async () => {
      h = await startHub({ timings: { initialCreditBytes: 5000 } });
      const m = await connectMiner(h, transport, key);
      await collect(h.hub.dispatch(m.sessionId, "m1", chat("hello there"), { deadlineMs: 1234.4 }));
      const req = m.miner.requests[0];
      // Whole seconds on the wire (the router keeps the exact budget for itself).
      expect(req?.deadlineMs).to.equal(2000);
      expect(req?.initialCreditBytes).to.equal(5000);
      expect(req?.model).to.equal("m1");
      expect(req?.chat?.messages[0]?.content).to.equal("hello there");
    });

    it("enforces the advertised per-model concurrency and frees the slot when a request ends", async () => {
      h = await startHub();
      const m = await connectMiner(
        h,
        transport,
        key,
        [
          { id: "small", maxConcurrency: 2, contextLength: 0, kinds: [] },
          { id: "big", maxConcurrency: 1, contextLength: 0, kinds: [] },
        ],
        { plan: () => ({ chunks: ["x"], end: "hang" }) },
      );
      const hub = h.hub;
      const a = hub.dispatch(m.sessionId, "small", chat(), { deadlineMs: 10_000 });
      hub.dispatch(m.sessionId, "small", chat(), { deadlineMs: 10_000 });
      expectNoCapacity(() => hub.dispatch(m.sessionId, "small", chat(), { deadlineMs: 10_000 }));
      // Another model has its own limit.
      hub.dispatch(m.sessionId, "big", chat(), { deadlineMs: 10_000 });
      expectNoCapacity(() => hub.dispatch(m.sessionId, "big", chat(), { deadlineMs: 10_000 }));
      expectNoCapacity(() => hub.dispatch(m.sessionId, "unknown-model", chat(), { deadlineMs: 10_000 }));
      expectNoCapacity(() => hub.dispatch("no-such-session", "small", chat(), { deadlineMs: 10_000 }));
      const view = hub.sessions()[0];
      expect(view?.models.find((x) => x.id === "small")?.inFlight).to.equal(2);
      expect(view?.inFlight).to.equal(3);
      // The miner answers the cancel; only then is the slot free again.
      a.cancel("test");
      await m.miner.until(() => m.miner.cancels.length === 1);
      await waitForSessions(
        hub,
        (s) => s[0]?.inFlight === 2,
        "the miner's CANCELLED answer to free the slot",
      );
      hub.dispatch(m.sessionId, "small", chat(), { deadlineMs: 10_000 });
      expect(m.miner.maxConcurrent).to.equal(3);
    });

    it("cancel() sends a Cancel frame to the miner and ends the stream with CANCELLED", async () => {
      h = await startHub();
      const m = await connectMiner(h, transport, key, undefined, {
        plan: () => ({ chunks: ["one"], end: "hang" }),
      });
      const call = h.hub.dispatch(m.sessionId, "m1", chat(), { deadlineMs: 10_000 });
      const it = call.events[Symbol.asyncIterator]();
      const first = await it.next();
      expect(first.value).to.deep.include({ type: "chunk" });
      call.cancel("client disconnected");
      const end = await it.next();
      expect(end.value).to.deep.include({
        type: "error",
        code: RequestErrorCode.REQUEST_ERROR_CODE_CANCELLED,
      });
      expect((await it.next()).done).to.equal(true);
      await m.miner.until(() => m.miner.cancels.length === 1);
      expect(m.miner.cancels[0]).to.deep.equal({
        requestId: m.miner.requests[0]?.requestId,
        reason: "client disconnected",
      });
      call.cancel("again"); // idempotent: no second Cancel frame
      await collect(h.hub.dispatch(m.sessionId, "m1", chat(), { deadlineMs: 100 }));
      await m.miner.until(() => m.miner.cancels.length === 2);
      expect(m.miner.requests[1]?.deadlineMs).to.equal(1000);
      expect(m.miner.cancels.map((c) => c.reason)).to.deep.equal([
        "client disconnected",
        "deadline of 100 ms exceeded",
      ]);
    });

    it("an aborted signal cancels; the deadline ends the stream with TIMEOUT", async () => {
      h = await startHub();
      const m = await connectMiner(h, transport, key, undefined, {
        plan: () => ({ chunks: [], end: "hang" }),
      });
      const ac = new AbortController();
      const call = h.hub.dispatch(m.sessionId, "m1", chat(), { deadlineMs: 10_000, signal: ac.signal });
      const pending = collect(call);
      await m.miner.until(() => m.miner.requests.length === 1);
      ac.abort();
      expect(last(await pending)).to.deep.include({
        type: "error",
        code: RequestErrorCode.REQUEST_ERROR_CODE_CANCELLED,
      });
      const timed = await collect(h.hub.dispatch(m.sessionId, "m1", chat(), { deadlineMs: 80 }));
      expect(timed).to.have.length(1);
      expect(timed[0]).to.deep.include({ type: "error", code: RequestErrorCode.REQUEST_ERROR_CODE_TIMEOUT });
      await m.miner.until(() => m.miner.cancels.length === 2);
    });

    it("relays a miner's per-request error as the terminal event; the tunnel keeps serving", async () => {
      h = await startHub();
      let n = 0;
      const m = await connectMiner(h, transport, key, undefined, {
        plan: () =>
          n++ === 0
            ? {
                chunks: ["partial"],
                end: { error: RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_ERROR, message: "HTTP 500" },
              }
            : { chunks: ["ok"] },
      });
      const failed = await collect(h.hub.dispatch(m.sessionId, "m1", chat(), { deadlineMs: 5_000 }));
      expect(texts(failed)).to.equal("partial");
      expect(last(failed)).to.deep.equal({
        type: "error",
        code: RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_ERROR,
        message: "HTTP 500",
      });
      const ok = await collect(h.hub.dispatch(m.sessionId, "m1", chat(), { deadlineMs: 5_000 }));
      expect(texts(ok)).to.equal("ok");
    });

    it("a slow reader holds back only its own request, within its credit", async () => {
      const credit = 1024;
      h = await startHub({ timings: { initialCreditBytes: credit } });
      const piece = "z".repeat(100);
      const m = await connectMiner(h, transport, key, undefined, {
        plan: () => ({ chunks: Array.from({ length: 200 }, () => piece) }),
        chunksPerTurn: 50,
      });
      const slow = h.hub.dispatch(m.sessionId, "m1", chat(), { deadlineMs: 10_000 });
      // Nobody reads `slow`. The fast request still completes in full.
      const fast = await collect(h.hub.dispatch(m.sessionId, "m1", chat(), { deadlineMs: 10_000 }));
      expect(texts(fast)).to.have.length(200 * 100);
      // The stalled request got its initial credit and no more; the miner still holds its chunks.
      const slowId = m.miner.requests[0]?.requestId ?? -1;
      expect(m.miner.credits.get(slowId) ?? 0).to.equal(0);
      expect(m.miner.active).to.equal(1);
      const slowIt = slow.events[Symbol.asyncIterator]();
      let got = 0;
      for (let i = 0; i < 10; i++) {
        const r = await slowIt.next();
        if (!r.done && r.value.type === "chunk") got += r.value.chunk.contentDelta.length;
      }
      expect(got).to.equal(1000);
      expect(slow.relayedBytes()).to.equal(1000);
      // Reading on releases credit and the rest flows.
      const rest = await collect({ ...slow, events: { [Symbol.asyncIterator]: () => slowIt } });
      expect(texts(rest)).to.have.length(200 * 100 - 1000);
      expect(last(rest)).to.deep.include({ type: "usage" });
    });

    it("fails a request whose miner overruns its credit with PROTOCOL and cancels it; the tunnel lives", async () => {
      h = await startHub({ timings: { initialCreditBytes: 256 } });
      let n = 0;
      const m = await connectMiner(h, transport, key, undefined, {
        plan: () =>
          n++ === 0 ? { chunks: Array.from({ length: 10 }, () => "q".repeat(100)) } : { chunks: ["fine"] },
        respectCredit: false,
        chunksPerTurn: 10,
      });
      const events = await collect(h.hub.dispatch(m.sessionId, "m1", chat(), { deadlineMs: 5_000 }));
      expect(last(events)).to.deep.include({
        type: "error",
        code: RequestErrorCode.REQUEST_ERROR_CODE_PROTOCOL,
      });
      expect(texts(events).length).to.be.at.most(256);
      await m.miner.until(() => m.miner.cancels.length === 1);
      expect(texts(await collect(h.hub.dispatch(m.sessionId, "m1", chat(), { deadlineMs: 5_000 })))).to.equal(
        "fine",
      );
    });

    it("lets one chunk larger than the whole credit through when nothing is outstanding", async () => {
      h = await startHub({ timings: { initialCreditBytes: 64 } });
      const big = "B".repeat(1000);
      const m = await connectMiner(h, transport, key, undefined, { plan: () => ({ chunks: [big, "tail"] }) });
      const events = await collect(h.hub.dispatch(m.sessionId, "m1", chat(), { deadlineMs: 5_000 }));
      expect(texts(events)).to.equal(`${big}tail`);
      expect(last(events)).to.deep.include({ type: "usage" });
    });

    it("ghost sessions get no traffic until set active again; a ModelListUpdate replaces the offers", async () => {
      h = await startHub();
      const m = await connectMiner(h, transport, key);
      h.hub.setGhost(key.address, true);
      expect(h.hub.sessions()[0]?.state).to.equal("ghost");
      expectNoCapacity(() => h?.hub.dispatch(m.sessionId, "m1", chat(), { deadlineMs: 1_000 }));
      h.hub.setGhost(key.address, false);
      expect(h.hub.sessions()[0]?.state).to.equal("active");
      m.client.send({
        kind: {
          $case: "models",
          value: { models: [{ id: "m2", maxConcurrency: 1, contextLength: 1, kinds: [] }] },
        },
      });
      const hub = h.hub;
      await waitForSessions(hub, (s) => s[0]?.models[0]?.id === "m2", "the ModelListUpdate to apply");
      expectNoCapacity(() => hub.dispatch(m.sessionId, "m1", chat(), { deadlineMs: 1_000 }));
      expect(texts(await collect(hub.dispatch(m.sessionId, "m2", chat(), { deadlineMs: 5_000 })))).to.equal(
        "abc",
      );
    });

    it("files sessions by routed model through ghosting, a new model list, the catalogue and a close; snapshots follow every slot", async () => {
      h = await startHub();
      const hub = h.hub;
      const offer = (id: string) => ({ id, maxConcurrency: 4, contextLength: 0, kinds: [] });
      const a = await connectMiner(h, transport, key, [offer("m1"), offer("m2")]);
      const b = await connectMiner(h, transport, await throwawayHotkey(), [offer("m2")]);
      await waitForSessions(hub, (s) => s.length === 2, "both sessions live");
      const ids = (model: string) =>
        hub
          .sessionsOffering(model)
          .map((v) => v.sessionId)
          .sort();
      expect(ids("m1")).to.deep.equal([a.sessionId]);
      expect(ids("m2")).to.deep.equal([a.sessionId, b.sessionId].sort());
      expect(ids("m3")).to.deep.equal([]);

      // A slot taken and freed shows in both lists (the snapshots are kept only while nothing changed).
      const slotsOf = (views: readonly SessionView[]) => {
        const v = views.find((x) => x.sessionId === a.sessionId);
        return [v?.inFlight, v?.models.find((x) => x.id === "m1")?.inFlight];
      };
      const before = hub.sessionsOffering("m1")[0];
      const call = hub.dispatch(a.sessionId, "m1", chat(), { deadlineMs: 5_000 });
      expect(slotsOf(hub.sessionsOffering("m1"))).to.deep.equal([1, 1]);
      expect(slotsOf(hub.sessions())).to.deep.equal([1, 1]);
      expect(texts(await collect(call))).to.equal("abc");
      expect(slotsOf(hub.sessionsOffering("m1"))).to.deep.equal([0, 0]);
      expect(slotsOf(hub.sessions())).to.deep.equal([0, 0]);
      expect(hub.sessionsOffering("m1")[0]).to.not.equal(before);

      // A ghost still offers its models (busy, not unknown), in its own state.
      hub.setGhost(key.address, true);
      expect(hub.sessionsOffering("m1").map((v) => v.state)).to.deep.equal(["ghost"]);
      hub.setGhost(key.address, false);
      expect(hub.sessionsOffering("m1").map((v) => v.state)).to.deep.equal(["active"]);

      // The catalogue stops routing m1: nobody offers it, m2 is untouched; then it routes again.
      hub.setModelFilter({ canonical: (id) => (id === "m1" ? undefined : id) });
      expect(ids("m1")).to.deep.equal([]);
      expect(
        hub
          .sessions()
          .find((v) => v.sessionId === a.sessionId)
          ?.models.map((x) => x.id),
      ).to.deep.equal(["m2"]);
      expect(ids("m2")).to.deep.equal([a.sessionId, b.sessionId].sort());
      hub.setModelFilter({ canonical: (id) => id });
      expect(ids("m1")).to.deep.equal([a.sessionId]);

      // A closed session leaves every model it was filed under.
      b.client.end();
      await waitForSessions(hub, (s) => s.length === 1, "the closed session gone");
      expect(ids("m2")).to.deep.equal([a.sessionId]);

      // A new model list moves the session to the models it now offers.
      a.client.send({ kind: { $case: "models", value: { models: [offer("m3")] } } });
      await waitForSessions(hub, (s) => s[0]?.models[0]?.id === "m3", "the ModelListUpdate to apply");
      expect([ids("m1"), ids("m2"), ids("m3")]).to.deep.equal([[], [], [a.sessionId]]);
    });
  });
}
