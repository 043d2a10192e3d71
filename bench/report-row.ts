// One row of the benchmark report and the helpers that build rows from a
// benchmark's `--json` output: a figure read by its dotted path (a missing or
// non-finite one is a ShapeError, so a drifted benchmark is caught), its
// target, and the peers measured in the same run.

/** A target a figure must meet. `=` is exact (error counts). */
export interface Target {
  readonly op: ">=" | "<=" | "=";
  readonly value: number;
}

/** A figure measured in the same run for comparison (a peer product or a baseline). */
export interface PeerFigure {
  readonly label: string;
  readonly value: number;
  readonly unit: string;
}

/** One line of the report. */
export interface ReportRow {
  readonly measure: string;
  readonly value: number;
  readonly unit: string;
  readonly target?: Target;
  readonly peers: readonly PeerFigure[];
}

/** The benchmark's JSON does not have the shape the report reads. */
export class ShapeError extends Error {
  override readonly name = "ShapeError";
}

/** Whether `value` meets `target`. */
export function meets(value: number, target: Target): boolean {
  switch (target.op) {
    case ">=":
      return value >= target.value;
    case "<=":
      return value <= target.value;
    case "=":
      return value === target.value;
  }
}

/** The finite number at dotted `path` of `json`, or a {@link ShapeError} naming the path. */
export function num(json: unknown, path: string): number {
  let at: unknown = json;
  for (const key of path.split(".")) {
    if (typeof at !== "object" || at === null || !(key in at)) throw new ShapeError(`missing field ${path}`);
    at = (at as Record<string, unknown>)[key];
  }
  if (typeof at !== "number" || !Number.isFinite(at))
    throw new ShapeError(`field ${path} is ${JSON.stringify(at)}, not a finite number`);
  return at;
}

/** One report row; `target` and `peers` as the issue and the benchmark give them. */
export const row = (
  measure: string,
  value: number,
  unit: string,
  target?: Target,
  peers: PeerFigure[] = [],
): ReportRow =>
  target === undefined ? { measure, value, unit, peers } : { measure, value, unit, target, peers };

/** Targets: at least, at most, and "none at all" (error counts). */
export const atLeast = (value: number): Target => ({ op: ">=", value });
export const atMost = (value: number): Target => ({ op: "<=", value });
export const none: Target = { op: "=", value: 0 };
