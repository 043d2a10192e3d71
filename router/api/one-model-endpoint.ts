import type { IncomingMessage, ServerResponse } from "node:http";
import type { AccessRecord } from "./access-log.js";
import type { Caller, ChatDeps } from "./chat.js";
import type { KeyBilling } from "./chat-billing.js";
import { countedRequest, type Incoming } from "./request-frame.js";

/**
 * What the endpoints of one model per request share (completions,
 * embeddings): the router's dependencies, the chat endpoint's billing (one
 * set of leases per router) and the counted `handle`. Chat, with its
 * `models` fallbacks and the Responses API, has its own.
 */
export abstract class OneModelEndpoint {
  constructor(
    protected readonly deps: ChatDeps,
    /** The chat endpoint's billing (one set of leases per router). */
    protected readonly billing: KeyBilling | undefined,
  ) {}

  /** Serves one request; resolves to the HTTP status (200 for streams that started). */
  handle(
    req: IncomingMessage,
    res: ServerResponse,
    requestId: string,
    caller: Caller,
    access: AccessRecord = {},
  ): Promise<number> {
    return countedRequest(this.deps, (label) => this.serve({ req, res, requestId, caller, access }, label));
  }

  /** Serves `inc`; sets `label.model` once the model is known to exist. */
  protected abstract serve(inc: Incoming, label: { model: string }): Promise<number>;
}
