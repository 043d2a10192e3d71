import { spawn } from "node:child_process";
import { appendFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import type { BillingStore, CreditEntry } from "../../router/billing/billing.js";
import { EmbeddedBilling } from "../../router/billing/embedded.js";
import { BILLING_OPTIONS, billedEvent, billingContract, NOW } from "../support/billing-contract.js";
import { pollUntil } from "../support/poll.js";

describe("embedded billing store", () => {
  billingContract("embedded (file-backed)", async (generationRetentionMs) => {
    const dir = await mkdtemp(join(tmpdir(), "tc-billing-"));
    const path = join(dir, "billing.jsonl");
    const options = { ...BILLING_OPTIONS, path, generationRetentionMs };
    let current: BillingStore = await EmbeddedBilling.open({ ...options, nowMs: NOW });
    return {
      store: current,
      reopen: async (nowMs) => {
        await current.close();
        current = await EmbeddedBilling.open({ ...options, nowMs });
        return current;
      },
      dispose: async () => {
        await current.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  });

  describe("one journal file, several writers", () => {
    let dir: string;
    let path: string;
    const open: EmbeddedBilling[] = [];
    const store = async (refreshIntervalMs?: number) => {
      const s = await EmbeddedBilling.open({
        ...BILLING_OPTIONS,
        path,
        nowMs: NOW,
        ...(refreshIntervalMs === undefined ? {} : { refreshIntervalMs }),
      });
      open.push(s);
      return s;
    };
    const entry = (id: string, keyId: string, amountMicros: number): CreditEntry => ({
      id,
      keyId,
      amountMicros,
      note: `entry ${id}`,
      source: "operator",
      atMs: NOW,
    });
    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), "tc-billing-"));
      path = join(dir, "billing.jsonl");
    });
    afterEach(async () => {
      for (const s of open.splice(0)) await s.close();
      await rm(dir, { recursive: true, force: true });
    });

    it("a running store applies accounts and credits the CLI appended, within about a second, once", async () => {
      const router = await store();
      const key = "key_00000000000000aa";
      // Settled before the key had an account: spend, not a charge.
      await router.settle([billedEvent(key, 1)], NOW);
      await EmbeddedBilling.configureOffline(path, key, { metered: true, budgetDailyMicros: null }, NOW);
      expect(await EmbeddedBilling.creditOffline(path, entry("cli-1", key, 5000))).to.equal(true);
      expect(await EmbeddedBilling.creditOffline(path, entry("cli-1", key, 5000))).to.equal(false);
      const started = Date.now();
      await pollUntil(
        async () =>
          (await router.hold({ keyId: key, requestId: "r1", amountMicros: 5000, nowMs: NOW, ttlMs: 60_000 }))
            .ok,
        { what: "the router to see the CLI's credit", timeoutMs: 3000 },
      );
      expect(Date.now() - started).to.be.below(2500);
      expect(await router.settings(key)).to.deep.equal({ metered: true, budgetDailyMicros: null });
      // The router applying the same entry id itself is a no-op.
      expect(await router.credit(entry("cli-1", key, 5000))).to.equal(false);
      expect(await router.account(key, NOW)).to.include({
        balanceMicros: 5000,
        heldMicros: 5000,
        spentTotalMicros: 1,
      });
      expect((await router.entries(key, 5)).map((e) => e.id)).to.deep.equal(["cli-1"]);
      // After a restart the file says the same.
      await router.close();
      const again = await store();
      expect(await again.account(key, NOW)).to.include({
        balanceMicros: 5000,
        creditedMicros: 5000,
        spentTotalMicros: 1,
      });
    });

    it("two stores on one file see each other's changes and lose none across compactions", async () => {
      const a = await store(0);
      const b = await store(0); // opening compacts: a's file is replaced under it
      const key = "key_00000000000000bb";
      await a.configure(key, { metered: true, budgetDailyMicros: null }, NOW);
      await b.credit(entry("b-1", key, 1000));
      await a.credit(entry("a-1", key, 2000));
      expect(await a.credit(entry("b-1", key, 1000))).to.equal(false);
      const evs = Array.from({ length: 40 }, (_, i) => billedEvent(key, 10 + i));
      // Interleaved settles from both, with overlap: each request charged once.
      await Promise.all([a.settle(evs.slice(0, 30), NOW), b.settle(evs.slice(10), NOW)]);
      const charged = evs.reduce((n, e) => n + (e.billing?.costMicros ?? 0), 0);
      for (const s of [a, b]) {
        expect(await s.account(key, NOW)).to.include({
          balanceMicros: 3000 - charged,
          spentTotalMicros: charged,
        });
      }
      // A third store compacts the file again while a and b keep writing.
      const c = await store(0);
      await a.credit(entry("a-2", key, 7));
      await b.setCursor("deposits", "42");
      for (const s of [a, b, c]) {
        expect((await s.account(key, NOW)).balanceMicros).to.equal(3007 - charged);
        expect(await s.cursor("deposits")).to.equal("42");
        expect((await s.entries(key, 10)).map((e) => e.id)).to.deep.equal(["a-2", "a-1", "b-1"]);
      }
    });

    it("a CLI process crediting while two stores settle and compact: every credit applied once, nothing lost", async () => {
      const key = "key_00000000000000ff";
      const a = await store(0);
      await a.configure(key, { metered: true, budgetDailyMicros: null }, NOW);
      const COUNT = 60;
      const child = spawn(
        process.execPath,
        [
          "--import",
          new URL("../../bin/register.mjs", import.meta.url).href,
          fileURLToPath(new URL("../support/billing-cli-child.ts", import.meta.url)),
        ],
        { env: { ...process.env, BILLING_PATH: path, BILLING_KEY: key, BILLING_COUNT: String(COUNT) } },
      );
      let out = "";
      let err = "";
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
      });
      child.stderr.on("data", (d: Buffer) => {
        err += d.toString();
      });
      const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
      // Meanwhile: settles from this store, and new stores opening (each open compacts the file).
      const evs = Array.from({ length: 120 }, (_, i) => billedEvent(key, 2, { finishedAtMs: NOW - i }));
      let running = true;
      void exited.then(() => {
        running = false;
      });
      const sent = new Set<string>();
      for (let i = 0; running || i < 4; i++) {
        const batch = evs.slice((i * 10) % 120, ((i * 10) % 120) + 10);
        for (const e of batch) sent.add(e.requestId);
        await a.settle(batch, NOW);
        if (i % 3 === 0) await (await store(0)).settle([], NOW);
      }
      expect(await exited, err).to.equal(0);
      expect(out.trim()).to.equal(`done ${COUNT}`);
      const credited = (COUNT * (COUNT + 1)) / 2;
      const check = async (s: BillingStore) => {
        const v = await s.account(key, NOW);
        expect(v.creditedMicros).to.equal(credited);
        expect(v.todayByModel[0]?.requests).to.equal(sent.size);
        expect(v.balanceMicros).to.equal(credited - 2 * sent.size);
        expect((await s.entries(key, 1000)).length).to.equal(COUNT);
      };
      await check(a);
      for (const s of open.splice(0)) await s.close();
      await check(await store());
    });

    it("drops a torn last line, skips corrupt lines, and terminates a torn line before appending", async () => {
      const key = "key_00000000000000cc";
      const s1 = await store();
      await s1.configure(key, { metered: true, budgetDailyMicros: null }, NOW);
      await s1.credit(entry("e1", key, 100));
      await s1.close();
      open.length = 0;
      // A crashed CLI left half a line; a corrupt line sits before it.
      await appendFile(path, 'not json\n{"cr":["e2","key_00000000000000cc",50,"half');
      await EmbeddedBilling.creditOffline(path, entry("e3", key, 30));
      const text = await readFile(path, "utf8");
      expect(text.split("\n").filter((l) => l.startsWith('{"cr":["e3"'))).to.have.length(1);
      const s2 = await store();
      expect(s2.corruptLines).to.equal(2);
      expect(await s2.account(key, NOW)).to.include({ balanceMicros: 130 });
      // Compacted on open: only whole, live lines remain.
      for (const line of (await readFile(path, "utf8")).trim().split("\n")) JSON.parse(line);
    });

    it("a stale lock (a writer that crashed holding it) is broken; a fresh one is waited for", async () => {
      const key = "key_00000000000000dd";
      await writeFile(`${path}.lock`, "1\n");
      const { utimes } = await import("node:fs/promises");
      const old = new Date(Date.now() - 60_000);
      await utimes(`${path}.lock`, old, old);
      await EmbeddedBilling.configureOffline(path, key, { metered: true, budgetDailyMicros: 5 }, NOW);
      // A fresh lock holds writers back until it goes.
      await writeFile(`${path}.lock`, "1\n");
      let done = false;
      const pending = EmbeddedBilling.creditOffline(path, entry("x", key, 9)).then((r) => {
        done = true;
        return r;
      });
      await new Promise((r) => setTimeout(r, 200));
      expect(done).to.equal(false);
      await rm(`${path}.lock`);
      expect(await pending).to.equal(true);
      const s = await store();
      expect(await s.settings(key)).to.deep.equal({ metered: true, budgetDailyMicros: 5 });
      expect((await s.account(key, NOW)).balanceMicros).to.equal(9);
    });

    it("in memory (no path): same semantics, nothing written", async () => {
      const s = await EmbeddedBilling.open({ ...BILLING_OPTIONS, nowMs: NOW });
      const key = "key_00000000000000ee";
      await s.configure(key, { metered: true, budgetDailyMicros: null }, NOW);
      await s.credit(entry("m", key, 50));
      await s.settle([billedEvent(key, 20)], NOW);
      expect(await s.account(key, NOW)).to.include({ balanceMicros: 30 });
      await s.close();
    });
  });
});
