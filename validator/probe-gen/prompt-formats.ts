import { obj } from "./prompt-tools.js";
import { list, pick, type Random } from "./random.js";

/*
 * JSON response formats (`json_object`, `json_schema` with a few everyday
 * schemas), and the sentence a prompt carries to ask for JSON (OpenAI
 * requires the word JSON in the messages for `json_object`).
 */

type Json = Record<string, unknown>;

const SCHEMAS: readonly { readonly keys: readonly string[]; readonly schema: Json }[] = [
  {
    keys: ["title", "summary", "tags"],
    schema: obj(
      {
        title: { type: "string" },
        summary: { type: "string" },
        tags: { type: "array", items: { type: "string" } },
      },
      ["title", "summary", "tags"],
    ),
  },
  {
    keys: ["answer", "confidence"],
    schema: obj({ answer: { type: "string" }, confidence: { type: "number" } }, ["answer", "confidence"]),
  },
  {
    keys: ["sentiment", "reason"],
    schema: obj(
      {
        sentiment: { type: "string", enum: ["positive", "negative", "neutral"] },
        reason: { type: "string" },
      },
      ["sentiment", "reason"],
    ),
  },
  {
    keys: ["items"],
    schema: obj(
      {
        items: {
          type: "array",
          items: obj({ name: { type: "string" }, description: { type: "string" } }, ["name", "description"]),
        },
      },
      ["items"],
    ),
  },
  { keys: ["steps"], schema: obj({ steps: { type: "array", items: { type: "string" } } }, ["steps"]) },
];
const SCHEMA_NAMES = list("response; result; output; answer; extraction; summary");

/** A `response_format` of `type`, and the sentence that asks for it ("" for text); undefined for an unknown type. */
export function responseFormat(
  random: Random,
  type: string,
): { readonly format: Json; readonly ask: string } | undefined {
  if (type === "json_object") {
    const ask = pick(
      random,
      list("Respond in JSON.; Reply with a JSON object.; Output valid JSON only.; Answer as JSON."),
    );
    return { format: { type: "json_object" }, ask };
  }
  if (type === "json_schema") {
    const s = pick(random, SCHEMAS);
    const json_schema = { name: pick(random, SCHEMA_NAMES), strict: true, schema: s.schema };
    return { format: { type: "json_schema", json_schema }, ask: `Return JSON with ${s.keys.join(", ")}.` };
  }
  if (type === "text") return { format: { type: "text" }, ask: "" };
  // A type the router does not accept cannot be in its report; nothing to copy.
  return undefined;
}
