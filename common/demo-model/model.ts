/**
 * The TensorClaw demo model (`tensorclaw-demo`): a tiny, deterministic
 * language model with real probabilities — a topic mixture of trigram models
 * over o200k_base BPE tokens of a few pages of built-in English
 * (ngram-mixture.ts, corpus.ts). It is not a useful assistant, but every
 * answer is a genuine sample from its distribution and any text can be scored
 * under it, so the whole answer-checking path of the subnet (a reference
 * server's prompt logprobs against a miner's answer) runs with it locally.
 *
 * Everything here is pure and synchronous once the model is built;
 * {@link loadDemoModel} builds it on first use (tokenizer load and counting
 * take a few hundred ms, which `--help` must not pay).
 */

import { ContextState } from "./context-state.js";
import { type CorpusTopic, DEMO_CORPUS, topicDocuments } from "./corpus.js";
import { inVocabulary, type TokenDistribution, type Vocabulary } from "./distribution.js";
import { countNgrams, type NgramCounts } from "./ngram-counts.js";
import type { MixtureModel } from "./ngram-mixture.js";
import { requestSeed, seededRandom } from "./sampling.js";
import { type DemoTokenizer, loadDemoTokenizer } from "./tokenizer.js";
import { countTopicWords, type TopicWords, wordEvidence } from "./topic-words.js";

/** The demo model's id. */
export const DEMO_MODEL_ID = "tensorclaw-demo";
/** Context window (prompt plus answer), in tokens. */
export const DEMO_CONTEXT_LENGTH = 8192;
/** Most alternatives per position a caller may ask for (OpenAI's limit). */
export const MAX_TOP_LOGPROBS = 20;

/** A token with its log-probability. */
export interface TokenChoice {
  readonly id: number;
  readonly text: string;
  readonly logprob: number;
}

/** A token of an answer or a scored text, with the most likely alternatives at its position. */
export interface ModelToken extends TokenChoice {
  /** Most likely first; equal probabilities in ascending id order. */
  readonly top: readonly TokenChoice[];
}

/**
 * Tokens a text completion of the demo model writes at least (when its
 * budget allows), on the demo model server and the miner's demo backend
 * alike: the model would end most prompts that end a sentence at once (its
 * corpus documents stop there), where a real model goes on.
 */
export const DEMO_COMPLETION_MIN_TOKENS = 1;

/** Tokens looked at for one that does not stop, while `minTokens` holds stops back. */
const MIN_TOKENS_CANDIDATES = 32;

/** Why generation ended: a stop token (`stop`) or the token budget (`length`). */
export type StopReason = "stop" | "length";

/** What to generate. */
export interface GenerateOptions {
  /** The prompt, as vocabulary ids. */
  readonly promptTokens: readonly number[];
  /** Most tokens to write (0: none). */
  readonly maxTokens: number;
  /** 0: greedy (the most likely token, ties to the lowest id). Default 1. */
  readonly temperature?: number;
  /** Sampling seed; without one the prompt seeds the generator. */
  readonly seed?: number | bigint;
  /** Alternatives to report per token (0 … {@link MAX_TOP_LOGPROBS}). Default 0. */
  readonly topLogprobs?: number;
  /**
   * No stop before this many tokens (vLLM's `min_tokens`): where a stop token
   * is drawn earlier, the most likely token that does not stop is written
   * instead. Default 0.
   */
  readonly minTokens?: number;
}

/** A finished answer. */
export interface Generation {
  /** The tokens written (the stop token is not one of them). */
  readonly tokens: readonly ModelToken[];
  readonly finishReason: StopReason;
}

/** The demo model. Build with {@link buildDemoModel} or {@link loadDemoModel}. */
export class DemoModel {
  readonly vocabulary: Vocabulary;
  readonly #tokenizer: DemoTokenizer;
  readonly #mixture: MixtureModel;

  constructor(tokenizer: DemoTokenizer, counts: NgramCounts, words: TopicWords) {
    this.#tokenizer = tokenizer;
    this.vocabulary = {
      known: counts.known,
      indexOf: counts.indexOf,
      regularTokens: tokenizer.regularTokens,
      eosId: tokenizer.eosId,
    };
    const sentenceEnds = Uint8Array.from(counts.known, (id) =>
      id !== tokenizer.eosId && /[.!?]$/.test(tokenizer.tokenText(id)) ? 1 : 0,
    );
    const evidence = Array.from(counts.known, (id) => wordEvidence(words, tokenizer.tokenText(id)));
    this.#mixture = { counts, vocabulary: this.vocabulary, sentenceEnds, evidence };
  }

  /** The end-of-text id: the model writes it to end an answer. */
  get eosId(): number {
    return this.#tokenizer.eosId;
  }

  /** Token ids of a text (special-token text is plain text). */
  encode(text: string): number[] {
    return this.#tokenizer.encode(text);
  }

  /** Text of a sequence of ids. */
  decode(ids: readonly number[]): string {
    return this.#tokenizer.decode(ids);
  }

  /** Text of one id. */
  tokenText(id: number): string {
    return this.#tokenizer.tokenText(id);
  }

  /**
   * True for the tokens that end an answer: end-of-text, and any token with a
   * line break — in the chat template a line break ends a turn, so writing
   * one means the model is done (chat models likewise stop on their
   * end-of-turn tokens). Neither is part of the answer.
   */
  isStopToken(id: number): boolean {
    return id === this.eosId || this.tokenText(id).includes("\n");
  }

  /** True when `id` is in the model's vocabulary. */
  isToken(id: number): boolean {
    return inVocabulary(this.vocabulary, id);
  }

  /** The distribution of the token after `context`; throws a RangeError for an id outside the vocabulary. */
  distribution(context: readonly number[]): TokenDistribution {
    return this.#read(context).distribution();
  }

  /** Natural-log probability of `token` after `context`. */
  logprob(context: readonly number[], token: number): number {
    return this.distribution(context).logprob(token);
  }

  /**
   * Writes an answer one token at a time (lazily, so a caller can pace it or
   * stop early); the generator's return value is the finish reason.
   */
  *stream(opts: GenerateOptions): Generator<ModelToken, StopReason> {
    const k = checkTopK(opts.topLogprobs ?? 0);
    if (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 0) {
      throw new RangeError(`maxTokens must be a non-negative integer, got ${opts.maxTokens}`);
    }
    const temperature = opts.temperature ?? 1;
    if (!(temperature >= 0)) throw new RangeError(`temperature must be 0 or more, got ${temperature}`);
    const state = this.#read(opts.promptTokens);
    const random = seededRandom(requestSeed(opts.seed, opts.promptTokens));
    const minTokens = opts.minTokens ?? 0;
    for (let n = 0; n < opts.maxTokens; n++) {
      const d = state.distribution();
      let id = d.sample(temperature, random);
      if (this.isStopToken(id)) {
        const goOn =
          n < minTokens ? d.top(MIN_TOKENS_CANDIDATES).find((t) => !this.isStopToken(t.id)) : undefined;
        if (goOn === undefined) return "stop";
        id = goOn.id;
      }
      yield this.#token(d, id, k);
      state.push(id);
    }
    return "length";
  }

  /** Writes a whole answer. */
  generate(opts: GenerateOptions): Generation {
    const tokens: ModelToken[] = [];
    const it = this.stream(opts);
    for (let r = it.next(); ; r = it.next()) {
      if (r.done === true) return { tokens, finishReason: r.value };
      tokens.push(r.value);
    }
  }

  /**
   * Teacher forcing: the log-probability of each token of `continuation`
   * after `prompt` and what came before it, with `topK` alternatives. For the
   * tokens of an answer this gives exactly the numbers `generate` reported.
   */
  score(prompt: readonly number[], continuation: readonly number[], topK: number): ModelToken[] {
    const k = checkTopK(topK);
    const state = this.#read(prompt);
    const out: ModelToken[] = [];
    for (const id of continuation) {
      this.#check(id);
      if (k > 0) {
        out.push(this.#token(state.distribution(), id, k));
      } else {
        // One token's probability needs no full distribution.
        out.push({ id, text: this.tokenText(id), logprob: Math.log(state.prob(id)), top: [] });
      }
      state.push(id);
    }
    return out;
  }

  #check(id: number): void {
    if (!this.isToken(id)) throw new RangeError(`token id ${id} is not in the vocabulary`);
  }

  #read(context: readonly number[]): ContextState {
    const state = new ContextState(this.#mixture);
    for (const id of context) {
      this.#check(id);
      state.push(id);
    }
    return state;
  }

  #token(d: TokenDistribution, id: number, k: number): ModelToken {
    const top = d.top(k).map((t) => ({ id: t.id, text: this.tokenText(t.id), logprob: t.logprob }));
    return { id, text: this.tokenText(id), logprob: d.logprob(id), top };
  }
}

function checkTopK(k: number): number {
  if (!Number.isInteger(k) || k < 0 || k > MAX_TOP_LOGPROBS) {
    throw new RangeError(`top logprobs must be an integer from 0 to ${MAX_TOP_LOGPROBS}, got ${k}`);
  }
  return k;
}

/** Builds the model from a tokenizer and a corpus (pure; the corpus is the built-in one by default). */
export function buildDemoModel(
  tokenizer: DemoTokenizer,
  corpus: readonly CorpusTopic[] = DEMO_CORPUS,
): DemoModel {
  const topics = corpus.map((t) => ({
    name: t.name,
    documents: topicDocuments(t.text).map((d) => [...tokenizer.encode(d), tokenizer.eosId]),
  }));
  const words = countTopicWords(topics.map((t) => t.documents.flat().map((id) => tokenizer.tokenText(id))));
  return new DemoModel(tokenizer, countNgrams(topics), words);
}

let building: Promise<DemoModel> | undefined;

/** The built-in model, built once per process on first call. */
export function loadDemoModel(): Promise<DemoModel> {
  building ??= loadDemoTokenizer().then((tok) => buildDemoModel(tok));
  return building;
}
