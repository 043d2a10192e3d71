import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { TensorClawError } from "../../common/errors.js";
import { splitRouterUrl } from "../../common/router-id.js";
import { endpointAddress, planRouters } from "../../miner/tunnel/endpoints.js";
import { judgeRouterId } from "../../miner/tunnel/router-guard.js";
import { FileRouterPins, MemoryRouterPins, ROUTER_PINS_FILE } from "../../miner/tunnel/router-pins.js";

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(TensorClawError);
    expect((err as TensorClawError).code).to.equal("config_invalid");
    return (err as Error).message;
  }
  return expect.fail("no config error");
}

describe("router id pinning", () => {
  describe("?id= in --router URLs", () => {
    it("splits the id off and leaves the address to dial without a query", () => {
      const p = splitRouterUrl("wss://r.example/v1/tunnel?id=router-eu-1", "--router");
      expect(p.routerId).to.equal("router-eu-1");
      expect(p.url.href).to.equal("wss://r.example/v1/tunnel");
      expect(splitRouterUrl("grpc://h:1", "--router").routerId).to.equal(undefined);
    });

    it("refuses an empty or spaced id, an id given twice and any other parameter, naming the setting", () => {
      expect(configError(() => splitRouterUrl("grpc://h:1?id=", "--router"))).to.match(
        /--router: \?id= must be/,
      );
      expect(configError(() => splitRouterUrl("grpc://h:1?id=a%20b", "--router"))).to.match(/visible ASCII/);
      expect(configError(() => splitRouterUrl("grpc://h:1?id=a&id=b", "--router"))).to.match(/twice/);
      expect(configError(() => splitRouterUrl("grpc://h:1?ID=a", "--router"))).to.match(
        /unknown query parameter "ID"/,
      );
    });

    it("gives a gRPC + WS pair one id, keeps the query out of the WS URL, and refuses two ids for one router", () => {
      const [plan] = planRouters(["grpc://h:1?id=r1", "ws://h:2/v1/tunnel"], "auto");
      expect(plan?.routerId).to.equal("r1");
      expect(plan?.endpoints.map((e) => (e.transport === "ws" ? e.url : e.label))).to.deep.equal([
        "grpc://h:1",
        "ws://h:2/v1/tunnel",
      ]);
      const [derived] = planRouters(["grpc://h:1?id=r1"], "auto");
      expect(derived?.endpoints.map(endpointAddress)).to.deep.equal(["h:1", "h:8080"]);
      const [bare] = planRouters(["wss://h?id=r2"], "ws");
      expect(bare?.endpoints.map((e) => e.transport === "ws" && e.url)).to.deep.equal(["wss://h/v1/tunnel"]);
      expect(bare?.endpoints.map(endpointAddress)).to.deep.equal(["h:443"]);
      expect(planRouters(["grpc://h:1"], "grpc")[0]?.routerId).to.equal(undefined);
      expect(configError(() => planRouters(["grpc://h:1?id=a", "ws://h:2?id=b"], "auto"))).to.match(
        /different \?id= values/,
      );
    });
  });

  describe("judging a challenge's router id", () => {
    const [pinnedPlan] = planRouters(["grpc://h:1?id=r1"], "grpc");
    const [openPlan] = planRouters(["grpc://h:1"], "grpc");
    if (pinnedPlan === undefined || openPlan === undefined) throw new Error("no plan");
    const ep = pinnedPlan.endpoints[0];
    if (ep === undefined) throw new Error("no endpoint");

    it("signs only for the URL's id when it names one, whatever is pinned", () => {
      const pins = new MemoryRouterPins();
      pins.pin(["h:1"], "r0");
      expect(judgeRouterId(pinnedPlan, ep, "r1", pins)).to.deep.equal({ ok: true, firstContact: false });
      const v = judgeRouterId(pinnedPlan, ep, "r2", pins);
      expect(v.ok).to.equal(false);
      expect(!v.ok && v.message).to.match(/names itself "r2", but --router pins \?id=r1: no hello signed/);
    });

    it("trusts the first id at an address, then that id only, saying how to accept a change", () => {
      const pins = new MemoryRouterPins();
      expect(judgeRouterId(openPlan, ep, "r1", pins)).to.deep.equal({ ok: true, firstContact: true });
      pins.pin(["h:1"], "r1");
      expect(judgeRouterId(openPlan, ep, "r1", pins)).to.deep.equal({ ok: true, firstContact: false });
      const v = judgeRouterId(openPlan, ep, "evil", pins);
      expect(v.ok).to.equal(false);
      const msg = v.ok ? "" : v.message;
      expect(msg).to.include('ROUTER ID CHANGED at h:1: pinned "r1", the router now names itself "evil"');
      expect(msg).to.include("delete the entry for h:1 from memory");
      expect(msg).to.include("?id=");
    });
  });

  describe("the pin file", () => {
    let dir: string;
    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), "tc-pins-unit-"));
    });
    afterEach(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it("starts empty, keeps the first id per address and survives a restart", async () => {
      const a = new FileRouterPins(dir);
      expect(a.where).to.equal(join(dir, ROUTER_PINS_FILE));
      expect(a.get("h:1")).to.equal(undefined);
      a.pin(["h:1", "h:8080"], "r1");
      a.pin(["h:1", "g:2"], "r2");
      expect(JSON.parse(await readFile(a.where, "utf8"))).to.deep.equal({
        version: 1,
        pins: { "g:2": "r2", "h:1": "r1", "h:8080": "r1" },
      });
      const b = new FileRouterPins(dir);
      expect([b.get("h:1"), b.get("h:8080"), b.get("g:2")]).to.deep.equal(["r1", "r1", "r2"]);
    });

    it("refuses a malformed file at start, naming it", async () => {
      const file = join(dir, ROUTER_PINS_FILE);
      for (const text of [
        "{",
        "null",
        '{"version":2,"pins":{}}',
        '{"version":1,"pins":[]}',
        '{"version":1,"pins":{"h:1":"a b"}}',
      ]) {
        await writeFile(file, text);
        expect(
          configError(() => new FileRouterPins(dir)),
          text,
        ).to.include(file);
      }
    });
  });
});
