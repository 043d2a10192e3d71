import { expect } from "chai";
import type { ChannelClosed, ChannelCloseKind, FrameChannelHandlers } from "../../common/frame-channel.js";
import { BufferedFrameChannel } from "../../common/frame-channel-base.js";

/** A channel whose "transport" is driven by the test; closes finish at once, as on the router. */
class TestChannel extends BufferedFrameChannel {
  readonly transport = "grpc" as const;
  readonly sent: Uint8Array[] = [];
  transportCloses = 0;

  constructor() {
    super("test-peer");
  }

  receive(bytes: Uint8Array): void {
    this.deliver(bytes);
  }

  drain(): void {
    this.drained();
  }

  end(info: ChannelClosed): void {
    this.finish(info);
  }

  send(message: Uint8Array): boolean {
    if (this.closed) return false;
    this.sent.push(message);
    return true;
  }

  protected closeTransport(kind: ChannelCloseKind, reason: string): void {
    this.transportCloses++;
    this.finish({ kind, reason, remote: false });
  }
}

function recorder(onMessage?: (bytes: Uint8Array) => void) {
  const log: string[] = [];
  const handlers: FrameChannelHandlers = {
    message: (b) => {
      log.push(`m${b[0]}`);
      onMessage?.(b);
    },
    drain: () => log.push("drain"),
    closed: (info) => log.push(`closed:${info.kind}:${info.remote}`),
  };
  return { log, handlers };
}

describe("buffered frame channel base", () => {
  it("holds messages that arrive before start and replays them in order, then live ones", () => {
    const ch = new TestChannel();
    ch.receive(Uint8Array.of(1));
    ch.receive(Uint8Array.of(2));
    const { log, handlers } = recorder();
    ch.start(handlers);
    ch.receive(Uint8Array.of(3));
    expect(log).to.deep.equal(["m1", "m2", "m3"]);
  });

  it("reports an end learnt before start once, at start", () => {
    const ch = new TestChannel();
    ch.end({ kind: "going_away", reason: "gone", remote: true });
    ch.end({ kind: "normal", reason: "again", remote: true });
    const { log, handlers } = recorder();
    ch.start(handlers);
    expect(log).to.deep.equal(["closed:going_away:true"]);
    expect(ch.closed).to.equal(true);
  });

  it("stops replaying and reports closed once when a replayed message closes the channel", () => {
    const ch = new TestChannel();
    ch.receive(Uint8Array.of(1));
    ch.receive(Uint8Array.of(2));
    const { log, handlers } = recorder(() => ch.close("invalid", "bad frame"));
    ch.start(handlers);
    expect(log).to.deep.equal(["m1", "closed:invalid:false"]);
  });

  it("drops messages and drain signals once closing, and closes the transport once", () => {
    const ch = new TestChannel();
    const { log, handlers } = recorder();
    ch.start(handlers);
    ch.drain();
    ch.close("normal", "done");
    ch.close("internal", "again");
    ch.receive(Uint8Array.of(9));
    ch.drain();
    expect(ch.send(Uint8Array.of(1))).to.equal(false);
    expect(ch.transportCloses).to.equal(1);
    expect(log).to.deep.equal(["drain", "closed:normal:false"]);
  });
});
