// What `tensorclaw validator` does once its settings are read. Apart from
// validator/command.ts (help and settings), so that `validator --help` loads
// neither the hotkey's crypto, nor Redis, nor gRPC.
import { randomBytes } from "node:crypto";
import type { Chain } from "../common/chain/chain.js";
import { systemClock } from "../common/clock.js";
import type { CommandIO } from "../common/command.js";
import type { ParsedCommand } from "../common/config.js";
import { loadHotkey } from "../common/identity.js";
import { createLogger } from "../common/logger.js";
import { connectRedis, openRedis, type RedisClient } from "../common/redis-connect.js";
import { ReferenceJudge } from "./audit/reference-judge.js";
import { auditPromptOf } from "./audit-judge.js";
import { parseReferences, type ValidatorConfig } from "./config.js";
import { parseLatencyTiers } from "./latency-tiers.js";
import { ProbeCorpus } from "./probe-gen/corpus.js";
import { completionProbeMessages } from "./probe-gen/kind-texts.js";
import { drawProbeBody } from "./probe-gen/shape-sampler.js";
import { RouterClient } from "./router-client.js";
import { SimulatedChain } from "./simulated-chain.js";
import type { ValidatorStateStore } from "./state-store.js";
import { FileStateStore } from "./state-store-file.js";
import { RedisStateStore } from "./state-store-redis.js";
import { Validator } from "./validator.js";

/** Audit-like prompts a reference answers at each calibration. */
export const CALIBRATION_PROMPTS = 4;

/** Runs the validator loop (or one pass with --once, or prints scores) until SIGINT/SIGTERM. */
export async function validatorMain(parsed: ParsedCommand<ValidatorConfig>, io: CommandIO): Promise<number> {
  const cfg = parsed.config;
  const scoresOnly = parsed.positionals[0] === "scores";
  const logger = createLogger("validator", cfg.logLevel);
  const hotkey = await loadHotkey({
    mnemonic: cfg.mnemonic,
    wallet: cfg.wallet,
    hotkey: cfg.hotkey,
    walletPath: cfg.walletPath,
  });
  let redis: RedisClient | undefined;
  let store: ValidatorStateStore;
  if (cfg.redisUrl !== undefined) {
    // One server or a cluster; ioredis is loaded only now (the file state store does without it).
    redis = await openRedis(cfg.redisUrl, { maxRetriesPerRequest: 2, lazyConnect: true });
    redis.on("error", (err: Error) => logger.warn({ err: err.message }, "redis error"));
    await connectRedis(redis, cfg.redisUrl);
    store = new RedisStateStore(redis, hotkey.address);
  } else {
    store = await FileStateStore.open(cfg.stateFile);
  }
  // A bad corpus line stops the start: probes from a half-read corpus would not be the operator's.
  const corpus = cfg.probeCorpus === undefined ? undefined : await ProbeCorpus.load(cfg.probeCorpus);
  const references = new Map<string, ReferenceJudge>();
  for (const [model, baseUrl] of parseReferences(cfg.reference)) {
    references.set(
      model,
      new ReferenceJudge({
        model,
        baseUrl,
        now: () => Date.now(),
        // Calibrated on the reference's own answers to prompts like the audits'.
        calibrationPrompts: () =>
          Array.from({ length: CALIBRATION_PROMPTS }, () =>
            auditPromptOf(
              drawProbeBody({ model, random: Math.random, audit: true, gradedShare: 0, source: corpus }).body,
            ),
          ),
        // Text-completion audits are worded as texts to continue (prober.ts): so are their marks'.
        ...(corpus === undefined
          ? {
              textCalibrationPrompts: () =>
                Array.from({ length: CALIBRATION_PROMPTS }, () => {
                  const { body } = drawProbeBody({ model, random: Math.random, audit: true, gradedShare: 0 });
                  body.messages = completionProbeMessages(Math.random);
                  return auditPromptOf(body, "completion");
                }),
            }
          : {}),
      }),
    );
  }
  let chain: Chain | undefined;
  const router = new RouterClient(cfg.router, { signer: hotkey, logger });
  try {
    if (cfg.chain !== undefined) {
      // Loaded on demand: @polkadot/api is heavy and every other command would pay for it.
      const { connectPolkadotChain } = await import("../common/chain/polkadot.js");
      chain = await connectPolkadotChain({ endpoint: cfg.chain, signer: hotkey, logger });
    } else if (cfg.simulateChain !== "off") {
      chain = new SimulatedChain({
        mode: cfg.simulateChain,
        selfHotkey: hotkey.address,
        // Everyone the scoring pass scores: listed, remembered, or with usage in the window.
        hotkeys: async () => [
          ...(await router.listMiners()).sessions.map((s) => s.hotkey),
          ...(await store.probeHistory()).keys(),
          ...(await router.getUsage(0)).miners.map((m) => m.hotkey),
        ],
        nowMs: () => systemClock.now(),
      });
    }
    const validator = new Validator({
      router,
      store,
      chain,
      selfHotkey: hotkey.address,
      settings: {
        netuid: cfg.netuid,
        dryRun: cfg.dryRun,
        probeConcurrency: cfg.probeConcurrency,
        probeTimeoutMs: cfg.probeTimeoutMs,
        reconnectGraceMs: cfg.reconnectGraceMs,
        probeIntervalMs: cfg.probeIntervalS * 1000,
        weightsIntervalMs: cfg.weightsIntervalS * 1000,
        latencyTiers: parseLatencyTiers(cfg.latencyTiers),
        verifyShare: cfg.verifyShare,
        ...(corpus === undefined ? {} : { corpus }),
      },
      references,
      clock: systemClock,
      randomBytes: (n) => randomBytes(n),
      logger,
      print: io.stdout,
    });
    logger.info(
      {
        hotkey: hotkey.address,
        routers: cfg.router,
        chain: cfg.chain ?? (cfg.simulateChain === "off" ? undefined : `simulated (${cfg.simulateChain})`),
        dryRun: cfg.dryRun,
        verifyShare: cfg.verifyShare,
        probeCorpus:
          corpus === undefined ? "built-in generator" : `${cfg.probeCorpus} (${corpus.size} prompts)`,
        references: Object.fromEntries(parseReferences(cfg.reference)),
      },
      "validator starting",
    );
    if (scoresOnly) {
      const r = await validator.scorePass({ submit: false, print: true });
      return r === undefined ? 1 : 0;
    }
    if (cfg.once) {
      const round = await validator.probeRound();
      if (round === undefined) io.stdout("probe round skipped: router unreachable, not punishing miners\n");
      const r = await validator.scorePass({ submit: true, print: true });
      return round === undefined || r === undefined ? 1 : 0;
    }
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    try {
      await validator.run(stop.signal);
    } finally {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    }
    return 0;
  } finally {
    router.close();
    await Promise.all([...references.values()].map((r) => r.close()));
    await chain?.close();
    await store.close();
    redis?.disconnect();
  }
}
