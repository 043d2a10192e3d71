import type { NetworkBody } from "../console-types.js";
import { getJson } from "./api.js";
import { h, link, note, replace, stat, table } from "./dom.js";
import { count, moment, ms, percent, perMillion, shortKey } from "./format.js";
import type { Page } from "./page.js";

/** How often the page asks again (the issue asks for at most 5 s). */
export const POLL_MS = 4000;

/** Models with live miners, their prices and traffic; miners by state. Polls /api/v1/network. */
export const networkPage: Page = (main) => {
  const stats = h("section", { class: "stats", "aria-label": "Totals" });
  const models = h("section", { "aria-label": "Models" }, note("Loading…"));
  const miners = h("section", { "aria-label": "Miners" });
  const updated = h("p", { class: "muted small", "aria-live": "polite" });
  main.append(h("h1", {}, "Network"), updated, stats, models, miners);
  let timer: number | undefined;
  let stopped = false;
  const controller = new AbortController();

  let drawn = "";
  const draw = (n: NetworkBody) => {
    updated.textContent = `Updated ${new Date(n.generated_at_ms).toLocaleTimeString()} · refreshes every ${POLL_MS / 1000} s`;
    // Redrawn only when a figure changed: a redraw replaces the links, and with them the keyboard focus.
    const signature = JSON.stringify({ ...n, generated_at_ms: 0 });
    if (signature === drawn) return;
    drawn = signature;
    const c = n.miner_counts;
    const tokens = n.models.reduce(
      (s, m) => s + m.traffic_24h.prompt_tokens + m.traffic_24h.completion_tokens,
      0,
    );
    replace(
      stats,
      stat("Live models", n.models.filter((m) => m.miners > 0).length),
      stat("Active miners", c.active),
      stat("Ghost miners", c.ghost),
      stat("Draining", c.draining),
      stat("Tokens served, 24 h", count(tokens), "tokens"),
    );
    replace(
      models,
      n.models.length === 0
        ? note("No model is offered yet.")
        : table(
            "Models",
            ["Model", "Miners", "Context", "Input", "Output", "Tokens 24 h", "Success", "TTFT p50"],
            n.models.map((m) => [
              link(`/models/${encodeURIComponent(m.id)}`, m.id),
              m.miners,
              m.context_length === null ? "—" : `${count(m.context_length)} tokens`,
              perMillion(m.price_per_million.prompt),
              perMillion(m.price_per_million.completion),
              count(m.traffic_24h.prompt_tokens + m.traffic_24h.completion_tokens),
              percent(m.traffic_24h.success_rate),
              ms(m.ttft_p50_ms),
            ]),
          ),
    );
    replace(
      miners,
      n.miners.length === 0
        ? note("No miner is connected.")
        : table(
            "Miners",
            ["Hotkey", "State", "Tunnels", "Models", "Connected since", "Tokens 24 h", "Success"],
            n.miners.map((m) => {
              const a = link(`/miners/${encodeURIComponent(m.hotkey)}`, shortKey(m.hotkey));
              a.title = m.hotkey;
              return [
                a,
                h("span", { class: `badge ${m.state}` }, m.state),
                m.tunnels,
                m.models.join(", "),
                moment(m.connected_since_ms),
                count(m.traffic_24h.prompt_tokens + m.traffic_24h.completion_tokens),
                percent(m.traffic_24h.success_rate),
              ];
            }),
          ),
    );
  };

  const poll = async () => {
    try {
      draw(await getJson<NetworkBody>("/api/v1/network", controller.signal));
    } catch (err) {
      if (stopped) return;
      updated.textContent = `Could not refresh: ${(err as Error).message}`;
    }
    if (!stopped) timer = window.setTimeout(poll, POLL_MS);
  };
  void poll();
  return () => {
    stopped = true;
    controller.abort();
    window.clearTimeout(timer);
  };
};
