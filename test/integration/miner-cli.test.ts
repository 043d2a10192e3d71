// `tensorclaw miner` as a real child process: configuration errors, the
// built-in demo backend end to end through the router's hub, clean shutdown.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mnemonicGenerate } from "@polkadot/util-crypto";
import { expect } from "chai";
import { loadDemoModel } from "../../common/demo-model/model.js";
import { hotkeyFromMnemonic } from "../../common/identity.js";
import { ChatRequest, FinishReason } from "../../gen/tensorclaw/v1/chat.js";
import {
  DEFAULT_ANSWER_TOKENS,
  DEFAULT_CONTEXT_LENGTH,
  DEMO_EMBEDDING_MODEL_ID,
  DEMO_MODEL_ID,
  demoGenerateOptions,
} from "../../miner/backend/demo.js";
import { minerCommand } from "../../miner/command.js";
import type { TunnelEvent } from "../../router/tunnel/types.js";
import { CLI } from "../support/cli.js";
import { minerDataDirArgs } from "../support/miner-data-dir.js";
import { type MinerTestRouter, sessionOf, startMinerTestRouter } from "../support/miner-router.js";

describe("tensorclaw miner (process)", () => {
  // Configuration errors go through the same command code in-process (a child costs ~1.5 s each).
  async function runInProcess(argv: string[], env: Record<string, string | undefined> = {}) {
    let stderr = "";
    const code = await minerCommand.run(argv, {
      env,
      stdout: () => {},
      stderr: (t) => {
        stderr += t;
      },
    });
    return { code, stderr };
  }

  it("refuses an unexpected argument instead of ignoring it", async () => {
    const r = await runInProcess(["extra", "--router", "grpc://127.0.0.1:1", "--backend", "demo"]);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.match(/unexpected argument "extra"/);
  });

  it("refuses to start without a hotkey, naming the fix", async () => {
    const r = await runInProcess(["--router", "grpc://127.0.0.1:1", "--backend", "demo"]);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.match(/no hotkey: pass --wallet and --hotkey .* or set TENSORCLAW_MNEMONIC/);
    const missing = await runInProcess([
      "--router",
      "grpc://h:1",
      "--wallet",
      "w",
      "--hotkey",
      "h",
      "--wallet-path",
      "/nonexistent",
    ]);
    expect(missing.code).to.equal(2);
    expect(missing.stderr).to.match(/hotkey file .* does not exist/);
  });

  it("refuses a mnemonic on the command line, a missing --router and a bad --backend", async () => {
    const flag = await runInProcess(["--router", "grpc://h:1", "--mnemonic", "abandon abandon"]);
    expect(flag.code).to.equal(2);
    expect(flag.stderr).to.match(/--mnemonic: set TENSORCLAW_MNEMONIC instead/);
    expect(flag.stderr).not.to.include("abandon");
    const none = await runInProcess(["--backend", "demo"]);
    expect(none.code).to.equal(2);
    expect(none.stderr).to.match(/--router: give at least one router/);
    const wrong = await runInProcess(["--router", "ws://h:1/v1/tunnel", "--transport", "grpc"]);
    expect(wrong.code).to.equal(2);
    expect(wrong.stderr).to.match(/--router: --transport grpc needs a grpc/);
  });

  describe("with a router", () => {
    let router: MinerTestRouter;
    beforeEach(async () => {
      router = await startMinerTestRouter();
    });
    afterEach(async () => {
      await router.close();
    });

    it("serves the demo model with real streaming and real token counts, and stops cleanly on SIGTERM", async () => {
      const mnemonic = mnemonicGenerate();
      const address = (await hotkeyFromMnemonic(mnemonic)).address;
      const proc = spawn(
        process.execPath,
        [
          CLI,
          "miner",
          ...minerDataDirArgs(),
          "--router",
          router.wsUrl,
          "--backend",
          "demo",
          "--log-level",
          "info",
          "--max-concurrency",
          "3",
        ],
        { env: { ...process.env, TENSORCLAW_MNEMONIC: mnemonic }, stdio: ["ignore", "ignore", "pipe"] },
      );
      let log = "";
      proc.stderr?.on("data", (d: Buffer) => {
        log += d.toString();
      });
      try {
        const sessionId = await new Promise<string>((resolve, reject) => {
          const check = () => {
            const line = log.split("\n").find((l) => l.includes("connected via ws"));
            if (line !== undefined) resolve((JSON.parse(line) as { sessionId: string }).sessionId);
          };
          proc.stderr?.on("data", check);
          proc.once("exit", (code) => reject(new Error(`miner exited (${code}):\n${log}`)));
        });
        const view = sessionOf(router.hub, sessionId);
        expect(view.hotkey).to.equal(address);
        expect(view.models.map((m) => [m.id, m.maxConcurrency])).to.deep.equal([
          [DEMO_MODEL_ID, 3],
          [DEMO_EMBEDDING_MODEL_ID, 3],
        ]);

        const chat = ChatRequest.fromPartial({
          messages: [{ role: "user", content: "How do I make bread?" }],
          maxTokens: 12,
          temperature: 0,
        });
        // What the demo model itself writes for this request (its greedy answer is longer than 12 tokens).
        const model = await loadDemoModel();
        const want = model.generate(
          demoGenerateOptions(model, chat, {
            answerTokens: DEFAULT_ANSWER_TOKENS,
            contextLength: DEFAULT_CONTEXT_LENGTH,
          }),
        );
        const events: TunnelEvent[] = [];
        const arrivals: number[] = [];
        for await (const e of router.hub.dispatch(sessionId, DEMO_MODEL_ID, chat, { deadlineMs: 10_000 })
          .events) {
          events.push(e);
          arrivals.push(performance.now());
        }
        const chunks = events.flatMap((e) => (e.type === "chunk" ? [e.chunk] : []));
        expect(want.tokens).to.have.length(12);
        expect(chunks.map((c) => c.contentDelta)).to.deep.equal(want.tokens.map((t) => t.text));
        expect(chunks.at(-1)?.finishReason).to.equal(FinishReason.FINISH_REASON_LENGTH);
        expect(events.at(-1)).to.deep.equal({
          type: "usage",
          promptTokens: model.encode("user: How do I make bread?\nassistant:").length,
          completionTokens: 12,
        });
        // Streamed over time, not delivered in one burst.
        expect((arrivals.at(-1) ?? 0) - (arrivals[0] ?? 0)).to.be.greaterThan(50);
        // Log lines name state changes and never the mnemonic.
        expect(log).to.include("connecting");
        expect(log).not.to.include(mnemonic.split(" ").slice(0, 3).join(" "));

        proc.kill("SIGTERM");
        const [code] = (await once(proc, "exit")) as [number | null];
        expect(code).to.equal(0);
        expect(log).to.include("miner stopped");
      } finally {
        if (proc.exitCode === null && proc.signalCode === null) {
          proc.kill("SIGKILL");
          await once(proc, "exit");
        }
      }
    });

    it("logs one line per state change: connecting, connected via grpc, drained, backoff N s", async () => {
      const proc = spawn(
        process.execPath,
        [
          CLI,
          "miner",
          ...minerDataDirArgs(),
          "--router",
          router.grpcUrl,
          "--transport",
          "grpc",
          "--backend",
          "demo",
          "--log-level",
          "info",
        ],
        {
          env: { ...process.env, TENSORCLAW_MNEMONIC: mnemonicGenerate() },
          stdio: ["ignore", "ignore", "pipe"],
        },
      );
      const messages: string[] = [];
      let rest = "";
      const seen = new Set<() => void>();
      proc.stderr?.on("data", (d: Buffer) => {
        const parts = (rest + d.toString()).split("\n");
        rest = parts.pop() ?? "";
        for (const line of parts) {
          // Log lines are JSON; anything else (a runtime warning) is not a state change.
          if (line.startsWith("{")) messages.push((JSON.parse(line) as { msg: string }).msg);
        }
        for (const wake of seen) wake();
      });
      /** Resolves once `count` log messages match `pattern`. */
      const logged = (pattern: RegExp, count = 1) =>
        new Promise<void>((resolve, reject) => {
          const check = () => {
            if (messages.filter((m) => pattern.test(m)).length < count) return;
            seen.delete(check);
            resolve();
          };
          seen.add(check);
          proc.once("exit", (code) => reject(new Error(`miner exited (${code}): ${messages.join(" | ")}`)));
          check();
        });
      try {
        await logged(/^connected via grpc$/);
        await router.drainAndStop();
        await logged(/^drained$/);
        await logged(/^backoff \d+\.\d s$/);
        await router.start();
        await logged(/^connected via grpc$/, 2);
        const order = messages.filter((m) => /^(connecting|connected via grpc|drained|backoff)/.test(m));
        expect(order.slice(0, 5).map((m) => m.replace(/\d+\.\d/, "N"))).to.deep.equal([
          "connecting",
          "connected via grpc",
          "drained",
          "backoff N s",
          "connecting",
        ]);
      } finally {
        proc.kill("SIGKILL");
        await once(proc, "exit");
      }
    });
  });
});
