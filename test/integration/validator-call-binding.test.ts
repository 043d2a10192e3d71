// A validator call names the router it is for: the same signed bytes and
// metadata that one router serves are refused by a second router, which is
// the replay a router that received a call could otherwise try on its peers.
// Two real routers (tunnel hub, validator services) on port 0, ids differ.
import { credentials, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { expect } from "chai";
import type { Hotkey } from "../../common/identity.js";
import { silentLogger } from "../../common/logger.js";
import { signValidatorCall } from "../../common/signing.js";
import { rawUnaryCall } from "../../common/validator-call/client.js";
import {
  ListMinersRequest,
  MinerDirectoryServiceClient,
  MinerDirectoryServiceService,
} from "../../gen/tensorclaw/v1/directory.js";
import { RouterClient, RouterUnreachableError } from "../../validator/router-client.js";
import { type RouterUnderTest, startRouter } from "../support/api-harness.js";
import { throwawayHotkey } from "../support/keys.js";

const LIST = MinerDirectoryServiceService.listMiners;

function target(r: RouterUnderTest): string {
  return r.grpcUrl.slice("grpc://".length);
}

function refusal(p: Promise<unknown>): Promise<ServiceError> {
  return p.then(
    () => expect.fail("the call was served"),
    (err: ServiceError) => err,
  );
}

describe("validator calls are bound to one router", () => {
  let validator: Hotkey;
  let a: RouterUnderTest;
  let b: RouterUnderTest;
  const closers: (() => void)[] = [];

  before(async () => {
    validator = await throwawayHotkey();
  });
  beforeEach(async () => {
    a = await startRouter({ routerId: "router-a", validators: [validator.address] });
    b = await startRouter({ routerId: "router-b", validators: [validator.address] });
  });
  afterEach(async () => {
    for (const c of closers.splice(0)) c();
    await a.close();
    await b.close();
  });

  function directoryOf(r: RouterUnderTest): MinerDirectoryServiceClient {
    const c = new MinerDirectoryServiceClient(target(r), credentials.createInsecure());
    closers.push(() => c.close());
    return c;
  }

  it("refuses a call signed for router A when replayed unchanged to router B; A serves it", async () => {
    const bytes = LIST.requestSerialize(ListMinersRequest.fromPartial({}));
    const md = new Metadata();
    for (const [k, v] of Object.entries(
      signValidatorCall(validator, "router-a", LIST.path, bytes, Date.now()),
    )) {
      md.set(k, v);
    }
    const onB = await refusal(rawUnaryCall(directoryOf(b), LIST, bytes, md.clone()));
    expect(onB.code).to.equal(status.UNAUTHENTICATED);
    expect(onB.details).to.equal('this call is signed for router "router-a"; this router is "router-b"');
    // The very same call, still fresh and unused, is good where it was meant to go.
    const onA = await rawUnaryCall(directoryOf(a), LIST, bytes, md.clone());
    expect(onA.sessions).to.deep.equal([]);
    // Rewriting the named router does not help: the signature covers router-a.
    const forged = md.clone();
    forged.set("x-tc-router-id", "router-b");
    const rewritten = await refusal(rawUnaryCall(directoryOf(b), LIST, bytes, forged));
    expect(rewritten.code).to.equal(status.UNAUTHENTICATED);
    expect(rewritten.details).to.match(/signature does not verify/);
  });

  it("signs for the id the --router URL pins, or the id the router's challenge names", async () => {
    const learned = new RouterClient([a.grpcUrl, b.grpcUrl], { signer: validator, logger: silentLogger() });
    closers.push(() => learned.close());
    const list = await learned.listMiners();
    expect(list.unanswered, "both routers served calls signed for their own ids").to.deep.equal([]);

    const pinned = new RouterClient([`${a.grpcUrl}?id=router-a`], {
      signer: validator,
      logger: silentLogger(),
    });
    closers.push(() => pinned.close());
    expect((await pinned.listMiners()).unanswered).to.deep.equal([]);

    // B pinned as router-a (a typo, or a router swapped behind the address): every call refused.
    const wrong = new RouterClient([`${b.grpcUrl}?id=router-a`], {
      signer: validator,
      logger: silentLogger(),
    });
    closers.push(() => wrong.close());
    const err = await wrong.listMiners().then(
      () => expect.fail("listed"),
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(RouterUnreachableError);
    expect(String(err)).to.include('this call is signed for router "router-a"; this router is "router-b"');
  });
});
