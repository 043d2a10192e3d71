/**
 * Prompt counting benchmark (npm run bench:prompt-count [-- --quick] [-- --json out.json]).
 *
 * The router counts every chat prompt itself (o200k_base, the default
 * encoding), and a chat client resends the whole conversation each turn.
 * This measures the router's CPU to count the prompts of a set of
 * conversations, turn by turn, as the chat endpoint does it: each key's
 * long messages remembered (TokenCountMemo, partitioned by key) against
 * counting every message afresh (the peer, in the same run, same texts).
 *
 * Shape: 8 conversations (one API key each) of 40 turns, interleaved turn by
 * turn; each turn adds a ~1.5 KB question and a ~1.5 KB answer to a 4 KB
 * system prompt, so the last turn's prompt is ~120 KB. The words are drawn
 * from a seeded generator, so the tokenizer's own cache of word pieces does
 * not make the text cheaper than real text would be. Figures: the median
 * CPU time of a last turn, and of all turns together, over several runs
 * (each run with a fresh memo).
 */
import { writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { type Random, seededRandom } from "../common/seeded-random.js";
import { TokenCountMemo } from "../common/tokens/count-memo.js";
import { DEFAULT_ENCODING, Encodings, type TokenCount } from "../common/tokens/encodings.js";
import { countPromptTokens } from "../common/tokens/prompt.js";
import { ChatRequest } from "../gen/tensorclaw/v1/chat.js";

const QUICK = process.argv.includes("--quick");
const jsonAt = process.argv.indexOf("--json");
const JSON_OUT = jsonAt === -1 ? undefined : process.argv[jsonAt + 1];
const CONVERSATIONS = 8;
const TURNS = QUICK ? 10 : 40;
const RUNS = QUICK ? 1 : 5;
const SYSTEM_CHARS = 4096;
const MESSAGE_CHARS = 1536;

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

/** Prose-like text of about `chars` characters: made-up words, numbers and punctuation. */
function text(random: Random, chars: number): string {
  const syllables = [
    "ka",
    "lo",
    "mir",
    "tes",
    "un",
    "ba",
    "rio",
    "nef",
    "sal",
    "dor",
    "pe",
    "quin",
    "vo",
    "za",
  ];
  const parts: string[] = [];
  let length = 0;
  while (length < chars) {
    let word = "";
    const n = 1 + Math.floor(random() * 4);
    for (let i = 0; i < n; i++) word += syllables[Math.floor(random() * syllables.length)];
    if (random() < 0.08) word = String(Math.floor(random() * 100_000));
    const end = random() < 0.1 ? ". " : random() < 0.1 ? ", " : " ";
    parts.push(word + end);
    length += word.length + end.length;
  }
  return parts.join("");
}

/** Every turn's chat request of `CONVERSATIONS` conversations, turn-major (as they would interleave). */
function conversations(seed: number): { key: string; chat: ChatRequest }[][] {
  const random = seededRandom(seed);
  const histories = Array.from({ length: CONVERSATIONS }, () => [
    { role: "system", content: text(random, SYSTEM_CHARS) },
  ]);
  const turns: { key: string; chat: ChatRequest }[][] = [];
  for (let t = 0; t < TURNS; t++) {
    const thisTurn: { key: string; chat: ChatRequest }[] = [];
    histories.forEach((h, c) => {
      h.push({ role: "user", content: text(random, MESSAGE_CHARS) });
      thisTurn.push({
        key: `key-${c}`,
        chat: ChatRequest.fromPartial({ messages: h.map((m) => ({ ...m })) }),
      });
      h.push({ role: "assistant", content: text(random, MESSAGE_CHARS) });
    });
    turns.push(thisTurn);
  }
  return turns;
}

/** Counts every turn; returns the CPU ms of all turns and of the last turn's requests (median). */
function countAll(
  turns: readonly { key: string; chat: ChatRequest }[][],
  counterFor: (key: string) => TokenCount,
): { totalMs: number; lastTurnMs: number; tokens: number } {
  let totalMs = 0;
  let tokens = 0;
  let last: number[] = [];
  for (const turn of turns) {
    last = [];
    for (const { key, chat } of turn) {
      const t0 = performance.now();
      tokens += countPromptTokens(chat, counterFor(key));
      const ms = performance.now() - t0;
      totalMs += ms;
      last.push(ms);
    }
  }
  return { totalMs, lastTurnMs: median(last), tokens };
}

async function main(): Promise<void> {
  const count = await new Encodings().load(DEFAULT_ENCODING);
  const turns = conversations(20261207);
  const lastChars = (turns.at(-1)?.[0]?.chat.messages ?? []).reduce(
    (n, m) => n + (m.content?.length ?? 0),
    0,
  );
  // Warm-up: JIT and the tokenizer's tables.
  countAll(turns.slice(0, 2), () => count);
  const fresh: { totalMs: number; lastTurnMs: number }[] = [];
  const memo: { totalMs: number; lastTurnMs: number }[] = [];
  let hitRate = 0;
  for (let r = 0; r < RUNS; r++) {
    // Alternate which goes first, so a change in the machine's load spreads over both.
    const runFresh = () => {
      const res = countAll(turns, () => count);
      fresh.push(res);
      return res.tokens;
    };
    const runMemo = () => {
      const m = new TokenCountMemo();
      const res = countAll(turns, (key) => m.counter(count, key));
      memo.push(res);
      const s = m.stats();
      hitRate = s.hits / (s.hits + s.misses);
      return res.tokens;
    };
    const [a, b] = r % 2 === 0 ? [runFresh(), runMemo()] : [runMemo(), runFresh()];
    if (a !== b) throw new Error(`the memo changed the counts: ${a} against ${b} tokens`);
  }
  const out = {
    quick: QUICK,
    conversations: CONVERSATIONS,
    turns: TURNS,
    lastTurnChars: lastChars,
    runs: RUNS,
    memo: {
      lastTurnMs: median(memo.map((m) => m.lastTurnMs)),
      totalMs: median(memo.map((m) => m.totalMs)),
      hitRate,
    },
    fresh: {
      lastTurnMs: median(fresh.map((m) => m.lastTurnMs)),
      totalMs: median(fresh.map((m) => m.totalMs)),
    },
  };
  console.log(
    `\nprompt counting, ${CONVERSATIONS} conversations x ${TURNS} turns (last prompt ${lastChars.toLocaleString("en-US")} chars), median of ${RUNS} runs\n`,
  );
  console.log(
    `  last turn, per request   memo ${out.memo.lastTurnMs.toFixed(3)} ms   afresh ${out.fresh.lastTurnMs.toFixed(3)} ms`,
  );
  console.log(
    `  all turns                memo ${out.memo.totalMs.toFixed(1)} ms   afresh ${out.fresh.totalMs.toFixed(1)} ms`,
  );
  console.log(`  memo hit rate            ${(hitRate * 100).toFixed(1)} %\n`);
  if (JSON_OUT !== undefined) writeFileSync(JSON_OUT, `${JSON.stringify(out, null, 2)}\n`);
}

await main();
