import { defineCommand } from "../../common/command.js";
import { type OptionSpecs, parseCommand } from "../../common/config.js";
import { checkModelId } from "../ledger/ledger.js";
import {
  type CatalogueEntry,
  checkEntry,
  defaultEntry,
  formatEntryLine,
  TOKENIZERS,
  type TokenizerName,
} from "./entry.js";
import {
  CATALOGUE_STORE_DEFAULTS,
  CATALOGUE_STORE_OPTIONS,
  type CatalogueStoreConfig,
  openCatalogueStore,
} from "./open-store.js";

/** Settings of `tensorclaw router models`: where the catalogue is, and the fields `set` writes. */
export interface ModelsConfig extends CatalogueStoreConfig {
  tier: number | undefined;
  tokenizer: string | undefined;
  contextLength: number | undefined;
  pricePrompt: number | undefined;
  priceCompletion: number | undefined;
  alias: string[];
}

/** Defaults: a field `set` is not given keeps its current value (or the default of a new entry). */
// check-spreads: allow (built once; the store's settings come first, as in --help)
export const MODELS_DEFAULTS: ModelsConfig = {
  ...CATALOGUE_STORE_DEFAULTS,
  tier: undefined,
  tokenizer: undefined,
  contextLength: undefined,
  pricePrompt: undefined,
  priceCompletion: undefined,
  alias: [],
};

/** Flags of `tensorclaw router models`. The entry fields have no environment variables. */
// check-spreads: allow (built once; the key order is the order of --help)
export const MODELS_OPTIONS: OptionSpecs<ModelsConfig> = {
  ...CATALOGUE_STORE_OPTIONS,
  tier: {
    flag: "tier",
    kind: "number",
    env: false,
    min: 0,
    max: 1000,
    description: "set: tier multiplier of the model's business points (new models: 1).",
  },
  tokenizer: {
    flag: "tokenizer",
    kind: "enum",
    env: false,
    choices: TOKENIZERS,
    description: "set: encoding the router counts the model's tokens with (new models: o200k_base).",
  },
  contextLength: {
    flag: "context-length",
    kind: "int",
    env: false,
    min: 0,
    description: "set: context window in tokens (new models: 0, unknown).",
  },
  pricePrompt: {
    flag: "price-prompt",
    kind: "number",
    env: false,
    min: 0,
    description: "set: USD per million prompt tokens (new models: 0).",
  },
  priceCompletion: {
    flag: "price-completion",
    kind: "number",
    env: false,
    min: 0,
    description: "set: USD per million completion tokens (new models: 0).",
  },
  alias: {
    flag: "alias",
    kind: "list",
    env: false,
    description: "set: another name of the model (repeat for several; replaces the aliases).",
  },
};

const USAGE = "tensorclaw router models set <id> [--tier N …] | list | remove <id> [options]";
const ARITY = { set: 1, list: 0, remove: 1 } as const;
const ENTRY_FLAGS = [
  "tier",
  "tokenizer",
  "contextLength",
  "pricePrompt",
  "priceCompletion",
  "alias",
] as const;

/** What `router models` was asked to do. */
export interface ModelsVerb {
  readonly action: "set" | "list" | "remove";
  /** The model id (empty for list). */
  readonly id: string;
}

/** Checks the positional arguments of `router models`; throws naming the fault. */
export function parseModelsVerb(positionals: readonly string[]): ModelsVerb {
  const [verb, ...args] = positionals;
  if (verb !== "set" && verb !== "list" && verb !== "remove") throw new Error("expected set, list or remove");
  if (args.length !== ARITY[verb]) throw new Error(`${verb} takes ${ARITY[verb]} argument(s)`);
  return { action: verb, id: verb === "list" ? "" : checkModelId(args[0] as string) };
}

/** The entry `set` writes: the current one (or a new default) with the given fields replaced. */
export function mergeEntry(current: CatalogueEntry | undefined, id: string, c: ModelsConfig): CatalogueEntry {
  const base = current ?? defaultEntry(id);
  return checkEntry({
    id,
    tier: c.tier ?? base.tier,
    tokenizer: (c.tokenizer as TokenizerName | undefined) ?? base.tokenizer,
    contextLength: c.contextLength ?? base.contextLength,
    pricePromptPerM: c.pricePrompt ?? base.pricePromptPerM,
    priceCompletionPerM: c.priceCompletion ?? base.priceCompletionPerM,
    aliases: c.alias.length > 0 ? c.alias : base.aliases,
  });
}

/** `tensorclaw router models`: the operator's model catalogue. */
export const modelsCommand = defineCommand({
  name: "router models",
  usage: USAGE,
  description:
    "The catalogue says which models the router routes (ids and aliases; any id with --open-catalogue),\n" +
    "how it counts their tokens, what their tokens earn (tier) and what they cost (USD per million tokens).\n" +
    "Changes go to Redis (--redis-url / REDIS_URL, audited in <prefix>{tiers}:log) or, without it, to\n" +
    "<data-dir>/catalogue.jsonl; running routers pick them up within a few seconds.\n" +
    "list prints: id, tier, tokenizer, context length, prompt/completion price, aliases (tab-separated).",
  options: MODELS_OPTIONS,
  defaults: MODELS_DEFAULTS,
  parse: (argv, env) => parseCommand(MODELS_OPTIONS, MODELS_DEFAULTS, argv, env),
  main: async (parsed, io) => {
    const usageError = (why: string) => {
      io.stderr(`tensorclaw router models: ${why}\nUsage: ${USAGE}\n`);
      return 2;
    };
    let verb: ModelsVerb;
    try {
      verb = parseModelsVerb(parsed.positionals);
    } catch (err) {
      return usageError((err as Error).message);
    }
    const cfg = parsed.config;
    if (verb.action !== "set") {
      const given = ENTRY_FLAGS.find((k) => (k === "alias" ? cfg.alias.length > 0 : cfg[k] !== undefined));
      if (given !== undefined) return usageError(`--${MODELS_OPTIONS[given].flag} applies to set only`);
    }
    const now = Date.now();
    const store = await openCatalogueStore(cfg, now);
    try {
      const { entries } = await store.read();
      if (verb.action === "list") {
        if (entries.length === 0) io.stdout("the catalogue is empty\n");
        for (const e of entries) io.stdout(`${formatEntryLine(e)}\n`);
        return 0;
      }
      if (verb.action === "set") {
        let entry: CatalogueEntry;
        try {
          entry = mergeEntry(
            entries.find((e) => e.id === verb.id),
            verb.id,
            cfg,
          );
        } catch (err) {
          return usageError((err as Error).message);
        }
        const clash = entries.find(
          (e) =>
            e.id !== entry.id &&
            (entry.aliases.includes(e.id) || e.aliases.some((a) => entry.aliases.includes(a))),
        );
        if (clash !== undefined) return usageError(`an alias of ${entry.id} already names ${clash.id}`);
        if (entries.some((e) => e.aliases.includes(entry.id))) {
          return usageError(`${entry.id} is already an alias of another model`);
        }
        await store.set(entry, now);
        io.stdout(`${formatEntryLine(entry)}\n`);
        return 0;
      }
      if (await store.remove(verb.id, now)) {
        io.stdout(`removed ${verb.id} from the catalogue\n`);
        return 0;
      }
      io.stderr(`tensorclaw router models: ${verb.id} is not in the catalogue\n`);
      return 1;
    } finally {
      await store.close();
    }
  },
});
