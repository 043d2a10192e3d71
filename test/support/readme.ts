// Reads README.md the way a newcomer uses it: the per-program sections with
// their flag tables, and the shell commands in its fenced blocks. The
// programs' settings come from their config declarations, so a flag added to a
// config.ts and not to the README (or the other way round) fails a test.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  DEMO_MODEL_DEFAULTS,
  DEMO_MODEL_OPTIONS,
  parseDemoModelCommand,
} from "../../cli/demo-model-config.js";
import { DEV_DEFAULTS, DEV_OPTIONS, parseDevCommand } from "../../cli/dev-config.js";
import { KEYS_DEFAULTS, KEYS_OPTIONS, parseKeysCommand } from "../../cli/keys.js";
import { type OptionSpec, type ParsedCommand, parseCommand } from "../../common/config.js";
import { TensorClawError } from "../../common/errors.js";
import { MINER_DEFAULTS, MINER_OPTIONS, parseMinerCommand } from "../../miner/config.js";
import { MODELS_DEFAULTS, MODELS_OPTIONS, parseModelsVerb } from "../../router/catalogue/models-command.js";
import { parseTiersVerb, TIERS_DEFAULTS, TIERS_OPTIONS } from "../../router/catalogue/tiers-command.js";
import { parseRouterCommand, ROUTER_DEFAULTS, ROUTER_OPTIONS } from "../../router/config.js";
import { parseValidatorCommand, VALIDATOR_DEFAULTS, VALIDATOR_OPTIONS } from "../../validator/config.js";

/** The README's text. */
export const README = readFileSync(fileURLToPath(new URL("../../README.md", import.meta.url)), "utf8");

type Parse = (
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
) => ParsedCommand<object>;

/** One program of the CLI as the README documents it: `tensorclaw <name>`. */
export interface Program {
  /** Words after `tensorclaw`: `router`, `router tiers`, … */
  readonly name: string;
  readonly options: Readonly<Record<string, OptionSpec>>;
  readonly defaults: object;
  /** The program's own parser (flags, environment, and its checks). */
  readonly parse: Parse;
  /** Throws when the program would refuse these positional arguments (its parser may check them itself). */
  readonly checkPositionals: (args: readonly string[]) => void;
}

function refuse(why: string): never {
  throw new TensorClawError("config_invalid", why);
}

function noPositionals(args: readonly string[]): void {
  if (args.length > 0) refuse(`unexpected argument ${JSON.stringify(args[0])}`);
}

/** `router tiers` checks its verb and arguments in its main, with parseTiersVerb: the same check, without a ledger. */
function tierPositionals(args: readonly string[]): void {
  try {
    parseTiersVerb(args);
  } catch (err) {
    refuse((err as Error).message);
  }
}

/** `router models` checks its verb and id in its main, with parseModelsVerb. */
function modelsPositionals(args: readonly string[]): void {
  try {
    parseModelsVerb(args);
  } catch (err) {
    refuse((err as Error).message);
  }
}

/** Every program, with the declarations its config reads. */
export const PROGRAMS: readonly Program[] = [
  {
    name: "dev",
    options: DEV_OPTIONS,
    defaults: DEV_DEFAULTS,
    parse: parseDevCommand,
    checkPositionals: noPositionals,
  },
  {
    name: "router",
    options: ROUTER_OPTIONS,
    defaults: ROUTER_DEFAULTS,
    parse: parseRouterCommand,
    checkPositionals: noPositionals,
  },
  {
    name: "router models",
    options: MODELS_OPTIONS,
    defaults: MODELS_DEFAULTS,
    parse: (argv, env) => parseCommand(MODELS_OPTIONS, MODELS_DEFAULTS, argv, env),
    checkPositionals: modelsPositionals,
  },
  {
    name: "router tiers",
    options: TIERS_OPTIONS,
    defaults: TIERS_DEFAULTS,
    parse: (argv, env) => parseCommand(TIERS_OPTIONS, TIERS_DEFAULTS, argv, env),
    checkPositionals: tierPositionals,
  },
  {
    name: "keys",
    options: KEYS_OPTIONS,
    defaults: KEYS_DEFAULTS,
    parse: parseKeysCommand,
    checkPositionals: () => {},
  },
  {
    name: "miner",
    options: MINER_OPTIONS,
    defaults: MINER_DEFAULTS,
    parse: parseMinerCommand,
    checkPositionals: noPositionals,
  },
  {
    name: "validator",
    options: VALIDATOR_OPTIONS,
    defaults: VALIDATOR_DEFAULTS,
    parse: parseValidatorCommand,
    checkPositionals: () => {},
  },
  {
    name: "demo-model",
    options: DEMO_MODEL_OPTIONS,
    defaults: DEMO_MODEL_DEFAULTS,
    parse: parseDemoModelCommand,
    checkPositionals: noPositionals,
  },
];

/** The default `--help` shows for a setting, or undefined when it shows none. */
export function shownDefault(program: Program, key: string): string | undefined {
  const spec = program.options[key] as OptionSpec;
  const value = (program.defaults as Record<string, unknown>)[key];
  if (spec.secret === true || value === undefined || value === false) return undefined;
  if (Array.isArray(value)) return value.length === 0 ? undefined : value.join(",");
  return String(value);
}

/**
 * The text of the section headed ``### `tensorclaw <name>` …``, up to the
 * next heading of level 3 or higher; undefined when there is none.
 */
export function readmeSection(readme: string, name: string): string | undefined {
  const lines = readme.split("\n");
  const start = lines.findIndex((l) => l.startsWith(`### \`tensorclaw ${name}\``));
  if (start === -1) return undefined;
  const rest = lines.slice(start + 1);
  const end = rest.findIndex((l) => /^#{1,3} /.test(l));
  return rest.slice(0, end === -1 ? undefined : end).join("\n");
}

/** One row of a section's `| flag | env | default | meaning |` table. */
export interface FlagRow {
  readonly flag: string;
  readonly env: string;
  readonly default: string;
  readonly meaning: string;
}

/** The rows of the flag table in a section (empty when it has none). */
export function flagTable(section: string): FlagRow[] {
  const lines = section.split("\n");
  const head = lines.findIndex((l) => /^\|\s*flag\s*\|\s*env\s*\|\s*default\s*\|\s*meaning\s*\|$/.test(l));
  if (head === -1) return [];
  const rows: FlagRow[] = [];
  for (const line of lines.slice(head + 2)) {
    if (!line.startsWith("|")) break;
    const cells = line
      .slice(1, line.endsWith("|") ? -1 : undefined)
      .split("|")
      .map((c) => c.trim());
    rows.push({
      flag: cells[0] ?? "",
      env: cells[1] ?? "",
      default: cells[2] ?? "",
      meaning: cells.slice(3).join("|"),
    });
  }
  return rows;
}

/** The `` `code` `` spans of a table cell. */
export function codeSpans(cell: string): string[] {
  return [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1] as string);
}

/** A `tensorclaw` invocation found in one of the README's shell blocks. */
export interface ReadmeCommand {
  /** The line as written (continuations joined). */
  readonly line: string;
  /** The arguments after `tensorclaw` (`npm start -- …` is `dev …`). */
  readonly argv: readonly string[];
}

/** Splits one shell line into words: quotes group, `#` at the start of a word starts a comment. */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let quote: string | undefined;
  for (const ch of line) {
    if (quote !== undefined) {
      if (ch === quote) quote = undefined;
      else word += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      word ??= "";
    } else if (/\s/.test(ch)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (ch === "#" && word === undefined) {
      break;
    } else {
      word = (word ?? "") + ch;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** The simple commands of the README's `sh` blocks, each as its words. */
export function readmeShellCommands(readme: string): { line: string; words: string[] }[] {
  const out: { line: string; words: string[] }[] = [];
  for (const block of readme.matchAll(/^```(?:sh|bash|shell)\n([\s\S]*?)^```/gm)) {
    const joined = (block[1] as string).replace(/\\\n\s*/g, " ");
    for (const line of joined.split("\n")) {
      let words: string[] = [];
      for (const w of [...shellWords(line), ";"]) {
        if (["&&", "||", ";", "|"].includes(w)) {
          if (words.length > 0) out.push({ line: line.trim().replace(/\s+/g, " "), words });
          words = [];
        } else {
          words.push(w);
        }
      }
    }
  }
  return out;
}

/** Every `tensorclaw` invocation in the README's shell blocks. */
export function readmeCommands(readme: string): ReadmeCommand[] {
  const out: ReadmeCommand[] = [];
  for (const { line, words } of readmeShellCommands(readme)) {
    const [a, b, ...rest] = words;
    if ((a === "npx" && b === "tensorclaw") || (a === "node" && b === "bin/tensorclaw.js")) {
      out.push({ line, argv: rest });
    } else if (a === "npm" && b === "start") {
      out.push({ line, argv: ["dev", ...(rest[0] === "--" ? rest.slice(1) : rest)] });
    }
  }
  return out;
}

/** The program an invocation runs and its arguments, the way `cli/main.ts` dispatches; undefined for top-level. */
export function resolveProgram(argv: readonly string[]): { program: Program; args: string[] } | undefined {
  const [first, second] = argv;
  const name = first === "router" && (second === "tiers" || second === "models") ? `router ${second}` : first;
  const program = PROGRAMS.find((p) => p.name === name);
  if (program === undefined) return undefined;
  return { program, args: argv.slice(name?.split(" ").length ?? 0) };
}
