import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pollUntil } from "./poll.js";
import { freePort } from "./redis.js";

/** A private CA and a server certificate it signed for 127.0.0.1 and localhost (PEM files). */
export interface TestCertificates {
  readonly dir: string;
  /** The CA's certificate: what a client must trust (NODE_EXTRA_CA_CERTS). */
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  /** Removes the files. */
  remove(): Promise<void>;
}

function openssl(args: readonly string[], cwd: string): void {
  const r = spawnSync("openssl", args, { cwd, encoding: "utf8" });
  if (r.error !== undefined || r.status !== 0) {
    throw new Error(
      `openssl ${args[0]} failed (TLS tests need the openssl command: apt-get install openssl): ${r.error?.message ?? r.stderr}`,
    );
  }
}

/** Makes a throwaway CA and a server certificate with the openssl command, valid for a day. */
export async function makeTestCertificates(): Promise<TestCertificates> {
  const dir = await mkdtemp(join(tmpdir(), "tensorclaw-tls-"));
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl(
    [
      "req",
      "-x509",
      ...ec,
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
      "-days",
      "1",
      "-subj",
      "/CN=tensorclaw test CA",
    ],
    dir,
  );
  openssl(["req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"], dir);
  await writeFile(join(dir, "san.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  openssl(
    [
      ...["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial"],
      ...["-out", "server.crt", "-days", "1", "-extfile", "san.cnf"],
    ],
    dir,
  );
  return {
    dir,
    ca: join(dir, "ca.crt"),
    cert: join(dir, "server.crt"),
    key: join(dir, "server.key"),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** A Redis that speaks only TLS (one server, or a cluster of three masters), and how to stop it. */
export interface TlsRedis {
  /** `rediss://…` or `rediss+cluster://…`. */
  readonly url: string;
  stop(): Promise<void>;
}

const MASTERS = 3;

/**
 * Starts redis-server with TLS only (no plain port) on free ports, its
 * certificate signed by `certs`' CA: one server, or three cluster masters
 * whose cluster bus runs on TLS too, joined with `redis-cli --cluster
 * create`. Resolves once it answers (the cluster: once every node reports
 * the whole cluster).
 */
export async function startTlsRedis(certs: TestCertificates, kind: "single" | "cluster"): Promise<TlsRedis> {
  const n = kind === "single" ? 1 : MASTERS;
  const taken = new Set<number>();
  while (taken.size < 2 * n) taken.add(await freePort());
  const [ports, busPorts] = [[...taken].slice(0, n), [...taken].slice(n)];
  const dirs: string[] = [];
  for (let i = 0; i < n; i++) dirs.push(await mkdtemp(join(tmpdir(), "tensorclaw-redis-tls-")));
  const tlsArgs = [
    "--tls-cert-file",
    certs.cert,
    "--tls-key-file",
    certs.key,
    "--tls-ca-cert-file",
    certs.ca,
  ];
  const cli = (port: number, ...args: string[]) =>
    spawnSync("redis-cli", ["--tls", "--cacert", certs.ca, "-h", "127.0.0.1", "-p", String(port), ...args], {
      encoding: "utf8",
      timeout: 10_000,
    });
  const children: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once("exit", () => resolve());
            c.kill("SIGKILL");
          }),
      ),
    );
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  };
  try {
    for (let i = 0; i < n; i++) {
      const port = ports[i] as number;
      const cluster =
        kind === "cluster"
          ? [
              ...["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"],
              ...["--cluster-port", String(busPorts[i]), "--tls-cluster", "yes"],
            ]
          : [];
      children.push(
        spawn(
          "redis-server",
          [
            ...["--port", "0", "--tls-port", String(port), "--bind", "127.0.0.1", "--dir", dirs[i] as string],
            ...tlsArgs,
            ...["--tls-auth-clients", "no", "--save", "", "--appendonly", "no"],
            ...cluster,
          ],
          { stdio: "ignore" },
        ),
      );
    }
    for (const port of ports) {
      await pollUntil(async () => cli(port, "ping").stdout.trim() === "PONG", {
        what: `the TLS redis-server on ${port} to answer`,
        timeoutMs: 10_000,
        intervalMs: 50,
      });
    }
    if (kind === "single") return { url: `rediss://127.0.0.1:${ports[0]}`, stop };
    const create = spawnSync(
      "redis-cli",
      [
        "--tls",
        "--cacert",
        certs.ca,
        "--cluster",
        "create",
        ...ports.map((p) => `127.0.0.1:${p}`),
        "--cluster-yes",
      ],
      { encoding: "utf8", timeout: 30_000 },
    );
    if (create.status !== 0)
      throw new Error(`redis-cli --cluster create failed: ${create.stderr || create.stdout}`);
    for (const port of ports) {
      await pollUntil(
        async () => {
          const info = cli(port, "cluster", "info").stdout;
          return /cluster_state:ok/.test(info) && new RegExp(`cluster_known_nodes:${MASTERS}\\b`).test(info);
        },
        { what: `TLS cluster node ${port} to see the whole cluster`, timeoutMs: 30_000, intervalMs: 100 },
      );
    }
    return { url: `rediss+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(",")}`, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
