/**
 * Building the DOM without markup: every string becomes a text node, so a
 * model id, hotkey or error text from a miner is shown, never parsed. There
 * is no innerHTML anywhere in the console.
 */

/** A child of `h`: a node, text, or nothing (skipped). */
export type Child = Node | string | number | null | undefined | false;

/** Attributes `h` sets: plain strings, set with setAttribute (never event handlers). */
export type Attrs = Record<string, string | undefined>;

/** An element with attributes and children; strings and numbers become text nodes. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined) continue;
    if (name.startsWith("on")) throw new Error(`h: event attribute ${name} refused; use addEventListener`);
    el.setAttribute(name, value);
  }
  append(el, children);
  return el;
}

/** Appends children (text as text nodes). */
export function append(el: Node, children: readonly Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
}

/** Replaces every child of `el`. */
export function replace(el: Node, ...children: Child[]): void {
  while (el.firstChild !== null) el.removeChild(el.firstChild);
  append(el, children);
}

/** A link inside the console (hash routes). */
export function link(route: string, ...children: Child[]): HTMLAnchorElement {
  return h("a", { href: `#${route}` }, ...children);
}

/** A table with a header row; each row is a list of cells. */
export function table(caption: string, head: readonly string[], rows: readonly Child[][]): HTMLElement {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, ...head.map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, ...rows.map((r) => h("tr", {}, ...r.map((c) => h("td", {}, c))))),
    ),
  );
}

/** A figure card: a label and a value with its unit. */
export function stat(label: string, value: Child, unit = ""): HTMLElement {
  return h(
    "div",
    { class: "stat" },
    h("div", { class: "stat-label" }, label),
    h("div", { class: "stat-value" }, value, unit === "" ? null : h("span", { class: "unit" }, ` ${unit}`)),
  );
}

/** A short message in place of content (loading, empty, error). */
export function note(text: string, kind: "muted" | "error" = "muted"): HTMLElement {
  return h("p", { class: `note ${kind}`, role: kind === "error" ? "alert" : undefined }, text);
}
