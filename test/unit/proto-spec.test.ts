/**
 * The .proto comments are the spec third parties build miners and
 * validator clients from (README, "Write your own miner"). These tests hold
 * the comments to the code where that is cheap: the signed bytes built from
 * the comments' recipes, the close-status table read out of tunnel.proto,
 * and the credit definition field by field. A change on either side that
 * is not made on the other fails here.
 */
import { readFileSync } from "node:fs";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { u8aToHex, u8aWrapBytes } from "@polkadot/util";
import { blake2AsU8a, encodeAddress, sr25519PairFromSeed, sr25519Sign } from "@polkadot/util-crypto";
import { expect } from "chai";
import { chunkPayloadBytes } from "../../common/chunk-credit.js";
import {
  type ChannelCloseKind,
  CLOSE_CODES,
  DEFAULT_MAX_MESSAGE_BYTES,
  GRPC_CLOSE_STATUS,
} from "../../common/frame-channel.js";
import { initCrypto } from "../../common/identity.js";
import { ReplayCache } from "../../common/replay-cache.js";
import { checkHello, checkValidatorCall, helloPayload, validatorCallPayload } from "../../common/signing.js";
import { FinishReason } from "../../gen/tensorclaw/v1/chat.js";
import { type Hello, ResponseChunk } from "../../gen/tensorclaw/v1/tunnel.js";
import { TunnelHandshake } from "../../router/tunnel/handshake.js";
import { DEFAULT_TUNNEL_TIMINGS } from "../../router/tunnel/options.js";
import { FakeClock } from "../support/fake-clock.js";
import { memoryLogger } from "../support/memory-logger.js";

const NOW = 1_800_000_000_000;
const NONCE = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 171) & 0xff);
const enc = new TextEncoder();
const TUNNEL_PROTO = readFileSync(new URL("../../proto/tensorclaw/v1/tunnel.proto", import.meta.url), "utf8");

/** A key made with polkadot-js's own sr25519 (not the project's Hotkey wrapper), as a third party would. */
function rawKey(): { address: string; sign(message: Uint8Array): Uint8Array } {
  const pair = sr25519PairFromSeed(new Uint8Array(32).fill(9));
  return { address: encodeAddress(pair.publicKey, 42), sign: (m) => sr25519Sign(m, pair) };
}

/** Byte-wise hex as the comments define it: lower-case, no prefix. */
function lowerHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

describe("proto spec: the comments match the code", () => {
  before(initCrypto);

  describe("Hello.signature", () => {
    // Built exactly as tunnel.proto spells it, not with the project's helper.
    const recipe = (routerId: string, ts: string, hotkey: string, nonceHex = lowerHex(NONCE)) =>
      enc.encode(`tensorclaw/v1/tunnel-hello\n${nonceHex}\n${routerId}\n${ts}\n${hotkey}`);
    const check = () => ({ nowMs: NOW, freshnessMs: 30_000, replay: new ReplayCache(60_000) });

    it("the recipe gives the bytes the router verifies", () => {
      const key = rawKey();
      const fields = { nonce: NONCE, routerId: "router-eu-1", timestampMs: NOW, hotkey: key.address };
      expect(helloPayload(fields)).to.deep.equal(recipe("router-eu-1", String(NOW), key.address));
    });

    it("a raw sr25519 signature over the recipe is accepted", () => {
      const key = rawKey();
      const sig = key.sign(recipe("r1", String(NOW), key.address));
      const fields = { nonce: NONCE, routerId: "r1", timestampMs: NOW, hotkey: key.address };
      expect(checkHello(fields, sig, check())).to.equal(null);
    });

    it("a <Bytes>-wrapped signature, upper-case hex or a padded timestamp does not verify", () => {
      const key = rawKey();
      const fields = { nonce: NONCE, routerId: "r1", timestampMs: NOW, hotkey: key.address };
      const wrapped = key.sign(u8aWrapBytes(recipe("r1", String(NOW), key.address)));
      expect(checkHello(fields, wrapped, check())).to.equal("bad_signature");
      const upper = key.sign(recipe("r1", String(NOW), key.address, lowerHex(NONCE).toUpperCase()));
      expect(checkHello(fields, upper, check())).to.equal("bad_signature");
      const padded = key.sign(recipe("r1", `0${NOW}`, key.address));
      expect(checkHello(fields, padded, check())).to.equal("bad_signature");
    });
  });

  describe("validator call signature (probe.proto)", () => {
    const method = "/tensorclaw.v1.MinerDirectoryService/ListMiners";
    const recipe = (digestHex: string, hotkey: string, ts = String(NOW)) =>
      enc.encode(
        `tensorclaw/v1/validator-call\nrouter-eu-1\n${method}\n${hotkey}\n${ts}\nreq-0123456789\n${digestHex}`,
      );
    // BLAKE2b-256 of zero bytes (an empty request message such as ListMinersRequest).
    const EMPTY_DIGEST = "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8";

    it("the recipe gives the bytes the router verifies, digest lower-case", () => {
      const key = rawKey();
      const f = {
        routerId: "router-eu-1",
        method,
        hotkey: key.address,
        timestampMs: NOW,
        requestId: "req-0123456789",
      };
      expect(validatorCallPayload({ ...f, requestBytes: new Uint8Array(0) })).to.deep.equal(
        recipe(EMPTY_DIGEST, key.address),
      );
      const body = enc.encode("any request bytes");
      const digest = lowerHex(blake2AsU8a(body, 256));
      expect(validatorCallPayload({ ...f, requestBytes: body })).to.deep.equal(recipe(digest, key.address));
    });

    it("accepts the recipe signed raw; refuses an upper-case digest and a padded timestamp", () => {
      const key = rawKey();
      const run = (sig: Uint8Array, requestId: string) => {
        const md: Record<string, string> = {
          "x-tc-router-id": "router-eu-1",
          "x-tc-hotkey": key.address,
          "x-tc-timestamp-ms": String(NOW),
          "x-tc-request-id": requestId,
          "x-tc-signature": u8aToHex(sig),
        };
        const opts = {
          routerId: "router-eu-1",
          nowMs: NOW,
          freshnessMs: 10_000,
          replay: new ReplayCache(60_000),
        };
        return checkValidatorCall((k) => md[k], method, new Uint8Array(0), opts);
      };
      const good = new TextDecoder().decode(recipe(EMPTY_DIGEST, key.address));
      const sign = (text: string) => key.sign(enc.encode(text.replace("req-0123456789", "req-abcdefghij")));
      expect(run(sign(good), "req-abcdefghij")).to.deep.equal({ ok: true, hotkey: key.address });
      const upper = sign(good.replace(EMPTY_DIGEST, EMPTY_DIGEST.toUpperCase()));
      expect(run(upper, "req-abcdefghij")).to.include({ ok: false, fault: "bad_signature" });
      const padded = sign(good.replace(`\n${NOW}\n`, `\n0${NOW}\n`));
      expect(run(padded, "req-abcdefghij")).to.include({ ok: false, fault: "bad_signature" });
    });
  });

  describe("Closing a tunnel (tunnel.proto table)", () => {
    /** The table rows: the first line of each cause, its gRPC status name and WebSocket code. */
    function table(): Map<string, { grpc: string; ws: number }> {
      const start = TUNNEL_PROTO.indexOf("// # Closing a tunnel");
      const end = TUNNEL_PROTO.indexOf("// # ", start + 5);
      const rows = new Map<string, { grpc: string; ws: number }>();
      for (const line of TUNNEL_PROTO.slice(start, end).split("\n")) {
        const m = /^\/\/ {3}(\S.*?)\s{2,}([A-Z_]+)\s+(\d{4})$/.exec(line);
        if (m) rows.set(m[1] as string, { grpc: m[2] as string, ws: Number(m[3]) });
      }
      return rows;
    }

    /** What the router does for each row (the Reject and timeout rows are also driven below). */
    const KINDS: Record<string, ChannelCloseKind> = {
      "Reject BAD_SIGNATURE, STALE, REPLAYED,": "refused",
      "Reject INVALID_HELLO, UNSUPPORTED_VERSION": "invalid",
      "Reject UNAVAILABLE (caps, shutdown,": "going_away",
      "no Hello within hello_timeout_ms": "timeout",
      "max_missed_pongs pings unanswered": "timeout",
      "protocol fault: undecodable message,": "invalid",
      "message over max_message_bytes": "too_big",
      "Drain finished (nothing left in flight)": "normal",
      "Drain grace expired, router shutting down": "going_away",
      "a bug in the router": "internal",
    };

    it("names, for every close kind, the status and code the router sends", () => {
      const rows = table();
      expect([...rows.keys()]).to.have.members(Object.keys(KINDS));
      for (const [cause, kind] of Object.entries(KINDS)) {
        const row = rows.get(cause);
        expect(GrpcStatus[GRPC_CLOSE_STATUS[kind]], cause).to.equal(row?.grpc);
        expect(CLOSE_CODES[kind], cause).to.equal(row?.ws);
      }
      // Every kind the router can close with appears in the table.
      expect(new Set(Object.values(KINDS))).to.have.lengthOf(Object.keys(GRPC_CLOSE_STATUS).length);
    });

    /** Runs one handshake to its end; returns what the miner saw, in order. */
    async function handshake(
      hello: (key: ReturnType<typeof rawKey>) => Hello | undefined,
      over: { admit?: boolean; budgetWaitMs?: number; tunnelsFull?: boolean } = {},
    ): Promise<string[]> {
      const clock = new FakeClock(NOW);
      const seen: string[] = [];
      const hs = new TunnelHandshake(
        {
          routerId: "r1",
          nonce: NONCE,
          clock,
          timings: DEFAULT_TUNNEL_TIMINGS,
          replay: new ReplayCache(60_000),
          admit: () => over.admit ?? true,
          logger: memoryLogger().logger,
          helloBudget: () => over.budgetWaitMs ?? 0,
          tunnelRoom: () => (over.tunnelsFull ? "hotkey holds 4 tunnels" : undefined),
        },
        {
          phase: () => "admitting",
          send: (kind) => seen.push(kind.$case),
          close: (kind) => seen.push(`close:${GrpcStatus[GRPC_CLOSE_STATUS[kind]]}/${CLOSE_CODES[kind]}`),
          accepted: () => seen.push("accepted"),
        },
      );
      hs.start();
      const h = hello(rawKey());
      if (h === undefined) await clock.advance(DEFAULT_TUNNEL_TIMINGS.helloTimeoutMs);
      else await hs.onHello(h);
      hs.stop();
      return seen.slice(1); // after the Challenge
    }

    const helloFrom =
      (over: Partial<Hello> = {}, ts = NOW) =>
      (key: ReturnType<typeof rawKey>): Hello => ({
        hotkey: key.address,
        signature: Buffer.from(
          key.sign(helloPayload({ nonce: NONCE, routerId: "r1", timestampMs: ts, hotkey: key.address })),
        ),
        timestampMs: BigInt(ts),
        models: [],
        softwareVersion: "spec-test/1",
        protocolVersion: 1,
        ...over,
      });

    it("each Reject is sent before a close with the status and code of its row", async () => {
      const row = (cause: string) => {
        const r = table().get(cause);
        return `close:${r?.grpc}/${r?.ws}`;
      };
      const refused = row("Reject BAD_SIGNATURE, STALE, REPLAYED,");
      const invalid = row("Reject INVALID_HELLO, UNSUPPORTED_VERSION");
      const unavailable = row("Reject UNAVAILABLE (caps, shutdown,");
      expect(await handshake(helloFrom())).to.deep.equal(["accepted"]);
      expect(await handshake(helloFrom({ signature: Buffer.alloc(64, 1) }))).to.deep.equal([
        "reject",
        refused,
      ]);
      expect(await handshake(helloFrom({}, NOW - 31_000))).to.deep.equal(["reject", refused]);
      expect(await handshake(helloFrom(), { admit: false })).to.deep.equal(["reject", refused]);
      expect(await handshake(helloFrom({ protocolVersion: 0 }))).to.deep.equal(["reject", invalid]);
      expect(await handshake(helloFrom({ hotkey: "not-ss58" }))).to.deep.equal(["reject", invalid]);
      expect(await handshake(helloFrom(), { budgetWaitMs: 50 })).to.deep.equal(["reject", unavailable]);
      expect(await handshake(helloFrom(), { tunnelsFull: true })).to.deep.equal(["reject", unavailable]);
    });

    it("a higher Hello protocol version is accepted (the session speaks the router's)", async () => {
      expect(await handshake(helloFrom({ protocolVersion: 7 }))).to.deep.equal(["accepted"]);
    });

    it("a missing Hello closes with the hello-timeout row, with no Reject", async () => {
      const r = table().get("no Hello within hello_timeout_ms");
      expect(await handshake(() => undefined)).to.deep.equal([`close:${r?.grpc}/${r?.ws}`]);
    });

    it("the default message limit is the 4 MiB the header states", () => {
      expect(TUNNEL_PROTO).to.include("`Accept.max_message_bytes` (default 4 MiB)");
      expect(DEFAULT_MAX_MESSAGE_BYTES).to.equal(4 * 1024 * 1024);
    });
  });

  describe("Flow control: what a chunk costs", () => {
    it("counts exactly the fields the definition lists, and nothing else", () => {
      const chunk = ResponseChunk.fromPartial({
        requestId: 77,
        contentDelta: "héllo", // 6 bytes
        reasoningDelta: "思考", // 6 bytes
        toolCalls: [{ index: 3, id: "c1", type: "function", functionName: "f", argumentsDelta: "{}" }], // 2+8+1+2
        finishReason: FinishReason.FINISH_REASON_STOP,
        logprobs: [
          {
            token: "hé",
            logprob: -0.5,
            topLogprobs: [
              { token: "ab", logprob: -1 },
              { token: "", logprob: -2 },
            ],
          },
        ], // 3 + 2 + 0
        choiceIndex: 2,
        systemFingerprint: "fp_1", // 4
      });
      expect(chunkPayloadBytes(chunk)).to.equal(6 + 6 + 13 + 5 + 4);
      // The fields that cost nothing cost nothing.
      const free = ResponseChunk.fromPartial({
        requestId: 9,
        finishReason: FinishReason.FINISH_REASON_LENGTH,
        choiceIndex: 5,
        toolCalls: [{ index: 4 }],
        logprobs: [{ token: "", logprob: -3, topLogprobs: [{ token: "", logprob: -4 }] }],
      });
      expect(chunkPayloadBytes(free)).to.equal(0);
    });
  });
});
