import { expect } from "chai";
import OpenAI, { APIError } from "openai";
import { FinishReason } from "../../gen/tensorclaw/v1/chat.js";
import type { InferenceRequest } from "../../gen/tensorclaw/v1/tunnel.js";
import { LEASE_REQUESTS } from "../../router/api/hold-leases.js";
import type { ApiKeyRecord, ApiKeyStore, ApiKeys } from "../../router/api/keys.js";
import type { BillingStore } from "../../router/billing/billing.js";
import { costMicros, MICROS_PER_USD } from "../../router/billing/money.js";
import { ModelCatalogue } from "../../router/catalogue/catalogue.js";
import { checkEntry } from "../../router/catalogue/entry.js";
import { type RouterUnderTest, startRouter } from "./api-harness.js";
import { WatchedBilling } from "./billing-watch.js";
import { waitForSessions } from "./hub-sessions.js";
import { throwawayHotkey } from "./keys.js";
import { pollUntil } from "./poll.js";
import { RawTunnelClient } from "./raw-tunnel-client.js";
import { FakeMiner } from "./tunnel-fake-miner.js";

const MODEL = "billed-model";
/** Priced like a catalogue model, but no miner offers it: requests for it never reach one. */
const UNSERVED = "unserved-model";
const FREE = "free-model";
/** USD per million tokens. */
const PRICE_PROMPT = 3;
const PRICE_COMPLETION = 15;
/** How long a lease takes requests here (the production 5 s would make tests wait). */
const LEASE_FILL_MS = 1000;
const WORDS = [" one", " two", " three", " four", " five", " six", " seven", " eight"];

/** A store under test and how to dispose of it (with the key store that lives beside it). */
export interface BillingApiFixture {
  readonly billing: BillingStore;
  readonly keyStore: ApiKeyStore;
  close(): Promise<void>;
}

function entry(id: string, prompt: number, completion: number) {
  return checkEntry({
    id,
    tier: 1,
    tokenizer: "o200k_base",
    contextLength: 0,
    pricePromptPerM: prompt,
    priceCompletionPerM: completion,
    aliases: [],
  });
}

/**
 * The miner's answer to a request: the first `n` words, where `n` is the
 * number of words of the user's message ("hang" in the message: no answer at
 * all). It claims far more tokens than it sent, so credit is the router's
 * count and what a request can cost is exactly known.
 */
function plan(req: InferenceRequest) {
  const text = req.chat?.messages[0]?.content ?? "";
  if (text.includes("hang")) return { chunks: [], end: "hang" as const };
  // A miner that ignores max_tokens: 40 words whatever it was asked.
  if (text.includes("overlong")) {
    return {
      chunks: Array.from({ length: 40 }, (_, i) => WORDS[i % WORDS.length] as string),
      end: { usage: [100_000, 100_000] as [number, number] },
      finishReason: FinishReason.FINISH_REASON_STOP,
    };
  }
  const n = Math.min(WORDS.length, text.split(" ").length);
  return {
    chunks: WORDS.slice(0, n),
    end: { usage: [100_000, 100_000] as [number, number] },
    finishReason: FinishReason.FINISH_REASON_STOP,
  };
}

/** A JSON object as the tests read it. */
type Json = Record<string, unknown>;

/** A number field (fails the test when it is not one). */
function num(v: unknown): number {
  expect(v).to.be.a("number");
  return v as number;
}

/** A USD amount in micros. */
const micros = (usd: unknown) => Math.round(num(usd) * MICROS_PER_USD);

/**
 * Billing through the Business API with the official `openai` client and a
 * scripted miner, against one BillingStore implementation: holds before
 * dispatch, 402s that touch no miner, spend equal to the generation records,
 * the account endpoints, and the rate-limit headers.
 */
export function billingApiSuite(name: string, make: () => Promise<BillingApiFixture>): void {
  describe(`billing through the Business API: ${name}`, function () {
    this.timeout(30_000);
    let fx: BillingApiFixture;
    let watch: WatchedBilling;
    let router: RouterUnderTest;
    let keys: ApiKeys;
    let fake: FakeMiner;
    let tunnel: RawTunnelClient;

    beforeEach(async () => {
      fx = await make();
      watch = new WatchedBilling(fx.billing);
      const catalogue = new ModelCatalogue(
        [entry(MODEL, PRICE_PROMPT, PRICE_COMPLETION), entry(UNSERVED, 1, 1), entry(FREE, 0, 0)],
        false,
      );
      router = await startRouter({
        keyStore: fx.keyStore,
        billing: watch,
        catalogue,
        chat: { keepAliveMs: 0 },
        // Leases close after a second and are released soon after their last request, so a test
        // sees a key's holds gone from the store without waiting the production 5 s.
        billingLeases: { fillMs: LEASE_FILL_MS, graceMs: 20 },
        // 100 requests of one key at once are what some cases send: no per-key cap here.
        maxConcurrentPerKey: 0,
      });
      keys = router.keys as ApiKeys;
      const hotkey = await throwawayHotkey();
      tunnel = await RawTunnelClient.open("grpc", { grpc: router.grpcUrl.slice("grpc://".length), ws: "" });
      const verdict = await tunnel.handshake(hotkey, {
        models: [
          { id: MODEL, maxConcurrency: 32, contextLength: 0, kinds: [] },
          { id: FREE, maxConcurrency: 32, contextLength: 0, kinds: [] },
        ],
      });
      if (verdict.accept === undefined) throw new Error(`refused: ${verdict.reject?.message}`);
      fake = new FakeMiner(tunnel, { plan });
      await waitForSessions(router.hub, (s) => s.some((x) => x.hotkey === hotkey.address), "the miner");
    });
    afterEach(async () => {
      tunnel.destroy();
      await router.close();
      await watch.idle();
      await fx.close();
    });

    /** A key; `creditMicros` makes it metered with that balance. */
    async function newKey(
      o: { creditMicros?: number; budgetMicros?: number; rpm?: number; tpm?: number; name?: string } = {},
    ): Promise<{ key: string; record: ApiKeyRecord; client: OpenAI }> {
      const limits = { requestsPerMinute: o.rpm ?? 0, tokensPerMinute: o.tpm ?? 0 };
      const { key, record } = await keys.create(o.name ?? "test key", limits, Date.now());
      if (o.creditMicros !== undefined) {
        await fx.billing.configure(
          record.id,
          { metered: true, budgetDailyMicros: o.budgetMicros ?? null },
          Date.now(),
        );
        if (o.creditMicros !== 0) {
          const credited = await fx.billing.credit({
            id: `test:${record.id}`,
            keyId: record.id,
            amountMicros: o.creditMicros,
            note: "test credit",
            source: "operator",
            atMs: Date.now(),
          });
          expect(credited).to.equal(true);
        }
      }
      return { key, record, client: new OpenAI({ apiKey: key, baseURL: router.baseURL, maxRetries: 0 }) };
    }

    /** `GET <path>` on the API with a key; status and parsed body. */
    async function get(
      path: string,
      key: string | undefined,
    ): Promise<{ status: number; body: Json; data: Json; error: Json; headers: Headers }> {
      const res = await fetch(`${router.baseURL.slice(0, -"/v1".length)}${path}`, {
        headers: key === undefined ? {} : { authorization: `Bearer ${key}` },
      });
      const body = (await res.json()) as Json;
      const error = (body.error ?? {}) as Json;
      return { status: res.status, body, data: (body.data ?? {}) as Json, error, headers: res.headers };
    }

    /** A completed chat request: its x-request-id, the credited usage and the response headers. */
    async function ask(client: OpenAI, words: number, stream = false, model = MODEL, maxTokens = 50) {
      const content = Array.from({ length: words }, (_, i) => `w${i}`).join(" ");
      const messages = [{ role: "user" as const, content }];
      if (stream) {
        const { data, response } = await client.chat.completions
          .create({
            model,
            messages,
            max_tokens: maxTokens,
            stream: true,
            stream_options: { include_usage: true },
          })
          .withResponse();
        let usage: OpenAI.CompletionUsage | undefined;
        for await (const c of data) usage = c.usage ?? usage;
        return { id: response.headers.get("x-request-id") as string, usage, headers: response.headers };
      }
      const { data, response } = await client.chat.completions
        .create({ model, messages, max_tokens: maxTokens })
        .withResponse();
      return {
        id: response.headers.get("x-request-id") as string,
        usage: data.usage,
        headers: response.headers,
      };
    }

    /** Waits until the store holds nothing for the key: its leases closed and were released. */
    async function leasesReleased(keyId: string): Promise<void> {
      await pollUntil(
        async () => ((await fx.billing.account(keyId, Date.now())).heldMicros === 0 ? true : undefined),
        { what: `${keyId}'s leases released`, timeoutMs: LEASE_FILL_MS + 5000, intervalMs: 50 },
      );
    }

    /** Everything recorded is settled and every store call has finished. */
    async function settled(): Promise<void> {
      await router.settling?.idle();
      await watch.idle();
      expect(router.settling?.errors).to.deep.equal([]);
    }

    const refusal = (p: Promise<unknown>) =>
      p.then(
        () => {
          throw new Error("expected the request to be refused");
        },
        (err: unknown) => {
          expect(err).to.be.instanceOf(APIError);
          return err as APIError;
        },
      );

    it("charges a metered key exactly the sum of its generation records, each the credited tokens at the prices", async () => {
      const credit = 10 * MICROS_PER_USD;
      const { record, client, key } = await newKey({ creditMicros: credit });
      const asked = [];
      for (let i = 1; i <= 8; i++) asked.push(await ask(client, i, i % 2 === 0));
      await settled();
      let sum = 0;
      for (const a of asked) {
        const g = await get(`/api/v1/generation?id=${a.id}`, key);
        expect(g.status).to.equal(200);
        const d = g.data;
        // The record is the request the client saw: its counts, and their cost at the catalogue's prices.
        expect(d).to.include({ id: a.id, model: MODEL, finish_reason: "stop", cancelled: false });
        expect(d.tokens_prompt).to.equal(a.usage?.prompt_tokens);
        expect(d.tokens_completion).to.equal(a.usage?.completion_tokens);
        const cost = costMicros(
          num(d.tokens_prompt),
          num(d.tokens_completion),
          PRICE_PROMPT,
          PRICE_COMPLETION,
        );
        expect(cost).to.be.above(0);
        expect(micros(d.total_cost)).to.equal(cost);
        expect(d.usage).to.equal(d.total_cost);
        sum += cost;
      }
      const account = await fx.billing.account(record.id, Date.now());
      expect(account.spentTotalMicros).to.equal(sum);
      expect(account.balanceMicros).to.equal(credit - sum);
      // What the router's live lease holds beyond its (finished) requests is the key's to spend:
      // the account endpoint shows nothing held, and so does the store once the lease is released.
      const shown = await get("/api/v1/key", key);
      expect(shown.data.held).to.equal(0);
      expect(micros(shown.data.limit_remaining)).to.equal(credit - sum);
      await leasesReleased(record.id);
      // Every final event said it was paid, and the miner's inflated claim was not what was charged.
      const finals = router.usage.events.filter((e) => e.billing !== undefined);
      expect(finals).to.have.length(8);
      expect(finals.every((e) => e.paid === true && e.billing?.keyId === record.id)).to.equal(true);
      // Each drew its hold from a lease the router holds in the store, and names it.
      expect(finals.every((e) => e.billing?.holdId?.startsWith("lease:"))).to.equal(true);
      const leaseIds = new Set(watch.of("hold").map((c) => c.requestId));
      expect(finals.every((e) => leaseIds.has(e.billing?.holdId))).to.equal(true);
    });

    it("serves exactly the 10 of 100 concurrent requests a balance covers; the other 90 get 402 and no miner sees them", async () => {
      // One request first, to learn the hold of this exact request: its worst case is what it is
      // charged (the miner sends max_tokens words and claims more), so settling frees nothing.
      const probe = await newKey({ creditMicros: MICROS_PER_USD });
      const first = await ask(probe.client, 3, false, MODEL, 3);
      await settled();
      const hold = router.usage.events.find((e) => e.requestId === first.id)?.billing?.holdMicros ?? 0;
      expect(hold).to.be.above(0);
      const g = await get(`/api/v1/generation?id=${first.id}`, probe.key);
      expect(micros(g.data.total_cost)).to.equal(hold);

      const { record, key } = await newKey({ creditMicros: 10 * hold });
      const before = fake.requests.length;
      const body = JSON.stringify({
        model: MODEL,
        max_tokens: 3,
        messages: [{ role: "user", content: "w0 w1 w2" }],
      });
      const answers = await Promise.all(
        Array.from({ length: 100 }, async () => {
          const res = await fetch(`${router.baseURL}/chat/completions`, {
            method: "POST",
            headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
            body,
          });
          return { status: res.status, body: (await res.json()) as { error?: Json } };
        }),
      );
      expect(answers.filter((a) => a.status === 200)).to.have.length(10);
      const refused = answers.filter((a) => a.status === 402);
      expect(refused).to.have.length(90);
      expect(refused[0]?.body.error).to.include({ type: "insufficient_quota", code: "insufficient_quota" });
      expect(fake.requests.length - before).to.equal(10);
      await settled();
      const account = await fx.billing.account(record.id, Date.now());
      expect(account.spentTotalMicros).to.equal(10 * hold);
      expect(account.balanceMicros).to.equal(0);
      await leasesReleased(record.id);
      // The 10 drew on one lease: a whole lease's worth was refused, so it was opened for what the
      // key had; every later request found the key empty.
      const asked = watch
        .of("hold")
        .filter((c) => c.keyId === record.id)
        .map((c) => c.amountMicros);
      expect(asked.slice(0, 2)).to.deep.equal([LEASE_REQUESTS * hold, 10 * hold]);
      expect(asked.slice(2).every((a) => a === LEASE_REQUESTS * hold)).to.equal(true);
    });

    it("credits and charges a miner that ignores max_tokens for at most max_tokens (+ end of turn)", async () => {
      const { client, key } = await newKey({ creditMicros: MICROS_PER_USD });
      const { data, response } = await client.chat.completions
        .create({ model: MODEL, max_tokens: 3, messages: [{ role: "user", content: "overlong" }] })
        .withResponse();
      // The user still gets what was relayed, but is charged, and the miner credited, for 3 + 1.
      expect(data.choices[0]?.message.content?.split(" ").filter((w) => w !== "").length).to.equal(40);
      expect(data.usage?.completion_tokens).to.equal(4);
      await settled();
      const id = response.headers.get("x-request-id") as string;
      const event = router.usage.events.find((e) => e.requestId === id);
      expect(event).to.include({ completionTokens: 4, paid: true });
      const g = await get(`/api/v1/generation?id=${id}`, key);
      const cost = costMicros(num(g.data.tokens_prompt), 4, PRICE_PROMPT, PRICE_COMPLETION);
      expect(micros(g.data.total_cost)).to.equal(cost);
      expect(event?.billing?.costMicros).to.equal(cost);
    });

    it("answers 402 insufficient_quota before any miner is tried, saying what is short", async () => {
      const broke = await newKey({ creditMicros: 0 });
      const e = await refusal(ask(broke.client, 2));
      expect(e.status).to.equal(402);
      expect(e.code).to.equal("insufficient_quota");
      expect(e.type).to.equal("insufficient_quota");
      expect(e.message).to.match(
        /may cost up to \$0\.\d{6} and this key has \$0\.000000 of credit available/,
      );
      // A daily budget is its own reason.
      const budgeted = await newKey({ creditMicros: MICROS_PER_USD, budgetMicros: 1 });
      const b = await refusal(ask(budgeted.client, 2, true));
      expect(b.status).to.equal(402);
      expect(b.message).to.match(/\$0\.000001 of this key's daily budget is left today \(UTC\)/);
      expect(fake.requests).to.have.length(0);
      expect(router.usage.events).to.have.length(0);
      // A free model costs nothing, so it needs no credit.
      const free = await ask(broke.client, 2, false, FREE);
      expect(free.usage?.completion_tokens).to.be.above(0);
      await settled();
      expect(router.usage.events[0]).to.deep.include({ paid: false });
      expect(router.usage.events[0]?.billing).to.include({ costMicros: 0, holdMicros: 0 });
    });

    it("OpenRouter models fallbacks: the hold covers the costliest model, the charge is the served model's", async () => {
      // No credit: the free model alone is served, but not with a priced fallback behind it.
      const broke = await newKey({ creditMicros: 0 });
      const messages = [{ role: "user" as const, content: "w0 w1" }];
      const withFallback = { model: FREE, models: [MODEL], messages, max_tokens: 50 };
      const e = await refusal(
        broke.client.chat.completions.create(withFallback as OpenAI.ChatCompletionCreateParamsNonStreaming),
      );
      expect(e.status).to.equal(402);
      expect(fake.requests).to.have.length(0);
      // UNSERVED (cheap, no miner) first, then MODEL: served by MODEL, charged at MODEL's prices.
      const { key, client } = await newKey({ creditMicros: MICROS_PER_USD });
      const { data, response } = await client.chat.completions
        .create({
          models: [UNSERVED, MODEL],
          messages,
          max_tokens: 50,
        } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming)
        .withResponse();
      expect(data.model).to.equal(MODEL);
      await settled();
      const g = await get(`/api/v1/generation?id=${response.headers.get("x-request-id")}`, key);
      expect(g.data).to.include({ model: MODEL });
      expect(micros(g.data.total_cost)).to.equal(
        costMicros(num(g.data.tokens_prompt), num(g.data.tokens_completion), PRICE_PROMPT, PRICE_COMPLETION),
      );
      const final = router.usage.events.at(-1);
      expect(final).to.deep.include({ model: MODEL, paid: true });
    });

    it("records the app a request names (HTTP-Referer, X-Title) on its generation record", async () => {
      const { key, client } = await newKey({ creditMicros: MICROS_PER_USD });
      const app = new OpenAI({
        apiKey: key,
        baseURL: router.baseURL,
        maxRetries: 0,
        defaultHeaders: { "HTTP-Referer": "https://app.example/chat?session=secret", "X-Title": "Demo\tApp" },
      });
      const named = await ask(app, 2);
      const plain = await ask(client, 2);
      await settled();
      const g = await get(`/api/v1/generation?id=${named.id}`, key);
      expect(g.data).to.deep.include({
        origin: "https://app.example/chat",
        app: { referer: "https://app.example/chat", title: "Demo App" },
      });
      const p = await get(`/api/v1/generation?id=${plain.id}`, key);
      expect(p.data).to.deep.include({ origin: "", app: null });
    });

    it("releases the hold of a request that ends with no usage event: no miner, or cancelled before any output", async () => {
      const credit = MICROS_PER_USD;
      const { record, client } = await newKey({ creditMicros: credit });
      // No miner offers the model: 503 after the hold, and the hold is given back.
      const e = await refusal(ask(client, 2, false, UNSERVED));
      expect(e.status).to.equal(503);
      const gone = watch.of("hold")[0]?.requestId;
      await watch.until(() => watch.of("release").some((c) => c.requestId === gone));
      await watch.idle();
      let account = await fx.billing.account(record.id, Date.now());
      expect(account).to.include({ heldMicros: 0, balanceMicros: credit, spentTotalMicros: 0 });

      // Cancelled while the miner has said nothing yet.
      const abort = new AbortController();
      const pending = client.chat.completions
        .create(
          { model: MODEL, messages: [{ role: "user", content: "hang" }], stream: true },
          { signal: abort.signal },
        )
        .then(
          async (s) => {
            for await (const _ of s) {
            }
          },
          () => undefined,
        );
      await fake.until(() => fake.requests.length === 1);
      // Its lease: a whole lease's worth is more than the key has, so what the key has.
      const held = watch.of("hold").at(-1);
      expect(held?.amountMicros).to.equal(credit);
      await watch.idle();
      account = await fx.billing.account(record.id, Date.now());
      expect(account.heldMicros).to.equal(held?.amountMicros);
      abort.abort();
      await pending.catch(() => undefined);
      await watch.until(() => watch.of("release").some((c) => c.requestId === held?.requestId));
      await watch.idle();
      account = await fx.billing.account(record.id, Date.now());
      expect(account).to.include({ heldMicros: 0, balanceMicros: credit, spentTotalMicros: 0 });
      expect(router.usage.events).to.deep.equal([]);
    });

    it("shows a generation only to the key that made it: another key and an unknown id get the same 404", async () => {
      const a = await newKey({ creditMicros: MICROS_PER_USD });
      const b = await newKey({ creditMicros: MICROS_PER_USD });
      const asked = await ask(a.client, 4, true);
      await settled();
      const mine = await get(`/api/v1/generation?id=${asked.id}`, a.key);
      expect(mine.status).to.equal(200);
      const d = mine.data;
      expect(d).to.include({
        id: asked.id,
        model: MODEL,
        streamed: true,
        finish_reason: "stop",
        cancelled: false,
      });
      expect(Date.parse(String(d.created_at))).to.be.within(Date.now() - 60_000, Date.now());
      expect(d.time_to_first_token_ms).to.be.a("number").and.at.least(0);
      expect(d.latency).to.be.at.least(num(d.time_to_first_token_ms));
      expect(d.generation_time).to.equal(num(d.latency) - num(d.time_to_first_token_ms));
      // The OpenRouter path and the /v1 one are the same endpoint.
      expect((await get(`/v1/generation?id=${asked.id}`, a.key)).body).to.deep.equal(mine.body);

      const theirs = await get(`/api/v1/generation?id=${asked.id}`, b.key);
      const unknown = await get(`/api/v1/generation?id=${"0".repeat(32)}`, b.key);
      for (const r of [theirs, unknown]) {
        expect(r.status).to.equal(404);
        expect(r.error).to.include({ type: "invalid_request_error", code: "not_found", param: "id" });
      }
      expect(String(theirs.error.message).replace(asked.id, "X")).to.equal(
        String(unknown.error.message).replace("0".repeat(32), "X"),
      );
      const missing = await get("/api/v1/generation", a.key);
      expect(missing.status).to.equal(400);
      expect(missing.error).to.include({ code: "invalid_request", param: "id" });
      expect((await get(`/api/v1/generation?id=${asked.id}`, undefined)).status).to.equal(401);
    });

    it("lists the calling key's own generations at /api/v1/key/generations, newest first, as /api/v1/generation reads them", async () => {
      const a = await newKey({ creditMicros: MICROS_PER_USD });
      const b = await newKey();
      const asked = [await ask(a.client, 2), await ask(a.client, 3, true), await ask(a.client, 4)];
      const theirs = await ask(b.client, 5);
      await settled();
      const list = await get("/api/v1/key/generations", a.key);
      expect(list.status).to.equal(200);
      // Each as /api/v1/generation reads it, newest first (by start time, then id: requests sent
      // one after another may share a millisecond).
      const one = [];
      for (const x of asked) one.push((await get(`/api/v1/generation?id=${x.id}`, a.key)).data);
      const key = (d: Json) => `${String(d.created_at)} ${String(d.id)}`;
      const want = one.sort((x, y) => (key(x) < key(y) ? 1 : -1));
      expect(list.body.data).to.deep.equal(want);
      expect(want.map((d) => d.id)).to.have.members(asked.map((x) => x.id));
      const streamed = want.find((d) => d.id === asked[1]?.id);
      expect(streamed).to.include({ streamed: true, model: MODEL, finish_reason: "stop" });
      const last = want.find((d) => d.id === asked[2]?.id);
      expect(micros(last?.total_cost)).to.equal(
        costMicros(
          asked[2]?.usage?.prompt_tokens ?? 0,
          asked[2]?.usage?.completion_tokens ?? 0,
          PRICE_PROMPT,
          PRICE_COMPLETION,
        ),
      );
      const two = await get("/api/v1/key/generations?limit=2", a.key);
      expect(two.body.data).to.deep.equal(want.slice(0, 2));
      // The other key sees only its own request (an unmetered key's spend is recorded too).
      const other = await get("/v1/key/generations?limit=100", b.key);
      expect((other.body.data as Json[]).map((r) => r.id)).to.deep.equal([theirs.id]);
      for (const bad of ["0", "101", "-1", "2.5", "x", "1e2"]) {
        const r = await get(`/api/v1/key/generations?limit=${bad}`, a.key);
        expect(r.status, bad).to.equal(400);
        expect(r.error, bad).to.include({ code: "invalid_request", param: "limit" });
      }
      expect((await get("/api/v1/key/generations", undefined)).status).to.equal(401);
    });

    it("describes the calling key at /api/v1/key with OpenRouter's fields, against what it spent", async () => {
      const credit = 2 * MICROS_PER_USD;
      const budget = MICROS_PER_USD;
      const { key, record, client } = await newKey({
        creditMicros: credit,
        budgetMicros: budget,
        rpm: 50,
        name: "reports",
      });
      const one = await ask(client, 3);
      const two = await ask(client, 5, true);
      await settled();
      const spent =
        costMicros(
          one.usage?.prompt_tokens ?? 0,
          one.usage?.completion_tokens ?? 0,
          PRICE_PROMPT,
          PRICE_COMPLETION,
        ) +
        costMicros(
          two.usage?.prompt_tokens ?? 0,
          two.usage?.completion_tokens ?? 0,
          PRICE_PROMPT,
          PRICE_COMPLETION,
        );
      const r = await get("/api/v1/key", key);
      expect(r.status).to.equal(200);
      const d = r.data;
      expect(d).to.include({
        label: "reports",
        key_id: record.id,
        limit: 2,
        limit_reset: null,
        is_free_tier: false,
        is_provisioning_key: false,
        budget_daily: 1,
        held: 0,
      });
      for (const f of ["usage", "usage_daily", "usage_weekly", "usage_monthly", "usage_24h", "usage_30d"]) {
        expect(micros(d[f]), f).to.equal(spent);
      }
      expect(micros(d.limit_remaining)).to.equal(credit - spent);
      expect(micros(d.balance)).to.equal(credit - spent);
      expect(micros(d.budget_daily_remaining)).to.equal(budget - spent);
      expect(d.rate_limit).to.deep.equal({ requests: 50, interval: "1m", tokens: -1 });
      expect((await get("/api/v1/auth/key", key)).body).to.deep.equal(r.body);

      // An unmetered key is served as before, its spend recorded, and it has no limit.
      const open = await newKey({ name: "" });
      const asked = await ask(open.client, 2);
      await settled();
      const last = router.usage.events.at(-1);
      expect(last?.paid).to.equal(false);
      expect(last?.billing).to.include({ keyId: open.record.id, holdMicros: 0 });
      expect(watch.of("hold").filter((c) => c.keyId === open.record.id)).to.deep.equal([]);
      const cost = costMicros(
        asked.usage?.prompt_tokens ?? 0,
        asked.usage?.completion_tokens ?? 0,
        PRICE_PROMPT,
        PRICE_COMPLETION,
      );
      const u = (await get("/api/v1/key", open.key)).data;
      expect(u).to.include({ label: open.record.hint, limit: null, limit_remaining: null, balance: null });
      expect(u.is_free_tier).to.equal(true);
      expect(micros(u.usage)).to.equal(cost);
      expect((await get(`/api/v1/generation?id=${asked.id}`, open.key)).status).to.equal(200);

      const anonymous = await get("/api/v1/key", undefined);
      expect(anonymous.status).to.equal(401);
      expect(anonymous.error.type).to.equal("authentication_error");
    });

    it("counts the GET endpoints as requests of the key, with the same headers, and refuses them past the limit", async () => {
      const { key, client } = await newKey({ creditMicros: MICROS_PER_USD, rpm: 5, tpm: 100_000 });
      const asked = await ask(client, 2);
      await settled();
      const paths = [
        "/v1/models",
        "/api/v1/key",
        `/api/v1/generation?id=${asked.id}`,
        "/api/v1/key/generations",
      ];
      const got = [];
      for (const p of paths) got.push(await get(p, key));
      expect(got.map((g) => g.status)).to.deep.equal([200, 200, 200, 200]);
      expect(got.map((g) => g.headers.get("x-ratelimit-limit-requests"))).to.deep.equal(["5", "5", "5", "5"]);
      expect(got.map((g) => g.headers.get("x-ratelimit-remaining-requests"))).to.deep.equal([
        "3",
        "2",
        "1",
        "0",
      ]);
      // A GET takes no tokens: the tokens left only refill from one GET to the next.
      const tokens = got.map((g) => Number(g.headers.get("x-ratelimit-remaining-tokens")));
      expect(tokens[1]).to.be.at.least(tokens[0] as number);
      expect(tokens[2]).to.be.at.least(tokens[1] as number);
      const over = await get("/api/v1/key", key);
      expect(over.status).to.equal(429);
      expect(over.error.type).to.equal("rate_limit_error");
      expect(over.headers.get("x-ratelimit-remaining-requests")).to.equal("0");
      expect(over.headers.get("retry-after")).to.match(/^\d+$/);
    });

    it("sends OpenAI's rate-limit headers, remaining counts going down, and only for the limits a key has", async () => {
      const { client } = await newKey({ creditMicros: MICROS_PER_USD, rpm: 4, tpm: 100_000 });
      const seen = [];
      for (let i = 0; i < 3; i++) seen.push((await ask(client, 2)).headers);
      expect(seen.map((h) => h.get("x-ratelimit-limit-requests"))).to.deep.equal(["4", "4", "4"]);
      expect(seen.map((h) => h.get("x-ratelimit-remaining-requests"))).to.deep.equal(["3", "2", "1"]);
      expect(seen.map((h) => h.get("x-ratelimit-limit-tokens"))).to.deep.equal([
        "100000",
        "100000",
        "100000",
      ]);
      const tokensLeft = seen.map((h) => Number(h.get("x-ratelimit-remaining-tokens")));
      expect(tokensLeft[0]).to.be.below(100_000);
      expect(tokensLeft[1]).to.be.below(tokensLeft[0] as number);
      for (const h of seen) {
        expect(h.get("x-ratelimit-reset-requests")).to.match(/^\d+(\.\d{1,3})?s$/);
        expect(h.get("x-ratelimit-reset-tokens")).to.match(/^(\d+ms|\d+(\.\d{1,3})?s)$/);
      }
      // 15 s per request: after three, about 45 s until the bucket is full.
      expect(Number.parseFloat(seen[2]?.get("x-ratelimit-reset-requests") ?? "")).to.be.within(40, 45);
      await ask(client, 2);
      const e = await refusal(ask(client, 2));
      expect(e.status).to.equal(429);
      expect(e.headers?.get("x-ratelimit-remaining-requests")).to.equal("0");

      // A key without limits gets none of them.
      const free = await newKey({ creditMicros: MICROS_PER_USD });
      expect(
        [...(await get("/v1/models", free.key)).headers.keys()].filter((k) => k.startsWith("x-ratelimit")),
      ).to.deep.equal([]);
      const h = (await ask(free.client, 2)).headers;
      expect([...h.keys()].filter((k) => k.startsWith("x-ratelimit"))).to.deep.equal([]);
      // Only the tokens trio for a key limited by tokens alone.
      const tokensOnly = await newKey({ tpm: 50_000 });
      const t = (await ask(tokensOnly.client, 2)).headers;
      expect([...t.keys()].filter((k) => k.startsWith("x-ratelimit")).sort()).to.deep.equal([
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
      ]);
    });
  });
}
