import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { Redis } from "ioredis";
import { TensorClawError } from "../../common/errors.js";
import type { AuditOutcome } from "../../validator/audit/judgement.js";
import type { AuditRecord } from "../../validator/audit/verdicts.js";
import type { ProbeRecord } from "../../validator/scoring.js";
import type { ValidatorStateStore } from "../../validator/state-store.js";
import { FileStateStore } from "../../validator/state-store-file.js";
import { RedisStateStore } from "../../validator/state-store-redis.js";
import type { PendingCommit } from "../../validator/weights-plan.js";
import { randomPrefix, startRedis, type TestRedis } from "../support/redis.js";
import { useRedisCluster } from "../support/redis-cluster.js";

const rec = (atMs: number, ok = true): ProbeRecord => ({ atMs, ok, latencyMs: 10 + atMs, ttftMs: 5 });
const audit = (
  atMs: number,
  hotkey: string,
  model: string,
  outcome: AuditOutcome = "passed",
): AuditRecord => ({
  atMs,
  hotkey,
  model,
  outcome,
  judge: "reference",
  detail: `mean logprob -0.${atMs}`,
});
/** Audits grouped per (hotkey, model), each oldest first, in a stable order for comparison. */
const grouped = (records: AuditRecord[]) => {
  const out: Record<string, number[]> = {};
  for (const r of records) {
    const key = `${r.hotkey}|${r.model}`;
    out[key] = [...(out[key] ?? []), r.atMs];
  }
  return out;
};
const commit = (n: number): PendingCommit => ({
  netuid: 92,
  hotkey: "5V",
  uids: [0, 1],
  values: [65_535, n],
  salt: [n, 2, 3],
  versionKey: "18446744073709551615",
  hash: `0x${n.toString(16).padStart(64, "0")}`,
  commitBlock: 1000 + n,
});

/** The behaviour both stores share; `reopen` simulates a process restart. */
function contract(
  name: string,
  setup: () => Promise<{ open: () => Promise<ValidatorStateStore>; cleanup: () => Promise<void> }>,
) {
  describe(name, () => {
    let open: () => Promise<ValidatorStateStore>;
    let cleanup: () => Promise<void>;
    beforeEach(async () => {
      ({ open, cleanup } = await setup());
    });
    afterEach(async () => cleanup());

    it("keeps the last 100 probes per miner, oldest first, across a restart", async () => {
      const s = await open();
      for (let i = 0; i < 130; i += 10) {
        await s.appendProbes(
          Array.from({ length: 10 }, (_, j) => ({ hotkey: "5A", record: rec(i + j, (i + j) % 3 !== 0) })),
        );
      }
      await s.appendProbes([{ hotkey: "5B", record: rec(7) }]);
      await s.close();
      const again = await open();
      const h = await again.probeHistory();
      expect(h.get("5A")?.map((r) => r.atMs)).to.deep.equal(Array.from({ length: 100 }, (_, i) => 30 + i));
      expect(h.get("5A")?.[0]).to.deep.equal(rec(30, false));
      expect(h.get("5B")).to.deep.equal([rec(7)]);
      await again.close();
    });

    it("keeps pending commits, salt and u64 version key included, across a restart", async () => {
      const s = await open();
      await s.addPendingCommit(commit(1));
      await s.addPendingCommit(commit(2));
      await s.addPendingCommit({ ...commit(1), commitBlock: 5000 });
      await s.close();
      const again = await open();
      expect(await again.pendingCommits()).to.deep.equal([commit(2), { ...commit(1), commitBlock: 5000 }]);
      await again.removePendingCommits([commit(2).hash]);
      expect(await again.pendingCommits()).to.deep.equal([{ ...commit(1), commitBlock: 5000 }]);
      await again.close();
    });

    it("forgets miners not probed since the cutoff", async () => {
      const s = await open();
      await s.appendProbes([
        { hotkey: "old", record: rec(100) },
        { hotkey: "new", record: rec(100) },
        { hotkey: "new", record: rec(900) },
      ]);
      expect(await s.pruneMiners(500)).to.equal(1);
      expect([...(await s.probeHistory()).keys()]).to.deep.equal(["new"]);
      await s.close();
    });

    it("keeps the last 100 audits per (miner, model), oldest first, across a restart", async () => {
      const s = await open();
      expect(await s.auditHistory()).to.deep.equal([]);
      for (let i = 0; i < 120; i += 20) {
        await s.appendAudits(
          Array.from({ length: 20 }, (_, j) =>
            audit(i + j, "5A", "org/model:7b", j % 4 === 0 ? "failed" : "passed"),
          ),
        );
      }
      // Models whose ids could collide if keys were joined naively.
      await s.appendAudits([
        audit(5, "5A", "x"),
        audit(6, "5A:x", "y"),
        audit(7, "5A", "x:y", "unverifiable"),
      ]);
      await s.appendAudits([]);
      await s.close();
      const again = await open();
      const all = await again.auditHistory();
      expect(grouped(all)).to.deep.equal({
        "5A|org/model:7b": Array.from({ length: 100 }, (_, i) => 20 + i),
        "5A|x": [5],
        "5A:x|y": [6],
        "5A|x:y": [7],
      });
      expect(all).to.deep.include(audit(20, "5A", "org/model:7b", "failed"));
      expect(all).to.deep.include(audit(7, "5A", "x:y", "unverifiable"));
      await again.close();
    });

    it("prunes audits with their miners and audit histories gone quiet", async () => {
      const s = await open();
      await s.appendProbes([
        { hotkey: "old", record: rec(100) },
        { hotkey: "new", record: rec(900) },
      ]);
      await s.appendAudits([
        audit(950, "old", "m", "failed"),
        audit(100, "new", "quiet", "failed"),
        audit(200, "new", "m", "failed"),
        audit(800, "new", "m"),
      ]);
      expect(await s.pruneMiners(500)).to.equal(1);
      expect(grouped(await s.auditHistory())).to.deep.equal({ "new|m": [200, 800] });
      await s.close();
      const again = await open();
      expect(grouped(await again.auditHistory())).to.deep.equal({ "new|m": [200, 800] });
      // Nothing stale: nothing changes.
      expect(await again.pruneMiners(500)).to.equal(0);
      expect(grouped(await again.auditHistory())).to.deep.equal({ "new|m": [200, 800] });
      await again.close();
    });

    it("loses nothing under concurrent appends", async () => {
      const s = await open();
      await Promise.all([
        ...Array.from({ length: 30 }, (_, i) => s.appendProbes([{ hotkey: `m${i % 3}`, record: rec(i) }])),
        ...Array.from({ length: 30 }, (_, i) => s.appendAudits([audit(i, `m${i % 3}`, `x${i % 2}`)])),
      ]);
      const h = await s.probeHistory();
      expect([...h.values()].reduce((n, l) => n + l.length, 0)).to.equal(30);
      expect(await s.auditHistory()).to.have.length(30);
      await s.close();
    });
  });
}

/**
 * Records that land between a pruning pass's read and its write (the
 * validator prunes beside its probe schedule) keep their histories, and a
 * miner probed again keeps its audits; the rest of the pass goes through.
 */
async function landsWhilePruning(s: RedisStateStore): Promise<void> {
  await s.appendProbes([
    { hotkey: "back", record: rec(100) },
    { hotkey: "gone", record: rec(100) },
    { hotkey: "new", record: rec(900) },
  ]);
  await s.appendAudits([
    audit(900, "back", "m"),
    audit(900, "gone", "m"),
    audit(100, "new", "quiet"),
    audit(100, "new", "again"),
  ]);
  const plan = await s.planPrune(500);
  // Meanwhile "back" is probed and "new"'s model "again" audited.
  await s.appendProbes([{ hotkey: "back", record: rec(1000) }]);
  await s.appendAudits([audit(1000, "new", "again")]);
  expect(await s.applyPrune(plan)).to.equal(1);
  const probes = Object.fromEntries(
    [...(await s.probeHistory())].map(([hk, list]) => [hk, list.map((r) => r.atMs)]),
  );
  expect(probes).to.deep.equal({ back: [100, 1000], new: [900] });
  expect(grouped(await s.auditHistory())).to.deep.equal({ "back|m": [900], "new|again": [100, 1000] });
  // The next pass finds "back" fresh and forgets nothing more.
  expect(await s.pruneMiners(500)).to.equal(0);
}

describe("validator state store", () => {
  contract("file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tc-vstate-"));
    const path = join(dir, "nested", "state.json");
    return {
      open: () => FileStateStore.open(path),
      cleanup: () => rm(dir, { recursive: true, force: true }),
    };
  });

  describe("file specifics", () => {
    let dir: string;
    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), "tc-vstate-"));
    });
    afterEach(async () => rm(dir, { recursive: true, force: true }));

    it("replaces the file atomically and leaves no temporary files", async () => {
      const path = join(dir, "state.json");
      const s = await FileStateStore.open(path);
      await Promise.all(
        Array.from({ length: 10 }, (_, i) => s.appendProbes([{ hotkey: "5A", record: rec(i) }])),
      );
      await s.close();
      expect(await readdir(dir)).to.deep.equal(["state.json"]);
      const doc = JSON.parse(await readFile(path, "utf8")) as {
        version: number;
        probes: Record<string, unknown[]>;
      };
      expect(doc.version).to.equal(1);
      expect(doc.probes["5A"]).to.have.length(10);
    });

    it("refuses to start over silently on a corrupt file, naming it", async () => {
      const path = join(dir, "state.json");
      await writeFile(path, '{"version":1,"probes":{');
      const err = await FileStateStore.open(path).then(
        () => expect.fail("expected an error"),
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(TensorClawError);
      expect((err as Error).message).to.contain(path);
    });

    it("drops malformed entries instead of trusting them", async () => {
      const path = join(dir, "state.json");
      await writeFile(
        path,
        JSON.stringify({
          version: 1,
          probes: { "5A": [rec(1), { atMs: "x" }, null], "5B": "nope" },
          audits: [audit(1, "5A", "m"), { ...audit(2, "5A", "m"), outcome: "meh" }, 7, null],
          pendingCommits: [commit(3), { ...commit(4), salt: [70_000] }, { hash: "0x12" }],
        }),
      );
      const s = await FileStateStore.open(path);
      expect(await s.auditHistory()).to.deep.equal([audit(1, "5A", "m")]);
      expect((await s.probeHistory()).get("5A")).to.deep.equal([rec(1)]);
      expect((await s.probeHistory()).has("5B")).to.equal(false);
      expect(await s.pendingCommits()).to.deep.equal([commit(3)]);
    });
  });

  describe("redis cluster (3 masters)", () => {
    const redis = useRedisCluster();
    contract("redis cluster contract", async () => {
      const prefix = randomPrefix();
      return {
        open: async () =>
          new RedisStateStore(await redis.client({ maxRetriesPerRequest: 2 }), "5VALIDATOR", prefix),
        cleanup: async () => {},
      };
    });

    it("keeps what lands between a pruning pass's read and its write", async () => {
      await landsWhilePruning(
        new RedisStateStore(await redis.client({ maxRetriesPerRequest: 2 }), "5VALIDATOR", randomPrefix()),
      );
    });
  });

  describe("redis", () => {
    let redis: TestRedis;
    before(async () => {
      redis = await startRedis();
    });
    after(async () => redis?.stop());

    it("drops stored audits that are malformed or filed under another pair", async () => {
      const prefix = randomPrefix();
      const c = new Redis(redis.url);
      try {
        const s = new RedisStateStore(c, "5V", prefix);
        await s.appendAudits([audit(1, "a", "m"), audit(2, "b", "m")]);
        const p = `${prefix}{5V}:`;
        await c.lpush(`${p}audits:a:m`, "not json", JSON.stringify({ ...audit(3, "a", "m"), judge: "?" }));
        await c.lpush(`${p}audits:a:m`, JSON.stringify(audit(4, "b", "m")));
        await c.sadd(`${p}audited`, "no-colon");
        expect(grouped(await s.auditHistory())).to.deep.equal({ "a|m": [1], "b|m": [2] });
        // The foreign member is pruned.
        await s.pruneMiners(0);
        expect(await c.sismember(`${p}audited`, "no-colon")).to.equal(0);
      } finally {
        c.disconnect();
      }
    });

    it("keeps what lands between a pruning pass's read and its write", async () => {
      const c = new Redis(redis.url);
      try {
        const prefix = randomPrefix();
        const s = new RedisStateStore(c, "5V", prefix);
        await landsWhilePruning(s);
        // A listed miner whose history was empty when read, probed meanwhile, is kept too.
        const p = `${prefix}{5V}:`;
        await c.sadd(`${p}miners`, "listed");
        const plan = await s.planPrune(500);
        expect(plan.miners.map((m) => m.member)).to.deep.equal(["listed"]);
        await s.appendProbes([{ hotkey: "listed", record: rec(50) }]);
        expect(await s.applyPrune(plan)).to.equal(0);
        expect((await s.probeHistory()).get("listed")?.map((r) => r.atMs)).to.deep.equal([50]);
        expect(await s.pruneMiners(500)).to.equal(1);
      } finally {
        c.disconnect();
      }
    });

    contract("redis contract", async () => {
      const prefix = randomPrefix();
      const clients: Redis[] = [];
      return {
        open: async () => {
          const c = new Redis(redis.url);
          clients.push(c);
          return new RedisStateStore(c, "5VALIDATOR", prefix);
        },
        cleanup: async () => {
          for (const c of clients) c.disconnect();
        },
      };
    });

    it("namespaces state by validator hotkey under one hash tag", async () => {
      const prefix = randomPrefix();
      const c = new Redis(redis.url);
      try {
        const a = new RedisStateStore(c, "5VA", prefix);
        const b = new RedisStateStore(c, "5VB", prefix);
        await a.appendProbes([{ hotkey: "m", record: rec(1) }]);
        await a.appendAudits([audit(1, "m", "org/x:1")]);
        expect((await b.probeHistory()).size).to.equal(0);
        expect(await b.auditHistory()).to.deep.equal([]);
        const keys = await c.keys(`${prefix}*`);
        expect(keys.sort()).to.deep.equal([
          `${prefix}{5VA}:audited`,
          `${prefix}{5VA}:audits:m:org%2Fx%3A1`,
          `${prefix}{5VA}:miners`,
          `${prefix}{5VA}:probes:m`,
        ]);
      } finally {
        c.disconnect();
      }
    });
  });
});
