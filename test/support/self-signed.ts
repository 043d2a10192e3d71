import { execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";

/** A certificate and its key, PEM. */
export interface SelfSigned {
  readonly cert: string;
  readonly key: string;
}

/**
 * A fresh self-signed P-256 certificate for localhost and 127.0.0.1, made by
 * openssl in `dir` (cert.pem, key.pem), valid for two days: what a test
 * router serves TLS with, and what a test miner is told to trust.
 */
export async function selfSignedLocalhost(dir: string): Promise<SelfSigned> {
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "2",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
      "-keyout",
      join(dir, "key.pem"),
      "-out",
      join(dir, "cert.pem"),
    ],
    { stdio: "ignore" },
  );
  return {
    cert: await readFile(join(dir, "cert.pem"), "utf8"),
    key: await readFile(join(dir, "key.pem"), "utf8"),
  };
}
