import { createRequire } from "node:module";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { expect } from "chai";
import { service as healthService } from "grpc-health-check";
import type { Hotkey } from "../../common/identity.js";
import { signValidatorCall } from "../../common/signing.js";
import { rawUnaryCall, signedCall } from "../../common/validator-call/client.js";
import { allowList, ValidatorAuth } from "../../common/validator-call/server.js";
import {
  ListMinersRequest,
  type ListMinersResponse,
  MinerDirectoryServiceClient,
  MinerDirectoryServiceService,
  MinerState,
  Transport,
} from "../../gen/tensorclaw/v1/directory.js";
import {
  GetUsageRequest,
  type GetUsageResponse,
  UsageReportServiceClient,
  UsageReportServiceService,
} from "../../gen/tensorclaw/v1/usage.js";
import { EmbeddedLedger } from "../../router/ledger/embedded.js";
import { directoryService } from "../../router/services/directory.js";
import { addHealthAndReflection } from "../../router/services/health.js";
import { getUsage, usageService } from "../../router/services/usage.js";
import type { SessionView } from "../../router/tunnel/types.js";
import { throwawayHotkey } from "../support/keys.js";
import { CONTRACT_OPTIONS, T0, usageEvent } from "../support/ledger-contract.js";

/** The id the services under test run as; every call is signed for it. */
const ROUTER_ID = "router-usage-test";
const USAGE = UsageReportServiceService.getUsage;
const LIST = MinerDirectoryServiceService.listMiners;

function grpcCode(err: unknown): number | undefined {
  return (err as { code?: number }).code;
}

async function expectStatus(p: Promise<unknown>, code: grpc.status): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(grpcCode(err), String(err)).to.equal(code);
    return (err as grpc.ServiceError).details;
  }
  throw new Error(`expected gRPC status ${grpc.status[code]}, the call succeeded`);
}

describe("validator services over a real gRPC server (signed calls, health, reflection)", () => {
  let validator: Hotkey;
  let stranger: Hotkey;
  let minerA: Hotkey;
  let minerB: Hotkey;
  let server: grpc.Server;
  let usageClient: UsageReportServiceClient;
  let dirClient: MinerDirectoryServiceClient;
  let ledger: EmbeddedLedger;
  let address: string;
  let sessions: SessionView[];

  before(async () => {
    validator = await throwawayHotkey();
    stranger = await throwawayHotkey();
    minerA = await throwawayHotkey();
    minerB = await throwawayHotkey();
  });

  beforeEach(async () => {
    ledger = await EmbeddedLedger.open({ ...CONTRACT_OPTIONS, nowMs: Date.now() });
    sessions = [];
    const auth = new ValidatorAuth({ routerId: ROUTER_ID, authorize: allowList([validator.address]) });
    server = new grpc.Server();
    const u = auth.wrap(UsageReportServiceService, usageService({ ledger }));
    server.addService(u.definition, u.implementation);
    const d = auth.wrap(
      MinerDirectoryServiceService,
      directoryService({ sessions: () => sessions, servingSinceMs: 1_764_000_000_123 }),
    );
    server.addService(d.definition, d.implementation);
    addHealthAndReflection(server);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    address = `127.0.0.1:${port}`;
    usageClient = new UsageReportServiceClient(address, grpc.credentials.createInsecure());
    dirClient = new MinerDirectoryServiceClient(address, grpc.credentials.createInsecure());
  });

  afterEach(async () => {
    usageClient.close();
    dirClient.close();
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    await ledger.close();
  });

  const ask = (
    req: Partial<GetUsageRequest> = {},
    key: Hotkey = validator,
    nowMs?: number,
    requestId?: string,
  ) =>
    signedCall<GetUsageRequest, GetUsageResponse>(
      usageClient,
      USAGE,
      GetUsageRequest.fromPartial(req),
      key,
      ROUTER_ID,
      nowMs === undefined ? (requestId === undefined ? {} : { requestId }) : { nowMs },
    );

  it("answers a validly signed GetUsage with exact edges and per-miner, per-model usage", async () => {
    const now = Date.now();
    await ledger.setTier("big", 3, now);
    await ledger.record(
      [
        usageEvent({
          minerHotkey: minerA.address,
          model: "big",
          promptTokens: 6000,
          completionTokens: 4000,
          finishedAtMs: now,
        }),
        usageEvent({
          minerHotkey: minerA.address,
          model: "small",
          promptTokens: 10,
          completionTokens: 5,
          finishedAtMs: now,
        }),
        usageEvent({
          minerHotkey: minerB.address,
          model: "small",
          promptTokens: 20_000,
          completionTokens: 0,
          finishedAtMs: now,
        }),
      ],
      now,
    );
    const res = await ask();
    const end = Math.floor(res.reportTimeMs > 0n ? Number(res.reportTimeMs) / 60_000 : 0) * 60_000 + 60_000;
    expect(res.bucketMs).to.equal(60_000);
    expect(res.windowEndMs).to.equal(BigInt(end));
    expect(res.windowStartMs).to.equal(BigInt(end - 86_400_000));
    expect(res.miners.map((m) => m.hotkey)).to.deep.equal([minerA.address, minerB.address]);
    const a = res.miners[0];
    expect(
      a?.models.map((m) => [m.model, m.promptTokens, m.completionTokens, m.requests, m.tierMultiplier]),
    ).to.deep.equal([
      ["big", 6000n, 4000n, 1n, 3],
      ["small", 10n, 5n, 1n, 1],
    ]);
    expect(a?.businessPoints).to.be.closeTo(3.0015, 1e-12);
    expect(res.miners[1]?.businessPoints).to.equal(2);
    const only = await ask({ hotkeys: [minerB.address], windowSeconds: 3600 });
    expect(only.miners.map((m) => m.hotkey)).to.deep.equal([minerB.address]);
    expect(only.windowStartMs).to.equal(BigInt(end - 3_600_000));
  });

  it("reports paid and free tokens apart over the wire, and points from paid ones unless free traffic counts", async () => {
    const now = Date.now();
    await ledger.record(
      [
        usageEvent({ minerHotkey: minerA.address, model: "m", promptTokens: 3000, completionTokens: 1000 }),
        usageEvent({ minerHotkey: minerA.address, model: "m", paid: false, promptTokens: 40_000 }),
        usageEvent({ minerHotkey: minerB.address, model: "m", paid: false, promptTokens: 90_000 }),
      ].map((e) => ({ ...e, finishedAtMs: now })),
      now,
    );
    const res = await ask();
    expect(res.freeTrafficCounted).to.equal(false);
    const rows = (r: GetUsageResponse) =>
      r.miners.map((m) => [
        m.hotkey,
        m.promptTokens,
        m.paidPromptTokens,
        m.paidCompletionTokens,
        m.models[0]?.paidPromptTokens,
        m.models[0]?.paidCompletionTokens,
        m.businessPoints,
        m.models[0]?.businessPoints,
      ]);
    expect(rows(res)).to.deep.equal([
      [minerA.address, 43_000n, 3000n, 1000n, 3000n, 1000n, 0.4, 0.4],
      [minerB.address, 90_000n, 0n, 0n, 0n, 0n, 0, 0],
    ]);
    // The same ledger behind a router run with --count-free-traffic.
    const dev = await getUsage({ ledger, countFreeTraffic: true }, GetUsageRequest.fromPartial({}));
    expect(dev.freeTrafficCounted).to.equal(true);
    expect(rows(dev)).to.deep.equal([
      [minerB.address, 90_000n, 0n, 0n, 0n, 0n, 9.005, 9.005],
      [minerA.address, 43_000n, 3000n, 1000n, 3000n, 1000n, 4.405, 4.405],
    ]);
  });

  it("answers a default (0 s) window with the whole retention when the ledger keeps less than 24 h", async () => {
    const now = T0 + 30 * 60_000 + 123;
    const end = T0 + 31 * 60_000;
    const hk = minerA.address;
    const old = usageEvent({ minerHotkey: hk, model: "m", promptTokens: 7, finishedAtMs: now - 3_540_000 });
    const recent = usageEvent({ minerHotkey: hk, model: "m", promptTokens: 5, finishedAtMs: now - 60_000 });
    const short = await EmbeddedLedger.open({ bucketMs: 60_000, retentionMs: 3_600_000, nowMs: now });
    try {
      expect((await short.record([old, recent], now)).counted).to.equal(2);
      const res = await getUsage({ ledger: short, clock: () => now }, GetUsageRequest.fromPartial({}));
      expect(res.windowEndMs).to.equal(BigInt(end));
      expect(res.windowStartMs).to.equal(BigInt(end - 3_600_000));
      expect(res.miners[0]?.promptTokens).to.equal(12n);
      // Asking for more than it keeps is still refused.
      let refused: unknown;
      await getUsage(
        { ledger: short, clock: () => now },
        GetUsageRequest.fromPartial({ windowSeconds: 3601 }),
      ).catch((err: unknown) => {
        refused = err;
      });
      expect(String(refused)).to.match(/longer than the ledger keeps/);
    } finally {
      await short.close();
    }
    // A ledger that keeps more than a day still defaults to 24 h.
    const long = await EmbeddedLedger.open({ bucketMs: 60_000, retentionMs: 2 * 86_400_000, nowMs: now });
    try {
      const res = await getUsage({ ledger: long, clock: () => now }, GetUsageRequest.fromPartial({}));
      expect(res.windowStartMs).to.equal(BigInt(end - 86_400_000));
    } finally {
      await long.close();
    }
  });

  it("refuses an unsigned call with UNAUTHENTICATED", async () => {
    const bytes = USAGE.requestSerialize(GetUsageRequest.fromPartial({}));
    await expectStatus(
      rawUnaryCall(usageClient, USAGE, bytes, new grpc.Metadata()),
      grpc.status.UNAUTHENTICATED,
    );
  });

  it("refuses forged signatures and signatures over other bytes with UNAUTHENTICATED", async () => {
    const bytes = USAGE.requestSerialize(GetUsageRequest.fromPartial({ windowSeconds: 60 }));
    // Signed by a stranger but claiming the validator's hotkey.
    const forged = signValidatorCall(stranger, ROUTER_ID, USAGE.path, bytes, Date.now());
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(forged)) md.set(k, v);
    md.set("x-tc-hotkey", validator.address);
    await expectStatus(rawUnaryCall(usageClient, USAGE, bytes, md), grpc.status.UNAUTHENTICATED);
    // A genuine signature over another request's bytes.
    const other = USAGE.requestSerialize(GetUsageRequest.fromPartial({ windowSeconds: 120 }));
    const sig = signValidatorCall(validator, ROUTER_ID, USAGE.path, other, Date.now());
    const md2 = new grpc.Metadata();
    for (const [k, v] of Object.entries(sig)) md2.set(k, v);
    await expectStatus(rawUnaryCall(usageClient, USAGE, bytes, md2), grpc.status.UNAUTHENTICATED);
    // A genuine signature for another method.
    const sig3 = signValidatorCall(validator, ROUTER_ID, LIST.path, bytes, Date.now());
    const md3 = new grpc.Metadata();
    for (const [k, v] of Object.entries(sig3)) md3.set(k, v);
    await expectStatus(rawUnaryCall(usageClient, USAGE, bytes, md3), grpc.status.UNAUTHENTICATED);
  });

  it("refuses stale and future timestamps with UNAUTHENTICATED", async () => {
    const stale = await expectStatus(ask({}, validator, Date.now() - 11_000), grpc.status.UNAUTHENTICATED);
    expect(stale).to.match(/freshness/);
    await expectStatus(ask({}, validator, Date.now() + 11_000), grpc.status.UNAUTHENTICATED);
  });

  it("refuses a replayed request id with UNAUTHENTICATED", async () => {
    await ask({}, validator, undefined, "same-request-id-1");
    const why = await expectStatus(
      ask({}, validator, undefined, "same-request-id-1"),
      grpc.status.UNAUTHENTICATED,
    );
    expect(why).to.match(/already used/);
  });

  it("refuses a validly signed call from an unknown validator with PERMISSION_DENIED", async () => {
    await expectStatus(ask({}, stranger), grpc.status.PERMISSION_DENIED);
    await expectStatus(
      signedCall(dirClient, LIST, ListMinersRequest.fromPartial({}), stranger, ROUTER_ID),
      grpc.status.PERMISSION_DENIED,
    );
  });

  it("answers bad arguments with INVALID_ARGUMENT after authentication", async () => {
    const why = await expectStatus(ask({ windowSeconds: 86_401 }), grpc.status.INVALID_ARGUMENT);
    expect(why).to.match(/longer than the ledger keeps/);
    await expectStatus(ask({ hotkeys: ["not-a-hotkey"] }), grpc.status.INVALID_ARGUMENT);
    // Signed garbage that is not a GetUsageRequest.
    const garbage = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    const sig = signValidatorCall(validator, ROUTER_ID, USAGE.path, garbage, Date.now());
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(sig)) md.set(k, v);
    await expectStatus(rawUnaryCall(usageClient, USAGE, garbage, md), grpc.status.INVALID_ARGUMENT);
  });

  it("lists the session snapshot in the directory, ordered by hotkey then session id", async () => {
    const base = {
      transport: "grpc" as const,
      state: "active" as const,
      models: [{ id: "m", maxConcurrency: 4, contextLength: 8192, inFlight: 1 }],
      inFlight: 1,
      latencyMs: 12.5,
      connectedSinceMs: 1_764_000_000_000,
      softwareVersion: "tc/0.1",
    };
    const [lo, hi] = [minerA.address, minerB.address].sort();
    sessions = [
      { ...base, hotkey: hi as string, sessionId: "s2", state: "ghost" },
      { ...base, hotkey: lo as string, sessionId: "s9", transport: "ws" },
      { ...base, hotkey: lo as string, sessionId: "s1", state: "draining" },
    ];
    const res = await signedCall<ListMinersRequest, ListMinersResponse>(
      dirClient,
      LIST,
      ListMinersRequest.fromPartial({}),
      validator,
      ROUTER_ID,
    );
    expect(res.sessions.map((s) => [s.hotkey, s.sessionId, s.transport, s.state])).to.deep.equal([
      [lo, "s1", Transport.TRANSPORT_GRPC, MinerState.MINER_STATE_DRAINING],
      [lo, "s9", Transport.TRANSPORT_WEBSOCKET, MinerState.MINER_STATE_ACTIVE],
      [hi, "s2", Transport.TRANSPORT_GRPC, MinerState.MINER_STATE_GHOST],
    ]);
    expect(res.sessions[0]?.models).to.deep.equal([
      { id: "m", maxConcurrency: 4, contextLength: 8192, inFlight: 1, kinds: [] },
    ]);
    expect(res.sessions[0]?.connectedSinceMs).to.equal(1_764_000_000_000n);
    expect(res.sessions[0]?.latencyMs).to.equal(12.5);
    // When the router started taking tunnels, so validators can tell a fresh restart.
    expect(res.servingSinceMs).to.equal(1_764_000_000_123n);
  });

  it("answers standard health checks and server reflection without our client code", async () => {
    const Health = grpc.makeGenericClientConstructor(healthService, "Health");
    const health = new Health(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
      check(
        req: { service: string },
        cb: (err: grpc.ServiceError | null, res: { status: string }) => void,
      ): void;
    };
    const check = (service: string) =>
      new Promise<string>((resolve, reject) =>
        health.check({ service }, (err, res) => (err ? reject(err) : resolve(res.status))),
      );
    expect(await check("")).to.equal("SERVING");
    expect(await check("tensorclaw.v1.UsageReportService")).to.equal("SERVING");
    await expectStatus(check("no.such.Service"), grpc.status.NOT_FOUND);
    health.close();

    const require = createRequire(import.meta.url);
    const reflectionProto = require.resolve(
      "@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto",
    );
    const pkg = grpc.loadPackageDefinition(loadSync(reflectionProto, { keepCase: true })) as unknown as {
      grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } };
    };
    const reflection = new pkg.grpc.reflection.v1.ServerReflection(
      address,
      grpc.credentials.createInsecure(),
    );
    const stream = (
      reflection as unknown as { ServerReflectionInfo(): grpc.ClientDuplexStream<unknown, unknown> }
    ).ServerReflectionInfo();
    interface Answer {
      list_services_response?: { service: { name: string }[] };
      file_descriptor_response?: { file_descriptor_proto: Buffer[] };
    }
    const answers: Answer[] = [];
    const done = new Promise<void>((resolve, reject) => {
      stream.on("data", (d: Answer) => {
        answers.push(d);
        if (answers.length === 2) stream.end();
      });
      stream.on("end", () => resolve());
      stream.on("error", reject);
    });
    stream.write({ list_services: "" });
    stream.write({ file_containing_symbol: "tensorclaw.v1.UsageReportService" });
    await done;
    reflection.close();
    const names = answers[0]?.list_services_response?.service.map((s) => s.name);
    expect(names).to.include.members([
      "tensorclaw.v1.UsageReportService",
      "tensorclaw.v1.MinerDirectoryService",
      "grpc.health.v1.Health",
    ]);
    const files = answers[1]?.file_descriptor_response?.file_descriptor_proto ?? [];
    expect(files.length).to.be.greaterThan(0);
    expect(Buffer.concat(files).toString("latin1")).to.include("GetUsageRequest");
  });
});
