import { TensorClawError } from "../common/errors.js";
import type { ApiKeyRecord } from "../router/api/keys.js";
import type { AccountView, CreditEntry, ModelSpend } from "../router/billing/billing.js";
import { MAX_CREDIT_MICROS, MICROS_PER_USD, type Micros } from "../router/billing/money.js";

/**
 * How `tensorclaw keys` reads amounts from an operator and prints accounts:
 * USD in, exact micros inside (router/billing/money.ts), USD out with every
 * micro shown, so what is printed is what is stored.
 */

/** A USD amount as typed: optional minus, digits, at most 6 decimals (one micro). */
const USD_PATTERN = /^(-?)(\d{1,10})(?:\.(\d{1,6}))?$/;

/**
 * Parses a USD amount typed by an operator into micros, exactly (no float
 * rounding): "10", "2.5", "-0.000001". Throws `config_invalid` naming
 * `setting` when it is not such a number or beyond the credit limit.
 */
export function parseUsd(setting: string, text: string): Micros {
  const m = USD_PATTERN.exec(text.trim());
  if (m === null) {
    throw new TensorClawError(
      "config_invalid",
      `invalid setting ${setting}: expected USD like 10 or 2.50 (at most 6 decimals), got ${JSON.stringify(text)}`,
    );
  }
  const [, sign, whole, frac = ""] = m;
  const micros = Number(whole) * MICROS_PER_USD + Number(frac.padEnd(6, "0"));
  if (micros > MAX_CREDIT_MICROS) {
    throw new TensorClawError(
      "config_invalid",
      `invalid setting ${setting}: at most ${MAX_CREDIT_MICROS / MICROS_PER_USD} USD`,
    );
  }
  return sign === "-" ? -micros : micros;
}

/** Micros as USD with at least 2 and at most 6 decimals: 12500000 → "12.50", 1234 → "0.001234". */
export function usd(m: Micros): string {
  const sign = m < 0 ? "-" : "";
  const a = Math.abs(m);
  const frac = String(a % MICROS_PER_USD)
    .padStart(6, "0")
    .replace(/0{1,4}$/, "");
  return `${sign}${Math.floor(a / MICROS_PER_USD)}.${frac.padEnd(2, "0")}`;
}

/** Micros as signed USD: "+10.00", "-2.50". */
function signedUsd(m: Micros): string {
  return m > 0 ? `+${usd(m)}` : usd(m);
}

function iso(ms: number | null): string {
  return ms === null ? "-" : new Date(ms).toISOString();
}

/** "active", or when the key was revoked. */
export function keyState(r: ApiKeyRecord): string {
  return r.revokedAtMs === null ? "active" : `revoked ${iso(r.revokedAtMs)}`;
}

/** One line of `keys list`: id, hint, name, limits, balance and spend, created, state. */
export function listLine(r: ApiKeyRecord, a: AccountView): string {
  const money = a.settings?.metered === true ? `balance=${usd(a.balanceMicros)} USD` : "balance=unmetered";
  return (
    `${r.id}  ${r.hint}  ${r.name}  rpm=${r.limits.requestsPerMinute} tpm=${r.limits.tokensPerMinute}  ` +
    `${money}  today=${usd(a.spentTodayMicros)} USD  30d=${usd(a.spent30dMicros)} USD  ` +
    `created ${iso(r.createdAtMs)}  ${keyState(r)}\n`
  );
}

function modelTable(title: string, rows: readonly ModelSpend[]): string {
  if (rows.length === 0) return `${title}: none\n`;
  const cells = [
    ["model", "prompt", "completion", "requests", "cost USD"],
    ...rows.map((m) => [
      m.model,
      String(m.promptTokens),
      String(m.completionTokens),
      String(m.requests),
      usd(m.costMicros),
    ]),
  ];
  const widths = cells[0]?.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? "").length))) ?? [];
  const lines = cells.map(
    (row) =>
      `  ${row
        .map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
        .join("  ")
        .trimEnd()}`,
  );
  return `${title}:\n${lines.join("\n")}\n`;
}

/**
 * `keys show` as text: the key, its limits, its account (metered or not,
 * balance, holds, budget), spend today and over 30 days with per-model
 * tables, and its latest credit entries.
 */
export function showText(
  r: ApiKeyRecord,
  a: AccountView,
  entries: readonly CreditEntry[],
  holdsVisible: boolean,
): string {
  const metered = a.settings?.metered === true;
  const budget = a.settings?.budgetDailyMicros;
  const out = [
    `id          ${r.id}`,
    `name        ${r.name}`,
    `hint        ${r.hint}`,
    `created     ${iso(r.createdAtMs)}`,
    `state       ${keyState(r)}`,
    `limits      ${r.limits.requestsPerMinute} requests/min, ${r.limits.tokensPerMinute} tokens/min (0: unlimited)`,
    `metered     ${metered ? "yes: each request holds its worst-case cost, then pays its real cost" : "no: requests are not charged (give it credits to meter it)"}`,
    `balance     ${metered ? `${usd(a.balanceMicros)} USD` : "-"}`,
    `held        ${holdsVisible ? `${usd(a.heldMicros)} USD` : "- (the embedded router keeps holds in its memory)"}`,
    `budget      ${budget === null || budget === undefined ? "none" : `${usd(budget)} USD per UTC day`}`,
    `credited    ${usd(a.creditedMicros)} USD in all`,
    `spent       today ${usd(a.spentTodayMicros)} USD, last 30 days ${usd(a.spent30dMicros)} USD, ` +
      `all time ${usd(a.spentTotalMicros)} USD`,
  ];
  let text = `${out.join("\n")}\n`;
  text += modelTable("today by model", a.todayByModel);
  text += modelTable("last 30 days by model", a.last30dByModel);
  if (entries.length === 0) return `${text}credit entries: none\n`;
  text += "credit entries (newest first):\n";
  for (const e of entries) {
    text += `  ${iso(e.atMs)}  ${signedUsd(e.amountMicros).padStart(12)} USD  ${e.source}  ${e.note || "(no note)"}\n`;
  }
  return text;
}
