/** How the console writes numbers: units always shown, no false precision. */

const compact = new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 1 });
const whole = new Intl.NumberFormat("en");

/** A count, compact above 10,000 (12.3K). */
export function count(n: number): string {
  return n >= 10_000 ? compact.format(n) : whole.format(n);
}

/** USD with enough digits to show a fraction of a cent. */
export function usd(n: number | null | undefined): string {
  if (n === null || n === undefined) return "—";
  if (n === 0) return "$0";
  const digits = Math.abs(n) >= 1 ? 2 : Math.abs(n) >= 0.01 ? 4 : 6;
  return `$${n.toFixed(digits)}`;
}

/** A price per million tokens. */
export function perMillion(n: number): string {
  return n === 0 ? "free" : `$${n.toFixed(n >= 1 ? 2 : 4)}/M`;
}

/** A share as a percentage, or — when there is nothing to share. */
export function percent(x: number | null): string {
  return x === null ? "—" : `${(x * 100).toFixed(x === 1 ? 0 : 1)} %`;
}

/** Milliseconds, or seconds above 10 s. */
export function ms(n: number | null | undefined): string {
  if (n === null || n === undefined) return "—";
  return n >= 10_000 ? `${(n / 1000).toFixed(1)} s` : `${Math.round(n)} ms`;
}

/** How long ago a Unix-ms time was, roughly. */
export function since(tMs: number, nowMs = Date.now()): string {
  const s = Math.max(0, Math.round((nowMs - tMs) / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d`;
}

/** A moment as a time of day (a date when older than a day): it stays true while a page is open. */
export function moment(tMs: number, nowMs = Date.now()): string {
  const d = new Date(tMs);
  return nowMs - tMs < 86_400_000
    ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : d.toLocaleDateString();
}

/** A hotkey shortened for a table cell (the full one is in the link's title and on its page). */
export function shortKey(hotkey: string): string {
  return hotkey.length > 16 ? `${hotkey.slice(0, 8)}…${hotkey.slice(-6)}` : hotkey;
}
