// `tensorclaw keys --redis-wait-replicas`: a key handed out, a credit
// applied or a key revoked counts only once a replica has it, so a failover
// to that replica loses none of them; a run whose write the replica missed
// fails and says how to repeat it, and the repeat applies nothing twice.
import { expect } from "chai";
import { BillingKeys } from "../../router/billing/redis.js";
import { DEFAULT_LEDGER_PREFIX } from "../../router/ledger/redis.js";
import { type CliResult, runCli } from "../support/cli.js";
import { pollUntil } from "../support/poll.js";
import { onRedisAt } from "../support/redis.js";
import { startRedisPair, type TestRedisPair } from "../support/redis-replica.js";

const REFUSED = "0 of 1 replicas acknowledged the writes within 300 ms";

function ok(r: CliResult): string {
  expect(r.code, r.stderr).to.equal(0);
  return r.stdout;
}

function refused(r: CliResult): string {
  expect(r.code, r.stdout).to.not.equal(0);
  expect(r.stderr).to.include(REFUSED);
  return r.stderr;
}

describe("keys CLI: writes wait for a replica (--redis-wait-replicas)", function () {
  this.timeout(90_000);
  let pair: TestRedisPair;
  const cli = (args: readonly string[], url = pair.masterUrl) =>
    runCli([
      "keys",
      ...args,
      "--redis-url",
      url,
      "--redis-wait-replicas",
      "1",
      "--redis-wait-timeout-ms",
      "300",
    ]);
  const created = async (args: readonly string[] = []) =>
    JSON.parse(ok(await cli(["create", "--json", ...args]))) as { key: string; id: string };
  const listed = async () =>
    JSON.parse(ok(await cli(["list", "--json"]))) as { id: string; revokedAtMs: number | null }[];

  beforeEach(async () => {
    pair = await startRedisPair();
  });
  afterEach(async () => {
    await pair.stop();
  });

  it("prints no key whose record the replica lacks, and leaves that record revoked", async () => {
    pair.pauseReplica();
    let r: CliResult;
    try {
      r = await cli(["create", "--name", "lagging", "--json"]);
    } finally {
      pair.resumeReplica();
    }
    expect(r.stdout).to.equal("");
    expect(refused(r)).to.match(
      /key_[0-9a-f]{16} could not be stored for sure, so it is not printed and its revocation is not confirmed either/,
    );
    const [orphan] = await listed();
    expect(orphan?.revokedAtMs).to.be.a("number");
    // With the replica back, a key is printed, and the replica holds its record.
    const { id } = await created(["--name", "fine"]);
    const onReplica = await onRedisAt(pair.replicaUrl, (c) => c.hvals("tc:apikeys"));
    expect(onReplica.map((t) => (JSON.parse(t) as { id: string }).id)).to.include(id);
  });

  it("fails a credit the replica lacks, naming the id to repeat it with; the repeat credits once and survives a failover", async () => {
    const { id } = await created(["--credits", "1"]);
    pair.pauseReplica();
    let entryId: string;
    try {
      const stderr = refused(await cli(["credit", id, "5", "--note", "top-up"]));
      entryId = (/repeat with --entry-id (op:\S+),/.exec(stderr) ?? [])[1] as string;
      expect(entryId).to.match(/^op:\d+:[0-9a-f]{16}$/);
      // A repeat from another connection while the replica still lags is refused too.
      refused(await cli(["credit", id, "5", "--entry-id", entryId]));
    } finally {
      pair.resumeReplica();
    }
    expect(ok(await cli(["credit", id, "5", "--entry-id", entryId]))).to.match(
      /^entry op:\S+ was applied before: nothing credited now; balance 6\.00 USD\n$/,
    );
    const account = new BillingKeys(DEFAULT_LEDGER_PREFIX).account(id);
    expect(await onRedisAt(pair.replicaUrl, (c) => c.hget(account, "balance"))).to.equal("6000000");
    // The master dies; its replica takes over with every credit, each once.
    await pair.killMaster();
    await pair.promoteReplica();
    const shown = JSON.parse(ok(await cli(["show", id, "--json"], pair.replicaUrl))) as {
      account: { balanceMicros: number };
      entries: { id: string; amountMicros: number }[];
    };
    expect(shown.account.balanceMicros).to.equal(6_000_000);
    expect(shown.entries.map((e) => [e.id, e.amountMicros])).to.deep.equal([
      [entryId, 5_000_000],
      [`initial:${id}`, 1_000_000],
    ]);
  });

  it("a credit repeated by a waiting store writes again (WAIT counts only its own connection's writes), a plain repeat does not", async () => {
    const { id } = await created(["--credits", "1"]);
    const account = new BillingKeys(DEFAULT_LEDGER_PREFIX).account(id);
    const events: string[] = [];
    await onRedisAt(pair.masterUrl, async (sub) => {
      await sub.config("SET", "notify-keyspace-events", "Kh");
      await sub.subscribe(`__keyspace@0__:${account}`);
      sub.on("message", (_channel: string, event: string) => events.push(event));
      const repeat = async (wait: boolean) => {
        const before = events.length;
        const args = ["credit", id, "1", "--entry-id", `op:initial-repeat-${wait}`];
        ok(await runCli(["keys", ...args, "--redis-url", pair.masterUrl]));
        const flags = ["--redis-url", pair.masterUrl, "--redis-wait-replicas", wait ? "1" : "0"];
        expect(ok(await runCli(["keys", ...args, ...flags]))).to.include("was applied before");
        // A marker published after the repeat comes after any event of it: Redis runs commands in order.
        await onRedisAt(pair.masterUrl, (c) => c.publish(`__keyspace@0__:${account}`, "marker"));
        await pollUntil(() => events.includes("marker") || undefined, {
          what: "the marker",
          timeoutMs: 5000,
        });
        const seen = events.splice(before);
        // The first run's two HINCRBYs (balance, credited), then the repeat's writes, if any.
        expect(seen.slice(0, 2)).to.deep.equal(["hincrby", "hincrby"]);
        return seen.slice(2, -1);
      };
      expect(await repeat(false)).to.deep.equal([]);
      expect(await repeat(true)).to.deep.equal(["hset"]);
    });
    expect(await onRedisAt(pair.masterUrl, (c) => c.hget(account, "credited"))).to.equal("3000000");
  });

  it("fails a revocation the replica lacks until a repeat is acknowledged", async () => {
    const { id } = await created();
    pair.pauseReplica();
    try {
      expect(refused(await cli(["revoke", id]))).to.include(
        `the revocation of ${id} is not confirmed; run revoke again`,
      );
      // Revoked on the master already: the repeat writes the record again, so it is refused as well.
      refused(await cli(["revoke", id]));
    } finally {
      pair.resumeReplica();
    }
    expect(ok(await cli(["revoke", id]))).to.equal(`revoked ${id}\n`);
    const onReplica = await onRedisAt(pair.replicaUrl, (c) => c.hvals("tc:apikeys"));
    const rec = onReplica.map((t) => JSON.parse(t) as { id: string; revokedAtMs: number | null });
    expect(rec.find((x) => x.id === id)?.revokedAtMs).to.be.a("number");
  });
});
