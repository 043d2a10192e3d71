import { expect } from "chai";
import { SseLimitError, SseParser } from "../../miner/backend/sse-parser.js";

function feedAll(pieces: (string | Uint8Array)[]): { event: string; data: string }[] {
  const p = new SseParser();
  const out = pieces.flatMap((x) => p.push(x));
  p.end();
  return out;
}

describe("miner SSE parser", () => {
  it("dispatches data events on blank lines and keeps [DONE] as data", () => {
    const evs = feedAll(['data: {"a":1}\n\ndata: [DONE]\n\n']);
    expect(evs.map((e) => e.data)).to.deep.equal(['{"a":1}', "[DONE]"]);
    expect(evs[0]?.event).to.equal("message");
  });

  it("handles CRLF and lone CR line endings, even split across pieces", () => {
    expect(feedAll(["data: a\r\n\r\ndata: b\r\r"]).map((e) => e.data)).to.deep.equal(["a", "b"]);
    // The CR ends one piece and its LF starts the next: one line break, not two.
    expect(feedAll(["data: x\r", "\n\r", "\n"]).map((e) => e.data)).to.deep.equal(["x"]);
  });

  it("reassembles events split at any byte, including inside a UTF-8 character", () => {
    const bytes = new TextEncoder().encode('data: {"t":"héllo 🦀"}\n\n');
    for (let cut = 1; cut < bytes.length; cut++) {
      const evs = feedAll([bytes.slice(0, cut), bytes.slice(cut)]);
      expect(
        evs.map((e) => e.data),
        `cut at ${cut}`,
      ).to.deep.equal(['{"t":"héllo 🦀"}']);
    }
  });

  it("joins multi-line data, ignores comments and unknown fields, strips one space", () => {
    const evs = feedAll([": keep-alive\n", "id: 7\nretry: 10\n", "data:first\ndata:  second\n\n"]);
    expect(evs).to.deep.equal([{ event: "message", data: "first\n second" }]);
  });

  it("keeps the event field and skips events without data", () => {
    const evs = feedAll(["event: error\ndata: boom\n\nevent: ping\n\n"]);
    expect(evs).to.deep.equal([{ event: "error", data: "boom" }]);
  });

  it("drops an event left open at the end of the stream", () => {
    const p = new SseParser();
    expect(p.push("data: partial")).to.deep.equal([]);
    expect(p.end()).to.deep.equal([]);
  });

  it("refuses an event larger than its limit instead of buffering it", () => {
    const p = new SseParser(1024);
    expect(() => p.push(`data: ${"x".repeat(2000)}`)).to.throw(SseLimitError);
    const q = new SseParser(1024);
    expect(() => {
      for (let i = 0; i < 100; i++) q.push(`data: ${"y".repeat(50)}\n`);
    }).to.throw(SseLimitError);
  });
});
