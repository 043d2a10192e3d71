import { expect } from "chai";
import { MAX_LOGPROBS_PER_CHUNK } from "../../common/chunk-logprobs.js";
import { MAX_TIMER_MS } from "../../common/clock.js";
import { RequestErrorCode, type ResponseChunk } from "../../gen/tensorclaw/v1/tunnel.js";
import { type CallHost, TunnelCall } from "../../router/tunnel/call.js";
import type { TunnelEvent } from "../../router/tunnel/types.js";
import { FakeClock } from "../support/fake-clock.js";

function chunk(text: string): ResponseChunk {
  return {
    requestId: 1,
    contentDelta: text,
    toolCalls: [],
    finishReason: 0,
    choiceIndex: 0,
    systemFingerprint: "",
    embeddings: [],
    reasoningDelta: "",
    logprobs: [],
  };
}

/** A host that records what the call asks of its session. */
function recordingHost() {
  const log = { cancels: [] as string[], credits: [] as number[], ended: 0, released: 0 };
  const host: CallHost = {
    sendCancel: (_id, reason) => log.cancels.push(reason),
    sendCredit: (_id, bytes) => log.credits.push(bytes),
    ended: () => {
      log.ended++;
    },
    released: () => {
      log.released++;
    },
  };
  return { host, log };
}

async function drain(call: TunnelCall): Promise<TunnelEvent[]> {
  const out: TunnelEvent[] = [];
  for await (const e of call.events) out.push(e);
  return out;
}

describe("tunnel call (per-request stream and credit)", () => {
  it("delivers chunks then exactly one usage event, and counts relayed bytes on delivery", async () => {
    const { host, log } = recordingHost();
    const call = new TunnelCall(1, "m", host, { initialCreditBytes: 100, cancelGraceMs: 1000 });
    call.onChunk(chunk("héllo"));
    call.onChunk(chunk("!"));
    expect(call.relayedBytes()).to.equal(0);
    call.onUsage(3n, 2n);
    call.onUsage(9n, 9n); // a second terminal frame is ignored
    const events = await drain(call);
    expect(events.map((e) => e.type)).to.deep.equal(["chunk", "chunk", "usage"]);
    expect(events[2]).to.deep.equal({ type: "usage", promptTokens: 3, completionTokens: 2 });
    expect(call.relayedBytes()).to.equal(7);
    expect(log).to.deep.include({ ended: 1, released: 1 });
  });

  it("charges logprob tokens to credit but not to the relayed answer bytes", async () => {
    const { host, log } = recordingHost();
    const call = new TunnelCall(1, "m", host, { initialCreditBytes: 20, cancelGraceMs: 1000 });
    const lp = [{ token: "abcd", logprob: -1, topLogprobs: [{ token: "abcde", logprob: -2 }] }];
    call.onChunk({ ...chunk("abcd"), logprobs: lp }); // 4 bytes of answer, 13 of credit
    const first = await call.events[Symbol.asyncIterator]().next();
    expect(first.value).to.deep.include({ type: "chunk" });
    expect(call.relayedBytes()).to.equal(4);
    expect(call.relayedText().content).to.equal("abcd");
    // 13 consumed of a 20-byte window passes the half-window mark: all 13 come back.
    expect(log.credits).to.deep.equal([13]);
  });

  it("keeps what each choice relayed apart, and charges the fingerprint to credit only", async () => {
    const { host, log } = recordingHost();
    const call = new TunnelCall(1, "m", host, { initialCreditBytes: 20, cancelGraceMs: 1000, choices: 2 });
    call.onChunk({ ...chunk("ab"), systemFingerprint: "fp_12345" }); // 2 bytes of answer, 10 of credit
    await call.events[Symbol.asyncIterator]().next();
    // 2 bytes of text + 8 of fingerprint reach half the 20-byte window: all 10 come back.
    expect(log.credits).to.deep.equal([10]);
    call.onChunk({ ...chunk("xyz"), choiceIndex: 1 });
    call.onChunk(chunk("c"));
    call.onUsage(1n, 6n);
    const events = await drain(call);
    expect(events.map((e) => e.type)).to.deep.equal(["chunk", "chunk", "usage"]);
    expect(call.relayedBytes()).to.equal(6);
    expect(call.relayedChoices()).to.deep.equal([
      { content: "abc", reasoning: "", tools: "", bytes: 3 },
      { content: "xyz", reasoning: "", tools: "", bytes: 3 },
    ]);
  });

  it("fails the request with PROTOCOL when a chunk names a choice it did not ask for", async () => {
    const { host, log } = recordingHost();
    const call = new TunnelCall(1, "m", host, { initialCreditBytes: 100, cancelGraceMs: 1000, choices: 2 });
    call.onChunk(chunk("fine"));
    call.onChunk({ ...chunk("extra"), choiceIndex: 2 });
    const events = await drain(call);
    expect(events.map((e) => e.type)).to.deep.equal(["chunk", "error"]);
    expect(events[1]).to.deep.include({ code: RequestErrorCode.REQUEST_ERROR_CODE_PROTOCOL });
    expect(log.cancels).to.deep.equal(["choice out of range"]);
    expect(call.relayedText().content).to.equal("fine");
  });

  it("counts logprob tokens against the credit window", () => {
    const { host } = recordingHost();
    const call = new TunnelCall(1, "m", host, { initialCreditBytes: 10, cancelGraceMs: 1000 });
    call.onChunk(chunk("12345"));
    // 1 byte of text fits the 5 left, but its logprob tokens take it to 7.
    call.onChunk({
      ...chunk("x"),
      logprobs: [{ token: "x", logprob: -1, topLogprobs: [{ token: "xyzab", logprob: -2 }] }],
    });
    expect(call.terminal).to.equal(true);
  });

  it("fails a chunk with more logprobs than the protocol allows with PROTOCOL, and cancels it", async () => {
    const { host, log } = recordingHost();
    const call = new TunnelCall(1, "m", host, { initialCreditBytes: 1000, cancelGraceMs: 1000 });
    const many = Array.from({ length: MAX_LOGPROBS_PER_CHUNK + 1 }, () => ({
      token: "",
      logprob: -1,
      topLogprobs: [],
    }));
    call.onChunk(chunk("ok"));
    call.onChunk({ ...chunk(""), logprobs: many });
    const events = await drain(call);
    expect(events.map((e) => e.type)).to.deep.equal(["chunk", "error"]);
    expect(events[1]).to.deep.include({ code: RequestErrorCode.REQUEST_ERROR_CODE_PROTOCOL });
    expect(log.cancels).to.deep.equal(["too many logprobs"]);
  });

  it("grants credit back only for what the reader consumed, in half-window steps", async () => {
    const { host, log } = recordingHost();
    const call = new TunnelCall(1, "m", host, { initialCreditBytes: 100, cancelGraceMs: 1000 });
    for (let i = 0; i < 10; i++) call.onChunk(chunk("x".repeat(10)));
    expect(log.credits).to.deep.equal([]);
    const it = call.events[Symbol.asyncIterator]();
    for (let i = 0; i < 4; i++) await it.next();
    expect(log.credits).to.deep.equal([]);
    await it.next();
    expect(log.credits).to.deep.equal([50]);
    // The miner may now send 50 more bytes, and not one more.
    for (let i = 0; i < 5; i++) call.onChunk(chunk("y".repeat(10)));
    expect(call.terminal).to.equal(false);
    call.onChunk(chunk("z"));
    expect(call.terminal).to.equal(true);
    expect(log.cancels).to.deep.equal(["flow-control credit overrun"]);
  });

  it("fails an overrun with PROTOCOL after the chunks that were within credit", async () => {
    const { host } = recordingHost();
    const call = new TunnelCall(1, "m", host, { initialCreditBytes: 10, cancelGraceMs: 1000 });
    call.onChunk(chunk("12345"));
    call.onChunk(chunk("123456"));
    const events = await drain(call);
    expect(events.map((e) => e.type)).to.deep.equal(["chunk", "error"]);
    expect(events[1]).to.deep.include({ code: RequestErrorCode.REQUEST_ERROR_CODE_PROTOCOL });
  });

  it("accepts one oversize chunk only while nothing is outstanding", async () => {
    const { host } = recordingHost();
    const call = new TunnelCall(1, "m", host, { initialCreditBytes: 10, cancelGraceMs: 1000 });
    call.onChunk(chunk("x".repeat(50)));
    expect(call.terminal).to.equal(false);
    call.onChunk(chunk("y"));
    expect(call.terminal).to.equal(true);
  });

  it("bounds the number of queued zero-payload chunks", () => {
    const { host } = recordingHost();
    const call = new TunnelCall(1, "m", host, { initialCreditBytes: 4, cancelGraceMs: 1000 });
    // initial credit + 256 queued chunks are allowed; one more is abuse.
    for (let i = 0; i < 260; i++) call.onChunk(chunk(""));
    expect(call.terminal).to.equal(false);
    call.onChunk(chunk(""));
    expect(call.terminal).to.equal(true);
  });

  it("cancel drops queued chunks, ends with CANCELLED and keeps the slot until the miner answers", async () => {
    const { host, log } = recordingHost();
    const call = new TunnelCall(1, "m", host, { initialCreditBytes: 100, cancelGraceMs: 60_000 });
    call.onChunk(chunk("a"));
    call.cancel("user left");
    call.cancel("twice");
    const events = await drain(call);
    expect(events).to.deep.equal([
      { type: "error", code: RequestErrorCode.REQUEST_ERROR_CODE_CANCELLED, message: "user left" },
    ]);
    expect(log.cancels).to.deep.equal(["user left"]);
    expect(call.holdsSlot).to.equal(true);
    call.onError(RequestErrorCode.REQUEST_ERROR_CODE_CANCELLED, "ok");
    expect(call.holdsSlot).to.equal(false);
    expect(log.released).to.equal(1);
  });

  it("frees a cancelled call's slot after the grace when the miner never answers", async () => {
    const { host, log } = recordingHost();
    const clock = new FakeClock();
    const call = new TunnelCall(1, "m", host, { initialCreditBytes: 100, cancelGraceMs: 20 }, clock);
    call.cancel("bye");
    await clock.advance(19);
    expect(call.holdsSlot).to.equal(true);
    expect(log.released).to.equal(0);
    await clock.advance(1);
    expect(call.holdsSlot).to.equal(false);
    expect(log.released).to.equal(1);
    expect(clock.pending).to.equal(0);
  });

  it("breaking out of the loop cancels the request", async () => {
    const { host, log } = recordingHost();
    const call = new TunnelCall(1, "m", host, { initialCreditBytes: 100, cancelGraceMs: 1000 });
    call.onChunk(chunk("a"));
    call.onChunk(chunk("b"));
    for await (const _e of call.events) break;
    expect(log.cancels).to.deep.equal(["the caller stopped reading"]);
    expect(log.ended).to.equal(1);
  });

  it("a waiting reader wakes on the first chunk, and the deadline ends the call with TIMEOUT", async () => {
    const { host, log } = recordingHost();
    const clock = new FakeClock();
    const call = new TunnelCall(1, "m", host, { initialCreditBytes: 100, cancelGraceMs: 1000 }, clock);
    call.arm(30, undefined);
    const it = call.events[Symbol.asyncIterator]();
    const first = it.next();
    call.onChunk(chunk("late"));
    expect((await first).value).to.deep.include({ type: "chunk" });
    await clock.advance(29);
    expect(call.terminal).to.equal(false);
    await clock.advance(1);
    const end = await it.next();
    expect(end.value).to.deep.include({ type: "error", code: RequestErrorCode.REQUEST_ERROR_CODE_TIMEOUT });
    expect(log.cancels).to.deep.equal(["deadline of 30 ms exceeded"]);
  });

  it("holds a deadline too long for a timer (2^31 ms and up) for 2^31-1 ms instead of timing out at once", async () => {
    // The clock's contract (tested in clock.test.ts for the system clock) holds long delays;
    // the call must hand it the deadline as is, not a wrapped or overflowed value.
    for (const deadlineMs of [2 ** 31, 0xffffffff]) {
      const { host, log } = recordingHost();
      const clock = new FakeClock();
      const call = new TunnelCall(1, "m", host, { initialCreditBytes: 100, cancelGraceMs: 1000 }, clock);
      call.arm(deadlineMs, undefined);
      await clock.advance(MAX_TIMER_MS - 1);
      expect(call.terminal, `deadline ${deadlineMs}`).to.equal(false);
      expect(log.cancels).to.deep.equal([]);
      await clock.advance(1);
      expect(call.terminal, `deadline ${deadlineMs}`).to.equal(true);
      expect(log.cancels).to.deep.equal([`deadline of ${deadlineMs} ms exceeded`]);
    }
  });

  it("a tunnel failure delivers queued chunks first, then the error, and frees the slot at once", async () => {
    const { host, log } = recordingHost();
    const call = new TunnelCall(1, "m", host, { initialCreditBytes: 100, cancelGraceMs: 60_000 });
    call.onChunk(chunk("kept"));
    call.fail(RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_UNAVAILABLE, "tunnel closed");
    expect(log.released).to.equal(1);
    const events = await drain(call);
    expect(events.map((e) => e.type)).to.deep.equal(["chunk", "error"]);
    expect(log.cancels).to.deep.equal([]);
  });
});
