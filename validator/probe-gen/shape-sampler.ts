import { promptBytesOf, roundTemperature, roundTopP, type ShapeFields } from "../../common/request-shape.js";
import type { GetTrafficShapeResponse, RequestShape } from "../../gen/tensorclaw/v1/probe.js";
import type { CorpusEntry, ProbeCorpus } from "./corpus.js";
import { drawGradedPrompt, type GradedKind } from "./graded.js";
import { responseFormat } from "./prompt-formats.js";
import { type ChatMessageJson, generateConversation } from "./prompt-space.js";
import { systemPrompt } from "./prompt-system.js";
import { TOOLS, toolJson } from "./prompt-tools.js";
import { TOPICS } from "./prompt-topics.js";
import { chance, int, pick, pickWeighted, type Random, sample } from "./random.js";
import { DEFAULT_SHAPE_MIX } from "./shape-defaults.js";

/*
 * Turns the router's published traffic shape into one concrete probe: a
 * shape drawn in proportion to how often users sent it, then an OpenAI chat
 * body with that shape's fields (message count, system prompt, stream,
 * max_tokens, sampling parameters within their rounding bucket, seed, stop
 * sequences, tools, response format, logprobs, user) and content from the
 * operator's corpus or the built-in generator. Audits keep the shape but
 * are made deterministic (temperature 0, a seed) and run to a realistic
 * length; a share of them carry a prompt with one right answer.
 */

/** Share of audits that carry a graded prompt (one right answer). */
export const DEFAULT_GRADED_SHARE = 0.25;
/** Prompt-size target ceiling, in tokens (2^15): bigger shapes are probed at this size. */
export const MAX_PROBE_PROMPT_TOKENS = 32_768;
/** `max_tokens` of an audit whose shape leaves it unset: lengths apps commonly ask for. */
const AUDIT_MAX_TOKENS = [256, 300, 384, 400, 500, 512] as const;
/** Seeds people commonly pass; audits and seeded shapes draw from these or a random one. */
const COMMON_SEEDS = [42, 0, 1, 7, 123, 1234, 12345, 2024, 31337] as const;
const STOPS = ["\n\n", "###", "</answer>", "User:", "\nUser:", "END", "```", "Observation:", "\n", "<|end|>"];

/** What {@link drawProbeBody} needs. */
export interface ProbeDrawOptions {
  /** The router's report (or its shapes); undefined or empty: {@link DEFAULT_SHAPE_MIX}. */
  readonly shapes?: GetTrafficShapeResponse | readonly RequestShape[] | undefined;
  /** The model probed (canonical id): shapes of this model are preferred, and it is the body's `model`. */
  readonly model: string;
  readonly random: Random;
  /** The operator's corpus (`--probe-corpus`); undefined: the built-in generator. */
  readonly source?: ProbeCorpus | undefined;
  /** An audit: deterministic, full length, maybe graded. */
  readonly audit?: boolean;
  /** `user` values of this validator, used when the shape has `user` set (default: a fixed small pool). */
  readonly userPool?: readonly string[];
  /** Share of audits with a graded prompt (default DEFAULT_GRADED_SHARE). */
  readonly gradedShare?: number;
}

/** The answer a graded probe must give. */
export interface ProbeGrading {
  readonly kind: GradedKind;
  readonly expected: string;
  grade(answer: string): boolean;
}

/** One probe to send. */
export interface ProbeBody {
  /** The OpenAI chat completion body (ProbeRequest.request_json is its JSON). */
  readonly body: Record<string, unknown>;
  /** The shape it was drawn from. */
  readonly shape: ShapeFields;
  /** Set when the prompt has one right answer. */
  readonly graded?: ProbeGrading;
}

/**
 * One shape, drawn in proportion to its count: among the shapes of
 * `model` when there are any, else among all reported shapes, else from
 * the built-in mix. The result's `model` is always `model`.
 */
export function sampleShape(
  shapes: GetTrafficShapeResponse | readonly RequestShape[] | undefined,
  model: string,
  random: Random,
): ShapeFields {
  const all: readonly RequestShape[] =
    shapes === undefined ? [] : "shapes" in shapes ? shapes.shapes : shapes;
  const own = all.filter((s) => s.model === model && s.count > 0n);
  const pool = own.length > 0 ? own : all.filter((s) => s.count > 0n);
  const drawn = pickWeighted(random, pool, (s) => Number(s.count));
  if (drawn !== undefined) {
    const { count: _count, ...fields } = drawn;
    return { ...fields, model };
  }
  const d = pickWeighted(random, DEFAULT_SHAPE_MIX, (w) => w.weight) ?? DEFAULT_SHAPE_MIX[0];
  return { ...(d as (typeof DEFAULT_SHAPE_MIX)[number]).shape, model };
}

/**
 * A value a person would type that rounds to `bucket`: usually the round
 * value itself, sometimes another two-decimal value in the same bucket.
 */
function inBucket(random: Random, bucket: number, max: number, round: (x: number) => number): number {
  const candidates: number[] = [];
  for (let k = 0; k <= max * 100; k++) if (round(k / 100) === bucket) candidates.push(k / 100);
  if (candidates.length === 0) return Math.min(max, Math.max(0, bucket));
  if (candidates.includes(bucket) && chance(random, 0.7)) return bucket;
  return pick(random, candidates);
}

/** A prompt-size target in the shape's bucket: tokens in (2^(b-1), 2^b]. */
function promptTarget(random: Random, log2: number): number {
  const hi = Math.min(MAX_PROBE_PROMPT_TOKENS, 2 ** Math.max(0, log2));
  const lo = log2 <= 0 ? 1 : Math.min(hi, 2 ** (log2 - 1) + 1);
  return int(random, lo, hi);
}

/** The corpus entry reshaped towards the shape: system prompt added or dropped, history trimmed. */
function fromCorpus(random: Random, e: CorpusEntry, shape: ShapeFields): ChatMessageJson[] {
  let messages = [...e.messages];
  const first = messages[0];
  const hasSystem = first?.role === "system" || first?.role === "developer";
  if (shape.systemPrompt && !hasSystem) {
    messages.unshift({ role: "system", content: systemPrompt(random, pick(random, TOPICS)) });
  } else if (!shape.systemPrompt && hasSystem && messages.length > 1) {
    messages.shift();
  }
  const sys = messages[0]?.role === "system" || messages[0]?.role === "developer" ? [messages[0]] : [];
  const want = Math.max(1, shape.messages);
  if (messages.length > want) {
    // Keep the latest turns, starting on a user message so no tool result loses its call.
    let rest = messages.slice(sys.length).slice(-(want - sys.length));
    const u = rest.findIndex((m) => m.role === "user");
    if (u > 0) rest = rest.slice(u);
    if (rest.length > 0) messages = [...sys, ...rest] as ChatMessageJson[];
  }
  return messages;
}

/** The tools a shape asks for: the corpus entry's own first, then built-in ones. */
function toolsFor(random: Random, n: number, own: readonly Record<string, unknown>[] | undefined) {
  const mine = (own ?? []).slice(0, n);
  const names = new Set(mine.map((t) => (t.function as { name?: string } | undefined)?.name));
  const extra = sample(
    random,
    TOOLS.filter((t) => !names.has(t.name)),
    n - mine.length,
  );
  return { json: [...mine, ...extra.map(toolJson)], specs: extra };
}

/**
 * Draws one probe body (see the module comment). Deterministic for a given
 * random source; everything random comes from `opts.random`.
 */
export function drawProbeBody(opts: ProbeDrawOptions): ProbeBody {
  const { random, model } = opts;
  const audit = opts.audit === true;
  const shape = sampleShape(opts.shapes, model, random);
  const body: Record<string, unknown> = { model };
  const corpusEntry = opts.source?.draw(random);
  const tools = shape.tools > 0 ? toolsFor(random, shape.tools, corpusEntry?.tools) : undefined;
  const format = shape.responseFormat === "" ? undefined : responseFormat(random, shape.responseFormat);
  const extraBytes = promptBytesOf({ tools: tools?.json ?? [], response_format: format?.format });
  const graded =
    audit && chance(random, opts.gradedShare ?? DEFAULT_GRADED_SHARE) ? drawGradedPrompt(random) : undefined;
  let messages: ChatMessageJson[];
  if (corpusEntry !== undefined) {
    messages = fromCorpus(random, corpusEntry, shape);
  } else {
    messages = generateConversation(random, {
      messages: shape.messages,
      systemPrompt: shape.systemPrompt,
      promptTokens: promptTarget(random, shape.promptTokensLog2),
      extraBytes,
      tools: tools?.specs ?? [],
      ...(format?.ask ? { jsonAsk: format.ask } : {}),
    });
  }
  if (graded !== undefined) {
    const last = messages[messages.length - 1] as ChatMessageJson;
    const ask = format?.ask ? ` ${format.ask}` : "";
    last.content =
      last.role === "user" ? graded.text + ask : `You are a helpful assistant.\n\n${graded.text}${ask}`;
  }
  body.messages = messages;
  if (shape.stream) body.stream = true;
  const maxTokens = shape.maxTokens > 0 ? shape.maxTokens : audit ? pick(random, AUDIT_MAX_TOKENS) : 0;
  if (maxTokens > 0) body.max_tokens = maxTokens;
  if (audit) body.temperature = 0;
  else if (shape.temperature !== undefined)
    body.temperature = inBucket(random, shape.temperature, 2, roundTemperature);
  if (shape.topP !== undefined) body.top_p = inBucket(random, shape.topP, 1, roundTopP);
  if (shape.seed || audit)
    body.seed = chance(random, 0.6) ? pick(random, COMMON_SEEDS) : int(random, 1, 2 ** 31 - 1);
  if (shape.stop > 0) {
    const stops = sample(random, STOPS, shape.stop);
    body.stop = stops.length === 1 && chance(random, 0.5) ? stops[0] : stops;
  }
  if (tools !== undefined) body.tools = tools.json;
  if (format !== undefined) body.response_format = format.format;
  if (shape.logprobs) body.logprobs = true;
  if (shape.user) body.user = pick(random, opts.userPool ?? DEFAULT_USER_POOL);
  return {
    body,
    shape,
    ...(graded === undefined
      ? {}
      : { graded: { kind: graded.kind, expected: graded.expected, grade: (a: string) => graded.grade(a) } }),
  };
}

const DEFAULT_USER_POOL = ["user-1842", "u_7f3a9c21", "customer-0193", "anon-55e1", "team-ops-4"];

/**
 * A validator's own pool of plausible end-user ids (`user_8f3a2c10`,
 * `u1048213`, `maria93`, UUIDs, ...): derive `random` from the
 * validator's identity so each validator's synthetic users differ.
 */
export function makeUserPool(random: Random, size = 48): string[] {
  const hex = (n: number) => Array.from({ length: n }, () => "0123456789abcdef"[int(random, 0, 15)]).join("");
  const names = [
    "maria",
    "james",
    "aisha",
    "chen",
    "lukas",
    "priya",
    "tomas",
    "emma",
    "kwame",
    "yuki",
    "olga",
  ];
  const out = new Set<string>();
  while (out.size < size) {
    switch (int(random, 0, 4)) {
      case 0:
        out.add(`user_${hex(8)}`);
        break;
      case 1:
        out.add(`u${int(random, 10_000, 9_999_999)}`);
        break;
      case 2:
        out.add(`${pick(random, names)}${int(random, 1, 99)}`);
        break;
      case 3:
        out.add(`${hex(8)}-${hex(4)}-4${hex(3)}-${pick(random, ["8", "9", "a", "b"])}${hex(3)}-${hex(12)}`);
        break;
      default:
        out.add(`cust_${int(random, 1000, 99_999)}`);
    }
  }
  return [...out];
}
