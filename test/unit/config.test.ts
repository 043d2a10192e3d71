import { expect } from "chai";
import { parseKeysCommand } from "../../cli/keys.js";
import { parseCommand } from "../../common/config.js";
import { TensorClawError } from "../../common/errors.js";
import { parseMinerCommand } from "../../miner/config.js";
import { corsOrigins, parseRouterCommand, ROUTER_DEFAULTS } from "../../router/config.js";
import { parseValidatorCommand } from "../../validator/config.js";

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(TensorClawError);
    expect((err as TensorClawError).code).to.equal("config_invalid");
    return (err as Error).message;
  }
  return expect.fail("expected a config_invalid error");
}

describe("config", () => {
  it("applies defaults, then environment, then flags", () => {
    const none = parseRouterCommand([], {});
    expect(none.config).to.deep.equal(ROUTER_DEFAULTS);
    const env = parseRouterCommand([], { TENSORCLAW_HTTP_PORT: "9000", REDIS_URL: "redis://x:1" });
    expect(env.config.httpPort).to.equal(9000);
    expect(env.config.redisUrl).to.equal("redis://x:1");
    const both = parseRouterCommand(["--http-port", "9001"], { TENSORCLAW_HTTP_PORT: "9000" });
    expect(both.config.httpPort).to.equal(9001);
    const eq = parseRouterCommand(["--http-port=9002", "--no-auth"], {});
    expect(eq.config.httpPort).to.equal(9002);
    expect(eq.config.noAuth).to.equal(true);
  });

  it("counts only paid traffic unless --count-free-traffic (a dev setting) is given", () => {
    expect(parseRouterCommand([], {}).config.countFreeTraffic).to.equal(false);
    expect(parseRouterCommand(["--count-free-traffic"], {}).config.countFreeTraffic).to.equal(true);
    expect(
      parseRouterCommand([], { TENSORCLAW_COUNT_FREE_TRAFFIC: "true" }).config.countFreeTraffic,
    ).to.equal(true);
  });

  it("reads the user salt from --user-salt or TENSORCLAW_USER_SALT (the flag wins) and refuses a short one", () => {
    expect(parseRouterCommand([], {}).config.userSalt).to.equal(undefined);
    const env = parseRouterCommand([], { TENSORCLAW_USER_SALT: "salt-from-the-environment" });
    expect(env.config.userSalt).to.equal("salt-from-the-environment");
    const flag = parseRouterCommand(["--user-salt", "salt-from-the-flag-0001"], {
      TENSORCLAW_USER_SALT: "salt-from-the-environment",
    });
    expect(flag.config.userSalt).to.equal("salt-from-the-flag-0001");
    expect(configError(() => parseRouterCommand(["--user-salt", "short"], {}))).to.match(
      /--user-salt: must be at least 16 characters, got 5/,
    );
  });

  it("reads the capacity queue's --max-queue and --queue-timeout-ms, refusing malformed values by name", () => {
    const none = parseRouterCommand([], {}).config;
    expect([none.maxQueue, none.queueTimeoutMs]).to.deep.equal([1_000, 5_000]);
    const set = parseRouterCommand(["--max-queue", "0"], { TENSORCLAW_QUEUE_TIMEOUT_MS: "250" }).config;
    expect([set.maxQueue, set.queueTimeoutMs]).to.deep.equal([0, 250]);
    expect(configError(() => parseRouterCommand(["--max-queue", "-1"], {}))).to.match(/--max-queue/);
    expect(configError(() => parseRouterCommand(["--queue-timeout-ms", "5s"], {}))).to.match(
      /--queue-timeout-ms/,
    );
    expect(configError(() => parseRouterCommand(["--queue-timeout-ms", "600001"], {}))).to.match(
      /--queue-timeout-ms/,
    );
  });

  it("keeps generation records 30 days unless --generation-retention-s says otherwise, from one hour to 30 days", () => {
    expect(parseRouterCommand([], {}).config.generationRetentionS).to.equal(30 * 86_400);
    expect(parseRouterCommand(["--generation-retention-s", "3600"], {}).config.generationRetentionS).to.equal(
      3600,
    );
    expect(
      parseRouterCommand([], { TENSORCLAW_GENERATION_RETENTION_S: "86400" }).config.generationRetentionS,
    ).to.equal(86_400);
    expect(configError(() => parseRouterCommand(["--generation-retention-s", "3599"], {}))).to.match(
      /--generation-retention-s/,
    );
    expect(configError(() => parseRouterCommand(["--generation-retention-s", "2592001"], {}))).to.match(
      /--generation-retention-s/,
    );
  });

  it("waits for no Redis replica unless --redis-wait-replicas, which needs --redis-url and a timeout below the client's", () => {
    const none = parseRouterCommand([], {}).config;
    expect([none.redisWaitReplicas, none.redisWaitTimeoutMs]).to.deep.equal([0, 1000]);
    const set = parseRouterCommand(["--redis-wait-replicas", "1", "--redis-wait-timeout-ms", "250"], {
      REDIS_URL: "redis://x:1",
    }).config;
    expect([set.redisWaitReplicas, set.redisWaitTimeoutMs]).to.deep.equal([1, 250]);
    expect(configError(() => parseRouterCommand(["--redis-wait-replicas", "1"], {}))).to.equal(
      "invalid setting --redis-wait-replicas: needs --redis-url (the embedded ledger has no replicas)",
    );
    expect(
      configError(() =>
        parseRouterCommand(["--redis-wait-timeout-ms", "5000"], { REDIS_URL: "redis://x:1" }),
      ),
    ).to.match(/--redis-wait-timeout-ms/);
  });

  it("keeps CORS off unless --cors-origins names origins, and refuses * with --no-auth", () => {
    const none = parseRouterCommand([], {}).config;
    expect(corsOrigins(none)).to.equal(undefined);
    const two = parseRouterCommand(["--cors-origins", "https://a.example, http://localhost:3000"], {}).config;
    expect(corsOrigins(two)).to.deep.equal(["https://a.example", "http://localhost:3000"]);
    expect(corsOrigins(parseRouterCommand(["--cors-origins", "*"], {}).config)).to.equal("*");
    // Named origins are fine without keys (a local web app); any origin is not.
    const local = parseRouterCommand(["--no-auth", "--cors-origins", "http://localhost:3000"], {}).config;
    expect(corsOrigins(local)).to.deep.equal(["http://localhost:3000"]);
    expect(configError(() => parseRouterCommand(["--no-auth", "--cors-origins", "*"], {}))).to.match(
      /--cors-origins: \* with --no-auth/,
    );
    expect(configError(() => parseRouterCommand(["--cors-origins", "https://a.example/app"], {}))).to.match(
      /--cors-origins: "https:\/\/a.example\/app" is not an origin/,
    );
    expect(configError(() => parseRouterCommand(["--cors-origins", "a.example"], {}))).to.match(
      /--cors-origins: "a.example" is not an origin/,
    );
  });

  it("freezes the result", () => {
    const { config } = parseMinerCommand(["--router", "grpc://a:1"], {});
    expect(Object.isFrozen(config)).to.equal(true);
    expect(Object.isFrozen(config.router)).to.equal(true);
  });

  it("collects repeatable flags, and lists from the environment", () => {
    const flags = parseMinerCommand(["--router", "grpc://a:1", "--router", "ws://b:2/v1/tunnel"], {});
    expect(flags.config.router).to.deep.equal(["grpc://a:1", "ws://b:2/v1/tunnel"]);
    const env = parseMinerCommand([], { TENSORCLAW_ROUTER: "grpc://a:1, grpcs://c:3" });
    expect(env.config.router).to.deep.equal(["grpc://a:1", "grpcs://c:3"]);
    // Flags replace the environment's list rather than appending to it.
    const mixed = parseMinerCommand(["--router", "grpc://z:9"], { TENSORCLAW_ROUTER: "grpc://a:1" });
    expect(mixed.config.router).to.deep.equal(["grpc://z:9"]);
  });

  it("names the setting in every error", () => {
    expect(configError(() => parseRouterCommand(["--http-port", "http"], {}))).to.match(
      /--http-port: expected an integer/,
    );
    expect(configError(() => parseRouterCommand(["--http-port", "70000"], {}))).to.match(
      /--http-port: must be at most/,
    );
    expect(configError(() => parseRouterCommand([], { TENSORCLAW_GRPC_PORT: "-1" }))).to.match(
      /TENSORCLAW_GRPC_PORT: must be at least 0/,
    );
    expect(configError(() => parseRouterCommand(["--redis-url", "http://x"], {}))).to.match(
      /--redis-url: scheme must be one of redis, rediss/,
    );
    expect(configError(() => parseRouterCommand(["--bogus"], {}))).to.match(/--bogus: unknown flag/);
    expect(configError(() => parseRouterCommand(["--host"], {}))).to.match(/--host: missing value/);
    expect(configError(() => parseRouterCommand(["--no-auth=maybe"], {}))).to.match(
      /--no-auth: expected true or false/,
    );
    expect(configError(() => parseRouterCommand(["--log-level", "loud"], {}))).to.match(
      /--log-level: must be one of/,
    );
    expect(configError(() => parseRouterCommand(["--tls-cert", "c.pem"], {}))).to.match(
      /--tls-cert\/--tls-key/,
    );
    expect(configError(() => parseMinerCommand(["--router", "http://a:1"], {}))).to.match(/--router: scheme/);
    expect(configError(() => parseMinerCommand(["--backend", "ollama"], {}))).to.match(
      /--backend: expected an http/,
    );
    expect(configError(() => parseMinerCommand(["--transport", "udp"], {}))).to.match(
      /--transport: must be one of/,
    );
    expect(configError(() => parseValidatorCommand([], {}))).to.match(/--chain: required unless --dry-run/);
    expect(configError(() => parseMinerCommand(["-x"], {}))).to.match(/-x: unknown flag/);
  });

  it("takes a negative number as an argument (a credit correction), not as a flag", () => {
    const parsed = parseKeysCommand(["credit", "key_0123456789abcdef", "-2.5", "--note", "typo"], {});
    expect(parsed.positionals).to.deep.equal(["credit", "key_0123456789abcdef", "-2.5"]);
    expect(configError(() => parseKeysCommand(["credit", "key_0123456789abcdef", "-x"], {}))).to.match(
      /-x: unknown flag/,
    );
  });

  it("keys: --entry-id only on credit and only as op:<reference>; --redis-wait-replicas only with Redis", () => {
    const id = "key_0123456789abcdef";
    const parsed = parseKeysCommand(["credit", id, "5", "--entry-id", "op:invoice-42"], {});
    expect(parsed.config.entryId).to.equal("op:invoice-42");
    for (const bad of ["invoice-42", "op:", "op:a b", `op:${"x".repeat(121)}`, "tao:1:2"]) {
      expect(configError(() => parseKeysCommand(["credit", id, "5", "--entry-id", bad], {}))).to.match(
        /--entry-id: must be op: and 1-120/,
      );
    }
    expect(configError(() => parseKeysCommand(["revoke", id, "--entry-id", "op:x"], {}))).to.match(
      /--entry-id: only credit takes it/,
    );
    expect(configError(() => parseKeysCommand(["list", "--redis-wait-replicas", "1"], {}))).to.match(
      /--redis-wait-replicas: needs --redis-url/,
    );
    const waiting = parseKeysCommand(
      ["list", "--redis-url", "redis://127.0.0.1:6379", "--redis-wait-replicas", "1"],
      {},
    );
    expect(waiting.config.redisWaitReplicas).to.equal(1);
    expect(waiting.config.redisWaitTimeoutMs).to.equal(1000);
  });

  it("accepts a valid miner and validator configuration", () => {
    const m = parseMinerCommand(
      ["--router", "grpc://127.0.0.1:50051", "--backend", "http://localhost:11434/v1", "--transport", "ws"],
      { TENSORCLAW_MAX_CONCURRENCY: "3" },
    );
    expect(m.config.backend).to.equal("http://localhost:11434/v1");
    expect(m.config.transport).to.equal("ws");
    expect(m.config.maxConcurrency).to.equal(3);
    const v = parseValidatorCommand(["--router", "grpc://r:1", "--dry-run", "--once"], {});
    expect(v.config.dryRun).to.equal(true);
    expect(v.config.once).to.equal(true);
    expect(v.config.netuid).to.equal(92);
  });

  it("keeps positionals and detects --help", () => {
    const specs = { n: { flag: "n", kind: "int", description: "n" } } as const;
    const parsed = parseCommand(specs, { n: 1 }, ["set", "--n", "2", "model-a", "--help"], {});
    expect(parsed.positionals).to.deep.equal(["set", "model-a"]);
    expect(parsed.help).to.equal(true);
    expect(parsed.config.n).to.equal(2);
  });
});
