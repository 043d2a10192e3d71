/**
 * A population of realistic user chat requests for tests that need "real
 * traffic": a mix of request shapes (streamed or not, with or without a
 * system prompt, sampling settings, `max_tokens`, multi-turn histories,
 * tools, JSON mode, `user`) and of contents (questions, rewrites, code,
 * summaries, translations), drawn from a seeded random source. The probe
 * indistinguishability test sends these as users, and a disjoint sample of
 * the same population's contents is the validator's private probe corpus.
 */

type Random = () => number;

function pick<T>(r: Random, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)] as T;
}

function chance(r: Random, p: number): boolean {
  return r() < p;
}

const TOPICS = [
  "the water cycle",
  "TCP congestion control",
  "sourdough starters",
  "the French revolution",
  "index funds",
  "photosynthesis",
  "Rust's borrow checker",
  "remote team meetings",
  "electric car batteries",
  "the history of jazz",
  "password managers",
  "marathon training",
  "Kubernetes pods",
  "composting at home",
  "black holes",
  "writing a cover letter",
  "SQL joins",
  "learning Spanish",
  "the Roman aqueducts",
  "houseplant care",
];

const ASKS: readonly ((t: string) => string)[] = [
  (t) => `Can you explain ${t} in simple terms?`,
  (t) => `Give me three key facts about ${t}.`,
  (t) => `What are common misconceptions about ${t}?`,
  (t) => `Write a short paragraph introducing ${t} to a beginner.`,
  (t) => `I'm preparing a talk on ${t}. What should the outline be?`,
  (t) => `Summarize the main ideas of ${t} in five bullet points.`,
  (t) => `how does ${t} actually work`,
  (t) => `Compare ${t} with something from everyday life.`,
  (t) => `Write a haiku about ${t}.`,
  (t) => `What questions should I ask an expert on ${t}?`,
];

const CODE_ASKS = [
  "Write a Python function that checks whether a string is a palindrome.",
  "Why does this JavaScript print undefined? `const f = () => { x: 1 }; console.log(f());`",
  "Convert this loop to a list comprehension: result = []\nfor x in xs:\n    if x > 0:\n        result.append(x * 2)",
  "Write a SQL query that returns the top 5 customers by total order value.",
  "What is the difference between a mutex and a semaphore?",
  "Refactor this function to be easier to read: function f(a){return a&&a.b&&a.b.c?a.b.c:null}",
  "Write a bash one-liner that counts lines in all .ts files under src.",
  "Explain what this regex matches: ^\\d{3}-\\d{4}$",
];

const REWRITES = [
  "Please rewrite this email to sound more polite: I need the report by Friday, no excuses.",
  "Make this sentence shorter: In the event that the meeting is cancelled we will let you know as soon as we possibly can.",
  "Translate to French: The train leaves at nine tomorrow morning.",
  "Translate to German: Thank you for your quick reply.",
  "Fix the grammar: Me and him goes to the store yesterday.",
  "Turn these notes into a paragraph: launch delayed, vendor issue, new date March 3, budget unchanged.",
];

const SYSTEMS = [
  "You are a helpful assistant.",
  "You are a concise assistant. Answer in at most three sentences.",
  "You are an expert software engineer. Prefer short, correct code.",
  "You are a friendly tutor for high-school students.",
  "You answer in plain English without markdown.",
  "You are a customer-support agent for an online bookshop.",
];

const FOLLOW_UPS = [
  "Can you make that shorter?",
  "Thanks! Can you give an example?",
  "What would you recommend for a beginner?",
  "Could you explain the second point in more detail?",
  "ok and why is that?",
];

/** One user message's text. */
export function userText(r: Random): string {
  const kind = r();
  if (kind < 0.55) {
    const base = pick(r, ASKS)(pick(r, TOPICS));
    return chance(r, 0.3)
      ? `${base} ${pick(r, ["Keep it brief.", "Please be detailed.", "Use an example."])}`
      : base;
  }
  if (kind < 0.8) return pick(r, CODE_ASKS);
  return pick(r, REWRITES);
}

/** The messages of one conversation. */
export function userMessages(r: Random, opts: { system: boolean; turns: number }): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  if (opts.system) out.push({ role: "system", content: pick(r, SYSTEMS) });
  out.push({ role: "user", content: userText(r) });
  for (let t = 1; t < opts.turns; t++) {
    out.push({
      role: "assistant",
      content: `Sure. ${pick(r, ASKS)(pick(r, TOPICS))} is a good question to start with.`,
    });
    out.push({ role: "user", content: pick(r, FOLLOW_UPS) });
  }
  return out;
}

const TOOL = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather for a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

/** One user's OpenAI chat body (without `model`). */
export function userRequest(r: Random, endUsers = 40): Record<string, unknown> {
  const body: Record<string, unknown> = {
    messages: userMessages(r, { system: chance(r, 0.45), turns: chance(r, 0.25) ? 2 : 1 }),
  };
  if (chance(r, 0.7)) body.stream = true;
  if (chance(r, 0.55)) body.max_tokens = pick(r, [64, 128, 256, 256, 512, 1024]);
  if (chance(r, 0.6)) body.temperature = pick(r, [0, 0, 0.2, 0.7, 0.7, 1]);
  if (chance(r, 0.15)) body.top_p = pick(r, [0.9, 0.95]);
  if (chance(r, 0.1)) body.seed = Math.floor(r() * 1000);
  if (chance(r, 0.2)) body.user = `user-${Math.floor(r() * endUsers)}`;
  if (chance(r, 0.08)) body.tools = [TOOL];
  if (chance(r, 0.06)) body.response_format = { type: "json_object" };
  if (chance(r, 0.05)) body.stop = ["\n\n"];
  return body;
}
