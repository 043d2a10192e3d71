import { DEFAULT_ENCODING, type EncodingName, type Encodings } from "../../common/tokens/encodings.js";
import { checkModelId } from "../ledger/ledger.js";
import { type CatalogueEntry, defaultEntry } from "./entry.js";

/** Whether `name` is a model id an operator could give (what `checkModelId` accepts). */
function isModelId(name: string): boolean {
  try {
    checkModelId(name);
    return true;
  } catch {
    return false;
  }
}

/**
 * An immutable snapshot of the operator's model catalogue, as the router
 * routes by it. A closed catalogue routes only its models (by id or alias);
 * an open one (`--open-catalogue`, the dev network's default) also routes any
 * other id, at tier 1 with the default tokenizer.
 */
export class ModelCatalogue {
  /** Whether ids outside the catalogue are routable too. */
  readonly open: boolean;
  /** The entries, sorted by id. */
  readonly entries: readonly CatalogueEntry[];
  /** Names that could not be used: an alias naming another entry's id or alias. */
  readonly conflicts: readonly string[];
  readonly #byName = new Map<string, CatalogueEntry>();
  readonly #synthetic = new Map<string, CatalogueEntry>();

  constructor(entries: readonly CatalogueEntry[], open: boolean) {
    this.open = open;
    this.entries = Object.freeze([...entries].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)));
    const conflicts: string[] = [];
    // Ids first, so an alias can never shadow a real id.
    for (const e of this.entries) this.#byName.set(e.id, e);
    for (const e of this.entries) {
      for (const a of e.aliases) {
        const other = this.#byName.get(a);
        if (other === undefined) this.#byName.set(a, e);
        else if (other !== e) conflicts.push(a);
      }
    }
    this.conflicts = Object.freeze(conflicts);
  }

  /** An empty catalogue. */
  static empty(open: boolean): ModelCatalogue {
    return new ModelCatalogue([], open);
  }

  /** True when no model is routable by name alone: closed and empty. */
  get closedAndEmpty(): boolean {
    return !this.open && this.entries.length === 0;
  }

  /**
   * The entry a model name (id or alias) routes to: the catalogue's entry,
   * in an open catalogue a default entry for any other name, else undefined
   * (the model is not routable).
   */
  resolve(name: string): CatalogueEntry | undefined {
    const e = this.#byName.get(name);
    if (e !== undefined || !this.open) return e;
    let s = this.#synthetic.get(name);
    if (s === undefined) {
      // A name no operator could give a model (whitespace, control characters, too long) is not
      // routable. It comes from a miner's offer or a user's request: refusing it must not throw,
      // since an offer is applied outside any request's error handling (a throw there ends the process).
      if (!isModelId(name)) return undefined;
      s = defaultEntry(name);
      // Bounded: names come from miners' offers and users' requests.
      if (this.#synthetic.size >= MAX_SYNTHETIC) this.#synthetic.clear();
      this.#synthetic.set(name, s);
    }
    return s;
  }

  /** True when a name (id or alias) is one of the catalogue's own models, not an open router's default. */
  lists(name: string): boolean {
    return this.#byName.has(name);
  }

  /** The canonical id an offered or requested name routes to, or undefined. */
  canonical(name: string): string | undefined {
    return this.resolve(name)?.id;
  }

  /** The offered ids this catalogue does not route (to tell the miner). */
  ignored(offered: readonly string[]): string[] {
    return offered.filter((id) => this.resolve(id) === undefined);
  }

  /** Tier multipliers of the catalogue's entries (an open catalogue's other models count 1). */
  tierMap(): ReadonlyMap<string, number> {
    return new Map(this.entries.map((e) => [e.id, e.tier]));
  }
}

/** Bound on remembered default entries of an open catalogue. */
const MAX_SYNTHETIC = 4096;

/**
 * Loads the tokenizer of every model of a catalogue, and the default one
 * (models of an open catalogue use it), so that counting on the request
 * path never waits for a load.
 */
export async function loadCatalogueEncodings(encodings: Encodings, catalogue: ModelCatalogue): Promise<void> {
  const names = new Set<EncodingName>([DEFAULT_ENCODING, ...catalogue.entries.map((e) => e.tokenizer)]);
  await Promise.all([...names].map((n) => encodings.load(n)));
}
