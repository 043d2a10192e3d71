// Probe overhead per miner per day at the validator's defaults, and the
// validator's own CPU per probe.
//
// Probe bodies are drawn exactly as the validator's Prober draws them (a
// share of audits, the rest liveness probes balanced to the users' share of
// temperature 0) from the built-in shape mix, the one used when the router
// publishes no traffic shape; with a live shape the figures follow it. Each
// body is read by the router's own probe path (parseProbeBody: the user
// defaults, such as max_tokens) and its prompt counted with the router's
// tokenizer (common/tokens/, the default encoding), so the tokens are the
// ones a miner is credited for.
import { performance } from "node:perf_hooks";
import { DEMO_MODEL_ID } from "../common/demo-model/model.js";
import { hotkeyFromMnemonic, initCrypto } from "../common/identity.js";
import { textSeededRandom } from "../common/seeded-random.js";
import { signValidatorCall, VALIDATOR_METADATA } from "../common/signing.js";
import { DEFAULT_ENCODING, Encodings } from "../common/tokens/encodings.js";
import { countPromptTokens } from "../common/tokens/prompt.js";
import { ProbeRequest, ProbeServiceService } from "../gen/tensorclaw/v1/probe.js";
import { API_DEFAULTS } from "../router/api/server.js";
import { parseProbeBody } from "../router/services/probe-body.js";
import { VALIDATOR_DEFAULTS } from "../validator/config.js";
import { drawProbeBody, makeUserPool } from "../validator/probe-gen/shape-sampler.js";
import { LIVENESS_CUT_TOKENS } from "../validator/prober.js";
import { PROBE_TIMEOUT_MS } from "../validator/router-client.js";
import { DEFAULT_AUDIT_TIMEOUT_MS } from "../validator/validator.js";
import { mean, median } from "./audit-stats.js";

/** A fixed mnemonic: the bench signs nothing that leaves the process. */
const BENCH_MNEMONIC = "bottom drive obey lake curtain smoke basket hold race lonely fit walk";

/** Token figures of drawn probes, in the router's tokenizer. */
export interface ProbeTokenFigures {
  readonly sample: number;
  readonly liveness: number;
  readonly audits: number;
  readonly livenessPromptTokensMean: number;
  readonly livenessPromptTokensMedian: number;
  readonly auditPromptTokensMean: number;
  readonly auditPromptTokensMedian: number;
  /** `max_tokens` a miner gets with an audit (the shape's, or the router's default when it sets none). */
  readonly auditMaxTokensMean: number;
}

/** `count` probes drawn as the Prober draws them, read and counted as the router does. */
export async function probeTokens(count: number, seed: string): Promise<ProbeTokenFigures> {
  const countTokens = await new Encodings().load(DEFAULT_ENCODING);
  const random = textSeededRandom(`${seed}\nprobes`);
  const userPool = makeUserPool(textSeededRandom(`${seed}\nusers`));
  const rules = { ...API_DEFAULTS, userSalt: "bench-salt" };
  const liveness: number[] = [];
  const audit: number[] = [];
  const auditMax: number[] = [];
  for (let i = 0; i < count; i++) {
    const isAudit = random() < VALIDATOR_DEFAULTS.verifyShare;
    const { body } = drawProbeBody({
      model: DEMO_MODEL_ID,
      random,
      audit: isAudit,
      userPool,
      verifyShare: VALIDATOR_DEFAULTS.verifyShare,
    });
    const { chat } = parseProbeBody(JSON.stringify(body), "5BenchValidator", rules);
    const tokens = countPromptTokens(chat, countTokens);
    if (isAudit) {
      audit.push(tokens);
      auditMax.push(chat.maxTokens ?? rules.defaultMaxTokens);
    } else liveness.push(tokens);
  }
  return {
    sample: count,
    liveness: liveness.length,
    audits: audit.length,
    livenessPromptTokensMean: mean(liveness),
    livenessPromptTokensMedian: median(liveness),
    auditPromptTokensMean: mean(audit),
    auditPromptTokensMedian: median(audit),
    auditMaxTokensMean: mean(auditMax),
  };
}

/** Mean length of `answers` in the router's tokenizer. */
export async function answerTokensMean(answers: readonly string[]): Promise<number> {
  const countTokens = await new Encodings().load(DEFAULT_ENCODING);
  return mean(answers.map((a) => countTokens(a)));
}

/** The validator's CPU per probe, in ms (medians over probes). */
export interface ProbeCpuFigures {
  readonly probes: number;
  /** Drawing the body (shape, prompt) and writing its JSON. */
  readonly drawMs: number;
  /** Building and encoding the ProbeRequest and signing it (sr25519). */
  readonly signMs: number;
  readonly totalMs: number;
}

/**
 * What one probe costs the validator before it reaches the network: the
 * body drawn as the Prober draws it, then the call built and signed as
 * RouterClient.probe and signedCall do.
 */
export async function probeCpu(count: number, seed: string): Promise<ProbeCpuFigures> {
  await initCrypto();
  const key = await hotkeyFromMnemonic(BENCH_MNEMONIC);
  const random = textSeededRandom(`${seed}\ncpu`);
  const userPool = makeUserPool(textSeededRandom(`${seed}\nusers`));
  const method = ProbeServiceService.probe;
  const draw: number[] = [];
  const sign: number[] = [];
  const total: number[] = [];
  // The first probes pay for compiling the generator: warm it up, then measure.
  for (let i = -Math.min(50, count); i < count; i++) {
    const t0 = performance.now();
    const isAudit = random() < VALIDATOR_DEFAULTS.verifyShare;
    const { body } = drawProbeBody({
      model: DEMO_MODEL_ID,
      random,
      audit: isAudit,
      userPool,
      verifyShare: VALIDATOR_DEFAULTS.verifyShare,
    });
    const requestJson = JSON.stringify(body);
    const t1 = performance.now();
    const req = ProbeRequest.create({
      hotkey: key.address,
      model: DEMO_MODEL_ID,
      timeoutMs: isAudit ? DEFAULT_AUDIT_TIMEOUT_MS : PROBE_TIMEOUT_MS,
      requestJson,
      cutAfterTokens: isAudit ? 0 : LIVENESS_CUT_TOKENS,
    });
    const bytes = method.requestSerialize(req);
    const metadata = signValidatorCall(key, "bench-router", method.path, bytes, Date.now());
    const t2 = performance.now();
    if (metadata[VALIDATOR_METADATA.signature] === undefined) throw new Error("probe not signed");
    if (i < 0) continue;
    draw.push(t1 - t0);
    sign.push(t2 - t1);
    total.push(t2 - t0);
  }
  return { probes: count, drawMs: median(draw), signMs: median(sign), totalMs: median(total) };
}
