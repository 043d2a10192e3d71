// A toy tokenizer for the demo model's unit tests: whitespace-separated words
// from a fixed list, one id each, with a hole below end-of-text the way
// o200k_base has one. Small enough that probabilities can be worked out by hand.
import type { DemoTokenizer } from "../../common/demo-model/tokenizer.js";

/** The toy vocabulary: id = index. Words of three letters or fewer carry no topic evidence. */
export const TOY_WORDS = ["a", "b", "c", "d", ".", "f", "bread", "tide", "dough", "wave"] as const;
/** End-of-text in the toy vocabulary (id 10 is unused). */
export const TOY_EOS = 11;

/** The toy tokenizer. */
export const toyTokenizer: DemoTokenizer = {
  regularTokens: TOY_WORDS.length,
  eosId: TOY_EOS,
  encode: (text) =>
    text
      .split(/\s+/)
      .filter((w) => w !== "")
      .map((w) => {
        const id = (TOY_WORDS as readonly string[]).indexOf(w);
        if (id < 0) throw new Error(`toy word ${w}`);
        return id;
      }),
  tokenText: (id) => (id === TOY_EOS ? "<eos>" : ` ${TOY_WORDS[id] ?? "?"}`),
  decode: (ids) => ids.map((id) => (id === TOY_EOS ? "<eos>" : ` ${TOY_WORDS[id] ?? "?"}`)).join(""),
};

/** Ids of toy words. */
export function toy(text: string): number[] {
  return toyTokenizer.encode(text);
}
