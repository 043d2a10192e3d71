import type { ShapeFields } from "../../common/request-shape.js";

/*
 * The shape mix probes follow when the router publishes none (a new
 * router, a quiet hour, a router too old to answer GetTrafficShape). It
 * is modelled on what chat-completion traffic commonly looks like: mostly
 * streamed chat, with or without a system prompt, a share of
 * conversations carrying history, non-streamed batch-style calls at
 * temperature 0 (classification, extraction, JSON output), a few agent
 * calls with tools, and prompts from a few dozen to a few thousand tokens.
 * Weights are relative.
 */

/** A default shape and its weight. */
export interface WeightedShape {
  readonly weight: number;
  /** The shape, without its model (the probed model fills it in). */
  readonly shape: Omit<ShapeFields, "model">;
}

const BASE: Omit<ShapeFields, "model"> = {
  messages: 1,
  systemPrompt: false,
  stream: false,
  user: false,
  maxTokens: 0,
  temperature: undefined,
  topP: undefined,
  seed: false,
  stop: 0,
  tools: 0,
  responseFormat: "",
  promptTokensLog2: 6,
  logprobs: false,
};

const mix = (weight: number, over: Partial<Omit<ShapeFields, "model">>): WeightedShape =>
  Object.freeze({ weight, shape: Object.freeze({ ...BASE, ...over }) });

/** The built-in shape mix. */
export const DEFAULT_SHAPE_MIX: readonly WeightedShape[] = Object.freeze([
  // Chat front-ends: one streamed question, nothing else set.
  mix(23, { stream: true, promptTokensLog2: 6 }),
  mix(5, { stream: true, user: true, temperature: 1, promptTokensLog2: 5 }),
  // Apps with a system prompt.
  mix(12, { messages: 2, systemPrompt: true, stream: true, temperature: 0.7, promptTokensLog2: 8 }),
  mix(4, {
    messages: 2,
    systemPrompt: true,
    stream: true,
    temperature: 0.8,
    topP: 0.9,
    maxTokens: 256,
    promptTokensLog2: 7,
  }),
  // Conversations with history.
  mix(6, { messages: 3, stream: true, promptTokensLog2: 9 }),
  mix(10, {
    messages: 5,
    systemPrompt: true,
    stream: true,
    temperature: 0.7,
    maxTokens: 1024,
    promptTokensLog2: 10,
  }),
  mix(5, { messages: 9, systemPrompt: true, stream: true, maxTokens: 2048, promptTokensLog2: 12 }),
  // Batch-style calls: deterministic, often structured output.
  mix(8, { messages: 2, systemPrompt: true, temperature: 0, maxTokens: 512, promptTokensLog2: 9 }),
  mix(6, { temperature: 0, responseFormat: "json_object", promptTokensLog2: 7 }),
  mix(4, {
    messages: 2,
    systemPrompt: true,
    temperature: 0,
    seed: true,
    responseFormat: "json_schema",
    promptTokensLog2: 9,
  }),
  mix(4, { temperature: 0, maxTokens: 16, stop: 1, promptTokensLog2: 8 }),
  mix(5, { maxTokens: 1024, promptTokensLog2: 11 }),
  // Agents with tools.
  mix(5, { messages: 2, systemPrompt: true, temperature: 0.2, tools: 3, promptTokensLog2: 10 }),
  mix(3, { messages: 8, systemPrompt: true, stream: true, tools: 5, promptTokensLog2: 11 }),
]);
