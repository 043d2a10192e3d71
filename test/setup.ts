// Root hooks for every test run: an unhandled rejection or an uncaught
// exception anywhere fails the run instead of being lost.
const problems: unknown[] = [];

function onProblem(err: unknown): void {
  problems.push(err);
}

export const mochaHooks = {
  beforeAll(): void {
    process.on("unhandledRejection", onProblem);
    process.on("uncaughtException", onProblem);
  },
  afterEach(): void {
    if (problems.length > 0) {
      const first = problems.splice(0);
      throw new Error(`unhandled error during test: ${String((first[0] as Error)?.stack ?? first[0])}`);
    }
  },
};
