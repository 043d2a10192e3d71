import { expect } from "chai";
import { parseKeysCommand } from "../../cli/keys.js";
import { TensorClawError } from "../../common/errors.js";
import { keySlot } from "../../common/redis-slot.js";
import { parseRedisUrl, RedisUrlError } from "../../common/redis-url.js";
import { parseRouterCommand } from "../../router/config.js";
import { parseValidatorCommand } from "../../validator/config.js";

function urlError(text: string): string {
  try {
    parseRedisUrl(text);
  } catch (err) {
    expect(err).to.be.instanceOf(RedisUrlError);
    return (err as Error).message;
  }
  return expect.fail(`expected ${text} to be refused`);
}

describe("--redis-url: one server or a Redis Cluster", () => {
  it("reads redis:// and rediss:// as one server, as ioredis will", () => {
    expect(parseRedisUrl("redis://127.0.0.1:6379/2")).to.deep.equal({
      kind: "single",
      url: "redis://127.0.0.1:6379/2",
      where: "127.0.0.1:6379",
    });
    expect(parseRedisUrl("rediss://:secret@redis.example:6380").kind).to.equal("single");
  });

  it("reads redis+cluster:// seed nodes, with credentials, IPv6 and TLS", () => {
    expect(parseRedisUrl("redis+cluster://10.0.0.1:7000,10.0.0.2:7001,[::1]:7002/")).to.deep.equal({
      kind: "cluster",
      nodes: [
        { host: "10.0.0.1", port: 7000 },
        { host: "10.0.0.2", port: 7001 },
        { host: "::1", port: 7002 },
      ],
      username: undefined,
      password: undefined,
      tls: false,
      where: "10.0.0.1:7000,10.0.0.2:7001,[::1]:7002",
    });
    const t = parseRedisUrl("rediss+cluster://tc:p%40ss%3Aw@redis-a.internal:6379");
    expect(t).to.deep.include({ kind: "cluster", username: "tc", password: "p@ss:w", tls: true });
    expect(t.where).to.equal("redis-a.internal:6379");
    expect(parseRedisUrl("redis+cluster://:only-password@h:1")).to.deep.include({
      username: undefined,
      password: "only-password",
    });
  });

  it("refuses malformed URLs, saying why", () => {
    expect(urlError("redis+cluster://")).to.match(/at least one seed node/);
    expect(urlError("redis+cluster://h1:7000,h2")).to.match(/"h2" is not host:port/);
    expect(urlError("redis+cluster://h1:70000")).to.match(/port out of range/);
    expect(urlError("redis+cluster://h1:7000/0")).to.match(/no path/);
    expect(urlError("redis+cluster://h1:7000?tls=1")).to.match(/no path, query/);
    expect(urlError("redis+cluster://u:%zz@h1:7000")).to.match(/password is not valid percent-encoding/);
    expect(urlError("redis://h1:7000,h2:7001")).to.match(/redis\+cluster:\/\/h1:p1,h2:p2/);
    expect(urlError("http://h1:7000")).to.match(/scheme must be one of redis, rediss, redis\+cluster/);
    expect(urlError("h1:7000")).to.match(/not a URL/);
  });

  it("is a startup error naming the setting in every program that takes it", () => {
    const bad = "redis+cluster://h1:7000,nope";
    for (const parse of [
      () => parseRouterCommand(["--redis-url", bad], {}),
      () => parseKeysCommand(["list", "--redis-url", bad], {}),
      () => parseValidatorCommand(["--redis-url", bad], {}),
    ]) {
      expect(parse).to.throw(TensorClawError, /--redis-url: seed node "nope" is not host:port/);
    }
    expect(() => parseRouterCommand([], { REDIS_URL: bad })).to.throw(
      TensorClawError,
      /REDIS_URL: seed node/,
    );
    const ok = parseRouterCommand(["--redis-url", "redis+cluster://a:1,b:2"], {});
    expect(ok.config.redisUrl).to.equal("redis+cluster://a:1,b:2");
  });

  it("computes Redis Cluster hash slots, hash tags included", () => {
    // The reference value of the Redis Cluster specification (CRC16 of "123456789" is 0x31C3).
    expect(keySlot("123456789")).to.equal(0x31c3);
    expect(keySlot("tc:{5Hotkey}:h")).to.equal(keySlot("5Hotkey"));
    expect(keySlot("tc:{5Hotkey}:seen:o:0")).to.equal(keySlot("other{5Hotkey}"));
    // The specification's examples: the first `{` and the next `}`; an empty tag is no tag.
    expect(keySlot("foo{{bar}}zap")).to.equal(keySlot("{bar"));
    expect(keySlot("foo{bar}{zap}")).to.equal(keySlot("bar"));
    expect(keySlot("foo{}{bar}")).to.not.equal(keySlot("bar"));
    for (const k of ["", "x", "tc:miners", "é{ü}"]) expect(keySlot(k)).to.be.within(0, 16383);
  });
});
