import { expect } from "chai";
import { MAX_ERROR_MESSAGE_CHARS, scrubErrorMessage } from "../../common/error-scrub.js";

describe("error scrub: backend messages made fit for users", () => {
  it("keeps an honest context-length message as it is", () => {
    const m =
      "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4000 in the messages, 1000 in the completion). Please reduce the length of the messages or completion.";
    expect(scrubErrorMessage(m)).to.equal(m);
  });

  it("keeps model ids, numbers and ordinary words", () => {
    const m = "model meta-llama/Llama-3.1-8B-Instruct: temperature 2.5 is above 2.0 (param: temperature)";
    expect(scrubErrorMessage(m)).to.equal(m);
    const long = "Qwen/Qwen2-VL-72B-Instruct-GPTQ-Int4-with-a-very-long-suffix does not support tools";
    expect(scrubErrorMessage(long)).to.equal(long);
  });

  it("masks provider keys of every usual shape", () => {
    const keys = [
      "sk-proj-AbCdEf0123456789abcdef",
      "sk-secretABCDEF123456",
      "hf_AbCdEfGhIjKlMnOp123",
      "gsk_abcdefghijk12345",
      "ghp_0123456789abcdefABCDEF",
      "AKIAIOSFODNN7EXAMPLE",
      "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
      "0123456789abcdef0123456789abcdef0123",
    ];
    for (const k of keys) {
      const out = scrubErrorMessage(`Incorrect API key provided: ${k}. Find yours at the dashboard.`);
      expect(out, k).not.to.contain(k);
      expect(out, k).to.contain("[redacted]");
      expect(out, k).to.contain("Incorrect API key provided");
    }
  });

  it("masks bearer tokens and key=value credentials, keeping the names", () => {
    const out = scrubErrorMessage(
      'Authorization: Bearer abc.def-ghi rejected; api_key=topsecret1 token: "t0k3n" password=hunter2',
    );
    for (const s of ["abc.def-ghi", "topsecret1", "t0k3n", "hunter2"]) expect(out).not.to.contain(s);
    expect(out).to.contain("Bearer [redacted]");
    expect(out).to.contain("api_key=[redacted]");
  });

  it("masks URLs, IP addresses and hosts with ports", () => {
    const cases = [
      ["could not reach http://10.1.2.3:8000/v1/chat/completions", "10.1.2.3"],
      ["upstream https://api.internal.example.com/v1?key=zz failed", "api.internal.example.com"],
      ["connect ECONNREFUSED 192.168.0.17:11434", "192.168.0.17"],
      ["peer 10.0.0.5 reset the stream", "10.0.0.5"],
      ["listening on [::1]:8000", "::1"],
      ["bound to fe80::1ff:fe23:4567:890a", "fe80::1ff:fe23:4567:890a"],
      ["2001:0db8:85a3:0000:0000:8a2e:0370:7334 is down", "2001:0db8"],
      ["dial tcp vllm-worker-3:8000: i/o timeout", "vllm-worker-3"],
      ["localhost:11434 refused", "localhost"],
      ["gpu01.cluster.local has no capacity", "gpu01.cluster"],
      ["redis://:pw@cache:6379/0 down", "cache:6379"],
    ] as const;
    for (const [input, secret] of cases) {
      const out = scrubErrorMessage(input);
      expect(out, input).not.to.contain(secret);
      expect(out, input).to.contain("[address]");
    }
  });

  it("removes control and bidi characters and folds whitespace", () => {
    const out = scrubErrorMessage("bad\u0000 input\r\n\u202eevil\u200b here\u001b[31m   end");
    expect(out).to.equal("bad input evil here [31m end");
  });

  it("cuts at 1,000 characters with an ellipsis, never splitting a surrogate pair", () => {
    const long = scrubErrorMessage("x ".repeat(5000));
    expect(long.length).to.be.at.most(MAX_ERROR_MESSAGE_CHARS);
    expect(long.endsWith("…")).to.equal(true);
    const emoji = scrubErrorMessage("😀".repeat(800));
    expect(emoji.length).to.be.at.most(MAX_ERROR_MESSAGE_CHARS);
    expect(emoji.slice(0, -1)).to.equal("😀".repeat((emoji.length - 1) / 2));
  });

  it("stays fast on a megabyte of crafted input", () => {
    const hostile = `${"a:".repeat(500_000)}${"1.".repeat(100_000)}`;
    const t0 = process.hrtime.bigint();
    const out = scrubErrorMessage(hostile);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    expect(out.length).to.be.at.most(MAX_ERROR_MESSAGE_CHARS);
    // Only the first few kilobytes are scanned: orders of magnitude below a second.
    expect(ms).to.be.below(1000);
  });

  it("masks a secret split across the scan limit's edge no worse than leaving it out", () => {
    const out = scrubErrorMessage(`${"word ".repeat(795)}sk-abcdefghijklmnop`);
    expect(out).not.to.contain("sk-abcdefghijklmnop");
  });
});
