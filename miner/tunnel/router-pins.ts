/**
 * Where a miner remembers which router id answered at each router address
 * (trust on first use). A `--router` URL without `?id=` pins the id that
 * router's first Challenge names; from then on a Challenge from that
 * address naming another id gets no Hello, so a router (or a relay) in the
 * path cannot borrow the miner's signature for some other router.
 *
 * The file is small JSON, `{"version":1,"pins":{"host:port":"router-id"}}`,
 * in the miner's data directory; deleting an entry (or the file) accepts
 * whatever id that address names next.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { TensorClawError } from "../../common/errors.js";
import { writePrivateFileSync } from "../../common/private-file.js";
import { isValidRouterId } from "../../common/router-id.js";

/** The pin file's name in the miner's data directory. */
export const ROUTER_PINS_FILE = "miner-router-pins.json";

/** Pinned router ids by address. */
export interface RouterPins {
  /** Where the pins live, for the operator (a file path, or "memory"). */
  readonly where: string;
  /** The id pinned for `address` (`host:port`), if any. */
  get(address: string): string | undefined;
  /** Pins `routerId` for every address not pinned yet. Throws when it cannot be kept. */
  pin(addresses: readonly string[], routerId: string): void;
}

/** Pins kept for this process only (tests, and a miner told not to keep state). */
export class MemoryRouterPins implements RouterPins {
  readonly where: string = "memory";
  protected readonly pins = new Map<string, string>();

  get(address: string): string | undefined {
    return this.pins.get(address);
  }

  pin(addresses: readonly string[], routerId: string): void {
    for (const a of addresses) if (!this.pins.has(a)) this.pins.set(a, routerId);
  }
}

/** Pins in `<dataDir>/miner-router-pins.json`, read once at start and rewritten on each new pin. */
export class FileRouterPins extends MemoryRouterPins {
  override readonly where: string;

  /** Reads the file if it exists; a malformed file is a startup error naming it. */
  constructor(dataDir: string) {
    super();
    this.where = join(dataDir, ROUTER_PINS_FILE);
    if (!existsSync(this.where)) return;
    const bad = (why: string) =>
      new TensorClawError(
        "config_invalid",
        `invalid router pin file ${this.where}: ${why} (fix or delete it; it is rewritten on the next first contact)`,
      );
    let doc: unknown;
    try {
      doc = JSON.parse(readFileSync(this.where, "utf8"));
    } catch (err) {
      throw bad(err instanceof Error ? err.message : String(err));
    }
    const d = doc as { version?: unknown; pins?: unknown } | null;
    const pins = typeof d === "object" && d !== null && d.version === 1 ? d.pins : undefined;
    if (typeof pins !== "object" || pins === null || Array.isArray(pins)) {
      throw bad('expected {"version":1,"pins":{"host:port":"router-id"}}');
    }
    for (const [address, id] of Object.entries(pins)) {
      if (typeof id !== "string" || !isValidRouterId(id))
        throw bad(`the pin of ${address} is not a router id`);
      this.pins.set(address, id);
    }
  }

  override pin(addresses: readonly string[], routerId: string): void {
    const fresh = addresses.filter((a) => !this.pins.has(a));
    if (fresh.length === 0) return;
    super.pin(fresh, routerId);
    const sorted = Object.fromEntries([...this.pins].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
    writePrivateFileSync(this.where, `${JSON.stringify({ version: 1, pins: sorted }, null, 2)}\n`);
  }
}
