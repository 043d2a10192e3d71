/**
 * The BPE encodings token counts can use: those the gpt-tokenizer package
 * ships, each loaded on demand (its rank table takes ~0.25 s and tens of MB
 * to load, so only encodings somebody names are loaded).
 */

/** Encoding names, as gpt-tokenizer spells them. */
export const ENCODINGS = [
  "o200k_base",
  "o200k_harmony",
  "cl100k_base",
  "p50k_base",
  "p50k_edit",
  "r50k_base",
] as const;

/** One encoding's name. */
export type EncodingName = (typeof ENCODINGS)[number];

/** The encoding of current OpenAI models; the default wherever none is named. */
export const DEFAULT_ENCODING: EncodingName = "o200k_base";

/** Counts the tokens of a text. */
export type TokenCount = (text: string) => number;

/** True for a name of ENCODINGS. */
export function isEncoding(name: string): name is EncodingName {
  return (ENCODINGS as readonly string[]).includes(name);
}

// Text from the network may contain special-token text (`<|endoftext|>`): count it as plain text.
const PLAIN = { disallowedSpecial: new Set<string>() };

interface EncodingModule {
  countTokens(text: string, options: typeof PLAIN): number;
}

async function importEncoding(name: EncodingName): Promise<EncodingModule> {
  switch (name) {
    case "o200k_base":
      return import("gpt-tokenizer/encoding/o200k_base");
    case "o200k_harmony":
      return import("gpt-tokenizer/encoding/o200k_harmony");
    case "cl100k_base":
      return import("gpt-tokenizer/encoding/cl100k_base");
    case "p50k_base":
      return import("gpt-tokenizer/encoding/p50k_base");
    case "p50k_edit":
      return import("gpt-tokenizer/encoding/p50k_edit");
    case "r50k_base":
      return import("gpt-tokenizer/encoding/r50k_base");
  }
}

/**
 * The encodings one process has loaded. `load` starts loading (once per
 * name); `get` answers synchronously once loaded, so counting on the
 * request path never waits.
 */
export class Encodings {
  readonly #loading = new Map<EncodingName, Promise<TokenCount>>();
  readonly #ready = new Map<EncodingName, TokenCount>();

  /** Loads an encoding (once); resolves to its counter. */
  load(name: EncodingName): Promise<TokenCount> {
    let p = this.#loading.get(name);
    if (p === undefined) {
      p = importEncoding(name).then((m) => {
        const count: TokenCount = (text) => (text === "" ? 0 : m.countTokens(text, PLAIN));
        this.#ready.set(name, count);
        return count;
      });
      this.#loading.set(name, p);
    }
    return p;
  }

  /** The counter of a loaded encoding, or undefined while it is not loaded. */
  get(name: EncodingName): TokenCount | undefined {
    return this.#ready.get(name);
  }
}
