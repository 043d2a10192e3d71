import type { MinerBody } from "../console-types.js";
import { getJson } from "./api.js";
import { h, link, note, replace, stat, table } from "./dom.js";
import { count, ms, percent, since } from "./format.js";
import type { Page } from "./page.js";
import { trafficChart } from "./page-model.js";

/** Look up a hotkey: its tunnels, models, traffic over 24 h, success rate and audit standing. */
export const minerPage: Page = (main, params) => {
  const hotkey = params[0] ?? "";
  const input = h("input", {
    id: "miner-hotkey",
    type: "search",
    spellcheck: "false",
    autocomplete: "off",
    placeholder: "5F…",
    value: hotkey,
  });
  const form = h(
    "form",
    { class: "key-form" },
    h("label", { for: "miner-hotkey" }, "Miner hotkey (SS58)"),
    h("div", { class: "row" }, input, h("button", { type: "submit", class: "primary" }, "Look up")),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const v = input.value.trim();
    if (v !== "") location.hash = `#/miners/${encodeURIComponent(v)}`;
  });
  const body = h("section", {});
  main.append(h("h1", {}, "Miner"), form, body);
  if (hotkey === "") {
    body.append(note("Give a hotkey, or pick one on the Network page."));
    return undefined;
  }
  body.append(note("Loading…"));
  const controller = new AbortController();
  getJson<MinerBody>(`/api/v1/miners/${encodeURIComponent(hotkey)}`, controller.signal)
    .then((m) => {
      replace(
        body,
        h("h2", { class: "mono" }, m.hotkey),
        h(
          "div",
          { class: "stats" },
          stat("State", h("span", { class: `badge ${m.state}` }, m.state)),
          stat("Tunnels", m.tunnels.length),
          stat("Tokens 24 h", count(m.traffic_24h.prompt_tokens + m.traffic_24h.completion_tokens)),
          stat("Requests 24 h", count(m.traffic_24h.requests)),
          stat("User success 24 h", percent(m.traffic_24h.success_rate)),
        ),
        trafficChart("Tokens per hour served by this miner, last 24 h", m.series),
        table(
          "Models",
          ["Model", "Tokens 24 h", "Success", "TTFT p50", "Breaker", "Audits"],
          m.models.map((x) => [
            link(`/models/${encodeURIComponent(x.model)}`, x.model),
            count(x.traffic_24h.prompt_tokens + x.traffic_24h.completion_tokens),
            percent(x.traffic_24h.success_rate),
            ms(x.ttft_p50_ms),
            x.breaker ?? "—",
            x.audit_failed ? h("span", { class: "badge ghost" }, "failed") : "ok",
          ]),
        ),
        m.tunnels.length === 0
          ? note("No tunnel is open now.")
          : table(
              "Tunnels",
              ["Transport", "State", "Connected", "Software", "Models (concurrency)"],
              m.tunnels.map((t) => [
                t.transport === "ws" ? "WebSocket" : "gRPC",
                h("span", { class: `badge ${t.state}` }, t.state),
                since(t.connected_since_ms),
                t.software_version,
                t.models.map((x) => `${x.id} (${x.max_concurrency})`).join(", "),
              ]),
            ),
      );
    })
    .catch((err: Error) => {
      if (!controller.signal.aborted) replace(body, note(err.message, "error"));
    });
  return () => controller.abort();
};
