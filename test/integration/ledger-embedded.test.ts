import { appendFile, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { EmbeddedLedger } from "../../router/ledger/embedded.js";
import type { UsageLedger } from "../../router/ledger/ledger.js";
import { CONTRACT_OPTIONS, ledgerContract, T0, usageEvent } from "../support/ledger-contract.js";

describe("embedded usage ledger", () => {
  ledgerContract("embedded (file-backed)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tc-ledger-"));
    const path = join(dir, "ledger.jsonl");
    let current: UsageLedger = await EmbeddedLedger.open({ ...CONTRACT_OPTIONS, path, nowMs: T0 });
    return {
      ledger: current,
      reopen: async (nowMs) => {
        await current.close();
        current = await EmbeddedLedger.open({ ...CONTRACT_OPTIONS, path, nowMs });
        return current;
      },
      dispose: async () => {
        await current.close();
        await rm(dir, { recursive: true, force: true });
      },
      // By the clock: a replay of the key is a duplicate until the expiry, then counts anew.
      expectMarkerExpiry: async (e, _lastWriteAtMs, expiresAtMs) => {
        const probe = (at: number) =>
          current.record([{ ...e, requestId: `probe-${at}`, finishedAtMs: at }], at);
        expect(await probe(expiresAtMs - 1)).to.include({ counted: 0, duplicates: 1 });
        expect(await probe(expiresAtMs)).to.include({ counted: 1, duplicates: 0 });
      },
    };
  });

  it("drops a torn last line, skips corrupt lines, and compacts expired records away", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tc-ledger-"));
    try {
      const path = join(dir, "ledger.jsonl");
      const a = await EmbeddedLedger.open({ ...CONTRACT_OPTIONS, path, nowMs: T0 });
      await a.record([usageEvent({ promptTokens: 1, completionTokens: 0 })], T0);
      await a.record(
        [usageEvent({ promptTokens: 2, completionTokens: 0, finishedAtMs: T0 + 3_600_000 })],
        T0 + 3_600_000,
      );
      await a.close();
      await appendFile(path, 'this is not json\n{"e":["miner-a","model-x","torn",');
      const b = await EmbeddedLedger.open({ ...CONTRACT_OPTIONS, path, nowMs: T0 + 3_600_000 });
      expect(b.corruptLines).to.equal(1);
      const r = await b.usage({ nowMs: T0 + 3_600_000, windowMs: 86_400_000 });
      expect(r.miners[0]?.promptTokens).to.equal(3);
      await b.close();
      // Reopened past the first event's retention: compaction removes it from the file.
      const c = await EmbeddedLedger.open({ ...CONTRACT_OPTIONS, path, nowMs: T0 + 86_400_000 + 60_000 });
      await c.close();
      const lines = (await readFile(path, "utf8")).trim().split("\n");
      // The live bucket and both request ids (ids outlive their bucket by design) remain.
      const docs = lines.map((l) => JSON.parse(l) as { b?: unknown[]; i?: unknown[] });
      expect(docs.filter((d) => d.b !== undefined).map((d) => d.b?.[2])).to.deep.equal([T0 + 3_600_000]);
      expect(docs.filter((d) => d.i !== undefined)).to.have.length(2);
      expect(docs).to.have.length(3);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("replays journal lines written before outcomes were kept", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tc-ledger-"));
    try {
      const path = join(dir, "ledger.jsonl");
      await appendFile(
        path,
        `${[
          JSON.stringify({ e: ["5Old", "m", "r1", T0, 10, 5, T0] }),
          JSON.stringify({ b: ["5Old", "m", T0, 20, 2, 2] }),
          JSON.stringify({ e: ["5Old", "m", "r2", T0, 0, 0, T0], o: "t" }),
          JSON.stringify({ e: ["5Old", "m", "r3", T0, 0, 0, T0], o: "?" }),
        ].join("\n")}\n`,
      );
      const ledger = await EmbeddedLedger.open({ ...CONTRACT_OPTIONS, path, nowMs: T0 });
      const m = (await ledger.usage({ nowMs: T0, windowMs: 86_400_000 })).miners[0]?.models[0];
      await ledger.close();
      expect(m).to.deep.include({ promptTokens: 30, completionTokens: 7, requests: 3 });
      // The unknown outcome code is a corrupt line, skipped.
      expect(m?.outcomes).to.deep.equal({
        served: 0,
        failedBeforeOutput: 0,
        failedAfterOutput: 0,
        deadlineCut: 1,
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("replays journal lines written before paid tokens were kept as free, and paid lines as paid", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tc-ledger-"));
    try {
      const path = join(dir, "ledger.jsonl");
      await appendFile(
        path,
        `${[
          // Before paid tokens: an event line without `p`, a seven-number bucket.
          JSON.stringify({ e: ["5Old", "m", "r1", T0, 10, 5, T0], o: "c" }),
          JSON.stringify({ b: ["5Old", "m", T0, 20, 2, 2, 2, 0, 0, 0] }),
          // Now: a paid event and a nine-number bucket (paid 4 + 1).
          JSON.stringify({ e: ["5Old", "m", "r2", T0, 30, 3, T0], o: "c", p: 1 }),
          JSON.stringify({ b: ["5Old", "m", T0, 8, 1, 1, 1, 0, 0, 0, 4, 1] }),
          // A paid mark that is not 1 is a corrupt line, skipped.
          JSON.stringify({ e: ["5Old", "m", "r3", T0, 500, 0, T0], o: "c", p: true }),
        ].join("\n")}\n`,
      );
      const ledger = await EmbeddedLedger.open({ ...CONTRACT_OPTIONS, path, nowMs: T0 });
      expect(ledger.corruptLines).to.equal(1);
      const m = (await ledger.usage({ nowMs: T0, windowMs: 86_400_000 })).miners[0];
      await ledger.close();
      expect(m).to.deep.include({
        promptTokens: 68,
        completionTokens: 11,
        paidPromptTokens: 34,
        paidCompletionTokens: 4,
        requests: 5,
      });
      // Compacted on open: the bucket is written back with its paid counts.
      const lines = (await readFile(path, "utf8")).trim().split("\n");
      const bucket = lines.map((l) => JSON.parse(l) as { b?: unknown[] }).find((d) => d.b !== undefined);
      expect(bucket?.b).to.deep.equal(["5Old", "m", T0, 68, 11, 5, 5, 0, 0, 0, 34, 4]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
