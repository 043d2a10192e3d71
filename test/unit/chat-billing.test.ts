import { expect } from "chai";
import { silentLogger } from "../../common/logger.js";
import { Encodings } from "../../common/tokens/encodings.js";
import { countPromptTokens } from "../../common/tokens/prompt.js";
import { ChatRequest } from "../../gen/tensorclaw/v1/chat.js";
import { insufficientQuota, KeyBilling, worstCaseTokens } from "../../router/api/chat-billing.js";
import { EmbeddedBilling } from "../../router/billing/embedded.js";
import { WatchedBilling } from "../support/billing-watch.js";

const LEDGER = { bucketMs: 60_000, retentionMs: 86_400_000 };
const T0 = 1_750_000_000_000;

describe("chat billing: the hold's worst case and the key settings cache", () => {
  it("bounds a request by the router's prompt count plus allowances and max_tokens plus one", async () => {
    const count = await new Encodings().load("o200k_base");
    const chat = ChatRequest.fromPartial({
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "How many moons has Mars?" },
      ],
      maxTokens: 40,
    });
    const counted = countPromptTokens(chat, count);
    expect(worstCaseTokens(chat, { bytes: 999, messages: 2 }, 40, 1, count)).to.deep.equal({
      promptTokens: counted + 8 * 2 + 16,
      completionTokens: 41,
      countedPrompt: counted,
    });
    // Without the tokenizer: the bound by bytes the credit falls back to.
    expect(worstCaseTokens(chat, { bytes: 33, messages: 2 }, 40, 1, undefined)).to.deep.equal({
      promptTokens: 33 + 8 * 2 + 16,
      completionTokens: 41,
      countedPrompt: undefined,
    });
    // n choices may each run to the ceiling: the hold is n times the completion worst case.
    expect(worstCaseTokens(chat, { bytes: 33, messages: 2 }, 40, 3, undefined).completionTokens).to.equal(
      3 * 41,
    );
  });

  it("says what is short in a 402: credit or the daily budget, with what is left", () => {
    const credit = insufficientQuota({ ok: false, reason: "credits", availableMicros: 1_500 }, 2_000_123);
    expect(credit.code).to.equal("insufficient_quota");
    expect(credit.message).to.contain("up to $2.000123").and.contain("$0.001500 of credit available");
    const budget = insufficientQuota({ ok: false, reason: "budget", availableMicros: -5 }, 10);
    expect(budget.message).to.contain("$0.000000 of this key's daily budget is left today (UTC)");
  });

  it("answers a key's settings from memory for a second (synchronously), asking the store once per burst", async () => {
    const store = new WatchedBilling(await EmbeddedBilling.open({ ...LEDGER, nowMs: T0 }));
    await store.configure("key_metered", { metered: true, budgetDailyMicros: null }, T0);
    const kb = new KeyBilling(store, silentLogger(), 1000);
    const burst = [
      kb.settings("key_metered", T0),
      kb.settings("key_metered", T0),
      kb.settings("key_open", T0),
    ];
    expect(burst[0]).to.be.instanceOf(Promise);
    expect(await Promise.all(burst)).to.deep.equal([
      { metered: true, budgetDailyMicros: null },
      { metered: true, budgetDailyMicros: null },
      undefined,
    ]);
    expect(store.of("settings").map((c) => c.keyId)).to.deep.equal(["key_metered", "key_open"]);
    // Fresh: plain values, no store call.
    expect(kb.settings("key_metered", T0 + 999)).to.deep.equal({ metered: true, budgetDailyMicros: null });
    expect(kb.settings("key_open", T0 + 999)).to.equal(undefined);
    expect(store.of("settings")).to.have.length(2);
    // A second on, a change made elsewhere (the CLI metering the key) is seen.
    await store.configure("key_open", { metered: true, budgetDailyMicros: 7 }, T0);
    expect(await kb.settings("key_open", T0 + 1000)).to.deep.equal({ metered: true, budgetDailyMicros: 7 });
    expect(store.of("settings")).to.have.length(3);
    await store.close();
  });
});
