import { status as GrpcStatus } from "@grpc/grpc-js";
import { expect } from "chai";
import type { Hotkey } from "../../common/identity.js";
import { ConnectRequest, RejectReason, RequestErrorCode } from "../../gen/tensorclaw/v1/tunnel.js";
import { DEFAULT_TUNNEL_TIMINGS } from "../../router/tunnel/options.js";
import type { SessionView, TunnelEvent } from "../../router/tunnel/types.js";
import { waitForSessions } from "../support/hub-sessions.js";
import { throwawayHotkey } from "../support/keys.js";
import { type RawClosed, type RawTransport, RawTunnelClient } from "../support/raw-tunnel-client.js";
import {
  type ConnectedMiner,
  chat,
  collect,
  connectMiner,
  type HubHarness,
  startHub,
} from "../support/tunnel-hub-harness.js";

function expectClosed(closed: RawClosed, transport: RawTransport, grpc: GrpcStatus, ws: number): void {
  if (transport === "grpc") expect(closed.grpcCode, closed.reason).to.equal(grpc);
  else expect(closed.wsCode, closed.reason).to.equal(ws);
}

function last(events: readonly TunnelEvent[]): TunnelEvent | undefined {
  return events[events.length - 1];
}

const MAX = 64 * 1024;

for (const transport of ["grpc", "ws"] as const) {
  describe(`tunnel hub faults over ${transport}`, () => {
    let key: Hotkey;
    let h: HubHarness | undefined;
    /** A healthy tunnel that must keep serving through every fault. */
    let good: ConnectedMiner;

    before(async () => {
      key = await throwawayHotkey();
    });

    beforeEach(async () => {
      h = await startHub({ timings: { maxMessageBytes: MAX } });
      good = await connectMiner(h, transport, key);
    });

    afterEach(async () => {
      await h?.close();
      h = undefined;
    });

    async function goodStillServes(): Promise<void> {
      const hub = h?.hub;
      if (hub === undefined) throw new Error("no hub");
      const events = await collect(hub.dispatch(good.sessionId, "m1", chat(), { deadlineMs: 5_000 }));
      expect(last(events)).to.deep.include({ type: "usage" });
    }

    it("closes a stream whose first frame is not a Hello with INVALID_ARGUMENT / 1007", async () => {
      const c = await RawTunnelClient.open(transport, h?.endpoints ?? { grpc: "", ws: "" });
      await c.expect("challenge");
      c.send({ kind: { $case: "pong", value: { seq: 1 } } });
      const closed = await c.closed;
      expectClosed(closed, transport, GrpcStatus.INVALID_ARGUMENT, 1007);
      expect(closed.reason).to.match(/expected Hello/);
      await goodStillServes();
    });

    it("closes a stream that sends bytes that do not decode", async () => {
      const c = await RawTunnelClient.open(transport, h?.endpoints ?? { grpc: "", ws: "" });
      await c.expect("challenge");
      c.sendRaw(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]));
      const closed = await c.closed;
      expectClosed(closed, transport, GrpcStatus.INVALID_ARGUMENT, 1007);
      expect(closed.reason).to.match(/does not decode/);
      await goodStillServes();
    });

    it("closes a live tunnel that sends garbage and fails its in-flight calls with BACKEND_UNAVAILABLE", async () => {
      if (h === undefined) throw new Error("no hub");
      const bad = await connectMiner(h, transport, key, undefined, {
        plan: () => ({ chunks: ["x"], end: "hang" }),
      });
      const call = h.hub.dispatch(bad.sessionId, "m1", chat(), { deadlineMs: 10_000 });
      const goodCall = h.hub.dispatch(good.sessionId, "m1", chat(), { deadlineMs: 10_000 });
      await bad.miner.until(() => bad.miner.requests.length === 1);
      bad.client.sendRaw(Buffer.from("definitely not protobuf \u00ff\u00fe", "latin1"));
      const events = await collect(call);
      expect(last(events)).to.deep.include({
        type: "error",
        code: RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_UNAVAILABLE,
      });
      expectClosed(await bad.client.closed, transport, GrpcStatus.INVALID_ARGUMENT, 1007);
      expect(last(await collect(goodCall))).to.deep.include({ type: "usage" });
      expect(h.hub.sessions().map((s) => s.sessionId)).to.deep.equal([good.sessionId]);
    });

    it("closes a stream that sends an oversized message with RESOURCE_EXHAUSTED / 1009", async () => {
      if (h === undefined) throw new Error("no hub");
      const bad = await connectMiner(h, transport, key);
      const big = ConnectRequest.encode({
        frames: [
          { kind: { $case: "pong", value: { seq: 1 } } },
          ...Array.from({ length: 2000 }, () => ({
            kind: {
              $case: "models" as const,
              value: { models: [{ id: "x".repeat(40), maxConcurrency: 1, contextLength: 0, kinds: [] }] },
            },
          })),
        ],
      }).finish();
      expect(big.length).to.be.greaterThan(MAX);
      bad.client.sendRaw(big);
      const closed = await bad.client.closed;
      expectClosed(closed, transport, GrpcStatus.RESOURCE_EXHAUSTED, 1009);
      // The close says why, over WebSocket too (where `ws` itself closes with the code alone).
      expect(closed.reason).to.match(/larger than/);
      await waitForSessions(h.hub, (s) => s.length === 1, "the oversized tunnel's session to go");
      await goodStillServes();
    });

    it("closes a live tunnel whose valid message is followed by a stray zero byte", async () => {
      if (h === undefined) throw new Error("no hub");
      const bad = await connectMiner(h, transport, key);
      const valid = ConnectRequest.encode({
        frames: [{ kind: { $case: "pong", value: { seq: 1 } } }],
      }).finish();
      bad.client.sendRaw(Buffer.concat([valid, Buffer.from([0])]));
      const closed = await bad.client.closed;
      expectClosed(closed, transport, GrpcStatus.INVALID_ARGUMENT, 1007);
      expect(closed.reason).to.match(/does not decode: bad field at byte \d+/);
      await goodStillServes();
    });

    it("closes a tunnel that sends a second Hello", async () => {
      if (h === undefined) throw new Error("no hub");
      const bad = await connectMiner(h, transport, key);
      bad.client.send({
        kind: {
          $case: "hello",
          value: {
            hotkey: key.address,
            signature: Buffer.alloc(64),
            timestampMs: 0n,
            models: [],
            softwareVersion: "",
            protocolVersion: 1,
            channelBinding: Buffer.alloc(0),
          },
        },
      });
      const closed = await bad.client.closed;
      expectClosed(closed, transport, GrpcStatus.INVALID_ARGUMENT, 1007);
      expect(closed.reason).to.match(/second Hello/);
      await goodStillServes();
    });

    it("closes a tunnel whose ModelListUpdate is invalid", async () => {
      if (h === undefined) throw new Error("no hub");
      const bad = await connectMiner(h, transport, key);
      bad.client.send({
        kind: {
          $case: "models",
          value: { models: [{ id: "", maxConcurrency: 1, contextLength: 0, kinds: [] }] },
        },
      });
      expectClosed(await bad.client.closed, transport, GrpcStatus.INVALID_ARGUMENT, 1007);
      await goodStillServes();
    });

    it("applies a flood of ModelListUpdates at most once per gap, the last one winning", async () => {
      if (h === undefined) throw new Error("no hub");
      const hub = h.hub;
      const flooder = await connectMiner(h, transport, key);
      let changes = 0;
      hub.onChange(() => changes++);
      const offer = (n: number) => ({ id: "m1", maxConcurrency: n, contextLength: 0, kinds: [] });
      // 2,000 updates in one stream message, each a different limit; the last offers 7.
      const frames = Array.from({ length: 2000 }, (_, i) => ({
        kind: { $case: "models" as const, value: { models: [offer(7 - ((1999 - i) % 7))] } },
      }));
      expect(frames.at(-1)?.kind.value.models[0]?.maxConcurrency).to.equal(7);
      const sentAt = performance.now();
      flooder.client.sendRaw(ConnectRequest.encode({ frames }).finish());
      const limit = (s: readonly SessionView[]) =>
        s.find((v) => v.sessionId === flooder.sessionId)?.models[0]?.maxConcurrency;
      await waitForSessions(hub, (s) => limit(s) === 7, "the last update to apply");
      // The first update applies at once and the other 1,999 merge into one, a gap later.
      expect(performance.now() - sentAt).to.be.at.least(DEFAULT_TUNNEL_TIMINGS.modelUpdateGapMs - 5);
      expect(changes).to.equal(2);
      await goodStillServes();
      const events = await collect(hub.dispatch(flooder.sessionId, "m1", chat(), { deadlineMs: 5_000 }));
      expect(last(events)).to.deep.include({ type: "usage" });
    });

    if (transport === "ws") {
      it("closes a WebSocket that sends a text message with 1007", async () => {
        const c = await RawTunnelClient.open(transport, h?.endpoints ?? { grpc: "", ws: "" });
        await c.expect("challenge");
        c.sendText("hello?");
        const closed = await c.closed;
        expect(closed.wsCode).to.equal(1007);
        expect(closed.reason).to.match(/text messages/);
        await goodStillServes();
      });
    }

    it("ignores frames for unknown or finished request ids", async () => {
      good.client.send(
        {
          kind: {
            $case: "chunk",
            value: {
              requestId: 999,
              contentDelta: "stray",
              toolCalls: [],
              finishReason: 0,
              choiceIndex: 0,
              systemFingerprint: "",
              embeddings: [],
              reasoningDelta: "",
              logprobs: [],
            },
          },
        },
        { kind: { $case: "usage", value: { requestId: 999, promptTokens: 1n, completionTokens: 1n } } },
      );
      await goodStillServes();
      expect(good.client.isClosed).to.equal(false);
    });

    it("a miner that vanishes mid-request fails only its own calls", async () => {
      if (h === undefined) throw new Error("no hub");
      const doomed = await connectMiner(h, transport, key, undefined, {
        plan: () => ({ chunks: ["half"], end: "hang" }),
      });
      const lost = h.hub.dispatch(doomed.sessionId, "m1", chat(), { deadlineMs: 10_000 });
      const it = lost.events[Symbol.asyncIterator]();
      expect((await it.next()).value).to.deep.include({ type: "chunk" });
      const survivor = h.hub.dispatch(good.sessionId, "m1", chat(), { deadlineMs: 10_000 });
      doomed.client.destroy();
      const end = await it.next();
      expect(end.value).to.deep.include({
        type: "error",
        code: RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_UNAVAILABLE,
      });
      expect(last(await collect(survivor))).to.deep.include({ type: "usage" });
      await waitForSessions(h.hub, (s) => s.length === 1, "the vanished miner's session to go");
      expect(h.hub.sessions()[0]?.sessionId).to.equal(good.sessionId);
    });

    it("while the hub drains, new tunnels get Challenge then Reject UNAVAILABLE", async () => {
      if (h === undefined) throw new Error("no hub");
      const draining = h.hub.drain("maintenance");
      await draining;
      const c = await RawTunnelClient.open(transport, h.endpoints);
      await c.expect("challenge");
      const reject = await c.expect("reject");
      expect(reject.reason).to.equal(RejectReason.REJECT_REASON_UNAVAILABLE);
      expect(reject.retryAfterMs).to.be.greaterThan(0);
      expectClosed(await c.closed, transport, GrpcStatus.UNAVAILABLE, 1001);
    });
  });
}
