// A stand-in for `tensorclaw keys credit` run in a loop while a router runs:
// appends credit entries (each twice, as a retried CLI call would) to an
// embedded billing journal from another process, then prints "done <applied>".
// Settings come from the environment: BILLING_PATH, BILLING_KEY, BILLING_COUNT.
import { EmbeddedBilling } from "../../router/billing/embedded.js";

const path = process.env.BILLING_PATH as string;
const keyId = process.env.BILLING_KEY as string;
const count = Number(process.env.BILLING_COUNT);
let applied = 0;
for (let i = 0; i < count; i++) {
  const entry = {
    id: `cli-${i}`,
    keyId,
    amountMicros: 1 + i,
    note: "",
    source: "operator" as const,
    atMs: i,
  };
  if (await EmbeddedBilling.creditOffline(path, entry)) applied++;
  if (await EmbeddedBilling.creditOffline(path, entry)) applied++;
}
process.stdout.write(`done ${applied}\n`);
