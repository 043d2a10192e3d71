import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { TensorClawError } from "../../common/errors.js";
import { ProbeCorpus } from "../../validator/probe-gen/corpus.js";
import { seededRandom } from "../support/api-random.js";

const line = (body: unknown) => JSON.stringify(body);
const user = (content: string) => ({ messages: [{ role: "user", content }] });

function failure(fn: () => unknown): TensorClawError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(TensorClawError);
    expect((err as TensorClawError).code).to.equal("config_invalid");
    return err as TensorClawError;
  }
  throw new Error("expected a config_invalid error");
}

describe("probe-gen: --probe-corpus", () => {
  it("keeps every valid line (blank lines skipped) and draws each about equally often", () => {
    const text = [
      line(user("first")),
      "",
      line({
        model: "ignored",
        temperature: 2,
        messages: [
          { role: "system", content: "s" },
          { role: "user", content: "second" },
        ],
      }),
      line({
        messages: [
          { role: "user", content: [{ type: "text", text: "third" }] },
          {
            role: "assistant",
            content: null,
            tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: "{}" } }],
          },
          { role: "tool", tool_call_id: "c", content: "42" },
        ],
        tools: [{ type: "function", function: { name: "f", parameters: { type: "object" } } }],
      }),
      "   ",
    ].join("\n");
    const corpus = ProbeCorpus.parse(text, "c.jsonl");
    expect(corpus.size).to.equal(3);
    const random = seededRandom(3);
    const counts = new Map<number, number>();
    for (let i = 0; i < 3000; i++) {
      const e = corpus.draw(random);
      counts.set(e.line, (counts.get(e.line) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).to.deep.equal([1, 3, 4]);
    for (const n of counts.values()) expect(n).to.be.within(900, 1100);
    const third = ProbeCorpus.parse(text, "c.jsonl");
    const drawn = [0.1, 0.5, 0.9].map((x) => third.draw(() => x));
    expect(drawn.map((e) => e.tools?.length ?? 0)).to.deep.equal([0, 0, 1]);
    expect(drawn[1]?.messages).to.deep.equal([
      { role: "system", content: "s" },
      { role: "user", content: "second" },
    ]);
  });

  it("hands out copies: changing a drawn prompt does not change the corpus", () => {
    const corpus = ProbeCorpus.parse(line(user("keep me")), "c");
    const e = corpus.draw(() => 0);
    (e.messages[0] as { content: string }).content = "changed";
    expect(corpus.draw(() => 0).messages[0]).to.deep.equal({ role: "user", content: "keep me" });
  });

  it("refuses the whole file at the first bad line, naming the file and the line", () => {
    const cases: [string, RegExp][] = [
      ["{not json", /line 3: not valid JSON/],
      ["[1,2]", /line 3: not a JSON object/],
      [line({ prompt: "hi" }), /line 3: messages must be a non-empty array/],
      [line({ messages: [] }), /line 3: messages must be a non-empty array/],
      [line({ messages: [{ role: "robot", content: "x" }] }), /line 3: messages\[0\]\.role must be one of/],
      [line({ messages: [{ role: "user" }] }), /line 3: messages\[0\]\.content must be a string/],
      [line({ messages: [{ role: "user", content: 5 }] }), /line 3: messages\[0\]\.content must be/],
      [
        line({ messages: [{ role: "user", content: [{ text: "no type" }] }] }),
        /content parts need a string type/,
      ],
      [
        line({ messages: [{ role: "tool", content: "r" }] }),
        /line 3: messages\[0\]\.tool_call_id is required/,
      ],
      [
        line({ messages: [{ role: "user", content: "x", tool_calls: [] }] }),
        /tool_calls is only for assistant messages/,
      ],
      [
        line({
          messages: [
            { role: "assistant", content: null, tool_calls: [{ id: "a", function: { name: "f" } }] },
          ],
        }),
        /tool_calls\[0\] needs an id and a function/,
      ],
      [
        line({ ...user("x"), tools: [{ type: "function", function: { name: "bad name!" } }] }),
        /tools\[0\] must be/,
      ],
      [line({ ...user("x"), tools: {} }), /tools must be an array/],
    ];
    for (const [bad, why] of cases) {
      const text = [line(user("good")), "", bad, line(user("also good"))].join("\n");
      const err = failure(() => ProbeCorpus.parse(text, "/srv/corpus.jsonl"));
      expect(err.message).to.match(/^--probe-corpus \/srv\/corpus\.jsonl line 3: /);
      expect(err.message, bad).to.match(why);
    }
  });

  it("refuses a file with no prompts", () => {
    expect(failure(() => ProbeCorpus.parse("\n  \n", "empty.jsonl")).message).to.equal(
      "--probe-corpus empty.jsonl: no chat requests in the file",
    );
  });

  it("loads a file from disk, and says so when it cannot be read", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tc-corpus-"));
    try {
      const path = join(dir, "corpus.jsonl");
      await writeFile(path, `${line(user("a"))}\n${line(user("b"))}\n`);
      expect((await ProbeCorpus.load(path)).size).to.equal(2);
      const missing = join(dir, "missing.jsonl");
      let err: unknown;
      await ProbeCorpus.load(missing).catch((e: unknown) => {
        err = e;
      });
      expect(err).to.be.instanceOf(TensorClawError);
      expect((err as TensorClawError).code).to.equal("config_invalid");
      expect((err as Error).message).to.equal(`--probe-corpus ${missing}: cannot read the file (ENOENT)`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
