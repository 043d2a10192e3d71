/**
 * How a validator learns the id of a router it was given without `?id=`:
 * every tunnel a router opens starts with a Challenge naming its router id
 * (tunnel.proto), so the validator opens one, reads that first frame and
 * hangs up before any Hello. Trusting the answer is sound for what the id
 * is for: a call signed for this router cannot be replayed to a second one
 * (a router that lied about its id would only make calls it receives fail).
 */
import type { ClientDuplexStream } from "@grpc/grpc-js";
import { isValidRouterId } from "../common/router-id.js";
import type { ConnectRequest, ConnectResponse, TunnelServiceClient } from "../gen/tensorclaw/v1/tunnel.js";

/** The router id in the Challenge the router at `client` sends, within `timeoutMs`. */
export function readRouterId(client: TunnelServiceClient, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const call: ClientDuplexStream<ConnectRequest, ConnectResponse> = client.connect({
      deadline: Date.now() + timeoutMs,
    });
    let settled = false;
    const finish = (err: Error | undefined, id?: string) => {
      if (settled) return;
      settled = true;
      // No Hello follows: the router sees a handshake abandoned by its peer.
      call.cancel();
      if (err === undefined && id !== undefined) resolve(id);
      else reject(err);
    };
    call.on("data", (msg: ConnectResponse) => {
      const first = msg.frames[0]?.kind;
      if (first?.$case !== "challenge") {
        finish(new Error("cannot learn the router id: its tunnel did not start with a challenge"));
      } else if (!isValidRouterId(first.value.routerId)) {
        finish(new Error("cannot learn the router id: its challenge names no valid router id"));
      } else {
        finish(undefined, first.value.routerId);
      }
    });
    // After cancel() the stream still reports CANCELLED here; `settled` keeps it quiet.
    call.on("error", (err: Error) =>
      finish(new Error(`cannot learn the router id from its tunnel service: ${err.message}`)),
    );
    call.on("end", () =>
      finish(new Error("cannot learn the router id: the tunnel ended before a challenge")),
    );
  });
}
