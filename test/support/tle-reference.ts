import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

/**
 * The `tle` crate itself, as its authors (Ideal Labs) publish it compiled to
 * WebAssembly: npm `@ideallabs/timelock_wasm_wrapper@1.0.0` (a devDependency,
 * tests only). That build is arkworks 0.4 (ark-bls12-381 0.4.0,
 * ark-serialize 0.4.2, per the crate paths inside the .wasm) with the
 * `Vec<u8>` header fields of tle rev 5416406, the revision Subtensor's
 * runtime pins: the same bytes the chain's decryption reads. (0.3.0 of the
 * wrapper is a later rewrite whose header drops the length prefixes; the
 * chain cannot read it, so it is not used.)
 */
export interface TleReference {
  /** Encrypts `message` to identity `id` (the round message) with AES key `key` under `beaconKey`. */
  encrypt(id: Uint8Array, message: Uint8Array, key: Uint8Array, beaconKey: Uint8Array): Uint8Array;
  /** Opens a serialised ciphertext with a 48-byte G1 signature; throws when it cannot. */
  decrypt(ciphertext: Uint8Array, signature: Uint8Array): Uint8Array;
}

interface WasmModule {
  initSync(m: { module: Uint8Array }): unknown;
  tle(id: number[], message: number[], key: number[], beaconKey: number[], curve: string): ArrayLike<number>;
  tld(ciphertext: number[], signature: number[], curve: string): ArrayLike<number>;
}

const CURVE = "bls12_381";
let loaded: Promise<TleReference> | undefined;

/** Loads the wasm build once (synchronously instantiated from the package's files). */
export function tleReference(): Promise<TleReference> {
  loaded ??= (async () => {
    const require = createRequire(import.meta.url);
    const dir = dirname(require.resolve("@ideallabs/timelock_wasm_wrapper/package.json"));
    const m = (await import(pathToFileURL(join(dir, "timelock_wasm_wrapper.js")).href)) as WasmModule;
    m.initSync({ module: readFileSync(join(dir, "timelock_wasm_wrapper_bg.wasm")) });
    return {
      encrypt: (id, message, key, beaconKey) =>
        Uint8Array.from(m.tle([...id], [...message], [...key], [...beaconKey], CURVE)),
      decrypt: (ciphertext, signature) => Uint8Array.from(m.tld([...ciphertext], [...signature], CURVE)),
    };
  })();
  return loaded;
}
