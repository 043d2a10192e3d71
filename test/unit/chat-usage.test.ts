import { expect } from "chai";
import { Registry } from "prom-client";
import { silentLogger } from "../../common/logger.js";
import { Encodings } from "../../common/tokens/encodings.js";
import { ChatRequest } from "../../gen/tensorclaw/v1/chat.js";
import type { RequestBilling } from "../../router/api/chat-billing.js";
import {
  creditedUsage,
  type FinishedRequest,
  handOffUsage,
  ledgerOutcome,
} from "../../router/api/chat-usage.js";
import { costMicros } from "../../router/billing/money.js";
import { ApiMetrics } from "../../router/metrics.js";
import type { InferenceCall } from "../../router/tunnel/types.js";
import type { UsageEvent } from "../../router/usage/event.js";

/** A finished call as the chat handler hands it over: what was relayed, nothing live. */
function relayed(content: string): InferenceCall {
  return {
    events: (async function* () {})(),
    relayedBytes: () => Buffer.byteLength(content),
    relayedText: () => ({ content, reasoning: "", tools: "" }),
    relayedChoices: () => [{ content, reasoning: "", tools: "", bytes: Buffer.byteLength(content) }],
    cancel: () => {},
  };
}

describe("chat usage: what a finished request credits and records", () => {
  const encodings = new Encodings();
  let count: (t: string) => number;
  before(async () => {
    count = await encodings.load("o200k_base");
  });

  const request = (over: Partial<FinishedRequest>): FinishedRequest => ({
    requestId: "r1",
    model: "m",
    startedAtMs: 1,
    prompt: { bytes: 11, messages: 1 },
    maxTokens: 100,
    call: relayed("a fine answer, relayed in full"),
    minerHotkey: "5Miner",
    reported: { promptTokens: 9_000, completionTokens: 9_000 },
    outcome: "completed",
    lastAttempt: "served",
    chat: ChatRequest.fromPartial({ messages: [{ role: "user", content: "hello there" }] }),
    count,
    ...over,
  });

  function handOff(r: FinishedRequest) {
    const events: UsageEvent[] = [];
    const d = {
      usage: { record: (e: UsageEvent) => void events.push(e) },
      metrics: new ApiMetrics(new Registry(), { sessions: () => [] }),
      logger: silentLogger(),
      clock: () => 42,
    };
    const h = handOffUsage(d, r, undefined);
    return { credited: h.credited, recorded: h.recorded, events };
  }

  it("credits a completed request at the router's count (plus allowances), not the inflated report", () => {
    const u = creditedUsage(request({}));
    expect(u.completionTokens).to.equal(count("a fine answer, relayed in full") + 1);
    expect(u.clamped).to.equal(true);
    const { events } = handOff(request({}));
    expect(events).to.have.length(1);
    expect(events[0]).to.include({ outcome: "completed", completionTokens: u.completionTokens });
  });

  for (const [name, lastAttempt, ledger] of [
    [
      "a broken stream or a protocol violation (credit overrun, malformed frame)",
      "failed_after_output",
      "failed",
    ],
    ["a deadline cut", "deadline", "cut"],
    ["a failure before output", "failed_before_output", "failed_early"],
  ] as const) {
    it(`credits nothing for ${name}, and records the failure for the success rate`, () => {
      const r = request({ outcome: "failed", lastAttempt });
      expect(creditedUsage(r)).to.deep.include({ promptTokens: 0, completionTokens: 0 });
      const { credited, events } = handOff(r);
      expect(credited).to.deep.include({ promptTokens: 0, completionTokens: 0 });
      expect(events).to.deep.equal([
        {
          requestId: "r1",
          minerHotkey: "5Miner",
          model: "m",
          promptTokens: 0,
          completionTokens: 0,
          outcome: ledger,
          startedAtMs: 1,
          finishedAtMs: 42,
        },
      ]);
    });
  }

  it("credits what was relayed before a user's cancel, and nothing when nothing was", () => {
    const cut = creditedUsage(
      request({ outcome: "cancelled", lastAttempt: "cancelled", reported: undefined }),
    );
    expect(cut.completionTokens).to.equal(count("a fine answer, relayed in full"));
    const nothing = request({
      outcome: "cancelled",
      lastAttempt: "cancelled",
      call: relayed(""),
      reported: undefined,
    });
    expect(creditedUsage(nothing)).to.deep.include({ promptTokens: 0, completionTokens: 0 });
    expect(handOff(nothing).events).to.deep.equal([]);
  });

  it("does not count a refused request or a user's cancel against the miner", () => {
    expect(ledgerOutcome("refused")).to.equal(undefined);
    expect(ledgerOutcome("cancelled")).to.equal(undefined);
    expect(handOff(request({ outcome: "failed", lastAttempt: "refused" })).events).to.deep.equal([]);
  });

  describe("billing on the final event", () => {
    // $2 per million prompt tokens, $10 per million completion tokens.
    const prices = { pricePromptPerM: 2, priceCompletionPerM: 10 };
    const metered: RequestBilling = { keyId: "key_a", metered: true, paid: true, prices, holdMicros: 1000 };
    const timing = { ttftMs: 12, finishReason: "stop", streamed: true };

    it("carries the key, the cost of the credited tokens, the hold and the timing, and says it was paid", () => {
      const { events, recorded, credited } = handOff(request({ billing: metered, ...timing }));
      expect(recorded).to.equal(true);
      const cost = costMicros(credited.promptTokens, credited.completionTokens, 2, 10);
      expect(cost).to.be.above(0).and.below(1000);
      expect(events[0]?.paid).to.equal(true);
      expect(events[0]?.billing).to.deep.equal({
        keyId: "key_a",
        costMicros: cost,
        holdMicros: 1000,
        ttftMs: 12,
        finishReason: "stop",
        streamed: true,
      });
    });

    it("never charges a metered key more than its hold, and charges an unmetered key the full cost", () => {
      const tight = { ...metered, holdMicros: 1 };
      expect(handOff(request({ billing: tight })).events[0]?.billing?.costMicros).to.equal(1);
      const free: RequestBilling = { keyId: "key_b", metered: false, paid: false, prices, holdMicros: 0 };
      const { events, credited } = handOff(request({ billing: free }));
      expect(events[0]?.paid).to.equal(false);
      expect(events[0]?.billing?.costMicros).to.equal(
        costMicros(credited.promptTokens, credited.completionTokens, 2, 10),
      );
    });

    it("bills a failed request's final event nothing, so its hold is settled and its record written", () => {
      const { events, recorded } = handOff(
        request({ outcome: "failed", lastAttempt: "failed_after_output", billing: metered }),
      );
      expect(recorded).to.equal(true);
      expect(events[0]?.billing).to.include({ keyId: "key_a", costMicros: 0, holdMicros: 1000 });
    });

    it("reports no final event for a request cancelled before any output (its hold must be released)", () => {
      const r = request({
        outcome: "cancelled",
        lastAttempt: "cancelled",
        call: relayed(""),
        reported: undefined,
        billing: metered,
      });
      expect(handOff(r)).to.deep.include({ recorded: false, events: [] });
      expect(handOff(request({ call: undefined, outcome: undefined, billing: metered })).recorded).to.equal(
        false,
      );
    });

    it("leaves events of requests without a key as they were", () => {
      const { events } = handOff(request({}));
      expect(events[0]).not.to.have.property("billing");
      expect(events[0]).not.to.have.property("paid");
    });
  });
});
