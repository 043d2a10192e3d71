import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { type DescriptorProto, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { Server } from "@grpc/grpc-js";
import {
  type EnumTypeDefinition,
  loadSync,
  type MessageTypeDefinition,
  type PackageDefinition,
  type ServiceDefinition,
} from "@grpc/proto-loader";
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
  new ReflectionService(withProtocMapEntryNames(pkg)).addToServer(server);
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

/**
 * The descriptors as protoc writes them: a map field's entry message is
 * named `<Field>Entry`. protobufjs (under proto-loader) names it `<Field>`,
 * and tools that read reflection the protoc way (`buf curl`, grpcurl)
 * then refuse the whole file: the health service's `List` response holds a
 * map, so `grpc.health.v1.Health` could not be found at all.
 */
export function withProtocMapEntryNames(pkg: PackageDefinition): PackageDefinition {
  const fixed = new Map<Buffer, Buffer>();
  const fix = (b: Buffer): Buffer => {
    let out = fixed.get(b);
    if (out === undefined) {
      const file = fromBinary(FileDescriptorProtoSchema, b);
      const pkgPrefix = file.package === "" ? "" : `.${file.package}`;
      for (const m of file.messageType) renameMapEntries(m, `${pkgPrefix}.${m.name}`);
      out = Buffer.from(toBinary(FileDescriptorProtoSchema, file));
      fixed.set(b, out);
    }
    return out;
  };
  const result: PackageDefinition = {};
  for (const [name, def] of Object.entries(pkg)) {
    if ("format" in def) {
      // A message or enum type.
      const type = def as MessageTypeDefinition<object, object> | EnumTypeDefinition;
      result[name] = { ...type, fileDescriptorProtos: type.fileDescriptorProtos.map(fix) };
    } else {
      // A service: each method carries its request and response types' descriptors.
      const methods = Object.entries(def as ServiceDefinition).map(([m, d]) => [
        m,
        {
          ...d,
          requestType: {
            ...d.requestType,
            fileDescriptorProtos: d.requestType.fileDescriptorProtos.map(fix),
          },
          responseType: {
            ...d.responseType,
            fileDescriptorProtos: d.responseType.fileDescriptorProtos.map(fix),
          },
        },
      ]);
      result[name] = Object.fromEntries(methods) as ServiceDefinition;
    }
  }
  return result;
}

/** Renames `m`'s map entry types (and their nested ones') to `<Name>Entry`, fixing the fields that name them. */
function renameMapEntries(m: DescriptorProto, fullName: string): void {
  for (const nested of m.nestedType) {
    const old = nested.name;
    if (nested.options?.mapEntry === true && !old.endsWith("Entry")) {
      nested.name = `${old}Entry`;
      // protobufjs writes the reference relative ("Statuses"), protoc fully qualified.
      for (const f of m.field) {
        if (f.typeName === old || f.typeName === `${fullName}.${old}`)
          f.typeName = `${fullName}.${nested.name}`;
      }
    }
    renameMapEntries(nested, `${fullName}.${nested.name}`);
  }
}
