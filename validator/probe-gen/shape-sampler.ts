import { promptBytesOf, type ShapeFields, withFieldValue } from "../../common/request-shape.js";
import type {
  FieldValueCount,
  GetTrafficShapeResponse,
  RequestShape,
} from "../../gen/tensorclaw/v1/probe.js";
import type { CorpusEntry, ProbeCorpus } from "./corpus.js";
import { drawGradedPrompt, type GradedKind } from "./graded.js";
import { responseFormat } from "./prompt-formats.js";
import { type ChatMessageJson, generateConversation } from "./prompt-space.js";
import { TOOLS, toolJson } from "./prompt-tools.js";
import { chance, int, pick, pickWeighted, type Random, sample } from "./random.js";
import { DEFAULT_SHAPE_MIX } from "./shape-defaults.js";

/*
 * Turns the router's published traffic shape into one concrete probe: a
 * shape drawn in proportion to how often users sent it — a listed shape,
 * or, for the share of traffic whose shapes are too rare to list, one built
 * field by field from the tail counts — then an OpenAI chat body with that
 * shape's fields (message count, system prompt, stream, max_tokens, the
 * bucket's round sampling values, seed, stop sequences, tools, response
 * format, logprobs, user) and content from the operator's corpus or the
 * built-in generator.
 *
 * Audits must be deterministic (temperature 0) to be judged, so they are
 * drawn from the deterministic part of the traffic (shapes with
 * temperature 0), and liveness probes take correspondingly fewer of those
 * shapes, so that all probes together carry temperature 0 as often as users
 * do (exactly, whenever users do so at least `verifyShare` of the time). A
 * share of audits carry a prompt with one right answer.
 */

/** Share of audits that carry a graded prompt (one right answer). */
export const DEFAULT_GRADED_SHARE = 0.25;
/** Prompt-size target ceiling, in tokens (2^15): bigger shapes are probed at this size. */
export const MAX_PROBE_PROMPT_TOKENS = 32_768;
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
  /**
   * Share of all probes that are audits: liveness probes then take fewer
   * deterministic shapes, so the mix matches users' (default 0: no
   * correction).
   */
  readonly verifyShare?: number;
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

/** What kind of probe a shape is drawn for. */
export interface ShapeDraw {
  /** An audit: only deterministic shapes (temperature 0) qualify. */
  readonly audit?: boolean;
  /** Share of probes that are audits (see ProbeDrawOptions.verifyShare). */
  readonly verifyShare?: number;
}

/** Draws one shape as users send them: listed shapes by count, the tail field by field. */
function shapeSource(
  shapes: GetTrafficShapeResponse | readonly RequestShape[] | undefined,
  model: string,
): { draw: (random: Random) => ShapeFields; deterministicShare: number } {
  const all: readonly RequestShape[] =
    shapes === undefined ? [] : "shapes" in shapes ? shapes.shapes : shapes;
  const tailAll: readonly FieldValueCount[] = shapes !== undefined && "tail" in shapes ? shapes.tail : [];
  const own = all.filter((s) => s.model === model && s.count > 0n);
  const pool = own.length > 0 ? own : all.filter((s) => s.count > 0n);
  const tail = tailAll.filter((t) => t.model === model && t.count > 0n);
  // Every request has a `stream` value: the tail's stream counts add up to its size.
  const tailN = tail.filter((t) => t.field === "stream").reduce((n, t) => n + Number(t.count), 0);
  const listedN = pool.reduce((n, s) => n + Number(s.count), 0);
  if (listedN === 0 && tailN === 0) {
    const draw = (random: Random): ShapeFields => {
      const d = pickWeighted(random, DEFAULT_SHAPE_MIX, (w) => w.weight) ?? DEFAULT_SHAPE_MIX[0];
      return { model, ...(d as (typeof DEFAULT_SHAPE_MIX)[number]).shape };
    };
    const det = DEFAULT_SHAPE_MIX.filter((w) => w.shape.temperature === 0).reduce((n, w) => n + w.weight, 0);
    return { draw, deterministicShare: det / DEFAULT_SHAPE_MIX.reduce((n, w) => n + w.weight, 0) };
  }
  const fields = new Map<string, FieldValueCount[]>();
  for (const t of tail) fields.set(t.field, [...(fields.get(t.field) ?? []), t]);
  const listed = (random: Random): ShapeFields => {
    const { count: _count, ...f } = pickWeighted(random, pool, (s) => Number(s.count)) as RequestShape;
    return { ...f, model };
  };
  const draw = (random: Random): ShapeFields => {
    if (tailN === 0 || (listedN > 0 && random() * (listedN + tailN) < listedN)) return listed(random);
    // A rare shape: each field drawn from the tail's counts, on a listed (or default) base.
    let shape: ShapeFields =
      listedN > 0
        ? listed(random)
        : { model, ...(DEFAULT_SHAPE_MIX[0] as (typeof DEFAULT_SHAPE_MIX)[number]).shape };
    for (const [field, values] of fields) {
      if (field === "system_prompt") continue;
      const v = pickWeighted(random, values, (x) => Number(x.count));
      if (v !== undefined) shape = withFieldValue(shape, field, v.value);
    }
    // Message count and system prompt go together (a conversation of four messages is a system
    // prompt and two turns): the system prompt follows the listed shapes of that length when
    // there are any, else the tail's own count.
    const sameLength = pool.filter((p) => p.messages === shape.messages);
    const withSystem = sameLength.reduce((n, p) => n + (p.systemPrompt ? Number(p.count) : 0), 0);
    const all = sameLength.reduce((n, p) => n + Number(p.count), 0);
    if (all > 0) return { ...shape, systemPrompt: random() * all < withSystem };
    const sys = pickWeighted(random, fields.get("system_prompt") ?? [], (x) => Number(x.count));
    return sys === undefined ? shape : withFieldValue(shape, "system_prompt", sys.value);
  };
  const detListed = pool.filter((s) => s.temperature === 0).reduce((n, s) => n + Number(s.count), 0);
  const detTail = (fields.get("temperature") ?? [])
    .filter((t) => t.value === "0")
    .reduce((n, t) => n + Number(t.count), 0);
  return { draw, deterministicShare: (detListed + detTail) / (listedN + tailN) };
}

/** Draws before settling for a forced shape. */
const MAX_SHAPE_DRAWS = 64;

/**
 * One shape, drawn as users send them: among the shapes of `model` when
 * there are any (else among all reported shapes, else from the built-in
 * mix), including the unlisted tail. For an audit, only a deterministic
 * shape (temperature 0) qualifies; with `verifyShare`, a liveness probe
 * takes a deterministic shape only as often as keeps all probes together
 * at the users' deterministic share. The result's `model` is `model`.
 */
export function sampleShape(
  shapes: GetTrafficShapeResponse | readonly RequestShape[] | undefined,
  model: string,
  random: Random,
  kind: ShapeDraw = {},
): ShapeFields {
  const { draw, deterministicShare: p } = shapeSource(shapes, model);
  const s = Math.min(1, Math.max(0, kind.verifyShare ?? 0));
  // Liveness probes should carry temperature 0 with probability x, audits always: s + (1 - s) x = p.
  // Drawn shapes are deterministic with probability p; keeping those with probability a gives
  // p a / (p a + 1 - p) = x.
  const x = s >= 1 ? p : Math.max(0, (p - s) / (1 - s));
  const keepDeterministic = p <= 0 || p >= 1 || x >= 1 ? 1 : Math.min(1, (x * (1 - p)) / (p * (1 - x)));
  let last: ShapeFields | undefined;
  for (let i = 0; i < MAX_SHAPE_DRAWS; i++) {
    const shape = draw(random);
    last = shape;
    const deterministic = shape.temperature === 0;
    if (kind.audit === true ? deterministic : !deterministic || random() < keepDeterministic) return shape;
  }
  // No deterministic traffic at all: the audit keeps a user's shape, made deterministic.
  const shape = last as ShapeFields;
  return kind.audit === true ? { ...shape, temperature: 0 } : shape;
}

/** A prompt-size target in the shape's bucket: tokens in (2^(b-1), 2^b]. */
function promptTarget(random: Random, log2: number): number {
  const hi = Math.min(MAX_PROBE_PROMPT_TOKENS, 2 ** Math.max(0, log2));
  const lo = log2 <= 0 ? 1 : Math.min(hi, 2 ** (log2 - 1) + 1);
  return int(random, lo, hi);
}

/** Corpus lines looked at to find one whose conversation fits a shape. */
const CORPUS_CANDIDATES = 32;

/**
 * A corpus line whose conversation fits `shape` best, sent whole: the same
 * system prompt presence and number of messages when one of the lines
 * drawn has them, else the closest; among equals, the first drawn.
 */
function corpusFor(corpus: ProbeCorpus, shape: ShapeFields, random: Random): CorpusEntry {
  let best: CorpusEntry | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  for (let i = 0; i < CORPUS_CANDIDATES && bestScore > 0; i++) {
    const e = corpus.draw(random);
    const hasSystem = e.messages[0]?.role === "system" || e.messages[0]?.role === "developer";
    const turns = e.messages.length - (hasSystem ? 1 : 0);
    const want = Math.max(1, shape.messages - (shape.systemPrompt ? 1 : 0));
    const score = (shape.systemPrompt !== hasSystem ? 4 : 0) + Math.abs(turns - want);
    if (score < bestScore) {
      best = e;
      bestScore = score;
    }
  }
  return best as CorpusEntry;
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
  const shape = sampleShape(opts.shapes, model, random, {
    audit,
    ...(opts.verifyShare === undefined ? {} : { verifyShare: opts.verifyShare }),
  });
  const body: Record<string, unknown> = { model };
  const corpusEntry = opts.source === undefined ? undefined : corpusFor(opts.source, shape, random);
  const tools = shape.tools > 0 ? toolsFor(random, shape.tools, corpusEntry?.tools) : undefined;
  const format = shape.responseFormat === "" ? undefined : responseFormat(random, shape.responseFormat);
  const extraBytes = promptBytesOf({ tools: tools?.json ?? [], response_format: format?.format });
  const graded =
    audit && chance(random, opts.gradedShare ?? DEFAULT_GRADED_SHARE) ? drawGradedPrompt(random) : undefined;
  let messages: ChatMessageJson[];
  if (corpusEntry !== undefined) {
    // The operator's conversation as it is: cutting or padding it would make it read like nobody's.
    messages = corpusEntry.messages.map((m) => ({ ...m })) as ChatMessageJson[];
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
  // Users' own values: the bucket's round value (people type 0.7, not 0.72); an audit runs to the
  // length its shape asks for, or to the router's default like a user's request that sets none.
  if (shape.maxTokens > 0) body.max_tokens = shape.maxTokens;
  if (audit) body.temperature = 0;
  else if (shape.temperature !== undefined) body.temperature = shape.temperature;
  if (shape.topP !== undefined) body.top_p = shape.topP;
  if (shape.seed) body.seed = chance(random, 0.6) ? pick(random, COMMON_SEEDS) : int(random, 1, 2 ** 31 - 1);
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
