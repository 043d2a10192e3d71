import { randomBytes } from "node:crypto";
import { basename, dirname, join } from "node:path";
import { type CommandIO, defineCommand } from "../common/command.js";
import { type OptionSpecs, parseCommand } from "../common/config.js";
import { TensorClawError } from "../common/errors.js";
import { replicaWaitOf } from "../common/redis-batch.js";
import { connectRedis, openRedis, type RedisClient } from "../common/redis-connect.js";
import { DEFAULT_REDIS_WAIT_TIMEOUT_MS, redisWaitOptions } from "../common/shared-options.js";
import {
  type ApiKeyRecord,
  type ApiKeyStore,
  ApiKeys,
  DEFAULT_KEYS_FILE,
  FileApiKeyStore,
  RedisApiKeyStore,
} from "../router/api/keys.js";
import type { CreditEntry } from "../router/billing/billing.js";
import type { Micros } from "../router/billing/money.js";
import { type KeysBilling, offlineKeysBilling, redisKeysBilling } from "./keys-billing.js";
import { printDepositAddress } from "./keys-deposit.js";
import { listLine, parseUsd, showText, usd } from "./keys-format.js";

/** Settings of `tensorclaw keys`. */
export interface KeysConfig {
  redisUrl: string | undefined;
  redisWaitReplicas: number;
  redisWaitTimeoutMs: number;
  dataDir: string;
  keysFile: string | undefined;
  name: string;
  rpm: number;
  tpm: number;
  credits: string | undefined;
  budgetDaily: string | undefined;
  note: string | undefined;
  entryId: string | undefined;
  entries: number;
  json: boolean;
}

/** Defaults, in one place. */
export const KEYS_DEFAULTS: KeysConfig = {
  redisUrl: undefined,
  redisWaitReplicas: 0,
  redisWaitTimeoutMs: DEFAULT_REDIS_WAIT_TIMEOUT_MS,
  dataDir: dirname(DEFAULT_KEYS_FILE),
  keysFile: undefined,
  name: "default",
  rpm: 60,
  tpm: 100_000,
  credits: undefined,
  budgetDaily: undefined,
  note: undefined,
  entryId: undefined,
  entries: 10,
  json: false,
};

/** Name of the embedded billing journal in the router's --data-dir. */
export const BILLING_FILE = "billing.jsonl";
/** Note of the credit entry `create --credits` opens an account with. */
export const INITIAL_CREDITS_NOTE = "initial credits";

/** Flags and environment variables of `tensorclaw keys`. */
export const KEYS_OPTIONS: OptionSpecs<KeysConfig> = {
  redisUrl: {
    flag: "redis-url",
    kind: "redis-url",
    env: "REDIS_URL",
    description:
      "Redis of the router (redis://host:port or redis+cluster://h1:p1,h2:p2); without it the embedded key file is used.",
  },
  ...redisWaitOptions(
    "a key's record, its account's settings and each credit entry",
    "a write they miss fails the command, which says how to repeat it",
    "before the command fails",
  ),
  dataDir: {
    flag: "data-dir",
    kind: "string",
    description:
      "The router's --data-dir: without Redis its keys are in <data-dir>/api-keys.json and their " +
      "balances in <data-dir>/billing.jsonl.",
  },
  keysFile: {
    flag: "keys-file",
    kind: "string",
    description:
      "Key file of a router without Redis (overrides --data-dir; billing.jsonl is read beside it).",
  },
  name: { flag: "name", kind: "string", description: "create: a label for the key." },
  rpm: {
    flag: "rpm",
    kind: "int",
    min: 0,
    max: 10_000_000,
    description: "create: requests per minute (0: unlimited).",
  },
  tpm: {
    flag: "tpm",
    kind: "int",
    min: 0,
    max: 1_000_000_000,
    description: "create: tokens per minute (0: unlimited).",
  },
  credits: {
    flag: "credits",
    kind: "string",
    env: false,
    description:
      "create: open a metered account with this many USD of credit (0: metered, nothing yet); " +
      "without it the key is unmetered.",
  },
  budgetDaily: {
    flag: "budget-daily",
    kind: "string",
    env: false,
    description: "create: most the key may spend per UTC day, in USD (needs --credits).",
  },
  note: {
    flag: "note",
    kind: "string",
    env: false,
    description: "credit: why (kept in the key's audited credit log).",
  },
  entryId: {
    flag: "entry-id",
    kind: "string",
    env: false,
    description:
      "credit: the entry's id (op:<your reference>, or the op:… id a failed run printed); " +
      "an entry is applied once per id, so repeating a credit with it never credits twice.",
  },
  entries: {
    flag: "entries",
    kind: "int",
    env: false,
    min: 0,
    max: 1000,
    description: "show: how many of the latest credit entries to print.",
  },
  json: { flag: "json", kind: "bool", description: "Print JSON instead of text." },
};

function usageError(message: string): never {
  throw new TensorClawError("config_invalid", message);
}

/** Positional arguments after each verb. */
const ARITY = { create: 0, list: 0, revoke: 1, credit: 2, show: 1, "deposit-address": 1 } as const;
type Verb = keyof typeof ARITY;
const ARGS: Readonly<Record<Verb, string>> = {
  create: "",
  list: "",
  revoke: "revoke takes exactly one key id (see `keys list`)",
  credit: "credit takes a key id and a USD amount: keys credit <id> <amount> [--note …]",
  show: "show takes exactly one key id (see `keys list`)",
  "deposit-address": "deposit-address takes exactly one key id (see `keys list`)",
};

function isVerb(v: string | undefined): v is Verb {
  return v !== undefined && Object.hasOwn(ARITY, v);
}

/**
 * Parses `tensorclaw keys` arguments: a verb (create|list|revoke|credit|show),
 * its positionals (a key id; for credit also a USD amount, negative for a
 * correction) and flags. Amounts are checked here, so a typo is a usage
 * error (exit 2) before anything is stored.
 */
export function parseKeysCommand(argv: readonly string[], env: Readonly<Record<string, string | undefined>>) {
  const parsed = parseCommand(KEYS_OPTIONS, KEYS_DEFAULTS, argv, env);
  const [verb, ...rest] = parsed.positionals;
  if (!isVerb(verb))
    usageError("expected a subcommand: create, list, revoke, credit, show or deposit-address");
  if (rest.length !== ARITY[verb]) {
    if (ARITY[verb] === 0) usageError(`unexpected argument ${JSON.stringify(rest[0])}`);
    usageError(ARGS[verb]);
  }
  const { credits, budgetDaily } = parsed.config;
  if (credits !== undefined && parseUsd("--credits", credits) < 0) {
    usageError("invalid setting --credits: must be at least 0");
  }
  if (budgetDaily !== undefined) {
    if (parseUsd("--budget-daily", budgetDaily) < 0)
      usageError("invalid setting --budget-daily: must be at least 0");
    if (credits === undefined) {
      usageError("invalid setting --budget-daily: needs --credits (a budget applies to a metered key)");
    }
  }
  if (verb === "credit" && parseUsd("amount", rest[1] as string) === 0) {
    usageError("invalid setting amount: must not be 0");
  }
  const entryId = parsed.config.entryId;
  if (entryId !== undefined) {
    if (verb !== "credit") usageError("invalid setting --entry-id: only credit takes it");
    if (!ENTRY_ID.test(entryId)) {
      usageError(
        "invalid setting --entry-id: must be op: and 1-120 letters, digits or . _ : - (for example op:invoice-42)",
      );
    }
  }
  if (parsed.config.redisWaitReplicas > 0 && parsed.config.redisUrl === undefined) {
    usageError("invalid setting --redis-wait-replicas: needs --redis-url (the key file has no replicas)");
  }
  return parsed;
}

/** An operator's own credit entry id (`--entry-id`): the op: prefix keeps it apart from deposits' and initial credits'. */
const ENTRY_ID = /^op:[A-Za-z0-9._:-]{1,120}$/;

/** An id for an operator's credit entry: unique, and telling when it was made. */
function creditEntryId(nowMs: number): string {
  return `op:${nowMs}:${randomBytes(8).toString("hex")}`;
}

/** `tensorclaw keys`. */
export const keysCommand = defineCommand({
  name: "keys",
  usage: "tensorclaw keys create|list|revoke <id>|credit <id> <usd>|show <id>|deposit-address <id> [options]",
  description:
    "Keys are stored hashed: in Redis when --redis-url / REDIS_URL is given (as the router uses it),\n" +
    "otherwise in the router's embedded key file (<data-dir>/api-keys.json, or --keys-file). A new key\n" +
    "is printed once and cannot be shown again.\n" +
    "Balances live beside them (Redis, or <data-dir>/billing.jsonl). `create --credits 10` opens a\n" +
    "metered key; `credit <id> 5 --note …` adds an audited credit entry (negative: a correction);\n" +
    "`show <id>` prints limits, balance, budget, spend and credit entries.",
  options: KEYS_OPTIONS,
  defaults: KEYS_DEFAULTS,
  parse: parseKeysCommand,
  main: async (parsed, io) => {
    const cfg = parsed.config;
    const [verb, id, amount] = parsed.positionals as [Verb, string | undefined, string | undefined];
    let redis: RedisClient | undefined;
    let store: ApiKeyStore;
    let billing: KeysBilling;
    if (cfg.redisUrl !== undefined) {
      // One server or a cluster; ioredis is loaded only now (the key file and `--help` do without it).
      redis = await openRedis(cfg.redisUrl, {
        maxRetriesPerRequest: 1,
        retryStrategy: () => null,
        lazyConnect: true,
      });
      // A connection failure is the error connectRedis throws.
      redis.on("error", () => {});
      await connectRedis(redis, cfg.redisUrl);
      const wait = replicaWaitOf(cfg);
      store = new RedisApiKeyStore(redis, undefined, undefined, undefined, wait);
      billing = redisKeysBilling(redis, wait);
    } else {
      const keysFile = cfg.keysFile ?? join(cfg.dataDir, basename(DEFAULT_KEYS_FILE));
      store = new FileApiKeyStore(keysFile);
      billing = offlineKeysBilling(join(dirname(keysFile), BILLING_FILE));
    }
    const keys = new ApiKeys(store);
    const ctx: VerbContext = { cfg, keys, billing, io };
    try {
      switch (verb) {
        case "create":
          return await create(ctx);
        case "list":
          return await list(ctx);
        case "revoke":
          return await revoke(ctx, id as string);
        case "credit":
          return await credit(ctx, id as string, parseUsd("amount", amount as string));
        case "show":
          return await show(ctx, id as string);
        // TAO deposits (cli/keys-deposit.ts).
        case "deposit-address":
          return await printDepositAddress(keys, id as string, cfg.json, io);
      }
    } finally {
      redis?.disconnect();
    }
  },
});

/** What each verb works with. */
interface VerbContext {
  readonly cfg: KeysConfig;
  readonly keys: ApiKeys;
  readonly billing: KeysBilling;
  readonly io: CommandIO;
}

/** The key's record, or undefined after saying on stderr that no key has this id. */
async function findKey(ctx: VerbContext, id: string): Promise<ApiKeyRecord | undefined> {
  const found = (await ctx.keys.list()).find((r) => r.id === id);
  if (found === undefined) ctx.io.stderr(`tensorclaw keys: no key with id ${JSON.stringify(id)}\n`);
  return found;
}

/**
 * Creates a key; with --credits also its metered account and the initial
 * credit entry. Should the account fail to open, the new key is revoked: a
 * key meant to be metered never serves unmetered.
 */
async function create(ctx: VerbContext): Promise<number> {
  const { cfg, io } = ctx;
  const nowMs = Date.now();
  const { key, record } = ctx.keys.mint(
    cfg.name,
    { requestsPerMinute: cfg.rpm, tokensPerMinute: cfg.tpm },
    nowMs,
  );
  try {
    await ctx.keys.save(record);
  } catch (err) {
    // With --redis-wait-replicas the master may hold a record its replicas lack: revoked, so that
    // a key never printed is not listed as live either.
    const revoked = await ctx.keys.revoke(record.id, Date.now()).then(
      () => "it was revoked",
      () => `its revocation is not confirmed either (if \`keys list\` shows it live, revoke it)`,
    );
    io.stderr(
      `tensorclaw keys: ${record.id} could not be stored for sure, so it is not printed and ${revoked}; run create again\n`,
    );
    throw err;
  }
  let account: { metered: true; balanceMicros: Micros; budgetDailyMicros: Micros | null } | null = null;
  if (cfg.credits !== undefined) {
    const credits = parseUsd("--credits", cfg.credits);
    const budgetDailyMicros =
      cfg.budgetDaily === undefined ? null : parseUsd("--budget-daily", cfg.budgetDaily);
    try {
      await ctx.billing.configure(record.id, { metered: true, budgetDailyMicros }, nowMs);
      if (credits > 0) {
        await ctx.billing.credit({
          // One initial entry per key, whatever happens: a retried write cannot credit twice.
          id: `initial:${record.id}`,
          keyId: record.id,
          amountMicros: credits,
          note: INITIAL_CREDITS_NOTE,
          source: "operator",
          atMs: nowMs,
        });
      }
    } catch (err) {
      await ctx.keys.revoke(record.id, Date.now()).catch(() => {});
      io.stderr(`tensorclaw keys: the account of ${record.id} could not be opened, so the key was revoked\n`);
      throw err;
    }
    account = { metered: true, balanceMicros: credits, budgetDailyMicros };
  }
  if (cfg.json) {
    io.stdout(
      `${JSON.stringify({ key, id: record.id, name: record.name, limits: record.limits, account })}\n`,
    );
    return 0;
  }
  io.stdout(`${key}\n`);
  const money =
    account === null
      ? "unmetered"
      : `metered, ${usd(account.balanceMicros)} USD of credit` +
        (account.budgetDailyMicros === null
          ? ""
          : `, at most ${usd(account.budgetDailyMicros)} USD per UTC day`);
  io.stderr(
    `Created ${record.id} (${record.name}; ${cfg.rpm} req/min, ${cfg.tpm} tokens/min; ${money}).\n` +
      "The key above is shown once: store it now.\n",
  );
  return 0;
}

/** Lists every key with its limits, balance and spend (today, 30 days). */
async function list(ctx: VerbContext): Promise<number> {
  const all = await ctx.keys.list();
  const nowMs = Date.now();
  const accounts = await ctx.billing.accounts(
    all.map((r) => r.id),
    nowMs,
  );
  if (ctx.cfg.json) {
    const rows = all.map(({ hash: _hash, ...rest }, i) => {
      const a = accounts[i];
      return {
        ...rest,
        account: {
          metered: a?.settings?.metered === true,
          balanceMicros: a?.balanceMicros ?? 0,
          budgetDailyMicros: a?.settings?.budgetDailyMicros ?? null,
          spentTodayMicros: a?.spentTodayMicros ?? 0,
          spent30dMicros: a?.spent30dMicros ?? 0,
        },
      };
    });
    ctx.io.stdout(`${JSON.stringify(rows)}\n`);
    return 0;
  }
  all.forEach((r, i) => {
    const a = accounts[i];
    if (a !== undefined) ctx.io.stdout(listLine(r, a));
  });
  return 0;
}

async function revoke(ctx: VerbContext, id: string): Promise<number> {
  let found: boolean;
  try {
    found = await ctx.keys.revoke(id, Date.now());
  } catch (err) {
    ctx.io.stderr(`tensorclaw keys: the revocation of ${id} is not confirmed; run revoke again\n`);
    throw err;
  }
  if (!found) {
    ctx.io.stderr(`tensorclaw keys: no key with id ${JSON.stringify(id)}\n`);
    return 1;
  }
  ctx.io.stdout(`revoked ${id}\n`);
  return 0;
}

/**
 * Appends an audited credit entry to a known key. An unmetered key becomes
 * metered by its first credit (it then pays for its requests out of it); a
 * correction (negative amount) needs a metered key.
 */
async function credit(ctx: VerbContext, id: string, amountMicros: Micros): Promise<number> {
  const { io } = ctx;
  const record = await findKey(ctx, id);
  if (record === undefined) return 1;
  const nowMs = Date.now();
  const [before] = await ctx.billing.accounts([id], nowMs);
  const metered = before?.settings?.metered === true;
  if (!metered && amountMicros < 0) {
    io.stderr(`tensorclaw keys: ${id} is unmetered: it has no balance to correct\n`);
    return 1;
  }
  if (!metered) {
    await ctx.billing.configure(id, { metered: true, budgetDailyMicros: null }, nowMs);
    io.stderr(`${id} was unmetered: it is metered from now on and pays for its requests from its balance\n`);
  }
  if (record.revokedAtMs !== null) io.stderr(`note: ${id} is revoked; the entry is kept all the same\n`);
  const entry: CreditEntry = {
    id: ctx.cfg.entryId ?? creditEntryId(nowMs),
    keyId: id,
    amountMicros,
    note: ctx.cfg.note ?? "",
    source: "operator",
    atMs: nowMs,
  };
  let applied: boolean;
  try {
    applied = await ctx.billing.credit(entry);
  } catch (err) {
    // Applied on the master or not at all, unknown which: the same id makes a repeat safe.
    io.stderr(
      `tensorclaw keys: entry ${entry.id} may or may not have been applied; repeat with --entry-id ${entry.id}, which applies it at most once\n`,
    );
    throw err;
  }
  const [after] = await ctx.billing.accounts([id], Date.now());
  const balanceMicros = after?.balanceMicros ?? 0;
  if (ctx.cfg.json) {
    io.stdout(`${JSON.stringify({ entry, applied, balanceMicros })}\n`);
    return 0;
  }
  const signed = amountMicros > 0 ? `+${usd(amountMicros)}` : usd(amountMicros);
  io.stdout(
    applied
      ? `credited ${id} ${signed} USD (entry ${entry.id}); balance ${usd(balanceMicros)} USD\n`
      : `entry ${entry.id} was applied before: nothing credited now; balance ${usd(balanceMicros)} USD\n`,
  );
  return 0;
}

/** Prints one key: record, account, spend by model, latest credit entries. */
async function show(ctx: VerbContext, id: string): Promise<number> {
  const record = await findKey(ctx, id);
  if (record === undefined) return 1;
  const nowMs = Date.now();
  const [account] = await ctx.billing.accounts([id], nowMs);
  const entries = await ctx.billing.entries(id, ctx.cfg.entries);
  if (account === undefined) return 1;
  if (ctx.cfg.json) {
    const { hash: _hash, ...rest } = record;
    ctx.io.stdout(
      `${JSON.stringify({ ...rest, account, holdsVisible: ctx.billing.holdsVisible, entries })}\n`,
    );
    return 0;
  }
  ctx.io.stdout(showText(record, account, entries, ctx.billing.holdsVisible));
  return 0;
}
