import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { expect } from "chai";
import { ReferenceClient, referenceRoot } from "../../validator/audit/reference-client.js";
import {
  type AuditPrompt,
  describeCalibration,
  ReferenceJudge,
} from "../../validator/audit/reference-judge.js";

/*
 * A tiny reference server over node:http, speaking vLLM's protocol. Its
 * "model" knows one answer word by word: the j-th position after the last
 * assistant primer expects ANSWER's j-th word, at logprob -0.2 and rank 0;
 * any other token there gets -7, outside the top 5. Prompt positions get
 * -1. Words are tokens; ids are handed out on first sight.
 */
const ANSWER = "plants turn light into sugar using water and air";
const FILLER = "thank you for asking please let me know more";
const BOS = 0;
const ASSISTANT = 1;
const ROLE_IDS: Record<string, number> = { system: 2, user: 3, assistant: 4 };

interface Seen {
  readonly path: string;
  readonly body: Record<string, unknown>;
}

/** What the server does, changeable per test. */
interface Behaviour {
  /** Answer this status and text instead (per path; undefined: behave). */
  fail: Record<string, { status: number; text: string } | "hang" | undefined>;
  /** Extra echoed positions appended (a server that generates despite max_tokens 0). */
  extraPositions: number;
  /** Pad every completions answer with this many bytes of whitespace. */
  padBytes: number;
  /** What the reference answers itself (calibration). */
  chatAnswer: string;
}

class FakeReference {
  readonly seen: Seen[] = [];
  readonly behaviour: Behaviour = { fail: {}, extraPositions: 0, padBytes: 0, chatAnswer: ANSWER };
  readonly #server: Server;
  readonly #ids = new Map<string, number>([
    ["<s>", BOS],
    ["<assistant>", ASSISTANT],
  ]);
  readonly #words = new Map<number, string>([
    [BOS, "<s>"],
    [ASSISTANT, "<assistant>"],
  ]);
  readonly #hanging = new Set<ServerResponse>();
  url = "";

  constructor() {
    this.#server = createServer((req, res) => void this.#handle(req, res));
    for (const w of Object.keys(ROLE_IDS)) this.#id(`<${w}>`, ROLE_IDS[w]);
  }

  async start(): Promise<this> {
    this.#server.listen(0, "127.0.0.1");
    await once(this.#server, "listening");
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    if (!this.#server.listening) return;
    for (const r of this.#hanging) r.destroy();
    this.#server.closeAllConnections();
    this.#server.close();
    await once(this.#server, "close");
  }

  #id(word: string, fixed?: number): number {
    let id = this.#ids.get(word);
    if (id === undefined) {
      id = fixed ?? 100 + this.#ids.size;
      this.#ids.set(word, id);
      this.#words.set(id, word);
    }
    return id;
  }

  #tokens(text: string): number[] {
    return text
      .split(/\s+/)
      .filter(Boolean)
      .map((w) => this.#id(w));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
    const path = req.url ?? "";
    this.seen.push({ path, body });
    const fail = this.behaviour.fail[path.replace(/^\/proxy/, "")];
    if (fail === "hang") {
      this.#hanging.add(res);
      return;
    }
    if (fail !== undefined) {
      res.writeHead(fail.status).end(fail.text);
      return;
    }
    const send = (x: unknown, pad = 0) =>
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(x) + " ".repeat(pad));
    switch (path.replace(/^\/proxy/, "")) {
      case "/tokenize": {
        if (Array.isArray(body.messages)) {
          const ids = [BOS];
          for (const m of body.messages as { role: string; content: string }[]) {
            ids.push(ROLE_IDS[m.role] ?? 3, ...this.#tokens(m.content));
          }
          if (body.add_generation_prompt === true) ids.push(ASSISTANT);
          return void send({ count: ids.length, tokens: ids });
        }
        return void send({ tokens: this.#tokens(String(body.prompt)) });
      }
      case "/v1/completions": {
        // A text prompt: the reference's own completion of it.
        if (typeof body.prompt === "string") {
          return void send({ choices: [{ index: 0, text: this.behaviour.chatAnswer }] });
        }
        const ids = [...(body.prompt as number[])];
        for (let i = 0; i < this.behaviour.extraPositions; i++) ids.push(ASSISTANT);
        const lps: (number | null)[] = [null];
        const tops: (Record<string, number> | null)[] = [null];
        const primer = (body.prompt as number[]).lastIndexOf(ASSISTANT);
        const words = ANSWER.split(" ");
        for (let i = 1; i < ids.length; i++) {
          const cur = ids[i] as number;
          const top: Record<string, number> = { alt1: -2.5, alt2: -3, alt3: -3.5, alt4: -4 };
          const word = words[i - primer - 1];
          const want = i > primer && word !== undefined ? this.#id(word) : undefined;
          if (i <= primer) {
            // Prompt positions: whatever came is likely enough.
            top[this.#words.get(cur) ?? "?"] = -1;
            lps.push(-1);
          } else {
            if (want !== undefined) top[this.#words.get(want) ?? "?"] = -0.2;
            const lp = cur === want ? -0.2 : -7;
            // vLLM lists the actual token beside the top k.
            top[this.#words.get(cur) ?? "?"] = lp;
            lps.push(lp);
          }
          tops.push(top);
        }
        const logprobs = {
          tokens: ids.map((t) => this.#words.get(t) ?? "?"),
          token_logprobs: lps,
          top_logprobs: tops,
        };
        return void send({ choices: [{ index: 0, text: "", logprobs }] }, this.behaviour.padBytes);
      }
      case "/v1/chat/completions":
        return void send({
          choices: [{ index: 0, message: { role: "assistant", content: this.behaviour.chatAnswer } }],
        });
      default:
        res.writeHead(404).end("not found");
    }
  }
}

const prompt = (q: string): AuditPrompt => ({
  messages: [
    { role: "system", content: "answer briefly" },
    { role: "user", content: q },
  ],
  maxTokens: 64,
  seed: 1234,
});
const CALIBRATION = [
  prompt("what do plants do"),
  prompt("how do plants eat"),
  prompt("explain photosynthesis"),
];

describe("validator audit: reference judge against a real HTTP reference", () => {
  let ref: FakeReference;
  let judges: ReferenceJudge[];
  let nowMs: number;

  beforeEach(async () => {
    ref = await new FakeReference().start();
    judges = [];
    nowMs = 1_700_000_000_000;
  });
  afterEach(async () => {
    for (const j of judges) await j.close();
    await ref.stop();
  });

  function judge(over: Partial<ConstructorParameters<typeof ReferenceJudge>[0]> = {}): ReferenceJudge {
    const j = new ReferenceJudge({
      model: "demo",
      baseUrl: ref.url,
      calibrationPrompts: () => CALIBRATION,
      now: () => nowMs,
      ...over,
    });
    judges.push(j);
    return j;
  }

  it("calibrates on the reference's own answers, passes the model's answer and fails filler", async () => {
    const j = judge();
    const honest = await j.judge(prompt("what do plants do"), ANSWER);
    expect(honest).to.deep.equal({
      outcome: "passed",
      detail: "mean logprob -0.20, top-k share 1.00 over 9 tokens",
    });
    // Three answers of -0.2 and a full top 5: the marks sit at the ceilings.
    expect(j.thresholds).to.deep.equal({ minMeanLogprob: -1.5, minTopKShare: 0.8 });
    expect(j.lastCalibration?.samples).to.have.length(3);
    expect(describeCalibration("demo", j.lastCalibration as never)).to.equal(
      "reference demo calibrated on 3 answers (0 errors); marks: mean logprob >= -1.50, top-k share >= 0.80",
    );
    const filler = await j.judge(prompt("what do plants do"), FILLER);
    expect(filler).to.deep.equal({
      outcome: "failed",
      detail: "mean logprob -7.00 < -1.50; top-k share 0.00 < 0.80 (9 tokens)",
    });
    // Half right is still far from the model.
    const half = await j.judge(
      prompt("what do plants do"),
      "plants turn light into thank you for asking please",
    );
    expect(half.outcome).to.equal("failed");
  });

  it("speaks vLLM's protocol: chat tokenization, plain tokenization, echo with logprobs", async () => {
    const j = judge({ topK: 3 });
    await j.calibrate();
    ref.seen.length = 0;
    const p = prompt("what do plants do");
    await j.judge(p, "plants turn light");
    const byPath = (path: string) => ref.seen.filter((s) => s.path === path).map((s) => s.body);
    const tokenize = byPath("/tokenize");
    expect(tokenize).to.deep.include({ model: "demo", messages: p.messages, add_generation_prompt: true });
    expect(tokenize).to.deep.include({
      model: "demo",
      prompt: "plants turn light",
      add_special_tokens: false,
    });
    const [completion = {}] = byPath("/v1/completions");
    expect(completion.prompt).to.be.an("array");
    const promptIds = (completion.prompt as number[]).slice(0, -3);
    expect(promptIds[0]).to.equal(BOS);
    expect(promptIds.at(-1)).to.equal(ASSISTANT);
    expect(completion).to.deep.include({
      model: "demo",
      echo: true,
      logprobs: 3,
      max_tokens: 0,
      temperature: 0,
    });
    expect(ref.seen.map((s) => s.path)).to.not.include("/v1/chat/completions");
  });

  it("judges a text-completion audit on its plain prompt, with marks calibrated on the reference's completions", async () => {
    const j = judge();
    const p = { ...prompt("what do plants do"), text: "answer briefly\n\nwhat do plants do" };
    await j.judge(p, "plants turn light");
    const byPath = (path: string) => ref.seen.filter((s) => s.path === path).map((s) => s.body);
    // Calibration: the reference completes each calibration prompt's texts, joined as the router joins them.
    expect(byPath("/v1/chat/completions")).to.deep.equal([]);
    const own = byPath("/v1/completions").filter((b) => typeof b.prompt === "string");
    expect(own.map((b) => b.prompt)).to.deep.equal(
      CALIBRATION.map((c) => c.messages.map((m) => m.content).join("\n\n")),
    );
    expect(own[0]).to.deep.include({
      model: "demo",
      temperature: 0,
      seed: 1234,
      max_tokens: 64,
      stream: false,
    });
    // Scoring: the prompt tokenized as a completion prompt is (special tokens in), never through the template.
    const tokenize = byPath("/tokenize");
    expect(tokenize.filter((b) => b.messages !== undefined)).to.deep.equal([]);
    expect(tokenize).to.deep.include({ model: "demo", prompt: p.text, add_special_tokens: true });
    expect(tokenize).to.deep.include({
      model: "demo",
      prompt: "plants turn light",
      add_special_tokens: false,
    });
    expect(j.thresholdsFor("text")).to.not.equal(undefined);
    expect(j.thresholds, "the chat marks are calibrated apart").to.equal(undefined);
  });

  it("tokenizes an audit that offered tools with its tools, as the model's template renders them", async () => {
    const j = judge();
    await j.calibrate();
    ref.seen.length = 0;
    const tools = [{ type: "function", function: { name: "get_weather", parameters: { type: "object" } } }];
    const p = { ...prompt("what do plants do"), tools };
    await j.judge(p, "plants turn light");
    const chat = ref.seen.filter((s) => s.path === "/tokenize" && s.body.messages !== undefined);
    expect(chat.map((s) => s.body.tools)).to.deep.equal([tools]);
  });

  it("asks the reference for its own answer at temperature 0 with the audit's seed and max_tokens", async () => {
    const j = judge();
    expect(await j.answer(prompt("what do plants do"))).to.equal(ANSWER);
    expect(ref.seen.at(-1)).to.deep.equal({
      path: "/v1/chat/completions",
      body: {
        model: "demo",
        messages: prompt("what do plants do").messages,
        temperature: 0,
        seed: 1234,
        max_tokens: 64,
        stream: false,
      },
    });
  });

  it("accepts the URL with or without /v1, behind a path prefix too", async () => {
    expect(referenceRoot("http://h:8000/v1/")).to.deep.equal({ origin: "http://h:8000", prefix: "" });
    expect(referenceRoot("http://h:8000")).to.deep.equal({ origin: "http://h:8000", prefix: "" });
    expect(referenceRoot("https://h/proxy/v1")).to.deep.equal({ origin: "https://h", prefix: "/proxy" });
    expect(() => referenceRoot("ftp://h")).to.throw(/http or https/);
    expect(() => referenceRoot("nope")).to.throw(/not a URL/);
    expect(() => referenceRoot("http://h/v1?x=1")).to.throw(/no query/);
    const j = judge({ baseUrl: `${ref.url}/proxy/v1` });
    expect((await j.judge(prompt("q"), ANSWER)).outcome).to.equal("passed");
    expect(new Set(ref.seen.map((s) => s.path))).to.deep.equal(
      new Set(["/proxy/tokenize", "/proxy/v1/completions", "/proxy/v1/chat/completions"]),
    );
  });

  describe("a failing reference makes audits unverifiable, never failed", () => {
    const cases: [
      string,
      (r: FakeReference) => void,
      Partial<ConstructorParameters<typeof ReferenceJudge>[0]>,
      RegExp,
    ][] = [
      [
        "an HTTP error",
        (r) => {
          r.behaviour.fail["/v1/completions"] = { status: 500, text: "CUDA out of\nmemory" };
        },
        {},
        /^reference failed: \/v1\/completions: HTTP 500 CUDA out of memory$/,
      ],
      [
        "a body that is not JSON",
        (r) => {
          r.behaviour.fail["/tokenize"] = { status: 200, text: "<html>" };
        },
        {},
        /\/tokenize: answer is not JSON/,
      ],
      [
        "a tokenize answer without ids",
        (r) => {
          r.behaviour.fail["/tokenize"] = { status: 200, text: '{"tokens":[1,"x"]}' };
        },
        {},
        /something other than token ids/,
      ],
      [
        "an echo that does not line up",
        (r) => {
          r.behaviour.extraPositions = 1;
        },
        {},
        /echoed \d+ positions, expected \d+/,
      ],
      [
        "an answer over the size cap",
        (r) => {
          r.behaviour.padBytes = 300_000;
        },
        { maxBodyBytes: 200_000 },
        /answer larger than 200000 bytes/,
      ],
      [
        "a reference that never answers",
        (r) => {
          r.behaviour.fail["/v1/completions"] = "hang";
        },
        { timeoutMs: 300 },
        /\/v1\/completions: .*(timed out|Timeout)/i,
      ],
    ];
    for (const [name, breakIt, opts, why] of cases) {
      it(name, async () => {
        const j = judge(opts);
        await j.calibrate();
        expect(j.thresholds).to.not.equal(undefined);
        breakIt(ref);
        const v = await j.judge(prompt("q"), FILLER);
        expect(v.outcome).to.equal("unverifiable");
        expect(v.detail).to.match(why);
      });
    }

    it("a reference that is gone", async () => {
      const j = judge();
      await j.calibrate();
      await ref.stop();
      const v = await j.judge(prompt("q"), FILLER);
      expect(v.outcome).to.equal("unverifiable");
      expect(v.detail).to.match(/^reference failed: \/tokenize: /);
    });
  });

  it("judges nobody before a calibration succeeds, and retries it later", async () => {
    ref.behaviour.fail["/v1/chat/completions"] = { status: 404, text: "no chat here" };
    const j = judge({ calibrationRetryMs: 60_000 });
    const v = await j.judge(prompt("q"), FILLER);
    expect(v).to.deep.equal({
      outcome: "unverifiable",
      detail: "reference not calibrated (/v1/chat/completions: HTTP 404 no chat here)",
    });
    const chats = () => ref.seen.filter((s) => s.path === "/v1/chat/completions").length;
    expect(chats()).to.equal(3);
    // Not retried on every audit...
    nowMs += 59_999;
    await j.judge(prompt("q"), FILLER);
    expect(chats()).to.equal(3);
    // ...but once the retry time has come.
    ref.behaviour.fail = {};
    nowMs += 1;
    expect((await j.judge(prompt("q"), FILLER)).outcome).to.equal("failed");
    expect(chats()).to.equal(6);
  });

  it("needs enough usable calibration answers", async () => {
    ref.behaviour.chatAnswer = "plants"; // one token: too short to calibrate on
    const j = judge();
    const r = await j.calibrate();
    expect(r.thresholds).to.equal(undefined);
    expect(r.errors).to.deep.equal(["0 usable answers of 3 (need 2)"]);
    expect((await j.judge(prompt("q"), FILLER)).detail).to.equal(
      "reference not calibrated (0 usable answers of 3 (need 2))",
    );
  });

  it("recalibrates after its interval and keeps its marks when a recalibration fails", async () => {
    const j = judge({ recalibrateMs: 3_600_000 });
    await j.judge(prompt("q"), ANSWER);
    const marks = j.thresholds;
    const calibratedAt = j.lastCalibration?.atMs;
    nowMs += 3_599_999;
    await j.judge(prompt("q"), ANSWER);
    expect(j.lastCalibration?.atMs).to.equal(calibratedAt);
    nowMs += 1;
    ref.behaviour.fail["/v1/chat/completions"] = { status: 503, text: "busy" };
    expect((await j.judge(prompt("q"), FILLER)).outcome).to.equal("failed");
    expect(j.lastCalibration?.atMs).to.equal(nowMs);
    expect(j.lastCalibration?.errors).to.have.length(3);
    expect(j.thresholds).to.deep.equal(marks);
  });

  it("runs one calibration for concurrent audits", async () => {
    const j = judge();
    const verdicts = await Promise.all([j.judge(prompt("a"), ANSWER), j.judge(prompt("b"), FILLER)]);
    expect(verdicts.map((v) => v.outcome)).to.deep.equal(["passed", "failed"]);
    expect(ref.seen.filter((s) => s.path === "/v1/chat/completions")).to.have.length(3);
  });

  it("scores an empty answer as unverifiable without asking for logprobs", async () => {
    const j = judge();
    await j.calibrate();
    ref.seen.length = 0;
    const v = await j.judge(prompt("q"), "");
    expect(v.outcome).to.equal("unverifiable");
    expect(v.detail).to.match(/^too short to judge/);
    expect(ref.seen.map((s) => s.path)).to.deep.equal(["/tokenize"]);
  });

  it("sends a bearer key when given one", async () => {
    let auth: string | undefined;
    const server = createServer((req, res) => {
      auth = req.headers.authorization;
      res.writeHead(200, { "content-type": "application/json" }).end('{"tokens":[1]}');
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const client = new ReferenceClient({
      baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      model: "demo",
      apiKey: "sk-ref",
    });
    try {
      expect(await client.tokenizeText("x")).to.deep.equal([1]);
      expect(auth).to.equal("Bearer sk-ref");
    } finally {
      await client.close();
      server.close();
      await once(server, "close");
    }
  });
});
