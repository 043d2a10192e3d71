import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Server } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation, protoPath as healthProtoPath, type ServingStatus } from "grpc-health-check";

/**
 * Standard gRPC health checking (grpc.health.v1.Health) and server
 * reflection (v1 and v1alpha) on the router's gRPC port, so grpcurl,
 * `buf curl` and load balancers work without our code.
 *
 * Reflection describes the contracts as they are in `proto/` at run time
 * (loaded with @grpc/proto-loader), plus the health service itself.
 */

/** Folder holding `tensorclaw/v1/*.proto`. */
export const PROTO_ROOT = fileURLToPath(new URL("../../proto/", import.meta.url));

/** Fully-qualified names of the router's own gRPC services. */
export const ROUTER_SERVICES = [
  "tensorclaw.v1.TunnelService",
  "tensorclaw.v1.ProbeService",
  "tensorclaw.v1.UsageReportService",
  "tensorclaw.v1.MinerDirectoryService",
] as const;

/** Health and reflection registered on one server. */
export interface HealthAndReflection {
  /** Sets one service's status ("" is the whole server). */
  setStatus(service: string, status: ServingStatus): void;
  /** Marks every service NOT_SERVING (on shutdown, before draining). */
  shutdown(): void;
}

/**
 * Registers health checking and reflection on `server`. Every name in
 * `services` (and "" for the server) starts SERVING.
 */
export function addHealthAndReflection(
  server: Server,
  services: readonly string[] = ROUTER_SERVICES,
): HealthAndReflection {
  const files = readdirSync(`${PROTO_ROOT}tensorclaw/v1`)
    .filter((f) => f.endsWith(".proto"))
    .sort()
    .map((f) => `tensorclaw/v1/${f}`);
  const pkg = loadSync([...files, healthProtoPath], {
    includeDirs: [PROTO_ROOT],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  new ReflectionService(pkg).addToServer(server);
  const names = ["", ...services];
  const health = new HealthImplementation(Object.fromEntries(names.map((n) => [n, "SERVING" as const])));
  health.addToServer(server);
  return {
    setStatus: (service, status) => health.setStatus(service, status),
    shutdown: () => {
      for (const n of names) health.setStatus(n, "NOT_SERVING");
    },
  };
}
