import { h, replace } from "./dom.js";
import type { Page } from "./page.js";
import { accountPage } from "./page-account.js";
import { docsPage } from "./page-docs.js";
import { minerPage } from "./page-miner.js";
import { modelPage } from "./page-model.js";
import { networkPage } from "./page-network.js";
import { playgroundPage } from "./page-playground.js";

/*
 * The console's shell: a header with the pages, and a hash router (`#/...`)
 * so every page is one document served at `/` and no route of the API is
 * shadowed.
 */

const PAGES: readonly { path: string; title: string; page: Page; nav: boolean }[] = [
  { path: "network", title: "Network", page: networkPage, nav: true },
  { path: "playground", title: "Playground", page: playgroundPage, nav: true },
  { path: "account", title: "Account", page: accountPage, nav: true },
  { path: "miners", title: "Miners", page: minerPage, nav: true },
  { path: "docs", title: "Docs", page: docsPage, nav: true },
  { path: "models", title: "Model", page: modelPage, nav: false },
];

const navLinks = new Map<string, HTMLAnchorElement>();
const main = h("main", { id: "main", tabindex: "-1" });
let stop: (() => void) | undefined;

function render(): void {
  stop?.();
  stop = undefined;
  const parts = location.hash
    .replace(/^#\/?/, "")
    .split("/")
    .map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        return p;
      }
    });
  const name = parts[0] === "" || parts[0] === undefined ? "network" : parts[0];
  const entry = PAGES.find((p) => p.path === name) ?? PAGES[0];
  if (entry === undefined) return;
  for (const [path, a] of navLinks) {
    if (path === entry.path) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = `${entry.title} · TensorClaw`;
  replace(main);
  stop = entry.page(main, parts.slice(1)) ?? undefined;
}

function shell(): void {
  const nav = h("nav", { "aria-label": "Console pages" });
  for (const p of PAGES) {
    if (!p.nav) continue;
    const a = h("a", { href: `#/${p.path}` }, p.title);
    navLinks.set(p.path, a);
    nav.appendChild(a);
  }
  const skip = h("a", { class: "skip", href: "#main" }, "Skip to content");
  skip.addEventListener("click", (e) => {
    e.preventDefault();
    main.focus();
  });
  document.body.append(
    skip,
    h(
      "header",
      { class: "top" },
      h(
        "a",
        { class: "brand", href: "#/network" },
        h("span", { class: "logo", "aria-hidden": "true" }, "T"),
        "TensorClaw",
      ),
      nav,
    ),
    main,
    h(
      "footer",
      {},
      "OpenAI-compatible API at ",
      h("code", {}, `${location.origin}/v1`),
      " · figures at ",
      h("code", {}, "/api/v1/network"),
    ),
  );
}

shell();
window.addEventListener("hashchange", render);
render();
