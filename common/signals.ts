/**
 * Resolves on the first SIGINT or SIGTERM. A second signal while the program
 * is still shutting down calls `onSecond` (typically: exit at once).
 */
export function waitForStopSignal(onSecond: () => void): Promise<void> {
  return new Promise((resolve) => {
    const first = () => {
      process.off("SIGINT", first);
      process.off("SIGTERM", first);
      process.once("SIGINT", onSecond);
      process.once("SIGTERM", onSecond);
      resolve();
    };
    process.on("SIGINT", first);
    process.on("SIGTERM", first);
  });
}
