import { h } from "./dom.js";
import type { Page } from "./page.js";

function snippet(title: string, code: string): HTMLElement {
  const copy = h("button", { type: "button", class: "copy" }, "Copy");
  copy.addEventListener("click", () => {
    navigator.clipboard.writeText(code).then(
      () => {
        copy.textContent = "Copied";
      },
      () => {
        copy.textContent = "Select and copy";
      },
    );
  });
  return h(
    "section",
    { class: "snippet" },
    h("div", { class: "snippet-head" }, h("h2", {}, title), copy),
    h("pre", {}, h("code", {}, code)),
  );
}

/** Copy-ready calls with this router's real base URL; the key comes from the environment, never the page. */
export const docsPage: Page = (main) => {
  const base = `${location.origin}/v1`;
  const model = "<model id from the Network page>";
  main.append(
    h("h1", {}, "Docs"),
    h(
      "p",
      {},
      "This router speaks the OpenAI API at ",
      h("code", {}, base),
      " (and OpenRouter's paths under ",
      h("code", {}, `${location.origin}/api/v1`),
      "). Set ",
      h("code", {}, "TENSORCLAW_API_KEY"),
      " to your key.",
    ),
    snippet(
      "curl",
      `curl ${base}/chat/completions \\\n  -H "Authorization: Bearer $TENSORCLAW_API_KEY" \\\n  -H "Content-Type: application/json" \\\n  -d '{"model": "${model}", "messages": [{"role": "user", "content": "Hello!"}], "stream": true}'`,
    ),
    snippet(
      "Node (openai)",
      `import OpenAI from "openai";\n\nconst client = new OpenAI({ baseURL: "${base}", apiKey: process.env.TENSORCLAW_API_KEY });\nconst stream = await client.chat.completions.create({\n  model: "${model}",\n  messages: [{ role: "user", content: "Hello!" }],\n  stream: true,\n});\nfor await (const chunk of stream) process.stdout.write(chunk.choices[0]?.delta?.content ?? "");`,
    ),
    snippet(
      "Python (openai)",
      `import os\nfrom openai import OpenAI\n\nclient = OpenAI(base_url="${base}", api_key=os.environ["TENSORCLAW_API_KEY"])\nr = client.chat.completions.create(\n    model="${model}",\n    messages=[{"role": "user", "content": "Hello!"}],\n)\nprint(r.choices[0].message.content)`,
    ),
    snippet(
      "Network figures (JSON, no key needed)",
      `curl ${location.origin}/api/v1/network\ncurl ${location.origin}/api/v1/models/<url-encoded model id>/stats\ncurl ${location.origin}/api/v1/miners/<hotkey>`,
    ),
  );
  return undefined;
};
