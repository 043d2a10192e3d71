import type { Clock } from "../../common/clock.js";
import type { TokenCount } from "../../common/tokens/encodings.js";
import { type Embedding, FinishReason, type TokenLogprob } from "../../gen/tensorclaw/v1/chat.js";
import { RequestErrorCode } from "../../gen/tensorclaw/v1/tunnel.js";
import { carriesToken } from "../routing/first-token.js";
import type { InferenceCall, RelayedText } from "../tunnel/types.js";

/** The seed's liveness rule: this many answer tokens within LIVENESS_MS. */
export const LIVENESS_TOKENS = 5;
/** The liveness deadline (probe.proto): the router's own, whatever a validator asks. */
export const LIVENESS_MS = 8000;
/**
 * The Cancel reason a user's disconnect sends (router/api/chat.ts). A probe
 * cut or given up must look exactly like it; an integration test holds the
 * two equal.
 */
export const USER_DISCONNECT_REASON = "client disconnected";
/** Most assistant text a probe answer keeps (UTF-16 code units; the rest is dropped). */
export const MAX_PROBE_CONTENT_CHARS = 256 * 1024;
/** Most logprob entries a probe answer keeps. */
export const MAX_PROBE_LOGPROBS = 8192;
/** Most alternatives kept per logprob entry (the OpenAI API's own ceiling). */
export const MAX_TOP_LOGPROBS = 20;
/** Most characters of token text kept over all logprob entries. */
export const MAX_PROBE_LOGPROB_CHARS = 512 * 1024;

/** How one probe is watched. */
export interface ProbeRunOptions {
  /** Cancel (as a user disconnect) once this many answer tokens arrived; 0 relays everything. */
  readonly cutAfterTokens: number;
  /** Liveness deadline from sending, ms (LIVENESS_MS in production). */
  readonly livenessMs: number;
  /** The model's catalogue tokenizer: what the router counts tokens with. */
  readonly count: TokenCount;
  /** Monotonic ms, for the figures. */
  readonly now: () => number;
  /** Timers (the liveness deadline). */
  readonly clock: Clock;
}

/** What one relayed probe came to (the ProbeResponse fields it decides). */
export interface ProbeRunResult {
  readonly ok: boolean;
  readonly ttftMs: number;
  readonly latencyMs: number;
  readonly completionTokens: number;
  readonly error: string;
  readonly content: string;
  readonly finishReason: FinishReason;
  readonly logprobs: TokenLogprob[];
  readonly cut: boolean;
  /** When liveness was met, ms from sending; 0 when it was not. */
  readonly livenessMs: number;
  /** An embeddings probe's vectors in input order, when they were kept (probe-kinds.ts); else empty. */
  readonly embeddings: Embedding[];
}

/** Answer tokens of the relayed text, counted as the router counts a completion (token-credit.ts). */
function answerTokens(text: RelayedText, count: TokenCount): number {
  return count(text.content) + count(text.reasoning) + count(text.tools);
}

/**
 * Watches the relayed answer's token count against a goal without
 * re-tokenizing the whole answer on every chunk: a token is at least one
 * UTF-8 byte, so while the bytes relayed cannot hold the missing tokens,
 * counting is skipped. That keeps a long cut to O(n log n) work. The skip
 * is only sound while goals do not decrease: a probe asks for its liveness
 * goal, then for its cut, which is never smaller.
 */
class TokenGoal {
  #nextCheckBytes = 0;

  constructor(
    private readonly call: InferenceCall,
    private readonly count: TokenCount,
  ) {}

  /** Whether the answer relayed so far has at least `goal` tokens. */
  reached(goal: number): boolean {
    const bytes = this.call.relayedBytes();
    if (bytes < this.#nextCheckBytes) return false;
    const n = answerTokens(this.call.relayedText(), this.count);
    if (n >= goal) return true;
    this.#nextCheckBytes = bytes + (goal - n);
    return false;
  }
}

/** Copies logprob entries into `into` within the caps; returns the characters kept. */
function keepLogprobs(into: TokenLogprob[], from: readonly TokenLogprob[], chars: number): number {
  for (const lp of from) {
    if (into.length >= MAX_PROBE_LOGPROBS) return chars;
    const top = lp.topLogprobs.slice(0, MAX_TOP_LOGPROBS);
    const size = lp.token.length + top.reduce((n, t) => n + t.token.length, 0);
    if (chars + size > MAX_PROBE_LOGPROB_CHARS) return chars;
    chars += size;
    into.push({ token: lp.token, logprob: lp.logprob, topLogprobs: top.map((t) => ({ ...t })) });
  }
  return chars;
}

/**
 * Relays one dispatched probe and judges its liveness (probe.proto):
 *
 * - it is live once the first min(5, N) answer tokens arrived (N the cut,
 *   when there is one), or once the miner finished cleanly with a shorter,
 *   non-empty answer — within `livenessMs` of sending, with no error before;
 * - not live by `livenessMs`: cancelled as a user disconnect, failed;
 * - with a cut N > 0: cancelled as a user disconnect once N tokens arrived,
 *   and ok as soon as it was live;
 * - without a cut: the whole answer is relayed, and ok also needs a clean
 *   finish (before the request's deadline, which the call itself enforces).
 *
 * `startedMs` is `now()` just before the request frame was queued.
 */
export async function runProbe(
  call: InferenceCall,
  startedMs: number,
  o: ProbeRunOptions,
): Promise<ProbeRunResult> {
  const cutAt = o.cutAfterTokens;
  const livenessGoal = cutAt > 0 ? Math.min(LIVENESS_TOKENS, cutAt) : LIVENESS_TOKENS;
  const goal = new TokenGoal(call, o.count);
  let live = false;
  let lateForLiveness = false;
  let cut = false;
  let clean = false;
  let ttftMs: number | undefined;
  let liveMs: number | undefined;
  let endedMs: number | undefined;
  let error = "";
  let content = "";
  let finishReason = FinishReason.FINISH_REASON_UNSPECIFIED;
  const logprobs: TokenLogprob[] = [];
  let logprobChars = 0;
  const livenessTimer = o.clock.setTimeout(() => {
    if (live) return;
    lateForLiveness = true;
    endedMs = o.now();
    call.cancel(USER_DISCONNECT_REASON);
  }, o.livenessMs);
  try {
    for await (const e of call.events) {
      if (e.type === "chunk") {
        const c = e.chunk;
        if (ttftMs === undefined && carriesToken(c)) ttftMs = o.now() - startedMs;
        if (c.contentDelta !== "" && content.length < MAX_PROBE_CONTENT_CHARS) {
          content += c.contentDelta.slice(0, MAX_PROBE_CONTENT_CHARS - content.length);
        }
        if (c.logprobs.length > 0) logprobChars = keepLogprobs(logprobs, c.logprobs, logprobChars);
        if (c.finishReason !== FinishReason.FINISH_REASON_UNSPECIFIED) finishReason = c.finishReason;
        if (!live && goal.reached(livenessGoal)) {
          live = true;
          liveMs = o.now() - startedMs;
        }
        if (cutAt > 0 && live && goal.reached(cutAt)) {
          cut = true;
          endedMs = o.now();
          call.cancel(USER_DISCONNECT_REASON);
        }
      } else if (e.type === "usage") {
        clean = true;
        endedMs = o.now();
        // An answer shorter than the goal is live once it finished cleanly.
        if (!live && !lateForLiveness && answerTokens(call.relayedText(), o.count) > 0) {
          live = true;
          liveMs = o.now() - startedMs;
        }
      } else {
        endedMs ??= o.now();
        // Our own cancel (cut or liveness deadline) is not the miner's failure.
        const ours = e.code === RequestErrorCode.REQUEST_ERROR_CODE_CANCELLED && (cut || lateForLiveness);
        if (!ours) error = `${RequestErrorCode[e.code] ?? e.code}: ${e.message}`;
      }
    }
  } finally {
    o.clock.clearTimeout(livenessTimer);
  }
  const completionTokens = answerTokens(call.relayedText(), o.count);
  // With a cut, liveness is all that is judged: an error after the liveness tokens is past
  // the point where a liveness probe's user would have gone.
  const ok = live && (cutAt > 0 || (clean && error === ""));
  const failure = ok
    ? ""
    : lateForLiveness
      ? completionTokens === 0
        ? "no token within the liveness deadline"
        : `fewer than ${livenessGoal} tokens within the liveness deadline`
      : error !== ""
        ? error
        : completionTokens === 0
          ? "no token"
          : "no clean finish";
  return {
    ok,
    ttftMs: ttftMs ?? 0,
    latencyMs: Math.max(0, (endedMs ?? o.now()) - startedMs),
    completionTokens: Math.min(completionTokens, 0xffff_ffff),
    error: failure,
    content,
    finishReason: cut || !ok ? FinishReason.FINISH_REASON_UNSPECIFIED : finishReason,
    logprobs,
    cut,
    livenessMs: ok ? (liveMs ?? 0) : 0,
    embeddings: [],
  };
}
