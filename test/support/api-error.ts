import { expect } from "chai";
import { APIError } from "openai";

/** The APIError the official openai client throws for `p`; fails the test when `p` resolves or throws another error. */
export async function apiError(p: Promise<unknown>): Promise<APIError> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(APIError);
    return err as APIError;
  }
  throw new Error("expected an API error");
}
