// `rediss://` and `rediss+cluster://` for real: a Redis and a 3-master
// Redis Cluster that speak only TLS (certificates from a throwaway CA),
// used by the real `tensorclaw keys` processes, which trust the CA the way
// an operator's would (NODE_EXTRA_CA_CERTS) and refuse a server they
// cannot verify.
import { expect } from "chai";
import { type CliResult, runCli } from "../support/cli.js";
import {
  makeTestCertificates,
  startTlsRedis,
  type TestCertificates,
  type TlsRedis,
} from "../support/redis-tls.js";

function ok(r: CliResult): string {
  expect(r.code, r.stderr).to.equal(0);
  return r.stdout;
}

describe("Redis over TLS (rediss://, rediss+cluster://), through the real CLI", function () {
  this.timeout(60_000);
  let certs: TestCertificates;

  before(async () => {
    certs = await makeTestCertificates();
  });
  after(async () => certs?.remove());

  for (const kind of ["single", "cluster"] as const) {
    describe(
      kind === "single" ? "one server (rediss://)" : "a cluster of three masters (rediss+cluster://)",
      () => {
        let redis: TlsRedis;
        before(async () => {
          redis = await startTlsRedis(certs, kind);
        });
        after(async () => redis?.stop());

        const keys = (args: readonly string[], trusted = true) =>
          runCli(["keys", ...args, "--redis-url", redis.url, "--json"], {
            REDIS_URL: undefined,
            NODE_EXTRA_CA_CERTS: trusted ? certs.ca : undefined,
          });

        it("stores keys and balances there when the server's CA is trusted", async () => {
          expect(redis.url.startsWith(kind === "single" ? "rediss://" : "rediss+cluster://")).to.equal(true);
          // Each key's balance lives in its own hash slot: on a cluster they spread over the masters.
          const ids: string[] = [];
          for (let i = 0; i < 4; i++) {
            const created = JSON.parse(
              ok(await keys(["create", "--name", `tls-${i}`, "--credits", String(i + 1)])),
            );
            ids.push(created.id as string);
          }
          const listed = JSON.parse(ok(await keys(["list"]))) as {
            id: string;
            name: string;
            account: { balanceMicros: number };
          }[];
          expect(listed.map((k) => [k.id, k.name, k.account.balanceMicros])).to.have.deep.members(
            ids.map((id, i) => [id, `tls-${i}`, (i + 1) * 1_000_000]),
          );
        });

        it("refuses a server whose certificate it cannot verify, saying where and why", async () => {
          const r = await keys(["list"], false);
          expect(r.code).to.equal(1);
          const where = redis.url.replace(/^rediss(\+cluster)?:\/\//, "");
          expect(r.stderr).to.include(
            `cannot reach Redis at ${where} (self-signed certificate in certificate chain)`,
          );
          expect(r.stdout).to.equal("");
        });
      },
    );
  }
});
