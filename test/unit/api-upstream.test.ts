import { expect } from "chai";
import { RequestErrorCode as C } from "../../gen/tensorclaw/v1/tunnel.js";
import { upstreamError } from "../../router/api/upstream.js";

describe("api upstream errors", () => {
  it("maps each miner error code to the user's status and whether another miner may try", () => {
    const table: [C, string, number, boolean][] = [
      [C.REQUEST_ERROR_CODE_BACKEND_UNAVAILABLE, "upstream_error", 502, true],
      [C.REQUEST_ERROR_CODE_BACKEND_ERROR, "upstream_error", 502, true],
      [C.REQUEST_ERROR_CODE_INTERNAL, "upstream_error", 502, true],
      [C.REQUEST_ERROR_CODE_PROTOCOL, "upstream_error", 502, true],
      [C.REQUEST_ERROR_CODE_UNSPECIFIED, "upstream_error", 502, true],
      [C.REQUEST_ERROR_CODE_TIMEOUT, "upstream_timeout", 504, true],
      [C.REQUEST_ERROR_CODE_OVERLOADED, "no_capacity", 503, true],
      [C.REQUEST_ERROR_CODE_MODEL_UNAVAILABLE, "no_capacity", 503, true],
      [C.REQUEST_ERROR_CODE_INVALID_REQUEST, "invalid_request", 400, false],
    ];
    for (const [code, ours, http, retry] of table) {
      const u = upstreamError(code, "detail", 1500);
      expect(u.error.code, C[code]).to.equal(ours);
      expect(u.error.mapping.http, C[code]).to.equal(http);
      expect(u.retry, C[code]).to.equal(retry);
    }
    expect(upstreamError(C.REQUEST_ERROR_CODE_OVERLOADED, "", 1500).error.retryAfterMs).to.equal(1500);
  });

  it("shows at most 300 characters of the miner's text", () => {
    const u = upstreamError(C.REQUEST_ERROR_CODE_BACKEND_ERROR, "x".repeat(5000), 0);
    expect(u.error.message.length).to.be.lessThan(400);
    expect(u.error.message).to.contain("x".repeat(300));
  });
});
