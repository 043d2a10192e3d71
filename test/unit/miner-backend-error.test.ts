import { expect } from "chai";
import { backendErrorMessage, backendErrorText } from "../../miner/backend/backend-error-body.js";

describe("miner: a backend's error message, whatever its shape", () => {
  it("finds the message in the usual servers' error bodies", () => {
    const cases: [string, string][] = [
      ['{"error":{"message":"openai says","type":"invalid_request_error"}}', "openai says"],
      ['{"object":"error","message":"vllm says","type":"BadRequestError","code":400}', "vllm says"],
      ['{"error":"tgi says","error_type":"validation"}', "tgi says"],
      ['{"error":"ollama says"}', "ollama says"],
      ['{"detail":"fastapi says"}', "fastapi says"],
      ['{"detail":[{"loc":["body","x"],"msg":"field required"},{"msg":"bad y"}]}', "field required; bad y"],
      ['"a bare JSON string"', "a bare JSON string"],
      ["plain text, not JSON", "plain text, not JSON"],
      ['{"something":"else"}', '{"something":"else"}'],
      ['{"error":{"message":""},"message":"fallback"}', "fallback"],
    ];
    for (const [body, want] of cases) expect(backendErrorText(body), body).to.equal(want);
  });

  it("scrubs what it found and says the status when the backend said nothing", () => {
    expect(
      backendErrorMessage(400, '{"error":{"message":"bad key sk-abcdef1234567890 at 10.0.0.9:8000"}}'),
    ).to.equal("bad key [redacted] at [address]");
    expect(backendErrorMessage(503, "")).to.equal("the backend answered HTTP 503");
    expect(backendErrorMessage(500, "   \n ")).to.equal("the backend answered HTTP 500");
    expect(backendErrorMessage(400, "x".repeat(20_000)).length).to.be.at.most(1000);
  });
});
