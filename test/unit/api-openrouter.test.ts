import { expect } from "chai";
import { TensorClawError } from "../../common/errors.js";
import { appFromHeaders } from "../../router/api/openrouter-app.js";
import {
  parseOpenRouterFields,
  withFirstModel,
  withinMaxPrice,
} from "../../router/api/openrouter-request.js";

function refused(body: Record<string, unknown>): TensorClawError {
  try {
    parseOpenRouterFields(body);
  } catch (err) {
    expect(err).to.be.instanceOf(TensorClawError);
    expect((err as TensorClawError).code).to.equal("invalid_request");
    return err as TensorClawError;
  }
  throw new Error(`expected ${JSON.stringify(body)} to be refused`);
}

describe("api OpenRouter body fields", () => {
  it("tries `model` first, then `models`, each once", () => {
    expect(parseOpenRouterFields({ model: "a", models: ["b", "a", "c"] })?.models).to.deep.equal([
      "a",
      "b",
      "c",
    ]);
    expect(parseOpenRouterFields({ models: ["b", "c", "b"] })?.models).to.deep.equal(["b", "c"]);
    expect(parseOpenRouterFields({ model: "a" })?.models).to.deep.equal(["a"]);
    expect(parseOpenRouterFields("not an object")).to.equal(undefined);
  });

  it("fills in `model` from `models` only when `model` is absent", () => {
    const ask = parseOpenRouterFields({ models: ["b", "c"] });
    expect(withFirstModel({ models: ["b", "c"] }, ask)).to.deep.include({ model: "b" });
    const both = { model: "a", models: ["b"] };
    expect(withFirstModel(both, parseOpenRouterFields(both))).to.equal(both);
  });

  it("refuses a `models` list that is empty, too long or not of ids", () => {
    for (const models of [
      [],
      "a",
      Array.from({ length: 9 }, (_, i) => `m${i}`),
      ["ok", ""],
      ["ok", 5],
      ["x".repeat(257)],
    ]) {
      expect(refused({ model: "a", models }).param).to.equal("models");
    }
  });

  it("refuses what it cannot honour, naming the field", () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ provider: { order: ["openai"] } }, "provider.order"],
      [{ provider: { only: ["together"] } }, "provider.only"],
      [{ provider: { data_collection: "deny" } }, "provider.data_collection"],
      [{ provider: { zdr: true } }, "provider.zdr"],
      [{ provider: { quantizations: ["fp8"] } }, "provider.quantizations"],
      [{ provider: "fast" }, "provider"],
      [{ provider: { max_price: { prompt: -1 } } }, "provider.max_price.prompt"],
      [{ transforms: ["middle-out"] }, "transforms"],
      [{ transforms: "middle-out" }, "transforms"],
      [{ plugins: [{ id: "web" }] }, "plugins"],
      [{ route: "cheapest" }, "route"],
      [{ usage: true }, "usage"],
      [{ usage: { include: "yes" } }, "usage.include"],
    ];
    for (const [body, param] of cases) expect(refused({ model: "a", ...body }).param, param).to.equal(param);
  });

  it("accepts and ignores what is harmless, and honours usage.include and max_price", () => {
    const ask = parseOpenRouterFields({
      model: "a",
      provider: {
        allow_fallbacks: false,
        sort: "price",
        order: [],
        ignore: ["x"],
        data_collection: "allow",
        require_parameters: true,
        max_price: { prompt: 1, completion: 2, request: 0 },
      },
      transforms: [],
      plugins: [],
      route: "fallback",
      usage: { include: true },
    });
    expect(ask?.includeUsage).to.equal(true);
    expect(ask?.maxPrice).to.deep.equal({ prompt: 1, completion: 2 });
    expect(withinMaxPrice(ask?.maxPrice, { pricePromptPerM: 1, priceCompletionPerM: 2 })).to.equal(true);
    expect(withinMaxPrice(ask?.maxPrice, { pricePromptPerM: 1.01, priceCompletionPerM: 0 })).to.equal(false);
    expect(withinMaxPrice(ask?.maxPrice, { pricePromptPerM: 0, priceCompletionPerM: 3 })).to.equal(false);
    expect(withinMaxPrice(undefined, { pricePromptPerM: 99, priceCompletionPerM: 99 })).to.equal(true);
  });
});

describe("api OpenRouter app headers", () => {
  it("keeps a referer's origin and path (no query, fragment or credentials) and a clean title", () => {
    expect(
      appFromHeaders({
        "http-referer": "https://user:pw@app.example/chat/room?token=secret#frag",
        "x-title": "  My\tApp\u202e ✓ ",
      }),
    ).to.deep.equal({ referer: "https://app.example/chat/room", title: "My App ✓" });
    expect(appFromHeaders({ "http-referer": "https://app.example/" })).to.deep.equal({
      referer: "https://app.example",
    });
    expect(appFromHeaders({ "x-title": "cli" })).to.deep.equal({ title: "cli" });
    expect(appFromHeaders({ "http-referer": "my-app?key=1" })).to.deep.equal({ referer: "my-app" });
  });

  it("bounds both, and names no app when neither says anything", () => {
    const app = appFromHeaders({
      "http-referer": `https://a.example/${"p".repeat(5000)}`,
      "x-title": "t".repeat(5000),
    });
    expect(app?.referer?.length).to.be.at.most(256);
    expect(app?.title?.length).to.equal(128);
    expect(appFromHeaders({})).to.equal(undefined);
    expect(appFromHeaders({ "x-title": " \u0000\t ", "http-referer": "" })).to.equal(undefined);
  });
});
