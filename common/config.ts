import { TensorClawError } from "./errors.js";
import { parseRedisUrl, RedisUrlError } from "./redis-url.js";

/** How a setting's text is turned into a value. */
export type OptionKind = "string" | "int" | "number" | "bool" | "enum" | "list" | "url" | "redis-url";

/** One setting: a `--flag`, its `TENSORCLAW_*` variable and its checks. */
export interface OptionSpec {
  /** Flag name without dashes, kebab-case: `http-port`. */
  readonly flag: string;
  readonly kind: OptionKind;
  /** One line for `--help`. */
  readonly description: string;
  /** Environment variable; default `TENSORCLAW_` + the flag in upper snake case; false for none. */
  readonly env?: string | false;
  /** Allowed values for `enum`. */
  readonly choices?: readonly string[];
  /** Inclusive bounds for `int` and `number`. */
  readonly min?: number;
  readonly max?: number;
  /** Allowed URL schemes (without colon) for `url` and each item of a `list` of URLs. */
  readonly schemes?: readonly string[];
  /** Hide the value in help output (keys, mnemonics). */
  readonly secret?: boolean;
}

/** Specs keyed by the config property each one fills. */
export type OptionSpecs<T> = { readonly [K in keyof T]-?: OptionSpec };

/** The result of parsing a command line. */
export interface ParsedCommand<T> {
  readonly config: Readonly<T>;
  /** Arguments that are not flags, in order. */
  readonly positionals: readonly string[];
  /** `--help` or `-h` was given. */
  readonly help: boolean;
}

/** The environment variable a spec reads, or undefined for none. */
export function envName(spec: OptionSpec): string | undefined {
  if (spec.env === false) return undefined;
  return spec.env ?? `TENSORCLAW_${spec.flag.replace(/-/g, "_").toUpperCase()}`;
}

function fail(setting: string, why: string): never {
  throw new TensorClawError("config_invalid", `invalid setting ${setting}: ${why}`);
}

function parseBool(setting: string, text: string): boolean {
  const t = text.trim().toLowerCase();
  if (["1", "true", "yes", "on"].includes(t)) return true;
  if (["0", "false", "no", "off"].includes(t)) return false;
  return fail(setting, `expected true or false, got ${JSON.stringify(text)}`);
}

function checkUrl(setting: string, spec: OptionSpec, text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return fail(setting, `not a URL: ${JSON.stringify(text)}`);
  }
  const scheme = url.protocol.slice(0, -1);
  if (spec.schemes !== undefined && !spec.schemes.includes(scheme)) {
    return fail(setting, `scheme must be one of ${spec.schemes.join(", ")}, got ${JSON.stringify(scheme)}`);
  }
  return text;
}

function convert(setting: string, spec: OptionSpec, text: string): unknown {
  switch (spec.kind) {
    case "string":
      if (text === "") fail(setting, "must not be empty");
      return text;
    case "bool":
      return parseBool(setting, text);
    case "int":
    case "number": {
      const n =
        spec.kind === "int" ? (/^-?\d+$/.test(text.trim()) ? Number(text) : Number.NaN) : Number(text);
      if (!Number.isFinite(n) || text.trim() === "") {
        fail(
          setting,
          `expected ${spec.kind === "int" ? "an integer" : "a number"}, got ${JSON.stringify(text)}`,
        );
      }
      if (spec.min !== undefined && n < spec.min) fail(setting, `must be at least ${spec.min}, got ${n}`);
      if (spec.max !== undefined && n > spec.max) fail(setting, `must be at most ${spec.max}, got ${n}`);
      return n;
    }
    case "enum":
      if (!spec.choices?.includes(text)) {
        fail(setting, `must be one of ${(spec.choices ?? []).join(", ")}, got ${JSON.stringify(text)}`);
      }
      return text;
    case "url":
      return checkUrl(setting, spec, text);
    case "redis-url":
      // One server (redis://, rediss://) or a cluster's seed nodes (redis+cluster://h1:p1,h2:p2).
      try {
        parseRedisUrl(text);
      } catch (err) {
        if (err instanceof RedisUrlError) fail(setting, err.message);
        throw err;
      }
      return text;
    case "list":
      if (text === "") fail(setting, "must not be empty");
      return spec.schemes === undefined ? text : checkUrl(setting, spec, text);
  }
}

/**
 * Parses `argv` (flags after the subcommand) and `env` once, against the
 * specs, on top of `defaults`. Flags win over the environment, which wins
 * over defaults. An unknown flag, a missing value or a malformed value throws
 * a `config_invalid` error naming the setting. The result is frozen.
 */
export function parseCommand<T extends object>(
  specs: OptionSpecs<T>,
  defaults: T,
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): ParsedCommand<T> {
  const byFlag = new Map<string, [keyof T, OptionSpec]>();
  for (const key of Object.keys(specs) as (keyof T)[]) {
    const spec = specs[key];
    byFlag.set(spec.flag, [key, spec]);
  }
  const out: Record<string, unknown> = { ...(defaults as Record<string, unknown>) };
  const fromFlags = new Set<keyof T>();
  const positionals: string[] = [];
  let help = false;

  // Environment first, so flags can override it.
  for (const [key, spec] of byFlag.values()) {
    const name = envName(spec);
    const text = name === undefined ? undefined : env[name];
    if (text === undefined || text === "") continue;
    out[key as string] =
      spec.kind === "list"
        ? text
            .split(",")
            .map((s) => s.trim())
            .filter((s) => s !== "")
            .map((s) => convert(name ?? spec.flag, spec, s))
        : convert(name ?? spec.flag, spec, text);
  }

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === "--help" || arg === "-h") {
      help = true;
      continue;
    }
    if (!arg.startsWith("--")) {
      // A negative number ("-2.5": a correction) is an argument, not a flag.
      if (arg.startsWith("-") && arg !== "-" && !/^-\d/.test(arg)) {
        fail(arg, "unknown flag (flags take two dashes)");
      }
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const entry = byFlag.get(name);
    if (entry === undefined) fail(`--${name}`, "unknown flag; see --help");
    const [key, spec] = entry;
    let text: string;
    if (eq !== -1) {
      text = arg.slice(eq + 1);
    } else if (spec.kind === "bool") {
      text = "true";
    } else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith("--")) fail(`--${name}`, "missing value");
      text = next;
      i++;
    }
    const value = convert(`--${name}`, spec, text);
    if (spec.kind === "list") {
      const prev = fromFlags.has(key) ? (out[key as string] as unknown[]) : [];
      out[key as string] = [...prev, value];
    } else {
      out[key as string] = value;
    }
    fromFlags.add(key);
  }
  for (const v of Object.values(out)) if (Array.isArray(v)) Object.freeze(v);
  return Object.freeze({ config: Object.freeze(out) as T, positionals: Object.freeze(positionals), help });
}

/** Renders `--help` text: usage, summary, then one line per flag. */
export function formatHelp<T>(usage: string, summary: string, specs: OptionSpecs<T>, defaults: T): string {
  const rows: [string, string][] = [];
  for (const key of Object.keys(specs) as (keyof T)[]) {
    const spec = specs[key];
    const arg =
      spec.kind === "bool" ? "" : spec.kind === "enum" ? ` <${(spec.choices ?? []).join("|")}>` : " <value>";
    const def = defaults[key];
    const shown =
      spec.secret === true || def === undefined || (Array.isArray(def) && def.length === 0) || def === false
        ? ""
        : ` (default: ${Array.isArray(def) ? def.join(",") : String(def)})`;
    const env = envName(spec);
    const repeat = spec.kind === "list" ? " (repeatable)" : "";
    rows.push([
      `  --${spec.flag}${arg}`,
      `${spec.description}${repeat}${shown}${env ? ` [env ${env}]` : ""}`,
    ]);
  }
  rows.push(["  --help, -h", "Show this help."]);
  const width = Math.min(38, Math.max(...rows.map(([a]) => a.length)) + 2);
  const lines = rows.map(([a, b]) =>
    a.length >= width ? `${a}\n${" ".repeat(width)}${b}` : a.padEnd(width) + b,
  );
  return `Usage: ${usage}\n\n${summary}\n\nOptions:\n${lines.join("\n")}\n`;
}
