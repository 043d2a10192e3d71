import { Writable } from "node:stream";
import type { ServerUnaryCall } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import { expect } from "chai";
import { pino } from "pino";
import { TensorClawError } from "../../common/errors.js";
import { unaryHandler } from "../../common/grpc-unary.js";

type Answer = { err: { code?: number; details?: string } | null; value: unknown };

/** A debug-level logger whose JSON lines land in `lines`. */
function capturingLogger(lines: Record<string, unknown>[]) {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString("utf8")) as Record<string, unknown>);
      done();
    },
  });
  return pino({ level: "debug" }, sink);
}

async function call(logic: () => unknown, lines: Record<string, unknown>[]): Promise<Answer> {
  const handler = unaryHandler<string, unknown>("/t.v1.S/M", capturingLogger(lines), logic);
  const answer = await new Promise<Answer>((resolve) =>
    handler({ request: "x" } as unknown as ServerUnaryCall<string, unknown>, (err, value) =>
      resolve({ err: err as Answer["err"], value }),
    ),
  );
  // pino writes through the stream asynchronously.
  await new Promise((r) => setImmediate(r));
  return answer;
}

describe("gRPC unary adapter", () => {
  it("answers with the value of sync and async logic", async () => {
    const lines: Record<string, unknown>[] = [];
    expect(await call(() => 7, lines)).to.deep.equal({ err: null, value: 7 });
    expect(await call(async () => 8, lines)).to.deep.equal({ err: null, value: 8 });
    expect(lines).to.have.length(0);
  });

  it("maps a TensorClawError through the catalogue and logs a caller's fault at debug", async () => {
    const lines: Record<string, unknown>[] = [];
    const a = await call(() => {
      throw new TensorClawError("not_found", "no tunnel is open for 5Abc");
    }, lines);
    expect(a.err).to.deep.equal({ code: status.NOT_FOUND, details: "no tunnel is open for 5Abc" });
    expect(lines).to.have.length(1);
    expect(lines[0]).to.include({ level: 20, method: "/t.v1.S/M", code: "not_found" });
  });

  it("sends unknown errors as a generic INTERNAL and keeps the detail in the log", async () => {
    const lines: Record<string, unknown>[] = [];
    const a = await call(async () => {
      throw new Error("redis password is hunter2");
    }, lines);
    expect(a.err).to.deep.equal({ code: status.INTERNAL, details: "Internal error." });
    expect(lines).to.have.length(1);
    expect(lines[0]).to.include({ level: 50, code: "internal" });
    expect(JSON.stringify(lines[0])).to.contain("hunter2");
  });

  it("logs a dependency being down as a warning with its cause", async () => {
    const lines: Record<string, unknown>[] = [];
    const a = await call(() => {
      throw new TensorClawError("unavailable", "the usage ledger cannot be read right now", {
        cause: new Error("ECONNREFUSED"),
      });
    }, lines);
    expect(a.err?.code).to.equal(status.UNAVAILABLE);
    expect(lines[0]).to.include({ level: 40, code: "unavailable" });
    expect(JSON.stringify(lines[0])).to.contain("ECONNREFUSED");
  });
});
