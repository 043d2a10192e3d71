import { expect } from "chai";
import { toHttpError } from "../../common/errors.js";
import { RequestErrorCode as C } from "../../gen/tensorclaw/v1/tunnel.js";
import { relayedStatus, upstreamError } from "../../router/api/upstream.js";

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
      const u = upstreamError({ code, message: "detail" }, 1500);
      expect(u.error.code, C[code]).to.equal(ours);
      expect(toHttpError(u.error).status, C[code]).to.equal(http);
      expect(u.retry, C[code]).to.equal(retry);
    }
    expect(
      upstreamError({ code: C.REQUEST_ERROR_CODE_OVERLOADED, message: "" }, 1500).error.retryAfterMs,
    ).to.equal(1500);
  });

  it("relays a backend's 4xx as it is, except the miner's own (401, 403, 404, 408, 429) and nonsense", () => {
    for (const s of [400, 409, 413, 415, 422]) expect(relayedStatus(s), String(s)).to.equal(s);
    for (const s of [0, 200, 302, 401, 403, 404, 408, 429, 499, 500, 503, 999, -400, 400.5, Number.NaN]) {
      expect(relayedStatus(s), String(s)).to.equal(400);
    }
  });

  it("gives an invalid request the backend's status, words and a code a client can branch on", () => {
    const ctx = upstreamError(
      {
        code: C.REQUEST_ERROR_CODE_INVALID_REQUEST,
        message: "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.",
        httpStatus: 400,
      },
      0,
    );
    const h = toHttpError(ctx.error);
    expect(h.status).to.equal(400);
    expect(h.body.error).to.deep.equal({
      message: "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.",
      type: "invalid_request_error",
      param: null,
      code: "context_length_exceeded",
    });
    const unprocessable = toHttpError(
      upstreamError({ code: C.REQUEST_ERROR_CODE_INVALID_REQUEST, message: "bad schema", httpStatus: 422 }, 0)
        .error,
    );
    expect(unprocessable.status).to.equal(422);
    expect(unprocessable.body.error).to.deep.include({ code: "invalid_request", message: "bad schema" });
    const big = toHttpError(
      upstreamError({ code: C.REQUEST_ERROR_CODE_INVALID_REQUEST, message: "", httpStatus: 413 }, 0).error,
    );
    expect(big.status).to.equal(413);
    expect(big.body.error.code).to.equal("payload_too_large");
    expect(big.body.error.message).to.contain("HTTP 413");
  });

  it("scrubs the miner's text again and shows at most 1,000 characters of it", () => {
    const u = upstreamError(
      {
        code: C.REQUEST_ERROR_CODE_INVALID_REQUEST,
        message: "key sk-secretABCDEF123456 at http://10.1.2.3:8000/v1 refused",
        httpStatus: 400,
      },
      0,
    );
    expect(u.error.message).not.to.contain("sk-secret");
    expect(u.error.message).not.to.contain("10.1.2.3");
    const long = upstreamError({ code: C.REQUEST_ERROR_CODE_BACKEND_ERROR, message: "x ".repeat(5000) }, 0);
    expect(long.error.message.length).to.be.at.most(1000 + "The miner failed to serve the request: ".length);
    expect(long.error.message).to.contain("x x x");
  });
});
