import type { ActivityBody } from "../console-types.js";
import { apiKey, getJson, setApiKey } from "./api.js";
import { barChart } from "./chart.js";
import { h, note, replace, stat, table } from "./dom.js";
import { count, ms, usd } from "./format.js";
import type { Page } from "./page.js";

/** `GET /api/v1/key`'s data, the fields this page shows. */
interface KeyData {
  label: string;
  usage: number;
  usage_daily: number;
  usage_monthly: number;
  usage_24h?: number;
  usage_30d?: number;
  limit: number | null;
  limit_remaining: number | null;
  balance?: number | null;
  held?: number;
  budget_daily?: number | null;
  budget_daily_remaining?: number | null;
  is_free_tier: boolean;
  rate_limit: { requests: number; interval: string; tokens: number };
}

/** How many of the key's newest generations the page lists. */
const GENERATIONS_SHOWN = 20;

/** A row of `GET /api/v1/key/generations` (each as `/api/v1/generation` reads it), the fields this page shows. */
interface GenerationData {
  id: string;
  model: string;
  created_at: string;
  tokens_prompt: number;
  tokens_completion: number;
  total_cost: number;
  latency: number;
  time_to_first_token_ms: number | null;
  finish_reason: string | null;
  outcome: string;
}

/** A key's per-minute limits in words (OpenRouter writes -1 for none). */
function rateLimit(r: KeyData["rate_limit"]): string {
  const parts = [
    r.requests >= 0 ? `${count(r.requests)} requests` : "",
    r.tokens >= 0 ? `${count(r.tokens)} tokens` : "",
  ];
  const set = parts.filter((p) => p !== "");
  return set.length === 0 ? "none" : `${set.join(" and ")} per minute`;
}

/** The caller's key: balance, spend, limits and its recent generations. */
export const accountPage: Page = (main) => {
  const input = h("input", {
    id: "acct-key",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "sk-…",
  });
  const save = h("button", { type: "submit", class: "primary" }, "Use this key");
  const forget = h("button", { type: "button" }, "Forget key");
  const body = h("section", { "aria-label": "Account" });
  const form = h(
    "form",
    { class: "key-form" },
    h("label", { for: "acct-key" }, "API key"),
    h("div", { class: "row" }, input, save, forget),
    h(
      "p",
      { class: "muted small" },
      "Kept in this tab's session storage only, sent in the Authorization header, never in a URL.",
    ),
  );
  main.append(h("h1", {}, "Account"), form, body);
  const controller = new AbortController();

  const load = async () => {
    if (apiKey() === undefined) {
      replace(body, note("Paste an API key to see its balance and spend."));
      return;
    }
    replace(body, note("Loading…"));
    try {
      const { data: k } = await getJson<{ data: KeyData }>("/api/v1/key", controller.signal);
      const { data: activity } = await getJson<ActivityBody>("/api/v1/key/activity", controller.signal);
      const days = activity.days;
      const { data: found } = await getJson<{ data: GenerationData[] }>(
        `/api/v1/key/generations?limit=${GENERATIONS_SHOWN}`,
        controller.signal,
      );
      replace(
        body,
        h("h2", {}, k.label),
        h(
          "div",
          { class: "stats" },
          stat("Balance", k.balance === null || k.balance === undefined ? "unmetered" : usd(k.balance)),
          stat("Available", k.limit_remaining === null ? "—" : usd(k.limit_remaining)),
          stat("Spent today (UTC)", usd(k.usage_daily)),
          stat("Spent 24 h", usd(k.usage_24h ?? k.usage_daily)),
          stat("Spent 30 days", usd(k.usage_30d ?? k.usage_monthly)),
          stat("Spent in all", usd(k.usage)),
        ),
        h(
          "dl",
          { class: "facts" },
          h("dt", {}, "Rate limit"),
          h("dd", {}, rateLimit(k.rate_limit)),
          h("dt", {}, "Daily budget"),
          h(
            "dd",
            {},
            k.budget_daily === null || k.budget_daily === undefined
              ? "none"
              : `${usd(k.budget_daily)} (${usd(k.budget_daily_remaining ?? 0)} left today)`,
          ),
          h("dt", {}, "Held for requests in flight"),
          h("dd", {}, usd(k.held ?? 0)),
        ),
        h("h2", {}, "Spend, last 30 days"),
        days.length === 0
          ? note("No spend recorded.")
          : h(
              "figure",
              { class: "chart-box" },
              barChart(
                "Spend per UTC day, last 30 days",
                days.map((d) => d.cost),
                (v) => `${usd(v)}/day`,
                [days[0]?.date ?? "", days.at(-1)?.date ?? ""],
              ),
              h("figcaption", {}, "Spend per UTC day, USD"),
            ),
        activity.models.length === 0
          ? null
          : table(
              "Spend per model, last 30 days",
              ["Model", "Requests", "Tokens", "Cost"],
              activity.models.map((m) => [
                m.model,
                count(m.requests),
                `${count(m.prompt_tokens)} + ${count(m.completion_tokens)}`,
                usd(m.cost),
              ]),
            ),
        activity.deposit_address === null
          ? null
          : h(
              "dl",
              { class: "facts" },
              h("dt", {}, "TAO deposit address"),
              h("dd", { class: "mono" }, activity.deposit_address),
            ),
        h("h2", {}, "Recent generations"),
        found.length === 0
          ? note("This key's requests are listed here, with what they cost, once they are settled.")
          : table(
              `Recent generations of this key (newest ${GENERATIONS_SHOWN} at most)`,
              ["When", "Model", "Tokens", "Cost", "TTFT", "Latency", "Finish"],
              found.map((g) => [
                new Date(g.created_at).toLocaleString(),
                g.model,
                `${count(g.tokens_prompt)} + ${count(g.tokens_completion)}`,
                usd(g.total_cost),
                ms(g.time_to_first_token_ms),
                ms(g.latency),
                // A failed or cancelled request has no finish reason: how it ended says more.
                g.finish_reason ?? g.outcome,
              ]),
            ),
      );
    } catch (err) {
      if (!controller.signal.aborted)
        replace(body, note(`Cannot read the account: ${(err as Error).message}`, "error"));
    }
  };

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    setApiKey(input.value);
    input.value = "";
    void load();
  });
  forget.addEventListener("click", () => {
    setApiKey(undefined);
    void load();
  });
  void load();
  return () => controller.abort();
};
