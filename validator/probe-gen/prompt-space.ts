import {
  promptBytesOf,
  promptTokensFromBytes,
  promptTokensLog2,
  SHAPE_BYTES_PER_TOKEN,
} from "../../common/request-shape.js";
import { assistantReply, followUp, greeting, phrasebookReply, phrasebookText } from "./prompt-history.js";
import { PHRASEBOOKS, type Phrasebook, polish } from "./prompt-languages.js";
import { paragraph } from "./prompt-sentences.js";
import { systemPrompt } from "./prompt-system.js";
import { englishRequest, TASK_COUNTS } from "./prompt-tasks.js";
import type { ToolSpec } from "./prompt-tools.js";
import { TOPICS, type Topic } from "./prompt-topics.js";
import { chance, int, pick, type Random } from "./random.js";

/*
 * The built-in probe generator: whole chat conversations (system prompt,
 * earlier turns, tool exchanges, the final user request) in English and
 * five other languages, about 120+ topics, across a dozen kinds of task,
 * sized towards a target prompt length. The space is far too large to
 * match against: promptSpaceLowerBound() counts only its simplest corner
 * (one English message, no pasted text) and that alone passes 10^6.
 */

/** One OpenAI chat message as JSON. */
export type ChatMessageJson = Record<string, unknown>;

/** What conversation to write. */
export interface ConversationSpec {
  /** Messages wanted, system prompt included (at least 1). */
  readonly messages: number;
  /** Whether the first message is a system prompt. */
  readonly systemPrompt: boolean;
  /** Prompt size to aim at, in the router's estimated tokens; undefined: a natural length. */
  readonly promptTokens?: number;
  /** Prompt bytes the request carries outside its messages (tools, JSON schema), counted against the target. */
  readonly extraBytes?: number;
  /** Tools the request offers: the conversation may use one. */
  readonly tools?: readonly ToolSpec[];
  /** A sentence asking for JSON, added to the last user message. */
  readonly jsonAsk?: string;
  /** Share of conversations not in English (default 0.22). */
  readonly otherLanguageShare?: number;
}

/** Share of generated conversations in a language other than English. */
export const DEFAULT_OTHER_LANGUAGE_SHARE = 0.22;
/** Below this many prompt bytes for a lone user message, a tiny request ("hi", "What is X?") is used. */
const TINY_BYTES = 48;
/** Below this many bytes left for the last message, it comes without opener or closing remark. */
const PLAIN_BYTES = 110;

/**
 * A lower bound on the number of distinct requests the generator can
 * write, from its parts: one English user message (no system prompt, no
 * history, no pasted text) = opener × closer × (topic requests × topics +
 * coding requests). Everything else — histories, pasted text, system
 * prompts, numbers and terms inside requests, other languages — multiplies
 * it further and is not counted.
 */
export function promptSpaceLowerBound(): number {
  const c = TASK_COUNTS;
  return c.openers * c.closers * (c.topicPhrasings * TOPICS.length + c.codeRequests);
}

/** How a conversation is written: English with a topic, or a phrasebook with one of its topics. */
type Voice =
  | { readonly kind: "en"; readonly topic: Topic }
  | { readonly kind: "pb"; readonly pb: Phrasebook; readonly topic: string };

/** An id like the ones OpenAI-compatible servers give tool calls. */
function callId(random: Random): string {
  const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  let id = "call_";
  for (let i = 0; i < 24; i++) id += chars[Math.floor(random() * chars.length)] ?? "a";
  return id;
}

const AFTER_TOOL = [
  "Here's what I found.",
  "Done!",
  "All set.",
  "I checked that for you.",
  "Okay, that's done.",
];

/** An earlier user request answered with a tool call: user, assistant call, tool result, assistant. */
function toolExchange(random: Random, tool: ToolSpec): ChatMessageJson[] {
  const { args, result } = tool.exchange(random);
  const id = callId(random);
  return [
    { role: "user", content: tool.ask(random) },
    {
      role: "assistant",
      content: null,
      tool_calls: [{ id, type: "function", function: { name: tool.name, arguments: JSON.stringify(args) } }],
    },
    { role: "tool", tool_call_id: id, content: JSON.stringify(result) },
    { role: "assistant", content: pick(random, AFTER_TOOL) },
  ];
}

function lastRequest(
  random: Random,
  v: Voice,
  bytes: number,
  spec: ConversationSpec,
  alone: boolean,
): string {
  const tools = spec.tools ?? [];
  if (v.kind === "pb") {
    if (bytes > 300) return pick(random, v.pb.material)(phrasebookText(random, v.pb, v.topic, bytes - 60));
    const request = pick(random, v.pb.requests)(v.topic, int(random, 3, 10));
    // Room for more than a bare question: a sentence or two of background first.
    if (bytes > 150 && chance(random, 0.7))
      return `${phrasebookText(random, v.pb, v.topic, bytes - 120)} ${request}`;
    return request;
  }
  if (tools.length > 0 && chance(random, 0.5)) {
    const ask = pick(random, tools).ask(random);
    if (bytes < 300) return ask;
    return `Some context first:\n\n${englishRequest(random, v.topic, { materialBytes: bytes - 80 })}\n\n${ask}`;
  }
  const request = englishRequest(random, v.topic, {
    materialBytes: bytes > 300 ? bytes - 100 : 0,
    tiny: alone && bytes < TINY_BYTES,
    plain: bytes < PLAIN_BYTES,
  });
  // Between a bare question and pasted text: a line or two of background first, as people write.
  if (bytes > 150 && bytes <= 300 && chance(random, 0.7)) {
    return `${paragraph(random, v.topic, bytes > 250 ? 2 : 1)} ${request}`;
  }
  return request;
}

/** Drafts written at most to land a conversation in its prompt-size bucket. */
const MAX_DRAFTS = 10;

/**
 * Writes one conversation to `spec`: exactly `spec.messages` messages
 * (a lone system message holds the request when only one is wanted with a
 * system prompt), ending with a user turn, grown towards
 * `spec.promptTokens` through pasted text and longer earlier answers. With
 * a target, up to MAX_DRAFTS drafts are written and the first whose size
 * lands in the target's power-of-two bucket (else the closest) is kept.
 * Deterministic for a given random source.
 */
export function generateConversation(random: Random, spec: ConversationSpec): ChatMessageJson[] {
  // The language is drawn once: drafts differ in content only, so the size search cannot favour one.
  const share = spec.otherLanguageShare ?? DEFAULT_OTHER_LANGUAGE_SHARE;
  const topic = pick(random, TOPICS);
  const pb = chance(random, share) ? pick(random, PHRASEBOOKS) : undefined;
  const draft = (): ChatMessageJson[] => {
    if (pb === undefined) return compose(random, spec, { kind: "en", topic }, topic);
    const messages = compose(random, spec, { kind: "pb", pb, topic: pick(random, pb.topics) }, topic);
    for (const m of messages) if (typeof m.content === "string") m.content = polish(pb, m.content);
    return messages;
  };
  if (spec.promptTokens === undefined) return draft();
  const want = promptTokensLog2(spec.promptTokens);
  let best: ChatMessageJson[] = [];
  let bestMiss = Number.POSITIVE_INFINITY;
  for (let i = 0; i < MAX_DRAFTS && bestMiss > 0; i++) {
    const messages = draft();
    const bytes = promptBytesOf({ messages }) + (spec.extraBytes ?? 0);
    const miss = Math.abs(promptTokensLog2(promptTokensFromBytes(bytes)) - want);
    if (miss < bestMiss) {
      best = messages;
      bestMiss = miss;
    }
  }
  return best;
}

function compose(random: Random, spec: ConversationSpec, v: Voice, topic: Topic): ChatMessageJson[] {
  const target =
    spec.promptTokens === undefined
      ? undefined
      : Math.max(0, spec.promptTokens * SHAPE_BYTES_PER_TOKEN - (spec.extraBytes ?? 0));
  const total = Math.max(1, Math.floor(spec.messages));
  const out: ChatMessageJson[] = [];
  if (spec.systemPrompt) {
    const sysBytes = target === undefined ? 0 : chance(random, 0.3) ? target * 0.3 : 0;
    const text = v.kind === "pb" ? pick(random, v.pb.systems) : systemPrompt(random, topic, sysBytes);
    out.push({ role: "system", content: text });
  }
  const turns = total - out.length;
  if (turns === 0) {
    // One message with a system prompt: the instructions and the request travel together.
    const room = target === undefined ? naturalBytes(random) : target - promptBytesOf({ messages: out });
    const req = withJson(lastRequest(random, v, room, spec, false), spec.jsonAsk);
    const sys = out[0] as ChatMessageJson;
    sys.content = `${String(sys.content)}\n\n${req}`;
    return out;
  }
  // Earlier turns before the last user message: user/assistant pairs, an
  // assistant greeting first when the count is odd.
  let history = turns - 1;
  if (history % 2 === 1) {
    out.push({ role: "assistant", content: v.kind === "pb" ? v.pb.greeting : greeting(random) });
    history--;
  }
  let pairs = history / 2;
  const tools = spec.tools ?? [];
  const replyBytes =
    target === undefined
      ? int(random, 150, 700)
      : Math.max(60, Math.min(2500, (target * 0.5) / Math.max(1, pairs)));
  let first = true;
  while (pairs > 0) {
    if (pairs >= 2 && tools.length > 0 && v.kind === "en" && chance(random, 0.5)) {
      out.push(...toolExchange(random, pick(random, tools)));
      pairs -= 2;
      continue;
    }
    const user =
      v.kind === "pb"
        ? first
          ? pick(random, v.pb.requests)(v.topic, int(random, 3, 10))
          : pick(random, v.pb.followUps)
        : first
          ? englishRequest(random, v.topic, { materialBytes: 0, onTopic: true })
          : followUp(random, v.topic);
    const reply =
      v.kind === "pb"
        ? phrasebookReply(random, v.pb, v.topic, replyBytes)
        : assistantReply(random, v.topic, replyBytes);
    out.push({ role: "user", content: user }, { role: "assistant", content: reply });
    first = false;
    pairs--;
  }
  const alone = out.length === 0;
  const room = target === undefined ? naturalBytes(random) : target - promptBytesOf({ messages: out }) - 4;
  out.push({ role: "user", content: withJson(lastRequest(random, v, room, spec, alone), spec.jsonAsk) });
  return out;
}

/** Room for the last message when no size is asked: log-uniform from about 60 bytes to 2 KB. */
function naturalBytes(random: Random): number {
  return Math.round(60 * 2 ** (random() * 5));
}

function withJson(text: string, ask: string | undefined): string {
  if (ask === undefined || ask === "") return text;
  return text.includes("\n") ? `${text}\n\n${ask}` : `${text} ${ask}`;
}
