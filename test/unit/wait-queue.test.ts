import { expect } from "chai";
import { WaitQueue } from "../../router/api/wait-queue.js";

interface W {
  readonly account: string;
  readonly deadlineMs: number;
  readonly name: string;
}

const LINE = "chat:m";

function waiter(account: string, name: string, deadlineMs = 1_000): W {
  return { account, deadlineMs, name };
}

/** Serves the line until it is empty; the names in the order served. */
function serveAll(q: WaitQueue<W>, line = LINE): string[] {
  const out: string[] = [];
  for (let w = q.next(line); w !== undefined; w = q.next(line)) {
    expect(q.served(line, w)).to.equal(true);
    out.push(w.name);
  }
  return out;
}

describe("WaitQueue (capacity queue order)", () => {
  it("serves one account's waiters in arrival order", () => {
    const q = new WaitQueue<W>(10);
    for (const n of ["a1", "a2", "a3"]) q.add(LINE, waiter("a", n));
    expect(serveAll(q)).to.deep.equal(["a1", "a2", "a3"]);
    expect(q.size).to.equal(0);
  });

  it("alternates between accounts: forty waiting do not starve one", () => {
    const q = new WaitQueue<W>(100);
    for (let i = 1; i <= 40; i++) q.add(LINE, waiter("big", `b${i}`));
    q.add(LINE, waiter("small", "s1"));
    const order = serveAll(q);
    // The big account was first in the ring, so it goes first; the small one right after.
    expect(order.slice(0, 3)).to.deep.equal(["b1", "s1", "b2"]);
    expect(order).to.have.length(41);
  });

  it("round-robins three accounts, FIFO within each, newcomers joining at the back of the ring", () => {
    const q = new WaitQueue<W>(100);
    q.add(LINE, waiter("a", "a1"));
    q.add(LINE, waiter("a", "a2"));
    q.add(LINE, waiter("b", "b1"));
    q.add(LINE, waiter("b", "b2"));
    const first = q.next(LINE) as W;
    q.served(LINE, first);
    q.add(LINE, waiter("c", "c1"));
    // After a1: the ring is b, a (a moved back), then c joined.
    expect([first.name, ...serveAll(q)]).to.deep.equal(["a1", "b1", "a2", "c1", "b2"]);
  });

  it("keeps lines apart: each has its own ring", () => {
    const q = new WaitQueue<W>(10);
    q.add("chat:x", waiter("a", "x1"));
    q.add("chat:y", waiter("a", "y1"));
    expect(q.depth("chat:x")).to.equal(1);
    expect(q.depth("chat:y")).to.equal(1);
    expect(q.next("chat:y")?.name).to.equal("y1");
    expect([...q.lines()].sort()).to.deep.equal(["chat:x", "chat:y"]);
  });

  it("is bounded in all lines together: the waiter past the bound is refused and not added", () => {
    const q = new WaitQueue<W>(2);
    expect(q.add("chat:x", waiter("a", "1"))).to.equal(true);
    expect(q.add("chat:y", waiter("b", "2"))).to.equal(true);
    expect(q.add("chat:x", waiter("c", "3"))).to.equal(false);
    expect(q.size).to.equal(2);
    expect(q.depth("chat:x")).to.equal(1);
    // Room again once one leaves.
    q.served("chat:x", q.next("chat:x") as W);
    expect(q.add("chat:x", waiter("c", "3"))).to.equal(true);
  });

  it("a bound of 0 takes nobody; a negative or fractional bound is refused", () => {
    expect(new WaitQueue<W>(0).add(LINE, waiter("a", "1"))).to.equal(false);
    expect(() => new WaitQueue<W>(-1)).to.throw(RangeError);
    expect(() => new WaitQueue<W>(1.5)).to.throw(RangeError);
  });

  it("removes an aborted waiter at once, wherever it stands, without moving its account back", () => {
    const q = new WaitQueue<W>(10);
    const a1 = waiter("a", "a1");
    const a2 = waiter("a", "a2");
    q.add(LINE, a1);
    q.add(LINE, a2);
    q.add(LINE, waiter("b", "b1"));
    expect(q.remove(LINE, a2)).to.equal(true);
    expect(q.remove(LINE, a2)).to.equal(false);
    expect(q.size).to.equal(2);
    // Account a keeps its turn: a1 is still next.
    expect(serveAll(q)).to.deep.equal(["a1", "b1"]);
    expect(q.depth(LINE)).to.equal(0);
    expect([...q.lines()]).to.deep.equal([]);
  });

  it("an account whose only waiter left loses its place in the ring", () => {
    const q = new WaitQueue<W>(10);
    const a1 = waiter("a", "a1");
    q.add(LINE, a1);
    q.add(LINE, waiter("b", "b1"));
    q.remove(LINE, a1);
    q.add(LINE, waiter("a", "a2"));
    expect(serveAll(q)).to.deep.equal(["b1", "a2"]);
  });

  it("expires exactly the waiters whose deadline has come, and tells the earliest deadline left", () => {
    const q = new WaitQueue<W>(10);
    q.add("chat:x", waiter("a", "a1", 100));
    q.add("chat:x", waiter("a", "a2", 300));
    q.add("chat:y", waiter("b", "b1", 200));
    expect(q.nextDeadlineMs()).to.equal(100);
    expect(q.expire(99)).to.deep.equal([]);
    const gone = q.expire(200).map((e) => `${e.line}/${e.waiter.name}`);
    expect(gone.sort()).to.deep.equal(["chat:x/a1", "chat:y/b1"]);
    expect(q.size).to.equal(1);
    expect(q.depth("chat:y")).to.equal(0);
    expect(q.nextDeadlineMs()).to.equal(300);
    expect(q.next("chat:x")?.name).to.equal("a2");
    q.expire(300);
    expect(q.nextDeadlineMs()).to.equal(undefined);
  });

  it("passes over skipped waiters to each account's oldest other one, in ring order", () => {
    const q = new WaitQueue<W>(10);
    const a1 = waiter("a", "a1");
    q.add(LINE, a1);
    q.add(LINE, waiter("a", "a2"));
    const b1 = waiter("b", "b1");
    q.add(LINE, b1);
    expect(q.next(LINE, new Set([a1]))?.name).to.equal("a2");
    expect(q.next(LINE, new Set([a1, q.next(LINE, new Set([a1])) as W]))?.name).to.equal("b1");
    // Served out of turn: a2 leaves, a1 keeps its place at the front of a's FIFO, a goes back.
    q.served(LINE, q.next(LINE, new Set([a1])) as W);
    expect(serveAll(q)).to.deep.equal(["b1", "a1"]);
    expect(q.next(LINE, new Set([b1]))).to.equal(undefined);
  });

  it("refuses to remove a waiter from a line it is not in", () => {
    const q = new WaitQueue<W>(10);
    const w = waiter("a", "a1");
    q.add("chat:x", w);
    expect(q.remove("chat:y", w)).to.equal(false);
    expect(q.served("chat:x", waiter("a", "other"))).to.equal(false);
    expect(q.size).to.equal(1);
  });
});
