import { status } from "@grpc/grpc-js";
import { expect } from "chai";
import { ERROR_CATALOGUE, TensorClawError, toGrpcError, toHttpError } from "../../common/errors.js";

describe("error catalogue", () => {
  it("maps each code to its HTTP status, OpenAI body and gRPC status", () => {
    const cases: [ConstructorParameters<typeof TensorClawError>[0], number, string, status][] = [
      ["invalid_json", 400, "invalid_request_error", status.INVALID_ARGUMENT],
      ["payload_too_large", 413, "invalid_request_error", status.RESOURCE_EXHAUSTED],
      ["unsupported_media_type", 415, "invalid_request_error", status.INVALID_ARGUMENT],
      ["method_not_allowed", 405, "invalid_request_error", status.UNIMPLEMENTED],
      ["invalid_api_key", 401, "authentication_error", status.UNAUTHENTICATED],
      ["permission_denied", 403, "permission_error", status.PERMISSION_DENIED],
      ["model_not_found", 404, "invalid_request_error", status.NOT_FOUND],
      ["rate_limited", 429, "rate_limit_error", status.RESOURCE_EXHAUSTED],
      ["insufficient_quota", 402, "insufficient_quota", status.RESOURCE_EXHAUSTED],
      ["no_capacity", 503, "api_error", status.UNAVAILABLE],
      ["upstream_timeout", 504, "api_error", status.DEADLINE_EXCEEDED],
      ["upstream_error", 502, "api_error", status.UNAVAILABLE],
      ["internal", 500, "api_error", status.INTERNAL],
      ["invalid_request", 400, "invalid_request_error", status.INVALID_ARGUMENT],
      ["context_length_exceeded", 400, "invalid_request_error", status.INVALID_ARGUMENT],
      ["unauthenticated", 401, "authentication_error", status.UNAUTHENTICATED],
      ["not_found", 404, "invalid_request_error", status.NOT_FOUND],
      ["cancelled", 499, "api_error", status.CANCELLED],
      ["unavailable", 503, "api_error", status.UNAVAILABLE],
      ["protocol_error", 400, "invalid_request_error", status.INVALID_ARGUMENT],
      ["config_invalid", 400, "invalid_request_error", status.INVALID_ARGUMENT],
    ];
    // Every row, against grpc-js's own enum (the catalogue writes the numbers out).
    expect(cases.map((c) => c[0]).sort()).to.deep.equal(Object.keys(ERROR_CATALOGUE).sort());
    for (const [code, http, type, grpc] of cases) {
      const err = new TensorClawError(code, `m-${code}`, { param: "model" });
      const h = toHttpError(err);
      expect(h.status, code).to.equal(http);
      expect(h.body).to.deep.equal({ error: { message: `m-${code}`, type, param: "model", code } });
      expect(toGrpcError(err).code, code).to.equal(grpc);
    }
  });

  it("leaves with an overriding HTTP status when given one, keeping the code's body", () => {
    const h = toHttpError(
      new TensorClawError("invalid_request", "too big for the backend", { httpStatus: 422 }),
    );
    expect(h.status).to.equal(422);
    expect(h.body.error).to.deep.include({ type: "invalid_request_error", code: "invalid_request" });
  });

  it("keeps the detail of unknown errors out of the response", () => {
    const h = toHttpError(new Error("redis password is hunter2"));
    expect(h.status).to.equal(500);
    expect(h.body.error.message).to.equal(ERROR_CATALOGUE.internal.publicMessage);
    expect(JSON.stringify(h.body)).not.to.contain("hunter2");
    expect(toGrpcError("boom").details).to.equal(ERROR_CATALOGUE.internal.publicMessage);
  });

  it("carries retry-after when given", () => {
    const h = toHttpError(new TensorClawError("no_capacity", undefined, { retryAfterMs: 2000 }));
    expect(h.retryAfterMs).to.equal(2000);
    expect(h.body.error.param).to.equal(null);
  });
});
