import { defineCommand } from "../../common/command.js";
import { parseCommand } from "../../common/config.js";
import { TensorClawError } from "../../common/errors.js";
import { checkModelId, checkMultiplier, DEFAULT_TIER_MULTIPLIER } from "../ledger/ledger.js";
import { checkEntry, defaultEntry } from "./entry.js";
import {
  CATALOGUE_STORE_DEFAULTS,
  CATALOGUE_STORE_OPTIONS,
  type CatalogueStoreConfig,
  openCatalogueStore,
} from "./open-store.js";

/** Settings of `tensorclaw router tiers`: where the catalogue is. */
export type TiersConfig = CatalogueStoreConfig;
/** Defaults, in one place. */
export const TIERS_DEFAULTS: TiersConfig = CATALOGUE_STORE_DEFAULTS;
/** Flags and environment variables of `tensorclaw router tiers`. */
export const TIERS_OPTIONS = CATALOGUE_STORE_OPTIONS;

/** Parses a multiplier argument strictly (plain decimal, no hex/exponent surprises). */
export function parseMultiplier(text: string): number {
  if (!/^\d+(\.\d+)?$/.test(text)) {
    throw new TensorClawError(
      "invalid_request",
      `multiplier must be a plain decimal number, got ${JSON.stringify(text)}`,
    );
  }
  return checkMultiplier(Number(text));
}

const USAGE = "tensorclaw router tiers set <model> <multiplier> | list | remove <model> [options]";

/** What `router tiers` was asked to do. */
export interface TiersVerb {
  readonly action: "set" | "list" | "remove";
  /** The model (empty for list). */
  readonly model: string;
  /** The multiplier to set (the default for list and remove). */
  readonly multiplier: number;
}

const ARITY = { set: 2, list: 0, remove: 1 } as const;

/** Checks the positional arguments of `router tiers` (verb, model, multiplier); throws naming the fault. */
export function parseTiersVerb(positionals: readonly string[]): TiersVerb {
  const [verb, ...args] = positionals;
  if (verb !== "set" && verb !== "list" && verb !== "remove") throw new Error("expected set, list or remove");
  if (args.length !== ARITY[verb]) throw new Error(`${verb} takes ${ARITY[verb]} argument(s)`);
  return {
    action: verb,
    model: verb === "list" ? "" : checkModelId(args[0] as string),
    multiplier: verb === "set" ? parseMultiplier(args[1] as string) : DEFAULT_TIER_MULTIPLIER,
  };
}

/**
 * `tensorclaw router tiers`: the tier column of the model catalogue, kept as
 * a shorthand. `set` changes a model's tier (adding the model, with default
 * details, when it is not in the catalogue); `remove` takes the model out of
 * the catalogue.
 */
export const tiersCommand = defineCommand({
  name: "router tiers",
  usage: USAGE,
  description:
    "Business points = tokens / 10,000 × the model's tier multiplier. `set` changes the tier of a catalogue\n" +
    "model, adding it with default details when it is not there (so it becomes routable); `remove` takes\n" +
    "the model out of the catalogue. Changes go to Redis (--redis-url / REDIS_URL, audited in\n" +
    "<prefix>{tiers}:log) or, without it, to <data-dir>/catalogue.jsonl; running routers pick them up.",
  options: TIERS_OPTIONS,
  defaults: TIERS_DEFAULTS,
  parse: (argv, env) => parseCommand(TIERS_OPTIONS, TIERS_DEFAULTS, argv, env),
  main: async (parsed, io) => {
    let verb: TiersVerb;
    try {
      verb = parseTiersVerb(parsed.positionals);
    } catch (err) {
      io.stderr(`tensorclaw router tiers: ${(err as Error).message}\nUsage: ${USAGE}\n`);
      return 2;
    }
    const { action, model, multiplier } = verb;
    const now = Date.now();
    const store = await openCatalogueStore(parsed.config, now);
    try {
      const { entries } = await store.read();
      if (action === "list") {
        if (entries.length === 0) io.stdout("no tiers set: the catalogue is empty\n");
        for (const e of entries) io.stdout(`${e.id}\t${e.tier}\n`);
        return 0;
      }
      if (action === "set") {
        const current = entries.find((e) => e.id === model);
        await store.set(
          current === undefined
            ? defaultEntry(model, multiplier)
            : checkEntry({ ...current, tier: multiplier }),
          now,
        );
        io.stdout(`${model}\t${multiplier}\n`);
        return 0;
      }
      if (await store.remove(model, now)) {
        io.stdout(`removed ${model} from the catalogue\n`);
        return 0;
      }
      io.stderr(`tensorclaw router tiers: no tier entry for ${model}\n`);
      return 1;
    } finally {
      await store.close();
    }
  },
});
