import { fileURLToPath } from "node:url";
import * as protoLoader from "@grpc/proto-loader";
import { expect } from "chai";
import { FinishReason } from "../../gen/tensorclaw/v1/chat.js";
import { ListMinersResponse, MinerState, Transport } from "../../gen/tensorclaw/v1/directory.js";
import {
  GetTrafficShapeRequest,
  GetTrafficShapeResponse,
  ProbeRequest,
  ProbeResponse,
  ReportVerdictsRequest,
  ReportVerdictsResponse,
  Verdict,
} from "../../gen/tensorclaw/v1/probe.js";
import {
  ConnectRequest,
  ConnectResponse,
  type MinerFrame,
  RejectReason,
  RequestErrorCode,
  RequestKind,
  type RouterFrame,
} from "../../gen/tensorclaw/v1/tunnel.js";
import { GetUsageRequest, GetUsageResponse } from "../../gen/tensorclaw/v1/usage.js";

const PROTO_ROOT = fileURLToPath(new URL("../../proto", import.meta.url));

// One frame of every kind, each with every field set to a non-default value,
// so a field dropped or renumbered anywhere shows up as a difference.
const MINER_FRAMES: MinerFrame[] = [
  {
    kind: {
      $case: "hello",
      value: {
        hotkey: "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
        signature: Buffer.alloc(64, 7),
        timestampMs: 1_764_000_000_123n,
        models: [
          { id: "llama-3.1-8b", maxConcurrency: 16, contextLength: 131072, kinds: [] },
          {
            id: "bge-small",
            maxConcurrency: 8,
            contextLength: 512,
            kinds: [RequestKind.REQUEST_KIND_EMBEDDING, RequestKind.REQUEST_KIND_COMPLETION],
          },
          { id: "qwen-2.5-7b", maxConcurrency: 4, contextLength: 32768, kinds: [] },
        ],
        softwareVersion: "tensorclaw-miner/0.1.0",
        protocolVersion: 1,
        channelBinding: Buffer.alloc(32, 0xcb),
      },
    },
  },
  {
    kind: {
      $case: "chunk",
      value: {
        requestId: 42,
        contentDelta: "Hello, wörld 👋",
        toolCalls: [
          {
            index: 1,
            id: "call_1",
            type: "function",
            functionName: "get_weather",
            argumentsDelta: '{"city":',
          },
        ],
        finishReason: FinishReason.FINISH_REASON_TOOL_CALLS,
        choiceIndex: 1,
        systemFingerprint: "fp_44709d6fcb",
        embeddings: [],
        reasoningDelta: "thinking",
        logprobs: [
          {
            token: "Hello",
            logprob: -0.125,
            topLogprobs: [
              { token: "Hello", logprob: -0.125 },
              { token: "Hi", logprob: -2.5 },
            ],
          },
          { token: ", wörld 👋", logprob: -9999, topLogprobs: [] },
        ],
      },
    },
  },
  // Float32 values that survive the trip exactly.
  {
    kind: {
      $case: "chunk",
      value: {
        requestId: 44,
        contentDelta: "",
        toolCalls: [],
        finishReason: FinishReason.FINISH_REASON_UNSPECIFIED,
        choiceIndex: 0,
        systemFingerprint: "",
        embeddings: [
          { index: 0, values: [0.5, -0.25, 0, 1] },
          { index: 1, values: [-1, 0.125, 0.75, -0.5] },
        ],
        reasoningDelta: "",
        logprobs: [],
      },
    },
  },
  // 2^53 + 1 does not fit a double: the counters must stay exact.
  {
    kind: {
      $case: "usage",
      value: { requestId: 42, promptTokens: 9_007_199_254_740_993n, completionTokens: 5n },
    },
  },
  {
    kind: {
      $case: "error",
      value: {
        requestId: 43,
        code: RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_ERROR,
        message: "This model's maximum context length is 4096 tokens.",
        httpStatus: 400,
      },
    },
  },
  { kind: { $case: "pong", value: { seq: 4_000_000_000 } } },
  {
    kind: {
      $case: "models",
      value: { models: [{ id: "m", maxConcurrency: 1, contextLength: 0, kinds: [] }] },
    },
  },
];

const ROUTER_FRAMES: RouterFrame[] = [
  {
    kind: {
      $case: "challenge",
      value: {
        nonce: Buffer.alloc(32, 9),
        routerId: "router-eu-1",
        protocolVersion: 1,
        helloTimeoutMs: 5000,
        serverTimeMs: -1n,
      },
    },
  },
  {
    kind: {
      $case: "accept",
      value: { sessionId: "s-1", pingIntervalMs: 10000, maxMissedPongs: 3, maxMessageBytes: 4194304 },
    },
  },
  {
    kind: {
      $case: "reject",
      value: { reason: RejectReason.REJECT_REASON_REPLAYED, message: "replayed hello", retryAfterMs: 1000 },
    },
  },
  {
    kind: {
      $case: "request",
      value: {
        requestId: 7,
        model: "llama-3.1-8b",
        deadlineMs: 60000,
        initialCreditBytes: 65536,
        completion: undefined,
        embedding: undefined,
        traceId: "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        chat: {
          messages: [
            {
              role: "system",
              content: "be brief",
              contentPartsJson: "",
              name: "",
              toolCalls: [],
              toolCallId: "",
            },
            {
              role: "user",
              content: undefined,
              contentPartsJson: '[{"type":"text","text":"hi"}]',
              name: "ann",
              toolCalls: [],
              toolCallId: "",
            },
            {
              role: "assistant",
              content: undefined,
              contentPartsJson: "",
              name: "",
              toolCalls: [{ id: "c1", type: "function", functionName: "f", functionArguments: "{}" }],
              toolCallId: "",
            },
            { role: "tool", content: "42", contentPartsJson: "", name: "", toolCalls: [], toolCallId: "c1" },
          ],
          temperature: 0.5,
          topP: 0.9,
          maxTokens: 128,
          stop: ["\n\n", "END"],
          seed: -12345678901234n,
          frequencyPenalty: 0.1,
          presencePenalty: -0.2,
          tools: [
            {
              type: "function",
              name: "f",
              description: "d",
              parametersJson: '{"type":"object"}',
              strict: true,
            },
          ],
          toolChoice: { choice: { $case: "functionName", value: "f" } },
          parallelToolCalls: false,
          responseFormat: { type: "json_schema", jsonSchemaJson: '{"name":"x","schema":{}}' },
          user: "u-hash",
          extraJson: '{"top_k":40}',
          stream: true,
          logprobs: true,
          topLogprobs: 5,
          maxCompletionTokens: 256,
          n: 2,
        },
      },
    },
  },
  {
    kind: {
      $case: "request",
      value: {
        requestId: 8,
        model: "gpt-3.5-turbo-instruct",
        deadlineMs: 30000,
        initialCreditBytes: 65536,
        chat: undefined,
        completion: {
          prompt: ["Once upon", "a time"],
          suffix: "",
          maxTokens: 16,
          temperature: 0,
          topP: undefined,
          n: 2,
          logprobs: 3,
          echo: true,
          stop: ["\n"],
          seed: 7n,
          frequencyPenalty: undefined,
          presencePenalty: undefined,
          user: "",
          extraJson: "",
          stream: false,
        },
        embedding: undefined,
        traceId: "00000000000000000000000000000001",
      },
    },
  },
  {
    kind: {
      $case: "request",
      value: {
        requestId: 9,
        model: "bge-small",
        deadlineMs: 30000,
        initialCreditBytes: 65536,
        chat: undefined,
        completion: undefined,
        embedding: { input: ["a", "bé"], dimensions: 256, user: "u-hash" },
        traceId: "00000000000000000000000000000002",
      },
    },
  },
  { kind: { $case: "cancel", value: { requestId: 7, reason: "client disconnected" } } },
  { kind: { $case: "ping", value: { seq: 3 } } },
  { kind: { $case: "drain", value: { reconnectAfterMs: 2500, reason: "shutdown" } } },
  { kind: { $case: "credit", value: { requestId: 7, bytes: 32768 } } },
];

// The other generator: @grpc/proto-loader (protobuf.js) reading proto/ at run time.
const loaderOptions: protoLoader.Options = {
  includeDirs: [PROTO_ROOT],
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: false,
  oneofs: true,
};
const defs = protoLoader.loadSync(
  [
    "tensorclaw/v1/tunnel.proto",
    "tensorclaw/v1/probe.proto",
    "tensorclaw/v1/usage.proto",
    "tensorclaw/v1/directory.proto",
  ],
  loaderOptions,
);

interface Codec {
  serialize(value: unknown): Buffer;
  deserialize(bytes: Buffer): Record<string, unknown>;
}

function method(service: string, name: string, side: "request" | "response"): Codec {
  const svc = defs[`tensorclaw.v1.${service}`] as Record<
    string,
    protoLoader.MethodDefinition<unknown, unknown>
  >;
  const m = svc[name];
  if (m === undefined) throw new Error(`no method ${service}.${name}`);
  return side === "request"
    ? { serialize: m.requestSerialize, deserialize: m.requestDeserialize as Codec["deserialize"] }
    : { serialize: m.responseSerialize, deserialize: m.responseDeserialize as Codec["deserialize"] };
}

describe("contracts", () => {
  describe("ts-proto stubs round-trip every frame kind", () => {
    for (const frame of MINER_FRAMES) {
      it(`miner frame ${frame.kind?.$case}`, () => {
        const bytes = ConnectRequest.encode({ frames: [frame] }).finish();
        expect(ConnectRequest.decode(bytes)).to.deep.equal({ frames: [frame] });
      });
    }
    for (const frame of ROUTER_FRAMES) {
      it(`router frame ${frame.kind?.$case}`, () => {
        const bytes = ConnectResponse.encode({ frames: [frame] }).finish();
        expect(ConnectResponse.decode(bytes)).to.deep.equal({ frames: [frame] });
      });
    }
    it("a batch keeps frame order", () => {
      const bytes = ConnectRequest.encode({ frames: MINER_FRAMES }).finish();
      const kinds = ConnectRequest.decode(bytes).frames.map((f) => f.kind?.$case);
      expect(kinds).to.deep.equal(["hello", "chunk", "chunk", "usage", "error", "pong", "models"]);
    });
  });

  describe("a different generator (@grpc/proto-loader) interoperates", () => {
    it("decodes every miner frame ts-proto encodes, and re-encodes it to the same message", () => {
      const codec = method("TunnelService", "Connect", "request");
      for (const frame of MINER_FRAMES) {
        const bytes = Buffer.from(ConnectRequest.encode({ frames: [frame] }).finish());
        const other = codec.deserialize(bytes);
        const back = ConnectRequest.decode(codec.serialize(other));
        expect(back, frame.kind?.$case).to.deep.equal({ frames: [frame] });
      }
    });

    it("decodes every router frame ts-proto encodes, and re-encodes it to the same message", () => {
      const codec = method("TunnelService", "Connect", "response");
      for (const frame of ROUTER_FRAMES) {
        const bytes = Buffer.from(ConnectResponse.encode({ frames: [frame] }).finish());
        const other = codec.deserialize(bytes);
        const back = ConnectResponse.decode(codec.serialize(other));
        expect(back, frame.kind?.$case).to.deep.equal({ frames: [frame] });
      }
    });

    it("reads the fields ts-proto wrote under the documented names", () => {
      const codec = method("TunnelService", "Connect", "request");
      const decoded = codec.deserialize(
        Buffer.from(ConnectRequest.encode({ frames: MINER_FRAMES }).finish()),
      );
      const frames = decoded.frames as Record<string, unknown>[];
      expect(frames.map((f) => f.kind)).to.deep.equal([
        "hello",
        "chunk",
        "chunk",
        "usage",
        "error",
        "pong",
        "models",
      ]);
      const hello = frames[0]?.hello as Record<string, unknown>;
      expect(hello.hotkey).to.equal("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY");
      expect(hello.timestampMs).to.equal("1764000000123");
      const usage = frames[3]?.usage as Record<string, unknown>;
      expect(usage.promptTokens).to.equal("9007199254740993");
      const error = frames[4]?.error as Record<string, unknown>;
      expect(error.code).to.equal("REQUEST_ERROR_CODE_BACKEND_ERROR");
      expect(error.httpStatus).to.equal(400);
      const vectors = frames[2]?.chunk as { embeddings: { index: number; values: number[] }[] };
      expect(vectors.embeddings.map((e) => e.values)).to.deep.equal([
        [0.5, -0.25, 0, 1],
        [-1, 0.125, 0.75, -0.5],
      ]);
      expect((hello.models as { kinds: string[] }[])[1]?.kinds).to.deep.equal([
        "REQUEST_KIND_EMBEDDING",
        "REQUEST_KIND_COMPLETION",
      ]);
      const chunk = frames[1]?.chunk as {
        logprobs: { token: string; topLogprobs: { logprob: number }[] }[];
        choiceIndex: number;
        systemFingerprint: string;
      };
      expect(chunk.choiceIndex).to.equal(1);
      expect(chunk.systemFingerprint).to.equal("fp_44709d6fcb");
      expect(chunk.logprobs.map((l) => l.token)).to.deep.equal(["Hello", ", wörld 👋"]);
      expect(chunk.logprobs[0]?.topLogprobs[1]?.logprob).to.equal(-2.5);
    });

    it("builds a frame from scratch that ts-proto decodes", () => {
      const codec = method("TunnelService", "Connect", "request");
      const bytes = codec.serialize({
        frames: [
          { chunk: { requestId: 9, contentDelta: "abc", finishReason: "FINISH_REASON_STOP" } },
          { usage: { requestId: 9, promptTokens: "18446744073709551615", completionTokens: "3" } },
        ],
      });
      const msg = ConnectRequest.decode(bytes);
      expect(msg.frames[0]?.kind).to.deep.equal({
        $case: "chunk",
        value: {
          requestId: 9,
          contentDelta: "abc",
          toolCalls: [],
          finishReason: FinishReason.FINISH_REASON_STOP,
          choiceIndex: 0,
          systemFingerprint: "",
          embeddings: [],
          reasoningDelta: "",
          logprobs: [],
        },
      });
      expect(msg.frames[1]?.kind).to.deep.equal({
        $case: "usage",
        value: { requestId: 9, promptTokens: 18_446_744_073_709_551_615n, completionTokens: 3n },
      });
    });

    it("round-trips the Probe, UsageReport and MinerDirectory messages", () => {
      const cases: [
        string,
        string,
        "request" | "response",
        { encode(m: never): { finish(): Uint8Array } },
        unknown,
      ][] = [
        [
          "ProbeService",
          "Probe",
          "request",
          ProbeRequest,
          {
            hotkey: "5abc",
            model: "m",
            timeoutMs: 8000,
            requestJson: '{"messages":[{"role":"user","content":"hi"}]}',
            cutAfterTokens: 5,
            kind: RequestKind.REQUEST_KIND_EMBEDDING,
          },
        ],
        [
          "ProbeService",
          "Probe",
          "response",
          ProbeResponse,
          {
            ok: false,
            ghost: true,
            ttftMs: 12.5,
            latencyMs: 8000,
            completionTokens: 0,
            error: "timeout",
            model: "m",
            sessionId: "s",
            finishedAtMs: 1n,
            content: "Hel",
            finishReason: FinishReason.FINISH_REASON_LENGTH,
            logprobs: [{ token: "Hel", logprob: -0.25, topLogprobs: [{ token: "Hi", logprob: -1.5 }] }],
            cut: true,
            livenessMs: 7.5,
            embeddings: [{ index: 0, values: [0.5, -0.25] }],
            kind: RequestKind.REQUEST_KIND_EMBEDDING,
          },
        ],
        ["ProbeService", "GetTrafficShape", "request", GetTrafficShapeRequest, { model: "m" }],
        [
          "ProbeService",
          "GetTrafficShape",
          "response",
          GetTrafficShapeResponse,
          {
            windowSeconds: 3600,
            requests: 12n,
            minCount: 5,
            reportTimeMs: 7n,
            tail: [{ model: "m", field: "max_tokens", value: "512", count: 6n }],
            shapes: [
              {
                count: 9n,
                model: "m",
                messages: 3,
                systemPrompt: true,
                stream: true,
                user: true,
                maxTokens: 256,
                temperature: 0.7,
                topP: 0.95,
                seed: true,
                stop: 1,
                tools: 2,
                responseFormat: "json_object",
                promptTokensLog2: 9,
                logprobs: true,
              },
            ],
          },
        ],
        [
          "ProbeService",
          "ReportVerdicts",
          "request",
          ReportVerdictsRequest,
          {
            verdicts: [
              { hotkey: "5abc", model: "m", verdict: Verdict.VERDICT_FAILED, detail: "mean logprob -9" },
            ],
          },
        ],
        ["ProbeService", "ReportVerdicts", "response", ReportVerdictsResponse, { excluded: 1 }],
        [
          "UsageReportService",
          "GetUsage",
          "request",
          GetUsageRequest,
          { windowSeconds: 3600, hotkeys: ["a", "b"] },
        ],
        [
          "UsageReportService",
          "GetUsage",
          "response",
          GetUsageResponse,
          {
            reportTimeMs: 3n,
            windowStartMs: 1n,
            windowEndMs: 2n,
            bucketMs: 60000,
            freeTrafficCounted: true,
            miners: [
              {
                hotkey: "h",
                promptTokens: 10n,
                completionTokens: 20n,
                paidPromptTokens: 7n,
                paidCompletionTokens: 9n,
                requests: 2n,
                businessPoints: 0.003,
                models: [
                  {
                    model: "m",
                    promptTokens: 10n,
                    completionTokens: 20n,
                    paidPromptTokens: 7n,
                    paidCompletionTokens: 9n,
                    requests: 2n,
                    tierMultiplier: 1,
                    businessPoints: 0.003,
                    served: 2n,
                    failedBeforeOutput: 1n,
                    failedAfterOutput: 3n,
                    deadlineCut: 4n,
                  },
                ],
              },
            ],
          },
        ],
        [
          "MinerDirectoryService",
          "ListMiners",
          "response",
          ListMinersResponse,
          {
            reportTimeMs: 5n,
            servingSinceMs: 4n,
            sessions: [
              {
                hotkey: "h",
                sessionId: "s",
                models: [
                  {
                    id: "m",
                    maxConcurrency: 2,
                    contextLength: 8,
                    inFlight: 1,
                    kinds: [RequestKind.REQUEST_KIND_EMBEDDING],
                  },
                ],
                transport: Transport.TRANSPORT_WEBSOCKET,
                state: MinerState.MINER_STATE_GHOST,
                inFlight: 1,
                latencyMs: 3.5,
                connectedSinceMs: 4n,
                softwareVersion: "v",
              },
            ],
          },
        ],
      ];
      for (const [service, name, side, type, value] of cases) {
        const codec = method(service, name, side);
        const t = type as unknown as {
          encode(m: unknown): { finish(): Uint8Array };
          decode(b: Uint8Array): unknown;
        };
        const viaOther = codec.serialize(codec.deserialize(Buffer.from(t.encode(value).finish())));
        expect(t.decode(viaOther), `${service}.${name} ${side}`).to.deep.equal(value);
      }
    });
  });
});
