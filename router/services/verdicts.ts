import { TensorClawError } from "../../common/errors.js";
import { isValidHotkey } from "../../common/identity.js";
import type { Logger } from "../../common/logger.js";
import {
  type ModelVerdict,
  type ReportVerdictsRequest,
  type ReportVerdictsResponse,
  Verdict,
} from "../../gen/tensorclaw/v1/probe.js";

/** Most verdicts one ReportVerdicts call may carry (probe.proto). */
export const MAX_VERDICTS_PER_CALL = 4096;
/**
 * Most (hotkey, model) pairs kept excluded. Far above a subnet's 256 uids
 * times a catalogue's models; only a runaway validator reaches it, and then
 * the oldest exclusions go first, so memory stays bounded.
 */
export const MAX_EXCLUDED_PAIRS = 65_536;
/** Longest model id a verdict may name (the longest a user may ask for). */
const MAX_MODEL_CHARS = 256;

/** One change a call made: a pair entering or leaving the exclusion. */
export interface VerdictChange {
  readonly hotkey: string;
  readonly model: string;
  /** True: no user traffic for this pair now; false: routed again. */
  readonly excluded: boolean;
  readonly verdict: Verdict;
  readonly detail: string;
}

/**
 * Checks a whole call before any of it is applied (all or nothing). Throws
 * `invalid_request` naming the first bad entry: more than
 * MAX_VERDICTS_PER_CALL verdicts, a hotkey that is not SS58, an empty or
 * oversized model id, or a verdict that is not VERIFIED, FAILED or
 * UNVERIFIABLE (including values this router does not know).
 */
export function validateVerdicts(verdicts: readonly ModelVerdict[]): void {
  if (verdicts.length > MAX_VERDICTS_PER_CALL) {
    throw new TensorClawError(
      "invalid_request",
      `at most ${MAX_VERDICTS_PER_CALL} verdicts per call, got ${verdicts.length}`,
      { param: "verdicts" },
    );
  }
  // A call names few distinct hotkeys many times (one per model): check each once.
  const valid = new Set<string>();
  verdicts.forEach((v, i) => {
    if (!valid.has(v.hotkey)) {
      if (!isValidHotkey(v.hotkey)) {
        throw new TensorClawError("invalid_request", `verdicts[${i}].hotkey is not an SS58 address`, {
          param: `verdicts[${i}].hotkey`,
        });
      }
      valid.add(v.hotkey);
    }
    if (v.model === "" || v.model.length > MAX_MODEL_CHARS) {
      throw new TensorClawError(
        "invalid_request",
        `verdicts[${i}].model must be a model id of 1 to ${MAX_MODEL_CHARS} characters`,
        { param: `verdicts[${i}].model` },
      );
    }
    if (
      v.verdict !== Verdict.VERDICT_VERIFIED &&
      v.verdict !== Verdict.VERDICT_FAILED &&
      v.verdict !== Verdict.VERDICT_UNVERIFIABLE
    ) {
      throw new TensorClawError(
        "invalid_request",
        `verdicts[${i}].verdict must be VERIFIED, FAILED or UNVERIFIABLE (got ${v.verdict})`,
        { param: `verdicts[${i}].verdict` },
      );
    }
  });
}

/** Validators whose votes are kept per pair (the most recent ones; a subnet has at most 64 permits). */
export const MAX_VOTERS_PER_PAIR = 64;

/**
 * The validators' verdicts as this router applies them. Each validator's
 * latest verdict on a (hotkey, model) is its vote: FAILED against, VERIFIED
 * for, UNVERIFIABLE no vote. The pair is out of user routing while the
 * votes against outnumber the votes for, so one validator alone decides
 * while it is the only one that judged the pair, and no single validator
 * can bar a miner that another one verified (nor lift a bar that two
 * others voted). Probes are not affected: a failed miner must be able to
 * pass again.
 *
 * In memory and per router: with several router replicas a validator sends
 * its verdicts to every replica (validator/router-client.ts), so each keeps
 * the same exclusions; a restarted router has none until the next report.
 */
export class VerdictBook {
  /** "hotkey\nmodel" → the pair, in exclusion order (oldest first, for eviction). */
  readonly #excluded = new Map<string, { readonly hotkey: string; readonly model: string }>();
  /** model → excluded hotkeys: what routing reads on every request. */
  readonly #byModel = new Map<string, Set<string>>();
  /** "hotkey\nmodel" → validator → its vote (true: FAILED), oldest voter first. */
  readonly #votes = new Map<string, Map<string, boolean>>();

  /**
   * Applies a validated call from `validator` (see validateVerdicts; this
   * throws the same way) in order, so a later entry for the same pair
   * replaces that validator's earlier vote. Returns the changes.
   */
  apply(verdicts: readonly ModelVerdict[], validator: string): VerdictChange[] {
    validateVerdicts(verdicts);
    const changes: VerdictChange[] = [];
    for (const v of verdicts) {
      const key = `${v.hotkey}\n${v.model}`;
      const exclude = this.#vote(key, validator, v.verdict);
      if (exclude === this.#excluded.has(key)) continue;
      if (exclude) this.#add(key, v.hotkey, v.model);
      else this.#remove(key, v.hotkey, v.model);
      changes.push({
        hotkey: v.hotkey,
        model: v.model,
        excluded: exclude,
        verdict: v.verdict,
        detail: v.detail,
      });
    }
    return changes;
  }

  /** Whether user traffic for `model` must not go to `hotkey`. */
  isExcluded(hotkey: string, model: string): boolean {
    return this.#byModel.get(model)?.has(hotkey) ?? false;
  }

  /** The hotkeys excluded for `model` (a live view: do not keep it). */
  excludedHotkeys(model: string): ReadonlySet<string> {
    return this.#byModel.get(model) ?? NONE;
  }

  /** Pairs excluded now. */
  get size(): number {
    return this.#excluded.size;
  }

  /** Every excluded pair, oldest exclusion first. */
  pairs(): { hotkey: string; model: string }[] {
    return [...this.#excluded.values()].map((p) => ({ ...p }));
  }

  /** Records `validator`'s vote on a pair; whether the pair is now out of routing. */
  #vote(key: string, validator: string, verdict: Verdict): boolean {
    let votes = this.#votes.get(key);
    if (votes === undefined) {
      if (verdict === Verdict.VERDICT_UNVERIFIABLE) return false;
      if (this.#votes.size >= MAX_EXCLUDED_PAIRS) {
        // Bounded memory: the pair voted on least recently goes.
        this.#votes.delete(this.#votes.keys().next().value as string);
      }
      votes = new Map();
    }
    // Re-inserted, so the map keeps pairs and voters in the order they were last heard.
    this.#votes.delete(key);
    votes.delete(validator);
    if (verdict !== Verdict.VERDICT_UNVERIFIABLE) {
      votes.set(validator, verdict === Verdict.VERDICT_FAILED);
      if (votes.size > MAX_VOTERS_PER_PAIR) votes.delete(votes.keys().next().value as string);
    }
    if (votes.size > 0) this.#votes.set(key, votes);
    let against = 0;
    for (const failed of votes.values()) if (failed) against++;
    return against > votes.size - against;
  }

  #add(key: string, hotkey: string, model: string): void {
    if (this.#excluded.size >= MAX_EXCLUDED_PAIRS) {
      const [oldestKey, oldest] = this.#excluded.entries().next().value as [
        string,
        { hotkey: string; model: string },
      ];
      this.#remove(oldestKey, oldest.hotkey, oldest.model);
    }
    this.#excluded.set(key, { hotkey, model });
    let set = this.#byModel.get(model);
    if (set === undefined) {
      set = new Set();
      this.#byModel.set(model, set);
    }
    set.add(hotkey);
  }

  #remove(key: string, hotkey: string, model: string): void {
    this.#excluded.delete(key);
    const set = this.#byModel.get(model);
    set?.delete(hotkey);
    if (set?.size === 0) this.#byModel.delete(model);
  }
}

const NONE: ReadonlySet<string> = new Set();

/**
 * ReportVerdicts: applies one validator's call to the book and logs every
 * change with who sent it and why. Throws `invalid_request` (INVALID_ARGUMENT)
 * for a bad call, which then changes nothing.
 */
export function reportVerdicts(
  book: VerdictBook,
  req: ReportVerdictsRequest,
  validator: string,
  logger: Logger,
): ReportVerdictsResponse {
  const changes = book.apply(req.verdicts, validator);
  for (const c of changes) {
    logger.info(
      { validator, hotkey: c.hotkey, model: c.model, verdict: Verdict[c.verdict], detail: c.detail },
      c.excluded
        ? "verdict FAILED: no user traffic for this miner's model"
        : "verdict lifts the exclusion: the miner's model is routed again",
    );
  }
  return { excluded: book.size };
}
