/**
 * Which concurrency slot of a tunnel a request takes. Each model offered on
 * a tunnel has `max_concurrency` slots for requests; the tunnel also has one
 * spare slot kept for probes (tunnel.proto, ModelOffer). A probe takes an
 * ordinary slot whenever one is free, exactly as a user request would, so on
 * a tunnel that is not full its concurrency footprint is a user's. Only when
 * the model's slots are all taken does it use the spare slot: a miner kept
 * full by users can still be probed, so staying full cannot keep a stale
 * verdict alive.
 */

/** The slot a request goes into: an ordinary one, or the tunnel's spare probe slot. */
export type SlotKind = "ordinary" | "spare";

/** The occupancy of one (tunnel, model) at dispatch. */
export interface SlotOccupancy {
  /** Slots of this model held now, the spare slot included when it holds a call of this model. */
  readonly held: number;
  /** Whether the spare slot holds a call of this model. */
  readonly spareHeldByModel: boolean;
  /** Whether the tunnel's spare slot is taken (by any model). */
  readonly spareTaken: boolean;
  /** The model's advertised `max_concurrency` on this tunnel. */
  readonly maxConcurrency: number;
}

/**
 * The slot for one more request, or undefined when there is none. A user
 * request only ever gets an ordinary slot; a probe gets an ordinary slot
 * when one is free, else the spare slot when it is free.
 */
export function chooseSlot(o: SlotOccupancy, probe: boolean): SlotKind | undefined {
  const ordinary = o.held - (o.spareHeldByModel ? 1 : 0);
  if (ordinary < o.maxConcurrency) return "ordinary";
  if (probe && !o.spareTaken) return "spare";
  return undefined;
}
