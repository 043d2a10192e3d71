import type { NetworkBody, NetworkModel } from "../console-types.js";
import { apiKey, errorOf, getJson, headers } from "./api.js";
import { append, h, note, replace } from "./dom.js";
import { ms, usd } from "./format.js";
import type { Page } from "./page.js";
import { sseData } from "./sse.js";

interface Turn {
  readonly role: "user" | "assistant";
  content: string;
}

interface StreamChunk {
  choices?: { delta?: { content?: string | null; reasoning?: string | null } }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
  error?: { message?: string };
}

/** Chat with a model over the streaming API: time to first token, tokens per second and cost per answer. */
export const playgroundPage: Page = (main) => {
  const model = h("select", { id: "pg-model", name: "model" });
  const system = h("textarea", { id: "pg-system", rows: "2", placeholder: "You are a helpful assistant." });
  const temperature = h("input", {
    id: "pg-temperature",
    type: "number",
    min: "0",
    max: "2",
    step: "0.1",
    value: "0.7",
  });
  const maxTokens = h("input", { id: "pg-max-tokens", type: "number", min: "1", max: "32768", value: "256" });
  const prompt = h("textarea", { id: "pg-prompt", rows: "3", placeholder: "Ask something…", required: "" });
  const send = h("button", { type: "submit", class: "primary" }, "Send");
  const stopButton = h("button", { type: "button", disabled: "" }, "Stop");
  const clear = h("button", { type: "button" }, "Clear");
  const log = h("div", { class: "chat", "aria-live": "polite" });
  const status = h("p", { class: "muted small", role: "status" });
  const form = h(
    "form",
    { class: "playground" },
    h(
      "div",
      { class: "fields" },
      h("label", { for: "pg-model" }, "Model"),
      model,
      h("label", { for: "pg-system" }, "System prompt"),
      system,
      h(
        "div",
        { class: "row" },
        h("span", {}, h("label", { for: "pg-temperature" }, "Temperature"), temperature),
        h("span", {}, h("label", { for: "pg-max-tokens" }, "Max tokens"), maxTokens),
      ),
    ),
    log,
    h("label", { for: "pg-prompt", class: "sr-only" }, "Message"),
    prompt,
    h("div", { class: "row" }, send, stopButton, clear),
    status,
  );
  append(main, [
    h("h1", {}, "Playground"),
    apiKey() === undefined
      ? h(
          "p",
          { class: "note muted" },
          "Paste an API key on the ",
          h("a", { href: "#/account" }, "Account"),
          " page first (unless this router serves without keys).",
        )
      : null,
    form,
  ]);

  let models: readonly NetworkModel[] = [];
  const turns: Turn[] = [];
  let current: AbortController | undefined;
  getJson<NetworkBody>("/api/v1/network")
    .then((n) => {
      models = n.models.filter((m) => m.miners > 0);
      replace(model, ...models.map((m) => h("option", { value: m.id }, m.id)));
      if (models.length === 0) status.textContent = "No model has a live miner right now.";
    })
    .catch((err: Error) => {
      status.textContent = `Cannot list models: ${err.message}`;
    });

  clear.addEventListener("click", () => {
    turns.length = 0;
    replace(log);
    status.textContent = "";
  });
  stopButton.addEventListener("click", () => current?.abort());
  prompt.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) form.requestSubmit();
  });

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = prompt.value.trim();
    if (text === "" || current !== undefined) return;
    prompt.value = "";
    turns.push({ role: "user", content: text });
    log.append(
      h("div", { class: "msg user" }, h("div", { class: "who" }, "You"), h("div", { class: "text" }, text)),
    );
    void ask(model.value);
  });

  async function ask(id: string): Promise<void> {
    const out = h("div", { class: "text" });
    const meta = h("div", { class: "meta" }, "…");
    log.append(h("div", { class: "msg assistant" }, h("div", { class: "who" }, id), out, meta));
    const controller = new AbortController();
    current = controller;
    send.disabled = true;
    stopButton.disabled = false;
    const startedAt = performance.now();
    let firstAt: number | undefined;
    let answer = "";
    let usage: StreamChunk["usage"];
    const messages = [
      ...(system.value.trim() === "" ? [] : [{ role: "system", content: system.value }]),
      ...turns.map((t) => ({ role: t.role, content: t.content })),
    ];
    try {
      const res = await fetch("/v1/chat/completions", {
        method: "POST",
        headers: headers({ "content-type": "application/json" }),
        body: JSON.stringify({
          model: id,
          messages,
          temperature: Number(temperature.value),
          max_tokens: Number(maxTokens.value),
          stream: true,
          stream_options: { include_usage: true },
        }),
        signal: controller.signal,
      });
      if (!res.ok || res.body === null) throw await errorOf(res);
      for await (const data of sseData(res.body)) {
        if (data === "[DONE]") break;
        const chunk = JSON.parse(data) as StreamChunk;
        if (chunk.error !== undefined) throw new Error(chunk.error.message ?? "the stream failed");
        const delta = chunk.choices?.[0]?.delta?.content ?? "";
        if (delta !== "") {
          firstAt ??= performance.now();
          answer += delta;
          out.textContent = answer;
        }
        if (chunk.usage) usage = chunk.usage;
      }
      turns.push({ role: "assistant", content: answer });
      meta.textContent = describe(id, startedAt, firstAt, performance.now(), usage);
    } catch (err) {
      if (controller.signal.aborted) {
        meta.textContent = `Stopped after ${ms(performance.now() - startedAt)}.`;
        if (answer !== "") turns.push({ role: "assistant", content: answer });
      } else {
        meta.textContent = "";
        meta.append(note(`Error: ${(err as Error).message}`, "error"));
        turns.pop();
      }
    } finally {
      current = undefined;
      send.disabled = false;
      stopButton.disabled = true;
    }
  }

  /** TTFT, tokens per second after the first token, and the cost at the model's catalogue prices. */
  function describe(
    id: string,
    startedAt: number,
    firstAt: number | undefined,
    endAt: number,
    u: StreamChunk["usage"],
  ): string {
    const parts = [`TTFT ${ms(firstAt === undefined ? null : firstAt - startedAt)}`];
    const completion = u?.completion_tokens ?? 0;
    const prompt = u?.prompt_tokens ?? 0;
    if (firstAt !== undefined && completion > 0) {
      const secs = Math.max(0.001, (endAt - firstAt) / 1000);
      parts.push(`${(completion / secs).toFixed(1)} tokens/s`);
    }
    parts.push(`${prompt} + ${completion} tokens`);
    const m = models.find((x) => x.id === id);
    if (m !== undefined && u) {
      const cost = (prompt * m.price_per_million.prompt + completion * m.price_per_million.completion) / 1e6;
      parts.push(`cost ${usd(cost)}`);
    }
    return parts.join(" · ");
  }

  return () => current?.abort();
};
