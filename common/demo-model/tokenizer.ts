/**
 * The demo model's tokenizer: gpt-tokenizer's o200k_base BPE (the encoding of
 * current OpenAI models), loaded on first use because its rank table takes a
 * noticeable fraction of a second to load and `--help` must stay fast.
 *
 * The model's vocabulary is every ordinary o200k_base token plus
 * `<|endoftext|>`, which ends an answer. Other special tokens are not part of
 * it, and special-token text inside user input is encoded as plain text, the
 * way a server must treat text that comes from the network.
 */

/** The tokenizer the model is built on; an interface so tests can inject a small one. */
export interface DemoTokenizer {
  /** Number of ordinary tokens: ids `0 … regularTokens - 1`. */
  readonly regularTokens: number;
  /** Id of the end-of-text token (outside the ordinary range). */
  readonly eosId: number;
  /** Token ids of a text; special-token text is encoded as plain text. */
  encode(text: string): number[];
  /** The text of one token id of the vocabulary. */
  tokenText(id: number): string;
  /** The text of a sequence of ids (bytes split across tokens are joined correctly). */
  decode(ids: readonly number[]): string;
}

/**
 * Ordinary tokens of o200k_base: ranks 0 … 199997. Id 199998 is unused and
 * 199999 is `<|endoftext|>` (a unit test pins both facts to the package).
 */
export const O200K_REGULAR_TOKENS = 199_998;
/** `<|endoftext|>` in o200k_base. */
export const O200K_EOS_ID = 199_999;

/** True when `id` is in the vocabulary of `tok`. */
export function isVocabularyId(tok: DemoTokenizer, id: number): boolean {
  return Number.isInteger(id) && ((id >= 0 && id < tok.regularTokens) || id === tok.eosId);
}

let loading: Promise<DemoTokenizer> | undefined;

/** Loads the o200k_base tokenizer once per process (on first call, not at import). */
export function loadDemoTokenizer(): Promise<DemoTokenizer> {
  loading ??= import("gpt-tokenizer/encoding/o200k_base").then((m) => {
    const plain = { disallowedSpecial: new Set<string>() };
    const texts = new Map<number, string>();
    const tok: DemoTokenizer = {
      regularTokens: O200K_REGULAR_TOKENS,
      eosId: O200K_EOS_ID,
      encode: (text) => (text === "" ? [] : m.encode(text, plain)),
      decode: (ids) => m.decode(ids),
      tokenText: (id) => {
        let t = texts.get(id);
        if (t === undefined) {
          t = m.decode([id]);
          texts.set(id, t);
        }
        return t;
      },
    };
    return tok;
  });
  return loading;
}
