/**
 * A subnet of real processes for the verification test: a real Redis, a
 * `tensorclaw router`, the demo model served by `tensorclaw demo-model` (the
 * reference), honest miners with `--backend demo`, one miner whose backend
 * is the in-process filler server (filler-backend.ts), and, once the test
 * asks for it, a dry-run `tensorclaw validator` with its state in a file the
 * test reads back.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mnemonicGenerate } from "@polkadot/util-crypto";
import { hotkeyFromMnemonic, initCrypto } from "../../common/identity.js";
import { silentLogger } from "../../common/logger.js";
import { MinerState } from "../../gen/tensorclaw/v1/directory.js";
import { DEMO_EMBEDDING_MODEL_ID, DEMO_MODEL_ID } from "../../miner/backend/demo.js";
import { type AuditRecord, parseAuditRecord } from "../../validator/audit/verdicts.js";
import { RouterClient } from "../../validator/router-client.js";
import { runCli } from "./cli.js";
import { type FillerBackend, startFillerBackend } from "./filler-backend.js";
import { type CliProcess, ProcessSet } from "./loop-process.js";
import { minerDataDirArgs } from "./miner-data-dir.js";
import { pollUntil } from "./poll.js";
import { freePort, startRedis, type TestRedis } from "./redis.js";

/** One miner of the network. */
export interface VerificationMiner {
  readonly name: string;
  readonly hotkey: string;
  /** True for the filler miner. */
  readonly filler: boolean;
  readonly proc: CliProcess;
}

/** How the validator is started. */
export interface ValidatorOptions {
  /** Judge tensorclaw-demo against the reference server (`--reference`); else by agreement. */
  readonly reference: boolean;
  /** `--verify-share`. */
  readonly verifyShare: number;
}

/** The running network; `close()` stops every process and removes its files. */
export interface VerificationNetwork {
  readonly httpPort: number;
  readonly apiKey: string;
  /** The reference server's OpenAI base URL (…/v1). */
  readonly referenceUrl: string;
  readonly filler: FillerBackend;
  readonly miners: readonly VerificationMiner[];
  readonly router: CliProcess;
  /** Set by startValidator. */
  validator: CliProcess | undefined;
  startValidator(opts: ValidatorOptions): CliProcess;
  /** Hotkeys with an active session, from the signed Directory. */
  activeHotkeys(): Promise<Set<string>>;
  /** Resolves once every miner of the network has an active session (30 s at most). */
  allActive(): Promise<void>;
  /** Credited tokens (prompt + completion, 24 h) per hotkey, from the signed UsageReport. */
  ledgerTokens(): Promise<Map<string, number>>;
  /** Every audit the validator has stored (its state file; empty before the first write). */
  audits(): Promise<AuditRecord[]>;
  close(): Promise<void>;
}

/** Settings of {@link startVerificationNetwork}. */
export interface VerificationNetworkOptions {
  /** Honest demo miners (the filler miner comes in addition). */
  readonly honestMiners: number;
  /**
   * The one model every miner serves, the filler included, and the
   * validator's reference judges: the demo chat model (default) or the demo
   * embedding model (the filler then embeds, fillerEmbedding).
   */
  readonly model?: string;
}

/** Starts Redis, the reference, the filler backend, an API key, the router and the miners. */
export async function startVerificationNetwork(
  opts: VerificationNetworkOptions,
): Promise<VerificationNetwork> {
  await initCrypto();
  const procs = new ProcessSet();
  const dir = await mkdtemp(join(tmpdir(), "tc-verify-"));
  let redis: TestRedis | undefined;
  let filler: FillerBackend | undefined;
  let client: RouterClient | undefined;
  const cleanup = async () => {
    client?.close();
    await procs.killAll();
    await filler?.close();
    await redis?.stop();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    redis = await startRedis();
    const reference = procs.spawn("reference", ["demo-model", "--port", "0", "--host", "127.0.0.1"]);
    const [httpPort, grpcPort] = [await freePort(), await freePort()];
    const validatorMnemonic = mnemonicGenerate();
    const validatorKey = await hotkeyFromMnemonic(validatorMnemonic);
    const key = await runCli(["keys", "create", "--name", "verify", "--rpm", "0", "--tpm", "0", "--json"], {
      REDIS_URL: redis.url,
    });
    const apiKey = (JSON.parse(key.stdout || "{}") as { key?: string }).key;
    if (key.code !== 0 || apiKey === undefined) throw new Error(`keys create failed: ${key.stderr}`);
    const router = procs.spawn("router", [
      "router",
      "--http-port",
      String(httpPort),
      "--grpc-port",
      String(grpcPort),
      "--redis-url",
      redis.url,
      "--data-dir",
      dir,
      "--validators",
      validatorKey.address,
      "--open-catalogue",
      // Its API key is unmetered (free): like the dev network, let free traffic earn.
      "--count-free-traffic",
      // Info: the router logs every verdict it applies, which the test waits for.
      "--log-level",
      "info",
    ]);
    const [, referenceUrl] = (await reference.waitFor(
      /serving tensorclaw-demo on (http:\/\/\S+)\n/,
      20_000,
      "stderr",
    )) as unknown as [string, string];
    const model = opts.model ?? DEMO_MODEL_ID;
    filler = await startFillerBackend(model, referenceUrl);
    await router.waitFor(/tensorclaw router: API on/, 20_000, "stderr");

    const miners: VerificationMiner[] = [];
    const startMiner = async (name: string, backend: string, isFiller: boolean) => {
      const mnemonic = mnemonicGenerate();
      const hotkey = (await hotkeyFromMnemonic(mnemonic)).address;
      const proc = procs.spawn(
        `miner ${name}`,
        [
          "miner",
          ...minerDataDirArgs(),
          "--router",
          `grpc://127.0.0.1:${grpcPort}`,
          "--transport",
          "grpc",
          "--backend",
          backend,
          "--models",
          model,
          // An OpenAI-compatible backend does not say which of its models embed.
          ...(isFiller && model === DEMO_EMBEDDING_MODEL_ID ? ["--embedding-models", model] : []),
          "--log-level",
          "warn",
        ],
        { TENSORCLAW_MNEMONIC: mnemonic },
      );
      miners.push({ name, hotkey, filler: isFiller, proc });
    };
    for (let i = 1; i <= opts.honestMiners; i++) await startMiner(`honest-${i}`, "demo", false);
    await startMiner("filler", filler.url, true);

    client = new RouterClient([`grpc://127.0.0.1:${grpcPort}`], {
      signer: validatorKey,
      logger: silentLogger(),
      callTimeoutMs: 3000,
    });
    const rc = client;
    const stateFile = join(dir, "validator-state.json");
    const net: VerificationNetwork = {
      httpPort,
      apiKey,
      referenceUrl,
      filler,
      miners,
      router,
      validator: undefined,
      startValidator(v) {
        net.validator = procs.spawn(
          "validator",
          [
            "validator",
            "--router",
            `grpc://127.0.0.1:${grpcPort}`,
            "--dry-run",
            "--probe-interval-s",
            "1",
            "--weights-interval-s",
            "1",
            "--verify-share",
            String(v.verifyShare),
            ...(v.reference ? ["--reference", `${model}=${referenceUrl}`] : []),
            "--reconnect-grace-ms",
            "0",
            "--state-file",
            stateFile,
            // Info: each judged audit is logged, so a failure's output shows the judges' numbers.
            "--log-level",
            "info",
          ],
          { TENSORCLAW_MNEMONIC: validatorMnemonic },
        );
        return net.validator;
      },
      async activeHotkeys() {
        const list = await rc.listMiners();
        return new Set(
          list.sessions.filter((s) => s.state === MinerState.MINER_STATE_ACTIVE).map((s) => s.hotkey),
        );
      },
      async allActive() {
        await pollUntil(async () => ((await net.activeHotkeys()).size === miners.length ? true : undefined), {
          what: `all ${miners.length} miners active`,
          timeoutMs: 30_000,
          intervalMs: 100,
        });
      },
      async ledgerTokens() {
        const usage = await rc.getUsage(0);
        return new Map(
          usage.miners.map((u) => [u.hotkey, Number(u.promptTokens) + Number(u.completionTokens)]),
        );
      },
      async audits() {
        let text: string;
        try {
          text = await readFile(stateFile, "utf8");
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
          throw err;
        }
        const doc = JSON.parse(text) as { audits?: unknown[] };
        return (doc.audits ?? []).map(parseAuditRecord).filter((r): r is AuditRecord => r !== undefined);
      },
      close: cleanup,
    };
    return net;
  } catch (err) {
    await cleanup();
    throw err;
  }
}
