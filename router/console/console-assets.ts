import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

/** One file the console serves, ready to send. */
export interface ConsoleAsset {
  readonly contentType: string;
  readonly body: Buffer;
  /** The same bytes gzipped, sent to clients that accept gzip. */
  readonly gzip: Buffer;
  /** Hashed names never change content: cached for a year; the page itself is revalidated. */
  readonly immutable: boolean;
}

/** The built console: the page at `/` and its assets by path. */
export interface ConsoleBundle {
  readonly page: ConsoleAsset;
  readonly assets: ReadonlyMap<string, ConsoleAsset>;
  /** Bytes sent for the page and everything it loads, gzipped (the page-weight budget is 200 KB). */
  readonly transferBytes: number;
}

/** Where the console's assets are served from. */
export const ASSET_PREFIX = "/console/";

const WEB_DIR = fileURLToPath(new URL("./web/", import.meta.url));

/** A small mark in the tab, so the browser does not ask for /favicon.ico. */
const ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="#0f766e"/><path d="M9 10h14M16 10v13" stroke="#fff" stroke-width="3.5" stroke-linecap="round"/></svg>`;

function asset(contentType: string, body: Buffer | string, immutable: boolean): ConsoleAsset {
  const bytes = typeof body === "string" ? Buffer.from(body) : body;
  return { contentType, body: bytes, gzip: gzipSync(bytes, { level: 9 }), immutable };
}

function shortHash(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex").slice(0, 12);
}

/**
 * Bundles the console's TypeScript and CSS (web/) with esbuild, in memory,
 * and names each output by its content hash. The router calls it at
 * start-up, so the console is never a separate build step; it takes a few
 * tens of ms. esbuild is loaded here, not at import: a router started with
 * `--no-console` never loads it.
 */
export async function buildConsole(): Promise<ConsoleBundle> {
  const { build } = await import("esbuild");
  const out = await build({
    entryPoints: { app: `${WEB_DIR}main.ts`, style: `${WEB_DIR}style.css` },
    bundle: true,
    minify: true,
    format: "esm",
    target: ["es2022", "chrome110", "firefox110", "safari16"],
    write: false,
    outdir: "/console-out",
    legalComments: "none",
    logLevel: "silent",
  });
  const assets = new Map<string, ConsoleAsset>();
  let js = "";
  let css = "";
  for (const f of out.outputFiles) {
    const isJs = f.path.endsWith(".js");
    const name = `${isJs ? "app" : "style"}.${shortHash(f.contents)}.${isJs ? "js" : "css"}`;
    assets.set(
      `${ASSET_PREFIX}${name}`,
      asset(
        isJs ? "text/javascript; charset=utf-8" : "text/css; charset=utf-8",
        Buffer.from(f.contents),
        true,
      ),
    );
    if (isJs) js = name;
    else css = name;
  }
  const iconName = `icon.${shortHash(Buffer.from(ICON))}.svg`;
  assets.set(`${ASSET_PREFIX}${iconName}`, asset("image/svg+xml", ICON, true));
  const page = asset("text/html; charset=utf-8", pageHtml(js, css, iconName), false);
  let transferBytes = page.gzip.length;
  for (const a of assets.values()) transferBytes += a.gzip.length;
  return { page, assets, transferBytes };
}

/** The one HTML page: no inline script or style (the CSP forbids both); the app draws the rest. */
function pageHtml(js: string, css: string, icon: string): string {
  return [
    "<!doctype html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="color-scheme" content="light dark">',
    '<meta name="referrer" content="no-referrer">',
    "<title>TensorClaw console</title>",
    `<link rel="icon" href="${ASSET_PREFIX}${icon}" type="image/svg+xml">`,
    `<link rel="stylesheet" href="${ASSET_PREFIX}${css}">`,
    `<script type="module" src="${ASSET_PREFIX}${js}"></script>`,
    "</head>",
    "<body>",
    '<noscript><p class="noscript">The TensorClaw console needs JavaScript. The same figures are at /api/v1/network.</p></noscript>',
    "</body>",
    "</html>",
    "",
  ].join("\n");
}
