import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileApiKeyStore } from "../../router/api/keys.js";
import { EmbeddedBilling } from "../../router/billing/embedded.js";
import { billingApiSuite } from "../support/api-billing-suite.js";

const LEDGER = { bucketMs: 60_000, retentionMs: 86_400_000 };

billingApiSuite("embedded store", async () => {
  const dir = await mkdtemp(join(tmpdir(), "tc-api-billing-"));
  const billing = await EmbeddedBilling.open({
    ...LEDGER,
    path: join(dir, "billing.jsonl"),
    nowMs: Date.now(),
  });
  return {
    billing,
    keyStore: new FileApiKeyStore(join(dir, "keys.json")),
    close: async () => {
      await billing.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
