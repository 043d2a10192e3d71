// The on-disk cache of compiled TypeScript that bin/loader.mjs reads before it
// compiles anything. An entry is named after what determines its content:
//
//   <file key>-<source key>.js
//     file key:   hash of the entry format, esbuild's version and the transform
//                 options (which name the file's path, written into its source map)
//     source key: hash of the source text
//
// and holds one line with the SHA-256 of the compiled code, then the code
// exactly as esbuild returned it (so the inline source map still lines up). An
// entry whose digest does not match (truncated, corrupted, edited) is treated
// as missing. Entries are written to a temporary file and renamed into place,
// so a process never reads one half written, however many start at once.
// Nothing here throws: when the folder cannot be read or written, the loader
// simply compiles.
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Part of every file key: change it when the entry format changes. */
const FORMAT = "tensorclaw-ts/1";

function quietly(action) {
  try {
    action();
  } catch {
    // The cache is an optimisation: a folder that cannot be written only costs time.
  }
}

const sha256 = (text) => createHash("sha256").update(text).digest("hex");

/** An entry's text: the digest line, then the code. */
function sealEntry(code) {
  return `${sha256(code)}\n${code}`;
}

/** The code of an entry's text, or undefined when its digest does not match. */
function openEntry(text) {
  const newline = text.indexOf("\n");
  if (newline !== 64) return undefined;
  const code = text.slice(newline + 1);
  return text.slice(0, newline) === sha256(code) ? code : undefined;
}

/** A cache folder; every method fails quietly (a miss, or nothing written). */
export class TsCache {
  #dir;
  #salt;
  #ready = false;

  /**
   * @param {string} dir the folder (created on the first write)
   * @param {string} salt what else shapes the output: the compiler's version
   */
  constructor(dir, salt) {
    this.#dir = dir;
    this.#salt = salt;
  }

  /** Where the compiled form of `source` under `options` lives in the folder. */
  entryName(options, source) {
    return `${this.#fileKey(options)}-${sha256(source).slice(0, 32)}.js`;
  }

  /** The cached code for this source and these options, if there is a sound entry. */
  get(options, source) {
    let text;
    try {
      text = readFileSync(join(this.#dir, this.entryName(options, source)), "utf8");
    } catch {
      return undefined;
    }
    return openEntry(text);
  }

  /** Stores `code` as the compiled form; drops entries of the same file's older sources. */
  put(options, source, code) {
    const name = this.entryName(options, source);
    const tmp = join(this.#dir, `.${name}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
    try {
      if (!this.#ready) {
        mkdirSync(this.#dir, { recursive: true });
        this.#ready = true;
      }
      writeFileSync(tmp, sealEntry(code));
      renameSync(tmp, join(this.#dir, name));
    } catch {
      quietly(() => rmSync(tmp, { force: true }));
      return;
    }
    // Without this the folder would grow by one entry per edit, forever.
    // (Another process may prune the same entries at the same time: harmless.)
    const prefix = `${this.#fileKey(options)}-`;
    quietly(() => {
      for (const other of readdirSync(this.#dir))
        if (other.startsWith(prefix) && other !== name) rmSync(join(this.#dir, other), { force: true });
    });
  }

  #fileKey(options) {
    return sha256(`${FORMAT}\0${this.#salt}\0${JSON.stringify(options)}`).slice(0, 16);
  }
}
