/**
 * An adversarial miner's probe detector, for the indistinguishability test:
 * features from everything a miner sees of a request (every field of the
 * InferenceRequest frame, its arrival time, what else was in flight) and two
 * learners tuned on a labelled mix — logistic regression and a shallow
 * decision tree — scored on each tunnel's own requests. Raw identifiers are not features (a hashed `user` value or a
 * request id means nothing without labels a miner never gets), but what a
 * miner can derive from them is: whether `user` is set, how often this hash
 * was seen before, the request-id step.
 */
import type { InferenceRequest } from "../../gen/tensorclaw/v1/tunnel.js";

/** One request as the miner saw it. */
export interface ObservedRequest {
  readonly req: InferenceRequest;
  /** Arrival time (ms, any monotonic origin). */
  readonly atMs: number;
  /** Requests of this tunnel in flight when it arrived. */
  readonly inFlight: number;
  /** The tunnel it came on: each miner judges the requests of its own tunnel. */
  readonly tunnel: string;
  /** Ground truth, for training and scoring only. */
  readonly probe: boolean;
}

const BOW_BUCKETS = 48;

function fnv(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** Feature vectors, in arrival order (features use what came before each request). */
export function featurize(observed: readonly ObservedRequest[]): number[][] {
  const sorted = [...observed].sort((a, b) => a.atMs - b.atMs);
  const seenUsers = new Map<string, number>();
  let prevAt: number | undefined;
  let prevId: number | undefined;
  const rows = new Map<ObservedRequest, number[]>();
  for (const o of sorted) {
    const c = o.req.chat;
    const msgs = c?.messages ?? [];
    const texts = msgs.map((m) => m.content ?? m.contentPartsJson);
    const all = texts.join("\n");
    const last = texts.at(-1) ?? "";
    const words = all.split(/\s+/).filter((w) => w !== "");
    const bow = new Array<number>(BOW_BUCKETS).fill(0);
    for (const w of words) {
      const k = fnv(w.toLowerCase()) % BOW_BUCKETS;
      bow[k] = (bow[k] as number) + 1;
    }
    const norm = Math.max(1, words.length);
    const user = c?.user ?? "";
    const seen = user === "" ? 0 : (seenUsers.get(user) ?? 0);
    if (user !== "") seenUsers.set(user, seen + 1);
    const rf = c?.responseFormat?.type ?? "";
    const row = [
      Math.log1p(msgs.length),
      msgs[0]?.role === "system" || msgs[0]?.role === "developer" ? 1 : 0,
      msgs.filter((m) => m.role === "assistant").length,
      msgs.filter((m) => m.role === "tool").length,
      Math.log1p(all.length),
      Math.log1p(last.length),
      words.length === 0 ? 0 : words.reduce((a, w) => a + w.length, 0) / words.length,
      Math.log1p(c?.maxTokens ?? 0),
      c?.temperature === undefined ? 0 : 1,
      c?.temperature ?? 0,
      c?.topP === undefined ? 0 : 1,
      c?.topP ?? 0,
      c?.seed === undefined ? 0 : 1,
      c?.stop.length ?? 0,
      c?.tools.length ?? 0,
      rf === "json_object" ? 1 : 0,
      rf === "json_schema" ? 1 : 0,
      c?.stream === true ? 1 : 0,
      c?.logprobs === true ? 1 : 0,
      c?.topLogprobs ?? 0,
      c?.frequencyPenalty === undefined ? 0 : 1,
      c?.presencePenalty === undefined ? 0 : 1,
      user === "" ? 0 : 1,
      Math.log1p(seen),
      Math.log1p((c?.extraJson ?? "").length),
      o.req.deadlineMs / 1000,
      Math.log1p(o.req.initialCreditBytes),
      prevId === undefined ? 1 : o.req.requestId - prevId,
      prevAt === undefined ? 0 : Math.log1p(Math.max(0, o.atMs - prevAt)),
      o.inFlight,
      ...bow.map((x) => x / norm),
    ];
    prevAt = o.atMs;
    prevId = o.req.requestId;
    rows.set(o, row);
  }
  return observed.map((o) => rows.get(o) as number[]);
}

/** A trained detector: true means "probe". */
export type Detector = (x: readonly number[]) => boolean;

/** Logistic regression on standardised features (L2, full-batch gradient descent). */
export function trainLogistic(xs: readonly number[][], ys: readonly boolean[]): Detector {
  const d = xs[0]?.length ?? 0;
  const mean = new Array<number>(d).fill(0);
  const sd = new Array<number>(d).fill(0);
  for (const x of xs)
    for (let j = 0; j < d; j++) mean[j] = (mean[j] as number) + (x[j] as number) / xs.length;
  for (const x of xs)
    for (let j = 0; j < d; j++) sd[j] = (sd[j] as number) + ((x[j] as number) - (mean[j] as number)) ** 2;
  for (let j = 0; j < d; j++) sd[j] = Math.sqrt((sd[j] as number) / xs.length) || 1;
  const z = (x: readonly number[]) => x.map((v, j) => (v - (mean[j] as number)) / (sd[j] as number));
  const zs = xs.map(z);
  // Class weights: balanced accuracy is what is scored.
  const pos = ys.filter((y) => y).length;
  const wPos = xs.length / (2 * Math.max(1, pos));
  const wNeg = xs.length / (2 * Math.max(1, xs.length - pos));
  const w = new Array<number>(d).fill(0);
  let b = 0;
  for (let epoch = 0; epoch < 400; epoch++) {
    const gw = new Array<number>(d).fill(0);
    let gb = 0;
    zs.forEach((x, i) => {
      const p = 1 / (1 + Math.exp(-(b + x.reduce((a, v, j) => a + v * (w[j] as number), 0))));
      const err = (p - (ys[i] ? 1 : 0)) * (ys[i] ? wPos : wNeg);
      for (let j = 0; j < d; j++) gw[j] = (gw[j] as number) + err * (x[j] as number);
      gb += err;
    });
    for (let j = 0; j < d; j++)
      w[j] = (w[j] as number) - 0.5 * ((gw[j] as number) / zs.length + 0.001 * (w[j] as number));
    b -= (0.5 * gb) / zs.length;
  }
  return (x) => b + z(x).reduce((a, v, j) => a + v * (w[j] as number), 0) > 0;
}

type Tree = { leaf: boolean } | { feature: number; threshold: number; left: Tree; right: Tree };

/** A decision tree (Gini on class-balanced weights), depth ≤ `maxDepth`, leaves ≥ `minLeaf`. */
export function trainTree(
  xs: readonly number[][],
  ys: readonly boolean[],
  maxDepth = 5,
  minLeaf = 8,
): Detector {
  const pos = ys.filter((y) => y).length;
  const wPos = 1 / Math.max(1, pos);
  const wNeg = 1 / Math.max(1, ys.length - pos);
  const weightOf = (i: number) => (ys[i] ? wPos : wNeg);
  const gini = (idx: readonly number[]) => {
    let p = 0;
    let t = 0;
    for (const i of idx) {
      t += weightOf(i);
      if (ys[i]) p += weightOf(i);
    }
    return t === 0 ? 0 : t * 2 * (p / t) * (1 - p / t);
  };
  const majority = (idx: readonly number[]) => {
    let p = 0;
    let n = 0;
    for (const i of idx) {
      if (ys[i]) p += wPos;
      else n += wNeg;
    }
    return p > n;
  };
  const grow = (idx: number[], depth: number): Tree => {
    const here = gini(idx);
    if (depth === maxDepth || idx.length < 2 * minLeaf || here === 0) return { leaf: majority(idx) };
    let best: { feature: number; threshold: number; score: number } | undefined;
    const d = xs[0]?.length ?? 0;
    for (let f = 0; f < d; f++) {
      const values = [...new Set(idx.map((i) => (xs[i] as number[])[f] as number))].sort((a, b) => a - b);
      const step = Math.max(1, Math.floor(values.length / 24));
      for (let k = step; k < values.length; k += step) {
        const threshold = ((values[k - 1] as number) + (values[k] as number)) / 2;
        const left = idx.filter((i) => ((xs[i] as number[])[f] as number) <= threshold);
        if (left.length < minLeaf || idx.length - left.length < minLeaf) continue;
        const right = idx.filter((i) => ((xs[i] as number[])[f] as number) > threshold);
        const score = gini(left) + gini(right);
        if (best === undefined || score < best.score) best = { feature: f, threshold, score };
      }
    }
    if (best === undefined || best.score >= here) return { leaf: majority(idx) };
    const { feature, threshold } = best;
    return {
      feature,
      threshold,
      left: grow(
        idx.filter((i) => ((xs[i] as number[])[feature] as number) <= threshold),
        depth + 1,
      ),
      right: grow(
        idx.filter((i) => ((xs[i] as number[])[feature] as number) > threshold),
        depth + 1,
      ),
    };
  };
  const root = grow(
    xs.map((_, i) => i),
    0,
  );
  return (x) => {
    let t = root;
    while (!("leaf" in t)) t = (x[t.feature] as number) <= t.threshold ? t.left : t.right;
    return t.leaf;
  };
}

/** Mean of the recall on probes and the recall on users. */
export function balancedAccuracy(detect: Detector, xs: readonly number[][], ys: readonly boolean[]): number {
  let tp = 0;
  let p = 0;
  let tn = 0;
  let n = 0;
  xs.forEach((x, i) => {
    const said = detect(x);
    if (ys[i]) {
      p++;
      if (said) tp++;
    } else {
      n++;
      if (!said) tn++;
    }
  });
  return (tp / Math.max(1, p) + tn / Math.max(1, n)) / 2;
}

/**
 * Balanced accuracy on each tunnel's own requests, averaged over tunnels
 * weighted by their requests: what miners that each sort the requests they
 * get would reach. Probes are spread evenly over miners while users follow
 * speed, so a slower miner's traffic holds more probes; pooled over
 * tunnels, a detector could score by telling miners apart (from anything
 * that differs per miner), which sorts no request within a miner's traffic
 * and so helps no miner serve users worse than probes.
 */
export function perTunnelBalancedAccuracy(
  detect: Detector,
  xs: readonly number[][],
  observed: readonly ObservedRequest[],
): number {
  const byTunnel = new Map<string, number[]>();
  observed.forEach((o, i) => {
    const list = byTunnel.get(o.tunnel) ?? [];
    list.push(i);
    byTunnel.set(o.tunnel, list);
  });
  let sum = 0;
  for (const idx of byTunnel.values()) {
    const acc = balancedAccuracy(
      detect,
      idx.map((i) => xs[i] as number[]),
      idx.map((i) => (observed[i] as ObservedRequest).probe),
    );
    sum += acc * idx.length;
  }
  return sum / Math.max(1, observed.length);
}

/** The best per-tunnel balanced accuracy either learner reaches on `test` after training on `train`. */
export function bestDetectorAccuracy(train: readonly ObservedRequest[], test: readonly ObservedRequest[]) {
  const xTrain = featurize(train);
  const yTrain = train.map((o) => o.probe);
  const xTest = featurize(test);
  const logistic = perTunnelBalancedAccuracy(trainLogistic(xTrain, yTrain), xTest, test);
  const tree = perTunnelBalancedAccuracy(trainTree(xTrain, yTrain), xTest, test);
  return { logistic, tree, best: Math.max(logistic, tree) };
}
