import { expect } from "chai";
import { TensorClawError } from "../../common/errors.js";
import { type ModelVerdict, Verdict } from "../../gen/tensorclaw/v1/probe.js";
import { RoutingBook } from "../../router/routing/book.js";
import {
  MAX_EXCLUDED_PAIRS,
  MAX_VERDICTS_PER_CALL,
  reportVerdicts,
  VerdictBook,
} from "../../router/services/verdicts.js";
import type { SessionView } from "../../router/tunnel/types.js";
import { seededRandom } from "../support/api-random.js";
import { throwawayHotkey } from "../support/keys.js";
import { memoryLogger } from "../support/memory-logger.js";

const v = (hotkey: string, model: string, verdict: Verdict, detail = ""): ModelVerdict => ({
  hotkey,
  model,
  verdict,
  detail,
});
/** The validator that sends a call (any id: the book only tells validators apart). */
const V1 = "validator-1";
const V2 = "validator-2";
const V3 = "validator-3";
const { VERDICT_FAILED: FAILED, VERDICT_VERIFIED: VERIFIED, VERDICT_UNVERIFIABLE: UNVERIFIABLE } = Verdict;

function refused(fn: () => unknown): TensorClawError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(TensorClawError);
    return err as TensorClawError;
  }
  return expect.fail("expected invalid_request");
}

describe("verdict book: validators' verdicts and the user routing they allow", () => {
  let a: string;
  let b: string;
  before(async () => {
    [a, b] = await Promise.all([throwawayHotkey(), throwawayHotkey()]).then((ks) => ks.map((k) => k.address));
  });

  it("excludes a FAILED (hotkey, model) and nothing else", () => {
    const book = new VerdictBook();
    const changes = book.apply([v(a, "m1", FAILED, "mean logprob -9.1")], V1);
    expect(changes).to.deep.equal([
      { hotkey: a, model: "m1", excluded: true, verdict: FAILED, detail: "mean logprob -9.1" },
    ]);
    expect(book.isExcluded(a, "m1")).to.equal(true);
    expect(book.isExcluded(a, "m2")).to.equal(false);
    expect(book.isExcluded(b, "m1")).to.equal(false);
    expect([...book.excludedHotkeys("m1")]).to.deep.equal([a]);
    expect(book.size).to.equal(1);
  });

  it("lets the same validator's VERIFIED or UNVERIFIABLE lift it; its latest verdict counts, within a call too", () => {
    const book = new VerdictBook();
    book.apply([v(a, "m1", FAILED), v(b, "m1", FAILED)], V1);
    expect(
      book.apply([v(a, "m1", VERIFIED), v(b, "m1", UNVERIFIABLE)], V1).map((c) => c.excluded),
    ).to.deep.equal([false, false]);
    expect(book.size).to.equal(0);
    expect(book.excludedHotkeys("m1").size).to.equal(0);
    // One call: failed, then verified, then failed again for the same pair.
    book.apply([v(a, "m1", FAILED), v(a, "m1", VERIFIED), v(a, "m1", FAILED)], V1);
    expect(book.isExcluded(a, "m1")).to.equal(true);
    // Repeating a verdict is no change.
    expect(book.apply([v(a, "m1", FAILED), v(b, "m2", VERIFIED)], V1)).to.deep.equal([]);
  });

  it("counts each validator's latest verdict as a vote: out while votes against outnumber votes for", () => {
    const book = new VerdictBook();
    book.apply([v(a, "m1", FAILED)], V1);
    expect(book.isExcluded(a, "m1"), "one validator alone decides").to.equal(true);
    // A second validator verified it: one against, one for — no single validator bars a miner.
    expect(book.apply([v(a, "m1", VERIFIED)], V2).map((c) => c.excluded)).to.deep.equal([false]);
    // A third fails it: two against one.
    book.apply([v(a, "m1", FAILED)], V3);
    expect(book.isExcluded(a, "m1")).to.equal(true);
    // The first changes its mind: one against, two for.
    book.apply([v(a, "m1", VERIFIED)], V1);
    expect(book.isExcluded(a, "m1")).to.equal(false);
    // UNVERIFIABLE withdraws a vote: V2 and V1 abstain, V3's FAILED stands alone.
    book.apply([v(a, "m1", UNVERIFIABLE)], V2);
    book.apply([v(a, "m1", UNVERIFIABLE)], V1);
    expect(book.isExcluded(a, "m1")).to.equal(true);
    // A validator repeating its own FAILED gains nothing against another's VERIFIED.
    book.apply([v(b, "m1", FAILED), v(b, "m1", FAILED)], V1);
    book.apply([v(b, "m1", VERIFIED)], V2);
    book.apply([v(b, "m1", FAILED)], V1);
    expect(book.isExcluded(b, "m1")).to.equal(false);
  });

  it("refuses a bad call as a whole, naming the entry, and applies none of it", () => {
    const book = new VerdictBook();
    const cases: [ModelVerdict[], string][] = [
      [[v(a, "m1", FAILED), v("not-a-hotkey", "m1", FAILED)], "verdicts[1].hotkey"],
      [[v(a, "", FAILED)], "verdicts[0].model"],
      [[v(a, "x".repeat(257), FAILED)], "verdicts[0].model"],
      [[v(a, "m1", FAILED), v(a, "m1", Verdict.VERDICT_UNSPECIFIED)], "verdicts[1].verdict"],
      [[v(a, "m1", 7 as Verdict)], "verdicts[0].verdict"],
      [[v(a, "m1", Verdict.UNRECOGNIZED)], "verdicts[0].verdict"],
      [Array.from({ length: MAX_VERDICTS_PER_CALL + 1 }, () => v(a, "m1", FAILED)), "verdicts"],
    ];
    for (const [call, param] of cases) {
      const e = refused(() => book.apply(call, V1));
      expect(e.code, param).to.equal("invalid_request");
      expect(e.param).to.equal(param);
    }
    expect(book.size).to.equal(0);
    // Exactly the cap is fine.
    book.apply(
      Array.from({ length: MAX_VERDICTS_PER_CALL }, () => v(a, "m1", FAILED)),
      V1,
    );
    expect(book.size).to.equal(1);
  });

  it("stays bounded: past the cap the oldest exclusion goes", () => {
    const book = new VerdictBook();
    for (let i = 0; i < MAX_EXCLUDED_PAIRS; i += MAX_VERDICTS_PER_CALL) {
      const n = Math.min(MAX_VERDICTS_PER_CALL, MAX_EXCLUDED_PAIRS - i);
      book.apply(
        Array.from({ length: n }, (_, j) => v(a, `m${i + j}`, FAILED)),
        V1,
      );
    }
    expect(book.size).to.equal(MAX_EXCLUDED_PAIRS);
    book.apply([v(b, "new", FAILED)], V1);
    expect(book.size).to.equal(MAX_EXCLUDED_PAIRS);
    expect(book.isExcluded(a, "m0")).to.equal(false);
    expect(book.isExcluded(a, "m1")).to.equal(true);
    expect(book.isExcluded(b, "new")).to.equal(true);
  });

  it("answers ReportVerdicts with the pairs now excluded, logging each change with its validator", () => {
    const book = new VerdictBook();
    const { logger, lines } = memoryLogger();
    const res = reportVerdicts(
      book,
      { verdicts: [v(a, "m1", FAILED, "why"), v(b, "m1", VERIFIED)] },
      "5Val",
      logger,
    );
    expect(res).to.deep.equal({ excluded: 1 });
    expect(lines()).to.have.length(1);
    expect(lines()[0]).to.deep.include({
      validator: "5Val",
      hotkey: a,
      model: "m1",
      verdict: "VERDICT_FAILED",
      detail: "why",
      msg: "verdict FAILED: no user traffic for this miner's model",
    });
    // Another validator's UNVERIFIABLE is no vote: nothing changes, nothing is logged.
    reportVerdicts(book, { verdicts: [v(a, "m1", UNVERIFIABLE, "no peers")] }, "5Other", logger);
    expect(lines()).to.have.length(1);
    // Its VERIFIED evens the votes: routed again.
    reportVerdicts(book, { verdicts: [v(a, "m1", VERIFIED, "passed")] }, "5Other", logger);
    expect(lines()[1]).to.deep.include({ validator: "5Other", hotkey: a, verdict: "VERDICT_VERIFIED" });
    expect(book.size).to.equal(0);
  });

  it("bars an excluded hotkey from the routing book's choice for that model only", () => {
    const book = new VerdictBook();
    const routing = new RoutingBook({
      now: () => 0,
      random: seededRandom(3),
      barred: (model) => book.excludedHotkeys(model),
    });
    const session = (hotkey: string): SessionView => ({
      sessionId: hotkey,
      hotkey,
      transport: "grpc",
      state: "active",
      models: ["m1", "m2"].map((id) => ({ id, maxConcurrency: 4, contextLength: 0, inFlight: 0 })),
      inFlight: 0,
      latencyMs: 1,
      connectedSinceMs: 0,
      softwareVersion: "t",
    });
    const sessions = [session(a), session(b)];
    const chosen = (model: string) =>
      new Set(Array.from({ length: 40 }, () => routing.choose(sessions, model)?.hotkey));
    expect(chosen("m1")).to.deep.equal(new Set([a, b]));
    book.apply([v(a, "m1", FAILED)], V1);
    expect(chosen("m1")).to.deep.equal(new Set([b]));
    expect(chosen("m2")).to.deep.equal(new Set([a, b]));
    // The caller's own exclusions still apply beside the verdicts.
    expect(routing.choose(sessions, "m1", new Set([b]))).to.equal(undefined);
    book.apply([v(a, "m1", VERIFIED)], V1);
    expect(chosen("m1")).to.deep.equal(new Set([a, b]));
  });
});
