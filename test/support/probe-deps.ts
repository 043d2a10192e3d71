import { silentLogger } from "../../common/logger.js";
import { DEFAULT_ENCODING, Encodings } from "../../common/tokens/encodings.js";
import { API_DEFAULTS } from "../../router/api/server.js";
import { ModelCatalogue } from "../../router/catalogue/catalogue.js";
import type { ProbeServiceDeps } from "../../router/services/probe.js";
import { VerdictBook } from "../../router/services/verdicts.js";
import type { TunnelDispatcher } from "../../router/tunnel/types.js";

/** The `user` salt of probes built by {@link probeDeps}. */
export const PROBE_TEST_SALT = "probe-test-salt";

/**
 * ProbeService dependencies for a test hub, as the router wires them: the
 * Business API's default request rules, an open catalogue and the default
 * tokenizer loaded. `over` replaces any of them.
 */
export async function probeDeps(
  dispatcher: TunnelDispatcher,
  over: Partial<ProbeServiceDeps> = {},
): Promise<ProbeServiceDeps> {
  const encodings = new Encodings();
  await encodings.load(DEFAULT_ENCODING);
  const catalogue = ModelCatalogue.empty(true);
  return {
    dispatcher,
    now: () => performance.now(),
    random: Math.random,
    logger: silentLogger(),
    chat: { ...API_DEFAULTS, userSalt: PROBE_TEST_SALT },
    catalogue: () => catalogue,
    encodings,
    verdicts: new VerdictBook(),
    ...over,
  };
}

/** A liveness probe body like the validator's placeholder: one user message, streamed. */
export function probeBody(over: Record<string, unknown> = {}): string {
  return JSON.stringify({ messages: [{ role: "user", content: "Say hello." }], stream: true, ...over });
}
