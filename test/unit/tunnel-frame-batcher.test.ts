import { expect } from "chai";
import { envelopedSize, FrameBatcher } from "../../common/frame-batcher.js";
import { ConnectRequest, MinerFrame } from "../../gen/tensorclaw/v1/tunnel.js";

function chunk(requestId: number, text: string): MinerFrame {
  return {
    kind: {
      $case: "chunk",
      value: {
        requestId,
        contentDelta: text,
        toolCalls: [],
        finishReason: 0,
        choiceIndex: 0,
        systemFingerprint: "",
        embeddings: [],
        reasoningDelta: "",
        logprobs: [],
      },
    },
  };
}

/** A batcher whose flushes run only when the test says so. */
function harness(maxMessageBytes: number, accept: () => boolean = () => true, firstAtOnce = false) {
  const sent: Uint8Array[] = [];
  const ticks: (() => void)[] = [];
  const batcher = new FrameBatcher<MinerFrame>({
    encode: (f) => MinerFrame.encode(f).finish(),
    send: (m) => {
      sent.push(m);
      return accept();
    },
    maxMessageBytes,
    schedule: (t) => ticks.push(t),
    firstAtOnce,
  });
  const runTicks = () => {
    for (const t of ticks.splice(0)) t();
  };
  const decoded = () => sent.map((m) => ConnectRequest.decode(m).frames);
  return { batcher, sent, runTicks, decoded };
}

describe("tunnel frame batcher", () => {
  it("sends the frames of one turn as one message that decodes to them in order", () => {
    const h = harness(1 << 20);
    for (let i = 0; i < 50; i++) h.batcher.push(chunk(i, `tok${i}`));
    expect(h.sent).to.have.length(0);
    h.runTicks();
    expect(h.sent).to.have.length(1);
    const frames = h.decoded()[0] ?? [];
    expect(frames.map((f) => (f.kind?.$case === "chunk" ? f.kind.value.contentDelta : "?"))).to.deep.equal(
      Array.from({ length: 50 }, (_, i) => `tok${i}`),
    );
  });

  it("schedules one flush per turn, not one per frame", () => {
    let scheduled = 0;
    const b = new FrameBatcher<MinerFrame>({
      encode: (f) => MinerFrame.encode(f).finish(),
      send: () => true,
      maxMessageBytes: 1 << 20,
      schedule: () => {
        scheduled++;
      },
    });
    for (let i = 0; i < 10; i++) b.push(chunk(i, "x"));
    expect(scheduled).to.equal(1);
  });

  it("splits a turn into several messages so none exceeds the limit", () => {
    const limit = 300;
    const h = harness(limit);
    const text = "y".repeat(40);
    for (let i = 0; i < 40; i++) h.batcher.push(chunk(i, text));
    h.runTicks();
    expect(h.sent.length).to.be.greaterThan(1);
    for (const m of h.sent) expect(m.length).to.be.at.most(limit);
    const all = h.decoded().flat();
    expect(all).to.have.length(40);
    expect(all.map((f) => (f.kind?.$case === "chunk" ? f.kind.value.requestId : -1))).to.deep.equal(
      Array.from({ length: 40 }, (_, i) => i),
    );
  });

  it("refuses a single frame larger than the limit and queues nothing", () => {
    const h = harness(64);
    expect(() => h.batcher.push(chunk(1, "z".repeat(100)))).to.throw(RangeError);
    expect(h.batcher.pendingFrames).to.equal(0);
  });

  it("holds frames while the transport is congested and sends them on resume", () => {
    let open = false;
    const h = harness(1 << 20, () => open);
    h.batcher.push(chunk(1, "a"));
    h.runTicks();
    expect(h.sent).to.have.length(1);
    expect(h.batcher.paused).to.equal(true);
    h.batcher.push(chunk(2, "b"));
    h.batcher.push(chunk(3, "c"));
    h.runTicks();
    expect(h.sent).to.have.length(1);
    expect(h.batcher.pendingFrames).to.equal(2);
    open = true;
    h.batcher.resume();
    expect(h.sent).to.have.length(2);
    expect(h.decoded()[1]).to.have.length(2);
    expect(h.batcher.pendingBytes).to.equal(0);
  });

  it("accounts pending bytes exactly as the envelope encodes them", () => {
    const h = harness(1 << 20);
    const f = chunk(7, "é".repeat(100));
    h.batcher.push(f);
    const expected = envelopedSize(MinerFrame.encode(f).finish().length);
    expect(h.batcher.pendingBytes).to.equal(expected);
    h.runTicks();
    expect(h.sent[0]?.length).to.equal(expected);
  });

  it("drops everything after close", () => {
    const h = harness(1 << 20);
    h.batcher.push(chunk(1, "a"));
    h.batcher.close();
    h.batcher.push(chunk(2, "b"));
    h.runTicks();
    expect(h.sent).to.have.length(0);
  });

  describe("with firstAtOnce", () => {
    const texts = (frames: MinerFrame[] | undefined) =>
      (frames ?? []).map((f) => (f.kind?.$case === "chunk" ? f.kind.value.contentDelta : "?"));

    it("sends the first frame of a turn at once and the rest of the turn as one message, in order", () => {
      const h = harness(1 << 20, () => true, true);
      h.batcher.push(chunk(1, "a"));
      expect(h.decoded().map(texts)).to.deep.equal([["a"]]);
      for (const t of ["b", "c", "d"]) h.batcher.push(chunk(1, t));
      expect(h.sent).to.have.length(1);
      h.runTicks();
      expect(h.decoded().map(texts)).to.deep.equal([["a"], ["b", "c", "d"]]);
      // The next turn starts over: its first frame leaves at once again.
      h.batcher.push(chunk(1, "e"));
      expect(h.decoded().map(texts)).to.deep.equal([["a"], ["b", "c", "d"], ["e"]]);
      h.runTicks();
      expect(h.sent).to.have.length(3);
    });

    it("sends nothing at once while the transport is congested, and everything on resume", () => {
      let ok = false;
      const h = harness(1 << 20, () => ok, true);
      h.batcher.push(chunk(1, "a")); // sent, and the transport says wait
      expect(h.batcher.paused).to.equal(true);
      h.runTicks();
      h.batcher.push(chunk(1, "b"));
      h.batcher.push(chunk(1, "c"));
      h.runTicks();
      expect(h.sent).to.have.length(1);
      ok = true;
      h.batcher.resume();
      expect(h.decoded().map(texts)).to.deep.equal([["a"], ["b", "c"]]);
    });
  });
});
