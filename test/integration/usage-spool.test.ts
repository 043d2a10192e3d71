import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { EmbeddedLedger } from "../../router/ledger/embedded.js";
import type { UsageLedger } from "../../router/ledger/ledger.js";
import type { UsageEvent } from "../../router/usage/event.js";
import { UsageRecorder } from "../../router/usage/recorder.js";
import { UsageSpool } from "../../router/usage/spool.js";
import { CONTRACT_OPTIONS } from "../support/ledger-contract.js";
import { writerEvent } from "../support/ledger-events.js";

describe("usage spool (real files)", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-spool-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("takes concurrent appends (group commit) and reads them back in order, then empties itself", async () => {
    const spool = await UsageSpool.open({ dir });
    const appends = Array.from({ length: 20 }, (_, i) =>
      spool.append(Array.from({ length: 50 }, (_, j) => writerEvent("g", i * 50 + j, 1_000))),
    );
    await Promise.all(appends);
    expect(spool.depth).to.equal(1000);
    const ids: string[] = [];
    for (;;) {
      const batch = await spool.read(300);
      if (batch === undefined) break;
      ids.push(...batch.events.map((e) => e.requestId));
      await spool.ack(batch);
    }
    expect(ids).to.deep.equal(Array.from({ length: 1000 }, (_, i) => `g-${i}`));
    expect(spool.depth).to.equal(0);
    // Fully acknowledged: the file is emptied.
    expect((await stat(join(dir, "usage.spool"))).size).to.equal(0);
    await spool.close();
  });

  it("keeps the acknowledged offset across a reopen and drops a torn last line", async () => {
    const a = await UsageSpool.open({ dir });
    await a.append(Array.from({ length: 10 }, (_, i) => writerEvent("t", i, 1_000)));
    const first = await a.read(4);
    await a.ack(first as NonNullable<typeof first>);
    await a.close();
    await appendFile(join(dir, "usage.spool"), '{"requestId":"torn-');
    const b = await UsageSpool.open({ dir });
    expect(b.depth).to.equal(6);
    const rest = await b.read(100);
    expect(rest?.events.map((e) => e.requestId)).to.deep.equal(["t-4", "t-5", "t-6", "t-7", "t-8", "t-9"]);
    expect((await readFile(join(dir, "usage.spool"), "utf8")).endsWith("\n")).to.equal(true);
    // New appends after the repair are intact.
    await b.append([writerEvent("t", 10, 1_000)]);
    await b.ack(rest as NonNullable<typeof rest>);
    expect((await b.read(100))?.events.map((e) => e.requestId)).to.deep.equal(["t-10"]);
    await b.close();
  });

  it("keeps each event's origin and seq, and still loads lines written without them", async () => {
    const keyed = writerEvent("k", 7, 1_000, "0123456789abcdef");
    const plain = writerEvent("k", 8, 1_000);
    // A line as an older router wrote it (no origin/seq), and lines with half a key.
    const half = [
      JSON.stringify({ ...writerEvent("k", 9, 1_000), origin: "0123456789abcdef" }),
      JSON.stringify({ ...writerEvent("k", 10, 1_000), seq: 10 }),
      JSON.stringify({ ...writerEvent("k", 11, 1_000), origin: 5, seq: 11 }),
    ];
    await writeFile(join(dir, "usage.spool"), `${JSON.stringify(plain)}\n${half.join("\n")}\n`);
    const spool = await UsageSpool.open({ dir });
    await spool.append([keyed]);
    await spool.close();
    const again = await UsageSpool.open({ dir });
    const batch = await again.read(100);
    expect(batch?.events).to.deep.equal([plain, keyed]);
    expect(batch?.events[0]).not.to.have.any.keys("origin", "seq");
    expect(batch?.events[1]).to.include({ origin: "0123456789abcdef", seq: 7 });
    expect(again.corruptLines).to.equal(3);
    await again.close();
  });

  it("keeps paid and billing, and refuses lines whose billing is malformed", async () => {
    const billing = {
      keyId: "key_0123456789abcdef",
      costMicros: 1234,
      holdMicros: 5000,
      ttftMs: 87.5,
      finishReason: "stop",
      streamed: true,
    };
    const billed: UsageEvent = {
      ...writerEvent("b", 1, 1_000, "0123456789abcdef"),
      paid: true,
      billing: { ...billing, holdId: "lease:abc:7" },
    };
    const failed: UsageEvent = {
      ...writerEvent("b", 2, 1_000),
      paid: false,
      billing: { ...billing, ttftMs: null, finishReason: null, costMicros: 0 },
    };
    const free: UsageEvent = { ...writerEvent("b", 3, 1_000), paid: false };
    const bad = [
      { ...billing, keyId: 5 },
      { ...billing, costMicros: -1 },
      { ...billing, costMicros: 1.5 },
      { ...billing, holdMicros: "5" },
      { ...billing, ttftMs: "fast" },
      { ...billing, finishReason: 3 },
      { ...billing, streamed: "yes" },
      { ...billing, holdId: 7 },
      null,
      "billing",
    ].map((b, i) => JSON.stringify({ ...writerEvent("x", i, 1_000), billing: b }));
    bad.push(JSON.stringify({ ...writerEvent("x", 99, 1_000), paid: "yes" }));
    await writeFile(join(dir, "usage.spool"), `${bad.join("\n")}\n`);
    const spool = await UsageSpool.open({ dir });
    await spool.append([billed, failed, free]);
    await spool.close();
    const again = await UsageSpool.open({ dir });
    const batch = await again.read(100);
    expect(batch?.events).to.deep.equal([billed, failed, free]);
    expect(batch?.events[2]).not.to.have.any.keys("billing");
    expect(again.corruptLines).to.equal(bad.length);
    await again.close();
  });

  it("skips corrupt lines, ignores an ack past the end, and refuses appends beyond its size cap", async () => {
    await writeFile(
      join(dir, "usage.spool"),
      `${JSON.stringify(writerEvent("c", 0, 1))}\nnot json\n{"requestId":5}\n${JSON.stringify(writerEvent("c", 1, 1))}\n`,
    );
    await writeFile(join(dir, "usage.ack"), "999999\n");
    const spool = await UsageSpool.open({ dir, maxBytes: 2048 });
    expect(spool.depth).to.equal(4);
    const batch = await spool.read(100);
    expect(batch?.events.map((e) => e.requestId)).to.deep.equal(["c-0", "c-1"]);
    expect(spool.corruptLines).to.equal(2);
    await spool.ack(batch as NonNullable<typeof batch>);
    expect(spool.depth).to.equal(0);
    let refused: unknown;
    try {
      await spool.append(Array.from({ length: 100 }, (_, i) => writerEvent("big", i, 1)));
    } catch (err) {
      refused = err;
    }
    expect(String(refused)).to.match(/spool is full/);
    expect(spool.depth).to.equal(0);
    await spool.close();
  });

  it("recorder: never throws on hostile events, counts them invalid, and drops beyond its queue bound", async () => {
    const ledger = await EmbeddedLedger.open({ ...CONTRACT_OPTIONS, nowMs: Date.now() });
    const recorder = new UsageRecorder({ ledger, maxQueued: 5 });
    const now = Date.now();
    const hostile = [
      { ...writerEvent("h", 0, now), promptTokens: -5 },
      { ...writerEvent("h", 1, now), model: "" },
      null,
      "nonsense",
      { ...writerEvent("h", 2, now), completionTokens: Number.POSITIVE_INFINITY },
    ] as unknown as Parameters<UsageRecorder["record"]>[0][];
    for (const e of hostile) recorder.record(e);
    expect(recorder.stats()).to.include({ invalid: 5, queued: 0 });
    for (let i = 3; i < 9; i++) recorder.record(writerEvent("h", i, now)); // the 6th finds the queue full
    expect(recorder.ready()).to.equal(false);
    await recorder.idle();
    expect(recorder.stats()).to.include({ invalid: 5, counted: 5, dropped: 1, queued: 0 });
    expect(recorder.ready()).to.equal(true);
    recorder.record(writerEvent("h", 9, now));
    await recorder.idle();
    expect(recorder.stats().counted).to.equal(6);
    expect(recorder.lagMs()).to.equal(0);
    await recorder.close();
    await ledger.close();
  });

  it("recorder without a spool keeps events queued while the ledger fails, then writes them once", async () => {
    const real = await EmbeddedLedger.open({ ...CONTRACT_OPTIONS, nowMs: Date.now() });
    let down = true;
    let failures = 0;
    // Fault injection around the real ledger: calls fail while `down`.
    const ledger: UsageLedger = Object.create(real, {
      record: {
        value: (events: readonly UsageEvent[], nowMs: number) => {
          if (!down) return real.record(events, nowMs);
          failures++;
          if (failures === 3) down = false;
          return Promise.reject(new Error("disk full"));
        },
      },
    });
    const recorder = new UsageRecorder({ ledger, retryMinMs: 1, retryMaxMs: 5, batchSize: 7 });
    const now = Date.now();
    for (let i = 0; i < 50; i++) recorder.record(writerEvent("q", i, now));
    await recorder.idle();
    expect(failures).to.equal(3);
    expect(recorder.stats()).to.include({
      counted: 50,
      duplicates: 0,
      ledgerErrors: 3,
      queued: 0,
      dropped: 0,
    });
    const r = await real.usage({ nowMs: now, windowMs: CONTRACT_OPTIONS.retentionMs });
    expect(r.miners.reduce((n, m) => n + m.requests, 0)).to.equal(50);
    await recorder.close();
    await real.close();
  });
});
