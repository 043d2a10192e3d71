import { PLACES } from "./prompt-sentences.js";
import { int, list, pick, type Random } from "./random.js";

/*
 * Function tools and JSON response formats of the kind agent frameworks and
 * apps send: generic, widely used functions (weather, search, calendar,
 * orders, ...) with JSON Schema parameters, a question that would make a
 * model call each, and a plausible result for an earlier tool turn.
 */

type Json = Record<string, unknown>;

/** One function a request can offer. */
export interface ToolSpec {
  readonly name: string;
  readonly description: string;
  readonly parameters: Json;
  /** A user message that calls for this tool. */
  readonly ask: (random: Random) => string;
  /** Arguments a model would pass, and what the function returned. */
  readonly exchange: (random: Random) => { readonly args: Json; readonly result: Json };
}

/** A JSON Schema object with these properties. */
export const obj = (properties: Json, required: readonly string[]): Json => ({
  type: "object",
  properties,
  required: [...required],
});
const str = (description: string): Json => ({ type: "string", description });
const CITIES = list(
  "Lisbon; Osaka; Toronto; Nairobi; Berlin; Austin; Seoul; Dublin; Lima; Oslo; Perth; Porto",
);
const TICKERS = list("AAPL; MSFT; NVDA; TSLA; AMZN; ASML; SAP; TM");
const PRODUCTS = list(
  "running shoes; a laptop stand; noise-cancelling headphones; a rice cooker; a yoga mat",
);

/** The tools, at least as many as a shape can ask for (16). */
export const TOOLS: readonly ToolSpec[] = [
  {
    name: "get_weather",
    description: "Get the current weather for a city.",
    parameters: obj({ city: str("City name"), unit: { type: "string", enum: ["celsius", "fahrenheit"] } }, [
      "city",
    ]),
    ask: (r) => `What's the weather like in ${pick(r, CITIES)} right now?`,
    exchange: (r) => ({
      args: { city: pick(r, CITIES) },
      result: { temp_c: int(r, -5, 35), condition: "cloudy" },
    }),
  },
  {
    name: "get_forecast",
    description: "Get a weather forecast for the next days.",
    parameters: obj({ city: str("City name"), days: { type: "integer", minimum: 1, maximum: 10 } }, [
      "city",
      "days",
    ]),
    ask: (r) => `Will it rain in ${pick(r, CITIES)} this weekend?`,
    exchange: (r) => ({
      args: { city: pick(r, CITIES), days: 3 },
      result: { rain_chance: [int(r, 0, 99), 40, 10] },
    }),
  },
  {
    name: "search_web",
    description: "Search the web and return the top results.",
    parameters: obj({ query: str("Search query"), max_results: { type: "integer" } }, ["query"]),
    ask: (r) => `Can you look up the opening hours of the museum in ${pick(r, CITIES)}?`,
    exchange: (r) => ({
      args: { query: `museum ${pick(r, CITIES)} hours` },
      result: { results: ["Open 10:00-18:00"] },
    }),
  },
  {
    name: "get_stock_price",
    description: "Get the latest price of a stock by ticker symbol.",
    parameters: obj({ ticker: str("Ticker symbol, e.g. AAPL") }, ["ticker"]),
    ask: (r) => `How is ${pick(r, TICKERS)} doing today?`,
    exchange: (r) => ({
      args: { ticker: pick(r, TICKERS) },
      result: { price: int(r, 20, 900) + 0.25, change_pct: -1.2 },
    }),
  },
  {
    name: "convert_currency",
    description: "Convert an amount between two currencies.",
    parameters: obj({ amount: { type: "number" }, from: str("ISO code"), to: str("ISO code") }, [
      "amount",
      "from",
      "to",
    ]),
    ask: (r) => `How much is ${int(r, 10, 900)} euros in US dollars?`,
    exchange: (r) => ({
      args: { amount: int(r, 10, 900), from: "EUR", to: "USD" },
      result: { converted: 108.4 },
    }),
  },
  {
    name: "send_email",
    description: "Send an email on the user's behalf.",
    parameters: obj({ to: str("Recipient address"), subject: str("Subject"), body: str("Body text") }, [
      "to",
      "subject",
      "body",
    ]),
    ask: () => "Email my landlord that the heating is broken again, please.",
    exchange: () => ({
      args: { to: "landlord@example.com", subject: "Heating", body: "Hi..." },
      result: { sent: true },
    }),
  },
  {
    name: "create_calendar_event",
    description: "Create an event in the user's calendar.",
    parameters: obj(
      { title: str("Event title"), start: str("ISO 8601 start"), duration_minutes: { type: "integer" } },
      ["title", "start"],
    ),
    ask: (r) =>
      `Put a dentist appointment in my calendar for next ${pick(r, list("Monday; Tuesday; Friday"))} at 10.`,
    exchange: () => ({
      args: { title: "Dentist", start: "2025-03-10T10:00:00" },
      result: { id: "evt_42", ok: true },
    }),
  },
  {
    name: "lookup_order",
    description: "Look up an order by its number.",
    parameters: obj({ order_id: str("Order number") }, ["order_id"]),
    ask: (r) => `Where is my order ${int(r, 100000, 999999)}?`,
    exchange: (r) => ({
      args: { order_id: String(int(r, 100000, 999999)) },
      result: { status: "shipped", eta: "2 days" },
    }),
  },
  {
    name: "search_products",
    description: "Search the product catalogue.",
    parameters: obj({ query: str("What to look for"), max_price: { type: "number" } }, ["query"]),
    ask: (r) => `I'm looking for ${pick(r, PRODUCTS)} under ${int(r, 3, 20) * 10} dollars.`,
    exchange: (r) => ({
      args: { query: pick(r, PRODUCTS) },
      result: { items: [{ name: "Model X", price: 79 }] },
    }),
  },
  {
    name: "get_directions",
    description: "Get travel directions between two places.",
    parameters: obj(
      {
        origin: str("Start"),
        destination: str("End"),
        mode: { type: "string", enum: ["driving", "walking", "transit"] },
      },
      ["origin", "destination"],
    ),
    ask: (r) => `How do I get from the airport to the centre of ${pick(r, CITIES)} by public transport?`,
    exchange: (r) => ({
      args: { origin: "airport", destination: pick(r, CITIES), mode: "transit" },
      result: { minutes: int(r, 20, 80) },
    }),
  },
  {
    name: "book_restaurant",
    description: "Reserve a table at a restaurant.",
    parameters: obj(
      { restaurant: str("Name"), party_size: { type: "integer" }, time: str("ISO 8601 time") },
      ["restaurant", "party_size", "time"],
    ),
    ask: (r) => `Book a table for ${int(r, 2, 8)} somewhere nice tonight at 8.`,
    exchange: (r) => ({
      args: { restaurant: "Casa Nova", party_size: int(r, 2, 8), time: "20:00" },
      result: { confirmed: true },
    }),
  },
  {
    name: "get_current_time",
    description: "Get the current time in a time zone.",
    parameters: obj({ timezone: str("IANA time zone, e.g. Europe/Lisbon") }, ["timezone"]),
    ask: (r) => `What time is it in ${pick(r, CITIES)}?`,
    exchange: () => ({ args: { timezone: "Asia/Tokyo" }, result: { time: "21:14" } }),
  },
  {
    name: "run_sql_query",
    description: "Run a read-only SQL query on the analytics database.",
    parameters: obj({ sql: str("A SELECT statement") }, ["sql"]),
    ask: (r) => `How many new users signed up in the last ${int(r, 2, 30)} days?`,
    exchange: (r) => ({
      args: { sql: "SELECT count(*) FROM users WHERE created_at > now() - interval '7 days'" },
      result: { rows: [[int(r, 10, 5000)]] },
    }),
  },
  {
    name: "create_ticket",
    description: "Open a support ticket.",
    parameters: obj(
      { title: str("Short summary"), priority: { type: "string", enum: ["low", "normal", "high"] } },
      ["title"],
    ),
    ask: () => "The app crashes every time I upload a photo. Can you report it?",
    exchange: (r) => ({
      args: { title: "Crash on photo upload", priority: "high" },
      result: { ticket: `T-${int(r, 1000, 9999)}` },
    }),
  },
  {
    name: "get_news",
    description: "Get recent news headlines on a topic.",
    parameters: obj({ topic: str("Topic"), country: str("ISO country code") }, ["topic"]),
    ask: (r) => `Any news about ${pick(r, PLACES)} today?`,
    exchange: () => ({
      args: { topic: "local" },
      result: { headlines: ["New bridge opens", "Festival dates set"] },
    }),
  },
  {
    name: "calculate",
    description: "Evaluate a math expression.",
    parameters: obj({ expression: str("Expression, e.g. 2*(3+4)") }, ["expression"]),
    ask: (r) => `What is ${int(r, 12, 99)} percent of ${int(r, 100, 9999)}?`,
    exchange: () => ({ args: { expression: "0.15*2400" }, result: { value: 360 } }),
  },
  {
    name: "translate_text",
    description: "Translate text into another language.",
    parameters: obj({ text: str("Text"), target_language: str("Language code") }, [
      "text",
      "target_language",
    ]),
    ask: () => "Translate 'where is the train station' into Portuguese for me.",
    exchange: () => ({
      args: { text: "where is the train station", target_language: "pt" },
      result: { text: "onde fica a estação?" },
    }),
  },
  {
    name: "set_reminder",
    description: "Set a reminder for the user.",
    parameters: obj({ text: str("What to remind"), at: str("ISO 8601 time") }, ["text", "at"]),
    ask: (r) => `Remind me to call my mum in ${int(r, 2, 5)} hours.`,
    exchange: () => ({ args: { text: "Call mum", at: "2025-04-01T18:00:00" }, result: { ok: true } }),
  },
];

/** The OpenAI `tools` entry of a tool. */
export function toolJson(t: ToolSpec): Json {
  return {
    type: "function",
    function: { name: t.name, description: t.description, parameters: t.parameters },
  };
}
