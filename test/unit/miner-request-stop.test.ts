import { expect } from "chai";
import { RequestStop, type StopSignal } from "../../miner/backend/request-stop.js";

describe("miner RequestStop (the per-request abort signal)", () => {
  it("runs each listener once, in order, on the first abort, and keeps the first reason", () => {
    const stop = new RequestStop();
    const calls: string[] = [];
    stop.addEventListener("abort", () => calls.push("a"));
    stop.addEventListener("abort", () => calls.push("b"), { once: true });
    expect(stop.aborted).to.equal(false);
    stop.abort("first");
    stop.abort("second");
    expect(calls).to.deep.equal(["a", "b"]);
    expect(stop.aborted).to.equal(true);
    expect(stop.reason).to.equal("first");
  });

  it("forgets a removed listener and never calls one added after the abort", () => {
    const stop = new RequestStop();
    const calls: string[] = [];
    const gone = () => calls.push("removed");
    stop.addEventListener("abort", gone);
    stop.addEventListener("abort", () => calls.push("kept"));
    stop.removeEventListener("abort", gone);
    stop.removeEventListener("abort", () => {}); // unknown: no effect
    stop.abort(new Error("x"));
    stop.addEventListener("abort", () => calls.push("late"));
    expect(calls).to.deep.equal(["kept"]);
  });

  it("is interchangeable with an AbortSignal where backends take a StopSignal", () => {
    const ac = new AbortController();
    const signal: StopSignal = ac.signal;
    let fired = 0;
    signal.addEventListener("abort", () => fired++, { once: true });
    ac.abort("why");
    expect([fired, signal.aborted, signal.reason]).to.deep.equal([1, true, "why"]);
  });
});
