import { expect } from "chai";
import { MAX_JSON_DEPTH, nestsDeeperThan, parseJson } from "../../router/api/http.js";

const b = (s: string) => Buffer.from(s);

describe("api json nesting bound", () => {
  it("measures nesting of arrays and objects, not brackets inside strings", () => {
    expect(nestsDeeperThan(b('{"a":[[1]]}'), 3)).to.equal(false);
    expect(nestsDeeperThan(b('{"a":[[[1]]]}'), 3)).to.equal(true);
    expect(nestsDeeperThan(b('{"a":"[[[[[[[[["}'), 1)).to.equal(false);
    // Siblings do not add up: depth comes back down after each.
    expect(nestsDeeperThan(b("[[1],[2],[3],[4]]"), 2)).to.equal(false);
  });

  it("follows escaped quotes: an escaped quote does not end a string, an escaped backslash does not escape it", () => {
    expect(nestsDeeperThan(b('["a\\\\"[[[[]]]]]'), 3)).to.equal(true);
    expect(nestsDeeperThan(b('["a\\\\"]'), 1)).to.equal(false);
    expect(nestsDeeperThan(b('["a\\"[[[[]]]]"]'), 1)).to.equal(false);
    expect(nestsDeeperThan(b('["\\\\\\"[[[["]'), 1)).to.equal(false);
    expect(nestsDeeperThan(b('["\\u00e9 é [[[[", [[[1]]]]'), 3)).to.equal(true);
  });

  it("leaves malformed text (an unclosed string) to the parser", () => {
    expect(nestsDeeperThan(b('["open [[[['), 1)).to.equal(false);
    expect(() => parseJson(b('["open [[[['))).to.throw(/not valid JSON/);
  });

  it("refuses a body nested deeper than the bound with invalid_json before parsing it", () => {
    const deep = b(`${"[".repeat(MAX_JSON_DEPTH + 1)}${"]".repeat(MAX_JSON_DEPTH + 1)}`);
    expect(() => parseJson(deep)).to.throw(/nests arrays or objects deeper than 128 levels/);
    const ok = b(`${"[".repeat(MAX_JSON_DEPTH)}${"]".repeat(MAX_JSON_DEPTH)}`);
    expect(parseJson(ok)).to.be.an("array");
    // A million opening brackets (the hostile case) is refused without a parse.
    expect(() => parseJson(b("[".repeat(1_000_000)))).to.throw(/deeper than/);
  });
});
