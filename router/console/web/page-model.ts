import type { ModelStatsBody, SeriesPoint } from "../console-types.js";
import { getJson } from "./api.js";
import { barChart } from "./chart.js";
import { h, link, note, replace, stat, table } from "./dom.js";
import { count, ms, percent, perMillion, shortKey } from "./format.js";
import type { Page } from "./page.js";

/** Tokens per hour over the window, as a chart. */
export function trafficChart(title: string, series: readonly SeriesPoint[]): HTMLElement {
  return h(
    "figure",
    { class: "chart-box" },
    barChart(
      title,
      series.map((p) => p.tokens),
      (v) => `${count(v)} tokens/h`,
      ["24 h ago", "now"],
    ),
    h("figcaption", {}, title),
  );
}

/** One model: its miners, its traffic over 24 h as a chart, its success rate. */
export const modelPage: Page = (main, params) => {
  const id = params.join("/");
  const body = h("section", {}, note("Loading…"));
  main.append(h("h1", {}, id), body);
  const controller = new AbortController();
  getJson<ModelStatsBody>(`/api/v1/models/${encodeURIComponent(id)}/stats`, controller.signal)
    .then((m) => {
      replace(
        body,
        h(
          "div",
          { class: "stats" },
          stat("Input", perMillion(m.price_per_million.prompt)),
          stat("Output", perMillion(m.price_per_million.completion)),
          stat("Context", m.context_length === null ? "—" : count(m.context_length), "tokens"),
          stat("Tokens 24 h", count(m.traffic_24h.prompt_tokens + m.traffic_24h.completion_tokens)),
          stat("Success 24 h", percent(m.traffic_24h.success_rate)),
          stat("TTFT p50", ms(m.ttft_p50_ms)),
        ),
        trafficChart(`Tokens per hour served for ${m.id}, last 24 h`, m.series),
        m.miners.length === 0
          ? note("No miner serves this model now.")
          : table(
              "Miners serving it",
              ["Hotkey", "State", "Tokens 24 h", "Success", "TTFT p50"],
              m.miners.map((x) => {
                const a = link(`/miners/${encodeURIComponent(x.hotkey)}`, shortKey(x.hotkey));
                a.title = x.hotkey;
                return [
                  a,
                  h("span", { class: `badge ${x.state}` }, x.state),
                  count(x.traffic_24h.prompt_tokens + x.traffic_24h.completion_tokens),
                  percent(x.traffic_24h.success_rate),
                  ms(x.ttft_p50_ms),
                ];
              }),
            ),
      );
    })
    .catch((err: Error) => {
      if (!controller.signal.aborted) replace(body, note(err.message, "error"));
    });
  return () => controller.abort();
};
