import { TensorClawError } from "../../common/errors.js";
import type { ChatOptions } from "../api/chat.js";
import { parseJson } from "../api/http.js";
import { type ParsedChatRequest, parseChatBody } from "../api/openai-request.js";

/*
 * A probe's chat request is the validator's own (ProbeRequest.request_json),
 * read by exactly the code that reads a user's HTTP body, so the frame a
 * miner gets has the same defaults, limits and `user` hashing as a user's.
 */

/** The rules a user's chat request goes by (the Business API's options): a probe goes by the same. */
export type ProbeChatRules = Pick<ChatOptions, "requestTimeoutMs" | "userSalt" | "maxBodyBytes">;

/**
 * The account a validator's probes hash their `user` under, as an API key id
 * is for a user: one synthetic account per validator, so a `user` value
 * hashes the same across that validator's probes and differently from
 * everybody else's. It never leaves the router (only the salted hash does).
 */
export function probeAccount(validatorHotkey: string): string {
  return `validator:${validatorHotkey}`;
}

/** `request_json` as a user's body would be read: the same JSON parse, checks and defaults. */
export function parseProbeBody(
  json: string,
  validatorHotkey: string,
  rules: ProbeChatRules,
): ParsedChatRequest {
  if (json === "") {
    throw new TensorClawError("invalid_request", "request_json is required: the chat request to send", {
      param: "request_json",
    });
  }
  const bytes = Buffer.from(json, "utf8");
  if (bytes.length > rules.maxBodyBytes) {
    throw new TensorClawError(
      "invalid_request",
      `request_json is larger than the ${rules.maxBodyBytes} bytes a user's body may be`,
      { param: "request_json" },
    );
  }
  try {
    const body = parseJson(bytes);
    // The model is the probe's (ProbeRequest.model or the draw): the body's is ignored, so a
    // placeholder satisfies the user rule that one is named.
    const probed =
      typeof body === "object" && body !== null && !Array.isArray(body) ? { ...body, model: "probe" } : body;
    return parseChatBody(probed, {
      userSalt: rules.userSalt,
      account: probeAccount(validatorHotkey),
    });
  } catch (err) {
    if (!(err instanceof TensorClawError)) throw err;
    const param =
      err.param === undefined || err.param === "body" ? "request_json" : `request_json.${err.param}`;
    throw new TensorClawError("invalid_request", `request_json: ${err.message}`, { param, cause: err });
  }
}
