import { type Logger, pino } from "pino";
import type { LogLevel } from "./shared-options.js";

export type { Logger } from "pino";

/**
 * Creates the process logger: JSON lines on stderr (stdout stays free for
 * command output such as score tables and keys).
 */
export function createLogger(name: string, level: LogLevel): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: false }));
}

/** A logger that drops everything, for tests and library defaults. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
