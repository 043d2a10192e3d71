import { readFile } from "node:fs/promises";
import { TensorClawError } from "../../common/errors.js";
import type { Random } from "./random.js";

/*
 * `--probe-corpus FILE`: the validator operator's private prompts, one
 * OpenAI chat completion body per line (JSON lines). Each line must carry
 * a valid `messages` array (and may carry `tools`); the other fields are
 * ignored, because a probe's shape comes from live traffic, not from the
 * corpus. A bad line stops the validator at start-up, naming the line:
 * nothing is half loaded.
 */

type Json = Record<string, unknown>;

const ROLES = new Set(["system", "developer", "user", "assistant", "tool"]);
const MAX_MESSAGES = 4096;
const MAX_TOOLS = 128;
const FUNCTION_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Why `m` is not a chat message, or undefined when it is. */
function messageProblem(m: unknown, i: number): string | undefined {
  const at = `messages[${i}]`;
  if (!isObject(m)) return `${at} is not an object`;
  if (typeof m.role !== "string" || !ROLES.has(m.role))
    return `${at}.role must be one of ${[...ROLES].join(", ")}`;
  const calls = m.tool_calls;
  if (calls !== undefined && calls !== null) {
    if (m.role !== "assistant" || !Array.isArray(calls))
      return `${at}.tool_calls is only for assistant messages, as an array`;
    for (const [k, c] of calls.entries()) {
      const fn = isObject(c) ? c.function : undefined;
      if (
        !isObject(c) ||
        typeof c.id !== "string" ||
        !isObject(fn) ||
        typeof fn.name !== "string" ||
        typeof fn.arguments !== "string"
      ) {
        return `${at}.tool_calls[${k}] needs an id and a function with a name and string arguments`;
      }
    }
  }
  const c = m.content;
  const hasCalls = Array.isArray(calls) && calls.length > 0;
  if (typeof c === "string") {
    // fine
  } else if (Array.isArray(c)) {
    if (
      !c.every(
        (p) => isObject(p) && typeof p.type === "string" && (p.type !== "text" || typeof p.text === "string"),
      )
    ) {
      return `${at}.content parts need a string type (and text parts a string text)`;
    }
  } else if (!((c === null || c === undefined) && hasCalls)) {
    return `${at}.content must be a string or an array of content parts`;
  }
  if (m.role === "tool" && (typeof m.tool_call_id !== "string" || m.tool_call_id === "")) {
    return `${at}.tool_call_id is required for role "tool"`;
  }
  return undefined;
}

/** Why `body` cannot be a probe, or undefined when it can. */
export function corpusLineProblem(body: unknown): string | undefined {
  if (!isObject(body)) return "not a JSON object";
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) return "messages must be a non-empty array";
  if (messages.length > MAX_MESSAGES) return `messages may hold at most ${MAX_MESSAGES} items`;
  for (const [i, m] of messages.entries()) {
    const p = messageProblem(m, i);
    if (p !== undefined) return p;
  }
  const tools = body.tools;
  if (tools !== undefined && tools !== null) {
    if (!Array.isArray(tools) || tools.length > MAX_TOOLS)
      return `tools must be an array of at most ${MAX_TOOLS}`;
    for (const [i, t] of tools.entries()) {
      const fn = isObject(t) ? t.function : undefined;
      if (
        !isObject(t) ||
        t.type !== "function" ||
        !isObject(fn) ||
        typeof fn.name !== "string" ||
        !FUNCTION_NAME.test(fn.name)
      ) {
        return `tools[${i}] must be {"type":"function","function":{"name":...}} with a name of [a-zA-Z0-9_-]`;
      }
      if (fn.parameters !== undefined && !isObject(fn.parameters))
        return `tools[${i}].function.parameters must be an object`;
    }
  }
  return undefined;
}

/** One usable corpus line: its messages (and tools, when it offers some). */
export interface CorpusEntry {
  /** 1-based line number in the file. */
  readonly line: number;
  readonly messages: readonly Json[];
  readonly tools: readonly Json[] | undefined;
}

/** The operator's prompts, validated and held in memory; drawn uniformly. */
export class ProbeCorpus {
  readonly #entries: readonly CorpusEntry[];

  private constructor(entries: readonly CorpusEntry[]) {
    this.#entries = entries;
  }

  /**
   * Parses JSON lines; blank lines are skipped. Throws `config_invalid`
   * naming `source` and the first bad line, or an empty corpus.
   */
  static parse(text: string, source: string): ProbeCorpus {
    const entries: CorpusEntry[] = [];
    const lines = text.split("\n");
    for (const [i, raw] of lines.entries()) {
      const line = raw.trim();
      if (line === "") continue;
      let body: unknown;
      try {
        body = JSON.parse(line);
      } catch {
        throw new TensorClawError("config_invalid", `--probe-corpus ${source} line ${i + 1}: not valid JSON`);
      }
      const problem = corpusLineProblem(body);
      if (problem !== undefined) {
        throw new TensorClawError("config_invalid", `--probe-corpus ${source} line ${i + 1}: ${problem}`);
      }
      const b = body as Json;
      entries.push(
        Object.freeze({
          line: i + 1,
          messages: b.messages as Json[],
          tools: Array.isArray(b.tools) && b.tools.length > 0 ? (b.tools as Json[]) : undefined,
        }),
      );
    }
    if (entries.length === 0) {
      throw new TensorClawError("config_invalid", `--probe-corpus ${source}: no chat requests in the file`);
    }
    return new ProbeCorpus(entries);
  }

  /** Reads and parses `path` (see {@link ProbeCorpus.parse}); an unreadable file is `config_invalid` too. */
  static async load(path: string): Promise<ProbeCorpus> {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new TensorClawError("config_invalid", `--probe-corpus ${path}: cannot read the file (${why})`);
    }
    return ProbeCorpus.parse(text, path);
  }

  /** Number of prompts. */
  get size(): number {
    return this.#entries.length;
  }

  /** One prompt, uniformly, as a fresh copy the caller may change. */
  draw(random: Random): CorpusEntry {
    const n = this.#entries.length;
    const e = this.#entries[Math.min(n - 1, Math.floor(random() * n))] as CorpusEntry;
    return structuredClone(e);
  }
}
