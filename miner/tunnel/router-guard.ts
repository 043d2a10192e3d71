/**
 * Whether the miner may answer a Challenge: the router id it names must be
 * the one the `--router` URL pins (`?id=`), else the one pinned for that
 * address on first contact (router-pins.ts). A Hello signs the router id,
 * so refusing here is what keeps a relay from forwarding another router's
 * Challenge and walking away with a Hello that router accepts.
 */
import { type Endpoint, endpointAddress, type RouterPlan } from "./endpoints.js";
import type { RouterPins } from "./router-pins.js";

/** The decision on one Challenge's router id. */
export type RouterIdVerdict =
  /** Sign; `firstContact` when nothing pinned this address yet (the caller pins it). */
  | { readonly ok: true; readonly firstContact: boolean }
  /** Do not sign; `message` tells the operator what happened and how to accept a real change. */
  | { readonly ok: false; readonly message: string };

/** Judges the id `seen` in a Challenge received at `endpoint` of `plan`. Pure. */
export function judgeRouterId(
  plan: RouterPlan,
  endpoint: Endpoint,
  seen: string,
  pins: Pick<RouterPins, "get" | "where">,
): RouterIdVerdict {
  const address = endpointAddress(endpoint);
  const shown = JSON.stringify(seen.slice(0, 128));
  if (plan.routerId !== undefined) {
    if (seen === plan.routerId) return { ok: true, firstContact: false };
    return {
      ok: false,
      message:
        `the router at ${address} names itself ${shown}, but --router pins ?id=${plan.routerId}: ` +
        "no hello signed (a relay or another router is answering there). " +
        `If that router's id really changed, pass ?id=<its new id> in --router.`,
    };
  }
  const pinned = pins.get(address);
  if (pinned === undefined) return { ok: true, firstContact: true };
  if (seen === pinned) return { ok: true, firstContact: false };
  return {
    ok: false,
    message:
      `ROUTER ID CHANGED at ${address}: pinned ${JSON.stringify(pinned)}, the router now names itself ${shown}; ` +
      "no hello signed (a relay or a replaced router may be in the path). " +
      `To accept the new id, delete the entry for ${address} from ${pins.where} (or the whole file), ` +
      `or pass ?id=<the router's id> in --router.`,
  };
}
