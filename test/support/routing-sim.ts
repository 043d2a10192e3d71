import type { ResponseChunk } from "../../gen/tensorclaw/v1/tunnel.js";
import { RoutingBook, type RoutingBookOptions, type RoutingTicket } from "../../router/routing/book.js";
import { carriesToken } from "../../router/routing/first-token.js";
import type { SessionView } from "../../router/tunnel/types.js";
import { seededRandom } from "./api-random.js";

/**
 * A discrete-event simulation of user traffic through the real RoutingBook
 * (and so the real pick()) onto simulated miners, on a simulated clock. It
 * plays the chat handler's part: choose, dispatch, report the first chunk
 * that carries a token, report how the attempt ended, retry a failure on
 * another hotkey.
 */

export const SIM_MODEL = "sim-model";

/** One simulated miner (one hotkey). */
export interface SimMinerSpec {
  readonly hotkey: string;
  /** Tunnels it opens (default 1). */
  readonly tunnels?: number;
  /** Advertised per tunnel (default 8). */
  readonly maxConcurrency?: number;
  /** Requests its backend really runs at once; more wait in its queue (default 8). */
  readonly capacity?: number;
  /** Time to first token once running, ms (default 300, ±25 % jitter). */
  readonly ttftMs?: number;
  /** Generation after the first token, ms (default 1200, ±25 % jitter). */
  readonly genMs?: number;
  /** Sends an empty chunk the moment a request arrives. */
  readonly emptyFirstChunk?: boolean;
  /** Whether a request dispatched at `tMs` fails before any output (HTTP 500 from the backend). */
  readonly fails?: (tMs: number) => boolean;
}

/** One run. */
export interface SimOptions {
  readonly miners: readonly SimMinerSpec[];
  /** Poisson arrivals per second. */
  readonly ratePerS: number;
  readonly durationMs: number;
  readonly seed: number;
  /** Attempts per user request (default 3, as the router). */
  readonly maxAttempts?: number;
  /** Time budget of a user request, ms (default 30 s). */
  readonly deadlineMs?: number;
  readonly book?: Partial<Omit<RoutingBookOptions, "now" | "random">>;
}

/** What happened. */
export interface SimResult {
  /** User requests served, per hotkey. */
  readonly served: Map<string, number>;
  /** Dispatch times (ms) per hotkey. */
  readonly dispatches: Map<string, number[]>;
  /** User requests nobody could take (503). */
  readonly refused: number;
  /** User requests that failed after all attempts, or hit their deadline. */
  readonly failed: number;
  readonly book: RoutingBook;
}

interface Job {
  readonly ticket: RoutingTicket;
  readonly tunnel: { inFlight: number };
  readonly miner: SimMiner;
  over: boolean;
}

interface SimMiner {
  readonly spec: Required<Omit<SimMinerSpec, "fails">> & Pick<SimMinerSpec, "fails">;
  readonly tunnels: { inFlight: number }[];
  running: number;
  readonly queue: Job[];
}

const EMPTY: ResponseChunk = {
  requestId: 0,
  contentDelta: "",
  toolCalls: [],
  finishReason: 0,
  choiceIndex: 0,
  systemFingerprint: "",
  embeddings: [],
  reasoningDelta: "",
  logprobs: [],
};
const TOKEN: ResponseChunk = { ...EMPTY, contentDelta: "Hello" };

/** A binary min-heap of timed callbacks (ties in insertion order). */
class Timeline {
  readonly #heap: { t: number; seq: number; fn: () => void }[] = [];
  #seq = 0;
  now = 0;

  at(t: number, fn: () => void): void {
    const h = this.#heap;
    h.push({ t, seq: this.#seq++, fn });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(i, p)) break;
      [h[i], h[p]] = [h[p] as (typeof h)[0], h[i] as (typeof h)[0]];
      i = p;
    }
  }

  /** Runs callbacks in time order up to `endMs`. */
  run(endMs: number): void {
    const h = this.#heap;
    while (h.length > 0 && (h[0] as (typeof h)[0]).t <= endMs) {
      const top = h[0] as (typeof h)[0];
      const last = h.pop() as (typeof h)[0];
      if (h.length > 0) {
        h[0] = last;
        let i = 0;
        for (;;) {
          const l = 2 * i + 1;
          const r = l + 1;
          let m = i;
          if (l < h.length && this.#less(l, m)) m = l;
          if (r < h.length && this.#less(r, m)) m = r;
          if (m === i) break;
          [h[i], h[m]] = [h[m] as (typeof h)[0], h[i] as (typeof h)[0]];
          i = m;
        }
      }
      this.now = top.t;
      top.fn();
    }
    this.now = endMs;
  }

  #less(a: number, b: number): boolean {
    const x = this.#heap[a] as { t: number; seq: number };
    const y = this.#heap[b] as { t: number; seq: number };
    return x.t < y.t || (x.t === y.t && x.seq < y.seq);
  }
}

/** Runs one simulation and returns what each hotkey got. */
export function simulateRouting(o: SimOptions): SimResult {
  const random = seededRandom(o.seed);
  const clock = new Timeline();
  const book = new RoutingBook({ ...o.book, now: () => clock.now, random });
  const maxAttempts = o.maxAttempts ?? 3;
  const deadlineMs = o.deadlineMs ?? 30_000;
  const miners: SimMiner[] = o.miners.map((s) => ({
    spec: {
      tunnels: 1,
      maxConcurrency: 8,
      capacity: 8,
      ttftMs: 300,
      genMs: 1200,
      emptyFirstChunk: false,
      ...s,
    },
    tunnels: Array.from({ length: s.tunnels ?? 1 }, () => ({ inFlight: 0 })),
    running: 0,
    queue: [],
  }));
  const served = new Map(miners.map((m) => [m.spec.hotkey, 0]));
  const dispatches = new Map<string, number[]>(miners.map((m) => [m.spec.hotkey, []]));
  let refused = 0;
  let failed = 0;
  const jitter = (ms: number) => ms * (0.75 + 0.5 * random());

  const snapshot = (): SessionView[] =>
    miners.flatMap((m) =>
      m.tunnels.map((t, i) => ({
        sessionId: `${m.spec.hotkey}#${i}`,
        hotkey: m.spec.hotkey,
        transport: "grpc" as const,
        state: "active" as const,
        models: [
          { id: SIM_MODEL, maxConcurrency: m.spec.maxConcurrency, contextLength: 0, inFlight: t.inFlight },
        ],
        inFlight: t.inFlight,
        latencyMs: 1,
        connectedSinceMs: 0,
        softwareVersion: "sim",
      })),
    );

  const finish = (job: Job, outcome: Parameters<RoutingBook["ended"]>[1]): boolean => {
    if (job.over) return false;
    job.over = true;
    job.tunnel.inFlight--;
    book.ended(job.ticket, outcome);
    return true;
  };

  const startNext = (m: SimMiner): void => {
    while (m.running < m.spec.capacity && m.queue.length > 0) {
      const job = m.queue.shift() as Job;
      if (job.over) continue;
      m.running++;
      const tokenAt = clock.now + jitter(m.spec.ttftMs);
      clock.at(tokenAt, () => {
        if (!job.over && carriesToken(TOKEN)) book.firstToken(job.ticket);
      });
      clock.at(tokenAt + jitter(m.spec.genMs), () => {
        m.running--;
        if (finish(job, "served")) served.set(m.spec.hotkey, (served.get(m.spec.hotkey) ?? 0) + 1);
        startNext(m);
      });
    }
  };

  const attempt = (tried: Set<string>, attemptNo: number, deadlineAt: number): void => {
    if (attemptNo >= maxAttempts || clock.now >= deadlineAt) {
      failed++;
      return;
    }
    const session = book.choose(snapshot(), SIM_MODEL, tried);
    if (session === undefined) {
      if (attemptNo === 0) refused++;
      else failed++;
      return;
    }
    tried.add(session.hotkey);
    const m = miners.find((x) => x.spec.hotkey === session.hotkey) as SimMiner;
    const tunnel = m.tunnels[Number(session.sessionId.split("#")[1])] as { inFlight: number };
    tunnel.inFlight++;
    (dispatches.get(m.spec.hotkey) as number[]).push(clock.now);
    const job: Job = { ticket: book.started(m.spec.hotkey, SIM_MODEL), tunnel, miner: m, over: false };
    if (m.spec.emptyFirstChunk && carriesToken(EMPTY)) book.firstToken(job.ticket);
    clock.at(deadlineAt, () => {
      if (finish(job, "deadline")) failed++;
    });
    if (m.spec.fails?.(clock.now) === true) {
      clock.at(clock.now + 30, () => {
        if (finish(job, "failed_before_output")) attempt(tried, attemptNo + 1, deadlineAt);
      });
      return;
    }
    m.queue.push(job);
    startNext(m);
  };

  const arrive = (): void => {
    attempt(new Set(), 0, clock.now + deadlineMs);
    clock.at(clock.now + (-Math.log(1 - random()) / o.ratePerS) * 1000, arrive);
  };
  clock.at(0, arrive);
  clock.run(o.durationMs);
  return { served, dispatches, refused, failed, book };
}

/** Each hotkey's share of the requests served. */
export function servedShares(r: SimResult): Map<string, number> {
  const total = [...r.served.values()].reduce((a, b) => a + b, 0);
  return new Map([...r.served].map(([k, v]) => [k, total === 0 ? 0 : v / total]));
}
