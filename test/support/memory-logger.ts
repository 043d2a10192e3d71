import { pino } from "pino";
import type { Logger } from "../../common/logger.js";

/** Log lines written to memory, to count warnings. */
export function memoryLogger(): { logger: Logger; lines: () => { level: number; msg: string }[] } {
  let text = "";
  const logger = pino(
    { level: "info" },
    {
      write: (line: string) => {
        text += line;
      },
    },
  );
  return {
    logger,
    lines: () =>
      text
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l) as { level: number; msg: string }),
  };
}
